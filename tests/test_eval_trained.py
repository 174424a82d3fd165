"""Generative evaluation, inference and in-training evaluation on a TRAINED model, run the way
users run them (``python -m flan_jax.train/eval/infer`` with t5x flags).

The tiny preset is trained on the offline suite's data-to-text task until it writes sentences of
different lengths (it emits EOS at different positions: the case that crashed seqio's Evaluator).
A team's plain seqio tasks come from ``tests/team_tasks.py`` through ``MIXTURE_OR_TASK_MODULE``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flan_jax.inference import decoding
from flan_jax.models import checkpoint as model_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
TASK = "world_data_to_text_type_0"
LENGTHS = "{'inputs': 64, 'targets': 48}"


def _env(**extra: str) -> dict[str, str]:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
  env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  env.update(extra)
  return env


def _flan_jax(module: str, *flags: str, cwd: str = REPO, **env: str
              ) -> subprocess.CompletedProcess:
  result = subprocess.run([sys.executable, "-m", f"flan_jax.{module}", *flags], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
  """checkpoint_{50,100,150} of the tiny preset trained on world_data_to_text."""
  model_dir = str(tmp_path_factory.mktemp("trained") / "model")
  _flan_jax("train", "--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{model_dir}'",
            "--gin.MIXTURE_OR_TASK_NAME='world_data_to_text_4templates'",
            f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}", "--gin.TRAIN_STEPS=150",
            "--gin.CHECKPOINT_PERIOD=50")
  assert model_checkpoint.steps(model_dir) == [50, 100, 150]
  return model_dir


def _jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_generative_eval_of_trained_model_writes_every_prediction(trained, tmp_path):
  out_dir = tmp_path / "eval"
  _flan_jax("eval", "--gin_file=gin/runs/eval.gin",
            f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'", f"--gin.CHECKPOINT_PATH='{trained}'",
            f"--gin.EVAL_OUTPUT_DIR='{out_dir}'", "--gin.DEV_SPLIT=None",
            "--gin.MAX_DECODE_LENGTH=48")
  rows = _jsonl(out_dir / "model" / "test" / f"{TASK}-000150.jsonl")
  assert len(rows) == 200  # The whole test split: no 100-row cap.
  lengths = {len(r["prediction"].split()) for r in rows}
  assert len(lengths) > 3, lengths  # Sentences of many lengths: EOS at different positions.
  assert all(r["prediction"] for r in rows)
  # The model learned the task's form: whole sentences, stopped by EOS.
  sentences = sum(r["prediction"].endswith(".") for r in rows)
  assert sentences > 160, sentences
  with open(out_dir / "metrics.json") as f:
    metrics = json.load(f)["results"]["model"]["test"][TASK]
  assert metrics["accuracy"] >= 0
  # t5x's TensorBoard summaries under EVAL_OUTPUT_DIR.
  events = [f for _, _, fs in os.walk(out_dir / "model" / "test") for f in fs
            if f.startswith("events.out.tfevents")]
  assert events


def test_eval_of_a_plain_seqio_task_from_a_team_module(trained, tmp_path):
  out_dir = tmp_path / "eval"
  result = _flan_jax("eval", "--gin_file=gin/runs/eval.gin",
                     "--gin.MIXTURE_OR_TASK_MODULE='team_tasks'",
                     "--gin.MIXTURE_OR_TASK_NAME='team_data_to_text'",
                     f"--gin.CHECKPOINT_PATH='{trained}/checkpoint_150'",
                     f"--gin.EVAL_OUTPUT_DIR='{out_dir}'", "--gin.DEV_SPLIT=None",
                     "--gin.MAX_DECODE_LENGTH=48", "--gin.SPLIT='validation'",
                     "--gin.JSON_WRITE_N_RESULTS=150")
  assert "metrics:" in result.stdout
  rows = _jsonl(out_dir / "model" / "validation" / "team_data_to_text-000150.jsonl")
  assert len(rows) == 150  # JSON_WRITE_N_RESULTS caps the rows when asked.
  assert len({len(r["prediction"]) for r in rows}) > 3
  with open(out_dir / "metrics.json") as f:
    exact = json.load(f)["results"]["model"]["validation"]["team_data_to_text"]["exact"]
  want = 100 * sum(r["prediction"] == r["target"] for r in rows) / len(rows)
  assert 0 <= exact <= 100 and (exact > 0) == (want > 0)


def test_eval_mode_all_writes_metrics_for_every_checkpoint(trained, tmp_path):
  from flan_jax import eval as eval_lib
  out = eval_lib.evaluate(TASK, trained, str(tmp_path), dev_split=None, num_examples=8,
                          max_decode_length=48, mode="all", report=False, progress=False)
  assert sorted(out["steps"]) == [50, 100, 150]
  with open(tmp_path / "metrics.json") as f:
    saved = json.load(f)
  assert sorted(saved["steps"]) == ["100", "150", "50"]
  for step in (50, 100, 150):
    assert "accuracy" in saved["steps"][str(step)]["test"][TASK]
    assert len(_jsonl(tmp_path / "model" / "test" / f"{TASK}-{step:06d}.jsonl")) == 8
  with open(tmp_path / "model" / "test" / f"{TASK}-metrics.jsonl") as f:
    assert sorted(json.loads(line)["step"] for line in f) == [50, 100, 150]


def test_eval_mode_all_needs_a_model_dir(trained, tmp_path):
  from flan_jax import eval as eval_lib
  with pytest.raises(ValueError, match="pass .*model|MODE='specific'"):
    eval_lib.checkpoints_to_evaluate(f"{trained}/checkpoint_50", "all")
  with pytest.raises(ValueError, match="'latest', 'specific' or 'all'"):
    eval_lib.checkpoints_to_evaluate(trained, "every")


@pytest.mark.slow  # ~65 s: a SIGKILLed infer subprocess and its rerun (make test-all)
def test_infer_killed_and_rerun_writes_each_example_once(trained, tmp_path):
  out_dir = tmp_path / "infer"
  flags = ["-m", "flan_jax.infer", "--gin_file=gin/runs/infer.gin",
           "--gin.MIXTURE_OR_TASK_NAME='team_mixture'", "--gin.MIXTURE_OR_TASK_MODULE='team_tasks'",
           f"--gin.CHECKPOINT_PATH='{trained}'", f"--gin.INFER_OUTPUT_DIR='{out_dir}'",
           f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}", "--gin.INFER_SCORES=True",
           "--gin_bindings=infer_script.infer.chunk_size = 8",
           "--gin_bindings=infer_script.infer.num_examples = 40"]
  final = out_dir / "team_data_to_text-00000-of-00001.jsonl"
  chunks = out_dir / "team_data_to_text-00000-of-00001.jsonl.chunks"
  proc = subprocess.Popen([sys.executable, *flags], cwd=REPO, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 300
    while not (chunks / "chunk_00000.jsonl").exists() and proc.poll() is None:
      assert time.time() < deadline
      time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait()
  assert not final.exists()  # Killed mid-task.
  written = sorted(os.listdir(chunks))
  assert 1 <= len([n for n in written if n.endswith(".jsonl")]) < 5
  first_chunk = _jsonl(chunks / "chunk_00000.jsonl")
  result = subprocess.run([sys.executable, *flags], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = _jsonl(final)
  assert [r["index"] for r in rows] == list(range(40))  # Each example once, in order.
  assert rows[:8] == first_chunk  # The chunk written before the kill was kept, not redone.
  assert not chunks.exists()
  assert all(set(r) == {"index", "inputs", "targets", "prediction", "score"} for r in rows)
  assert all(r["score"] < 0 for r in rows)
  # The predictions are the model's greedy decodes of the inputs.
  import flan_jax
  model = flan_jax.load(trained)
  got = model.generate([rows[0]["inputs"], rows[1]["inputs"]], max_new_tokens=48)
  assert got == [rows[0]["prediction"], rows[1]["prediction"]]


def test_eval_period_with_a_generative_task_and_a_failing_eval(trained, tmp_path):
  """In-training eval (EVAL_PERIOD) decodes a generative task; its first evaluation fails (the
  team's metric raises): the run goes on, every step is trained and checkpointed."""
  from flan_jax import train as train_lib
  model_dir = str(tmp_path / "finetune")
  marker = str(tmp_path / "failed_once")
  os.environ["TEAM_FLAKY_MARKER"] = marker
  try:
    train_lib.run(["--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{model_dir}'",
                   f"--module_import={os.path.join(TESTS, 'team_tasks.py')}",
                   "--gin.MIXTURE_OR_TASK_NAME='team_data_to_text'",
                   f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
                   f"--gin.INITIAL_CHECKPOINT_PATH='{trained}'", "--gin.TRAIN_STEPS_RELATIVE=4",
                   "--gin.CHECKPOINT_PERIOD=1000",
                   "--gin.EVAL_PERIOD=2", "--gin.EVAL_MIXTURE_OR_TASK_NAME='team_flaky_eval'",
                   "--gin_bindings=training.EvalConfig.num_examples = 12"])
  finally:
    del os.environ["TEAM_FLAKY_MARKER"]
  assert os.path.exists(marker)  # The evaluation at step 152 failed.
  assert model_checkpoint.steps(model_dir) == [154]  # ... and training went on to the end.
  logs = os.path.join(model_dir, "inference_eval")
  metrics = _jsonl(os.path.join(logs, "team_flaky_eval-metrics.jsonl"))
  assert [m["step"] for m in metrics] == [154]  # The later evaluation worked.
  predictions = _jsonl(os.path.join(logs, "team_flaky_eval-000154.jsonl"))
  assert len(predictions) == 12 and len({len(p["prediction"]) for p in predictions}) > 1


def test_pad_prediction_round_trips_through_seqio_decode():
  from flan_jax import eval as eval_lib
  from flan_jax.data.vocab import DEFAULT_VOCABULARY as vocab
  ids = vocab.encode("Bram likes bread.")
  padded = eval_lib.pad_prediction([*ids, 1, 7, 7], 40)
  assert vocab.decode(padded.tolist()) == "Bram likes bread."
  assert decoding.until_eos(padded) == list(ids)


def test_eval_mode_all_waits_for_new_checkpoints(trained, tmp_path):
  """t5x-style continuous eval: checkpoints that appear while evaluating are evaluated too."""
  import shutil
  import threading

  from flan_jax import eval as eval_lib
  model_dir = tmp_path / "model_dir"
  model_dir.mkdir()
  for name in os.listdir(trained):
    src = os.path.join(trained, name)
    if name == "checkpoint_50" or (os.path.isfile(src) and not name.startswith("checkpoint")):
      (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, model_dir / name)
  first = tmp_path / "eval" / "model" / "test" / f"{TASK}-000050.jsonl"

  def training_job():  # Writes checkpoint_100 once step 50 has been evaluated (atomic rename).
    while not first.exists():
      time.sleep(0.2)
    shutil.copytree(os.path.join(trained, "checkpoint_100"), model_dir / "incoming")
    os.rename(model_dir / "incoming", model_dir / "checkpoint_100")

  job = threading.Thread(target=training_job, daemon=True)
  job.start()
  out = eval_lib.evaluate(TASK, str(model_dir), str(tmp_path / "eval"), dev_split=None,
                          num_examples=4, max_decode_length=48, mode="all", report=False,
                          progress=False, wait_for_checkpoints_s=15, poll_s=0.5)
  job.join(timeout=5)
  assert sorted(out["steps"]) == [50, 100]
