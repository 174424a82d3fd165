"""Writes a task's or mixture's split to JSONL: the rendered text, not token ids.

    flan-jax export-data NAME --split train --output out.jsonl [--num_examples N] [--seed S]
    python -m flan_jax.export_data NAME ...

One JSON object per line: ``inputs``, ``targets``, ``task``, ``template_idx``, ``options`` (for
classification), plus ``idx``/``is_correct`` for rank-classification rows and ``num_shots`` for
few-shot tasks. A mixture's train split is sampled with its rates (as seqio samples), its default
size one "epoch", the sum of the rates; other splits are exported whole, task after task. Each line
names the sub-task it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

import seqio
import tensorflow as tf
from tqdm import tqdm

from flan_jax.data import registry

_OPTION_SEP = "\x1e"
_EXTRA_INT_KEYS = ("template_idx", "num_shots", "is_correct")


def _task_records(task: seqio.Task, split: str, seed: int | None, shuffle: bool
                  ) -> tf.data.Dataset:
  """A task's split as a dataset of uniform records (so mixtures can interleave them)."""
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=shuffle, seed=seed,
                        num_epochs=1, trim_output_features=False)

  def _record(ex):
    options = ex.get("options", tf.constant([], tf.string))
    idx = tf.cast(ex["idx"], tf.int32) if "idx" in ex else tf.constant([-1, -1], tf.int32)
    return {
        "task": tf.constant(task.name),
        "inputs": ex.get("inputs_pretokenized", tf.constant("")),
        "targets": ex["targets_pretokenized"],
        "options": tf.strings.reduce_join(options, separator=_OPTION_SEP),
        "has_options": tf.size(options) > 0,
        "idx": idx,
        **{k: tf.cast(ex.get(k, -1), tf.int32) for k in _EXTRA_INT_KEYS},
    }

  return ds.map(_record, num_parallel_calls=tf.data.AUTOTUNE)


def records(name: str, split: str = "train", *, seed: int | None = 0, shuffle: bool = False,
            num_examples: int | None = None) -> tuple[Iterator[dict], int | None]:
  """Yields JSON-ready dicts for a task or mixture; also returns the expected count if known."""
  provider = registry.get(name)
  if isinstance(provider, seqio.Mixture):
    tasks = [t for t in provider.tasks if split in t.splits]
    if not tasks:
      raise ValueError(f"No sub-task of mixture {name!r} has a {split!r} split.")
    if split == "train":
      # Training data is sampled with the mixture's rates; one "epoch" is the sum of the rates.
      rates = [float(provider.get_rate(t)) for t in tasks]
      datasets = [_task_records(t, split, seed, shuffle).repeat() for t in tasks]
      ds = tf.data.Dataset.sample_from_datasets(
          datasets, weights=[r / sum(rates) for r in rates], seed=seed)
      total = num_examples if num_examples is not None else int(round(sum(rates)))
      ds = ds.take(total)
    else:
      # Evaluation splits are exported whole, task after task.
      ds = _task_records(tasks[0], split, seed, shuffle)
      for t in tasks[1:]:
        ds = ds.concatenate(_task_records(t, split, seed, shuffle))
      total = num_examples
      if num_examples is not None:
        ds = ds.take(num_examples)
  else:
    if split not in provider.splits:
      raise ValueError(f"Task {name!r} has no split {split!r}; it has {list(provider.splits)}.")
    ds = _task_records(provider, split, seed, shuffle)
    total = num_examples
    if num_examples is not None:
      ds = ds.take(num_examples)

  def _gen() -> Iterator[dict]:
    for ex in ds.as_numpy_iterator():
      row = {
          "task": ex["task"].decode(),
          "inputs": ex["inputs"].decode(),
          "targets": ex["targets"].decode(),
          "template_idx": int(ex["template_idx"]),
      }
      if ex["has_options"]:
        row["options"] = ex["options"].decode().split(_OPTION_SEP)
      if ex["idx"][0] >= 0:
        row["idx"] = [int(i) for i in ex["idx"]]
        row["is_correct"] = bool(ex["is_correct"])
      if ex["num_shots"] >= 0:
        row["num_shots"] = int(ex["num_shots"])
      yield row

  return _gen(), total


def export(name: str, split: str, output: str, *, seed: int | None = 0, shuffle: bool = False,
           num_examples: int | None = None, progress: bool = True) -> int:
  """Writes the JSONL file; returns the number of lines written."""
  rows, total = records(name, split, seed=seed, shuffle=shuffle, num_examples=num_examples)
  count = 0
  out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
  try:
    for row in tqdm(rows, total=total, desc=f"export {name}/{split}", unit="ex",
                    disable=not progress, file=sys.stderr):
      out.write(json.dumps(row, ensure_ascii=False) + "\n")
      count += 1
  finally:
    if out is not sys.stdout:
      out.close()
  return count


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("name", help="task or mixture name")
  parser.add_argument("--split", default="train")
  parser.add_argument("--output", "-o", default="-", help="JSONL path ('-' for stdout)")
  parser.add_argument("--num_examples", "-n", type=int, default=None,
                      help="how many lines (default: the whole task / one mixture epoch)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--shuffle", action="store_true")
  parser.add_argument("--tfds_data_dir", default=None, help="where prepared TFDS data lives")
  parser.add_argument("--module_import", action="append", default=[], metavar="MODULE",
                      help="import a module that registers tasks/mixtures (repeatable)")


def run(args: argparse.Namespace) -> None:
  if args.tfds_data_dir:
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  registry.ensure_registered()
  registry.import_modules(getattr(args, "module_import", None))
  n = export(args.name, args.split, args.output, seed=args.seed, shuffle=args.shuffle,
             num_examples=args.num_examples)
  print(f"wrote {n} examples of {args.name}/{args.split} to {args.output}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="flan-jax export-data", description=__doc__.splitlines()[0])
  add_arguments(parser)
  run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
