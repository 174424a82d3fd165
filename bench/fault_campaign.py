r"""Fault campaign against the trainer (issue 12), small enough for 2 CPU cores (~5-10 min).

    python bench/fault_campaign.py [--seed 0] [--kills 2] [--steps 40]

Runs ``python -m flan_jax.train`` on ``gin/runs/demo.gin`` (tiny model, checkpoint every 4
steps, KEEP_CHECKPOINTS=3, metrics every 10 steps) as a user does, once uninterrupted (the
reference), then under faults, each followed by a plain resume to the same final step:

* ``kill``: SIGKILL at a random moment after a random checkpoint appears (during training,
  saves or old-checkpoint deletion);
* ``bitflip``: one random bit flipped at a byte drawn uniformly over the latest checkpoint's
  state files (the resume must fall back, or -- a byte no read uses -- be bitwise equal);
* ``truncate``: the largest file of the latest checkpoint cut in half;
* ``disk_full``: the run's file system (a real 64 MiB tmpfs; needs root, else not run -- the
  test suite injects ENOSPC instead) fills up after checkpoint_4 while the run is stopped
  (SIGSTOP) -- it must stop at its next write with "... could not be written: No space left on
  device; checkpoint_<n> is the latest good one" and every earlier checkpoint intact; then a
  resume with space again;
* ``concurrent``: two trainers started at once on one MODEL_DIR -- one must be refused by the
  lock, the other finishes.

A fault is *survived* when the run ends with params bitwise equal to the reference's and every
metric row 1..steps present exactly once. ``silent_corruptions`` counts runs that exited 0 with
different params; ``lost_steps`` counts metric rows missing after the resumes. Last line::

    faults=<n> survived=<n> silent_corruptions=0 lost_steps=0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
START_TIMEOUT_S = 600


def _env(cache: str) -> dict[str, str]:
  env = dict(os.environ)
  env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", TF_CPP_MIN_LOG_LEVEL="2")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  return env


def _command(model_dir: str, steps: int) -> list[str]:
  return [sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}",
          "--gin.CHECKPOINT_PERIOD=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
          "--gin.BATCH_SIZE=4", "--gin.train_script.train.progress=False"]


class Campaign:
  def __init__(self, work: str, steps: int, seed: int):
    self.work, self.steps, self.rng = work, steps, random.Random(seed)
    self.cache = os.path.join(work, "xla_cache")
    self.faults = self.survived = self.silent = self.lost = 0
    self.reference: list | None = None

  def start(self, model_dir: str, log: str) -> subprocess.Popen:
    with open(log, "w") as f:
      return subprocess.Popen(_command(model_dir, self.steps), cwd=REPO, env=_env(self.cache),
                              stdout=f, stderr=subprocess.STDOUT)

  def run(self, model_dir: str, name: str) -> tuple[int, str]:
    log = os.path.join(self.work, f"{name}.log")
    rc = self.start(model_dir, log).wait(timeout=START_TIMEOUT_S)
    return rc, open(log).read()

  def params(self, model_dir: str) -> list:
    import jax
    import numpy as np

    from flan_jax.training import checkpoints
    return [np.asarray(x) for x in jax.tree.leaves(
        checkpoints.restore_params(model_dir, step=self.steps))]

  def judge(self, name: str, model_dir: str, rc: int, log: str, expected: str = "",
            unread_ok: bool = False) -> None:
    """Compares the finished run with the reference; prints one line."""
    import numpy as np
    self.faults += 1
    same = False
    if rc == 0:
      same = all(np.array_equal(a, b) for a, b in zip(self.params(model_dir), self.reference,
                                                      strict=True))
      if not same:
        self.silent += 1
    # A flipped byte that no read uses (a superseded B-tree node) is harmless: bitwise equal.
    ok = rc == 0 and (not expected or expected in log or (unread_ok and same))
    rows = [json.loads(line) for line in open(os.path.join(model_dir, "train_metrics.jsonl"))]
    steps = [r["step"] for r in rows]
    missing = set(range(1, self.steps + 1)) - set(steps)
    self.lost += len(missing)
    good = ok and same and not missing and len(steps) == len(set(steps))
    self.survived += good
    named = f" fell_back={expected in log}" if expected else ""
    print(f"{name}: rc={rc} bitwise_equal={same} rows={len(steps)} missing={len(missing)}{named} "
          f"{'survived' if good else 'FAILED'}", flush=True)
    if not good:
      print(log[-2000:], flush=True)

  def wait_for_checkpoint(self, proc: subprocess.Popen, model_dir: str, step: int) -> bool:
    from flan_jax.training import checkpoints
    deadline = time.time() + START_TIMEOUT_S
    path = os.path.join(model_dir, f"checkpoint_{step}")
    while not checkpoints.is_complete_checkpoint(path):
      if proc.poll() is not None or time.time() > deadline:
        return False
      time.sleep(0.01)
    return True

  # --- the faults ---------------------------------------------------------------------------

  def reference_run(self) -> None:
    model_dir = os.path.join(self.work, "reference")
    rc, log = self.run(model_dir, "reference")
    if rc:
      sys.exit(f"the reference run failed:\n{log[-3000:]}")
    self.reference = self.params(model_dir)

  def kill(self, i: int) -> None:
    model_dir = os.path.join(self.work, f"kill{i}")
    proc = self.start(model_dir, os.path.join(self.work, f"kill{i}.log"))
    at = self.rng.choice(range(4, self.steps // 2 + 1, 4))  # Mid-run (a late kill is fine too).
    if self.wait_for_checkpoint(proc, model_dir, at):
      time.sleep(self.rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rc, log = self.run(model_dir, f"kill{i}_resume")
    self.judge(f"kill {i} (after checkpoint_{at})", model_dir, rc, log)

  def damaged(self, kind: str) -> None:
    from flan_jax.training import checkpoints
    model_dir = os.path.join(self.work, kind)
    shutil.copytree(os.path.join(self.work, "reference"), model_dir)
    latest = os.path.join(model_dir, f"checkpoint_{self.steps}")
    with open(os.path.join(latest, checkpoints.CHECKSUM_FILE)) as f:
      files = [n for n in json.load(f)["files"] if n.startswith("state/")]
    if kind == "bitflip":  # A byte drawn uniformly over the state's bytes, as bit rot would.
      paths = [os.path.join(latest, n) for n in sorted(files)]
      path = self.rng.choices(paths, weights=[os.path.getsize(p) for p in paths])[0]
      offset, bit = self.rng.randrange(os.path.getsize(path)), self.rng.randrange(8)
      with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))
    else:
      path = max((os.path.join(latest, n) for n in files), key=os.path.getsize)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    # The last checkpoint is damaged: the resume must fall back and retrain the last 4 steps.
    rc, log = self.run(model_dir, f"{kind}_resume")
    self.judge(f"{kind} ({os.path.relpath(path, model_dir)})", model_dir, rc, log,
               expected=f"checkpoint_{self.steps} is unusable", unread_ok=kind == "bitflip")

  def disk_full(self) -> None:
    mount = os.path.join(self.work, "disk")
    os.makedirs(mount)
    real = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mount],
                          capture_output=True).returncode == 0
    model_dir = os.path.join(mount, "run")
    proc = self.start(model_dir, os.path.join(self.work, "disk_full.log"))
    filler = os.path.join(mount, "filler")
    try:
      if not real:  # tests/test_checkpoints.py injects ENOSPC in-process instead.
        proc.kill()
        print("disk_full: cannot mount a tmpfs here (needs root); not run", flush=True)
        return
      self.wait_for_checkpoint(proc, model_dir, 4)
      proc.send_signal(signal.SIGSTOP)  # Frozen while its disk fills up.
      with open(filler, "wb") as f:
        try:
          while True:
            f.write(b"\0" * 65536)
            f.flush()
        except OSError:
          pass
      proc.send_signal(signal.SIGCONT)
      rc = proc.wait(timeout=START_TIMEOUT_S)
      log = open(os.path.join(self.work, "disk_full.log")).read()
      stopped = rc == 1 and "could not be written: No space left on device" in log and \
          "is the latest good one" in log
      from flan_jax.training import checkpoints
      intact = all(checkpoints.problem(os.path.join(model_dir, f"checkpoint_{s}")) is None
                   for s in checkpoints.steps(model_dir))
      os.remove(filler)
      print(f"disk_full: stopped_at_failed_save={stopped} earlier_checkpoints_intact={intact}",
            flush=True)
      if not (stopped and intact):
        print(log[-2000:], flush=True)
        self.faults += 1
        return
      rc, log = self.run(model_dir, "disk_full_resume")
      self.judge("disk_full (resume with space again)", model_dir, rc, log)
    finally:
      if proc.poll() is None:
        proc.kill()
      if real:
        subprocess.run(["umount", mount], check=False)

  def concurrent(self) -> None:
    model_dir = os.path.join(self.work, "concurrent")
    os.makedirs(model_dir)
    logs = [os.path.join(self.work, f"concurrent{i}.log") for i in range(2)]
    procs = [self.start(model_dir, log) for log in logs]
    rcs = [p.wait(timeout=START_TIMEOUT_S) for p in procs]
    texts = [open(log).read() for log in logs]
    refused = [i for i in range(2) if rcs[i] == 1 and "is in use by flan-jax train" in texts[i]]
    winner = [i for i in range(2) if rcs[i] == 0]
    if len(refused) != 1 or len(winner) != 1:
      self.faults += 1
      print(f"concurrent: rcs={rcs} FAILED (exactly one trainer must be refused)", flush=True)
      for text in texts:
        print(text[-1500:], flush=True)
      return
    self.judge("concurrent (second trainer refused by the lock)", model_dir, 0,
               texts[winner[0]])


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--kills", type=int, default=2)
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--work_dir", default=None, help="kept when given (default: a temp dir)")
  args = parser.parse_args(argv)
  work = args.work_dir or tempfile.mkdtemp(prefix="flan_jax_faults-")
  os.makedirs(work, exist_ok=True)
  campaign = Campaign(work, args.steps, args.seed)
  try:
    campaign.reference_run()
    for i in range(args.kills):
      campaign.kill(i)
    campaign.damaged("bitflip")
    campaign.damaged("truncate")
    campaign.disk_full()
    campaign.concurrent()
  finally:
    if args.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
  print(f"faults={campaign.faults} survived={campaign.survived} "
        f"silent_corruptions={campaign.silent} lost_steps={campaign.lost}")
  return 0 if campaign.silent == 0 and campaign.lost == 0 and \
      campaign.survived == campaign.faults else 1


if __name__ == "__main__":
  sys.exit(main())
