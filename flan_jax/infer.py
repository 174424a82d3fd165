r"""Inference entry point with t5x's infer.py conventions: every prediction of a task to JSONL.

    python -m flan_jax.infer --gin_file=gin/runs/infer.gin \
      --gin.MIXTURE_OR_TASK_NAME="'world_qa_type_0'" --gin.CHECKPOINT_PATH="'demo_out/model'" \
      --gin.INFER_OUTPUT_DIR="'demo_out/infer'" \
      --gin.TASK_FEATURE_LENGTHS="{'inputs': 128, 'targets': 32}"

For each task of the mixture (its ``SPLIT``), ``INFER_OUTPUT_DIR/<task>-<shard>-of-<shards>.jsonl``
gets one line per example, in dataset order: ``index``, ``inputs`` and ``targets`` (text, when the
task has them), ``prediction`` (decoded text, cut at EOS) and, with ``INFER_SCORES``, ``score``
(the summed log-likelihood of the targets, t5x's ``mode='score'``). Decoding and scoring are
:class:`flan_jax.eval.Inference` (t5x's inference contract: global batches, each host feeding its
slice of every batch; process 0 writes). ``SHARD_ID``/``NUM_SHARDS`` split a task into
independent jobs (t5x's ``infer.shard_id``/``num_shards``).

Resumable: examples are processed in chunks of ``chunk_size`` (t5x's ``checkpoint_period``);
each finished chunk is written atomically to ``<file>.chunks/chunk_<n>.jsonl``. A rerun after a
crash skips the chunks already written, and the finished task is one file with no duplicates
(the chunk dir is then removed). A task whose JSONL exists is skipped.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np

from flan_jax import eval as eval_lib
from flan_jax.data import registry
from flan_jax.parallel import partitioning
from flan_jax.parallel.console import announce
from flan_jax.storage import fs

REQUIRED_MACROS = ("MIXTURE_OR_TASK_NAME", "CHECKPOINT_PATH", "INFER_OUTPUT_DIR",
                   "TASK_FEATURE_LENGTHS")


class _Rows(list):
  """Enumerated ``(index, features)`` rows in the shape of the dataset that predict_fn reads."""

  def as_numpy_iterator(self) -> Iterator[tuple[int, dict]]:
    return iter(self)


def output_path(output_dir: str, task: str, shard_id: int = 0, num_shards: int = 1) -> str:
  return fs.join(output_dir, f"{task}-{shard_id:05d}-of-{num_shards:05d}.jsonl")


def _text(example: Mapping[str, Any], key: str, vocabulary: Any) -> str | None:
  if f"{key}_pretokenized" in example:
    value = example[f"{key}_pretokenized"]
    return value.decode() if isinstance(value, bytes) else str(value)
  if key in example:
    return vocabulary.decode([int(t) for t in np.asarray(example[key]).reshape(-1)])
  return None


def _task_rows(task: Any, split: str, lengths: Mapping[str, int], use_cached: bool,
               shard_id: int, num_shards: int, num_examples: int | None = None
               ) -> tuple[Any, Any]:
  """(task examples, unpacked model features) of a task's split, index-aligned."""
  import seqio
  ds = task.get_dataset(dict(lengths), split=split, shuffle=False, num_epochs=1,
                        use_cached=use_cached, seed=42)
  if num_shards > 1:
    ds = ds.shard(num_shards, shard_id)
  if num_examples:
    ds = ds.take(num_examples)
  converter = seqio.DecoderFeatureConverter(pack=False)
  model_ds = converter(ds, dict(lengths))
  return ds, model_ds


def _chunk_lines(chunk: Sequence[tuple[Any, Any]], start: int, inference: eval_lib.Inference,
                 vocabulary: Any, scores: bool) -> list[str]:
  """The JSONL lines of one chunk of (example, model features) rows numbered from ``start``."""
  enumerated = _Rows((start + i, features) for i, (_, features) in enumerate(chunk))
  predictions = dict(inference.predict_fn(enumerated))
  row_scores = dict(inference.score_fn(enumerated)) if scores else {}
  lines = []
  for i, (example, _) in enumerate(chunk):
    index = start + i
    record: dict[str, Any] = {"index": index}
    for key in ("inputs", "targets"):
      value = _text(example, key, vocabulary)
      if value is not None:
        record[key] = value
    record["prediction"] = vocabulary.decode([int(t) for t in predictions[index]])
    if scores:
      record["score"] = float(row_scores[index])
    lines.append(json.dumps(record) + "\n")
  return lines


def _join_chunks(chunk_dir: str, path: str) -> None:
  """Writes the chunks' lines, in order, to ``path`` and removes ``chunk_dir``."""
  lines = []
  names = fs.listdir(chunk_dir) if fs.exists(chunk_dir) else []  # An object store: no empty dirs.
  for name in sorted(n for n in names if n.endswith(".jsonl")):
    lines.append(fs.read_text(fs.join(chunk_dir, name)))
  fs.write_text(path, "".join(lines))
  if names:
    fs.rmtree(chunk_dir)


def infer_task(task: Any, inference: eval_lib.Inference, output_dir: str, split: str,
               lengths: Mapping[str, int], chunk_size: int, scores: bool = False,
               use_cached: bool = False, shard_id: int = 0, num_shards: int = 1,
               progress: bool = True, num_examples: int | None = None) -> tuple[str, int]:
  """Writes ``task``'s JSONL (see the module docstring); returns (path, number of lines)."""
  path = output_path(output_dir, task.name, shard_id, num_shards)
  writer = jax.process_index() == 0
  if fs.exists(path):
    count = fs.read_text(path).count("\n")
    announce(f"{task.name}: {path} exists ({count} lines); skipped")
    return path, count
  chunk_dir = f"{path}.chunks"
  if writer:
    fs.makedirs(chunk_dir)
  vocabulary = task.output_features["targets"].vocabulary
  task_ds, model_ds = _task_rows(task, split, lengths, use_cached, shard_id, num_shards,
                                 num_examples)
  rows = zip(task_ds.as_numpy_iterator(), model_ds.as_numpy_iterator(), strict=True)
  bar = None
  if progress and writer:
    import tqdm
    bar = tqdm.tqdm(desc=task.name, unit="ex", dynamic_ncols=True)
  start = 0
  for number in itertools.count():
    chunk = list(itertools.islice(rows, chunk_size))
    if not chunk:
      break
    chunk_path = fs.join(chunk_dir, f"chunk_{number:05d}.jsonl")
    done = fs.exists(chunk_path)
    if jax.process_count() > 1:  # Every host must take part in (or skip) the same chunks.
      from jax.experimental import multihost_utils
      done = bool(multihost_utils.broadcast_one_to_all(np.int32(done)))
    if not done:
      lines = _chunk_lines(chunk, start, inference, vocabulary, scores)
      if writer:
        fs.write_text(chunk_path, "".join(lines))
    start += len(chunk)
    if bar is not None:
      bar.update(len(chunk))
  if bar is not None:
    bar.close()
  if writer:
    _join_chunks(chunk_dir, path)
  announce(f"{task.name}: {start} predictions -> {path}")
  return path, start


def infer(mixture_or_task_name: str = gin.REQUIRED, checkpoint_path: str = gin.REQUIRED,
          output_dir: str = gin.REQUIRED, task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          split: str = "validation", batch_size: int = 32, chunk_size: int = 1024,
          scores: bool = False, decode_kwargs: Mapping[str, Any] | None = None,
          use_cached: bool | None = False, shard_id: int = 0, num_shards: int = 1,
          dtype: str | None = None, mesh: str = "data=-1,model=1",
          dcn_mesh: str | None = None,
          partitioning_rules: str = "1d", progress: bool = True,
          num_examples: int | None = None) -> dict[str, str]:
  """Writes every prediction of each task of ``mixture_or_task_name`` (its first
  ``num_examples`` per task when set); returns {task: path}."""
  import seqio

  from flan_jax.training import batches as data
  registry.ensure_registered()
  item = registry.get(mixture_or_task_name)
  if set(task_feature_lengths) != {"inputs", "targets"}:
    raise ValueError("TASK_FEATURE_LENGTHS must be {'inputs': L1, 'targets': L2} (inference "
                     f"decodes targets from inputs), got {dict(task_feature_lengths)}")
  if chunk_size < 1 or num_shards < 1 or not 0 <= shard_id < num_shards:
    raise ValueError(f"need chunk_size >= 1 and 0 <= SHARD_ID < NUM_SHARDS, got chunk_size="
                     f"{chunk_size}, SHARD_ID={shard_id}, NUM_SHARDS={num_shards}")
  tasks = seqio.get_subtasks(item) if isinstance(item, seqio.Mixture) else [item]
  tasks = [t for t in tasks if split in t.splits]
  if not tasks:
    raise ValueError(f"{mixture_or_task_name!r} has no task with a {split!r} split; set SPLIT")
  no_inputs = [t.name for t in tasks if "inputs" not in t.output_features]
  if no_inputs:
    raise ValueError(f"inference decodes targets from inputs, but {', '.join(no_inputs)} has no "
                     "'inputs' feature (a plain-LM task)")
  device_mesh = partitioning.create_mesh(mesh, dcn=dcn_mesh)  # dcn_mesh: as train's DCN_MESH.
  rules = partitioning.logical_axis_rules(partitioning_rules, device_mesh.axis_names)
  config, params, step, prefix_lm = eval_lib.load_model(checkpoint_path, device_mesh, rules,
                                                        dtype)
  registry.check_vocab_size(mixture_or_task_name, config.vocab_size, "MIXTURE_OR_TASK_NAME")
  announce(f"inference with {checkpoint_path} (step {step}) on {len(tasks)} task(s)")
  eos_id = tasks[0].output_features["targets"].vocabulary.eos_id
  inference = eval_lib.Inference(config, params, device_mesh, rules, batch_size, prefix_lm,
                                 task_feature_lengths["targets"], eos_id=eos_id,
                                 decode_kwargs=decode_kwargs)
  fs.makedirs(output_dir)
  out = {}
  for task in tasks:
    cached = data.resolve_use_cached(task.name, use_cached)
    out[task.name], _ = infer_task(task, inference, output_dir, split, task_feature_lengths,
                                   chunk_size, scores, cached, shard_id, num_shards, progress,
                                   num_examples)
  return out


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
  """``python -m flan_jax.infer`` / ``flan-jax infer`` (``argv``: flags only)."""
  from flan_jax import entry

  def show(out: dict[str, str]) -> None:
    for task, path in out.items():
      print(f"{task}: {path}")

  entry.run("flan-jax infer", argv, REQUIRED_MACROS, infer, show)


def run(argv: Sequence[str]) -> dict[str, str]:
  """Python API: the command line's flags; returns {task: JSONL path}; errors raise."""
  from flan_jax import entry
  return entry.call("flan-jax infer", argv, REQUIRED_MACROS, infer)


if __name__ == "__main__":
  from flan_jax import infer as _infer_module
  _infer_module.main()
