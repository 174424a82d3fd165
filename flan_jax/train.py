r"""Fine-tuning entry point with t5x's command line and gin conventions.

    python -m flan_jax.train --gin_file=gin/runs/demo.gin --gin.MODEL_DIR="'/tmp/demo'"

Flags: ``--gin_file`` (repeatable, later files override earlier ones), ``--gin.NAME=VALUE``
(rewritten to ``--gin_bindings=NAME = VALUE``), ``--gin_bindings``, ``--gin_search_paths``
(default: cwd and the repository root) and ``--tfds_data_dir``. Run files bind
``train_script.train.*`` to the t5x macros of ``gin/runs/finetune.gin``.

``MODEL_DIR`` gets ``checkpoint_<step>/{state,data}`` (orbax; ``state`` = step, params, optimizer
state; ``data`` = JSON with the data position and seed), ``config.gin`` (operative config),
``model_config.json``, ``train_metrics.jsonl`` and TensorBoard summaries in ``train/`` (clu
metric writers: loss, learning rate, tokens/s, MFU, ...). Restore precedence: the latest
*good* checkpoint in ``MODEL_DIR`` (complete, checksums verified, arrays readable; bad ones are
set aside with the reason -- see :mod:`flan_jax.training.checkpoints`; resume: the data iterator
skips
the batches already consumed, the model config must equal the checkpoint's unless
``ALLOW_CONFIG_CHANGE``), else ``INITIAL_CHECKPOINT_PATH`` (a flan_jax model dir or
``checkpoint_<step>`` dir: params and its step, fresh optimizer state; or a Hugging Face
directory with ``config.json`` and safetensors: params, step 0), else random init.
``TRAIN_STEPS`` is the absolute final step; ``TRAIN_STEPS_RELATIVE`` (when set) makes it the
initial checkpoint's step + that many, also after a crash and resume. On SIGTERM (preemption)
the loop finishes the current step, logs it, saves a checkpoint at that step, waits for the save
and returns (exit code 0). A non-finite loss
or gradient norm stops the run with :class:`NonFiniteLossError` naming the step, after saving the
step's host-local batch to ``MODEL_DIR/nonfinite_batch_step_<N>.npz``; no checkpoint is written
from then on (unless ``skip_nonfinite_updates``, which drops such updates and goes on).

Multi-host (t5x flags): ``--coordinator_address=HOST:PORT --process_count=N --process_index=I``
call ``jax.distributed.initialize`` first (CPU collectives via gloo). The global batch depends on
``num_data_shards`` (gin ``NUM_DATA_SHARDS``; None = process count), not on the process count,
see :mod:`flan_jax.training.batches`; the shard count is kept in the checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import gin
import jax
import numpy as np

from flan_jax import model_info
from flan_jax.config import gin_utils
from flan_jax.config.gin_utils import REPO_ROOT, parse_gin  # noqa: F401  (re-exported)
from flan_jax.data import registry
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint  # noqa: F401  (re-exported)
from flan_jax.parallel import partitioning
from flan_jax.training import batches as data_lib
from flan_jax.training import checkpoints, losses
from flan_jax.training import step as trainer

REQUIRED_MACROS = ("MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "TRAIN_STEPS",
                   "MODEL_CONFIG")
METRICS_FILE = "train_metrics.jsonl"
SUMMARY_DIR = "train"  # TensorBoard event files, under MODEL_DIR.
NONFINITE_BATCH = "nonfinite_batch_step_{step}"


# --- checkpoints (the machinery lives in flan_jax.training.checkpoints)
# ---------------------------------

is_complete_checkpoint = checkpoints.is_complete_checkpoint
set_aside_incomplete = checkpoints.set_aside_incomplete
config_differences = checkpoints.config_differences
initial_step = checkpoints.initial_step
restore_initial_params = checkpoints.restore_initial_params


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


# --- validation -------------------------------------------------------------------------------


def check_required_macros(names: Sequence[str] = REQUIRED_MACROS) -> None:
  """Raises ValueError naming every required macro of a training run that is unset."""
  gin_utils.check_required_macros(names)


def _validate(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
              batch_size: int, num_microbatches: int) -> None:
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  check_tfds_data(mixture_or_task_name)
  if set(task_feature_lengths) not in ({"inputs", "targets"}, {"targets"}):
    raise checkpoints.BadValueError(
        "TASK_FEATURE_LENGTHS must be {'inputs': L1, 'targets': L2} (prefix LM) or "
        f"{{'targets': L}} (plain LM), got {dict(task_feature_lengths)}")
  if batch_size % max(num_microbatches, 1):
    raise checkpoints.BadValueError(
        f"BATCH_SIZE {batch_size} not divisible by NUM_MICROBATCHES {num_microbatches}; use a "
        f"multiple of {num_microbatches}")


def check_tfds_data(name: str) -> None:
  """Raises the project's :class:`~flan_jax.data.spec.MissingDataError` (naming the ``tfds
  build`` command) for the first TFDS dataset of ``name`` that is not prepared, before anything
  compiles (seqio would fail much later with a bare ``KeyError: splits is empty``)."""
  import seqio

  from flan_jax.data import spec as dataset_spec
  root = seqio.get_mixture_or_task(name)
  tasks = root.tasks if isinstance(root, seqio.Mixture) else [root]
  seen = set()
  for task in tasks:
    source = task.source
    if not isinstance(source, dataset_spec.TfdsSource) or source.tfds_dataset.name in seen:
      continue
    seen.add(source.tfds_dataset.name)
    try:
      prepared = bool(source.tfds_dataset.builder.info.splits)
    except Exception:  # noqa: BLE001 -- an unreadable dataset is not prepared either.
      prepared = False
    if not prepared:
      raise dataset_spec.MissingDataError(source.prepare_message())


# gin macro (or train_script.train parameter) -> (argument, minimum, may be None).
# TRAIN_STEPS(_RELATIVE) = 0: only initialise (from INITIAL_CHECKPOINT_PATH) and return, loudly.
_INT_VALUES = (("BATCH_SIZE", "batch_size", 1, False), ("TRAIN_STEPS", "train_steps", 0, True),
               ("TRAIN_STEPS_RELATIVE", "relative_steps", 0, True),
               ("CHECKPOINT_PERIOD", "checkpoint_period", 1, False),
               ("KEEP_CHECKPOINTS", "keep_checkpoints", 1, True),
               ("NUM_MICROBATCHES", "num_microbatches", 1, False),
               ("NUM_DATA_SHARDS", "num_data_shards", 1, True),
               ("train_script.train.log_period", "log_period", 1, False))


def _is_int(value: Any) -> bool:
  return isinstance(value, int | np.integer) and not isinstance(value, bool)


def validate_values(arguments: Mapping[str, Any]) -> None:
  """Checks the types and ranges of ``train``'s arguments before anything is created or
  compiled; :class:`flan_jax.training.checkpoints.BadValueError` names the value, what was expected
  and
  the fix."""
  bad = checkpoints.BadValueError
  for macro, name, minimum, optional in _INT_VALUES:
    value = arguments.get(name)
    if value is None and optional:
      continue
    if not _is_int(value):
      raise bad(f"{macro} must be an integer >= {minimum}, got {value!r} ({type(value).__name__});"
                f" e.g. --gin.{macro}={max(minimum, 8)}")
    if value < minimum:
      raise bad(f"{macro} must be >= {minimum}, got {value}; e.g. --gin.{macro}={max(minimum, 8)}")
  model_dir = arguments.get("model_dir")
  if not isinstance(model_dir, str) or not model_dir:
    raise bad(f"MODEL_DIR must be a directory path (a quoted string), got {model_dir!r}; e.g. "
              "--gin.MODEL_DIR=\"'/tmp/run'\"")
  if not isinstance(arguments.get("model_config"), DecoderConfig):
    raise bad(f"MODEL_CONFIG must be a DecoderConfig, got {arguments.get('model_config')!r}; "
              "include a model gin file, e.g. --gin_file=gin/models/tiny.gin")
  lengths = arguments.get("task_feature_lengths")
  if not isinstance(lengths, Mapping):
    raise bad(f"TASK_FEATURE_LENGTHS must be a dict, got {lengths!r}; e.g. "
              "--gin.TASK_FEATURE_LENGTHS=\"{'inputs': 256, 'targets': 64}\"")
  for key, value in lengths.items():
    if not _is_int(value) or value < 1:
      raise bad(f"TASK_FEATURE_LENGTHS[{key!r}] must be a positive integer (tokens), got "
                f"{value!r}; e.g. {{'inputs': 256, 'targets': 64}}")
  path = arguments.get("initial_checkpoint_path")
  if path is not None and not os.path.exists(path):
    raise bad(f"INITIAL_CHECKPOINT_PATH {path!r} does not exist; pass a flan_jax model dir, a "
              "checkpoint_<step> dir or a Hugging Face model dir (or None)")


def _holding_model_dir_lock(fn: Any) -> Any:
  """Runs ``train`` with its values validated and ``MODEL_DIR``'s lock held (see
  :func:`flan_jax.training.checkpoints.locked`); the signature stays ``train``'s (gin reads it)."""

  @functools.wraps(fn)
  def wrapper(*args: Any, **kwargs: Any) -> Any:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    validate_values(bound.arguments)
    with checkpoints.locked(bound.arguments["model_dir"], "flan-jax train"):
      return fn(*args, **kwargs)

  return wrapper


# --- training loop ----------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
  """Non-finite floats as JSON null (``NaN`` is not JSON)."""
  return value if not isinstance(value, float) or math.isfinite(value) else None


def _write_metrics(path: str, rows: list[dict]) -> None:
  """Appends one JSON line per row, flushed and fsynced (a kill never tears an earlier row)."""
  with open(path, "a") as f:
    for row in rows:
      f.write(json.dumps({k: _json_value(v) for k, v in row.items()}, allow_nan=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _truncate_metrics(path: str, last_step: int) -> None:
  """Drops rows logged after ``last_step`` by a run that died before its next checkpoint, and a
  torn (cut short) line, naming it in the log; the file is replaced atomically."""
  if jax.process_index() != 0 or not os.path.exists(path):
    return
  kept, torn = [], []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        torn.append(number)
        continue
      if row.get("step", 0) <= last_step:
        kept.append(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
  if torn:
    _announce(f"repaired {path}: dropped {len(torn)} torn line(s) (line {torn[0]}"
              f"{'' if len(torn) == 1 else ', ...'}) left by a run that was killed")
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)


def _announce(message: str) -> None:
  logging.info(message)
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


class _PreemptionFlag:
  """Set by a SIGTERM handler; see :func:`_catch_sigterm`."""

  def __init__(self) -> None:
    self.is_set = False

  def set(self, signum: int, frame: Any) -> None:
    del signum, frame
    self.is_set = True


@contextlib.contextmanager
def _catch_sigterm() -> Iterator[_PreemptionFlag]:
  """Yields a flag that a SIGTERM sets while the block runs; restores the previous handler.

  Handlers can only be installed from the main thread; elsewhere the flag never gets set.
  """
  flag = _PreemptionFlag()
  if threading.current_thread() is not threading.main_thread():
    yield flag
    return
  previous = signal.signal(signal.SIGTERM, flag.set)
  try:
    yield flag
  finally:  # ``None``: the previous handler was not installed from Python.
    signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _make_seed(random_seed: int | None) -> int:
  if random_seed is not None:
    return int(random_seed)
  from jax.experimental import multihost_utils
  seed = np.int32(time.time_ns() % (2**31 - 1))
  return int(multihost_utils.broadcast_one_to_all(seed))


# Dense bf16 peak FLOP/s per device, by a lower-case substring of ``device_kind`` (first match
# wins), from the one accelerator table (:data:`flan_jax.model_info.ACCELERATORS`, with sources).
# Models computing in float32 get far less than this.
PEAK_FLOPS_BY_DEVICE_KIND = model_info.PEAK_FLOPS_BY_DEVICE_KIND


def default_peak_flops_per_device(device_kind: str | None = None) -> float | None:
  """Peak bf16 FLOP/s of ``device_kind`` (default: the first device's), None when unknown/CPU."""
  kind = (jax.devices()[0].device_kind if device_kind is None else device_kind).lower()
  for key, flops in PEAK_FLOPS_BY_DEVICE_KIND:
    if key in kind:
      return flops
  return None


class NonFiniteLossError(checkpoints.ReportedError, FloatingPointError):
  """The loss or gradient norm of a step was NaN/Inf (the run stops; see ``train``)."""


def _nonfinite_text(loss: float, grad_norm: float) -> str:
  """Names what was non-finite: the loss, the gradient norm or both."""
  if not math.isfinite(loss) and not math.isfinite(grad_norm):
    return f"non-finite loss {loss} and grad norm {grad_norm}"
  if not math.isfinite(loss):
    return f"non-finite loss {loss} (grad norm {grad_norm} is finite)"
  return f"non-finite grad norm {grad_norm} (the loss, {loss:.6g}, is finite)"


def _save_nonfinite_batch(model_dir: str, step: int, batch: Mapping[str, np.ndarray]) -> str:
  """Writes this process's batch rows of ``step`` (other processes add ``.process_<i>``)."""
  name = NONFINITE_BATCH.format(step=step)
  if jax.process_index():
    name += f".process_{jax.process_index()}"
  path = os.path.join(model_dir, name + ".npz")
  np.savez(path, **batch)
  return path


def check_batch_divisibility(batch_size: int, num_microbatches: int,
                             axis_sizes: Mapping[str, int], mesh: str = "") -> None:
  """Each microbatch's rows must split evenly over the data-parallel (data, fsdp) axes."""
  micro = max(num_microbatches, 1)
  replicas = int(np.prod([n for a, n in axis_sizes.items() if a in ("data", "fsdp")]))
  if (batch_size % micro) == 0 and (batch_size // micro) % replicas == 0:
    return
  axes = ", ".join(f"{a}={n}" for a, n in axis_sizes.items() if a in ("data", "fsdp"))
  rows = batch_size // micro
  fit = math.gcd(rows, replicas) if batch_size % micro == 0 else 1
  model = axis_sizes.get("model", 1) * replicas // fit
  raise checkpoints.BadValueError(
      f"BATCH_SIZE {batch_size} ({micro} microbatch(es) of {batch_size / micro:g} rows) does not "
      f"split over the data-parallel mesh axes {axes} ({replicas} replicas) of mesh "
      f"{mesh or dict(axis_sizes)!r}; use BATCH_SIZE = {replicas * micro} (or another multiple "
      f"of {replicas * micro}), or a mesh whose data axis divides {rows}, e.g. "
      f"'data={fit},model={model}' (train_script.train.mesh)")


class TrainStep(NamedTuple):
  """The partitioned step ``train`` runs, with its optimizer, LR schedule and state shardings."""

  step_fn: Any
  tx: Any
  learning_rate: Any
  shardings: partitioning.TrainState


def build_train_step(config: DecoderConfig, device_mesh: jax.sharding.Mesh,
                     rules: partitioning.LogicalRules, *, train_steps: int | None,
                     optimizer: str = "adafactor", learning_rate: float = 1e-3,
                     schedule: str = "constant", warmup_steps: int = 0,
                     weight_decay: float = 0.0, grad_clip_norm: float | None = None,
                     skip_nonfinite_updates: bool = False, num_microbatches: int = 1,
                     loss_normalizing_factor: losses.Factor = "NUM_REAL_TARGET_TOKENS",
                     label_smoothing: float = 0.0, z_loss: float = 1e-4) -> TrainStep:
  """The jitted, sharded train step of :func:`train` (also lowered by :mod:`flan_jax.plan`)."""
  lr = trainer.make_schedule(schedule, learning_rate, warmup_steps, train_steps)
  param_specs = partitioning.param_mesh_specs(config, rules, dict(device_mesh.shape))
  tx = trainer.make_optimizer(optimizer, lr, weight_decay=weight_decay,
                              grad_clip_norm=grad_clip_norm,
                              skip_nonfinite_updates=skip_nonfinite_updates,
                              param_specs=param_specs)
  shardings = partitioning.train_state_shardings(config, tx, device_mesh, rules)
  step_fn = trainer.partitioned_train_step(
      trainer.make_train_step(config, num_microbatches, loss_normalizing_factor,
                              label_smoothing, z_loss, lr),
      shardings, device_mesh, rules)
  return TrainStep(step_fn, tx, lr, shardings)


@_holding_model_dir_lock
def train(model_dir: str = gin.REQUIRED, model_config: DecoderConfig = gin.REQUIRED,
          mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          train_steps: int | None = gin.REQUIRED, batch_size: int = 128,
          dropout_rate: float = 0.0,
          initial_checkpoint_path: str | None = None, use_cached_tasks: bool = False,
          random_seed: int | None = 0, checkpoint_period: int = 1000,
          keep_checkpoints: int | None = None, num_microbatches: int = 1,
          optimizer: str = "adafactor", learning_rate: float = 1e-3, schedule: str = "constant",
          warmup_steps: int = 0, weight_decay: float = 0.0, grad_clip_norm: float | None = None,
          loss_normalizing_factor: losses.Factor = "NUM_REAL_TARGET_TOKENS",
          label_smoothing: float = 0.0, z_loss: float = 1e-4, mesh: str = "data=-1,model=1",
          partitioning_rules: str = "1d",
          log_period: int = 10, progress: bool = True, async_checkpointing: bool = True,
          skip_nonfinite_updates: bool = False, num_data_shards: int | None = None,
          relative_steps: int | None = None,
          peak_flops_per_device: float | None = None, eval_period: int | None = None,
          eval_mixture_or_task_name: str | None = None, eval_split: str = "validation",
          eval_batch_size: int = 32, eval_num_examples: int | None = None,
          allow_config_change: bool = False,
          allow_nothing_to_do: bool = False) -> partitioning.TrainState:
  """Trains to step ``train_steps`` (absolute), resuming from ``model_dir`` when possible.

  ``random_seed=None`` draws a seed; it is stored in each checkpoint, so resume stays exact.
  ``relative_steps``: train to (initial checkpoint's step + relative_steps) instead.
  ``num_data_shards``: data shards of the global batch (None: the process count; a resumed run
  keeps its checkpoint's). ``peak_flops_per_device`` (None: looked up by device kind; on CPU the
  host's measured f32 matmul FLOP/s for all devices together) gives MFU = model FLOP/s / peak.
  ``eval_period``: every so many steps (and at the end) run ``seqio.Evaluator`` on
  ``eval_mixture_or_task_name`` / ``eval_split`` (:mod:`flan_jax.eval`: rank classification and
  decoding); metrics go to TensorBoard (``eval/<task>/<metric>``) and seqio's logs in
  ``MODEL_DIR/inference_eval``. ``partitioning_rules``: a name of
  :data:`flan_jax.parallel.partitioning.RULE_SETS` (``1d``, ``2d_params``, ``2d``, ``fsdp``).
  """
  _validate(mixture_or_task_name, task_feature_lengths, batch_size, num_microbatches)
  if eval_period and not eval_mixture_or_task_name:
    raise ValueError("EVAL_PERIOD needs EVAL_MIXTURE_OR_TASK_NAME (a mixture with eval metrics, "
                     "e.g. flan_heldout_nli_eval)")
  if eval_period:
    registry.get(eval_mixture_or_task_name)  # Unknown names fail before anything compiles.
  registry.check_vocab_size(mixture_or_task_name, model_config.vocab_size, "MIXTURE_OR_TASK_NAME")
  if eval_period:
    registry.check_vocab_size(eval_mixture_or_task_name, model_config.vocab_size,
                              "EVAL_MIXTURE_OR_TASK_NAME")
  if train_steps is None and relative_steps is None:
    raise checkpoints.BadValueError("set TRAIN_STEPS (absolute) or TRAIN_STEPS_RELATIVE")
  config = model_config.replace(dropout_rate=dropout_rate)
  device_mesh = partitioning.create_mesh(mesh)
  rules = partitioning.logical_axis_rules(partitioning_rules, device_mesh.axis_names)
  check_batch_divisibility(batch_size, num_microbatches, dict(device_mesh.shape), mesh)
  if initial_checkpoint_path:
    foreign = checkpoints.foreign_checkpoint(initial_checkpoint_path)
    if foreign:
      raise checkpoints.CheckpointError(f"INITIAL_CHECKPOINT_PATH: {foreign}")
  checkpoints.check_writable_dir(model_dir)
  set_aside_incomplete(model_dir)

  def setup(path: str | None) -> tuple[dict, int, int, int, TrainStep, Any]:
    """(data meta, first step, final step, data shards, step parts, restored state or None)
    for resuming from the checkpoint dir ``path`` (None: a fresh start)."""
    meta = checkpoints.read_data(path) if path else {}
    changed = checkpoints.check_resume_config(model_dir, path, config, allow_config_change)
    # From the meta when resuming: the initial checkpoint may be gone by then.
    first = int(meta["initial_step"] if "initial_step" in meta
                else initial_step(initial_checkpoint_path))
    final = first + relative_steps if relative_steps is not None else train_steps
    shards = int(meta.get("num_data_shards", num_data_shards or jax.process_count()))
    if num_data_shards is not None and num_data_shards != shards:
      raise checkpoints.BadValueError(
          f"NUM_DATA_SHARDS={num_data_shards} but {path} was trained with {shards} (the data "
          "order would change); leave it unset")
    parts = build_train_step(
        config, device_mesh, rules, train_steps=final, optimizer=optimizer,
        learning_rate=learning_rate, schedule=schedule, warmup_steps=warmup_steps,
        weight_decay=weight_decay, grad_clip_norm=grad_clip_norm,
        skip_nonfinite_updates=skip_nonfinite_updates, num_microbatches=num_microbatches,
        loss_normalizing_factor=loss_normalizing_factor, label_smoothing=label_smoothing,
        z_loss=z_loss)
    restored = None
    if path:
      abstract = checkpoints.abstract_train_state(config, parts.tx, parts.shardings)
      try:
        restored = checkpoints.restore_train_state(path, abstract)
      except checkpoints.UnreadableCheckpointError as e:
        if changed:  # Not a damaged checkpoint: the allowed change does not fit its arrays.
          raise checkpoints.ConfigMismatchError(
              f"ALLOW_CONFIG_CHANGE: {path} cannot be restored into the changed MODEL_CONFIG "
              f"({checkpoints._error_text(e)})") from e
        raise
    return meta, first, final, shards, parts, restored

  found = checkpoints.restore_latest(model_dir, setup, need_data=True, move_bad=True)
  _sync("flan_jax.train.restore_latest")
  latest = None if found is None else found[0]
  meta, first_step, train_steps, num_shards, parts, state = setup(None) if found is None \
      else found[1]
  if latest is not None and latest > train_steps:
    raise checkpoints.BadValueError(
        f"nothing to do: {model_dir}/checkpoint_{latest} is at step {latest} and TRAIN_STEPS is "
        f"{train_steps}; raise TRAIN_STEPS to train further (or use a new MODEL_DIR)")
  if latest is not None and latest == train_steps:  # A rerun of a finished job.
    message = (f"nothing to do: {model_dir}/checkpoint_{latest} is already at TRAIN_STEPS="
               f"{train_steps}; raise TRAIN_STEPS to train further")
    if not allow_nothing_to_do:  # Non-zero exit, so a mistyped TRAIN_STEPS is never silent.
      raise checkpoints.BadValueError(
          f"{message} (a scheduler that reruns finished jobs can pass "
          "--gin.ALLOW_NOTHING_TO_DO=True to exit 0)")
    _announce(message)
    return state
  tx, shardings = parts.tx, parts.shardings
  if jax.process_index() == 0:
    checkpoints.save_config(model_dir, config, allow_change=allow_config_change)

  if latest is not None:
    seed = int(meta["seed"])
    position = int(meta["data_position"])
    _announce(f"resumed from {model_dir}/checkpoint_{latest} (data position {position})")
    _truncate_metrics(os.path.join(model_dir, METRICS_FILE), latest)
  else:
    seed, position = _make_seed(random_seed), 0
    init_rng = jax.random.split(jax.random.key(seed))[0]
    params = None
    if initial_checkpoint_path:
      params = restore_initial_params(initial_checkpoint_path, config, shardings.params)
      _announce(f"initialised params from {initial_checkpoint_path} (step {first_step})")
    else:
      _announce("warning: training from scratch (random init): INITIAL_CHECKPOINT_PATH is not "
                "set; finetuning needs a pretrained checkpoint, e.g. "
                "--gin.INITIAL_CHECKPOINT_PATH=\"'/path/to/model_dir'\"")
    state, _ = partitioning.create_train_state(config, tx, init_rng, device_mesh, rules,
                                               params=params)
    if first_step:
      state = state.replace(step=jax.device_put(np.int32(first_step), shardings.step))
    _truncate_metrics(os.path.join(model_dir, METRICS_FILE), first_step)
  dropout_rng = jax.random.split(jax.random.key(seed))[1]
  meta_extra = {"num_data_shards": num_shards, "initial_step": first_step,
                "model_config": config.to_dict()}

  if jax.process_index() == 0:
    with open(os.path.join(model_dir, "config.gin"), "w") as f:
      f.write(gin.operative_config_str())

  step_fn = parts.step_fn
  data_cfg = data_lib.DataConfig(mixture_or_task_name, dict(task_feature_lengths), batch_size,
                                 seed=seed, use_cached=use_cached_tasks, num_shards=num_shards)
  batches = data_lib.TrainIterator(data_cfg, device_mesh, position)
  seq_len = sum(task_feature_lengths.values())
  tokens_per_batch = batch_size * seq_len
  if peak_flops_per_device is None:
    peak_flops_per_device = default_peak_flops_per_device()
  # Model FLOPs (PaLM: 6N + causal attention; the bidirectional prefix is counted as causal).
  peak_flops = (peak_flops_per_device or 0.0) * jax.device_count()
  if not peak_flops and jax.devices()[0].platform == "cpu":
    # Simulated CPU devices share the host's cores: one measured peak for all of them.
    peak_flops = model_info.measured_matmul_flops()
  flops_per_token = config.train_flops_per_token(seq_len)

  from clu import metric_writers
  writer = metric_writers.create_default_writer(os.path.join(model_dir, SUMMARY_DIR),
                                                just_logging=jax.process_index() != 0)
  step = int(state.step)
  if step >= train_steps:  # TRAIN_STEPS(_RELATIVE) = 0 (below a restored step is an error).
    _announce(f"nothing to train: the run starts at step {step} and TRAIN_STEPS is {train_steps};"
              " returning the initial state (no checkpoint written)")
  bar = None
  if progress and jax.process_index() == 0:
    import tqdm
    bar = tqdm.tqdm(total=train_steps, initial=step, desc="train", dynamic_ncols=True)
  pending: list[tuple[int, dict]] = []
  window_start, window_steps = time.time(), 0
  input_wait = 0.0  # Seconds of the window spent waiting in next(batches).
  metrics_path = os.path.join(model_dir, METRICS_FILE)

  def log(rows: list[dict]) -> None:
    if jax.process_index() == 0:
      try:
        _write_metrics(metrics_path, rows)
      except OSError as e:  # A full disk stops the run with one line, as a failed save does.
        good = checkpoints.latest_good_step(model_dir)
        raise checkpoints.CheckpointWriteError(
            f"{metrics_path} could not be written: {e.strerror or e}; "
            f"{'no checkpoint' if good is None else f'checkpoint_{good}'} is the latest good "
            "one") from e
    for row in rows:
      writer.write_scalars(row["step"], {k: v for k, v in row.items() if k != "step"})
    writer.flush()

  def fetch(items: list[tuple[int, dict]]) -> list[dict]:
    return [{"step": s, **{k: float(v) for k, v in jax.device_get(m).items()}} for s, m in items]

  evaluation: dict[str, Any] = {}

  def run_eval(at_step: int) -> None:
    from flan_jax import eval as eval_lib
    if not evaluation:
      evaluation["evaluator"] = eval_lib.make_evaluator(
          eval_mixture_or_task_name, eval_split, None, num_examples=eval_num_examples,
          use_cached=use_cached_tasks)
      eval_lib.set_log_dir(evaluation["evaluator"], os.path.join(model_dir, "inference_eval"))
      evaluation["inference"] = eval_lib.Inference(
          config, state.params, device_mesh, rules, eval_batch_size,
          max_decode_length=task_feature_lengths["targets"])
    evaluation["inference"].params = state.params
    results = eval_lib.run_evaluator(evaluation["evaluator"], evaluation["inference"], at_step)
    scalars = {f"eval/{task}/{name}": value for task, values in results.items()
               for name, value in values.items()}
    if scalars:
      writer.write_scalars(at_step, scalars)
      writer.flush()
    if bar is not None and results:
      accuracy = [v["accuracy"] for v in results.values() if "accuracy" in v]
      if accuracy:
        bar.write(f"step {at_step}: eval mean accuracy {np.mean(accuracy):.1f} over "
                  f"{len(accuracy)} tasks")

  # A step's loss is checked after the next step is dispatched (keeping one step in flight) and
  # before any checkpoint: bad params are never saved.
  unchecked: tuple[int, dict, dict] | None = None

  def check_finite(item: tuple[int, dict, dict] | None) -> None:
    if item is None or skip_nonfinite_updates:
      return
    bad_step, metrics, local_batch = item
    values = [float(x) for x in jax.device_get((metrics["loss"], metrics["grad_norm"]))]
    if all(math.isfinite(v) for v in values):
      return
    log(fetch([(s, m) for s, m in pending if s <= bad_step]))
    path = _save_nonfinite_batch(model_dir, bad_step, local_batch)
    ckpts.finish()
    last = checkpoints.latest_good_step(model_dir)
    raise NonFiniteLossError(
        f"{_nonfinite_text(*values)} at step {bad_step}; its batch is in {path}; no checkpoint "
        f"written after it (last: {'none' if last is None else f'{model_dir}/checkpoint_{last}'})")

  truncation_said: list[str] = []

  def report_truncation(final: bool) -> dict[str, float]:
    """``data/truncated_fraction_<feature>`` of the examples read so far (features with any);
    logged once when truncation is first seen and again at the end (the metrics row has it at
    every log period), so the console stays quiet."""
    counts = batches.truncation.counts()
    messages = batches.truncation.messages()
    if messages and (final or not truncation_said):
      for message in messages:
        _announce(message)
      truncation_said[:] = messages
    return {f"data/truncated_fraction_{k}": over / seen
            for k, (over, seen, _) in counts.items() if over}

  ckpts = checkpoints.TrainCheckpoints(model_dir, keep_checkpoints, async_checkpointing)

  try:
    with _catch_sigterm() as preempted:
      while step < train_steps:
        wait_start = time.time()
        batch = next(batches)
        input_wait += time.time() - wait_start
        state, metrics = step_fn(state, batch, dropout_rng)
        step += 1
        check_finite(unchecked)
        unchecked = (step, metrics, batches.last_local_batch)
        window_steps += 1
        pending.append((step, metrics))
        ckpts.check()  # A failed background save stops the run here, one step later.
        stop = preempted.is_set
        if bar is not None:
          bar.update(1)
        saving = step % checkpoint_period == 0 or step == train_steps or stop
        if saving:
          check_finite(unchecked)
        # Every row up to a checkpoint is on disk before the checkpoint exists.
        if step % log_period == 0 or saving:
          rows = fetch(pending)
          elapsed = max(time.time() - window_start, 1e-9)
          last = rows[-1]
          last["tokens_per_second"] = tokens_per_batch * window_steps / elapsed
          last["steps_per_second"] = window_steps / elapsed
          last["target_tokens_per_second"] = sum(r["num_target_tokens"] for r in rows) / elapsed
          # Share of wall time inside next(batches); steps are dispatched asynchronously, so this
          # bounds the time the device waits for input from above.
          last["timing/input_wait_fraction"] = input_wait / elapsed
          postfix = {"loss": f"{last['loss']:.4f}", "tok_s": f"{last['tokens_per_second']:.0f}",
                     "wait": f"{100 * last['timing/input_wait_fraction']:.1f}%"}
          if peak_flops:
            last["mfu"] = last["tokens_per_second"] * flops_per_token / peak_flops
            postfix["mfu"] = f"{100 * last['mfu']:.1f}%"
          truncated = report_truncation(step == train_steps or stop)
          last.update(truncated)
          log(rows)
          if bar is not None:
            bar.set_postfix(postfix)
          pending, window_start, window_steps, input_wait = [], time.time(), 0, 0.0
        if saving:
          ckpts.save(state, {"step": step, "data_position": batches.position, "seed": seed,
                             **meta_extra})
        if eval_period and (step % eval_period == 0 or step == train_steps) and not stop:
          check_finite(unchecked)
          try:
            run_eval(step)
          except Exception as e:  # A long run must not die (losing steps) in an evaluation.
            logging.exception("evaluation at step %d failed", step)
            _announce(f"step {step}: evaluation failed, training continues "
                      f"({type(e).__name__}: {e})")
        if stop:
          break
      check_finite(unchecked)
      ckpts.finish()
  finally:
    ckpts.close()
    writer.close()
    if bar is not None:
      bar.close()
  if preempted.is_set and step < train_steps:
    _announce(f"preempted (SIGTERM) at step {step}; saved {model_dir}/checkpoint_{step}")
  return state


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
  """``python -m flan_jax.train`` / ``flan-jax train`` (``argv``: flags only)."""
  from flan_jax import entry
  entry.run("flan-jax train", argv, REQUIRED_MACROS, train)


def run(argv: Sequence[str]) -> Any:
  """Python API (notebooks): ``train.run(["--gin_file=gin/runs/demo.gin", ...])`` takes the
  command line's flags, returns the final TrainState and raises errors (no SystemExit)."""
  from flan_jax import entry
  return entry.call("flan-jax train", argv, REQUIRED_MACROS, train)


if __name__ == "__main__":
  # Run the copy imported as flan_jax.train, so gin's `train_script.train` is this same function.
  from flan_jax import train as _train_module
  _train_module.main()
