r"""Fault campaign against the trainer and the reader commands (issues 12, 28) on 2 CPU cores.

    python bench/fault_campaign.py [--seed 0] [--kills 2] [--steps 40] [--timeout_factor 5]
                                   [--multihost]

Runs ``python -m flan_jax.train`` on ``gin/runs/demo.gin`` (tiny model, checkpoint every 4
steps, KEEP_CHECKPOINTS=3, metrics every 10 steps) as a user does, once uninterrupted (the
reference; its start-up and total times set every later timeout: ``--timeout_factor`` times the
reference's total), then under faults, each followed by a plain resume to the same final step:

* ``kill``: SIGKILL at a random moment after a random checkpoint appears;
* ``bitflip`` / ``truncate``: one random bit flipped (a byte drawn uniformly over the state's
  bytes) / the largest file cut in half, in the latest checkpoint;
* ``no_checksums`` / ``empty_checksums`` (issue 28 case 1): the latest checkpoint's
  ``checksums.json`` deleted / replaced by a list of no files, and one bit flipped in an array
  file -- the resume must fall back naming the reason;
* ``checkpoint_is_file`` / ``model_config_flip`` (case 6): the latest checkpoint dir replaced by a
  file; one bit of ``model_config.json`` flipped (``vocab_sizg``) after a run killed before its
  last save;
* ``disk_full``: the run's file system (a real 64 MiB tmpfs; needs root, else not run) fills up
  while the run is stopped (SIGSTOP): it must stop at its next write with one line and every
  earlier checkpoint intact, then resume with space again;
* ``concurrent`` / ``fresh_lock`` (case 5): two trainers started at once on one MODEL_DIR (one is
  refused by the lock); a trainer arriving while the lock file is freshly created and still
  empty is refused, and once that lock is old it is removed as stale and the run finishes;
* ``sigint_train`` (case 7): Ctrl-C (SIGINT) after a checkpoint saves like SIGTERM (exit 0),
  then the resume;
* ``bad_data`` (case 4): training from ``export-data`` parts with one bad line (cut, torn,
  non-UTF-8 or without ``targets``, drawn by the seed) at line 7 of the 3rd of 4 parts must stop
  before step 1 naming the part and the line;
* ``infer`` (case 2): ``flan-jax infer`` SIGKILLed after its first chunk, rerun with another
  checkpoint and with another chunk size (both refused naming the field), then resumed: the
  output must equal an uninterrupted infer's, each example once; two infers started at once into
  one directory (one refused cleanly, or the second finds the first's file done);
* ``disk_full_export`` / ``disk_full_eval`` / ``sigint_export`` (case 7): ``export-data`` and
  ``flan-jax eval`` onto a full tmpfs, and ``export-data`` interrupted by SIGINT mid-write: one
  line, no file under a final name (nor a temporary one);
* ``--multihost`` (case 3, off by default: ~3-5 min): the heartbeat tests of
  ``tests/test_multihost.py`` through pytest (2 processes: a peer killed under a CPU hog ends the
  survivor with our line; a stalled start-up is no false stop).

A trainer fault is *survived* when the run ends with params bitwise equal to the reference's and
every metric row 1..steps present exactly once; a refusal or stop is survived when the command
fails with its one-line reason, no traceback and nothing written it must not write.
``silent_corruptions`` counts runs that exited 0 with wrong results (params or infer output);
``lost_steps`` counts metric rows missing after the resumes; ``unclear_messages`` counts failing
commands whose output has a Python traceback or lacks the expected line. Every child runs in its
own process group, SIGKILLed as a group when its wait times out and when the campaign ends,
however it ends (an exception, Ctrl-C, SIGTERM). Last line::

    faults=<n> survived=<n> silent_corruptions=0 lost_steps=0 unclear_messages=0
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# One bad line of each kind issue 28 found, and the reason flan_jax.data.bad_data gives.
BAD_LINES = {
    "cut": (b'{"inputs": "What is 2 + 2?", "targets": "fo', "not one JSON object"),
    "torn": (b'{"inputs": "Q 1", "targets": "A 1"}{"inputs": "Q 2", "tar', "not one JSON object"),
    "not_utf8": (b'{"inputs": "caf\xe9 \xff", "targets": "A"}', "not UTF-8"),
    "no_targets": (b'{"inputs": "Q", "task": "t"}', "no 'targets' field"),
}
EXPORTED_MODULE = """from flan_jax.data import exported
exported.register_exported("fault_campaign_exported", {files!r})
"""


class Children:
  """Child processes, each in its own process group (session), so that one ``killpg`` ends a
  child with everything it started; :meth:`kill_all` runs whatever ends the campaign."""

  def __init__(self):
    self.procs: list[subprocess.Popen] = []

  def start(self, command: list[str], log: str, env: dict[str, str] | None = None,
            cwd: str = REPO) -> subprocess.Popen:
    with open(log, "w") as f:
      proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                              start_new_session=True)
    self.procs.append(proc)
    return proc

  @staticmethod
  def kill(proc: subprocess.Popen) -> None:
    """SIGKILL to the child's whole group (also when the child itself has exited: what it
    started may still run), then reaps it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
      os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

  def wait(self, proc: subprocess.Popen, timeout: float) -> int | None:
    """The exit status, or None after ``timeout`` s (the group is then killed)."""
    try:
      return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.kill(proc)
      return None
    finally:
      with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # Nothing it started outlives it.

  def kill_all(self) -> int:
    """Kills every group still alive; the number of children that were still running."""
    alive = sum(p.poll() is None for p in self.procs)
    for proc in self.procs:
      self.kill(proc)
    return alive


def _env(cache: str, pythonpath: str = "") -> dict[str, str]:
  env = dict(os.environ)
  env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", TF_CPP_MIN_LOG_LEVEL="2")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  if pythonpath:
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
  return env


def _command(model_dir: str, steps: int, *extra: str) -> list[str]:
  return [sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}",
          "--gin.CHECKPOINT_PERIOD=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
          "--gin.BATCH_SIZE=4", "--gin.train_script.train.progress=False", *extra]


def _flip_bit(path: str, offset: int, bit: int) -> None:
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ (1 << bit)]))


def _jsonl_indices(path: str) -> list[int]:
  with open(path) as f:
    return [json.loads(line)["index"] for line in f]


def _files_under(path: str) -> list[str]:
  """Every regular file under ``path`` (relative)."""
  return sorted(os.path.relpath(os.path.join(d, n), path) for d, _, names in os.walk(path)
                for n in names)


def clear(log: str, expected: str) -> bool:
  """A failing command's output is clear: no Python traceback and the expected reason."""
  return "Traceback (most recent call last)" not in log and expected in log


class Campaign:
  def __init__(self, work: str, steps: int, seed: int, timeout_factor: float,
               children: Children):
    self.work, self.steps, self.rng = work, steps, random.Random(seed)
    self.factor, self.children = timeout_factor, children
    self.cache = os.path.join(work, "xla_cache")
    self.faults = self.survived = self.silent = self.lost = self.unclear = 0
    self.reference: list | None = None
    self.timeout = float("inf")  # Set from the reference run.
    self.mounts: list[str] = []  # tmpfs mounted now (unmounted on an interrupt too).

  # --- running commands ---------------------------------------------------------------------

  def start(self, model_dir: str, log: str, *extra: str) -> subprocess.Popen:
    return self.children.start(_command(model_dir, self.steps, *extra), log, _env(self.cache))

  def finish(self, proc: subprocess.Popen, log: str, runs: int = 1) -> tuple[int | None, str]:
    """Waits up to the scaled timeout (``runs`` of them for a command that is several runs);
    (exit status or None on a timeout, the output)."""
    rc = self.children.wait(proc, runs * self.timeout)
    text = open(log, errors="replace").read()
    if rc is None:
      text += (f"\n[fault_campaign] timed out after {runs * self.timeout:.0f} s "
               f"({runs * self.factor:g}x the reference run) and killed\n")
    return rc, text

  def run(self, model_dir: str, name: str, *extra: str) -> tuple[int | None, str]:
    log = os.path.join(self.work, f"{name}.log")
    return self.finish(self.start(model_dir, log, *extra), log)

  def run_cli(self, name: str, args: list[str], pythonpath: str = "") -> tuple[int | None, str]:
    log = os.path.join(self.work, f"{name}.log")
    proc = self.children.start([sys.executable, "-m", "flan_jax.cli", *args], log,
                               _env(self.cache, pythonpath))
    return self.finish(proc, log)

  def wait_for(self, proc: subprocess.Popen, ready: Callable[[], bool]) -> bool:
    """Polls ``ready`` until it holds (True), the process ends or the timeout passes (False)."""
    deadline = time.time() + self.timeout
    while not ready():
      if proc.poll() is not None or time.time() > deadline:
        return False
      time.sleep(0.01)
    return True

  def wait_for_checkpoint(self, proc: subprocess.Popen, model_dir: str, step: int) -> bool:
    from flan_jax.training import checkpoints
    path = os.path.join(model_dir, f"checkpoint_{step}")
    return self.wait_for(proc, lambda: checkpoints.is_complete_checkpoint(path))

  # --- judging ------------------------------------------------------------------------------

  def params(self, model_dir: str) -> list:
    import jax
    import numpy as np

    from flan_jax.training import checkpoints
    return [np.asarray(x) for x in jax.tree.leaves(
        checkpoints.restore_params(model_dir, step=self.steps))]

  def judge(self, name: str, model_dir: str, rc: int | None, log: str, expected: str = "",
            unread_ok: bool = False) -> None:
    """A finished training run against the reference; prints one line."""
    import numpy as np
    self.faults += 1
    same = False
    if rc == 0:
      same = all(np.array_equal(a, b) for a, b in zip(self.params(model_dir), self.reference,
                                                      strict=True))
      if not same:
        self.silent += 1
    # A flipped byte that no read uses (a superseded B-tree node) is harmless: bitwise equal.
    named = not expected or expected in log
    if not named and not (unread_ok and same):
      self.unclear += 1
    ok = rc == 0 and (named or (unread_ok and same))
    rows_path = os.path.join(model_dir, "train_metrics.jsonl")
    rows = [json.loads(line) for line in open(rows_path)] if os.path.exists(rows_path) else []
    steps = [r["step"] for r in rows]
    missing = set(range(1, self.steps + 1)) - set(steps)
    self.lost += len(missing)
    good = ok and same and not missing and len(steps) == len(set(steps))
    self.survived += good
    said = f" named={named}" if expected else ""
    print(f"{name}: rc={rc} bitwise_equal={same} rows={len(steps)} missing={len(missing)}{said} "
          f"{'survived' if good else 'FAILED'}", flush=True)
    if not good:
      print(log[-2000:], flush=True)

  def judge_stop(self, name: str, rc: int | None, log: str, want_rc: int, expected: str,
                 nothing_written: bool, detail: str = "") -> bool:
    """A command that must stop (refused, disk full, interrupted) with one clear line."""
    self.faults += 1
    is_clear = clear(log, expected)
    self.unclear += not is_clear
    good = rc == want_rc and is_clear and nothing_written
    self.survived += good
    tracebacks = log.count("Traceback (most recent call last)")
    print(f"{name}: rc={rc} clear={is_clear} tracebacks={tracebacks} "
          f"nothing_written={nothing_written}{detail} "
          f"{'survived' if good else 'FAILED'}", flush=True)
    if not good:
      print(f"  expected rc={want_rc} and {expected!r}\n{log[-2000:]}", flush=True)
    return good

  # --- the reference ------------------------------------------------------------------------

  def reference_run(self) -> None:
    """The uninterrupted run, timed: its total sets every later timeout."""
    model_dir = os.path.join(self.work, "reference")
    log = os.path.join(self.work, "reference.log")
    began = time.time()
    proc = self.start(model_dir, log)
    self.wait_for_checkpoint(proc, model_dir, 4)
    first = time.time() - began
    rc = proc.wait()  # No timeout: this run is the measurement (Ctrl-C still ends it).
    total = time.time() - began
    if rc:
      sys.exit(f"the reference run failed:\n{open(log).read()[-3000:]}")
    self.timeout = self.factor * total
    print(f"reference: start-up to checkpoint_4 {first:.0f} s, {self.steps} steps {total:.0f} s; "
          f"timeout per command {self.timeout:.0f} s ({self.factor:g}x)", flush=True)
    self.reference = self.params(model_dir)

  def copy_reference(self, name: str) -> tuple[str, str]:
    """A copy of the reference model dir and its latest checkpoint's path."""
    model_dir = os.path.join(self.work, name)
    shutil.copytree(os.path.join(self.work, "reference"), model_dir)
    return model_dir, os.path.join(model_dir, f"checkpoint_{self.steps}")

  # --- trainer faults -----------------------------------------------------------------------

  def kill(self, i: int) -> None:
    model_dir = os.path.join(self.work, f"kill{i}")
    proc = self.start(model_dir, os.path.join(self.work, f"kill{i}.log"))
    at = self.rng.choice(range(4, self.steps // 2 + 1, 4))  # Mid-run (a late kill is fine too).
    if self.wait_for_checkpoint(proc, model_dir, at):
      time.sleep(self.rng.uniform(0.0, 0.3))
    self.children.kill(proc)
    rc, log = self.run(model_dir, f"kill{i}_resume")
    self.judge(f"kill {i} (after checkpoint_{at})", model_dir, rc, log)

  def _flip_state_bit(self, latest: str, files: list[str]) -> str:
    """One random bit at a byte drawn uniformly over ``files``' bytes; the file's path."""
    paths = [os.path.join(latest, n) for n in sorted(files)]
    path = self.rng.choices(paths, weights=[os.path.getsize(p) for p in paths])[0]
    _flip_bit(path, self.rng.randrange(os.path.getsize(path)), self.rng.randrange(8))
    return path

  def damaged(self, kind: str) -> None:
    from flan_jax.training import checkpoints
    model_dir, latest = self.copy_reference(kind)
    sums = os.path.join(latest, checkpoints.CHECKSUM_FILE)
    with open(sums) as f:
      files = [n for n in json.load(f)["files"] if n.startswith("state/")]
    reason = ""
    if kind == "truncate":
      path = max((os.path.join(latest, n) for n in files), key=os.path.getsize)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    else:  # bitflip, no_checksums, empty_checksums: a byte drawn uniformly, as bit rot would.
      path = self._flip_state_bit(latest, [n for n in files if "/d/" in n] or files)
      if kind == "no_checksums":
        os.remove(sums)
        reason = " (checksums.json is missing"
      elif kind == "empty_checksums":
        with open(sums, "w") as f:
          json.dump({"algorithm": "sha256", "files": {}}, f)
        reason = " (checksums.json lists no files"
    # The last checkpoint is damaged: the resume must fall back and retrain the last 4 steps.
    rc, log = self.run(model_dir, f"{kind}_resume")
    self.judge(f"{kind} ({os.path.relpath(path, model_dir)})", model_dir, rc, log,
               expected=f"checkpoint_{self.steps} is unusable{reason}",
               unread_ok=kind == "bitflip")

  def checkpoint_is_file(self) -> None:
    model_dir, latest = self.copy_reference("checkpoint_is_file")
    shutil.rmtree(latest)
    with open(latest, "w") as f:
      f.write("not a checkpoint\n")
    rc, log = self.run(model_dir, "checkpoint_is_file_resume")
    # The trainer calls it "incomplete" (set aside), the readers "it is a file, not a checkpoint
    # directory": either is the one line wanted.
    self.judge(f"checkpoint_is_file (checkpoint_{self.steps})", model_dir, rc, log,
               expected=f"checkpoint_{self.steps} is unusable (")

  def model_config_flip(self) -> None:
    """A run killed before its last save (the latest checkpoint gone) whose model_config.json
    has one flipped bit (``vocab_size`` -> ``vocab_sizg``): the resume uses the config stored in
    the checkpoint, with a line."""
    from flan_jax.training import checkpoints
    model_dir, latest = self.copy_reference("model_config_flip")
    shutil.rmtree(latest)
    path = os.path.join(model_dir, checkpoints.CONFIG_FILE)
    _flip_bit(path, open(path, "rb").read().index(b'"vocab_size"') + len("vocab_size"), 1)
    rc, log = self.run(model_dir, "model_config_flip_resume")
    self.judge("model_config_flip (vocab_sizg)", model_dir, rc, log,
               expected="model_config.json is damaged")

  def disk_full(self) -> None:
    with self.full_disk("disk") as (mount, fill):
      if mount is None:
        return
      model_dir = os.path.join(mount, "run")
      proc = self.start(model_dir, os.path.join(self.work, "disk_full.log"))
      self.wait_for_checkpoint(proc, model_dir, 4)
      proc.send_signal(signal.SIGSTOP)  # Frozen while its disk fills up.
      fill()
      proc.send_signal(signal.SIGCONT)
      rc, log = self.finish(proc, os.path.join(self.work, "disk_full.log"))
      from flan_jax.training import checkpoints
      intact = all(checkpoints.problem(os.path.join(model_dir, f"checkpoint_{s}")) is None
                   for s in checkpoints.steps(model_dir))
      self.judge_stop("disk_full", rc, log, 1, "could not be written: No space left on device",
                      intact, " (earlier checkpoints intact)")
      if rc != 1 or not intact:
        return
      if "is the latest good one" not in log:
        print("  (no 'is the latest good one' in the log)", flush=True)
      os.remove(os.path.join(mount, "filler"))
      rc, log = self.run(model_dir, "disk_full_resume")
      self.judge("disk_full (resume with space again)", model_dir, rc, log)

  def concurrent(self) -> None:
    model_dir = os.path.join(self.work, "concurrent")
    os.makedirs(model_dir)
    logs = [os.path.join(self.work, f"concurrent{i}.log") for i in range(2)]
    procs = [self.start(model_dir, log) for log in logs]
    results = [self.finish(p, log) for p, log in zip(procs, logs, strict=True)]
    refused = [i for i, (rc, text) in enumerate(results)
               if rc == 1 and "is in use by flan-jax train" in text]
    winner = [i for i, (rc, _) in enumerate(results) if rc == 0]
    if len(refused) != 1 or len(winner) != 1:
      self.faults += 1
      self.unclear += sum(rc not in (0, None) and not clear(text, "in use by flan-jax train")
                          for rc, text in results)
      print(f"concurrent: rcs={[r for r, _ in results]} FAILED (exactly one trainer must be "
            "refused)", flush=True)
      for _, text in results:
        print(text[-1500:], flush=True)
      return
    self.unclear += not clear(results[refused[0]][1], "is in use by flan-jax train")
    self.judge("concurrent (second trainer refused by the lock)", model_dir, 0,
               results[winner[0]][1])

  def fresh_lock(self) -> None:
    """Issue 28 case 5: the lock file another trainer has just created, still empty."""
    from flan_jax.models import checkpoint as model_checkpoint
    model_dir = os.path.join(self.work, "fresh_lock")
    os.makedirs(model_dir)
    lock = os.path.join(model_dir, model_checkpoint.LOCK_FILE)
    open(lock, "w").close()
    rc, log = self.run(model_dir, "fresh_lock")
    written = [n for n in os.listdir(model_dir) if n != model_checkpoint.LOCK_FILE]
    if not self.judge_stop("fresh_lock (an empty lock just created)", rc, log, 1,
                           "is being locked by another process",
                           os.path.exists(lock) and not any(n.startswith("checkpoint_")
                                                            for n in written)):
      return
    old = time.time() - 2 * model_checkpoint.LOCK_GRACE_S  # Left empty long ago: stale.
    os.utime(lock, (old, old))
    rc, log = self.run(model_dir, "fresh_lock_stale")
    self.judge("fresh_lock (the same lock, old: removed as stale)", model_dir, rc, log,
               expected="removing the stale lock")

  def sigint_train(self) -> None:
    model_dir = os.path.join(self.work, "sigint_train")
    log = os.path.join(self.work, "sigint_train.log")
    proc = self.start(model_dir, log)
    at = self.rng.choice(range(4, self.steps // 2 + 1, 4))
    self.wait_for_checkpoint(proc, model_dir, at)
    proc.send_signal(signal.SIGINT)
    rc, text = self.finish(proc, log)
    from flan_jax.training import checkpoints
    saved = max(checkpoints.steps(model_dir), default=0)
    if not self.judge_stop(f"sigint_train (after checkpoint_{at})", rc, text, 0,
                           f"interrupted (Ctrl-C) at step {saved}; saved", True,
                           f" saved=checkpoint_{saved}"):
      return
    rc, text = self.run(model_dir, "sigint_train_resume")
    self.judge("sigint_train (resume)", model_dir, rc, text)

  # --- data and reader commands -------------------------------------------------------------

  def bad_data(self) -> None:
    """Issue 28 case 4: 4 parts of ``export-data`` lines, line 7 of the 3rd one bad."""
    out = os.path.join(self.work, "bad_data")
    os.makedirs(out)
    rc, log = self.run_cli("bad_data_export", ["export-data", "world_qa_type_0", "--split",
                                               "validation", "-n", "48", "-o",
                                               os.path.join(out, "all.jsonl")])
    if rc != 0:
      self.faults += 1
      print(f"bad_data: export-data failed (rc={rc}) FAILED\n{log[-2000:]}", flush=True)
      return
    lines = open(os.path.join(out, "all.jsonl"), "rb").read().splitlines(keepends=True)
    os.remove(os.path.join(out, "all.jsonl"))
    kind = self.rng.choice(sorted(BAD_LINES))
    line, what = BAD_LINES[kind]
    files = []
    for p in range(4):
      part = lines[p::4]
      if p == 2:
        part[6] = line + b"\n"
      files.append(os.path.join(out, f"part-{p:05d}-of-00004.jsonl"))
      with open(files[-1], "wb") as f:
        f.writelines(part)
    with open(os.path.join(out, "fault_campaign_tasks.py"), "w") as f:
      f.write(EXPORTED_MODULE.format(files=files))
    model_dir = os.path.join(self.work, "bad_data_run")
    log_path = os.path.join(self.work, "bad_data_train.log")
    proc = self.children.start(_command(model_dir, self.steps,
                                        "--gin.MIXTURE_OR_TASK_NAME='fault_campaign_exported'",
                                        "--gin.MIXTURE_OR_TASK_MODULE='fault_campaign_tasks'"),
                               log_path, _env(self.cache, out))
    rc, log = self.finish(proc, log_path)
    untrained = not os.path.exists(os.path.join(model_dir, "train_metrics.jsonl")) and not any(
        n.startswith("checkpoint_") for n in os.listdir(model_dir)
    ) if os.path.isdir(model_dir) else True
    self.judge_stop(f"bad_data ({kind} line)", rc, log, 1,
                    f"{files[2]} line 7: {what}", untrained, " (no step trained)")

  def infer_faults(self) -> None:
    """Issue 28 case 2: a killed infer rerun with another checkpoint or chunk size is refused;
    resumed it equals an uninterrupted infer; two infers of one output directory at once."""
    from flan_jax import infer
    ckpt = os.path.join(self.work, "reference", f"checkpoint_{self.steps - 4}")
    other = os.path.join(self.work, "reference", f"checkpoint_{self.steps}")

    def args(out: str, checkpoint: str = ckpt, chunk: int = 4) -> list[str]:
      return ["infer", "--gin_file=gin/runs/infer.gin",
              "--gin.MIXTURE_OR_TASK_NAME='world_qa_type_0'",
              f"--gin.CHECKPOINT_PATH='{checkpoint}'",
              f"--gin.INFER_OUTPUT_DIR='{out}'",
              "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}", "--gin.BATCH_SIZE=4",
              f"--gin_bindings=infer_script.infer.chunk_size = {chunk}",
              "--gin_bindings=infer_script.infer.num_examples = 24"]

    whole = os.path.join(self.work, "infer_whole")
    rc, log = self.run_cli("infer_whole", args(whole))
    if rc != 0:
      self.faults += 1
      print(f"infer: the uninterrupted infer failed (rc={rc}) FAILED\n{log[-2000:]}", flush=True)
      return
    expected = open(infer.output_path(whole, "world_qa_type_0")).read()
    out = os.path.join(self.work, "infer_killed")
    final = infer.output_path(out, "world_qa_type_0")
    chunk = os.path.join(final + ".chunks", "chunk_00000.jsonl")
    log_path = os.path.join(self.work, "infer_killed.log")
    proc = self.children.start([sys.executable, "-m", "flan_jax.cli", *args(out)], log_path,
                               _env(self.cache))
    killed = self.wait_for(proc, lambda: os.path.exists(chunk))
    self.children.kill(proc)
    if not killed or os.path.exists(final):
      self.faults += 1
      print(f"infer: no chunk before the kill FAILED\n{open(log_path).read()[-2000:]}",
            flush=True)
      return
    for name, argv, field in (("infer_other_checkpoint", args(out, other), "checkpoint_digest"),
                              ("infer_other_chunk_size", args(out, chunk=8), "chunk_size: 4 -> 8")):
      rc, log = self.run_cli(name, argv)
      self.judge_stop(f"{name} (after a kill)", rc, log, 1, field, not os.path.exists(final))
    rc, log = self.run_cli("infer_resume", args(out))
    self.judge_output("infer resumed (after a kill)", rc, log, final, expected)
    # Two infers of one output file at once.
    both = os.path.join(self.work, "infer_concurrent")
    logs = [os.path.join(self.work, f"infer_concurrent{i}.log") for i in range(2)]
    procs = [self.children.start([sys.executable, "-m", "flan_jax.cli", *args(both)], log,
                                 _env(self.cache)) for log in logs]
    results = [self.finish(p, log) for p, log in zip(procs, logs, strict=True)]
    refused = [text for rc, text in results if rc != 0]
    self.faults += 1
    is_clear = all(clear(text, "is in use by flan-jax infer") for text in refused)
    self.unclear += not is_clear
    final = infer.output_path(both, "world_qa_type_0")
    same = os.path.exists(final) and open(final).read() == expected
    good = len(refused) <= 1 and is_clear and same and all(
        "Traceback (most recent call last)" not in text for _, text in results)
    self.survived += good
    print(f"infer_concurrent: rcs={[rc for rc, _ in results]} clear={is_clear} "
          f"output_equal={same} {'survived' if good else 'FAILED'}", flush=True)
    if not good:
      for _, text in results:
        print(text[-1500:], flush=True)

  def judge_output(self, name: str, rc: int | None, log: str, path: str, expected: str) -> None:
    """An infer that must finish with the uninterrupted infer's output, each example once."""
    self.faults += 1
    text = open(path).read() if os.path.exists(path) else ""
    indices = _jsonl_indices(path) if text else []
    same = text == expected
    once = indices == sorted(set(indices)) and bool(indices)
    if rc == 0 and not same:
      self.silent += 1
    good = rc == 0 and same and once
    self.survived += good
    print(f"{name}: rc={rc} lines={len(indices)} each_once={once} output_equal={same} "
          f"{'survived' if good else 'FAILED'}", flush=True)
    if not good:
      print(log[-2000:], flush=True)

  @contextlib.contextmanager
  def full_disk(self, name: str):
    """A real 64 MiB tmpfs under the work dir and a function filling it up, or (None, None) when
    one cannot be mounted (needs root; the test suite injects ENOSPC instead)."""
    mount = os.path.join(self.work, name)
    os.makedirs(mount)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mount],
                      capture_output=True).returncode:
      print(f"{name}: cannot mount a tmpfs here (needs root); not run", flush=True)
      yield None, None
      return

    def fill() -> None:
      with open(os.path.join(mount, "filler"), "wb") as f:
        with contextlib.suppress(OSError):
          while True:
            f.write(b"\0" * 65536)
            f.flush()

    self.mounts.append(mount)
    try:
      yield mount, fill
    finally:
      subprocess.run(["umount", "-l", mount], check=False)
      self.mounts.remove(mount)

  def disk_full_writers(self) -> None:
    """Issue 28 case 7: export-data and eval onto a full disk."""
    with self.full_disk("disk_writers") as (mount, fill):
      if mount is None:
        return
      fill()
      out = os.path.join(mount, "part-00000-of-00001.jsonl")
      rc, log = self.run_cli("disk_full_export", ["export-data", "world_qa_type_0", "--split",
                                                  "validation", "-n", "40", "-o", out])
      self.judge_stop("disk_full_export", rc, log, 1, f"No space left on device writing {out}",
                      _files_under(mount) == ["filler"])
      rc, log = self.run_cli("disk_full_eval", [
          "eval", "--gin_file=gin/runs/eval.gin", "--gin.MIXTURE_OR_TASK_NAME='world_qa_type_0'",
          f"--gin.CHECKPOINT_PATH='{os.path.join(self.work, 'reference')}'",
          f"--gin.EVAL_OUTPUT_DIR='{os.path.join(mount, 'eval')}'", "--gin.SPLIT='validation'",
          "--gin.DEV_SPLIT=None", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
          "--gin.BATCH_SIZE=4", "--gin_bindings=eval_script.evaluate.num_examples = 8"])
      self.judge_stop("disk_full_eval", rc, log, 1, "No space left on device",
                      _files_under(mount) == ["filler"], f" files={_files_under(mount)}")

  def sigint_export(self) -> None:
    """Issue 28 case 7: Ctrl-C while export-data writes its file."""
    out_dir = os.path.join(self.work, "sigint_export")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "part-00000-of-00001.jsonl")
    log_path = os.path.join(self.work, "sigint_export.log")
    proc = self.children.start([sys.executable, "-m", "flan_jax.cli", "export-data",
                                "demo_heldout_nli_train", "-n", "1000000", "-o", out], log_path,
                               _env(self.cache))

    def writing() -> bool:
      names = os.listdir(out_dir)
      return bool(names) and os.path.getsize(os.path.join(out_dir, names[0])) > 0

    started = self.wait_for(proc, writing)
    time.sleep(self.rng.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGINT)
    rc, log = self.finish(proc, log_path)
    self.judge_stop("sigint_export (mid-write)", rc, log, 130, "interrupted (Ctrl-C)",
                    started and os.listdir(out_dir) == [], f" files={os.listdir(out_dir)}")

  def multihost(self) -> None:
    """Issue 28 case 3 through tests/test_multihost.py's heartbeat tests: a peer killed, a
    stalled start-up (two 2-process runs each)."""
    log_path = os.path.join(self.work, "multihost.log")
    proc = self.children.start([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                                "no:cacheprovider", "-n", "0", "tests/test_multihost.py", "-m",
                                "slow or not slow", "-k", "dead_process or heartbeat"],
                               log_path, dict(os.environ))
    rc, log = self.finish(proc, log_path, runs=4)
    self.faults += 1
    self.survived += rc == 0
    print(f"multihost (tests/test_multihost.py): rc={rc} {'survived' if rc == 0 else 'FAILED'}",
          flush=True)
    if rc != 0:
      print(log[-2000:], flush=True)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--kills", type=int, default=2)
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--timeout_factor", type=float, default=5.0,
                      help="each command's timeout, in multiples of the reference run's time")
  parser.add_argument("--multihost", action="store_true",
                      help="also the 2-process heartbeat tests (tests/test_multihost.py)")
  parser.add_argument("--only", nargs="*", default=None, metavar="FAULT",
                      help="run only these faults (after the reference), e.g. infer bad_data")
  parser.add_argument("--work_dir", default=None, help="kept when given (default: a temp dir)")
  args = parser.parse_args(argv)
  if args.steps < 12 or args.steps % 4:
    parser.error("--steps must be a multiple of 4 and at least 12")
  work = args.work_dir or tempfile.mkdtemp(prefix="flan_jax_faults-")
  os.makedirs(work, exist_ok=True)
  children = Children()
  atexit.register(children.kill_all)
  campaign = Campaign(work, args.steps, args.seed, args.timeout_factor, children)

  def stop(signum: int, frame) -> None:
    """Kills the children, unmounts, removes a temporary work dir and exits at once: unwinding
    from wherever the signal lands (inside jax's or numpy's import, say) can crash instead."""
    killed = children.kill_all()
    for mount in campaign.mounts:
      subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    if args.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
    print(f"fault campaign interrupted ({signal.Signals(signum).name}); killed {killed} "
          "running child process group(s)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)

  for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, stop)
  faults: list[tuple[str, Callable[[], None]]] = [
      *[(f"kill{i}", lambda i=i: campaign.kill(i)) for i in range(args.kills)],
      *[(k, lambda k=k: campaign.damaged(k))
        for k in ("bitflip", "truncate", "no_checksums", "empty_checksums")],
      ("checkpoint_is_file", campaign.checkpoint_is_file),
      ("model_config_flip", campaign.model_config_flip),
      ("disk_full", campaign.disk_full), ("concurrent", campaign.concurrent),
      ("fresh_lock", campaign.fresh_lock), ("sigint_train", campaign.sigint_train),
      ("bad_data", campaign.bad_data), ("infer", campaign.infer_faults),
      ("disk_full_writers", campaign.disk_full_writers), ("sigint_export", campaign.sigint_export),
  ]
  if args.multihost:
    faults.append(("multihost", campaign.multihost))
  unknown = set(args.only or ()) - {name for name, _ in faults}
  if unknown:
    parser.error(f"unknown --only fault(s) {sorted(unknown)}; known: {[n for n, _ in faults]}")
  try:
    campaign.reference_run()
    for name, fault in faults:
      if args.only is None or name in args.only:
        fault()
  finally:  # Also on an exception: no child outlives the campaign (atexit too).
    children.kill_all()
    if args.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
  print(f"faults={campaign.faults} survived={campaign.survived} "
        f"silent_corruptions={campaign.silent} lost_steps={campaign.lost} "
        f"unclear_messages={campaign.unclear}")
  return 0 if campaign.silent == 0 and campaign.lost == 0 and campaign.unclear == 0 and \
      campaign.survived == campaign.faults else 1


if __name__ == "__main__":
  sys.exit(main())
