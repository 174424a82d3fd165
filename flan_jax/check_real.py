"""``flan-jax check-real DIR``: check flan_jax's tasks on real rows of original dataset releases.

    flan-jax check-real ../shared/realdata
    flan-jax check-real /data/releases --work_dir /tmp/real --only cola,dart,cot

DIR holds one folder per dataset with the files TFDS would download (docs/real_rows.md lists
them). TFDS's own builders run on those files into ``--work_dir``; every dataset's FLAN test split
is then read through its registered task and checked against the FLAN reference. Prints one line
per dataset (rows, checks passed/failed, the first failure); a folder that is absent is listed as
"not present". Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from flan_jax.data import real_rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="flan-jax check-real",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("releases", metavar="DIR", help="directory of original releases")
  parser.add_argument("--work_dir", default=None,
                      help="where prepared TFDS data and staged files go (kept; reused by a "
                           "rerun). Default: a temporary directory, removed afterwards")
  parser.add_argument("--only", default=None,
                      help="comma-separated dataset names (cola, dart, cb, ..., cot)")
  parser.add_argument("--failures", action="store_true", help="print every failed check")
  return parser.parse_args(argv)


def run(args: argparse.Namespace, work_dir: str) -> list[real_rows.Outcome]:
  only = None
  if args.only:
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    known = {d.name for d in real_rows.DATASETS} | {"cot"}
    unknown = sorted(set(only) - known)
    if unknown:
      raise SystemExit(f"error: unknown dataset(s) {', '.join(unknown)} for --only; use some "
                       f"of {', '.join(sorted(known))}.")
  return real_rows.check(args.releases, os.path.join(work_dir, "tfds"),
                         os.path.join(work_dir, "staged"), only)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)  # before the heavy imports: --help answers at once
  import tensorflow_datasets as tfds
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.ERROR)
  tfds.disable_progress_bar()
  if args.work_dir:
    outcomes = run(args, args.work_dir)
  else:
    with tempfile.TemporaryDirectory(prefix="flan_jax_real_") as work_dir:
      outcomes = run(args, work_dir)
  print(real_rows.table(outcomes))
  if args.failures:
    for o in outcomes:
      for failure in o.failures:
        print(f"{o.dataset}: {failure}")
  failed = sum(1 for o in outcomes if o.failures)
  present = sum(1 for o in outcomes if o.present)
  print(f"{present - failed} of {present} present datasets pass; "
        f"{len(outcomes) - present} not present", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
