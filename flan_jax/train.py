r"""Fine-tuning entry point with t5x's command line and gin conventions.

    python -m flan_jax.train --gin_file=gin/runs/demo.gin --gin.MODEL_DIR="'/tmp/demo'"

Flags: ``--gin_file`` (repeatable, later files override earlier ones), ``--gin.NAME=VALUE``
(rewritten to ``--gin_bindings=NAME = VALUE``), ``--gin_bindings``, ``--gin_search_paths``
(default: cwd and the repository root) and ``--tfds_data_dir``. Run files bind
``train_script.train.*`` to the t5x macros of ``gin/runs/finetune.gin``.

``MODEL_DIR`` gets ``checkpoint_<step>/{state,data}`` (orbax; ``state`` = step, params, optimizer
state; ``data`` = JSON with the data position and seed), ``config.gin`` (operative config),
``model_config.json`` and ``train_metrics.jsonl``. Restore precedence: the latest *complete*
checkpoint in ``MODEL_DIR`` (resume; the data iterator skips the batches already consumed), else
``INITIAL_CHECKPOINT_PATH`` (params only; the step starts at 0), else random init.
``TRAIN_STEPS`` is the absolute final step. On SIGTERM (preemption) the loop finishes the current
step, logs it, saves a checkpoint at that step, waits for the save and returns (exit code 0).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np
import orbax.checkpoint as ocp

from flan_jax import data as data_lib
from flan_jax import losses, model_checkpoint, partitioning, registry, trainer
from flan_jax.models import DecoderConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED_MACROS = ("MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "TRAIN_STEPS",
                   "MODEL_CONFIG")
METRICS_FILE = "train_metrics.jsonl"
_STATE, _DATA = "state", "data"
_METADATA_FILE = "_CHECKPOINT_METADATA"


# --- checkpoints ------------------------------------------------------------------------------


def is_complete_checkpoint(step_dir: str) -> bool:
  """Orbax finalises a step by renaming its tmp dir; a finalised dir also holds the step
  metadata file and the state's metadata. Anything else (e.g. a copy cut short) is incomplete."""
  return (os.path.isfile(os.path.join(step_dir, _METADATA_FILE))
          and os.path.isfile(os.path.join(step_dir, _STATE, "_METADATA")))


def set_aside_incomplete(model_dir: str) -> list[str]:
  """Renames incomplete ``checkpoint_<step>`` dirs to ``*.incomplete`` so nothing reads or
  overwrites them (orbax itself removes its own ``*.orbax-checkpoint-tmp-*`` dirs)."""
  moved = []
  if jax.process_index() != 0:
    return moved
  for step in model_checkpoint.steps(model_dir):
    path = os.path.join(model_dir, f"checkpoint_{step}")
    if not is_complete_checkpoint(path):
      target = f"{path}.incomplete-{int(time.time())}"
      os.rename(path, target)
      _announce(f"skipping incomplete checkpoint {path} (moved to {target})")
      moved.append(target)
  return moved


def checkpoint_manager(model_dir: str, keep: int | None,
                       async_checkpointing: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      step_prefix="checkpoint", max_to_keep=keep, create=True, cleanup_tmp_directories=True,
      enable_async_checkpointing=async_checkpointing)
  return ocp.CheckpointManager(os.path.abspath(model_dir), options=options,
                               item_names=(_STATE, _DATA))


def _state_tree(state: partitioning.TrainState) -> dict[str, Any]:
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


def save_checkpoint(manager: ocp.CheckpointManager, state: partitioning.TrainState,
                    data_position: int, seed: int) -> None:
  step = int(state.step)
  meta = {"step": step, "data_position": data_position, "seed": seed}
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)),
                                             data=ocp.args.JsonSave(meta)), force=True)


def restore_checkpoint(manager: ocp.CheckpointManager, step: int,
                       abstract: partitioning.TrainState) -> tuple[partitioning.TrainState, dict]:
  """The TrainState of ``checkpoint_<step>`` (into ``abstract``'s shardings) and its data meta
  (``{}`` when the checkpoint has no ``data`` item)."""
  items = {_STATE: ocp.args.StandardRestore(_state_tree(abstract))}
  has_data = os.path.isdir(os.path.join(str(manager.directory), f"checkpoint_{step}", _DATA))
  if has_data:
    items[_DATA] = ocp.args.JsonRestore()
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  tree = restored[_STATE]
  state = abstract.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"])
  return state, dict(restored[_DATA]) if has_data else {}


def _abstract_state(config: DecoderConfig, tx: Any,
                    shardings: partitioning.TrainState) -> partitioning.TrainState:
  """ShapeDtypeStructs (with shardings) of the TrainState, to restore into."""
  from flan_jax.models import abstract_params
  shapes = jax.eval_shape(lambda p: partitioning.TrainState.create(p, tx), abstract_params(config))
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, shardings)


# --- validation -------------------------------------------------------------------------------


def check_required_macros(names: Sequence[str] = REQUIRED_MACROS) -> None:
  """Raises ValueError naming every required macro that is unset or ``%gin.REQUIRED``."""
  missing = []
  for name in names:
    try:
      value = gin.query_parameter(f"%{name}")
    except ValueError:
      missing.append(name)
      continue
    if repr(value) == "%gin.REQUIRED":
      missing.append(name)
  if missing:
    hints = " ".join(f"--gin.{m}=..." for m in missing)
    raise ValueError(f"required gin macro(s) not set: {', '.join(missing)} (e.g. {hints})")


def _validate(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
              batch_size: int, num_microbatches: int) -> None:
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  if set(task_feature_lengths) != {"inputs", "targets"}:
    raise ValueError("TASK_FEATURE_LENGTHS must be {'inputs': L1, 'targets': L2} (prefix LM), "
                     f"got {dict(task_feature_lengths)}")
  if batch_size % max(num_microbatches, 1):
    raise ValueError(f"BATCH_SIZE {batch_size} not divisible by {num_microbatches} microbatches")


# --- training loop ----------------------------------------------------------------------------


def _write_metrics(path: str, rows: list[dict]) -> None:
  with open(path, "a") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")


def _truncate_metrics(path: str, last_step: int) -> None:
  """Drops rows logged after ``last_step`` by a run that died before its next checkpoint."""
  if jax.process_index() != 0 or not os.path.exists(path):
    return
  with open(path) as f:
    lines = [line for line in f if line.strip() and json.loads(line)["step"] <= last_step]
  with open(path, "w") as f:
    f.writelines(lines)


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


def train(model_dir: str = gin.REQUIRED, model_config: DecoderConfig = gin.REQUIRED,
          mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
          train_steps: int = gin.REQUIRED, batch_size: int = 128, dropout_rate: float = 0.0,
          initial_checkpoint_path: str | None = None, use_cached_tasks: bool = False,
          random_seed: int | None = 0, checkpoint_period: int = 1000,
          keep_checkpoints: int | None = None, num_microbatches: int = 1,
          optimizer: str = "adafactor", learning_rate: float = 1e-3, schedule: str = "constant",
          warmup_steps: int = 0, weight_decay: float = 0.0, grad_clip_norm: float | None = None,
          loss_normalizing_factor: losses.Factor = "NUM_REAL_TARGET_TOKENS",
          label_smoothing: float = 0.0, z_loss: float = 1e-4, mesh: str = "data=-1,model=1",
          log_period: int = 10, progress: bool = True, async_checkpointing: bool = True,
          skip_nonfinite_updates: bool = False) -> partitioning.TrainState:
  """Trains to step ``train_steps`` (absolute), resuming from ``model_dir`` when possible.

  ``random_seed=None`` draws a seed; it is stored in each checkpoint, so resume stays exact.
  """
  _validate(mixture_or_task_name, task_feature_lengths, batch_size, num_microbatches)
  config = model_config.replace(dropout_rate=dropout_rate)
  os.makedirs(model_dir, exist_ok=True)
  set_aside_incomplete(model_dir)
  manager = checkpoint_manager(model_dir, keep_checkpoints, async_checkpointing)

  device_mesh = partitioning.create_mesh(mesh)
  rules = partitioning.standard_logical_axis_rules()
  replicas = int(np.prod([n for a, n in device_mesh.shape.items() if a in ("data", "fsdp")]))
  if (batch_size // max(num_microbatches, 1)) % replicas:
    raise ValueError(f"BATCH_SIZE {batch_size} / {num_microbatches} microbatches is not divisible "
                     f"by the {replicas} data-parallel replicas of mesh {mesh!r}")
  lr = trainer.make_schedule(schedule, learning_rate, warmup_steps, train_steps)
  tx = trainer.make_optimizer(optimizer, lr, weight_decay=weight_decay,
                              grad_clip_norm=grad_clip_norm,
                              skip_nonfinite_updates=skip_nonfinite_updates)
  shardings = partitioning.train_state_shardings(config, tx, device_mesh, rules)

  latest = manager.latest_step()
  if latest is not None:
    state, meta = restore_checkpoint(manager, latest,
                                     _abstract_state(config, tx, shardings))
    seed = int(meta.get("seed", _make_seed(random_seed)))
    position = int(meta.get("data_position", int(state.step)))
    _announce(f"resumed from {model_dir}/checkpoint_{latest} (data position {position})")
    _truncate_metrics(os.path.join(model_dir, METRICS_FILE), latest)
  else:
    seed, position = _make_seed(random_seed), 0
    init_rng = jax.random.split(jax.random.key(seed))[0]
    params = None
    if initial_checkpoint_path:
      params = model_checkpoint.restore_params(initial_checkpoint_path, config,
                                               shardings=shardings.params)
      _announce(f"initialised params from {initial_checkpoint_path}")
    state, _ = partitioning.create_train_state(config, tx, init_rng, device_mesh, rules,
                                               params=params)
  dropout_rng = jax.random.split(jax.random.key(seed))[1]

  if jax.process_index() == 0:
    with open(os.path.join(model_dir, "config.gin"), "w") as f:
      f.write(gin.operative_config_str())
    model_checkpoint.save_config(model_dir, config)

  step_fn = trainer.partitioned_train_step(
      trainer.make_train_step(config, num_microbatches, loss_normalizing_factor,
                              label_smoothing, z_loss, lr),
      shardings, device_mesh, rules)
  data_cfg = data_lib.DataConfig(mixture_or_task_name, dict(task_feature_lengths), batch_size,
                                 seed=seed, use_cached=use_cached_tasks)
  batches = data_lib.TrainIterator(data_cfg, device_mesh, position)
  tokens_per_batch = batch_size * sum(task_feature_lengths.values())

  step = int(state.step)
  bar = None
  if progress and jax.process_index() == 0:
    import tqdm
    bar = tqdm.tqdm(total=train_steps, initial=step, desc="train", dynamic_ncols=True)
  pending: list[tuple[int, dict]] = []
  window_start, window_steps = time.time(), 0
  metrics_path = os.path.join(model_dir, METRICS_FILE)
  with _catch_sigterm() as preempted:
    while step < train_steps:
      state, metrics = step_fn(state, next(batches), dropout_rng)
      step += 1
      window_steps += 1
      pending.append((step, metrics))
      stop = preempted.is_set
      if bar is not None:
        bar.update(1)
      if step % log_period == 0 or step == train_steps or stop:
        rows = [{"step": s, **{k: float(v) for k, v in jax.device_get(m).items()}}
                for s, m in pending]
        elapsed = max(time.time() - window_start, 1e-9)
        rows[-1]["tokens_per_second"] = tokens_per_batch * window_steps / elapsed
        rows[-1]["steps_per_second"] = window_steps / elapsed
        rows[-1]["target_tokens_per_second"] = sum(r["num_target_tokens"] for r in rows) / elapsed
        if jax.process_index() == 0:
          _write_metrics(metrics_path, rows)
        if bar is not None:
          bar.set_postfix(loss=f"{rows[-1]['loss']:.4f}",
                          tok_s=f"{rows[-1]['tokens_per_second']:.0f}")
        pending, window_start, window_steps = [], time.time(), 0
      if step % checkpoint_period == 0 or step == train_steps or stop:
        save_checkpoint(manager, state, batches.position, seed)
      if stop:
        break
    manager.wait_until_finished()
    manager.close()
  if bar is not None:
    bar.close()
  if preempted.is_set and step < train_steps:
    _announce(f"preempted (SIGTERM) at step {step}; saved {model_dir}/checkpoint_{step}")
  return state


# --- command line -----------------------------------------------------------------------------


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_search_paths: Sequence[str] = (".",)) -> None:
  """Parses files (later ones win) then bindings, searching ``gin_search_paths`` + repo root."""
  for path in list(gin_search_paths) + [REPO_ROOT]:
    gin.add_config_file_search_path(os.path.abspath(path))
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings), finalize_config=False)


def main(argv: Sequence[str] | None = None) -> None:
  from absl import app, flags

  from flan_jax.models.gin_config import rewrite_gin_args

  flags.DEFINE_multi_string("gin_file", [], "Gin files; later ones override earlier ones.")
  flags.DEFINE_multi_string("gin_bindings", [], "Individual gin bindings.")
  flags.DEFINE_list("gin_search_paths", ["."], "Search paths for gin files (+ repo root).")
  flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir override for seqio.")

  def run(_):
    from absl import logging as absl_logging
    if not flags.FLAGS["verbosity"].present:
      absl_logging.set_verbosity(absl_logging.WARNING)  # orbax/seqio INFO lines drown the bar.
    import seqio
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")  # Leave accelerator memory to JAX.
    flag_values = flags.FLAGS
    if flag_values.tfds_data_dir:
      seqio.set_tfds_data_dir_override(flag_values.tfds_data_dir)
    parse_gin(flag_values.gin_file, flag_values.gin_bindings, flag_values.gin_search_paths)
    check_required_macros()
    gin.get_configurable(train)()

  # ``argv`` holds flags only (as every flan_jax ``main``); absl wants a program name first.
  full = list(sys.argv) if argv is None else ["flan-jax train", *argv]
  app.run(run, argv=rewrite_gin_args(full))


if __name__ == "__main__":
  # Run the copy imported as flan_jax.train, so gin's `train_script.train` is this same function.
  from flan_jax import train as _train_module
  _train_module.main()
