"""Training hooks: each a small object with one job, called after every step (see :mod:`.loop`).

The loop builds a :class:`StepInfo` per step and calls :meth:`Hooks.after_step`, which runs the
hooks in order: :class:`NonFiniteGuard`, :class:`Throughput`, :class:`MetricsLog`,
:class:`Progress`, :class:`Checkpointer` (also SIGTERM, Ctrl-C), :class:`PeriodicEval`, and the
run-time tools :class:`CompileReport` (compile time after step 1, cache hits) and :class:`Profiler`
(``PROFILE_STEPS``: a ``jax.profiler`` trace in ``MODEL_DIR/profile``). A hook may ask
for a save (``wants_save``) or a stop (``stop_requested``); the container puts both in the
``StepInfo`` before any hook runs, so every hook sees the same decision.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from flan_jax.storage import fs
from flan_jax.training import checkpoints, logs

NONFINITE_BATCH = "nonfinite_batch_step_{step}"
Results = Mapping[str, Mapping[str, float]]  # task -> metric -> value


@dataclasses.dataclass
class StepInfo:
  """What a hook gets after step ``step`` (1-based: the number of steps done)."""

  step: int
  state: Any
  metrics: Mapping[str, jax.Array]
  local_batch: Mapping[str, np.ndarray]  # This process's rows of the step's batch.
  input_wait: float  # Seconds spent waiting for the batch.
  final_step: int
  stop: bool = False    # Set by the container: a hook asked to stop (SIGTERM) after this step.
  saving: bool = False  # Set by the container: a hook saves a checkpoint at this step.

  @property
  def last(self) -> bool:
    return self.step == self.final_step


class Hook:
  """No-op base: override the calls a hook needs."""

  stop_requested = False

  def open(self) -> None:
    """Before the first step."""

  def wants_save(self, info: StepInfo) -> bool:
    return False

  def after_step(self, info: StepInfo) -> None:
    """After each step, in list order."""

  def finish(self, step: int) -> None:
    """After the last step of a run that did not fail."""

  def close(self) -> None:
    """Always, last (also after an error)."""


class Hooks:
  """The ordered hooks of a run; a context manager that opens and closes them."""

  def __init__(self, hooks: Sequence[Hook]):
    self.hooks = list(hooks)

  def __enter__(self) -> Hooks:
    for hook in self.hooks:
      hook.open()
    return self

  def __exit__(self, *exc: Any) -> None:
    for hook in self.hooks:
      hook.close()

  @property
  def stop_requested(self) -> bool:
    return any(hook.stop_requested for hook in self.hooks)

  def after_step(self, info: StepInfo) -> None:
    info.stop = self.stop_requested
    info.saving = any(hook.wants_save(info) for hook in self.hooks)
    for hook in self.hooks:
      hook.after_step(info)

  def finish(self, step: int) -> None:
    for hook in self.hooks:
      hook.finish(step)


# --- metrics ----------------------------------------------------------------------------------


def fetch(items: Iterable[tuple[int, Mapping[str, jax.Array]]]) -> list[dict]:
  """Metric rows ``{"step": s, name: float}`` of (step, device metrics) pairs."""
  return [{"step": s, **{k: float(v) for k, v in jax.device_get(m).items()}} for s, m in items]


class MetricsLog(Hook):
  """Writes the metric rows to ``train_metrics.jsonl`` (process 0, fsynced) and TensorBoard
  every ``period`` steps and at every save, so each row up to a checkpoint is on disk before the
  checkpoint exists. ``fields`` add keys to the last row of each write (``fields(rows, final)``)."""

  def __init__(self, model_dir: str, writer: Any, period: int,
               fields: Sequence[Callable[[list[dict], bool], dict]] = ()):
    self.model_dir, self.writer, self.period, self.fields = model_dir, writer, period, fields
    self.path = fs.join(model_dir, logs.METRICS_FILE)
    self.pending: list[tuple[int, Mapping[str, jax.Array]]] = []
    self.last_row: dict | None = None  # The last row written at the current step, else None.

  def after_step(self, info: StepInfo) -> None:
    self.pending.append((info.step, info.metrics))
    self.last_row = None
    if info.step % self.period == 0 or info.saving:
      rows = fetch(self.pending)
      for field in self.fields:
        rows[-1].update(field(rows, info.last or info.stop))
      self.write(rows)
      self.pending, self.last_row = [], rows[-1]

  def write_through(self, step: int) -> None:
    """Writes the pending rows up to ``step`` as they are (before a run stops on an error)."""
    self.write(fetch((s, m) for s, m in self.pending if s <= step))

  def write(self, rows: list[dict]) -> None:
    if jax.process_index() == 0:
      try:
        logs.write_metrics(self.path, rows)
      except OSError as e:  # A full disk stops the run with one line, as a failed save does.
        good = checkpoints.latest_good_step(self.model_dir)
        raise checkpoints.CheckpointWriteError(
            f"{self.path} could not be written: {e.strerror or e}; "
            f"{'no checkpoint' if good is None else f'checkpoint_{good}'} is the latest good "
            "one") from e
    for row in rows:
      self.writer.write_scalars(row["step"], {k: v for k, v in row.items() if k != "step"})
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


class Throughput(Hook):
  """Tokens/s, steps/s, the share of time waiting for input and MFU over each log window (a
  :class:`MetricsLog` field). MFU = model FLOP/s / ``peak_flops`` (0: not reported)."""

  def __init__(self, tokens_per_batch: int, flops_per_token: float, peak_flops: float):
    self.tokens_per_batch, self.flops_per_token = tokens_per_batch, flops_per_token
    self.peak_flops = peak_flops
    self._reset()

  def _reset(self) -> None:
    self.start, self.steps, self.input_wait = time.time(), 0, 0.0

  def open(self) -> None:  # The first window starts with the loop, not when the hook was built.
    self._reset()

  def after_step(self, info: StepInfo) -> None:
    self.steps += 1
    self.input_wait += info.input_wait

  def fields(self, rows: list[dict], final: bool) -> dict[str, float]:
    del final
    elapsed = max(time.time() - self.start, 1e-9)
    out = {"tokens_per_second": self.tokens_per_batch * self.steps / elapsed,
           "steps_per_second": self.steps / elapsed,
           "target_tokens_per_second": sum(r["num_target_tokens"] for r in rows) / elapsed,
           # Steps are dispatched asynchronously: this bounds the device's input wait from above.
           "timing/input_wait_fraction": self.input_wait / elapsed}
    if self.peak_flops:
      out["mfu"] = out["tokens_per_second"] * self.flops_per_token / self.peak_flops
    self._reset()
    return out


class TruncationReport:
  """``data/truncated_fraction_<feature>`` of the examples read so far (a :class:`MetricsLog`
  field); the console lines are printed when truncation is first seen and at the end."""

  def __init__(self, truncation: Any):
    self.truncation, self.said = truncation, False

  def __call__(self, rows: list[dict], final: bool) -> dict[str, float]:
    del rows
    messages = self.truncation.messages()
    if messages and (final or not self.said):
      for message in messages:
        logs.announce(message)
      self.said = True
    return {f"data/truncated_fraction_{k}": over / seen
            for k, (over, seen, _) in self.truncation.counts().items() if over}


class Progress(Hook):
  """A tqdm bar on process 0 with the last logged loss, tokens/s, input wait and MFU."""

  def __init__(self, enabled: bool, step: int, final_step: int, log: MetricsLog):
    self.bar, self.log = None, log
    if enabled and jax.process_index() == 0:
      import tqdm
      self.bar = tqdm.tqdm(total=final_step, initial=step, desc="train", dynamic_ncols=True)

  def write(self, message: str) -> None:
    if self.bar is not None:
      self.bar.write(message)

  def after_step(self, info: StepInfo) -> None:
    if self.bar is None:
      return
    self.bar.update(1)
    row = self.log.last_row
    if row is not None:
      postfix = {"loss": f"{row['loss']:.4f}", "tok_s": f"{row['tokens_per_second']:.0f}",
                 "wait": f"{100 * row['timing/input_wait_fraction']:.1f}%"}
      if "mfu" in row:
        postfix["mfu"] = f"{100 * row['mfu']:.1f}%"
      self.bar.set_postfix(postfix)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


# --- failures, checkpoints, evaluation --------------------------------------------------------


class NonFiniteLossError(checkpoints.ReportedError, FloatingPointError):
  """The loss or gradient norm of a step was NaN/Inf (see :class:`NonFiniteGuard`)."""


def nonfinite_text(loss: float, grad_norm: float) -> str:
  """Names what was non-finite: the loss, the gradient norm or both."""
  if not math.isfinite(loss) and not math.isfinite(grad_norm):
    return f"non-finite loss {loss} and grad norm {grad_norm}"
  if not math.isfinite(loss):
    return f"non-finite loss {loss} (grad norm {grad_norm} is finite)"
  return f"non-finite grad norm {grad_norm} (the loss, {loss:.6g}, is finite)"


def save_nonfinite_batch(model_dir: str, step: int, batch: Mapping[str, np.ndarray]) -> str:
  """Writes this process's batch rows of ``step`` (other processes add ``.process_<i>``)."""
  name = NONFINITE_BATCH.format(step=step)
  if jax.process_index():
    name += f".process_{jax.process_index()}"
  path = fs.join(model_dir, name + ".npz")
  data = io.BytesIO()
  np.savez(data, **batch)
  fs.write_bytes(path, data.getvalue())
  return path


class NonFiniteGuard(Hook):
  """Stops the run at a NaN/Inf loss or gradient norm: writes the metric rows up to it, saves
  the step's batch, waits for in-flight saves and raises :class:`NonFiniteLossError`. A step is
  checked after the next one is dispatched (one step stays in flight) and before any save or
  evaluation (:meth:`flush`), so bad params are never saved. ``skip``: never stop (the
  optimizer drops such updates)."""

  def __init__(self, model_dir: str, log: MetricsLog, ckpts: Any, skip: bool = False):
    self.model_dir, self.log, self.ckpts, self.skip = model_dir, log, ckpts, skip
    self.unchecked: tuple[int, Mapping, Mapping] | None = None

  def flush(self) -> None:
    """Checks the step still in flight."""
    if self.unchecked is None or self.skip:
      return
    step, metrics, local_batch = self.unchecked
    values = [float(x) for x in jax.device_get((metrics["loss"], metrics["grad_norm"]))]
    if all(math.isfinite(v) for v in values):
      return
    self.log.write_through(step)
    path = save_nonfinite_batch(self.model_dir, step, local_batch)
    self.ckpts.finish()
    last = checkpoints.latest_good_step(self.model_dir)
    last_text = "none" if last is None else f"{self.model_dir}/checkpoint_{last}"
    raise NonFiniteLossError(f"{nonfinite_text(*values)} at step {step}; its batch is in {path}; "
                             f"no checkpoint written after it (last: {last_text})")

  def after_step(self, info: StepInfo) -> None:
    self.flush()
    self.unchecked = (info.step, info.metrics, info.local_batch)
    if info.saving:
      self.flush()

  def finish(self, step: int) -> None:
    self.flush()


class Checkpointer(Hook):
  """Saves ``checkpoint_<step>`` every ``period`` steps, at the final step and on SIGTERM or
  Ctrl-C (SIGINT) (preemption or the user: the run stops after the step, the save is waited
  for, exit 0; a second Ctrl-C aborts at once, without a save). ``meta()`` gives the JSON saved
  beside the state (data position, seed, ...). A failed background save stops the run at the
  next step."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, ckpts: Any, period: int, meta: Callable[[], dict]):
    self.ckpts, self.period, self.meta = ckpts, period, meta
    self.final_step: int | None = None
    self._previous: dict[int, Any] = {}
    self._stop_signal: int | None = None

  @property
  def stop_requested(self) -> bool:
    return self._stop_signal is not None

  def _on_signal(self, signum: int, frame: Any) -> None:
    del frame
    if signum == signal.SIGINT:
      if self._stop_signal is not None:  # The second Ctrl-C: abort now.
        raise KeyboardInterrupt
      logs.announce("Ctrl-C: stopping after this step with a checkpoint (Ctrl-C again aborts "
                    "at once, without one)")
    if self._stop_signal is None:
      self._stop_signal = signum

  def open(self) -> None:
    """Catches SIGTERM and SIGINT (only possible from the main thread; elsewhere they are not
    caught here)."""
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._on_signal)

  def wants_save(self, info: StepInfo) -> bool:
    self.final_step = info.final_step
    return info.step % self.period == 0 or info.last or info.stop

  def after_step(self, info: StepInfo) -> None:
    self.ckpts.check()
    if info.saving:
      self.ckpts.save(info.state, {"step": info.step, **self.meta()})

  def finish(self, step: int) -> None:
    self.ckpts.finish()
    if self.stop_requested and self.final_step is not None and step < self.final_step:
      why = ("preempted (SIGTERM)" if self._stop_signal == signal.SIGTERM
             else "interrupted (Ctrl-C)")
      logs.announce(f"{why} at step {step}; saved {self.ckpts.model_dir}/checkpoint_{step}")

  def close(self) -> None:
    self.ckpts.close()
    for sig, previous in self._previous.items():  # ``None``: not set from Python.
      signal.signal(sig, signal.SIG_DFL if previous is None else previous)
    self._previous = {}


class PeriodicEval(Hook):
  """Runs ``evaluate(step, params) -> {task: {metric: value}}`` every ``period`` steps and at
  the final step (not on SIGTERM), after the in-flight step is checked; results go to TensorBoard
  as ``eval/<task>/<metric>``. A failing evaluation is logged and training goes on."""

  def __init__(self, period: int, evaluate: Callable[[int, Any], Results], writer: Any,
               guard: NonFiniteGuard, progress: Progress):
    self.period, self.evaluate, self.writer = period, evaluate, writer
    self.guard, self.progress = guard, progress

  def after_step(self, info: StepInfo) -> None:
    if info.stop or not (info.step % self.period == 0 or info.last):
      return
    self.guard.flush()
    try:
      results = self.evaluate(info.step, info.state.params)
    except Exception as e:  # A long run must not die (losing steps) in an evaluation.
      logging.exception("evaluation at step %d failed", info.step)
      logs.announce(f"step {info.step}: evaluation failed, training continues "
                    f"({type(e).__name__}: {e})")
      return
    scalars = {f"eval/{task}/{name}": value for task, values in results.items()
               for name, value in values.items()}
    if scalars:
      self.writer.write_scalars(info.step, scalars)
      self.writer.flush()
    accuracy = [v["accuracy"] for v in results.values() if "accuracy" in v]
    if accuracy:
      self.progress.write(f"step {info.step}: eval mean accuracy {np.mean(accuracy):.1f} over "
                          f"{len(accuracy)} tasks")


# --- run-time tools ---------------------------------------------------------------------------


class CompileReport(Hook):
  """After the first step, one line with the XLA compile seconds of the run's start (state init
  and the train step) and how many programs came from the persistent compilation cache
  (``stats``: an open :class:`.runtime.CompileStats`, closed here)."""

  def __init__(self, stats: Any, cache_path: str | None):
    self.stats, self.cache_path = stats, cache_path

  def after_step(self, info: StepInfo) -> None:
    if self.stats is not None:
      self.stats.close()
      logs.announce(self.stats.summary(self.cache_path))
      self.stats = None

  def close(self) -> None:
    if self.stats is not None:
      self.stats.close()


class Profiler(Hook):
  """A ``jax.profiler`` trace of steps ``start`` .. ``stop - 1`` (``PROFILE_STEPS='START:STOP'``)
  in ``log_dir`` (TensorBoard's profile plugin / XProf read it): the trace starts before step
  ``start`` and stops once step ``stop - 1`` (or the run's last step) has finished on the
  devices. Steps of the range that the run does not execute (a resume past them) are not traced.
  ``initial_step``: the steps done before the run; ``enabled``: this process traces (by default
  only process 0)."""

  def __init__(self, log_dir: str, start: int, stop: int, initial_step: int,
               enabled: bool = True):
    self.log_dir, self.start, self.stop, self.enabled = log_dir, start, stop, enabled
    self.initial_step = initial_step
    self.tracing = self.done = False
    self.first = 0

  def _begin(self, next_step: int) -> None:
    if self.enabled and not (self.tracing or self.done) and self.start <= next_step < self.stop:
      jax.profiler.start_trace(self.log_dir)
      self.tracing, self.first = True, next_step

  def open(self) -> None:
    self._begin(self.initial_step + 1)

  def after_step(self, info: StepInfo) -> None:
    if self.tracing and (info.step >= self.stop - 1 or info.last or info.stop):
      jax.block_until_ready((info.state, info.metrics))  # The trace holds the steps' device work.
      jax.profiler.stop_trace()
      self.tracing, self.done = False, True
      logs.announce(f"profile of steps {self.first}-{info.step} written to {self.log_dir} "
                    f"(tensorboard --logdir {self.log_dir}: Profile tab)")
    self._begin(info.step + 1)

  def close(self) -> None:
    if self.tracing:  # The run failed inside the traced steps: keep what was traced.
      jax.profiler.stop_trace()
      self.tracing = False
