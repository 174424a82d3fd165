"""Kill/preemption behaviour of ``python -m flan_jax.train`` (subprocesses) and the plot CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from flan_jax import train as train_lib
from flan_jax.evaluation import plot
from flan_jax.models import checkpoint as model_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 240  # Start-up (TF + JAX imports, compile) takes ~10-20 s on 2 quiet cores.


def _command(model_dir: str, steps: int) -> list[str]:
  return [sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}",
          "--gin.CHECKPOINT_PERIOD=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
          # log_period 10 > CHECKPOINT_PERIOD 4: rows must still reach disk with each checkpoint.
          "--gin.BATCH_SIZE=4", "--gin.train_script.train.log_period=10",
          "--gin.train_script.train.progress=False"]


def _child_env(compile_cache: str | None = None) -> dict[str, str]:
  """This environment without conftest's 8 simulated devices: the CLI runs as a user runs it.
  ``compile_cache``: a persistent XLA cache dir shared by the children (saves recompiling)."""
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join(flags)
  if compile_cache:
    env.update(JAX_COMPILATION_CACHE_DIR=compile_cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return env


def _start(model_dir: str, steps: int, log_path: str,
           compile_cache: str | None = None) -> subprocess.Popen:
  with open(log_path, "w") as log:  # The child keeps its own copy of the descriptor.
    return subprocess.Popen(_command(model_dir, steps), cwd=REPO, env=_child_env(compile_cache),
                            stdout=log, stderr=subprocess.STDOUT)


def _wait_for_checkpoint(proc: subprocess.Popen, model_dir: str, step: int, log: str) -> None:
  path = os.path.join(model_dir, f"checkpoint_{step}")
  deadline = time.time() + START_TIMEOUT_S
  while not train_lib.is_complete_checkpoint(path):
    if proc.poll() is not None:
      pytest.fail(f"train exited ({proc.returncode}) before {path}:\n{open(log).read()[-3000:]}")
    if time.time() > deadline:
      proc.kill()
      pytest.fail(f"no {path} after {START_TIMEOUT_S} s:\n{open(log).read()[-3000:]}")
    time.sleep(0.02)


def _complete_steps(model_dir: str) -> list[int]:
  return [s for s in model_checkpoint.steps(model_dir)
          if train_lib.is_complete_checkpoint(os.path.join(model_dir, f"checkpoint_{s}"))]


def _run_to_completion(model_dir: str, steps: int, log: str,
                       compile_cache: str | None = None) -> None:
  proc = _start(model_dir, steps, log, compile_cache)
  assert proc.wait(timeout=START_TIMEOUT_S) == 0, open(log).read()[-3000:]


def _params(model_dir: str, step: int) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(model_checkpoint.restore_params(model_dir,
                                                                                 step=step))]


# ~40 s on 2 quiet cores (~70 s loaded): 3 train subprocesses, 2 side by side.
@pytest.mark.slow  # ~100 s; test_trainer's resume test checks bitwise resume in make test
def test_sigkill_then_resume_is_bitwise_exact(tmp_path):
  # Each child spends ~15 s starting (imports, data pipeline, compiles); the steps take ~3 s.
  steps = 80  # Leaves ~19 checkpoints after the kill point: the kill lands mid-run.
  killed, full = str(tmp_path / "killed"), str(tmp_path / "full")
  cache = str(tmp_path / "xla_cache")  # The resumed run reuses the first runs' executables.
  # The uninterrupted reference run goes alongside the one to be killed.
  ref = _start(full, steps, str(tmp_path / "full.log"), cache)
  log = str(tmp_path / "killed.log")
  proc = _start(killed, steps, log, cache)
  _wait_for_checkpoint(proc, killed, 4, log)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL
  assert max(_complete_steps(killed)) < steps, "finished before SIGKILL: raise TRAIN_STEPS"
  _run_to_completion(killed, steps, str(tmp_path / "resumed.log"), cache)
  assert ref.wait(timeout=START_TIMEOUT_S) == 0, open(tmp_path / "full.log").read()[-3000:]
  assert "resumed from" in open(tmp_path / "resumed.log").read()
  for a, b in zip(_params(full, steps), _params(killed, steps), strict=True):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(line) for line in open(os.path.join(killed, train_lib.METRICS_FILE))]
  assert [r["step"] for r in rows] == list(range(1, steps + 1))


def test_sigterm_saves_and_exits_cleanly(tmp_path):
  model_dir, log = str(tmp_path / "run"), str(tmp_path / "run.log")
  proc = _start(model_dir, 100_000, log)
  _wait_for_checkpoint(proc, model_dir, 4, log)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 0, open(log).read()[-3000:]
  rows = [json.loads(line) for line in open(os.path.join(model_dir, train_lib.METRICS_FILE))]
  stop = rows[-1]["step"]
  assert max(_complete_steps(model_dir)) == stop > 4
  assert f"preempted (SIGTERM) at step {stop}" in open(log).read()
  meta = json.load(open(os.path.join(model_dir, f"checkpoint_{stop}", "data", "metadata")))
  assert meta["step"] == stop and meta["data_position"] == stop


def test_plot_writes_three_pngs(tmp_path, capsys):
  with open(tmp_path / train_lib.METRICS_FILE, "w") as f:
    for step in range(1, 21):
      row = {"step": step, "loss": 5.0 / step, "learning_rate": 0.01}
      if step % 5 == 0:
        row["tokens_per_second"] = 1000.0 + step
      f.write(json.dumps(row) + "\n")
  out = tmp_path / "plots"
  assert plot.main([str(tmp_path), "--output", str(out)]) == 0
  for name in ("loss.png", "learning_rate.png", "throughput.png"):
    data = (out / name).read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000
  assert "loss.png" in capsys.readouterr().out
  with pytest.raises(SystemExit):
    plot.main([str(tmp_path / "missing")])
  assert "no metrics file" in capsys.readouterr().err
