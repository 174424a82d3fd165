"""Typed configuration of a training run, built by gin (t5x style).

``gin/runs/finetune.gin`` builds the parts of :func:`flan_jax.train.train` with dynamic
registration, as t5x builds its ``SaveCheckpointConfig`` and ``DatasetConfig``::

    from __gin__ import dynamic_registration
    from flan_jax import train as train_script
    from flan_jax.training import config as training
    train_script.train.optimizer_cfg = @training.OptimizerConfig()
    training.OptimizerConfig.learning_rate = %LEARNING_RATE

``train`` takes :class:`OptimizerConfig`, :class:`CheckpointConfig`, :class:`EvalConfig` and
:class:`PartitioningConfig` (``optimizer_cfg``, ``checkpoint_cfg``, ``eval_cfg``,
``partitioning_cfg``) and the run's own values, and assembles one :class:`TrainConfig`, which
:func:`flan_jax.training.loop.run` trains. Every config checks its values when it is built
(``__post_init__``): a :class:`BadValueError` names the gin macro and the field, what is allowed
and an example. The flat keyword arguments ``train`` took before (``learning_rate=...``) are
folded into the configs by :func:`fold_flat_arguments` (one release).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from flan_jax.config import gin_utils
from flan_jax.models import DecoderConfig
from flan_jax.models.checkpoint import BadValueError
from flan_jax.parallel import partitioning
from flan_jax.training import losses, optim

PACKERS = ("seqio", "best_fit")
DEFAULT_COMPILATION_CACHE = "compilation_cache"  # COMPILATION_CACHE_DIR: under MODEL_DIR.


def check_packer(packer: str) -> None:
  """Raises BadValueError for a name that is not one of PACKERS (gin ``PACKER``)."""
  if packer not in PACKERS:
    raise BadValueError(f"unknown packer {packer!r} (PACKER); use one of {PACKERS}")


def parse_profile_steps(value: str | None) -> tuple[int, int] | None:
  """``PROFILE_STEPS`` ``'START:STOP'`` as (start, stop): trace steps START .. STOP-1 (half-open,
  as a Python slice; steps count from 1 as in ``train_metrics.jsonl``). None or '': no profile."""
  if value is None or value == "":
    return None
  parts = value.split(":") if isinstance(value, str) else []
  if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
    start, stop = (int(p) for p in parts)
    if 1 <= start < stop:
      return start, stop
  raise BadValueError(f"PROFILE_STEPS (train_script.train.profile_steps) must be 'START:STOP' "
                      f"with 1 <= START < STOP (steps START to STOP-1 are traced), or None; got "
                      f"{value!r}; e.g. --gin.PROFILE_STEPS=\"'10:13'\" traces steps 10, 11, 12")


# --- value checks: each names the macro (when gin/runs/finetune.gin binds one) and the field --


def _field(macro: str, default: Any = dataclasses.MISSING) -> Any:
  """A dataclass field that ``gin/runs/finetune.gin`` binds to the gin macro ``macro``."""
  return dataclasses.field(default=default, metadata={"macro": macro})


def _name(cfg: Any, field: str) -> tuple[str, str]:
  """(how errors name ``field`` of ``cfg``: 'MACRO (gin.path)', the ``--gin.`` flag name)."""
  path = f"{cfg.GIN_NAME}.{field}"
  macro = next(f.metadata.get("macro") for f in dataclasses.fields(cfg) if f.name == field)
  return (f"{macro} ({path})" if macro else path), macro or path


def _fail(cfg: Any, field: str, expected: str, example: Any) -> None:
  value = getattr(cfg, field)
  label, flag = _name(cfg, field)
  shown = f"\"{example!r}\"" if isinstance(example, str) else repr(example)  # Shell-quoted.
  raise BadValueError(f"{label} must be {expected}, got {value!r} ({type(value).__name__}); "
                      f"e.g. --gin.{flag}={shown}")


def _is_int(value: Any) -> bool:
  return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _int(cfg: Any, field: str, minimum: int, optional: bool = False) -> None:
  value = getattr(cfg, field)
  if (value is None and optional) or (_is_int(value) and value >= minimum):
    return
  _fail(cfg, field, f"an integer >= {minimum}{' or None' if optional else ''}",
        max(minimum, 8))


def _number(cfg: Any, field: str, minimum: float, optional: bool = False,
            below: float | None = None, example: float = 0.1) -> None:
  value = getattr(cfg, field)
  if value is None and optional:
    return
  if _is_number(value) and value >= minimum and (below is None or value < below):
    return
  upper = f" and < {below}" if below is not None else ""
  _fail(cfg, field, f"a number >= {minimum}{upper}{' or None' if optional else ''}", example)


def _one_of(cfg: Any, field: str, allowed: tuple[Any, ...]) -> None:
  if getattr(cfg, field) not in allowed:
    _fail(cfg, field, f"one of {allowed}", allowed[0])


def _flag(cfg: Any, field: str, optional: bool = False) -> None:
  value = getattr(cfg, field)
  if not (isinstance(value, bool) or (value is None and optional)):
    _fail(cfg, field, f"True or False{' or None' if optional else ''}", True)


# --- the configs ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """The optimizer, LR schedule and loss of the train step (see :func:`.step.build_train_step`).

  ``name``: one of :data:`.optim.OPTIMIZERS`; ``schedule``: one of :data:`.optim.SCHEDULES`;
  ``loss_normalizing_factor``: a name of :class:`.losses.LossNormalizingFactor`, a number or
  None (see :mod:`.losses`).
  """

  GIN_NAME: ClassVar[str] = "training.OptimizerConfig"
  name: str = "adafactor"
  learning_rate: float = _field("LEARNING_RATE", 1e-3)
  schedule: str = "constant"
  warmup_steps: int = 0
  weight_decay: float = 0.0
  grad_clip_norm: float | None = None  # None or 0: no clipping.
  skip_nonfinite_updates: bool = False
  num_microbatches: int = _field("NUM_MICROBATCHES", 1)
  loss_normalizing_factor: Any = _field("LOSS_NORMALIZING_FACTOR", "NUM_REAL_TARGET_TOKENS")
  label_smoothing: float = _field("LABEL_SMOOTHING", 0.0)
  z_loss: float = _field("Z_LOSS", 1e-4)

  def __post_init__(self):
    _one_of(self, "name", optim.OPTIMIZERS)
    _one_of(self, "schedule", optim.SCHEDULES)
    if not (_is_number(self.learning_rate) and self.learning_rate > 0):
      _fail(self, "learning_rate", "a number > 0", 1e-3)
    _int(self, "warmup_steps", 0)
    _number(self, "weight_decay", 0.0)
    _number(self, "grad_clip_norm", 0.0, optional=True, example=1.0)
    _flag(self, "skip_nonfinite_updates")
    _int(self, "num_microbatches", 1)
    _number(self, "label_smoothing", 0.0, below=1.0)
    _number(self, "z_loss", 0.0, example=1e-4)
    factor = self.loss_normalizing_factor
    try:
      parsed = losses.parse_factor(factor)
    except ValueError:
      parsed = None
    if (factor is not None and parsed is None) or (_is_number(parsed) and parsed <= 0):
      names = tuple(f.name for f in losses.LossNormalizingFactor)
      _fail(self, "loss_normalizing_factor", f"one of {names}, a number > 0 or None", names[0])

  def step_kwargs(self) -> dict[str, Any]:
    """The keyword arguments of :func:`.step.build_train_step`."""
    kwargs = dataclasses.asdict(self)
    kwargs["optimizer"] = kwargs.pop("name")
    return kwargs


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """When and how checkpoints are written, and what a resume accepts (t5x's
  ``SaveCheckpointConfig``; ``keep=None`` keeps every checkpoint)."""

  GIN_NAME: ClassVar[str] = "training.CheckpointConfig"
  period: int = _field("CHECKPOINT_PERIOD", 1000)
  keep: int | None = _field("KEEP_CHECKPOINTS", None)
  async_checkpointing: bool = True
  allow_config_change: bool = _field("ALLOW_CONFIG_CHANGE", False)

  def __post_init__(self):
    _int(self, "period", 1)
    _int(self, "keep", 1, optional=True)
    _flag(self, "async_checkpointing")
    _flag(self, "allow_config_change")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Periodic evaluation during training (``period=None``: none) on ``mixture_or_task_name``'s
  ``split``, ``num_examples`` per task (None: all)."""

  GIN_NAME: ClassVar[str] = "training.EvalConfig"
  period: int | None = _field("EVAL_PERIOD", None)
  mixture_or_task_name: str | None = _field("EVAL_MIXTURE_OR_TASK_NAME", None)
  split: str = _field("EVAL_SPLIT", "validation")
  batch_size: int = 32
  num_examples: int | None = None

  def __post_init__(self):
    _int(self, "period", 1, optional=True)
    if self.period and not self.mixture_or_task_name:
      raise BadValueError("EVAL_PERIOD (training.EvalConfig.period) needs "
                          "EVAL_MIXTURE_OR_TASK_NAME (training.EvalConfig.mixture_or_task_name): "
                          "a mixture with eval metrics, e.g. flan_heldout_nli_eval")
    if not (isinstance(self.split, str) and self.split):
      _fail(self, "split", "a split name", "validation")
    _int(self, "batch_size", 1)
    _int(self, "num_examples", 1, optional=True)

  @property
  def enabled(self) -> bool:
    return bool(self.period)


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
  """The device mesh and the logical axis rules (t5x's ``PjitPartitioner``): ``mesh`` such as
  ``'data=4,model=2'`` (axes data, fsdp, model; one may be -1: the remaining devices), ``rules``
  a name of :data:`flan_jax.parallel.partitioning.RULE_SETS`. Multi-slice: ``mesh`` is the mesh
  inside one slice (ICI) and ``dcn_mesh`` the slices per axis (DCN, e.g. ``'data=2'``; t5x's
  ``dcn_mesh_shape``, MaxText's ``dcn_*_parallelism``)."""

  GIN_NAME: ClassVar[str] = "training.PartitioningConfig"
  mesh: str = _field("MESH", "data=-1,model=1")
  rules: str = _field("PARTITIONING_RULES", "1d")
  dcn_mesh: str | None = _field("DCN_MESH", None)

  def __post_init__(self):
    for field, example in (("mesh", "data=4,model=2"), ("dcn_mesh", "data=2")):
      if field == "dcn_mesh" and self.dcn_mesh is None:
        continue
      try:
        partitioning.MeshSpec.parse(getattr(self, field))
      except (ValueError, TypeError, AttributeError) as e:
        label, _ = _name(self, field)
        raise BadValueError(f"{label} must be a mesh such as {example!r} (axes data, fsdp, "
                            f"model; one may be -1), got {getattr(self, field)!r}: {e}") from None
    _one_of(self, "rules", tuple(partitioning.RULE_SETS))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run: :func:`flan_jax.train.train`'s own values (model, data, steps, logging)
  and its four typed configs."""

  GIN_NAME: ClassVar[str] = "train_script.train"
  model_dir: str = _field("MODEL_DIR")
  model_config: DecoderConfig = _field("MODEL_CONFIG")
  mixture_or_task_name: str = _field("MIXTURE_OR_TASK_NAME")
  task_feature_lengths: Mapping[str, int] = _field("TASK_FEATURE_LENGTHS")
  train_steps: int | None = _field("TRAIN_STEPS")
  relative_steps: int | None = _field("TRAIN_STEPS_RELATIVE", None)
  batch_size: int = _field("BATCH_SIZE", 128)
  dropout_rate: float = _field("DROPOUT_RATE", 0.0)
  initial_checkpoint_path: str | None = _field("INITIAL_CHECKPOINT_PATH", None)
  use_cached_tasks: bool | None = _field("USE_CACHED_TASKS", False)
  packer: str = _field("PACKER", "seqio")  # PACKERS: seqio's greedy or "best_fit".
  device_prefetch: int = 2  # Global batches put on the devices ahead of the step (0: none).
  random_seed: int | None = _field("RANDOM_SEED", 0)
  num_data_shards: int | None = _field("NUM_DATA_SHARDS", None)
  log_period: int = 10
  progress: bool = True
  peak_flops_per_device: float | None = None
  allow_nothing_to_do: bool = _field("ALLOW_NOTHING_TO_DO", False)
  # jax's persistent compilation cache: compilation_cache_path.
  compilation_cache_dir: str | None = _field("COMPILATION_CACHE_DIR", DEFAULT_COMPILATION_CACHE)
  profile_steps: str | None = _field("PROFILE_STEPS", None)  # 'START:STOP': parse_profile_steps.
  profile_all_processes: bool = False  # False: only process 0 writes a trace.
  optimizer: OptimizerConfig = OptimizerConfig()
  checkpoint: CheckpointConfig = CheckpointConfig()
  eval: EvalConfig = EvalConfig()
  partitioning: PartitioningConfig = PartitioningConfig()

  def __post_init__(self):
    self._check_run_values()
    self._check_data()
    for field, cls in _PARTS.items():
      if not isinstance(getattr(self, field), cls):
        raise BadValueError(f"train_script.train.{field}_cfg must be a {cls.GIN_NAME}, got "
                            f"{getattr(self, field)!r}; bind e.g. train_script.train.{field}_cfg"
                            f" = @{cls.GIN_NAME}()")
    micro = self.optimizer.num_microbatches
    if self.batch_size % micro:
      raise BadValueError(
          f"BATCH_SIZE {self.batch_size} not divisible by NUM_MICROBATCHES "
          f"(training.OptimizerConfig.num_microbatches) {micro}; use a multiple of {micro}")

  def _check_run_values(self) -> None:
    if not (isinstance(self.model_dir, str) and self.model_dir):
      raise BadValueError(f"MODEL_DIR must be a directory path (a quoted string), got "
                          f"{self.model_dir!r}; e.g. --gin.MODEL_DIR=\"'/tmp/run'\"")
    if not isinstance(self.model_config, DecoderConfig):
      raise BadValueError(f"MODEL_CONFIG must be a DecoderConfig, got {self.model_config!r}; "
                          "include a model gin file, e.g. --gin_file=gin/models/tiny.gin")
    _int(self, "train_steps", 0, optional=True)  # 0: only initialise, loudly.
    _int(self, "relative_steps", 0, optional=True)
    if self.train_steps is None and self.relative_steps is None:
      raise BadValueError("set TRAIN_STEPS (absolute) or TRAIN_STEPS_RELATIVE")
    _int(self, "log_period", 1)
    _flag(self, "progress")
    _flag(self, "allow_nothing_to_do")
    _number(self, "peak_flops_per_device", 1.0, optional=True, example=1e12)
    _number(self, "dropout_rate", 0.0, below=1.0)
    _int(self, "random_seed", 0, optional=True)
    if not (self.compilation_cache_dir is None or isinstance(self.compilation_cache_dir, str)):
      _fail(self, "compilation_cache_dir", "a directory path (relative: under MODEL_DIR) or None",
            "compilation_cache")
    parse_profile_steps(self.profile_steps)
    _flag(self, "profile_all_processes")

  def _check_data(self) -> None:
    if not (isinstance(self.mixture_or_task_name, str) and self.mixture_or_task_name):
      _fail(self, "mixture_or_task_name", "a registered mixture or task name",
            "demo_heldout_nli_train")
    _int(self, "batch_size", 1)
    _int(self, "num_data_shards", 1, optional=True)
    _int(self, "device_prefetch", 0)
    _flag(self, "use_cached_tasks", optional=True)
    check_packer(self.packer)
    lengths = self.task_feature_lengths
    if not isinstance(lengths, Mapping):
      raise BadValueError(f"TASK_FEATURE_LENGTHS must be a dict, got {lengths!r}; e.g. "
                          "--gin.TASK_FEATURE_LENGTHS=\"{'inputs': 256, 'targets': 64}\"")
    if set(lengths) not in ({"inputs", "targets"}, {"targets"}):
      raise BadValueError(
          "TASK_FEATURE_LENGTHS must be {'inputs': L1, 'targets': L2} (prefix LM) or "
          f"{{'targets': L}} (plain LM), got {dict(lengths)}")
    for key, value in lengths.items():
      if not _is_int(value) or value < 1:
        raise BadValueError(f"TASK_FEATURE_LENGTHS[{key!r}] must be a positive integer (tokens), "
                            f"got {value!r}; e.g. {{'inputs': 256, 'targets': 64}}")

  @property
  def compilation_cache_path(self) -> str | None:
    """Where jax's persistent compilation cache lives: ``compilation_cache_dir`` (relative: under
    ``model_dir``; None or '': off); left at its default, the process's own cache when it has
    one (``JAX_COMPILATION_CACHE_DIR``, ``jax.config``)."""
    if not self.compilation_cache_dir:
      return None
    if self.compilation_cache_dir == DEFAULT_COMPILATION_CACHE:
      import jax
      if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    from etils import epath  # gs:// and local paths alike.
    path = os.path.expanduser(self.compilation_cache_dir)
    return path if epath.Path(path).is_absolute() else str(epath.Path(self.model_dir) / path)

  @property
  def profile_range(self) -> tuple[int, int] | None:
    """(first traced step, first step after the trace) of ``profile_steps``, or None."""
    return parse_profile_steps(self.profile_steps)

  @property
  def decoder_config(self) -> DecoderConfig:
    """The model config with the run's dropout rate."""
    return self.model_config.replace(dropout_rate=self.dropout_rate)


# TrainConfig field -> its typed config; train()'s argument for it is ``<field>_cfg``.
_PARTS: dict[str, type] = {"optimizer": OptimizerConfig, "checkpoint": CheckpointConfig,
                           "eval": EvalConfig, "partitioning": PartitioningConfig}
CONFIG_ARGUMENTS: dict[str, type] = {f"{field}_cfg": cls for field, cls in _PARTS.items()}


def from_arguments(arguments: Mapping[str, Any]) -> TrainConfig:
  """The TrainConfig of :func:`flan_jax.train.train`'s arguments (its typed configs as
  ``optimizer_cfg``, ``checkpoint_cfg``, ``eval_cfg``, ``partitioning_cfg``)."""
  names = {f.name for f in dataclasses.fields(TrainConfig)} - set(_PARTS)
  unknown = set(arguments) - names - set(CONFIG_ARGUMENTS)
  if unknown:
    raise TypeError(f"unknown training argument(s) {sorted(unknown)}")
  return TrainConfig(**{k.removesuffix("_cfg") if k in CONFIG_ARGUMENTS else k: v
                        for k, v in arguments.items()})


def fold_flat_arguments(kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """``kwargs`` of :func:`flan_jax.train.train` with the flat arguments it took before the typed
  configs (``learning_rate=``, ``checkpoint_period=``, ``mesh=``, ...; the table is
  :data:`flan_jax.config.gin_utils.MOVED_TRAIN_ARGUMENTS`) folded into ``optimizer_cfg``,
  ``checkpoint_cfg``, ... (a DeprecationWarning names the new fields; kept for one release)."""
  out = dict(kwargs)
  flat = {k: out.pop(k) for k in kwargs if k in gin_utils.MOVED_TRAIN_ARGUMENTS}
  if not flat:
    return out
  changes: dict[str, dict[str, Any]] = {}
  for name, value in flat.items():
    _, cls_name, field = gin_utils.MOVED_TRAIN_ARGUMENTS[name].split(".")
    argument = next(a for a, cls in CONFIG_ARGUMENTS.items() if cls.__name__ == cls_name)
    changes.setdefault(argument, {})[field] = value
  moved = ", ".join(f"{k} -> {gin_utils.MOVED_TRAIN_ARGUMENTS[k]}" for k in flat)
  warnings.warn(f"train()'s flat arguments are deprecated; pass the typed configs ({moved})",
                DeprecationWarning, stacklevel=3)
  for argument, fields in changes.items():
    out[argument] = dataclasses.replace(out.get(argument) or CONFIG_ARGUMENTS[argument](),
                                        **fields)
  return out
