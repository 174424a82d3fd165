"""Start-up cost of flan_jax (issue 13): registering every task, and ``flan-jax --help``.

    .venv/bin/python bench/import_time.py [--repeats 3]

Each measurement is a fresh interpreter, interleaved round by round so machine drift hits all
alike: ``import seqio`` alone (TensorFlow + seqio: the floor any seqio task registry pays),
``registry.ensure_registered()`` (every FLAN 2021 / Flan 2022 / offline task and mixture), and
``flan-jax --help``. Prints the medians and the registration's own share (total - seqio floor).
Last line: ``seqio_s=<v> register_all_s=<v> own_s=<v> help_s=<v>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "seqio": [sys.executable, "-c", "import seqio"],
    "register_all": [sys.executable, "-c",
                     "from flan_jax.data import registry; registry.ensure_registered()"],
    "help": [os.path.join(os.path.dirname(sys.executable), "flan-jax"), "--help"],
}


def _seconds(cmd: list[str]) -> float:
  start = time.perf_counter()
  subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  for cmd in CASES.values():  # warm the file cache once
    _seconds(cmd)
  times: dict[str, list[float]] = {k: [] for k in CASES}
  for _ in range(args.repeats):
    for name, cmd in CASES.items():
      times[name].append(_seconds(cmd))
  med = {k: statistics.median(v) for k, v in times.items()}
  for name, values in times.items():
    print(f"{name:13s} median {med[name]:6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
  own = med["register_all"] - med["seqio"]
  print(f"registration's own cost (register_all - seqio): {own:.2f} s")
  print(f"seqio_s={med['seqio']:.2f} register_all_s={med['register_all']:.2f} own_s={own:.2f} "
        f"help_s={med['help']:.2f}")


if __name__ == "__main__":
  main()
