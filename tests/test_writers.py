"""Every writer's file appears whole or not at all; a full disk or Ctrl-C ends a command with one
line; Ctrl-C in the trainer saves like SIGTERM; eval reruns replace their metric rows; a typo gets
the closest name (issue 28, cases 7 and 8)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import types

import gin
import pytest
import seqio
import test_gcs
from test_gcs import gcs  # noqa: F401 -- the GCS emulator fixture.

from flan_jax import cli, entry
from flan_jax.config import gin_utils
from flan_jax.evaluation import report as report_lib
from flan_jax.evaluation import seqio_glue
from flan_jax.storage import fs
from flan_jax.training import hooks

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _full_disk(monkeypatch, after: int = 0) -> None:
  """Local writes fail with ENOSPC at their fsync (after ``after`` good ones)."""
  calls = []
  real = os.fsync

  def fsync(fd):
    calls.append(fd)
    if len(calls) > after:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real(fd)

  monkeypatch.setattr(fs.os, "fsync", fsync)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
  fs.write_text(str(tmp_path / "old.json"), "old")
  _full_disk(monkeypatch)
  with pytest.raises(OSError, match="No space left"):
    fs.write_text(str(tmp_path / "new.json"), "x" * 1000)
  with pytest.raises(OSError, match="No space left"):
    fs.write_text(str(tmp_path / "old.json"), "new")
  with pytest.raises(KeyboardInterrupt):
    with fs.open_atomic(str(tmp_path / "part.jsonl")) as f:
      f.write("one line\n")
      raise KeyboardInterrupt
  assert os.listdir(tmp_path) == ["old.json"]  # No temporary file left either.
  assert (tmp_path / "old.json").read_text() == "old"


def _stderr_line(capsys) -> str:
  """The one line a command printed on stderr (progress bars aside)."""
  err = capsys.readouterr().err
  lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and "%|" not in line]
  assert "Traceback" not in err and len(lines) == 1, err
  return lines[0]


def test_export_data_on_a_full_disk_or_ctrl_c_leaves_no_part(tmp_path, monkeypatch, capsys):
  out = tmp_path / "part-0.jsonl"
  argv = ["export-data", "world_qa_type_0", "--split", "validation", "-n", "40", "-o", str(out)]
  _full_disk(monkeypatch)
  with pytest.raises(SystemExit) as stop:
    cli.main(argv)
  assert stop.value.code == 1
  assert f"No space left on device writing {out}" in _stderr_line(capsys)
  assert os.listdir(tmp_path) == []
  monkeypatch.undo()
  from flan_jax import export_data
  rows = []

  def dumps(row, **kwargs):
    rows.append(row)
    if len(rows) == 10:
      raise KeyboardInterrupt
    return json.dumps(row, **kwargs)

  monkeypatch.setattr(export_data.json, "dumps", dumps)
  with pytest.raises(SystemExit) as stop:
    cli.main(argv)
  assert stop.value.code == 130
  assert "interrupted (Ctrl-C)" in _stderr_line(capsys)
  assert os.listdir(tmp_path) == []


def test_export_hf_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
  import jax
  import numpy as np
  import safetensors.numpy

  from flan_jax.models import DecoderConfig, init_params
  from flan_jax.models import checkpoint as model_checkpoint
  cfg = DecoderConfig(vocab_size=32128, num_layers=1, d_model=8, num_heads=1, head_dim=8,
                      d_ff=16, position="rope", activation="swiglu")
  shapes = jax.eval_shape(lambda: init_params(cfg, jax.random.key(0)))
  params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  model_dir = str(tmp_path / "model")
  model_checkpoint.save_params(model_dir, params, cfg, step=1)

  def save_file(tensors, path, metadata=None):
    raise safetensors.SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)")

  monkeypatch.setattr(safetensors.numpy, "save_file", save_file)
  with pytest.raises(SystemExit) as stop:
    cli.main(["export-hf", model_dir, str(tmp_path / "hf")])
  assert stop.value.code == 1
  assert "No space left on device writing" in _stderr_line(capsys)
  assert sorted(os.listdir(tmp_path)) == ["model"]  # Neither OUT_DIR nor its temporary dir.


def test_commands_stop_on_a_full_disk_or_ctrl_c_with_one_line(capsys):
  """``flan-jax train/eval/infer`` (entry.run): the error a writer raises, as one line."""
  for error, code, text in ((OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/metrics.json"),
                             1, "No space left on device writing out/metrics.json"),
                            (ValueError("tensorstore failed"), 1, "No space left on device"),
                            (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)")):
    if isinstance(error, ValueError):
      error.__cause__ = ENOSPC  # Wrapped, as tensorstore and orbax do.

    def fail(error=error):
      raise error

    configurable = gin.external_configurable(fail, name=f"fail_{code}_{type(error).__name__}")
    with pytest.raises(SystemExit) as stop:
      entry.run("flan-jax eval", [], (), configurable)
    assert stop.value.code == code
    line = _stderr_line(capsys)
    assert line.startswith("flan-jax eval: ") and text in line, line


def test_a_tensorflow_disk_error_is_one_line(capsys):
  """seqio's summary writer on a full EVAL_OUTPUT_DIR: TensorFlow's error (not an OSError) in
  seqio's ValueError, as ``flan-jax eval`` got it on a real full tmpfs."""
  error = ValueError(
      "Failed to evaluate task world_qa_type_0: {{function_node __wrapped__CreateSummaryFileWriter"
      "_device_/job:localhost/replica:0/task:0/device:CPU:0}} /out/eval/events.out.tfevents.1.v2; "
      "No space left on device\n\tFailed to flush 1 events [Op:CreateSummaryFileWriter] name: ")

  def fail():
    raise error

  configurable = gin.external_configurable(fail, name="fail_tf_disk_error")
  with pytest.raises(SystemExit) as stop:
    entry.run("flan-jax eval", [], (), configurable)
  assert stop.value.code == 1
  line = _stderr_line(capsys)
  assert "No space left on device writing /out/eval/events.out.tfevents.1.v2" in line, line


def test_a_reported_error_is_one_line_without_gin_internals(capsys):
  from flan_jax import infer

  def refuse():
    raise infer.InferOutputError("out/t.jsonl was written by a different run; chunk_size: 4 -> 8")

  with pytest.raises(SystemExit) as stop:
    entry.run("flan-jax infer", [], (), gin.external_configurable(refuse, name="refuse"))
  assert str(stop.value.code) == (
      "flan-jax infer: error: out/t.jsonl was written by a different run; chunk_size: 4 -> 8")


def test_eval_rerun_replaces_its_metric_rows_and_never_leaves_a_partial_file(tmp_path,
                                                                             monkeypatch):
  task = "world_qa_type_0"

  def log(step, value):
    evaluator = types.SimpleNamespace()  # Each run: a new evaluator and logger.
    seqio_glue.set_log_dir(evaluator, str(tmp_path))
    evaluator._loggers[2](task, step, {"accuracy": seqio.metrics.Scalar(value)}, None, None,
                          None)

  log(100, 60.0)
  log(200, 70.0)
  log(100, 61.0)  # The step-100 checkpoint evaluated again.
  rows = [json.loads(line) for line in open(tmp_path / f"{task}-metrics.jsonl")]
  assert sorted((r["step"], r["accuracy"]) for r in rows) == [(100, 61.0), (200, 70.0)]
  assert report_lib.load_seqio_metrics(str(tmp_path), step=100) == {task: {"accuracy": 61.0}}
  # Interrupted while writing: the earlier rows stay, nothing partial or temporary is left.
  monkeypatch.setattr(seqio.loggers.json, "dumps",
                      lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
  with pytest.raises(KeyboardInterrupt):
    log(300, 80.0)
  assert sorted(os.listdir(tmp_path)) == [f"{task}-metrics.jsonl"]
  assert len(open(tmp_path / f"{task}-metrics.jsonl").readlines()) == 2


class _Checkpoints:
  model_dir = "/nowhere"

  def __init__(self):
    self.calls = []

  def finish(self):
    self.calls.append("finish")

  def close(self):
    self.calls.append("close")


def test_ctrl_c_in_the_trainer_stops_with_a_save_and_a_second_aborts(capsys):
  saver = hooks.Checkpointer(_Checkpoints(), period=100, meta=dict)
  before = signal.getsignal(signal.SIGINT)
  saver.open()
  try:
    try:
      os.kill(os.getpid(), signal.SIGINT)  # Caught: stop after this step, with a save.
    except KeyboardInterrupt:
      pytest.fail("the first Ctrl-C was not caught by the Checkpointer")
    assert saver.stop_requested
    captured = capsys.readouterr()
    assert "Ctrl-C again aborts at once" in captured.out + captured.err
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  finally:
    saver.close()
  assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("binding,hint", [
    ("learning_rat = 0.1", "unknown gin macro 'learning_rat'.*did you mean LEARNING_RATE"),
    ("train_script.train.learning_rat = 0.1",
     "hint: did you mean training.OptimizerConfig.learning_rate"),
    ("training.OptimizerConfig.learning_rat = 0.1",
     "hint: did you mean training.OptimizerConfig.learning_rate"),
])
def test_a_typo_gets_the_closest_name_not_an_unrelated_t5x_hint(binding, hint):
  gin.clear_config()
  try:
    with pytest.raises(ValueError) as error:
      gin_utils.parse_gin(["gin/runs/finetune.gin", "gin/models/tiny.gin"], [binding])
  finally:
    gin.clear_config()
  text = entry._config_error_text(error.value)
  assert entry._is_config_error(error.value)
  assert re.search(hint, text, re.S), text
  assert "eval_period" not in text


@pytest.mark.slow  # ~25 s on 2 quiet cores, 90 s loaded: a trainer subprocess (as the SIGTERM test)
def test_ctrl_c_in_flan_jax_train_saves_like_sigterm(tmp_path):
  """``flan-jax train`` in a subprocess: Ctrl-C after checkpoint_4 stops after the step with a
  checkpoint and exit 0 (as SIGTERM does); no traceback."""
  import test_train_signals as signals
  model_dir, log = str(tmp_path / "run"), str(tmp_path / "run.log")
  proc = signals._start(model_dir, 100_000, log)
  signals._wait_for_checkpoint(proc, model_dir, 4, log)
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=120) == 0, open(log).read()[-3000:]
  text = open(log).read()
  stop = max(signals._complete_steps(model_dir))
  assert stop > 4 and f"interrupted (Ctrl-C) at step {stop}; saved" in text
  assert "Traceback" not in text and "KeyboardInterrupt" not in text


@pytest.mark.usefixtures("gcs")
def test_an_interrupted_object_store_write_leaves_no_object(tmp_path):
  """gs://: the upload of a failed block is never finished, also after a first resumable part
  (> 5 MiB) went out."""
  base = f"gs://{test_gcs.BUCKET}/{tmp_path.name}"
  for size in (10, 12 * 2**20):
    with pytest.raises(KeyboardInterrupt):
      with fs.open_atomic(f"{base}/part-{size}.jsonl", "wb") as f:
        f.write(b"x" * size)
        f.flush()
        raise KeyboardInterrupt
    assert not fs.exists(f"{base}/part-{size}.jsonl")
  with fs.open_atomic(f"{base}/whole.jsonl") as f:
    f.write("line\n")
  assert fs.read_text(f"{base}/whole.jsonl") == "line\n"
