"""Typed configuration of a training run, built by gin (t5x style) or from ``train``'s flags.

Gin builds them with dynamic registration, as t5x builds its ``DatasetConfig``::

    from __gin__ import dynamic_registration
    from flan_jax.training import config as training
    RUN = @training.TrainConfig()
    training.TrainConfig.optimizer = @training.OptimizerConfig()
    training.OptimizerConfig.learning_rate = %LEARNING_RATE

and :func:`flan_jax.training.loop.run` trains one. The command
(:func:`flan_jax.train.train`) builds them from the t5x macros of ``gin/runs/finetune.gin``
with :func:`from_arguments`, so ``--gin.LEARNING_RATE=...`` and the other macros keep working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flan_jax.models import DecoderConfig


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """The optimizer, LR schedule and loss of the train step (see :func:`.step.build_train_step`)."""

  name: str = "adafactor"
  learning_rate: float = 1e-3
  schedule: str = "constant"
  warmup_steps: int = 0
  weight_decay: float = 0.0
  grad_clip_norm: float | None = None
  skip_nonfinite_updates: bool = False
  num_microbatches: int = 1
  loss_normalizing_factor: Any = "NUM_REAL_TARGET_TOKENS"
  label_smoothing: float = 0.0
  z_loss: float = 1e-4

  def step_kwargs(self) -> dict[str, Any]:
    """The keyword arguments of :func:`.step.build_train_step`."""
    kwargs = dataclasses.asdict(self)
    kwargs["optimizer"] = kwargs.pop("name")
    return kwargs


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """When and how checkpoints are written, and what a resume accepts."""

  period: int = 1000
  keep: int | None = None
  async_checkpointing: bool = True
  allow_config_change: bool = False


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Periodic evaluation during training (``period=None``: none)."""

  period: int | None = None
  mixture_or_task_name: str | None = None
  split: str = "validation"
  batch_size: int = 32
  num_examples: int | None = None

  @property
  def enabled(self) -> bool:
    return bool(self.period)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run: model, data, steps, mesh, logging, and the three nested configs."""

  model_dir: str
  model_config: DecoderConfig
  mixture_or_task_name: str
  task_feature_lengths: Mapping[str, int]
  train_steps: int | None
  relative_steps: int | None = None
  batch_size: int = 128
  dropout_rate: float = 0.0
  initial_checkpoint_path: str | None = None
  use_cached_tasks: bool | None = False
  packer: str = "seqio"  # flan_jax.training.batches.PACKERS: seqio's greedy or "best_fit".
  device_prefetch: int = 2  # Global batches put on the devices ahead of the step (0: none).
  random_seed: int | None = 0
  num_data_shards: int | None = None
  mesh: str = "data=-1,model=1"
  partitioning_rules: str = "1d"
  log_period: int = 10
  progress: bool = True
  peak_flops_per_device: float | None = None
  allow_nothing_to_do: bool = False
  optimizer: OptimizerConfig = OptimizerConfig()
  checkpoint: CheckpointConfig = CheckpointConfig()
  eval: EvalConfig = EvalConfig()

  @property
  def decoder_config(self) -> DecoderConfig:
    """The model config with the run's dropout rate."""
    return self.model_config.replace(dropout_rate=self.dropout_rate)


def _take(cls: type, arguments: Mapping[str, Any], names: Mapping[str, str]) -> Any:
  """``cls`` from those ``arguments`` (flat names) that ``names`` maps to its fields."""
  return cls(**{field: arguments[flat] for flat, field in names.items() if flat in arguments})


_OPTIMIZER = {f.name: f.name for f in dataclasses.fields(OptimizerConfig)} | {"optimizer": "name"}
del _OPTIMIZER["name"]
_CHECKPOINT = {"checkpoint_period": "period", "keep_checkpoints": "keep",
               "async_checkpointing": "async_checkpointing",
               "allow_config_change": "allow_config_change"}
_EVAL = {"eval_period": "period", "eval_mixture_or_task_name": "mixture_or_task_name",
         "eval_split": "split", "eval_batch_size": "batch_size",
         "eval_num_examples": "num_examples"}


def from_arguments(arguments: Mapping[str, Any]) -> TrainConfig:
  """The typed config of :func:`flan_jax.train.train`'s flat (t5x macro) arguments."""
  nested = set(_OPTIMIZER) | set(_CHECKPOINT) | set(_EVAL)
  top = {f.name for f in dataclasses.fields(TrainConfig)} - {"optimizer", "checkpoint", "eval"}
  unknown = set(arguments) - nested - top
  if unknown:
    raise TypeError(f"unknown training argument(s) {sorted(unknown)}")
  return TrainConfig(
      **{k: v for k, v in arguments.items() if k in top},
      optimizer=_take(OptimizerConfig, arguments, _OPTIMIZER),
      checkpoint=_take(CheckpointConfig, arguments, _CHECKPOINT),
      eval=_take(EvalConfig, arguments, _EVAL))
