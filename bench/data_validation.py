"""What checking every line of an ``export-data`` part costs, against reading it for training.

    .venv/bin/python bench/data_validation.py [--lines 50000] [--repeats 3] [--dir DIR]

Writes one part of ``--lines`` FLAN-like lines (``export-data``'s fields; text lengths from
``bench/packing.py``'s ``MOCK_LENGTHS`` at ~4.5 characters a token: 80 % short templated
prompts, 20 % long passages, some non-ASCII text), then times, interleaved (each repeat runs
every mode, in an order that rotates):

* ``check``: :func:`flan_jax.data.bad_data.check_jsonl_files` -- what a data shard does once per
  part before its first batch (decode, parse and field checks of every line);
* ``read``: one epoch of the part as the trainer reads it before tokenizing
  (``TextLineDataset`` + :func:`flan_jax.data.exported.parse_lines`, the JSON parse through
  ``tf.numpy_function``);
* ``raw``: ``TextLineDataset`` alone (the bytes and line splitting).

The last line: ``check_over_read=<check/read> check_over_raw=<check/raw> mb=<part size>``
(medians of the per-repeat ratios). Training reads each line once an epoch and tokenizes it
too, so ``check_over_read`` bounds the start-up cost from above as a share of one epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from packing import MOCK_LENGTHS  # noqa: E402  (bench/ is not a package)

WORDS = ("the of and to in is was for on that with as by at from question answer which what "
         "premise hypothesis passage sentence options entailment café naïve déjà über — “quoted” "
         "summarize translate review positive negative 1990 42").split()
CHARS_PER_TOKEN = 4.5


def write_part(path: str, lines: int, seed: int = 0) -> int:
  """``lines`` FLAN-like export-data lines at ``path``; its size in bytes."""
  rng = np.random.default_rng(seed)
  shares = np.array([c[0] for c in MOCK_LENGTHS])
  words = np.array(WORDS)
  with open(path, "w", encoding="utf-8") as f:
    for i, c in enumerate(rng.choice(len(MOCK_LENGTHS), lines, p=shares / shares.sum())):
      _, im, isd, tm, tsd = MOCK_LENGTHS[c]
      n_in = max(4, int(rng.lognormal(np.log(im), isd) * CHARS_PER_TOKEN / 6))
      n_tg = max(1, int(rng.lognormal(np.log(tm), tsd) * CHARS_PER_TOKEN / 6))
      row = {"inputs": " ".join(rng.choice(words, n_in)),
             "targets": " ".join(rng.choice(words, n_tg)),
             "task": f"task_{i % 97}", "_task_source": "Flan2021", "_template_type": "zs_opt",
             "_template_idx": int(i % 10)}
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  return os.path.getsize(path)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--lines", type=int, default=50_000)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dir", default=None, help="where to write the part (default: a tmp dir)")
  args = parser.parse_args(argv)
  import tensorflow as tf

  from flan_jax.data import bad_data, exported
  with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
    part = os.path.join(tmp, "part-00000-of-00001.jsonl")
    size = write_part(part, args.lines)

    def check() -> None:
      assert bad_data.check_jsonl_files([part]) == 0

    def read() -> None:
      ds = exported.parse_lines(tf.data.TextLineDataset(part))
      assert sum(1 for _ in ds.as_numpy_iterator()) == args.lines

    def raw() -> None:
      assert sum(1 for _ in tf.data.TextLineDataset(part).as_numpy_iterator()) == args.lines

    modes = {"check": check, "read": read, "raw": raw}
    times: dict[str, list[float]] = {m: [] for m in modes}
    read()  # Warm-up: tf.data's function tracing, the page cache.
    for r in range(args.repeats):
      order = list(modes)[r % len(modes):] + list(modes)[:r % len(modes)]
      for mode in order:
        start = time.perf_counter()
        modes[mode]()
        times[mode].append(time.perf_counter() - start)
  mb = size / 1e6
  print(f"part: {args.lines} lines, {mb:.1f} MB; seconds per pass (median of {args.repeats}):")
  for mode, ts in times.items():
    t = statistics.median(ts)
    print(f"  {mode:6s} {t:7.2f} s  {mb / t:6.1f} MB/s")
  over_read = statistics.median(c / r for c, r in zip(times["check"], times["read"], strict=True))
  over_raw = statistics.median(c / r for c, r in zip(times["check"], times["raw"], strict=True))
  print(f"check_over_read={over_read:.2f} check_over_raw={over_raw:.2f} mb={mb:.1f}")


if __name__ == "__main__":
  main()
