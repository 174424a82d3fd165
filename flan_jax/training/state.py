"""Restore-or-init: the state a run starts from.

Precedence: the latest *good* checkpoint in ``MODEL_DIR`` (bad ones are set aside, see
:func:`.checkpoints.restore_latest`; the model config must equal the checkpoint's unless
``allow_config_change``), else ``initial_checkpoint_path`` (params and its step, fresh optimizer
state), else random init.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import numpy as np

from flan_jax.parallel import multihost, partitioning
from flan_jax.storage import fs
from flan_jax.training import checkpoints, logs
from flan_jax.training.config import TrainConfig
from flan_jax.training.step import TrainStep, build_train_step


class Start(NamedTuple):
  """Where a run starts: its state and step function, and the data/seed bookkeeping."""

  state: partitioning.TrainState | None
  parts: TrainStep
  latest: int | None  # The checkpoint resumed from (None: a fresh start).
  first_step: int     # The initial checkpoint's step (0 from scratch).
  final_step: int
  num_shards: int
  seed: int
  position: int       # Batches of the data stream already consumed.
  done: bool = False  # A rerun of a finished job: nothing to train.


def _setup(cfg: TrainConfig, mesh: jax.sharding.Mesh, rules: Any, path: str | None) -> tuple:
  """(data meta, first step, final step, data shards, step parts, restored state or None)
  for resuming from the checkpoint dir ``path`` (None: a fresh start)."""
  config = cfg.decoder_config
  meta = checkpoints.read_data(path) if path else {}
  changed = checkpoints.check_resume_config(cfg.model_dir, path, config,
                                            cfg.checkpoint.allow_config_change)
  # From the meta when resuming: the initial checkpoint may be gone by then.
  first = int(meta["initial_step"] if "initial_step" in meta
              else checkpoints.initial_step(cfg.initial_checkpoint_path))
  final = first + cfg.relative_steps if cfg.relative_steps is not None else cfg.train_steps
  shards = int(meta.get("num_data_shards", cfg.num_data_shards or jax.process_count()))
  if cfg.num_data_shards is not None and cfg.num_data_shards != shards:
    raise checkpoints.BadValueError(
        f"NUM_DATA_SHARDS={cfg.num_data_shards} but {path} was trained with {shards} (the data "
        "order would change); leave it unset")
  if meta.get("packer", cfg.packer) != cfg.packer:
    raise checkpoints.BadValueError(
        f"PACKER={cfg.packer!r} but {path} was trained with {meta['packer']!r} (the data order "
        f"would change); set PACKER={meta['packer']!r}")
  parts = build_train_step(config, mesh, rules, train_steps=final,
                           **cfg.optimizer.step_kwargs())
  restored = None
  if path:
    abstract = checkpoints.abstract_train_state(config, parts.tx, parts.shardings)
    try:
      restored = checkpoints.restore_train_state(path, abstract)
    except checkpoints.UnreadableCheckpointError as e:
      if changed:  # Not a damaged checkpoint: the allowed change does not fit its arrays.
        raise checkpoints.ConfigMismatchError(
            f"ALLOW_CONFIG_CHANGE: {path} cannot be restored into the changed MODEL_CONFIG "
            f"({checkpoints.error_text(e)})") from e
      raise
  return meta, first, final, shards, parts, restored


def _finished(cfg: TrainConfig, latest: int | None, final: int) -> bool:
  """True for a rerun of a finished job that may exit 0; raises when it may not."""
  if latest is None or latest < final:
    return False
  if latest > final:
    raise checkpoints.BadValueError(
        f"nothing to do: {cfg.model_dir}/checkpoint_{latest} is at step {latest} and TRAIN_STEPS "
        f"is {final}; raise TRAIN_STEPS to train further (or use a new MODEL_DIR)")
  message = (f"nothing to do: {cfg.model_dir}/checkpoint_{latest} is already at TRAIN_STEPS="
             f"{final}; raise TRAIN_STEPS to train further")
  if not cfg.allow_nothing_to_do:  # Non-zero exit, so a mistyped TRAIN_STEPS is never silent.
    raise checkpoints.BadValueError(
        f"{message} (a scheduler that reruns finished jobs can pass "
        "--gin.ALLOW_NOTHING_TO_DO=True to exit 0)")
  logs.announce(message)
  return True


def _initialise(cfg: TrainConfig, mesh: jax.sharding.Mesh, rules: Any, parts: TrainStep,
                seed: int, first_step: int) -> partitioning.TrainState:
  """A fresh TrainState: params from ``initial_checkpoint_path`` or random, at ``first_step``."""
  config = cfg.decoder_config
  init_rng = jax.random.split(jax.random.key(seed))[0]
  params = None
  if cfg.initial_checkpoint_path:
    params = checkpoints.restore_initial_params(cfg.initial_checkpoint_path, config,
                                                parts.shardings.params)
    logs.announce(f"initialised params from {cfg.initial_checkpoint_path} (step {first_step})")
  else:
    logs.announce("warning: training from scratch (random init): INITIAL_CHECKPOINT_PATH is not "
                  "set; finetuning needs a pretrained checkpoint, e.g. "
                  "--gin.INITIAL_CHECKPOINT_PATH=\"'/path/to/model_dir'\"")
  state, _ = partitioning.create_train_state(config, parts.tx, init_rng, mesh, rules,
                                             params=params)
  if first_step:
    state = state.replace(step=jax.device_put(np.int32(first_step), parts.shardings.step))
  return state


def restore_or_init(cfg: TrainConfig, mesh: jax.sharding.Mesh, rules: Any) -> Start:
  """The run's :class:`Start`; writes ``model_config.json`` and trims ``train_metrics.jsonl`` to
  the step it starts from."""
  found = checkpoints.restore_latest(cfg.model_dir, functools.partial(_setup, cfg, mesh, rules),
                                     need_data=True, move_bad=True)
  multihost.sync("flan_jax.train.restore_latest")
  latest = None if found is None else found[0]
  meta, first, final, shards, parts, state = (_setup(cfg, mesh, rules, None) if found is None
                                              else found[1])
  if _finished(cfg, latest, final):
    return Start(state, parts, latest, first, final, shards, 0, 0, done=True)
  if jax.process_index() == 0:
    checkpoints.save_config(cfg.model_dir, cfg.decoder_config,
                            allow_change=cfg.checkpoint.allow_config_change)
  metrics_path = fs.join(cfg.model_dir, logs.METRICS_FILE)
  if latest is not None:
    seed, position = int(meta["seed"]), int(meta["data_position"])
    logs.announce(f"resumed from {cfg.model_dir}/checkpoint_{latest} (data position {position})")
    logs.truncate_metrics(metrics_path, latest)
  else:
    seed, position = multihost.shared_seed(cfg.random_seed), 0
    state = _initialise(cfg, mesh, rules, parts, seed, first)
    logs.truncate_metrics(metrics_path, first)
  return Start(state, parts, latest, first, final, shards, seed, position)
