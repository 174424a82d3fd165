"""Multi-process training (``jax.distributed`` over gloo on CPU) and data-shard layout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import pytest

from flan_jax import train as train_lib
from flan_jax.parallel import partitioning
from flan_jax.training import batches as data_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 300
STEPS = 3


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict[str, str]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _command(model_dir: str, *extra: str) -> list[str]:
  return [sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={STEPS}",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}", "--gin.BATCH_SIZE=4",
          "--gin.NUM_DATA_SHARDS=2", "--gin.MESH='data=4,model=1'",
          "--gin.train_script.train.log_period=1", "--gin.train_script.train.progress=False",
          *extra]


def _losses(model_dir: str) -> list[float]:
  rows = [json.loads(line) for line in open(os.path.join(model_dir, train_lib.METRICS_FILE))]
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
  return [r["loss"] for r in rows]


def test_process_row_blocks_follow_process_order():
  """host_local_to_global puts process p's rows at block p (what the shard layout assumes)."""
  mesh = partitioning.create_mesh("data=4,model=2", jax.devices())
  assert data_lib.process_row_block(mesh, 8) == (0, 8)
  cfg = data_lib.DataConfig("demo_heldout_nli_train", {"inputs": 32, "targets": 8}, 8,
                            num_shards=4)
  assert data_lib.shards_for_process(cfg, mesh) == [0, 1, 2, 3]
  with pytest.raises(ValueError, match="not divisible by 3 data shards"):
    data_lib.shards_for_process(cfg.__class__(**{**cfg.__dict__, "num_shards": 3}), mesh)


@pytest.mark.slow  # ~100 s of two processes; aborted once when -n 2 workers shared 2 cores
def test_two_processes_match_one_process(tmp_path):
  """2 processes x 2 devices (gloo) and 1 process x 4 devices, both with 2 data shards, give the
  same global batches and so the same losses."""
  port = _free_port()
  procs, logs = [], []
  multi = str(tmp_path / "multi")
  for i in range(2):
    logs.append(str(tmp_path / f"p{i}.log"))
    with open(logs[-1], "w") as log:
      procs.append(subprocess.Popen(
          _command(multi, f"--coordinator_address=127.0.0.1:{port}", "--process_count=2",
                   f"--process_index={i}", "--initialization_timeout=120"),
          cwd=REPO, env=_env(2), stdout=log, stderr=subprocess.STDOUT))
  single = str(tmp_path / "single")
  logs.append(str(tmp_path / "single.log"))
  with open(logs[-1], "w") as log:
    procs.append(subprocess.Popen(_command(single), cwd=REPO, env=_env(4), stdout=log,
                                  stderr=subprocess.STDOUT))
  try:
    for proc, log in zip(procs, logs, strict=True):
      assert proc.wait(timeout=TIMEOUT_S) == 0, open(log).read()[-3000:]
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  multi_losses, single_losses = _losses(multi), _losses(single)
  assert multi_losses == pytest.approx(single_losses, abs=1e-5, rel=1e-5)
  assert len(set(multi_losses)) == STEPS  # Real, changing losses (not all the same batch).
  for model_dir in (multi, single):
    meta = json.load(open(os.path.join(model_dir, f"checkpoint_{STEPS}", "data", "metadata")))
    assert meta["num_data_shards"] == 2 and meta["data_position"] == STEPS


@pytest.mark.slow  # ~2 min of two processes; run by `make test-all`.
def test_dead_process_stops_the_survivor_with_one_readable_line(tmp_path):
  """SIGKILL of process 1 mid-run: process 0 stops within ~30 s (heartbeat watchdog), exit 1,
  naming the dead process and how to restart; its earlier checkpoints stay good."""
  import signal
  import time

  from flan_jax.training import checkpoints
  port = _free_port()
  model_dir = str(tmp_path / "run")
  procs, logs = [], []
  for i in range(2):
    logs.append(str(tmp_path / f"p{i}.log"))
    with open(logs[-1], "w") as log:
      procs.append(subprocess.Popen(
          _command(model_dir, f"--coordinator_address=127.0.0.1:{port}", "--process_count=2",
                   f"--process_index={i}", "--initialization_timeout=120",
                   "--gin.TRAIN_STEPS=100000", "--gin.CHECKPOINT_PERIOD=2"),
          cwd=REPO, env=_env(2), stdout=log, stderr=subprocess.STDOUT))
  try:
    deadline = time.time() + TIMEOUT_S
    while checkpoints.latest_good_step(model_dir) is None:
      assert time.time() < deadline and procs[0].poll() is None, open(logs[0]).read()[-3000:]
      time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    rc = procs[0].wait(timeout=90)
    waited = time.time() - killed
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  text = open(logs[0]).read()
  assert rc == 1, text[-3000:]
  assert waited < 45, waited
  assert "flan_jax: process 1 of 2 stopped sending heartbeats" in text, text[-3000:]
  assert "Restart all 2 processes with the same command" in text
  assert checkpoints.latest_good_step(model_dir) is not None
