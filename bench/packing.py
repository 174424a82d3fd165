"""Non-padding fraction of packed training batches (seqio's ``DecoderFeatureConverter(pack=True)``).

    .venv/bin/python bench/packing.py [--mixture demo_heldout_nli_train] [--batches 20]
        [--lengths 128:32,1024:256]

For each ``inputs:targets`` feature-length pair, builds the trainer's pipeline
(:func:`flan_jax.training.batches.get_dataset`, batch 8) and reports the share of the packed
positions that
hold a token (``decoder_segment_ids > 0``), the mean number of examples per row and the mean
example length, then the same for :func:`flan_jax.data.packing.best_fit_pack` on the unpacked rows
of the
same stream. Last line: ``non_padding=<seqio> best_fit=<ours>`` at the last length pair.
"""

from __future__ import annotations

import argparse

import numpy as np


def measure_best_fit(mixture: str, inputs: int, targets: int, rows: int,
                     window: int) -> float:
  """Non-padding fraction of ``rows`` best-fit packed rows (flan_jax.data.packing) of the same
  data."""
  from flan_jax.data import packing
  from flan_jax.training import batches as data
  cfg = data.DataConfig(mixture, {"inputs": inputs, "targets": targets}, 8, pack=False)

  def unpacked():
    for batch in data.get_dataset(cfg).as_numpy_iterator():
      for i in range(len(batch["decoder_target_tokens"])):
        yield {k: v[i] for k, v in batch.items()}

  packed = packing.best_fit_pack(unpacked(), inputs + targets, window=window)
  return packing.non_padding_fraction(row for _, row in zip(range(rows), packed, strict=False))


def measure(mixture: str, inputs: int, targets: int, batches: int, batch_size: int = 8) -> dict:
  from flan_jax.training import batches as data
  cfg = data.DataConfig(mixture, {"inputs": inputs, "targets": targets}, batch_size)
  filled = total = segments = 0
  for batch in data.get_dataset(cfg).take(batches).as_numpy_iterator():
    seg = batch["decoder_segment_ids"]
    filled += int((seg > 0).sum())
    total += seg.size
    segments += sum(len(set(row[row > 0].tolist())) for row in seg)
  return {"non_padding": filled / total, "examples_per_row": segments / (batches * batch_size),
          "mean_example_length": filled / max(segments, 1)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--mixture", default="demo_heldout_nli_train")
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--lengths", default="128:32,1024:256")
  parser.add_argument("--window", type=int, default=32, help="best-fit window (open rows)")
  args = parser.parse_args(argv)
  import flan_jax.mixtures  # noqa: F401  (registers the tasks and mixtures)
  result = {}
  for pair in args.lengths.split(","):
    inputs, targets = (int(x) for x in pair.split(":"))
    result = measure(args.mixture, inputs, targets, args.batches)
    print(f"{args.mixture} inputs {inputs} targets {targets} (packed row {inputs + targets}): "
          f"non-padding {result['non_padding']:.3f}, {result['examples_per_row']:.1f} examples "
          f"per row, mean example {result['mean_example_length']:.0f} tokens")
    best = measure_best_fit(args.mixture, inputs, targets, args.batches * 8, args.window)
    print(f"  best-fit (flan_jax.data.packing, window {args.window}): non-padding {best:.3f}")
  print(f"non_padding={result['non_padding']:.4f} best_fit={best:.4f}")


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
