r"""Fine-tuning entry point with t5x's command line and gin conventions.

A thin command: it checks the flags and macros, assembles the typed run config
(:mod:`flan_jax.training.config`) from gin's typed configs, builds the mesh and calls
:func:`flan_jax.training.loop.run` (restore-or-init, then the steps with their hooks:
:mod:`flan_jax.training.hooks`).

    python -m flan_jax.train --gin_file=gin/runs/demo.gin --gin.MODEL_DIR="'/tmp/demo'"

Flags: ``--gin_file`` (repeatable, later files override earlier ones), ``--gin.NAME=VALUE``
(rewritten to ``--gin_bindings=NAME = VALUE``), ``--gin_bindings``, ``--gin_search_paths``
(default: cwd and the repository root) and ``--tfds_data_dir``. ``gin/runs/finetune.gin`` binds
the t5x macros to ``train_script.train`` and to its typed configs (t5x style:
``train_script.train.optimizer_cfg = @training.OptimizerConfig()``,
``training.OptimizerConfig.learning_rate = %LEARNING_RATE``; see
:mod:`flan_jax.training.config`).

``MODEL_DIR`` gets ``checkpoint_<step>/{state,data}`` (orbax; ``state`` = step, params, optimizer
state; ``data`` = JSON with the data position and seed), ``config.gin`` (operative config),
``model_config.json``, ``train_metrics.jsonl`` and TensorBoard summaries in ``train/`` (clu
metric writers: loss, learning rate, tokens/s, MFU, ...). Restore precedence: the latest
*good* checkpoint in ``MODEL_DIR`` (complete, checksums verified, arrays readable; bad ones are
set aside with the reason -- see :mod:`flan_jax.training.checkpoints`; resume: the data
iterator skips the batches already consumed, the model config must equal the checkpoint's unless
``ALLOW_CONFIG_CHANGE``), else ``INITIAL_CHECKPOINT_PATH`` (a flan_jax model dir or
``checkpoint_<step>`` dir: params and its step, fresh optimizer state; or a Hugging Face
directory with ``config.json`` and safetensors: params, step 0), else random init.
``TRAIN_STEPS`` is the absolute final step; ``TRAIN_STEPS_RELATIVE`` (when set) makes it the
initial checkpoint's step + that many, also after a crash and resume. On SIGTERM (preemption)
or Ctrl-C the loop finishes the current step, logs it, saves a checkpoint at that step, waits for
the save and returns (exit code 0); a second Ctrl-C aborts at once. A non-finite loss
or gradient norm stops the run with :class:`NonFiniteLossError` naming the step, after saving the
step's host-local batch to ``MODEL_DIR/nonfinite_batch_step_<N>.npz``; no checkpoint is written
from then on (unless ``skip_nonfinite_updates``, which drops such updates and goes on).

Multi-host (t5x flags): ``--coordinator_address=HOST:PORT --process_count=N --process_index=I``
call ``jax.distributed.initialize`` first (CPU collectives via gloo); without them it is called
with no arguments where jax detects the cluster itself (TPU pod, GKE, SLURM ``srun``; see
``--multihost`` and docs/tpu.md, docs/gpu.md). The global batch depends on
``num_data_shards`` (gin ``NUM_DATA_SHARDS``; None = process count), not on the process count,
see :mod:`flan_jax.training.batches`; the shard count is kept in the checkpoints.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax

from flan_jax.config import gin_utils
from flan_jax.config.gin_utils import REPO_ROOT, parse_gin  # noqa: F401  (re-exported)
from flan_jax.data import registry
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint  # noqa: F401  (re-exported)
from flan_jax.parallel import partitioning
from flan_jax.storage import fs
from flan_jax.training import checkpoints, hooks, logs, loop, perf
from flan_jax.training import config as training_config
from flan_jax.training import step as step_lib
from flan_jax.training.config import (
  CheckpointConfig,
  EvalConfig,
  OptimizerConfig,
  PartitioningConfig,
)

REQUIRED_MACROS = ("MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "TRAIN_STEPS",
                   "MODEL_CONFIG")


# The loop and its parts live in flan_jax.training; these names stay importable from here.
METRICS_FILE = logs.METRICS_FILE
SUMMARY_DIR = loop.SUMMARY_DIR
NONFINITE_BATCH = hooks.NONFINITE_BATCH
NonFiniteLossError = hooks.NonFiniteLossError
TrainStep = step_lib.TrainStep
build_train_step = step_lib.build_train_step
PEAK_FLOPS_BY_DEVICE_KIND = perf.PEAK_FLOPS_BY_DEVICE_KIND
default_peak_flops_per_device = perf.default_peak_flops_per_device
is_complete_checkpoint = checkpoints.is_complete_checkpoint
set_aside_incomplete = checkpoints.set_aside_incomplete
config_differences = checkpoints.config_differences
initial_step = checkpoints.initial_step
restore_initial_params = checkpoints.restore_initial_params


# --- validation -------------------------------------------------------------------------------


def check_required_macros(names: Sequence[str] = REQUIRED_MACROS) -> None:
  """Raises ValueError naming every required macro of a training run that is unset."""
  gin_utils.check_required_macros(names)


def _validate(mixture_or_task_name: str) -> None:
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  check_tfds_data(mixture_or_task_name)


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


def _accepting_flat_arguments(fn: Any) -> Any:
  """``train`` that also takes the flat keyword arguments of before the typed configs
  (``learning_rate=``, ``checkpoint_period=``, ``mesh=``, ...; one release, with a
  DeprecationWarning): :func:`flan_jax.training.config.fold_flat_arguments`. gin reads the
  signature of ``train`` itself (``__wrapped__``), so gin bindings must name the typed configs."""

  @functools.wraps(fn)
  def wrapper(*args: Any, **kwargs: Any) -> Any:
    return fn(*args, **training_config.fold_flat_arguments(kwargs))

  return wrapper


def _check_initial_checkpoint(path: str | None) -> None:
  if path is not None and not fs.exists(path):
    raise checkpoints.BadValueError(
        f"INITIAL_CHECKPOINT_PATH {path!r} does not exist{fs.unseen_hint(path)}; pass a flan_jax "
        "model dir, a checkpoint_<step> dir or a Hugging Face model dir (or None)")


# --- pre-compile checks ---------------------------------------------------------------------------


def check_batch_divisibility(batch_size: int, num_microbatches: int,
                             axis_sizes: Mapping[str, int], mesh: str = "") -> None:
  """Each microbatch's rows must split evenly over the data-parallel (data, fsdp) axes."""
  micro = max(num_microbatches, 1)
  replicas = partitioning.replicas(axis_sizes)
  if (batch_size % micro) == 0 and (batch_size // micro) % replicas == 0:
    return
  axes = ", ".join(f"{a}={n}" for a, n in axis_sizes.items() if a in partitioning.DATA_AXES)
  rows = batch_size // micro
  fit = math.gcd(rows, replicas) if batch_size % micro == 0 else 1
  model = axis_sizes.get("model", 1) * replicas // fit
  raise checkpoints.BadValueError(
      f"BATCH_SIZE {batch_size} ({micro} microbatch(es) of {batch_size / micro:g} rows) does not "
      f"split over the data-parallel mesh axes {axes} ({replicas} replicas) of mesh "
      f"{mesh or dict(axis_sizes)!r}; use BATCH_SIZE = {replicas * micro} (or another multiple "
      f"of {replicas * micro}), or a mesh whose data axis divides {rows}, e.g. "
      f"'data={fit},model={model}' (MESH, training.PartitioningConfig.mesh)")


def _check_run(cfg: training_config.TrainConfig) -> None:
  """The checks that need the task registry but no devices: names, data, vocabulary sizes (the
  values themselves are checked by the configs)."""
  _validate(cfg.mixture_or_task_name)
  if cfg.eval.period:
    registry.get(cfg.eval.mixture_or_task_name)  # Unknown names fail before anything compiles.
  vocab_size = cfg.model_config.vocab_size
  registry.check_vocab_size(cfg.mixture_or_task_name, vocab_size, "MIXTURE_OR_TASK_NAME")
  if cfg.eval.period:
    registry.check_vocab_size(cfg.eval.mixture_or_task_name, vocab_size,
                              "EVAL_MIXTURE_OR_TASK_NAME")


def _check_start(cfg: training_config.TrainConfig, device_mesh: jax.sharding.Mesh) -> None:
  """The batch fits the mesh, the initial checkpoint is flan_jax's, MODEL_DIR is writable (and
  its incomplete checkpoints are set aside)."""
  check_batch_divisibility(cfg.batch_size, cfg.optimizer.num_microbatches,
                           dict(device_mesh.shape), cfg.partitioning.mesh)
  if cfg.initial_checkpoint_path:
    foreign = checkpoints.foreign_checkpoint(cfg.initial_checkpoint_path)
    if foreign:
      raise checkpoints.CheckpointError(f"INITIAL_CHECKPOINT_PATH: {foreign}")
  checkpoints.check_writable_dir(cfg.model_dir)
  set_aside_incomplete(cfg.model_dir)


def _evaluator(cfg: training_config.TrainConfig, device_mesh: jax.sharding.Mesh,
               rules: Any) -> Callable[[int, Any], Any]:
  """``evaluate(step, params)`` for the periodic-eval hook: ``seqio.Evaluator`` on the eval
  mixture (:mod:`flan_jax.eval`: rank classification and decoding), built at its first call."""
  from flan_jax import eval as eval_lib
  built: dict[str, Any] = {}

  def evaluate(step: int, params: Any) -> Any:
    if not built:
      built["evaluator"] = eval_lib.make_evaluator(
          cfg.eval.mixture_or_task_name, cfg.eval.split, None,
          num_examples=cfg.eval.num_examples, use_cached=cfg.use_cached_tasks)
      eval_lib.set_log_dir(built["evaluator"], fs.join(cfg.model_dir, "inference_eval"))
      built["inference"] = eval_lib.Inference(
          cfg.decoder_config, params, device_mesh, rules, cfg.eval.batch_size,
          max_decode_length=cfg.task_feature_lengths["targets"])
    built["inference"].params = params
    return eval_lib.run_evaluator(built["evaluator"], built["inference"], step)

  return evaluate


@_accepting_flat_arguments
def train(model_dir: str = gin.REQUIRED, model_config: DecoderConfig = gin.REQUIRED,
          mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          train_steps: int | None = gin.REQUIRED, relative_steps: int | None = None,
          batch_size: int = 128, dropout_rate: float = 0.0,
          initial_checkpoint_path: str | None = None, use_cached_tasks: bool | None = False,
          packer: str = "seqio", device_prefetch: int = 2, random_seed: int | None = 0,
          num_data_shards: int | None = None, log_period: int = 10, progress: bool = True,
          peak_flops_per_device: float | None = None, allow_nothing_to_do: bool = False,
          compilation_cache_dir: str | None = "compilation_cache",
          profile_steps: str | None = None, profile_all_processes: bool = False,
          optimizer_cfg: OptimizerConfig = OptimizerConfig(),
          checkpoint_cfg: CheckpointConfig = CheckpointConfig(),
          eval_cfg: EvalConfig = EvalConfig(),
          partitioning_cfg: PartitioningConfig = PartitioningConfig()
          ) -> partitioning.TrainState:
  """Trains to step ``train_steps`` (absolute), resuming from ``model_dir`` when possible.

  The typed configs (:mod:`flan_jax.training.config`, built by gin as in t5x): ``optimizer_cfg``
  (optimizer, schedule, microbatches, loss), ``checkpoint_cfg`` (period, keep, resume checks),
  ``eval_cfg`` (periodic ``seqio.Evaluator`` runs on a mixture's split, :mod:`flan_jax.eval`:
  metrics go to TensorBoard ``eval/<task>/<metric>`` and ``MODEL_DIR/inference_eval``) and
  ``partitioning_cfg`` (mesh and :data:`flan_jax.parallel.partitioning.RULE_SETS` name).
  ``random_seed=None`` draws a seed; it is stored in each checkpoint, so resume stays exact.
  ``relative_steps``: train to (initial checkpoint's step + relative_steps) instead.
  ``num_data_shards``: data shards of the global batch (None: the process count; a resumed run
  keeps its checkpoint's). ``peak_flops_per_device`` (None: looked up by device kind; on CPU the
  host's measured f32 matmul FLOP/s for all devices together) gives MFU = model FLOP/s / peak.
  ``packer``: ``"seqio"`` (seqio's greedy packing) or ``"best_fit"`` (less padding; see
  :mod:`flan_jax.training.batches`); a resumed run must keep its packer. ``device_prefetch``:
  global batches a background thread puts on the devices ahead of the step (0: none).
  ``compilation_cache_dir``: jax's persistent compilation cache (relative: under ``model_dir``;
  None: off), so a restart loads its compiled programs. ``profile_steps`` ``'START:STOP'``: a
  ``jax.profiler`` trace of steps START .. STOP-1 in ``MODEL_DIR/profile`` (process 0, or every
  process with ``profile_all_processes``). Every value is checked before ``MODEL_DIR`` is
  touched.
  """
  cfg = training_config.from_arguments(locals())
  _check_initial_checkpoint(cfg.initial_checkpoint_path)
  with checkpoints.locked(cfg.model_dir, "flan-jax train"):
    return _run(cfg)


def _run(cfg: training_config.TrainConfig) -> partitioning.TrainState:
  """Checks, mesh, evaluator, then :func:`flan_jax.training.loop.run` (``MODEL_DIR`` locked)."""
  _check_run(cfg)
  device_mesh = partitioning.create_mesh(cfg.partitioning.mesh, dcn=cfg.partitioning.dcn_mesh)
  rules = partitioning.logical_axis_rules(cfg.partitioning.rules, device_mesh.axis_names)
  _check_start(cfg, device_mesh)
  evaluate = _evaluator(cfg, device_mesh, rules) if cfg.eval.enabled else None
  return loop.run(cfg, device_mesh, rules, evaluate)


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
