"""Rank classification: prefix-shared scoring vs. one row per option, on FLAN-like items.

    .venv/bin/python bench/rank_classification.py [--items 64] [--batch 16] [--reps 3]

Items: a ~200-token templated context and 4 options of ~3 tokens (+ EOS), as FLAN's
classification tasks. (a) per option: every (context, option) pair in its own row through t5x's
``score_batch`` (what t5x/lm-eval do); (b) prefix-shared:
:func:`flan_jax.inference.scoring.score_items`
(context prefilled once, the KV cache broadcast to the options). Same model (LaMDA-style relative
positions, float32), same items, both compiled before timing and interleaved so machine load hits
both alike; medians reported. Last line: ``speedup=<a/b> max_abs_diff=<max |a - b| over scores>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from flan_jax.inference import batching, scoring
from flan_jax.models import DecoderConfig, init_params

CONFIG = DecoderConfig(vocab_size=32_000, num_layers=8, d_model=512, num_heads=8, head_dim=64,
                       d_ff=2048, activation="gated_gelu", position="relative",
                       relative_bidirectional=True, dtype="float32", scan_layers=True)


def flan_like_items(n: int, seed: int = 0) -> list[scoring.Item]:
  rng = np.random.default_rng(seed)
  items = []
  for _ in range(n):
    context = rng.integers(2, CONFIG.vocab_size, rng.integers(190, 211)).astype(np.int32)
    context[0] = 0  # The shifted-in BOS slot of the prefix-LM layout.
    options = [np.append(rng.integers(2, CONFIG.vocab_size, rng.integers(2, 5)), 1).astype(
        np.int32) for _ in range(4)]
    items.append(scoring.Item(context, options))
  return items


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--items", type=int, default=64)
  parser.add_argument("--batch", type=int, default=16, help="questions per shared call")
  parser.add_argument("--reps", type=int, default=3)
  args = parser.parse_args()

  params = init_params(CONFIG, jax.random.key(0))
  items = flan_like_items(args.items)
  rows = 4 * args.batch  # Same number of options per call on both paths.
  length = batching.round_up(max(len(it.context) + len(o) - 1 for it in items for o in it.options),
                             16)

  def per_option():
    return scoring.score_items_per_option(CONFIG, params, items, batch_size=rows, length=length)

  def shared():
    return scoring.score_items(CONFIG, params, items, batch_size=args.batch)

  want, got = per_option(), shared()  # Compile both.
  diff = max(float(np.abs(a - b).max()) for a, b in zip(want, got, strict=True))
  times = {"per_option": [], "shared": []}
  for _ in range(args.reps):
    for name, fn in (("per_option", per_option), ("shared", shared)):
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  med = {k: statistics.median(v) for k, v in times.items()}
  ctx = np.mean([len(it.context) for it in items])
  opt = np.mean([len(o) for it in items for o in it.options])
  naive_tokens = sum(len(it.context) + len(o) - 1 for it in items for o in it.options)
  shared_tokens = sum(len(it.context) + sum(len(o) - 1 for o in it.options) for it in items)
  print(f"items={len(items)} context={ctx:.0f} tokens, 4 options of {opt:.1f} tokens (incl. EOS); "
        f"model {CONFIG.num_params() / 1e6:.1f}M params, float32, {jax.device_count()} device(s)")
  print(f"forward tokens: per_option={naive_tokens} shared={shared_tokens} "
        f"(ratio {naive_tokens / shared_tokens:.2f})")
  print(f"{'path':12s} {'median s':>9s} {'items/s':>8s}")
  for name, t in med.items():
    print(f"{name:12s} {t:9.3f} {len(items) / t:8.1f}")
  print(f"speedup={med['per_option'] / med['shared']:.2f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
  main()
