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

``<file>.manifest.json`` records what produced the file (checkpoint step and digest, task,
split, shard, chunk size, lengths, decoding, scores, dtype, number of examples): a rerun that
differs in any of them refuses, naming the fields, instead of mixing two runs' chunks or lines
(``restart=True`` discards that task's old output and starts it again). While a task is written,
``<file>.lock`` (the MODEL_DIR lock's mechanism) refuses a second infer of the same file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np

from flan_jax import eval as eval_lib
from flan_jax.data import registry
from flan_jax.interop import hf as hf_interop
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.parallel import partitioning
from flan_jax.parallel.console import announce
from flan_jax.storage import fs

REQUIRED_MACROS = ("MIXTURE_OR_TASK_NAME", "CHECKPOINT_PATH", "INFER_OUTPUT_DIR",
                   "TASK_FEATURE_LENGTHS")
MANIFEST_SUFFIX = ".manifest.json"
LOCK_SUFFIX = ".lock"
_NOT_COMPARED = ("checkpoint",)  # The path may move; the digest names the checkpoint.


class InferOutputError(model_checkpoint.ReportedError, ValueError):
  """An output file (or its chunks) was produced by a different run than this one."""


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


def _join_chunks(chunk_dir: str, path: str, count: int) -> None:
  """Writes the chunks' lines, in order, to ``path`` and removes ``chunk_dir``; the lines must
  be examples ``0..count-1``, each once (else nothing is written and the error names them)."""
  lines = []
  names = fs.listdir(chunk_dir) if fs.exists(chunk_dir) else []  # An object store: no empty dirs.
  for name in sorted(n for n in names if n.endswith(".jsonl")):
    lines.extend(fs.read_text(fs.join(chunk_dir, name)).splitlines(keepends=True))
  indices = [json.loads(line)["index"] for line in lines]
  if indices != list(range(count)):
    raise InferOutputError(
        f"the chunks in {chunk_dir} hold examples {_ranges(indices)}, not 0-{count - 1} once "
        f"each; {path} is not written (delete {chunk_dir} to redo the task)")
  fs.write_text(path, "".join(lines))
  if names:
    fs.rmtree(chunk_dir)


def _ranges(indices: Sequence[int]) -> str:
  """``0-7, 4-9`` for the runs of consecutive numbers in ``indices`` (in their order)."""
  runs: list[list[int]] = []
  for i in indices:
    if runs and i == runs[-1][1] + 1:
      runs[-1][1] = i
    else:
      runs.append([i, i])
  return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs) or "none"


def checkpoint_digest(checkpoint_path: str, step: int) -> str:
  """A digest of the checkpoint that ``checkpoint_path`` loads at ``step``: sha256 of its file
  list (:func:`flan_jax.models.checkpoint.file_checksums`: every file's size and the sha256 of
  all but the array data, whose OCDBT file names are unique per save). A Hugging Face directory
  has no such names: its safetensors are hashed too (read once more, ~1 s per GB)."""
  if hf_interop.is_hf_model_dir(checkpoint_path):
    directory = checkpoint_path
  else:
    directory = model_checkpoint.step_dir(model_checkpoint.split_step_dir(checkpoint_path)[0],
                                          step)
  sums = model_checkpoint.file_checksums(directory)
  return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()


def _read_manifest(path: str) -> dict[str, Any] | None:
  if not fs.exists(path):
    return None
  try:
    return dict(json.loads(fs.read_text(path)))
  except (ValueError, TypeError) as e:
    raise InferOutputError(f"{path} is not valid JSON ({e}); delete it and the output it "
                           "describes, or pass --gin.infer_script.infer.restart=True") from None


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """``field: old -> new`` for each compared field that differs."""
  keys = sorted((set(old) | set(new)) - set(_NOT_COMPARED))
  return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _check_output(path: str, chunk_dir: str, record: Mapping[str, Any], restart: bool) -> bool:
  """Checks ``path``'s output against this run's ``record``; True: there is nothing to keep (no
  output, or ``restart`` discarded a different run's), so the manifest is (re)written."""
  manifest_path = path + MANIFEST_SUFFIX
  old = _read_manifest(manifest_path)
  output = fs.exists(path) or (fs.exists(chunk_dir) and any(
      n.endswith(".jsonl") for n in fs.listdir(chunk_dir)))
  if old is None and not output:
    return True
  diff = ["no manifest (an older flan_jax wrote it)"] if old is None else _differences(old,
                                                                                         record)
  if not diff:
    return False
  if not output:  # A manifest of a run that wrote nothing: nothing to mix.
    return True
  if not restart:
    raise InferOutputError(
        f"{path} (or its chunks) was written by a different run; {'; '.join(diff)}. Use another "
        "INFER_OUTPUT_DIR, or pass --gin.infer_script.infer.restart=True to discard that "
        "output and redo the task")
  announce(f"restart: discarding {path} and its chunks ({'; '.join(diff)})")
  if jax.process_index() == 0:
    if fs.exists(path):
      fs.remove(path)
    if fs.exists(chunk_dir):
      fs.rmtree(chunk_dir)
  return True


def infer_task(task: Any, inference: eval_lib.Inference, output_dir: str, split: str,
               lengths: Mapping[str, int], chunk_size: int, scores: bool = False,
               use_cached: bool = False, shard_id: int = 0, num_shards: int = 1,
               progress: bool = True, num_examples: int | None = None,
               record: Mapping[str, Any] | None = None, restart: bool = False
               ) -> tuple[str, int]:
  """Writes ``task``'s JSONL (see the module docstring); returns (path, number of lines).
  ``record``: what else produced it (checkpoint, decoding), kept in its manifest."""
  path = output_path(output_dir, task.name, shard_id, num_shards)
  record = json.loads(json.dumps({  # As the manifest stores it (tuples are lists).
      "task": task.name, "split": split, "shard_id": shard_id, "num_shards": num_shards,
      "chunk_size": chunk_size, "num_examples": num_examples,
      "task_feature_lengths": dict(lengths), "scores": scores, **dict(record or {})},
      sort_keys=True))
  with model_checkpoint.locked(output_dir, f"flan-jax infer of {fs.basename(path)}",
                               lock_file=fs.basename(path) + LOCK_SUFFIX,
                               what="INFER_OUTPUT_DIR"):
    return _infer_task_locked(task, inference, path, split, lengths, chunk_size, scores,
                              use_cached, shard_id, num_shards, progress, num_examples, record,
                              restart)


def _agreed(flag: bool) -> bool:
  """Process 0's ``flag`` on every process (each must take part in, or skip, the same work)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _infer_task_locked(task: Any, inference: eval_lib.Inference, path: str, split: str,
                       lengths: Mapping[str, int], chunk_size: int, scores: bool,
                       use_cached: bool, shard_id: int, num_shards: int, progress: bool,
                       num_examples: int | None, record: Mapping[str, Any], restart: bool
                       ) -> tuple[str, int]:
  writer = jax.process_index() == 0
  chunk_dir = f"{path}.chunks"
  fresh = _check_output(path, chunk_dir, record, restart)
  if _agreed(not fresh and fs.exists(path)):
    count = fs.read_text(path).count("\n")
    announce(f"{task.name}: {path} exists ({count} lines, the same run); skipped")
    return path, count
  if writer:
    fs.makedirs(chunk_dir)
    if fresh:
      fs.write_text(path + MANIFEST_SUFFIX, json.dumps(record, indent=2, sort_keys=True))
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
    if not _agreed(fs.exists(chunk_path)):
      lines = _chunk_lines(chunk, start, inference, vocabulary, scores)
      if writer:
        fs.write_text(chunk_path, "".join(lines))
    start += len(chunk)
    if bar is not None:
      bar.update(len(chunk))
  if bar is not None:
    bar.close()
  if writer:
    _join_chunks(chunk_dir, path, start)
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
          num_examples: int | None = None, restart: bool = False) -> dict[str, str]:
  """Writes every prediction of each task of ``mixture_or_task_name`` (its first
  ``num_examples`` per task when set); returns {task: path}. ``restart``: a task whose output a
  different run wrote (another checkpoint, chunk size, ...) is redone instead of refused."""
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
  record = {"checkpoint": checkpoint_path, "checkpoint_step": step,
            "checkpoint_digest": checkpoint_digest(checkpoint_path, step),
            "decode_kwargs": dict(decode_kwargs or {}), "dtype": dtype}
  out = {}
  for task in tasks:
    cached = data.resolve_use_cached(task.name, use_cached)
    out[task.name], _ = infer_task(task, inference, output_dir, split, task_feature_lengths,
                                   chunk_size, scores, cached, shard_id, num_shards, progress,
                                   num_examples, record, restart)
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
