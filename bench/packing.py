"""Non-padding fraction of packed training batches (seqio's ``DecoderFeatureConverter(pack=True)``).

    .venv/bin/python bench/packing.py [--mixture demo_heldout_nli_train] [--batches 20]
        [--lengths 128:32,1024:256]

For each ``inputs:targets`` feature-length pair, builds the trainer's pipeline
(:func:`flan_jax.training.batches.get_dataset`, batch 8) and reports the share of the packed
positions that
hold a token (``decoder_segment_ids > 0``), the mean number of examples per row and the mean
example length, then the same for :func:`flan_jax.data.packing.best_fit_pack` on the unpacked rows
of the
same stream. Then the same two packers on FLAN-like mock data (``--mock``, :data:`MOCK_LENGTHS`:
token lengths drawn from a stated distribution, since the offline suite's examples are short).
Last line: ``non_padding=<seqio> best_fit=<ours>`` at the last length pair (offline suite).
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


# FLAN-like lengths (tokens, before EOS): a mixture of two log-normal components, each
# (share, inputs median, inputs sigma, targets median, targets sigma). 80 %: templated
# zero-shot classification / QA / NLI (short prompts, a few target tokens); 20 %: reading
# comprehension, summarization and generation tasks (long passages, sentence-long targets).
MOCK_LENGTHS = ((0.8, 110, 0.8, 6, 1.2), (0.2, 600, 0.4, 40, 0.6))


def mock_examples(n: int, inputs: int, targets: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
  """``n`` random-token examples with :data:`MOCK_LENGTHS` lengths, clipped to the feature
  lengths minus the EOS (as seqio's trim would)."""
  rng = np.random.default_rng(seed)
  shares = np.array([c[0] for c in MOCK_LENGTHS])
  out = []
  for c in rng.choice(len(MOCK_LENGTHS), n, p=shares / shares.sum()):
    _, im, isd, tm, tsd = MOCK_LENGTHS[c]
    n_in = int(np.clip(rng.lognormal(np.log(im), isd), 4, inputs - 1))
    n_tg = int(np.clip(rng.lognormal(np.log(tm), tsd), 1, targets - 1))
    out.append({"inputs": np.append(rng.integers(2, 1000, n_in), 1).astype(np.int32),
                "targets": np.append(rng.integers(2, 1000, n_tg), 1).astype(np.int32)})
  return out


def measure_mock(inputs: int, targets: int, n: int, window: int) -> tuple[float, float, float]:
  """(seqio packed, best-fit, mean example tokens) non-padding fractions on ``n`` mock examples;
  the last 10 % of each packer's rows (the stream's ragged end) are left out."""
  import seqio
  import tensorflow as tf

  from flan_jax.data import packing
  examples = mock_examples(n, inputs, targets)
  lengths = {"inputs": inputs, "targets": targets}

  def convert(pack: bool) -> list[dict[str, np.ndarray]]:
    ds = tf.data.Dataset.from_generator(lambda: iter(examples), output_signature={
        k: tf.TensorSpec([None], tf.int32) for k in lengths})
    return list(seqio.DecoderFeatureConverter(pack=pack)(ds, lengths).as_numpy_iterator())

  def body(rows):
    return rows[:max(1, int(0.9 * len(rows)))]

  seqio_rows = body(convert(True))
  ours = body(list(packing.best_fit_pack(convert(False), inputs + targets, window=window)))
  mean = np.mean([len(e["inputs"]) + len(e["targets"]) for e in examples])
  return packing.non_padding_fraction(seqio_rows), packing.non_padding_fraction(ours), mean


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
  parser.add_argument("--mock", type=int, default=3000,
                      help="FLAN-like mock examples per length pair (0: skip)")
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
    if args.mock:
      ours_mock = measure_mock(inputs, targets, args.mock, args.window)
      print(f"  FLAN-like mock ({args.mock} examples, MOCK_LENGTHS, mean {ours_mock[2]:.0f} "
            f"tokens): seqio {ours_mock[0]:.3f}, best-fit {ours_mock[1]:.3f}")
  print(f"non_padding={result['non_padding']:.4f} best_fit={best:.4f}")


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
