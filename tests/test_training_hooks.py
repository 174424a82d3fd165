"""Each training hook on its own, the hook container, the loop and the typed run config."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import gin
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from flan_jax.models import DecoderConfig
from flan_jax.training import batches as batches_lib
from flan_jax.training import config as training_config
from flan_jax.training import hooks, logs, loop, state

CFG = DecoderConfig(vocab_size=64, num_layers=1, d_model=16, num_heads=2, head_dim=8, d_ff=32)


class Writer:
  """Records what a clu metric writer is given."""

  def __init__(self):
    self.scalars, self.flushes, self.closed = [], 0, False

  def write_scalars(self, step, scalars):
    self.scalars.append((step, dict(scalars)))

  def flush(self):
    self.flushes += 1

  def close(self):
    self.closed = True


class Checkpoints:
  """Records the calls a hook makes on :class:`flan_jax.training.checkpoints.TrainCheckpoints`."""

  def __init__(self, model_dir="/nowhere", fail=False):
    self.model_dir, self.fail, self.calls = model_dir, fail, []

  def check(self):
    self.calls.append("check")
    if self.fail:
      raise OSError("background save failed")

  def save(self, state, meta):
    self.calls.append(("save", meta["step"], meta))

  def finish(self):
    self.calls.append("finish")

  def close(self):
    self.calls.append("close")


def _metrics(loss=1.0, grad_norm=1.0, tokens=4.0):
  return {"loss": jnp.float32(loss), "grad_norm": jnp.float32(grad_norm),
          "num_target_tokens": jnp.float32(tokens)}


def _info(step, final=10, stop=False, saving=False, **metrics):
  return hooks.StepInfo(step, None, _metrics(**metrics), {"x": np.arange(3)}, 0.25, final,
                        stop=stop, saving=saving)


def _rows(model_dir):
  return [json.loads(line) for line in open(os.path.join(model_dir, logs.METRICS_FILE))]


def test_metrics_log_writes_every_period_and_at_saves_with_fields(tmp_path):
  writer = Writer()
  log = hooks.MetricsLog(str(tmp_path), writer, period=3,
                         fields=[lambda rows, final: {"n_rows": len(rows), "final": final}])
  for step in (1, 2):
    log.after_step(_info(step))
  assert not (tmp_path / logs.METRICS_FILE).exists() and log.last_row is None
  log.after_step(_info(3))
  assert [r["step"] for r in _rows(tmp_path)] == [1, 2, 3]
  assert _rows(tmp_path)[-1]["n_rows"] == 3 and "n_rows" not in _rows(tmp_path)[0]
  log.after_step(_info(4, saving=True))  # A save writes the rows before the checkpoint exists.
  assert [r["step"] for r in _rows(tmp_path)] == [1, 2, 3, 4] and log.last_row["step"] == 4
  log.after_step(_info(5, final=5))  # Not a log step: nothing is written.
  assert len(_rows(tmp_path)) == 4 and log.last_row is None
  assert [s for s, _ in writer.scalars] == [1, 2, 3, 4]
  assert writer.scalars[2][1]["loss"] == 1.0 and "step" not in writer.scalars[2][1]
  log.close()
  assert writer.closed


def test_metrics_log_names_a_failed_write(tmp_path):
  log = hooks.MetricsLog(str(tmp_path / "missing"), Writer(), period=1)
  with pytest.raises(Exception, match="could not be written.*no checkpoint"):
    log.after_step(_info(1))


def test_throughput_fields_cover_the_window_and_reset():
  meter = hooks.Throughput(tokens_per_batch=100, flops_per_token=6.0, peak_flops=1e3)
  for step in (1, 2):
    meter.after_step(_info(step))
  fields = meter.fields([{"num_target_tokens": 4.0}, {"num_target_tokens": 6.0}], False)
  assert fields["tokens_per_second"] == pytest.approx(200 * fields["steps_per_second"] / 2)
  assert fields["target_tokens_per_second"] == pytest.approx(
      10 * fields["tokens_per_second"] / 200)
  assert fields["mfu"] == pytest.approx(fields["tokens_per_second"] * 6.0 / 1e3)
  assert 0 < fields["timing/input_wait_fraction"]  # 0.25 s per step of waiting was reported.
  assert meter.steps == 0 and meter.input_wait == 0.0
  assert "mfu" not in hooks.Throughput(100, 6.0, 0.0).fields([{"num_target_tokens": 1.0}], True)


def test_truncation_report_gives_fractions_and_prints_first_and_last(capsys):
  counter = batches_lib.TruncationCounter({"inputs": 2})
  rows = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2, 3], [1, 2]]))
  ds = counter.wrap(rows.map(lambda x: {"inputs": x}), {})
  for _ in ds:
    pass
  report = hooks.TruncationReport(counter)
  assert report([], False) == {"data/truncated_fraction_inputs": 0.5}
  first = capsys.readouterr().err
  assert "inputs: 1 of 2 examples" in first
  report([], False)
  assert capsys.readouterr().err == ""  # Quiet between the first sighting and the end.
  report([], True)
  assert "inputs: 1 of 2 examples" in capsys.readouterr().err


def test_nonfinite_guard_checks_one_step_late_and_at_saves(tmp_path):
  ckpts = Checkpoints(str(tmp_path))
  log = hooks.MetricsLog(str(tmp_path), Writer(), period=100)
  guard = hooks.NonFiniteGuard(str(tmp_path), log, ckpts)
  for info in (_info(1), _info(2, loss=float("nan"))):
    log.after_step(info)
    guard.after_step(info)  # Step 2 is still in flight: not checked yet.
  with pytest.raises(hooks.NonFiniteLossError, match="non-finite loss nan .* at step 2; its batch"):
    guard.after_step(_info(3))
  assert [r["step"] for r in _rows(tmp_path)] == [1, 2] and _rows(tmp_path)[1]["loss"] is None
  assert np.array_equal(np.load(tmp_path / "nonfinite_batch_step_2.npz")["x"], np.arange(3))
  assert ckpts.calls == ["finish"]  # In-flight saves are waited for before the error.
  saving = hooks.NonFiniteGuard(str(tmp_path), log, ckpts)
  with pytest.raises(hooks.NonFiniteLossError, match="grad norm inf"):
    saving.after_step(_info(4, grad_norm=float("inf"), saving=True))  # Never saved: checked now.
  skip = hooks.NonFiniteGuard(str(tmp_path), log, ckpts, skip=True)
  skip.after_step(_info(5, loss=float("nan"), saving=True))
  skip.finish(5)


def test_checkpointer_saves_on_period_last_and_sigterm(tmp_path):
  ckpts = Checkpoints()
  saver = hooks.Checkpointer(ckpts, period=4, meta=lambda: {"seed": 7})
  assert [s for s in range(1, 11) if saver.wants_save(_info(s, final=10))] == [4, 8, 10]
  saver.after_step(_info(4, saving=True))
  saver.after_step(_info(5))
  assert ckpts.calls == ["check", ("save", 4, {"step": 4, "seed": 7}), "check"]
  before = signal.getsignal(signal.SIGTERM)
  saver.open()
  os.kill(os.getpid(), signal.SIGTERM)  # Caught: the run stops after the step, with a save.
  assert saver.stop_requested and saver.wants_save(_info(6, stop=True))
  saver.finish(6)
  saver.close()
  assert signal.getsignal(signal.SIGTERM) is before and ckpts.calls[-2:] == ["finish", "close"]
  with pytest.raises(OSError, match="background save failed"):
    hooks.Checkpointer(Checkpoints(fail=True), 4, dict).after_step(_info(1))


def test_periodic_eval_runs_at_period_and_end_and_survives_errors(tmp_path, capsys):
  calls, writer = [], Writer()

  def evaluate(step, params):
    calls.append(step)
    if step == 6:
      raise RuntimeError("eval broke")
    return {"task": {"accuracy": 50.0}}

  guard = hooks.NonFiniteGuard(str(tmp_path), hooks.MetricsLog(str(tmp_path), Writer(), 1),
                               Checkpoints())
  progress = hooks.Progress(False, 0, 7, None)
  hook = hooks.PeriodicEval(3, evaluate, writer, guard, progress)
  for step in range(1, 8):
    info = _info(step, final=7, stop=step == 5)
    info.state = type("S", (), {"params": {"w": step}})()
    hook.after_step(info)
  assert calls == [3, 6, 7]
  assert writer.scalars == [(3, {"eval/task/accuracy": 50.0}), (7, {"eval/task/accuracy": 50.0})]
  assert "step 6: evaluation failed, training continues (RuntimeError: eval broke)" in \
      capsys.readouterr().err


def test_progress_bar_counts_steps_and_shows_the_logged_row():
  log = hooks.MetricsLog("/nowhere", Writer(), 1)
  log.last_row = {"loss": 1.5, "tokens_per_second": 10.0, "timing/input_wait_fraction": 0.5}
  progress = hooks.Progress(True, 2, 10, log)
  progress.after_step(_info(3))
  assert progress.bar.n == 3 and progress.bar.postfix == "loss=1.5000, tok_s=10, wait=50.0%"
  progress.close()
  assert hooks.Progress(False, 0, 10, log).bar is None


class Recorder(hooks.Hook):
  def __init__(self, name, trace, stop_at=None, save_at=()):
    self.name, self.trace, self.stop_at, self.save_at = name, trace, stop_at, save_at
    self.stop_requested = False

  def wants_save(self, info):
    return info.step in self.save_at

  def after_step(self, info):
    self.trace.append((self.name, info.step, info.stop, info.saving))
    if info.step == self.stop_at:
      self.stop_requested = True

  def finish(self, step):
    self.trace.append((self.name, "finish", step))

  def close(self):
    self.trace.append((self.name, "close"))


@dataclasses.dataclass(frozen=True)
class Counter:
  step: int


class Step:
  """A step function that adds one to a counter state (the batch is the step's input)."""

  def __call__(self, state, batch, rng):
    return Counter(state.step + 1), _metrics(loss=float(batch))


class Batches:
  def __init__(self):
    self.position, self.last_local_batch = 0, {}

  def __next__(self):
    self.position += 1
    return self.position


def test_loop_runs_hooks_in_order_and_stops_when_asked():
  trace = []
  start = state.Start(Counter(2), type("P", (), {"step_fn": Step()})(), None, 0, 9, 1, 0, 0)
  run = hooks.Hooks([Recorder("a", trace, stop_at=4, save_at=(5,)), Recorder("b", trace)])
  final = loop.train_loop(start, Batches(), run)
  assert final == Counter(5)  # Step 4 asked for a stop, seen (and saved) after step 5.
  assert trace == [("a", 3, False, False), ("b", 3, False, False), ("a", 4, False, False),
                   ("b", 4, False, False), ("a", 5, True, True), ("b", 5, True, True),
                   ("a", "finish", 5), ("b", "finish", 5), ("a", "close"), ("b", "close")]


def test_train_config_from_typed_and_flat_arguments_and_from_gin():
  typed = {"model_dir": "/m", "model_config": CFG, "mixture_or_task_name": "t",
           "task_feature_lengths": {"targets": 8}, "train_steps": 5, "dropout_rate": 0.1,
           "optimizer_cfg": training_config.OptimizerConfig(name="adamw", learning_rate=0.1),
           "checkpoint_cfg": training_config.CheckpointConfig(period=2, keep=3),
           "eval_cfg": training_config.EvalConfig(period=4, mixture_or_task_name="e")}
  cfg = training_config.from_arguments(typed)
  assert cfg.optimizer.name == "adamw" and cfg.optimizer.step_kwargs()["optimizer"] == "adamw"
  assert (cfg.checkpoint.period, cfg.checkpoint.keep, cfg.eval.period) == (2, 3, 4)
  assert cfg.eval.enabled and cfg.decoder_config.dropout_rate == 0.1
  assert cfg.partitioning == training_config.PartitioningConfig()
  with pytest.raises(TypeError, match="lerning_rate"):
    training_config.from_arguments({"lerning_rate": 1.0})
  # train()'s flat arguments of before the typed configs (one release): folded in, with a warning.
  flat = {k: v for k, v in typed.items() if not k.endswith("_cfg")} | {
      "optimizer": "adamw", "learning_rate": 0.1, "checkpoint_period": 2, "keep_checkpoints": 3,
      "eval_period": 4, "eval_mixture_or_task_name": "e"}
  with pytest.warns(DeprecationWarning, match="learning_rate -> training.OptimizerConfig"):
    folded = training_config.fold_flat_arguments(flat)
  assert training_config.from_arguments(folded) == cfg
  gin.clear_config()
  try:
    gin.parse_config("""
from __gin__ import dynamic_registration
from flan_jax.training import config as training
RUN = @training.TrainConfig()
training.TrainConfig:
  model_dir = '/m'
  model_config = @training.DecoderConfig()  # The default model.
  mixture_or_task_name = 't'
  task_feature_lengths = {'targets': 8}
  train_steps = 5
  optimizer = @training.OptimizerConfig()
training.OptimizerConfig.name = 'adamw'
training.OptimizerConfig.learning_rate = 0.1
""")
    built = gin.query_parameter("%RUN").scoped_configurable_fn()
  finally:
    gin.clear_config()
  assert built.optimizer == cfg.optimizer and built.train_steps == 5


@pytest.mark.parametrize("run", ["finetune", "eval", "infer"])
def test_run_gin_header_lists_every_required_macro(run):
  import importlib
  import re
  command = importlib.import_module(f"flan_jax.{'train' if run == 'finetune' else run}")
  path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "gin", "runs", f"{run}.gin")
  text = open(path).read()
  header = text[:text.index("Commonly overridden")]
  required = set(re.findall(r"^(\w+) = %gin.REQUIRED", text, re.M))
  required |= set(command.REQUIRED_MACROS) - {"MODEL_CONFIG"}  # MODEL_CONFIG: the model file.
  assert required and all(re.search(rf"\b{m}\b", header) for m in required), required


class TimedBatches(Batches):
  """Batches that take ``wait`` seconds each to arrive."""

  def __init__(self, wait: float):
    super().__init__()
    self.wait = wait

  def __next__(self):
    time.sleep(self.wait)
    return super().__next__()


class TimedStep(Step):
  """A step that takes ``seconds``."""

  def __init__(self, seconds: float):
    self.seconds = seconds

  def __call__(self, state, batch, rng):
    time.sleep(self.seconds)
    return super().__call__(state, batch, rng)


@pytest.mark.parametrize("wait, step", [(0.05, 0.0), (0.0, 0.05), (0.02, 0.02)])
def test_input_wait_fraction_is_the_share_of_time_waiting_for_batches(wait, step):
  meter = hooks.Throughput(tokens_per_batch=1, flops_per_token=1.0, peak_flops=0.0)
  parts = type("P", (), {"step_fn": TimedStep(step)})()
  loop.train_loop(state.Start(Counter(0), parts, None, 0, 6, 1, 0, 0), TimedBatches(wait),
                  hooks.Hooks([meter]))
  fraction = meter.fields([{"num_target_tokens": 1.0}], True)["timing/input_wait_fraction"]
  assert 0.0 <= fraction <= 1.0
  if wait > step:  # Input-bound: nearly all the time is spent waiting.
    assert fraction > 0.6
  elif step > wait:  # Step-bound: the batches are there when asked for.
    assert fraction < 0.4
  else:
    assert 0.2 < fraction < 0.8


def test_device_prefetch_keeps_order_overlaps_the_step_and_reraises():
  def slow(n: int, fail_at: int | None = None):
    for i in range(n):
      time.sleep(0.03)
      if i == fail_at:
        raise ValueError("batch 3 is broken")
      yield i

  prefetch = batches_lib.DevicePrefetch(slow(6), depth=2)
  got, waited = [], 0.0
  for _ in range(6):
    time.sleep(0.05)  # The "step": longer than a batch takes, so the batch is already there.
    t = time.time()
    got.append(next(prefetch))
    waited += time.time() - t
  assert got == list(range(6))
  assert waited < 0.03 * 6 / 2  # Without prefetch next() would wait 0.03 s each time.
  with pytest.raises(StopIteration):
    next(prefetch)
  failing = batches_lib.DevicePrefetch(slow(6, fail_at=3), depth=2)
  assert [next(failing) for _ in range(3)] == [0, 1, 2]
  with pytest.raises(ValueError, match="batch 3 is broken"):
    next(failing)
  stopped = batches_lib.DevicePrefetch(slow(1000), depth=2)
  next(stopped)
  stopped.close()
  assert not stopped._thread.is_alive()  # A stopped run leaves no thread behind.
