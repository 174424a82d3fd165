"""flan_jax.tasks: every FLAN dataset as seqio tasks, one module per paper cluster, plus the
embedded offline suite. Importing this package registers everything."""

from flan_jax.data import registry as _registry

with _registry.bulk_registration():
  from flan_jax.tasks import (  # noqa: F401 - imported for their registrations.
      closed_book_qa,
      commonsense,
      coreference,
      misc,
      nli,
      offline,
      paraphrase,
      read_comp_commonsense,
      reading_comprehension,
      sentiment,
      struct_to_text,
      summarization,
      translation,
  )
