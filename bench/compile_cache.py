"""Compile time of a ``flan-jax train`` start with jax's persistent compilation cache: cold
(an empty cache) against warm (a second identical start that finds the first one's programs).

    .venv/bin/python bench/compile_cache.py [--repeats 2] [--steps 3] [--gin_file gin/runs/demo.gin]
        [--gin.NAME=VALUE ...]

Each repeat makes a fresh cache directory and runs ``python -m flan_jax.train`` twice with the
same gin files and bindings, each into a fresh MODEL_DIR and both with
``COMPILATION_CACHE_DIR`` = that directory (cold, then warm; repeats interleave the pairs). The
compile seconds are the ones the run prints after its first step (``compile 14.2 s: ...``: XLA
compile or cache-load seconds of state init and the train step, summed by jax.monitoring); the
wall seconds are the whole process (imports, data pipeline, steps). Last line:
``cold_s=<median> warm_s=<median> ratio=<median cold/warm>``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILE_LINE = re.compile(r"^compile ([0-9.]+) s: (\d+) programs? compiled, (.*)$", re.M)


def start(gin_files: list[str], bindings: list[str], model_dir: str, cache: str,
          steps: int) -> tuple[float, float, str]:
  """(compile seconds, wall seconds, the compile line) of one ``flan_jax.train`` process."""
  command = [sys.executable, "-m", "flan_jax.train", *(f"--gin_file={f}" for f in gin_files),
             f"--gin.MODEL_DIR='{model_dir}'", f"--gin.COMPILATION_CACHE_DIR='{cache}'",
             f"--gin.TRAIN_STEPS={steps}", "--gin.train_script.train.progress=False", *bindings]
  began = time.perf_counter()
  proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
  wall = time.perf_counter() - began
  found = COMPILE_LINE.search(proc.stderr)
  if proc.returncode or not found:
    raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
  return float(found.group(1)), wall, found.group(0)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--gin_file", action="append", default=None)
  args, rest = parser.parse_known_args()
  bindings = [a for a in rest if a.startswith("--gin.")]
  if len(bindings) != len(rest):
    parser.error(f"unknown arguments {[a for a in rest if not a.startswith('--gin.')]}")
  gin_files = args.gin_file or ["gin/runs/demo.gin"]
  if not bindings:  # The demo at a size that starts quickly; compile time does not depend on data.
    bindings = ["--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.BATCH_SIZE=4"]
  cold, warm = [], []
  with tempfile.TemporaryDirectory(prefix="compile_cache_bench_") as tmp:
    for repeat in range(args.repeats):
      cache = os.path.join(tmp, f"cache_{repeat}")
      for label, times in (("cold", cold), ("warm", warm)):
        model_dir = os.path.join(tmp, f"run_{repeat}_{label}")
        seconds, wall, line = start(gin_files, bindings, model_dir, cache, args.steps)
        times.append((seconds, wall))
        print(f"repeat {repeat} {label}: {line} (process {wall:.1f} s)", flush=True)
  ratios = [c[0] / max(w[0], 1e-9) for c, w in zip(cold, warm, strict=True)]
  walls = [c[1] / w[1] for c, w in zip(cold, warm, strict=True)]
  print(f"process wall cold/warm: median {statistics.median(walls):.2f}")
  print(f"cold_s={statistics.median(c[0] for c in cold):.2f} "
        f"warm_s={statistics.median(w[0] for w in warm):.2f} ratio={statistics.median(ratios):.1f}")


if __name__ == "__main__":
  main()
