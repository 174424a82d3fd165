"""The training loop: restore-or-init, then ``while step < end: step_fn; hooks.after_step``.

Everything else a run does (logging, throughput, the non-finite guard, checkpoints, SIGTERM/Ctrl-C,
the progress bar, periodic evaluation) is a hook (:mod:`.hooks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gin
import jax

from flan_jax.parallel import heartbeat
from flan_jax.storage import fs
from flan_jax.training import batches as batches_lib
from flan_jax.training import checkpoints, hooks, logs, perf, runtime
from flan_jax.training.config import TrainConfig
from flan_jax.training.state import Start, restore_or_init

SUMMARY_DIR = "train"  # TensorBoard event files, under MODEL_DIR.
PROFILE_DIR = "profile"  # jax.profiler traces (PROFILE_STEPS), under MODEL_DIR.


def default_hooks(cfg: TrainConfig, start: Start, batches: batches_lib.TrainIterator,
                  evaluate: Callable[[int, Any], hooks.Results] | None = None,
                  compiles: runtime.CompileStats | None = None) -> hooks.Hooks:
  """The hooks of a ``flan-jax train`` run, in order (see :mod:`.hooks`); ``compiles``: the
  compile stats of the run's start, reported after the first step."""
  writer = logs.summary_writer(fs.join(cfg.model_dir, SUMMARY_DIR),
                              just_logging=jax.process_index() != 0)
  config = cfg.decoder_config
  seq_len = sum(cfg.task_feature_lengths.values())
  # Model FLOPs (PaLM: 6N + causal attention; the bidirectional prefix is counted as causal).
  throughput = hooks.Throughput(cfg.batch_size * seq_len, config.train_flops_per_token(seq_len),
                                perf.total_peak_flops(cfg.peak_flops_per_device))
  log = hooks.MetricsLog(cfg.model_dir, writer, cfg.log_period,
                         (throughput.fields, hooks.TruncationReport(batches.truncation)))
  progress = hooks.Progress(cfg.progress, int(start.state.step), start.final_step, log)
  ckpts = checkpoints.TrainCheckpoints(cfg.model_dir, cfg.checkpoint.keep,
                                       cfg.checkpoint.async_checkpointing)
  meta = {"seed": start.seed, "num_data_shards": start.num_shards, "packer": cfg.packer,
          "initial_step": start.first_step, "model_config": config.to_dict()}
  guard = hooks.NonFiniteGuard(cfg.model_dir, log, ckpts, cfg.optimizer.skip_nonfinite_updates)
  saver = hooks.Checkpointer(ckpts, cfg.checkpoint.period,
                             lambda: {"data_position": batches.position, **meta})
  run = [guard, throughput, log, progress, saver]
  if cfg.eval.enabled and evaluate is not None:
    run.append(hooks.PeriodicEval(cfg.eval.period, evaluate, writer, guard, progress))
  if compiles is not None:
    run.append(hooks.CompileReport(compiles, cfg.compilation_cache_path))
  if cfg.profile_range is not None:
    run.append(hooks.Profiler(fs.join(cfg.model_dir, PROFILE_DIR), *cfg.profile_range,
                              int(start.state.step),
                              cfg.profile_all_processes or jax.process_index() == 0))
  return hooks.Hooks(run)


def train_loop(start: Start, batches: batches_lib.TrainIterator, run_hooks: hooks.Hooks) -> Any:
  """Runs the steps from ``start.state`` to ``start.final_step`` (or a stop); the final state."""
  state, step = start.state, int(start.state.step)
  dropout_rng = jax.random.split(jax.random.key(start.seed))[1]
  with run_hooks:
    while step < start.final_step:
      wait_start = time.time()
      batch = next(batches)
      input_wait = time.time() - wait_start
      state, metrics = start.parts.step_fn(state, batch, dropout_rng)
      step += 1
      info = hooks.StepInfo(step, state, metrics, batches.last_local_batch, input_wait,
                            start.final_step)
      run_hooks.after_step(info)
      heartbeat.step_completed()  # Peers now allow this process the shorter silence.
      if info.stop:
        break
    run_hooks.finish(step)
  return state


def run(cfg: TrainConfig, mesh: jax.sharding.Mesh, rules: Any,
        evaluate: Callable[[int, Any], hooks.Results] | None = None) -> Any:
  """Trains ``cfg`` on ``mesh``, resuming from ``cfg.model_dir`` when possible; the final state."""
  with (runtime.persistent_cache(cfg.compilation_cache_path),
        runtime.CompileStats() as compiles):  # Reported after the first step (CompileReport).
    start = restore_or_init(cfg, mesh, rules)
    if start.done:
      return start.state
    if jax.process_index() == 0:
      fs.write_text(fs.join(cfg.model_dir, "config.gin"), gin.operative_config_str())
    data_cfg = batches_lib.DataConfig(
        cfg.mixture_or_task_name, dict(cfg.task_feature_lengths), cfg.batch_size, seed=start.seed,
        use_cached=cfg.use_cached_tasks, num_shards=start.num_shards, packer=cfg.packer,
        device_prefetch=cfg.device_prefetch)
    batches = batches_lib.TrainIterator(data_cfg, mesh, start.position)
    try:
      run_hooks = default_hooks(cfg, start, batches, evaluate, compiles)
      if int(start.state.step) >= start.final_step:  # TRAIN_STEPS(_RELATIVE) = 0.
        logs.announce(f"nothing to train: the run starts at step {int(start.state.step)} and "
                      f"TRAIN_STEPS is {start.final_step}; returning the initial state (no "
                      "checkpoint written)")
      return train_loop(start, batches, run_hooks)
    finally:
      batches.close()
