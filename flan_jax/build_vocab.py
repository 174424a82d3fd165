"""Rebuilds the project's SentencePiece model from the offline suite, reproducibly.

    python -m flan_jax.build_vocab [--output PATH] [--vocab_size 1024]

The training text is the offline world's LM corpus and offline examples rendered with every
template (only the offline suite, so the model does not change when FLAN templates do).
Byte fallback keeps any other text (real FLAN data) encodable.
Ids follow seqio's convention: 0 pad, 1 EOS, 2 UNK.
"""

from __future__ import annotations

import argparse
import io

import sentencepiece as spm

from flan_jax.data import templates as tmpl
from flan_jax.data import vocab as vocab_lib

DEFAULT_VOCAB_SIZE = 512


def training_text() -> list[str]:
  """The sentences the model is trained on, in a fixed order."""
  import flan_jax.tasks.offline  # noqa: F401 - registers the offline suite.
  from flan_jax.data.offline import world
  from flan_jax.data.spec import DATASETS

  lines = list(world.corpus())
  for name, spec in sorted(DATASETS.items()):
    if spec.suite == "offline":
      for ex in world.examples(name, "train")[:300]:
        fields = dict(ex)
        if "options" in fields:
          fields[tmpl.OPTIONS_FIELD] = tmpl.format_options_py(fields["options"])
        elif spec.options:
          fields[tmpl.OPTIONS_FIELD] = tmpl.format_options_py(spec.options)
        for t in spec.templates:
          # Inputs and targets are encoded separately (each with SentencePiece's dummy "▁"
          # prefix), so they are separate lines here: joined by "\n", an answer word was learned
          # only without its "▁" and "yes" encoded as two pieces ("▁", "yes") against one for "no".
          lines.append(tmpl.render_py(t.inputs, fields))
          lines.append(tmpl.render_py(t.targets, fields))
  return lines


def train(vocab_size: int = DEFAULT_VOCAB_SIZE) -> bytes:
  """Trains the model and returns its serialized bytes (deterministic for fixed inputs)."""
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(training_text()),
      model_writer=model,
      vocab_size=vocab_size,
      model_type="unigram",
      character_coverage=1.0,
      byte_fallback=True,
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      user_defined_symbols=["\n"],
      normalization_rule_name="nfkc",
      remove_extra_whitespaces=False,
      split_by_whitespace=True,
      max_sentence_length=16384,
      num_threads=1,
      shuffle_input_sentence=False,
      minloglevel=2,
  )
  return model.getvalue()


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output", default=vocab_lib.DEFAULT_SPM_PATH)
  parser.add_argument("--vocab_size", type=int, default=DEFAULT_VOCAB_SIZE)
  args = parser.parse_args(argv)
  data = train(args.vocab_size)
  with open(args.output, "wb") as f:
    f.write(data)
  print(f"wrote {args.output} ({len(data)} bytes, {args.vocab_size} pieces)")


if __name__ == "__main__":
  main()
