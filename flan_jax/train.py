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
*complete* checkpoint in ``MODEL_DIR`` (resume; the data iterator skips the batches already
consumed), else ``INITIAL_CHECKPOINT_PATH`` (a flan_jax model dir or ``checkpoint_<step>`` dir:
params and its step, fresh optimizer state; or a Hugging Face directory with ``config.json`` and
safetensors: params, step 0), else random init. ``TRAIN_STEPS`` is the absolute final step;
``TRAIN_STEPS_RELATIVE`` (when set) makes it the initial checkpoint's step + that many, also
after a crash and resume. On SIGTERM (preemption) the loop finishes the current step, logs it,
saves a checkpoint at that step, waits for the save and returns (exit code 0). A non-finite loss
or gradient norm stops the run with :class:`NonFiniteLossError` naming the step, after saving the
step's host-local batch to ``MODEL_DIR/nonfinite_batch_step_<N>.npz``; no checkpoint is written
from then on (unless ``skip_nonfinite_updates``, which drops such updates and goes on).

Multi-host (t5x flags): ``--coordinator_address=HOST:PORT --process_count=N --process_index=I``
call ``jax.distributed.initialize`` first (CPU collectives via gloo). The global batch depends on
``num_data_shards`` (gin ``NUM_DATA_SHARDS``; None = process count), not on the process count,
see :mod:`flan_jax.data`; the shard count is kept in the checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
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
from flan_jax import (
  gin_utils,
  hf_interop,
  losses,
  model_checkpoint,
  model_info,
  partitioning,
  registry,
  trainer,
)
from flan_jax.gin_utils import REPO_ROOT, parse_gin  # noqa: F401  (re-exported)
from flan_jax.models import DecoderConfig

REQUIRED_MACROS = ("MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "TRAIN_STEPS",
                   "MODEL_CONFIG")
METRICS_FILE = "train_metrics.jsonl"
SUMMARY_DIR = "train"  # TensorBoard event files, under MODEL_DIR.
NONFINITE_BATCH = "nonfinite_batch_step_{step}"
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


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


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
                    data_position: int, seed: int, extra: Mapping[str, Any] | None = None) -> None:
  """Saves ``checkpoint_<step>``: the state and JSON data meta (position, seed, ``extra``)."""
  step = int(state.step)
  meta = {"step": step, "data_position": data_position, "seed": seed, **(extra or {})}
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


# Fields that do not change the parameters (compute choices); ignored when comparing configs.
_RUNTIME_FIELDS = ("dtype", "param_dtype", "dropout_rate", "scan_layers", "remat_policy")


def config_differences(have: DecoderConfig, want: DecoderConfig) -> dict[str, tuple[Any, Any]]:
  """{field: (have, want)} for the fields that differ, compute-only fields aside."""
  a, b = (dict(c.to_dict(), num_kv_heads=c.kv_heads) for c in (have, want))
  return {k: (a[k], b[k]) for k in a if k not in _RUNTIME_FIELDS and a[k] != b[k]}


def initial_step(path: str | None) -> int:
  """The step an initial checkpoint continues from (0 for none or a Hugging Face directory)."""
  if not path or hf_interop.is_hf_model_dir(path):
    return 0
  return model_checkpoint.checkpoint_step(path)


def restore_initial_params(path: str, config: DecoderConfig, shardings: Any) -> Any:
  """Params of a flan_jax checkpoint or a Hugging Face directory (whose config must match)."""
  if not hf_interop.is_hf_model_dir(path):
    return model_checkpoint.restore_params(path, config, shardings=shardings)
  with open(os.path.join(path, "config.json")) as f:
    hf_config = hf_interop.decoder_config_from_hf(json.load(f), dtype=config.dtype,
                                                   scan_layers=config.scan_layers)
  diff = config_differences(hf_config, config)
  if diff:
    fields = ", ".join(f"{k} (checkpoint {a!r}, MODEL_CONFIG {b!r})" for k, (a, b) in diff.items())
    raise ValueError(f"the Hugging Face model in {path} does not match MODEL_CONFIG: {fields}")
  _, params = hf_interop.load_hf(path, dtype=config.dtype, scan_layers=config.scan_layers)
  params = jax.tree.map(lambda x: np.asarray(x, config.param_dtype), params)
  return jax.device_put(params, shardings)


# --- validation -------------------------------------------------------------------------------


def check_required_macros(names: Sequence[str] = REQUIRED_MACROS) -> None:
  """Raises ValueError naming every required macro of a training run that is unset."""
  gin_utils.check_required_macros(names)


def _validate(mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
              batch_size: int, num_microbatches: int) -> None:
  registry.ensure_registered()
  registry.get(mixture_or_task_name)  # Unknown names raise with close matches.
  if set(task_feature_lengths) not in ({"inputs", "targets"}, {"targets"}):
    raise ValueError("TASK_FEATURE_LENGTHS must be {'inputs': L1, 'targets': L2} (prefix LM) or "
                     f"{{'targets': L}} (plain LM), got {dict(task_feature_lengths)}")
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


# Dense bf16 peak FLOP/s per device, by a lower-case substring of ``device_kind`` (first match
# wins). Sources: NVIDIA H100/H200 datasheets (SXM 989.4 TFLOP/s dense bf16, i.e. half the
# "with sparsity" figure; H100 PCIe 756), A100 datasheet (312), Google Cloud TPU system
# architecture pages (v4 275, v5e 197, v5p 459, v6e/Trillium 918 per chip). JAX reports one
# device per chip on these TPUs (megacore). Models computing in float32 get far less than this.
PEAK_FLOPS_BY_DEVICE_KIND = (
    ("h100 pcie", 756e12), ("h100", 989e12), ("h200", 989e12), ("gh200", 989e12),
    ("a100", 312e12), ("v5 lite", 197e12), ("v5e", 197e12), ("v5p", 459e12), ("tpu v5", 459e12),
    ("v6 lite", 918e12), ("v6e", 918e12), ("tpu v4", 275e12),
)


def default_peak_flops_per_device(device_kind: str | None = None) -> float | None:
  """Peak bf16 FLOP/s of ``device_kind`` (default: the first device's), None when unknown/CPU."""
  kind = (jax.devices()[0].device_kind if device_kind is None else device_kind).lower()
  for key, flops in PEAK_FLOPS_BY_DEVICE_KIND:
    if key in kind:
      return flops
  return None


class NonFiniteLossError(FloatingPointError):
  """The loss or gradient norm of a step was NaN/Inf (the run stops; see ``train``)."""


def _save_nonfinite_batch(model_dir: str, step: int, batch: Mapping[str, np.ndarray]) -> str:
  """Writes this process's batch rows of ``step`` (other processes add ``.process_<i>``)."""
  name = NONFINITE_BATCH.format(step=step)
  if jax.process_index():
    name += f".process_{jax.process_index()}"
  path = os.path.join(model_dir, name + ".npz")
  np.savez(path, **batch)
  return path


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
          log_period: int = 10, progress: bool = True, async_checkpointing: bool = True,
          skip_nonfinite_updates: bool = False, num_data_shards: int | None = None,
          relative_steps: int | None = None,
          peak_flops_per_device: float | None = None, eval_period: int | None = None,
          eval_mixture_or_task_name: str | None = None, eval_split: str = "validation",
          eval_batch_size: int = 32, eval_num_examples: int | None = None
          ) -> partitioning.TrainState:
  """Trains to step ``train_steps`` (absolute), resuming from ``model_dir`` when possible.

  ``random_seed=None`` draws a seed; it is stored in each checkpoint, so resume stays exact.
  ``relative_steps``: train to (initial checkpoint's step + relative_steps) instead.
  ``num_data_shards``: data shards of the global batch (None: the process count; a resumed run
  keeps its checkpoint's). ``peak_flops_per_device`` (None: looked up by device kind; on CPU the
  host's measured f32 matmul FLOP/s for all devices together) gives MFU = model FLOP/s / peak.
  ``eval_period``: every so many steps (and at the end) run ``seqio.Evaluator`` on
  ``eval_mixture_or_task_name`` / ``eval_split`` (:mod:`flan_jax.eval`: rank classification and
  decoding); metrics go to TensorBoard (``eval/<task>/<metric>``) and seqio's logs in
  ``MODEL_DIR/inference_eval``.
  """
  _validate(mixture_or_task_name, task_feature_lengths, batch_size, num_microbatches)
  if eval_period and not eval_mixture_or_task_name:
    raise ValueError("EVAL_PERIOD needs EVAL_MIXTURE_OR_TASK_NAME (a mixture with eval metrics, "
                     "e.g. flan_heldout_nli_eval)")
  if eval_period:
    registry.get(eval_mixture_or_task_name)  # Unknown names fail before anything compiles.
  if train_steps is None and relative_steps is None:
    raise ValueError("set TRAIN_STEPS (absolute) or TRAIN_STEPS_RELATIVE")
  config = model_config.replace(dropout_rate=dropout_rate)
  os.makedirs(model_dir, exist_ok=True)
  set_aside_incomplete(model_dir)
  _sync("flan_jax.train.set_aside_incomplete")
  manager = checkpoint_manager(model_dir, keep_checkpoints, async_checkpointing)

  device_mesh = partitioning.create_mesh(mesh)
  rules = partitioning.standard_logical_axis_rules()
  replicas = int(np.prod([n for a, n in device_mesh.shape.items() if a in ("data", "fsdp")]))
  if (batch_size // max(num_microbatches, 1)) % replicas:
    raise ValueError(f"BATCH_SIZE {batch_size} / {num_microbatches} microbatches is not divisible "
                     f"by the {replicas} data-parallel replicas of mesh {mesh!r}")
  latest = manager.latest_step()
  meta: dict[str, Any] = {}
  if latest is not None:  # Only the data meta first: it fixes the final step and the shards.
    meta_path = os.path.join(model_dir, f"checkpoint_{latest}", _DATA, "metadata")
    if os.path.isfile(meta_path):
      with open(meta_path) as f:
        meta = json.load(f)
  # From the meta when resuming: the initial checkpoint may be gone by then.
  first_step = int(meta["initial_step"] if "initial_step" in meta
                   else initial_step(initial_checkpoint_path))
  if relative_steps is not None:
    train_steps = first_step + relative_steps
  num_shards = int(meta.get("num_data_shards", num_data_shards or jax.process_count()))
  if num_data_shards is not None and num_data_shards != num_shards:
    raise ValueError(f"num_data_shards={num_data_shards} but {model_dir}/checkpoint_{latest} was "
                     f"trained with {num_shards} (the data order would change); leave it unset")
  lr = trainer.make_schedule(schedule, learning_rate, warmup_steps, train_steps)
  tx = trainer.make_optimizer(optimizer, lr, weight_decay=weight_decay,
                              grad_clip_norm=grad_clip_norm,
                              skip_nonfinite_updates=skip_nonfinite_updates)
  shardings = partitioning.train_state_shardings(config, tx, device_mesh, rules)

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
      params = restore_initial_params(initial_checkpoint_path, config, shardings.params)
      _announce(f"initialised params from {initial_checkpoint_path} (step {first_step})")
    state, _ = partitioning.create_train_state(config, tx, init_rng, device_mesh, rules,
                                               params=params)
    if first_step:
      state = state.replace(step=jax.device_put(np.int32(first_step), shardings.step))
  dropout_rng = jax.random.split(jax.random.key(seed))[1]
  meta_extra = {"num_data_shards": num_shards, "initial_step": first_step}

  if jax.process_index() == 0:
    with open(os.path.join(model_dir, "config.gin"), "w") as f:
      f.write(gin.operative_config_str())
    model_checkpoint.save_config(model_dir, config)

  step_fn = trainer.partitioned_train_step(
      trainer.make_train_step(config, num_microbatches, loss_normalizing_factor,
                              label_smoothing, z_loss, lr),
      shardings, device_mesh, rules)
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
  bar = None
  if progress and jax.process_index() == 0:
    import tqdm
    bar = tqdm.tqdm(total=train_steps, initial=step, desc="train", dynamic_ncols=True)
  pending: list[tuple[int, dict]] = []
  window_start, window_steps = time.time(), 0
  metrics_path = os.path.join(model_dir, METRICS_FILE)

  def log(rows: list[dict]) -> None:
    if jax.process_index() == 0:
      _write_metrics(metrics_path, rows)
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
    manager.wait_until_finished()
    last = manager.latest_step()
    raise NonFiniteLossError(
        f"non-finite loss {values[0]} (grad norm {values[1]}) at step {bad_step}; its batch is in "
        f"{path}; no checkpoint written after it (last: "
        f"{'none' if last is None else f'{model_dir}/checkpoint_{last}'})")

  try:
    with _catch_sigterm() as preempted:
      while step < train_steps:
        state, metrics = step_fn(state, next(batches), dropout_rng)
        step += 1
        check_finite(unchecked)
        unchecked = (step, metrics, batches.last_local_batch)
        window_steps += 1
        pending.append((step, metrics))
        stop = preempted.is_set
        if bar is not None:
          bar.update(1)
        if step % checkpoint_period == 0 or step == train_steps or stop:
          check_finite(unchecked)
        if step % log_period == 0 or step == train_steps or stop:
          rows = fetch(pending)
          elapsed = max(time.time() - window_start, 1e-9)
          last = rows[-1]
          last["tokens_per_second"] = tokens_per_batch * window_steps / elapsed
          last["steps_per_second"] = window_steps / elapsed
          last["target_tokens_per_second"] = sum(r["num_target_tokens"] for r in rows) / elapsed
          postfix = {"loss": f"{last['loss']:.4f}", "tok_s": f"{last['tokens_per_second']:.0f}"}
          if peak_flops:
            last["mfu"] = last["tokens_per_second"] * flops_per_token / peak_flops
            postfix["mfu"] = f"{100 * last['mfu']:.1f}%"
          log(rows)
          if bar is not None:
            bar.set_postfix(postfix)
          pending, window_start, window_steps = [], time.time(), 0
        if step % checkpoint_period == 0 or step == train_steps or stop:
          save_checkpoint(manager, state, batches.position, seed, meta_extra)
        if eval_period and (step % eval_period == 0 or step == train_steps) and not stop:
          check_finite(unchecked)
          run_eval(step)
        if stop:
          break
      check_finite(unchecked)
  finally:
    manager.wait_until_finished()
    manager.close()
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


if __name__ == "__main__":
  # Run the copy imported as flan_jax.train, so gin's `train_script.train` is this same function.
  from flan_jax import train as _train_module
  _train_module.main()
