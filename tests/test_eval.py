"""Evaluation: seqio.Evaluator wiring, t5x's inference contract, the eval run and its outputs."""

import json
import os

import jax
import numpy as np
import pytest

from flan_jax import eval as eval_lib
from flan_jax.data import registry
from flan_jax.inference import scoring
from flan_jax.models import DecoderConfig, init_params
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.parallel import partitioning

CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32")
TASK = "world_nli_type_0_scoring_eval"


@pytest.fixture(scope="module")
def evaluator():
  registry.ensure_registered()
  return eval_lib.make_evaluator(TASK, "validation", None, num_examples=10)


def _mesh(spec="data=-1,model=1"):
  return partitioning.create_mesh(spec), partitioning.standard_logical_axis_rules()


def _reference_scores(params, ds):
  """t5x score_batch, one row at a time."""
  out = {}
  for index, features in ds.as_numpy_iterator():
    batch = {k: v[None] for k, v in features.items()}
    out[int(index)] = float(scoring.score_batch(CFG, params, batch)[0])
  return out


@pytest.mark.parametrize("mesh_spec,batch_size", [("data=-1,model=1", 3), ("data=2,model=4", 5)])
def test_score_fn_equals_per_row_scores(evaluator, mesh_spec, batch_size):
  mesh, rules = _mesh(mesh_spec)
  params = jax.device_put(init_params(CFG, jax.random.key(0)),
                          partitioning.param_shardings(CFG, mesh, rules))
  inference = eval_lib.Inference(CFG, params, mesh, rules, batch_size=batch_size)
  assert inference.batch_size % 2 == 0 and inference.batch_size >= batch_size
  ds = evaluator._cached_model_datasets[TASK]
  got = inference.score_fn(ds)
  want = _reference_scores(jax.device_get(params), ds)
  assert sorted(i for i, _ in got) == sorted(want)  # Every row once; padding (-1) dropped.
  for index, score in got:
    assert score == pytest.approx(want[index], abs=1e-5)


def test_global_batches_pad_with_minus_one():
  from flan_jax.inference import batching
  batches = list(batching.padded_batches(5, 4))
  np.testing.assert_array_equal(batches[0], [0, 1, 2, 3])
  np.testing.assert_array_equal(batches[1], [4, -1, -1, -1])
  np.testing.assert_array_equal(batching.filled(batches[1]), [4, 4, 4, 4])  # Copies of a real unit.
  assert [batching.round_up(n, 16) for n in (0, 1, 16, 17)] == [16, 16, 16, 32]


def test_chance_accuracy(evaluator):
  chance = eval_lib.chance_accuracy(evaluator)
  assert chance[TASK] == pytest.approx(100 / 3)  # 3 options, one correct.


def _save(tmp_path, name, seed):
  path = os.path.join(tmp_path, name)
  model_checkpoint.save_params(path, init_params(CFG, jax.random.key(seed)), CFG, step=7)
  return path


def test_evaluate_writes_metrics_for_model_and_baseline(tmp_path):
  model, base = _save(tmp_path, "model", 1), _save(tmp_path, "base", 2)
  out_dir = os.path.join(tmp_path, "eval")
  out = eval_lib.evaluate(TASK, model, out_dir, split="test", dev_split="validation",
                          baselines={"untuned": base}, num_examples=12, dev_num_examples=6,
                          batch_size=4, progress=False)
  with open(out["paths"]["metrics"]) as f:
    saved = json.load(f)
  with open(out["paths"]["report_json"]) as f:  # The offline suite's report.
    assert "world_nli" in f.read()
  with open(out["paths"]["report_md"]) as f:
    assert "untuned" in f.read()
  with open(out["paths"]["report_png"], "rb") as f:
    assert f.read(4) == b"\x89PNG"
  for label in ("model", "untuned"):
    for split in ("test", "validation"):
      acc = saved["results"][label][split][TASK]["accuracy"]
      assert 0.0 <= acc <= 100.0
  assert "accuracy_per_char" in saved["results"]["model"]["test"][TASK]
  assert saved["chance"][TASK] == pytest.approx(100 / 3)
  # seqio's JSONLogger wrote the metrics per label and split.
  assert os.path.exists(os.path.join(out_dir, "untuned", "validation", f"{TASK}-metrics.jsonl"))


def test_evaluate_unknown_task_suggests(tmp_path):
  with pytest.raises(ValueError, match="world_nli"):
    eval_lib.evaluate("world_nli_type_0_scoring_evl", "x", str(tmp_path))


def test_missing_checkpoint_is_explained(tmp_path):
  mesh, rules = _mesh()
  model_checkpoint.save_config(str(tmp_path), CFG)
  with pytest.raises((FileNotFoundError, ValueError), match="train first"):
    eval_lib.load_model(str(tmp_path), mesh, rules)


def test_predict_fn_equals_greedy_decoding_of_each_row():
  from flan_jax.inference import decoding
  task = "world_qa_type_0"
  ev = eval_lib.make_evaluator(task, "validation", None, num_examples=6)
  mesh, rules = _mesh()
  params = init_params(CFG, jax.random.key(0))
  inference = eval_lib.Inference(CFG, params, mesh, rules, batch_size=4, max_decode_length=5)
  ds = ev._cached_model_datasets[task]
  got = dict(inference.predict_fn(ds))
  assert sorted(got) == list(range(6))
  for index, features in ds.as_numpy_iterator():
    n = int(features["decoder_causal_attention"].sum())
    tokens, lengths = decoding.left_pad([features["decoder_input_tokens"][:n]])
    want = [int(t) for t in decoding.decode(CFG, params, tokens, lengths,
                                            max_new_tokens=5)["tokens"][0]]
    want = want[:want.index(1)] if 1 in want else want
    assert got[int(index)].shape == (5,)  # Fixed length, as t5x's decodes.
    assert decoding.until_eos(got[int(index)]) == [t for t in want if t]


def test_pad_prediction_keeps_eos_and_pads():
  np.testing.assert_array_equal(eval_lib.pad_prediction([5, 6, 1, 7], 5), [5, 6, 1, 0, 0])
  np.testing.assert_array_equal(eval_lib.pad_prediction([5, 6, 7], 3), [5, 6, 7])


def test_evaluate_generative_task_reports_its_metric(tmp_path):
  model = _save(tmp_path, "model", 1)
  out = eval_lib.evaluate("world_qa_type_0", model, str(tmp_path / "eval"), dev_split=None,
                          num_examples=4, max_decode_length=4, report=False, progress=False)
  metrics = out["results"]["model"]["test"]["world_qa_type_0"]
  assert set(metrics) >= {"em", "f1"} or set(metrics) >= {"accuracy"}


def test_train_and_eval_command_lines_in_one_process(tmp_path, capsys):
  """`flan-jax train` then `flan-jax eval` (t5x flags) back to back, as in a notebook."""
  import gin

  from flan_jax import train as train_lib
  model_dir = str(tmp_path / "model")
  for main, flags in (
      (train_lib.main, ["--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{model_dir}'",
                        "--gin.TRAIN_STEPS=2", "--gin.CHECKPOINT_PERIOD=2"]),
      (eval_lib.main, ["--gin_file=gin/runs/eval.gin", f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
                       f"--gin.CHECKPOINT_PATH='{model_dir}'",
                       f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'", "--gin.DEV_SPLIT=None",
                       "--gin_bindings=eval_script.evaluate.num_examples = 6"])):
    gin.clear_config()
    try:
      main(flags)
    except SystemExit as e:  # absl's app.run exits after the run.
      assert e.code in (0, None)
  gin.clear_config()
  assert "report_png:" in capsys.readouterr().out
  with open(tmp_path / "eval" / "metrics.json") as f:
    saved = json.load(f)
  assert saved["results"]["model"]["test"][TASK]["accuracy"] >= 0
  assert saved["checkpoints"]["model"] == model_dir


def test_num_examples_counts_whole_questions():
  ev = eval_lib.make_evaluator(TASK, "validation", None, num_examples=7)
  rows = list(ev.cached_task_datasets[TASK].as_numpy_iterator())
  questions = {int(r["idx"][0]) for r in rows}
  assert questions == set(range(7)) and len(rows) == 7 * 3  # 3 options each, none cut off.
  assert len(list(ev._cached_model_datasets[TASK].as_numpy_iterator())) == len(rows)
