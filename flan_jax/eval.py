r"""Evaluation entry point with t5x's eval.py conventions, on ``seqio.Evaluator``.

    python -m flan_jax.eval --gin_file=gin/runs/eval.gin \
      --gin.MIXTURE_OR_TASK_NAME="'demo_heldout_nli_eval'" \
      --gin.CHECKPOINT_PATH="'demo_out/model'" --gin.EVAL_OUTPUT_DIR="'demo_out/eval'"

Each task is run through a ``seqio.Evaluator`` (``DecoderFeatureConverter(pack=False)``) with the
model functions t5x gives it: ``score_fn`` (rank classification; :mod:`flan_jax.inference.scoring`,
with
the context encoded once per question) and ``predict_fn`` (greedy or sampled decoding with the
KV cache; :mod:`flan_jax.inference.decoding`). Both follow t5x's ``get_infer_fn`` contract: they
take the
enumerated dataset, cut it into global batches padded with copies of the first unit under index
−1 (dropped again), give every process its slice of each global batch (per-host sharding), run
the partitioned step on the mesh, gather the outputs to every host and return ``[(index,
output)]``. Metrics are computed on process 0. With ``dev_split`` the same tasks are also scored
on the dev split to pick each dataset's best template, and ``baselines`` (label -> checkpoint)
are evaluated alongside; the report (:mod:`flan_jax.evaluation.report`) lands in
``EVAL_OUTPUT_DIR``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np

from flan_jax.data import registry
from flan_jax.evaluation.seqio_glue import (  # noqa: F401  (re-exported: train, tests)
  chance_accuracy,
  make_evaluator,
  run_evaluator,
  set_log_dir,
)
from flan_jax.inference import batching, scoring
from flan_jax.interop import loading
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.parallel import partitioning
from flan_jax.parallel.console import announce
from flan_jax.storage import fs

REQUIRED_MACROS = ("MIXTURE_OR_TASK_NAME", "CHECKPOINT_PATH", "EVAL_OUTPUT_DIR")


# --- model loading ----------------------------------------------------------------------------


def load_model(checkpoint_path: str, mesh: jax.sharding.Mesh, rules: Any,
               dtype: str | None = None) -> tuple[DecoderConfig, Any, int, bool]:
  """(config, params sharded on ``mesh``, step, prefix_lm) of any model directory
  (:func:`flan_jax.interop.loading.load_model`)."""
  loaded = loading.load_model(
      checkpoint_path, dtype=dtype,
      shardings=lambda config: partitioning.param_shardings(config, mesh, rules))
  return loaded.config, loaded.params, loaded.step, loaded.prefix_lm


# --- t5x-style inference over global batches --------------------------------------------------


def _local_rows(batch_size: int) -> slice:
  """This process's rows of a global batch (process p holds block p, as the data sharding)."""
  per = batch_size // jax.process_count()
  return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def _gather(x: jax.Array) -> np.ndarray:
  from jax.experimental import multihost_utils
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


class Inference:
  """Partitioned scoring and decoding of one model, as seqio ``score_fn`` / ``predict_fn``.

  ``batch_size`` counts questions (score) or rows (predict) per global batch; it is rounded up to
  a multiple of the mesh's data-parallel size.
  """

  def __init__(self, config: DecoderConfig, params: Any, mesh: jax.sharding.Mesh, rules: Any,
               batch_size: int = 32, prefix_lm: bool = True, max_decode_length: int = 64,
               eos_id: int = 1, decode_kwargs: Mapping[str, Any] | None = None,
               progress: bool = False, on_task_done: Callable[[], None] | None = None):
    self.config, self.params, self.mesh, self.rules = config, params, mesh, rules
    replicas = partitioning.data_parallel_size(mesh)
    replicas = max(replicas, jax.process_count())
    self.batch_size = -(-batch_size // replicas) * replicas
    self.prefix_lm = prefix_lm
    self.max_decode_length = max_decode_length
    self.eos_id = eos_id
    self.decode_kwargs = dict(decode_kwargs or {})
    self.progress = progress and jax.process_index() == 0
    self.on_task_done = on_task_done or (lambda: None)
    self._score = partitioning.partition(
        functools.partial(self._score_step, config, prefix_lm), mesh, rules)
    self._decode = None

  @staticmethod
  def _score_step(config, prefix_lm, params, batch):
    return scoring.shared_option_scores(config, params, batch["context"],
                                        batch["context_length"], batch["options"],
                                        batch["option_length"], prefix_lm)[0]

  def _run(self, step: Callable, units: Sequence[Any], pack: Callable[[list[Any]], dict],
           desc: str) -> list[np.ndarray]:
    """Outputs of ``step(params, global_batch)`` for every unit, in unit order."""
    outputs: list[np.ndarray | None] = [None] * len(units)
    batches = list(batching.padded_batches(len(units), self.batch_size))
    if self.progress:
      import tqdm
      batches = tqdm.tqdm(batches, desc=desc, unit="batch", leave=False)
    rows = _local_rows(self.batch_size)
    for idx in batches:
      chosen = [units[i] for i in batching.filled(idx)]  # Padding: copies of the first unit.
      arrays = pack(chosen)  # Same shapes on every host: built from the global batch.
      local = {k: v[rows] for k, v in arrays.items()}
      out = _gather(step(self.params, partitioning.host_local_to_global(local, self.mesh)))
      for row, i in enumerate(idx):
        if i != batching.PAD:
          outputs[i] = out[row]
    return outputs  # type: ignore[return-value]

  def score_fn(self, ds: Any) -> list[tuple[int, float]]:
    """seqio score_fn: enumerated rank-classification rows -> [(index, log-likelihood)]."""
    items = scoring.group_rows(ds.as_numpy_iterator())
    order = sorted(range(len(items)), key=lambda i: -len(items[i].context))  # Longest first.
    items = [items[i] for i in order]
    scores = self._run(self._score, items, scoring.pack_items, "score")
    self.on_task_done()
    return [(index, float(s)) for it, row in zip(items, scores, strict=True)
            for index, s in zip(it.rows, row[:len(it.rows)], strict=True)]

  def predict_fn(self, ds: Any) -> list[tuple[int, np.ndarray]]:
    """seqio predict_fn: enumerated rows -> [(index, generated ids)] as t5x returns them: every
    row ``max_decode_length`` long, the ids up to and including EOS followed by 0 padding
    (seqio's Evaluator stacks them with ``np.array``, and ``vocab.decode`` cuts at EOS)."""
    from flan_jax.inference import decoding
    rows = list(ds.as_numpy_iterator())
    if not rows:
      return []
    prompts = decoding.feature_prompts(
        {k: np.stack([features[k] for _, features in rows]) for k in rows[0][1]})
    if self._decode is None:
      kwargs = dict(max_new_tokens=self.max_decode_length, eos_id=self.eos_id,
                    bidirectional_prompt=self.prefix_lm, **self.decode_kwargs)

      def step(params, batch):
        return decoding.decode(self.config, params, batch["tokens"], batch["lengths"],
                               rng=jax.random.key(0), **kwargs)["tokens"]

      self._decode = partitioning.partition(step, self.mesh, self.rules)

    def pack(chunk):
      tokens, lengths = decoding.left_pad(chunk, length=batching.round_up(
          max(len(p) for p in chunk), 16))
      return {"tokens": tokens, "lengths": lengths}

    out = self._run(self._decode, prompts, pack, "decode")
    self.on_task_done()
    return [(int(index), pad_prediction(tokens, self.max_decode_length, self.eos_id))
            for (index, _), tokens in zip(rows, out, strict=True)]


def pad_prediction(tokens: Sequence[int], length: int, eos_id: int = 1) -> np.ndarray:
  """Generated ids cut at the first EOS (kept) and 0-padded to ``length`` (t5x's decodes)."""
  from flan_jax.inference import decoding
  ids = decoding.until_eos(tokens, eos_id)[:length]
  if len(ids) < length:
    ids.append(eos_id)
  out = np.zeros(length, np.int32)
  out[:len(ids)] = ids
  return out


# --- evaluators -------------------------------------------------------------------------------


def checkpoints_to_evaluate(checkpoint_path: str, mode: str, done: set[int] = frozenset()
                            ) -> list[str]:
  """The checkpoint paths that t5x's restore ``mode`` names: ``'latest'``/``'specific'`` the
  path itself; ``'all'`` every ``checkpoint_<step>`` of a model dir not in ``done``, by step."""
  if mode in ("latest", "specific"):
    return [checkpoint_path]
  if mode != "all":
    raise ValueError(f"MODE must be 'latest', 'specific' or 'all' (t5x RestoreCheckpointConfig), "
                     f"got {mode!r}")
  model_dir, step = model_checkpoint.split_step_dir(checkpoint_path)
  if step is not None:
    raise ValueError(f"MODE='all' evaluates every checkpoint of a model dir; {checkpoint_path} is "
                     f"one checkpoint: pass {model_dir} (or use MODE='specific')")
  return [fs.join(model_dir, f"checkpoint_{s}") for s in model_checkpoint.steps(model_dir)
          if s not in done]


def evaluate(mixture_or_task_name: str = gin.REQUIRED, checkpoint_path: str = gin.REQUIRED,
             output_dir: str = gin.REQUIRED, split: str = "test",
             dev_split: str | None = "validation",
             baselines: Mapping[str, str] | None = None,
             task_feature_lengths: Mapping[str, int] | None = None, batch_size: int = 32,
             num_examples: int | None = None, dev_num_examples: int | None = None,
             max_decode_length: int = 64, decode_kwargs: Mapping[str, Any] | None = None,
             use_cached: bool | None = False, seed: int = 42, dtype: str | None = None,
             mesh: str = "data=-1,model=1",
             dcn_mesh: str | None = None, report: bool = True, progress: bool = True,
             partitioning_rules: str = "1d", json_write_n_results: int | None = None,
             mode: str = "latest", wait_for_checkpoints_s: float | None = None,
             poll_s: float = 10.0) -> dict[str, Any]:
  """Evaluates ``checkpoint_path`` (and ``baselines``) on ``split`` (+ ``dev_split``).

  Writes seqio's logs (Python log, TensorBoard summaries, JSONL of every prediction unless
  ``json_write_n_results`` caps them) under ``output_dir/<label>/<split>/``, ``metrics.json``
  and, with ``report``, ``report.{md,json,png}``. ``mode='all'`` (t5x) evaluates every
  checkpoint of the model dir ``checkpoint_path`` (the report shows the latest); with
  ``wait_for_checkpoints_s`` it then polls every ``poll_s`` seconds for new checkpoints of a
  running training job and stops once none appeared for that long. Returns ``{"results":
  {label: {split: {task: {metric: value}}}}, "steps": {step: {split: ...}}, "chance": {...},
  "paths": {...}}``.
  """
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  device_mesh = partitioning.create_mesh(mesh, dcn=dcn_mesh)  # dcn_mesh: as train's DCN_MESH.
  rules = partitioning.logical_axis_rules(partitioning_rules, device_mesh.axis_names)
  checkpoints_to_evaluate(checkpoint_path, mode)  # Bad modes fail before any data is read.
  models = {"model": checkpoint_path, **dict(baselines or {})}
  evaluators = _split_evaluators(mixture_or_task_name, split, dev_split, task_feature_lengths,
                                 num_examples, dev_num_examples, use_cached, seed)
  results: dict[str, dict[str, dict]] = {}
  steps: dict[int, dict[str, dict]] = {}
  bar = None
  if progress and jax.process_index() == 0:
    import tqdm
    bar = tqdm.tqdm(total=0, desc="eval", unit="task", dynamic_ncols=True)

  def run_model(label: str, path: str) -> tuple[int, dict[str, dict]]:
    config, params, step, prefix_lm = load_model(path, device_mesh, rules, dtype)
    announce(f"evaluating {label}: {path} (step {step})")
    inference = Inference(config, params, device_mesh, rules, batch_size, prefix_lm,
                          max_decode_length, decode_kwargs=decode_kwargs,
                          on_task_done=bar.update if bar is not None else None)
    return step, _run_splits(evaluators, inference, step, fs.join(output_dir, label),
                             json_write_n_results, bar, label)

  for label, path in models.items():
    if label != "model":
      results[label] = run_model(label, path)[1]
    else:
      results["model"] = _follow_checkpoints(
          path, mode, wait_for_checkpoints_s, poll_s, lambda c: run_model("model", c), steps)
  if bar is not None:
    bar.close()
  return _outputs(output_dir, models, split, dev_split, results, steps,
                  chance_accuracy(evaluators[split]), report)


def _split_evaluators(mixture_or_task_name: str, split: str, dev_split: str | None,
                      task_feature_lengths: Mapping[str, int] | None, num_examples: int | None,
                      dev_num_examples: int | None, use_cached: bool | None,
                      seed: int) -> dict[str, Any]:
  """{split: seqio.Evaluator} for ``split`` (which must have tasks) and ``dev_split``."""
  splits = [split] + ([dev_split] if dev_split else [])
  evaluators = {
      s: make_evaluator(mixture_or_task_name, s, None, task_feature_lengths,
                        num_examples if s == split else dev_num_examples, use_cached, seed)
      for s in splits}
  if not evaluators[split].eval_tasks:
    raise ValueError(f"{mixture_or_task_name!r} has no task with a {split!r} split and metrics")
  return evaluators


def _outputs(output_dir: str, models: Mapping[str, str], split: str, dev_split: str | None,
             results: dict[str, dict], steps: dict[int, dict], chance: Mapping[str, float],
             report: bool) -> dict[str, Any]:
  """:func:`evaluate`'s return value; on process 0 also ``metrics.json`` (and the report)."""
  out: dict[str, Any] = {"results": results, "steps": steps, "chance": chance, "paths": {}}
  if jax.process_index() != 0:
    return out
  out["paths"]["metrics"] = _write_metrics(output_dir, {
      "checkpoints": models, "split": split, "dev_split": dev_split, "results": results,
      "steps": {str(k): v for k, v in steps.items()}, "chance": chance})
  if report:
    out["paths"].update(write_report(results, chance, split, dev_split, output_dir))
  return out


def _run_splits(evaluators: Mapping[str, Any], inference: Inference, step: int, log_dir: str,
                json_write_n_results: int | None, bar: Any, label: str) -> dict[str, dict]:
  """``{split: {task: metrics}}`` of one model, seqio's logs under ``log_dir/<split>``."""
  if bar is not None:
    bar.total += sum(len(e.eval_tasks) for e in evaluators.values())
    bar.refresh()
  by_split = {}
  for s, evaluator in evaluators.items():
    if bar is not None:
      bar.set_postfix_str(f"{label}/{s}")
    set_log_dir(evaluator, fs.join(log_dir, s), json_write_n_results)
    by_split[s] = run_evaluator(evaluator, inference, step)
  return by_split


def _follow_checkpoints(path: str, mode: str, wait_s: float | None, poll_s: float,
                        run: Callable[[str], tuple[int, dict]], steps: dict[int, dict]) -> dict:
  """Runs ``run`` on each checkpoint of ``path`` that ``mode`` selects, filling ``steps``; with
  ``wait_s`` (mode 'all') polls for new ones until none appeared for that long. Returns the
  results of the last one. In mode 'all' an unusable checkpoint is skipped with a line (tried
  again at the next poll: in an object store one may still be being written)."""
  paths = checkpoints_to_evaluate(path, mode)
  if not paths and not wait_s:
    raise FileNotFoundError(f"no checkpoint_<step> directory in {path}; train first")
  latest, last_new, skipped = None, time.time(), {}
  while True:
    for checkpoint in paths:
      try:
        step, latest = run(checkpoint)
      except model_checkpoint.CheckpointError as e:
        if mode != "all":
          raise
        if skipped.get(checkpoint) != str(e):
          model_checkpoint.warn(f"skipping {checkpoint}: {e}")
        skipped[checkpoint] = str(e)
        continue
      steps[step] = latest
      last_new = time.time()
    if mode != "all" or not wait_s:
      break
    if time.time() - last_new > wait_s:
      announce(f"no new checkpoint in {path} for {wait_s:g}s; done")
      break
    time.sleep(poll_s)
    paths = checkpoints_to_evaluate(path, mode, set(steps))
  if latest is None and skipped:
    raise model_checkpoint.CheckpointError(f"no usable checkpoint in {path}: "
                                           + "; ".join(skipped.values()))
  if latest is None:
    raise FileNotFoundError(f"no checkpoint_<step> directory appeared in {path} within "
                            f"{wait_s:g}s")
  return latest


def _write_metrics(output_dir: str, metrics: Mapping[str, Any]) -> str:
  """``output_dir/metrics.json``; returns its path."""
  fs.makedirs(output_dir)
  path = fs.join(output_dir, "metrics.json")
  fs.write_text(path, json.dumps(metrics, indent=2, sort_keys=True))
  return path


def write_report(results: Mapping[str, Mapping[str, Mapping]], chance: Mapping[str, float],
                 split: str, dev_split: str | None, output_dir: str) -> dict[str, str]:
  """The paper-style report of ``results["model"]`` with the other labels as baselines, over
  the tasks of flan_jax datasets (other seqio tasks have metrics.json only)."""
  from flan_jax.data.spec import TASK_TO_DATASET
  from flan_jax.evaluation import report as report_lib

  def known(by_task: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if by_task is None else {t: v for t, v in by_task.items() if t in TASK_TO_DATASET}

  if not known(results["model"][split]):
    announce("no paper-style report: no task belongs to a flan_jax dataset (see metrics.json)")
    return {}
  by_dataset: dict[str, float] = {}
  for task, value in chance.items():
    by_dataset.setdefault(TASK_TO_DATASET.get(task, task), value)
  rep = report_lib.build_report(
      known(results["model"][split]),
      dev_results=known(results["model"].get(dev_split)) if dev_split else None,
      baselines={label: known(r[split]) for label, r in results.items() if label != "model"},
      chance=by_dataset)
  return report_lib.write_report(rep, output_dir)


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
  """``python -m flan_jax.eval`` / ``flan-jax eval`` (``argv``: flags only); prints the outputs."""
  from flan_jax import entry

  def show(out: dict[str, Any]) -> None:
    for name, path in out["paths"].items():
      print(f"{name}: {path}")

  entry.run("flan-jax eval", argv, REQUIRED_MACROS, evaluate, show)


def run(argv: Sequence[str]) -> dict[str, Any]:
  """Python API (notebooks): the command line's flags; returns :func:`evaluate`'s result and
  raises errors (no SystemExit)."""
  from flan_jax import entry
  return entry.call("flan-jax eval", argv, REQUIRED_MACROS, evaluate)


if __name__ == "__main__":
  from flan_jax import eval as _eval_module
  _eval_module.main()
