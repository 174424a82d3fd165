"""Every use of seqio's Evaluator, private parts included, in one place.

seqio's ``Evaluator`` takes its loggers only in the constructor, keeps a failed metrics future
and has no way to cut a task to its first questions; flan_jax needs all three (one evaluator
serves many checkpoints, training evaluates periodically, ``num_examples`` counts questions).
The private attributes used for that (``_cached_task_datasets``, ``_cached_model_datasets``,
``_metrics_future``, ``_loggers``) are touched here and nowhere else; a seqio upgrade that
renames them breaks this module's tests (tests/test_eval.py) first.
"""

from __future__ import annotations

import collections
import json
import logging
import tempfile
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import seqio

from flan_jax.data import registry
from flan_jax.evaluation.report import METRIC_FILE_SUFFIX
from flan_jax.storage import fs
from flan_jax.training import batches as data


def make_evaluator(mixture_or_task_name: str, split: str, log_dir: str | None,
                   task_feature_lengths: Mapping[str, int] | None = None,
                   num_examples: int | None = None, use_cached: bool | None = False,
                   seed: int = 42,
                   write_n_results: int | None = None) -> Any:
  """A ``seqio.Evaluator`` over unpacked prefix-LM features with JSON + Python logging.

  ``num_examples`` counts examples, and for rank classification *questions* with all their
  options (seqio's own ``num_examples`` counts rows, which would cut a question's options).
  """
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  use_cached = data.resolve_use_cached(mixture_or_task_name, use_cached)
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)  # Loggers come from set_log_dir: no "will not log" line.
  try:
    evaluator = seqio.Evaluator(
        mixture_or_task_name, feature_converter=seqio.DecoderFeatureConverter(pack=False),
        eval_split=split, use_cached=use_cached, seed=seed,
        sequence_length=dict(task_feature_lengths) if task_feature_lengths else None)
  finally:
    absl_logger.setLevel(level)
  if log_dir:
    set_log_dir(evaluator, log_dir, write_n_results)
  if num_examples:
    _take_examples(evaluator, num_examples)
  return evaluator


def _take_examples(evaluator: Any, n: int) -> None:
  """Keeps each task's first ``n`` examples (rank classification: the rows of its first ``n``
  questions) in the evaluator's cached task and model datasets, which stay index-aligned."""
  for name, task_ds in list(evaluator._cached_task_datasets.items()):
    rows = n
    if "idx" in task_ds.element_spec:  # Rows come question by question (idx[0] ascending).
      rows = sum(1 for ex in task_ds.as_numpy_iterator()
                 if int(np.asarray(ex["idx"]).reshape(-1)[0]) < n)
    evaluator._cached_task_datasets[name] = task_ds.take(rows)
    evaluator._cached_model_datasets[name] = evaluator._cached_model_datasets[name].take(rows)


def chance_accuracy(evaluator: Any) -> dict[str, float]:
  """Per rank-classification task, the expected accuracy of a uniform random pick (x100):
  the mean over questions of (#correct options / #options)."""
  out = {}
  for name, ds in evaluator.cached_task_datasets.items():
    if "is_correct" not in ds.element_spec or "idx" not in ds.element_spec:
      continue
    groups: dict[int, list[bool]] = collections.defaultdict(list)
    for ex in ds.as_numpy_iterator():
      groups[int(np.asarray(ex["idx"]).reshape(-1)[0])].append(bool(ex["is_correct"]))
    if groups:
      out[name] = 100.0 * float(np.mean([np.mean(v) for v in groups.values()]))
  return out


def run_evaluator(evaluator: Any, inference: Any, step: int | None = None
                  ) -> dict[str, dict[str, float]]:
  """Runs every task; ``{task: {metric: value}}`` on process 0 (``{}`` elsewhere)."""
  if not evaluator.eval_tasks:
    return {}
  try:
    future, _ = evaluator.evaluate(compute_metrics=jax.process_index() == 0, step=step,
                                   predict_fn=inference.predict_fn, score_fn=inference.score_fn)
    metrics = future.result() or {}
    _upload_logs(evaluator)
  except Exception:
    # seqio keeps a failed metrics future and re-raises it at the next evaluate(): forget it, so
    # one failed evaluation (e.g. in training) does not fail all later ones.
    evaluator._metrics_future = None
    raise
  return {task: {k: float(getattr(v, "value", v)) for k, v in values.items()
                 if np.ndim(getattr(v, "value", v)) == 0}
          for task, values in metrics.items()}


def set_log_dir(evaluator: Any, log_dir: str, write_n_results: int | None = None) -> None:
  """Points the evaluator's loggers at ``log_dir`` (one evaluator serves several checkpoints:
  its cached datasets are reused; seqio only takes loggers in the constructor): t5x's three,
  Python logging, TensorBoard summaries (``log_dir/<task>/``) and JSONL (every prediction unless
  ``write_n_results`` caps them)."""
  if jax.process_index() != 0:
    return
  fs.makedirs(log_dir)
  loggers = getattr(evaluator, "_flan_jax_loggers", {})
  if log_dir not in loggers:  # One TensorBoard writer per directory (its event file).
    # seqio's loggers write through TensorFlow's gfile, outside flan_jax's path layer: for an
    # object-store log_dir they write a local temporary directory, copied there after each
    # evaluation (_upload_logs) and deleted with the evaluator.
    stage = tempfile.TemporaryDirectory(prefix="flan_jax-seqio-") if fs.is_remote(log_dir) else None
    local = log_dir if stage is None else stage.name
    if stage is not None:  # Earlier runs' metric rows: kept (a step evaluated again: replaced).
      for name in fs.listdir(log_dir) if fs.isdir(log_dir) else []:
        if name.endswith(METRIC_FILE_SUFFIX):
          fs.write_bytes(fs.join(local, name), fs.read_bytes(fs.join(log_dir, name)))
    loggers[log_dir] = (seqio.PyLoggingLogger(local), TensorBoardLogger(local),
                        JSONLogger(local, write_n_results=write_n_results), stage)
    evaluator._flan_jax_loggers = loggers
  evaluator._loggers = loggers[log_dir][:3]
  evaluator._flan_jax_log_dir = log_dir


class TensorBoardLogger(seqio.TensorBoardLogger):
  """seqio's ``TensorBoardLogger`` (``<task>/events.out.tfevents.*``), leaving no event file it
  created but could not write (a full disk fails TensorFlow's writer after creating the file)."""

  def __call__(self, task_name: str, *args: Any, **kwargs: Any) -> None:
    task_dir = fs.join(self.output_dir, task_name)

    def events() -> set[str]:
      names = fs.listdir(task_dir) if fs.isdir(task_dir) else []
      return {n for n in names if n.startswith("events.out.tfevents")}

    before = events()
    try:
      super().__call__(task_name, *args, **kwargs)
    except Exception:
      for name in events() - before:
        fs.remove(fs.join(task_dir, name))
      raise


class JSONLogger(seqio.JSONLogger):
  """seqio's ``JSONLogger`` (``<task>-metrics.jsonl`` rows, ``<task>-<step>.jsonl``
  predictions) whose files appear whole or not at all: written into a temporary directory beside
  them, then renamed into place (an interrupted or disk-full evaluation leaves no partial file).
  A step evaluated again replaces its metrics row (seqio would append a duplicate)."""

  def __call__(self, task_name: str, step: int | None, metrics: Mapping[str, Any],
               dataset: Any, inferences: Any, targets: Any) -> None:
    final = self.output_dir
    stage = fs.temporary_name(fs.join(final, ".seqio"))
    fs.makedirs(stage)
    try:
      rows = fs.join(final, f"{task_name}{METRIC_FILE_SUFFIX}")
      if metrics and fs.exists(rows):
        fs.write_text(fs.join(stage, fs.basename(rows)), "".join(
            line for line in fs.read_text(rows).splitlines(keepends=True)
            if _row_step(line) != (-1 if step is None else step)))
      self.output_dir = stage
      super().__call__(task_name, step, metrics, dataset, inferences, targets)
      for name in fs.listdir(stage):
        fs.move_file(fs.join(stage, name), fs.join(final, name))
    finally:
      self.output_dir = final
      fs.rmtree(stage)


def _row_step(line: str) -> Any:
  """The ``step`` of a metrics row (None for a line that is not a JSON object)."""
  try:
    return json.loads(line).get("step")
  except (ValueError, AttributeError):
    return None


def _upload_logs(evaluator: Any) -> None:
  """Copies the staged seqio logs of an object-store log dir there (see :func:`set_log_dir`)."""
  log_dir = getattr(evaluator, "_flan_jax_log_dir", None)
  stage = None if log_dir is None else evaluator._flan_jax_loggers[log_dir][3]
  if stage is not None:
    fs.copy_tree_from_local(stage.name, log_dir)
