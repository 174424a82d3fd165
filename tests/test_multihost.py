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
  """Start-up under a CPU hog (busy loops, heartbeat timeout 5 s): no false stop. Then SIGKILL of
  process 1 mid-run: process 0 stops within seconds (heartbeat watchdog), exit 1, naming the
  dead process and how to restart, before jax's own watchdog; its earlier checkpoints stay
  good."""
  import signal
  import time

  from flan_jax.training import checkpoints
  port = _free_port()
  model_dir = str(tmp_path / "run")
  hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
  procs, logs = [], []
  for i in range(2):
    logs.append(str(tmp_path / f"p{i}.log"))
    with open(logs[-1], "w") as log:
      procs.append(subprocess.Popen(
          _command(model_dir, f"--coordinator_address=127.0.0.1:{port}", "--process_count=2",
                   f"--process_index={i}", "--initialization_timeout=120",
                   "--gin.TRAIN_STEPS=100000", "--gin.CHECKPOINT_PERIOD=2"),
          cwd=REPO, env={**_env(2), "FLAN_JAX_HEARTBEAT_TIMEOUT": "5"}, stdout=log,
          stderr=subprocess.STDOUT))
  try:
    deadline = time.time() + 2 * TIMEOUT_S
    while checkpoints.latest_good_step(model_dir) is None:
      assert time.time() < deadline and procs[0].poll() is None, open(logs[0]).read()[-3000:]
      time.sleep(0.2)
    for hog in hogs:
      hog.kill()
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    rc = procs[0].wait(timeout=90)
    waited = time.time() - killed
  finally:
    for proc in [*hogs, *procs]:
      if proc.poll() is None:
        proc.kill()
  text = open(logs[0]).read()
  assert rc == 1, text[-3000:]
  assert waited < 45, waited  # jax's own watchdog: not before 2 x 122 s + 60 s / 2.
  assert "flan_jax: process 1 of 2 stopped sending heartbeats" in text, text[-3000:]
  assert "Restart all 2 processes with the same command" in text
  assert checkpoints.latest_good_step(model_dir) is not None


# --- the heartbeat watchdog (flan_jax.parallel.heartbeat) --------------------------------------


class _FakeKV:
  """The two key-value calls of jax's DistributedRuntimeClient, in memory."""

  def __init__(self):
    self.values: dict[str, str] = {}

  def key_value_set(self, key: str, value: str, allow_overwrite: bool = False) -> None:
    self.values[key] = value

  def key_value_dir_get(self, prefix: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in self.values.items() if k.startswith(prefix)]


def _watch_until_death(kv: _FakeKV, timeouts, seconds: float, monkeypatch) -> str | None:
  """Runs process 0's watch loop for ``seconds`` (0.02 s beats); its death message, or None."""
  import threading

  from flan_jax.parallel import heartbeat

  class Died(Exception):
    pass

  def die(message):
    raise Died(message)

  monkeypatch.setattr(heartbeat, "_die", die)
  stop = threading.Event()
  threading.Timer(seconds, stop.set).start()
  try:
    heartbeat.watch(kv, 0, 2, timeouts, interval_s=0.02, stop=stop)
  except Died as e:
    stop.set()
    return str(e)
  return None


def test_heartbeat_allows_a_silent_start_up_but_not_a_silent_run(monkeypatch):
  """A peer still starting up may be silent up to startup_s; after its first step the shorter
  timeout applies, stretched by the longest gap seen; bad settings are refused by name."""
  import threading
  import time

  from flan_jax.parallel import heartbeat
  timeouts = heartbeat.Timeouts(timeout_s=0.2, startup_s=1.0)
  kv = _FakeKV()
  kv.values[f"{heartbeat.PREFIX}1"] = "start:1"  # Then silent (importing, compiling) for 0.6 s.
  assert _watch_until_death(kv, timeouts, 0.6, monkeypatch) is None
  message = _watch_until_death(kv, timeouts, 3.0, monkeypatch)  # Silent past startup_s.
  assert "process 1 of 2 stopped sending heartbeats 1 s ago while starting up" in message
  assert "Restart all 2 processes with the same command" in message

  kv.values[f"{heartbeat.PREFIX}1"] = "run:5"  # Past its first step, then silent: 0.2 s.
  started = time.monotonic()
  message = _watch_until_death(kv, timeouts, 3.0, monkeypatch)
  assert "after its first step" in message and time.monotonic() - started < 0.9

  def beat_with_gaps():  # Beats every 0.02 s with a 0.15 s gap, then a 0.35 s one, then stops.
    for i in range(60):
      kv.values[f"{heartbeat.PREFIX}1"] = f"run:{i}"
      time.sleep({20: 0.15, 40: 0.35}.get(i, 0.02))
    last_beat.append(time.monotonic())
  last_beat: list[float] = []
  writer = threading.Thread(target=beat_with_gaps)
  writer.start()
  message = _watch_until_death(kv, timeouts, 5.0, monkeypatch)
  died = time.monotonic()
  writer.join()
  # The 0.35 s gap passed (3 x 0.15 s allowed, not 0.2 s); the final silence: 3 x 0.35 s.
  assert "after its first step" in message and last_beat and died - last_beat[0] > 1.0

  kv.values[f"{heartbeat.PREFIX}1"] = heartbeat.EXITED  # A finished peer: startup_s of grace.
  assert _watch_until_death(kv, timeouts, 0.6, monkeypatch) is None
  assert "exited" in _watch_until_death(kv, timeouts, 3.0, monkeypatch)

  with pytest.raises(ValueError, match="FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT"):
    heartbeat.Timeouts(timeout_s=30, startup_s=10)
  monkeypatch.setenv("FLAN_JAX_HEARTBEAT_TIMEOUT", "soon")
  with pytest.raises(ValueError, match="FLAN_JAX_HEARTBEAT_TIMEOUT='soon' is not a number"):
    heartbeat.Timeouts.from_env()
  monkeypatch.setenv("FLAN_JAX_HEARTBEAT_TIMEOUT", "200")
  assert heartbeat.Timeouts.from_env() == heartbeat.Timeouts(200, 200)
  # jax's own watchdog (which may fire from half its timeout) stays behind ours.
  assert heartbeat.jax_heartbeat_timeout_s(heartbeat.Timeouts()) / 2 > 120 + 2


# Process 1 holds the GIL (a start-up in C code: imports, tracing) for STALL_S with its heartbeat
# thread starved, completes a "step", beats, then the test SIGKILLs it; process 0 just waits.
_PEER = """
import os, sys, time
from flan_jax.parallel import heartbeat, multihost
index = int(sys.argv[2])
multihost.initialize({"coordinator_address": sys.argv[1], "num_processes": 2,
                      "process_id": index}, None, timeout_s=60)
if index == 1:
  sys.setswitchinterval(60)  # The main thread keeps the GIL through the busy loop.
  end = time.monotonic() + float(os.environ["STALL_S"])
  while time.monotonic() < end:
    pass
  sys.setswitchinterval(0.005)
heartbeat.step_completed()
print("step 1 done", flush=True)
time.sleep(120)
"""


def test_heartbeat_survives_a_stalled_start_up_and_names_a_killed_peer(tmp_path):
  """Two real processes (jax.distributed on loopback): process 1's heartbeat starved for 4 s at
  start-up (timeout 1.5 s, start-up 15 s) is no death; SIGKILL after its first step ends process
  0 with our line (exit 1) within seconds, before jax's own watchdog."""
  import signal
  import time
  port = _free_port()
  env = {**_env(1), "FLAN_JAX_HEARTBEAT_TIMEOUT": "1.5",
         "FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT": "15", "STALL_S": "4"}
  procs, logs = [], []
  for i in range(2):
    logs.append(tmp_path / f"p{i}.log")
    with open(logs[-1], "w") as log:
      procs.append(subprocess.Popen([sys.executable, "-c", _PEER, f"127.0.0.1:{port}", str(i)],
                                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
  try:
    deadline = time.time() + 120
    while "step 1 done" not in logs[1].read_text():
      assert time.time() < deadline and procs[1].poll() is None, logs[1].read_text()[-3000:]
      time.sleep(0.1)
    time.sleep(3)  # A few beats after the first step.
    assert procs[0].poll() is None, logs[0].read_text()[-3000:]  # No false stop.
    procs[1].send_signal(signal.SIGKILL)
    killed = time.time()
    rc = procs[0].wait(timeout=60)
    waited = time.time() - killed
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  text = logs[0].read_text()
  assert rc == 1, text[-3000:]
  assert "flan_jax: process 1 of 2 stopped sending heartbeats" in text, text[-3000:]
  assert "after its first step" in text and "Restart all 2 processes" in text
  assert waited < 15, waited
