"""bench/fault_campaign.py never leaves a process behind: a timed-out wait kills the child's
whole process group, and Ctrl-C of the campaign mid-run ends with no trainer of it alive."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMPAIGN = os.path.join(REPO, "bench", "fault_campaign.py")


def _campaign_module():
  spec = importlib.util.spec_from_file_location("fault_campaign", CAMPAIGN)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _running(marker: str) -> list[int]:
  """Pids of live (not zombie) processes whose command line contains ``marker``."""
  pids = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
      with open(f"/proc/{pid}/stat") as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
      continue
    if marker in cmdline and state != "Z":
      pids.append(int(pid))
  return pids


def _gone(marker: str, within_s: float = 5.0) -> list[int]:
  """The processes matching ``marker`` still alive after ``within_s`` s (SIGKILLed ones take a
  moment to exit)."""
  deadline = time.time() + within_s
  while (alive := _running(marker)) and time.time() < deadline:
    time.sleep(0.05)
  return alive


def test_a_timed_out_wait_kills_the_childs_whole_group(tmp_path):
  children = _campaign_module().Children()
  marker = f"sleep 3{os.getpid() % 1000:03d}"  # A grandchild: the shell's background sleep.
  proc = children.start(["sh", "-c", f"{marker} & {marker}"], str(tmp_path / "log"))
  deadline = time.time() + 30
  while len(_running(marker)) < 2:
    assert time.time() < deadline, "the two sleeps never started"
    time.sleep(0.05)
  assert children.wait(proc, timeout=0.2) is None
  assert _gone(marker) == []
  assert children.kill_all() == 0


def test_ctrl_c_of_the_campaign_leaves_no_trainer(tmp_path):
  """SIGINT while the reference trainer runs (before its first step): the campaign exits 130
  naming the killed group, and no ``flan_jax.train`` of its work dir survives."""
  work = str(tmp_path / "work")
  proc = subprocess.Popen([sys.executable, CAMPAIGN, "--steps", "12", "--kills", "0",
                           "--work_dir", work], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 60
    while not _running(f"flan_jax.train --gin_file=gin/runs/demo.gin --gin.MODEL_DIR='{work}"):
      assert proc.poll() is None and time.time() < deadline, proc.communicate()
      time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  assert proc.returncode == 130, err
  assert "killed 1 running child process group(s)" in err and "Traceback" not in err, err
  assert _gone(work) == []
