"""Writes a task's or mixture's split to JSONL: the rendered text, not token ids.

    flan-jax export-data NAME --split train --output out.jsonl [--num_examples N] [--seed S]
    python -m flan_jax.export_data NAME ...

One JSON object per line: ``inputs``, ``targets``, ``task``, ``template_idx``, ``options`` (for
classification), plus ``idx``/``is_correct`` for rank-classification rows and ``num_shots`` for
few-shot tasks, and the Flan 2022 metadata ``_task_name``, ``_template_idx``, ``_template_type``,
``_task_source`` where a task has them. A mixture's train split holds each sub-task's share of the
rates exactly (largest remainders, interleaved evenly), its default size one "epoch", the sum of
the rates; other splits are exported whole, task after task. Each line names its sub-task. At
most :data:`LIVE_TASKS` sub-task pipelines are live at once (groups through temporary files).

``--shard i/N`` writes the i-th of N disjoint parts (run N processes). A mixture's train split is
split by task: part i holds whole tasks (balanced by lines), each with exactly its lines of the
unsharded export in that export's order, so the parts together are the unsharded export. A task
or an evaluation split is read from its i-th seqio shard.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator

import seqio
import tensorflow as tf
from tqdm import tqdm

from flan_jax.data import registry
from flan_jax.storage import fs

_OPTION_SEP = "\x1e"
_EXTRA_INT_KEYS = ("template_idx", "num_shots", "is_correct")
_META_KEYS = ("_task_name", "_template_type", "_task_source")  # + "_template_idx"


def _task_records(task: seqio.Task, split: str, seed: int | None, shuffle: bool,
                  shard: tuple[int, int] | None = None) -> tf.data.Dataset:
  """A task's split as a dataset of uniform records (so mixtures can interleave them)."""
  shard_info = seqio.ShardInfo(*shard) if shard else None
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=shuffle, seed=seed,
                        num_epochs=1, trim_output_features=False, shard_info=shard_info)

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
        **{k: ex.get(k, tf.constant("")) for k in _META_KEYS},
        "_template_idx": tf.cast(ex.get("_template_idx", -1), tf.int32),
    }

  return ds.map(_record, num_parallel_calls=tf.data.AUTOTUNE)


def quotas(rates: list[float], total: int) -> list[int]:
  """``total`` split in proportion to ``rates`` (largest remainders; sums to ``total``)."""
  shares = [total * r / sum(rates) for r in rates]
  counts = [int(x) for x in shares]
  by_remainder = sorted(range(len(rates)), key=lambda i: (counts[i] - shares[i], i))
  for i in by_remainder[: total - sum(counts)]:
    counts[i] += 1
  return counts


def shard_tasks(counts: list[int], index: int, num_shards: int) -> list[int]:
  """Indices of the tasks that shard ``index`` of ``num_shards`` exports: whole tasks, balanced
  by line count (largest first to the least-loaded shard). A task's lines are then exactly its
  lines in the unsharded export, whatever its filters or few-shot pools do, and each task's
  pipeline is built by one worker only."""
  loads = [0] * num_shards
  owner = {}
  for j in sorted(range(len(counts)), key=lambda j: (-counts[j], j)):
    k = min(range(num_shards), key=lambda k: (loads[k], k))
    owner[j] = k
    loads[k] += counts[j]
  return [j for j in range(len(counts)) if owner[j] == index]


def _interleaved(counts: list[int]) -> list[int]:
  """Stream indices that spread each stream's ``counts[i]`` draws evenly."""
  slots = [((j + 0.5) / c, i) for i, c in enumerate(counts) for j in range(c)]
  return [i for _, i in sorted(slots)]


# Sub-task pipelines a mixture's export holds live at once. Each holds ~24 MB (BENCHMARKS.md), so
# all ~1,940 of flan2022_submix (~47 GB) do not fit a 24 GiB machine; groups of this many are
# exported one after another into temporary files, merged back in the one interleaved order.
LIVE_TASKS = 64


def _mixture_plan(provider: seqio.Mixture, tasks: list[seqio.Task], split: str, total: int,
                  shard: tuple[int, int] | None) -> tuple[list[tuple[seqio.Task, int]], list[int]]:
  """(task, lines) of this shard for every task with lines, and the interleaved order of the
  lines (indices into that list): the unsharded export's order restricted to this shard's
  tasks, so the parts merged along it are the whole."""
  plan = [(task, quota) for task, quota in zip(
      tasks, quotas([float(provider.get_rate(t)) for t in tasks], total), strict=True) if quota]
  order = _interleaved([c for _, c in plan])
  if not shard:
    return plan, order
  keep = shard_tasks([c for _, c in plan], *shard)
  new_index = {j: i for i, j in enumerate(keep)}
  return [plan[j] for j in keep], [new_index[j] for j in order if j in new_index]


def _interleave(plan: list[tuple[seqio.Task, int]], order: list[int], split: str,
                seed: int | None, shuffle: bool) -> Iterator[tuple[int, dict]]:
  """(index into ``plan``, row) in ``order``; a task that runs out of rows (all filtered out)
  loses its turns instead of ending the export."""
  streams = [_task_records(task, split, seed, shuffle).repeat().take(count)
             for task, count in plan]
  tagged = [ds.map(lambda ex, i=i: (i, ex)) for i, ds in enumerate(streams)]
  choice = tf.data.Dataset.from_tensor_slices(tf.constant(order, tf.int64))
  ds = tf.data.Dataset.choose_from_datasets(tagged, choice, stop_on_empty_dataset=False)
  for i, ex in ds.as_numpy_iterator():
    yield int(i), _row(ex)


def _mixture_rows(plan: list[tuple[seqio.Task, int]], order: list[int], split: str,
                  seed: int | None, shuffle: bool, live: int = LIVE_TASKS) -> Iterator[dict]:
  """The mixture's rows in ``order``, with at most ``live`` task pipelines at a time: each group
  of ``live`` tasks is exported (in ``order`` restricted to it) to a temporary file, then the
  files are merged along ``order``. The rows and their order are those of one interleave of
  every task."""
  if not plan:
    return
  if len(plan) <= live:
    yield from (row for _, row in _interleave(plan, order, split, seed, shuffle))
    return
  groups = range(0, len(plan), live)
  with tempfile.TemporaryDirectory(prefix="flan_jax_export_") as tmp:
    paths = [fs.join(tmp, f"group{g // live}.jsonl") for g in groups]
    for g, path in zip(tqdm(groups, desc=f"task groups of {live}", unit="group",
                            file=sys.stderr, leave=False), paths, strict=True):
      sub = [i - g for i in order if g <= i < g + live]
      with fs.open(path, "w", encoding="utf-8") as f:
        for i, row in _interleave(plan[g:g + live], sub, split, seed, shuffle):
          f.write(json.dumps([i + g, row], ensure_ascii=False) + "\n")
    files = [fs.open(path, encoding="utf-8") for path in paths]
    try:
      heads = [f.readline() for f in files]
      for i in order:
        k = i // live
        if not heads[k]:
          continue
        index, row = json.loads(heads[k])
        if index != i:  # task i had no row at this turn
          continue
        yield row
        heads[k] = files[k].readline()
    finally:
      for f in files:
        f.close()


def _row(ex: dict) -> dict:
  """One exported record (numpy) -> its JSON object."""
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
  if ex["_task_source"]:
    row.update({k: ex[k].decode() for k in _META_KEYS})
    row["_template_idx"] = int(ex["_template_idx"])
  return row


def records(name: str, split: str = "train", *, seed: int | None = 0, shuffle: bool = False,
            num_examples: int | None = None, shard: tuple[int, int] | None = None,
            live: int = LIVE_TASKS) -> tuple[Iterator[dict], int | None]:
  """Yields JSON-ready dicts for a task or mixture; also returns the expected count if known.
  ``shard``: (index, count) of the part to export; ``live``: task pipelines held at once in a
  mixture's train split."""
  provider = registry.get(name)
  if isinstance(provider, seqio.Mixture):
    tasks = [t for t in provider.tasks if split in t.splits]
    if not tasks:
      raise ValueError(f"No sub-task of mixture {name!r} has a {split!r} split.")
    if split == "train":
      # Each task's exact share of the rates; one "epoch" is the sum of the rates.
      total = num_examples if num_examples is not None else int(round(provider.total_rate))
      plan, order = _mixture_plan(provider, tasks, split, total, shard)
      return _mixture_rows(plan, order, split, seed, shuffle, live), len(order)
    # Evaluation splits are exported whole, task after task.
    ds = _task_records(tasks[0], split, seed, shuffle, shard)
    for t in tasks[1:]:
      ds = ds.concatenate(_task_records(t, split, seed, shuffle, shard))
  else:
    if split not in provider.splits:
      raise ValueError(f"Task {name!r} has no split {split!r}; it has {list(provider.splits)}.")
    ds = _task_records(provider, split, seed, shuffle, shard)
  if num_examples is not None:
    ds = ds.take(num_examples)
  return (_row(ex) for ex in ds.as_numpy_iterator()), num_examples


def export(name: str, split: str, output: str, *, seed: int | None = 0, shuffle: bool = False,
           num_examples: int | None = None, progress: bool = True,
           shard: tuple[int, int] | None = None) -> int:
  """Writes the JSONL file; returns the number of lines written."""
  rows, total = records(name, split, seed=seed, shuffle=shuffle, num_examples=num_examples,
                        shard=shard)
  count = 0
  # Written under a temporary name, renamed when whole (an object store: one upload): a failed,
  # interrupted or disk-full export leaves no file under ``output``.
  with (contextlib.nullcontext(sys.stdout) if output == "-"
        else fs.open_atomic(output, "w", encoding="utf-8")) as out:
    for row in tqdm(rows, total=total, desc=f"export {name}/{split}", unit="ex",
                    disable=not progress, file=sys.stderr):
      out.write(json.dumps(row, ensure_ascii=False) + "\n")
      count += 1
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
  parser.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                      help="export part I of N (0-based), e.g. 0/4 ... 3/4 in four processes")
  parser.add_argument("--data_dir", action="append", default=[], metavar="SOURCE=DIR",
                      help="a Flan 2022 source's local files: niv2=DIR, cot=DIR, t0=DIR or "
                      "p3=DIR (the pre-rendered P3 release; selects T0-SF's P3 route)")


def parse_shard(text: str) -> tuple[int, int]:
  """``"i/N"`` -> (i, N), with 0 <= i < N."""
  try:
    index, count = (int(x) for x in text.split("/"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"--shard takes I/N (e.g. 0/4), got {text!r}") from None
  if not 0 <= index < count:
    raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= I < N")
  return index, count


def run(args: argparse.Namespace) -> None:
  if args.tfds_data_dir:
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  registry.ensure_registered()
  registry.import_modules(getattr(args, "module_import", None))
  for item in getattr(args, "data_dir", None) or []:
    source, sep, path = item.partition("=")
    if not sep:
      raise SystemExit(f"error: --data_dir takes SOURCE=DIR (niv2, cot, t0 or p3), got {item!r}")
    from flan_jax.data import local_sources as sources
    sources.set_data_dir(source, path)
  n = export(args.name, args.split, args.output, seed=args.seed, shuffle=args.shuffle,
             num_examples=args.num_examples, shard=getattr(args, "shard", None))
  print(f"wrote {n} examples of {args.name}/{args.split} to {args.output}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="flan-jax export-data", description=__doc__.splitlines()[0])
  add_arguments(parser)
  run(parser.parse_args(argv))


if __name__ == "__main__":
  main()
