"""The flat modules of the old layout (task-author imports, gin's ``from flan_jax import vocab``)
are shims that resolve to the same objects as the new layered homes."""

import importlib

import gin
import pytest

SHIMS = {  # old flat module -> its new home
  "flan_jax.templates": "flan_jax.data.templates",
  "flan_jax.preprocessors": "flan_jax.data.preprocessors",
  "flan_jax.dataset_spec": "flan_jax.data.spec",
  "flan_jax.mixing": "flan_jax.data.mixing",
  "flan_jax.registry": "flan_jax.data.registry",
  "flan_jax.vocab": "flan_jax.data.vocab",
  "flan_jax.gin_utils": "flan_jax.config.gin_utils",
}


@pytest.mark.parametrize("old", sorted(SHIMS))
def test_shim_reexports_the_new_module(old):
  shim, real = importlib.import_module(old), importlib.import_module(SHIMS[old])
  public = {n for n in vars(real) if not n.startswith("_")}
  assert public <= set(vars(shim)), public - set(vars(shim))
  for n in public:
    assert getattr(shim, n) is getattr(real, n), n


def test_old_gin_import_of_vocab_still_binds_the_configurable():
  from flan_jax.data import vocab
  gin.clear_config()
  try:
    gin.parse_config("from __gin__ import dynamic_registration\nfrom flan_jax import vocab\n"
                     "vocab.vocabulary.kind = 'byte'")
    assert type(vocab.vocabulary()).__name__ == "ByteVocabulary"
  finally:
    gin.clear_config()
