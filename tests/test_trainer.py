"""Losses, microbatching, checkpoint/resume and validation of the trainer (tiny configs)."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flan_jax import train as train_lib
from flan_jax.data import registry
from flan_jax.models import DecoderConfig, init_params
from flan_jax.parallel import partitioning
from flan_jax.training import config as training_config
from flan_jax.training import losses, optim, perf
from flan_jax.training import step as trainer

CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32", param_dtype="float32")


def _batch(b: int = 8, length: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
  """A packed-looking prefix-LM batch: 2 segments per row, last positions padded."""
  rng = np.random.default_rng(seed)
  targets = rng.integers(1, CFG.vocab_size, (b, length)).astype(np.int32)
  seg = np.zeros((b, length), np.int32)
  seg[:, : length // 2] = 1
  seg[:, length // 2: length - 3] = 2
  targets[seg == 0] = 0
  inputs = np.roll(targets, 1, axis=1) * (seg > 0)
  causal = np.zeros_like(seg)
  causal[:, :3] = 1
  causal[:, length // 2: length // 2 + 2] = 1
  weights = ((seg > 0) & (causal == 0)).astype(np.int32)
  weights[0, :] = 0  # A row without any target tokens.
  positions = np.where(seg == 1, np.arange(length), np.arange(length) - length // 2) * (seg > 0)
  return {"decoder_input_tokens": inputs, "decoder_target_tokens": targets,
          "decoder_loss_weights": weights, "decoder_segment_ids": seg,
          "decoder_positions": positions.astype(np.int32), "decoder_causal_attention": causal}


# --- losses -----------------------------------------------------------------------------------


def test_normalizations():
  w = jnp.asarray([[1, 1, 0, 0], [1, 1, 1, 1]], jnp.float32)
  seg = jnp.asarray([[1, 1, 0, 0], [1, 1, 2, 2]])
  np.testing.assert_allclose(losses.normalized_weights(w, "NUM_REAL_TARGET_TOKENS"), w / 6)
  np.testing.assert_allclose(losses.normalized_weights(w, "num_total_target_tokens"), w / 8)
  np.testing.assert_allclose(losses.normalized_weights(w, None), w)
  np.testing.assert_allclose(losses.normalized_weights(w, 4.0), w / 4)
  # Three sequences (row 0; row 1's two segments), each token 1/(len * 3).
  np.testing.assert_allclose(losses.normalized_weights(w, "AVERAGE_PER_SEQUENCE", seg),
                             [[1 / 6, 1 / 6, 0, 0], [1 / 6] * 4], rtol=1e-6)
  np.testing.assert_allclose(losses.normalized_weights(w, "AVERAGE_PER_SEQUENCE"),
                             [[1 / 4, 1 / 4, 0, 0], [1 / 8] * 4], rtol=1e-6)
  with pytest.raises(ValueError, match="unknown loss normalizing factor"):
    losses.parse_factor("per_token")


def test_loss_is_targets_only_token_mean():
  logits = jax.random.normal(jax.random.key(0), (2, 5, 11))
  targets = jnp.asarray([[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]])
  weights = jnp.asarray([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])
  loss, stats = losses.weighted_cross_entropy(logits, targets,
                                              losses.normalized_weights(weights))
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(loss, jnp.sum(nll * weights) / 5, rtol=1e-6)
  assert stats["num_target_tokens"] == 5
  # Changing logits where the weight is 0 (prefix, padding) changes nothing.
  other = logits.at[0, :2].set(100.0).at[1, 3:].set(-50.0)
  np.testing.assert_allclose(
      losses.weighted_cross_entropy(other, targets, losses.normalized_weights(weights))[0], loss,
      rtol=1e-6)


def test_z_loss_and_label_smoothing():
  logits = jax.random.normal(jax.random.key(1), (1, 3, 7))
  targets = jnp.asarray([[1, 2, 3]])
  plain, z = losses.cross_entropy_with_logits(logits, targets)
  with_z, z = losses.cross_entropy_with_logits(logits, targets, z_loss=1e-2)
  np.testing.assert_allclose(with_z - plain, 1e-2 * jax.nn.logsumexp(logits, -1) ** 2, rtol=1e-5)
  ls = 0.1
  smoothed, _ = losses.cross_entropy_with_logits(logits, targets, label_smoothing=ls)
  soft = optax.smooth_labels(jax.nn.one_hot(targets, 7), 0.0) * (1 - ls - ls / 6) + ls / 6
  ref = -jnp.sum(soft * jax.nn.log_softmax(logits), -1)
  entropy = -((1 - ls) * np.log(1 - ls) + ls * np.log(ls / 6))
  np.testing.assert_allclose(smoothed, ref - entropy, rtol=1e-5)


# --- train step -------------------------------------------------------------------------------


def test_microbatches_match_one_big_batch():
  """SGD(1.0): the update is the gradient itself, so params compare the f32 gradients."""
  state = partitioning.TrainState.create(init_params(CFG, jax.random.key(0)), optax.sgd(1.0))
  batch = _batch()
  results = []
  for n in (1, 4):
    step = jax.jit(trainer.make_train_step(CFG, n, "AVERAGE_PER_SEQUENCE", z_loss=1e-4))
    new_state, metrics = step(state, batch, jax.random.key(1))
    results.append((new_state.params, metrics))
  (p1, m1), (p4, m4) = results
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p4), strict=True):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
  for k in ("loss", "accuracy", "num_target_tokens", "grad_norm"):
    np.testing.assert_allclose(m1[k], m4[k], rtol=1e-6)


def test_partitioned_step_donates_and_learns():
  mesh = partitioning.create_mesh("data=-1", jax.devices()[:1])
  rules = partitioning.standard_logical_axis_rules()
  tx = optim.make_optimizer("adamw", 1e-2)
  state, shardings = partitioning.create_train_state(CFG, tx, jax.random.key(0), mesh, rules)
  step = trainer.partitioned_train_step(trainer.make_train_step(CFG, 2), shardings, mesh, rules)
  batch = partitioning.host_local_to_global(_batch(), mesh)
  first = None
  for _ in range(5):
    state, metrics = step(state, batch, jax.random.key(0))
    first = first if first is not None else float(metrics["loss"])
  assert int(state.step) == 5 and float(metrics["loss"]) < first


def test_schedules_and_optimizers():
  assert float(optim.make_schedule("constant", 0.1)(50)) == pytest.approx(0.1)
  assert float(optim.make_schedule("linear_warmup", 0.1, 10)(5)) == pytest.approx(0.05)
  assert float(optim.make_schedule("rsqrt", 1.0, 100)(400)) == pytest.approx(0.05)
  assert float(optim.make_schedule("rsqrt", 1.0, 100)(10)) == pytest.approx(0.1)
  cos = optim.make_schedule("cosine", 0.1, 10, 110)
  assert float(cos(10)) == pytest.approx(0.1) and float(cos(110)) == pytest.approx(0.0)
  with pytest.raises(ValueError):
    optim.make_schedule("nope")
  for name in ("adafactor", "adamw"):
    tx = optim.make_optimizer(name, 1e-3, skip_nonfinite_updates=True)
    params = {"w": jnp.ones((4, 3))}
    updates, _ = tx.update({"w": jnp.full((4, 3), jnp.nan)}, tx.init(params), params)
    assert not np.any(updates["w"])  # The NaN step is skipped.


# --- train(): validation, checkpoints, exact resume ------------------------------------------


ONE_MICROBATCH = {"num_microbatches": 1}


def _train(model_dir, steps, optimizer=(), checkpoint=(), evaluation=(), **kw):
  """A tiny run; ``optimizer``, ``checkpoint``, ``evaluation``: fields of the typed configs."""
  args = dict(model_dir=str(model_dir), model_config=CFG,
              mixture_or_task_name="demo_heldout_nli_train",
              task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=steps, batch_size=4,
              dropout_rate=0.1, log_period=2, progress=False,
              optimizer_cfg=training_config.OptimizerConfig(
                  **{"name": "adafactor", "learning_rate": 1e-2, "num_microbatches": 2,
                     **dict(optimizer)}),
              checkpoint_cfg=training_config.CheckpointConfig(
                  **{"period": 2, "async_checkpointing": True, **dict(checkpoint)}),
              eval_cfg=training_config.EvalConfig(**dict(evaluation)),
              partitioning_cfg=training_config.PartitioningConfig("data=2,model=4"))
  args.update(kw)
  return train_lib.train(**args)


def test_unknown_mixture_fails_before_compiling(tmp_path, monkeypatch):
  def no_compile(*a, **k):
    raise AssertionError("compiled before validating")

  monkeypatch.setattr(partitioning, "create_train_state", no_compile)
  with pytest.raises(registry.UnknownNameError, match="demo_heldout_nli_train"):
    _train(tmp_path, 2, mixture_or_task_name="demo_heldout_nli_trian")
  with pytest.raises(ValueError, match="TASK_FEATURE_LENGTHS"):
    _train(tmp_path, 2, task_feature_lengths={"inputs": 8})


def test_demo_gin_and_cli_overrides():
  import gin

  from flan_jax.models.gin_config import rewrite_gin_args
  gin.clear_config()
  args = rewrite_gin_args(["--gin.MODEL_DIR='/tmp/x'", "--gin.TRAIN_STEPS=7"])
  train_lib.parse_gin(["gin/runs/demo.gin"], [a.split("=", 1)[1] for a in args])
  train_lib.check_required_macros()
  assert gin.query_parameter("%TRAIN_STEPS") == 7
  assert gin.query_parameter("%MIXTURE_OR_TASK_NAME") == "demo_heldout_nli_train"
  gin.clear_config()


def test_missing_required_macro():
  import gin
  gin.clear_config()
  train_lib.parse_gin(["gin/runs/finetune.gin"], ["MODEL_DIR = '/tmp/x'"])
  with pytest.raises(ValueError, match="MIXTURE_OR_TASK_NAME, TASK_FEATURE_LENGTHS, TRAIN_STEPS"):
    train_lib.check_required_macros()
  # TRAIN_STEPS may stay unset when TRAIN_STEPS_RELATIVE is given (it becomes None).
  gin.clear_config()
  train_lib.parse_gin(["gin/runs/finetune.gin"], [
      "MODEL_DIR = '/tmp/x'", "MIXTURE_OR_TASK_NAME = 'x'", "MODEL_CONFIG = None",
      "TASK_FEATURE_LENGTHS = {'inputs': 8, 'targets': 8}", "TRAIN_STEPS_RELATIVE = 5"])
  train_lib.check_required_macros()
  assert gin.query_parameter("%TRAIN_STEPS") is None
  gin.clear_config()


@pytest.fixture
def compile_cache(tmp_path):
  """A persistent XLA cache for this test only: the three train() calls compile the same steps."""
  from jax.experimental.compilation_cache import compilation_cache as cc
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  old = {n: getattr(jax.config, n) for n in names}
  cc.reset_cache()
  for name, value in zip(names, (str(tmp_path / "xla_cache"), 0.0, 0), strict=True):
    jax.config.update(name, value)
  yield
  for name, value in old.items():
    jax.config.update(name, value)
  cc.reset_cache()


def test_resume_is_bitwise_exact_and_skips_incomplete(tmp_path, compile_cache):
  full = _train(tmp_path / "full", 6)
  part = tmp_path / "part"
  _train(part, 4, checkpoint={"period": 3})
  # A crash after step 4, before its checkpoint; a checkpoint dir cut short (no metadata) and an
  # orbax tmp dir. Both must be ignored; training resumes from checkpoint_3.
  shutil.rmtree(part / "checkpoint_4")
  shutil.copytree(part / "checkpoint_3", part / "checkpoint_5")
  os.remove(part / "checkpoint_5" / "_CHECKPOINT_METADATA")
  shutil.copytree(part / "checkpoint_3", part / "checkpoint_4.orbax-checkpoint-tmp-1")
  resumed = _train(part, 6, checkpoint={"period": 3})
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  names = sorted(os.listdir(part))
  assert "checkpoint_6" in names and any(n.startswith("checkpoint_5.incomplete") for n in names)
  assert not any("tmp" in n for n in names)
  meta = json.load(open(part / "checkpoint_6" / "data" / "metadata"))
  assert meta["data_position"] == 6 and meta["step"] == 6
  rows = [json.loads(line) for line in open(part / "train_metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and "tokens_per_second" in rows[-1]
  assert (part / "config.gin").exists()


def _poison_step(monkeypatch, bad_step: int) -> None:
  """Makes the train step return NaN loss and params at ``bad_step`` (1-based)."""
  make = trainer.make_train_step

  def poisoned(*args, **kwargs):
    step_fn = make(*args, **kwargs)

    def wrapped(state, batch, rng):
      new_state, metrics = step_fn(state, batch, rng)
      bad = state.step + 1 == bad_step
      nan = lambda x: jnp.where(bad, jnp.nan, x)  # noqa: E731
      return (new_state.replace(params=jax.tree.map(nan, new_state.params)),
              {**metrics, "loss": nan(metrics["loss"])})

    return wrapped

  monkeypatch.setattr(trainer, "make_train_step", poisoned)


def test_nonfinite_loss_stops_saves_batch_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  _poison_step(monkeypatch, 3)
  with pytest.raises(train_lib.NonFiniteLossError, match="at step 3;.*checkpoint_2"):
    _train(tmp_path, 6, optimizer=ONE_MICROBATCH, log_period=1)
  assert train_lib.model_checkpoint.steps(str(tmp_path)) == [2]
  saved = np.load(tmp_path / "nonfinite_batch_step_3.npz")
  # The saved rows are the third batch of the data stream.
  from flan_jax.training import batches as data_lib
  cfg = data_lib.DataConfig("demo_heldout_nli_train", {"inputs": 32, "targets": 8}, 4, seed=0)
  third = next(data_lib.get_dataset(cfg).skip(2).as_numpy_iterator())
  assert sorted(saved.files) == sorted(third)
  for k in third:
    np.testing.assert_array_equal(saved[k], third[k])
  # Strict JSON (finding 7): a non-finite value is null, never a bare NaN.
  def no_constants(name):
    raise AssertionError(f"{name} in train_metrics.jsonl is not JSON")

  rows = [json.loads(line, parse_constant=no_constants)
          for line in open(tmp_path / "train_metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["loss"] is None
  # The last good checkpoint holds finite params (a resumed run starts from it).
  good = train_lib.model_checkpoint.restore_params(str(tmp_path), CFG)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(good))


def test_nonfinite_updates_skipped_when_asked(tmp_path, monkeypatch):
  """With skip_nonfinite_updates a NaN loss does not stop the run (the optimizer drops it)."""
  make = trainer.make_train_step

  def nan_loss(*args, **kwargs):
    step_fn = make(*args, **kwargs)

    def wrapped(state, batch, rng):
      new_state, metrics = step_fn(state, batch, rng)
      return new_state, {**metrics, "loss": jnp.where(state.step == 0, jnp.nan,
                                                      metrics["loss"])}
    return wrapped

  monkeypatch.setattr(trainer, "make_train_step", nan_loss)
  state = _train(tmp_path, 2, optimizer={"num_microbatches": 1, "skip_nonfinite_updates": True})
  assert int(state.step) == 2 and not list(tmp_path.glob("nonfinite_batch_*"))


def _scalars(event_dir) -> dict[str, list[int]]:
  """{tag: [steps]} of the TensorBoard event files in ``event_dir``."""
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0, "tensors": 0})
  acc.Reload()
  tags = acc.Tags()
  out = {t: [e.step for e in acc.Scalars(t)] for t in tags.get("scalars", [])}
  out.update({t: [e.step for e in acc.Tensors(t)] for t in tags.get("tensors", [])})
  return out


def test_initial_checkpoint_step_relative_steps_and_summaries(tmp_path, compile_cache):
  init = tmp_path / "init"
  _train(init, 3, optimizer=ONE_MICROBATCH)
  want = train_lib.model_checkpoint.restore_params(str(init), CFG)
  # relative_steps=0: nothing to train; params and step come from init's checkpoint_3.
  start = _train(tmp_path / "zero", None, initial_checkpoint_path=str(init), relative_steps=0)
  assert int(start.step) == 3
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(start.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  run = tmp_path / "run"
  state = _train(run, None, initial_checkpoint_path=str(init), relative_steps=2,
                 optimizer=ONE_MICROBATCH)
  assert int(state.step) == 5 and train_lib.model_checkpoint.steps(str(run)) == [4, 5]
  meta = json.load(open(run / "checkpoint_5" / "data" / "metadata"))
  assert meta["initial_step"] == 3 and meta["data_position"] == 2
  # A restart (e.g. after a crash) keeps the final step at 3 + 2, not resumed step + 2.
  with pytest.raises(ValueError, match="nothing to do: .*checkpoint_5 is already at TRAIN_STEPS=5"):
    _train(run, None, initial_checkpoint_path=str(init), relative_steps=2, optimizer=ONE_MICROBATCH)
  again = _train(run, None, initial_checkpoint_path=str(init), relative_steps=2,
                 optimizer=ONE_MICROBATCH, allow_nothing_to_do=True)
  assert int(again.step) == 5 and train_lib.model_checkpoint.steps(str(run)) == [4, 5]
  with pytest.raises(ValueError, match="NUM_DATA_SHARDS=2 but .* trained with 1"):
    _train(run, None, initial_checkpoint_path=str(init), relative_steps=2, num_data_shards=2)
  rows = [json.loads(line) for line in open(run / "train_metrics.jsonl")]
  assert [r["step"] for r in rows] == [4, 5] and 0 < rows[-1]["mfu"] < 1  # Host-measured peak.
  scalars = _scalars(run / train_lib.SUMMARY_DIR)
  assert scalars["loss"] == [4, 5] and scalars["learning_rate"] == [4, 5]
  assert scalars["tokens_per_second"] == [4, 5]  # Log steps (log_period 2) and the last.


def test_peak_flops_lookup_and_mfu_row(tmp_path):
  assert train_lib.default_peak_flops_per_device("NVIDIA H100 80GB HBM3") == 989e12
  assert train_lib.default_peak_flops_per_device("TPU v5 lite") == 197e12
  assert train_lib.default_peak_flops_per_device("TPU v5") == 459e12
  assert train_lib.default_peak_flops_per_device("cpu") is None
  _train(tmp_path, 2, optimizer=ONE_MICROBATCH, peak_flops_per_device=1e9)
  last = [json.loads(line) for line in open(tmp_path / "train_metrics.jsonl")][-1]
  flops = CFG.replace(dropout_rate=0.1).train_flops_per_token(40)
  assert last["mfu"] == pytest.approx(last["tokens_per_second"] * flops / (1e9 * 8))
  assert _scalars(tmp_path / train_lib.SUMMARY_DIR)["mfu"] == [2]
  assert 0 <= last["timing/input_wait_fraction"] < 1  # Also a TensorBoard scalar:
  assert _scalars(tmp_path / train_lib.SUMMARY_DIR)["timing/input_wait_fraction"] == [2]
  # On CPU without a peak, MFU is against the host's measured matmul FLOP/s.
  assert perf.measured_matmul_flops(n=256, reps=2) > 1e8
  _train(tmp_path / "cpu", 2, optimizer=ONE_MICROBATCH)
  last = [json.loads(line) for line in open(tmp_path / "cpu" / "train_metrics.jsonl")][-1]
  assert 0 < last["mfu"] < 1


LLAMA = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                      activation="swiglu", position="rope", tie_embeddings=False,
                      scale_tied_logits=False, dtype="float32", param_dtype="float32")


def test_initial_checkpoint_from_hugging_face_dir(tmp_path):
  pytest.importorskip("safetensors")
  from flan_jax.interop import hf as hf_interop
  params = init_params(LLAMA, jax.random.key(5))
  hf_dir = str(tmp_path / "hf")
  hf_interop.save_hf(hf_dir, LLAMA, params)
  state = _train(tmp_path / "run", 0, model_config=LLAMA, initial_checkpoint_path=hf_dir)
  assert int(state.step) == 0
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(state.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match=r"d_ff \(checkpoint 64, MODEL_CONFIG 128\)"):
    _train(tmp_path / "bad", 0, model_config=LLAMA.replace(d_ff=128),
           initial_checkpoint_path=hf_dir)


def test_periodic_eval_writes_seqio_logs_and_summaries(tmp_path):
  from tensorboard.backend.event_processing import event_accumulator
  task = "world_nli_type_0_scoring_eval"
  _train(tmp_path, 4, evaluation={"period": 2, "mixture_or_task_name": task, "num_examples": 9,
                                  "batch_size": 4}, optimizer=ONE_MICROBATCH,
         dropout_rate=0.0)
  with open(os.path.join(tmp_path, "inference_eval", f"{task}-metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert [r["step"] for r in rows] == [2, 4]
  assert all(0 <= r["accuracy"] <= 100 for r in rows)
  acc = event_accumulator.EventAccumulator(os.path.join(tmp_path, train_lib.SUMMARY_DIR))
  acc.Reload()
  assert f"eval/{task}/accuracy" in acc.Tags()["tensors"] + acc.Tags()["scalars"]


def test_eval_period_without_eval_mixture_fails_early(tmp_path):
  with pytest.raises(ValueError, match="EVAL_MIXTURE_OR_TASK_NAME"):
    _train(tmp_path, 2, evaluation={"period": 1})


def test_plain_lm_pretraining_on_targets_only(tmp_path):
  _train(tmp_path, 3, mixture_or_task_name="offline_world_lm",
         task_feature_lengths={"targets": 32}, optimizer=ONE_MICROBATCH)
  with open(os.path.join(tmp_path, train_lib.METRICS_FILE)) as f:
    rows = [json.loads(line) for line in f]
  assert rows[-1]["step"] == 3 and np.isfinite(rows[-1]["loss"])
  assert rows[-1]["num_target_tokens"] > 0.5 * 4 * 32  # Every (packed) token is a target.


def test_adafactor_updates_scanned_layers_like_unscanned():
  """A scanned model's stacked kernels get exactly the unscanned model's Adafactor updates."""
  cfg = CFG.replace(num_layers=3, d_model=128, d_ff=256, scan_layers=False)
  params = init_params(cfg, jax.random.key(0))
  grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)

  def stack(tree):
    layers = [tree[f"layers_{i}"] for i in range(cfg.num_layers)]
    out = {k: v for k, v in tree.items() if not k.startswith("layers_")}
    out["layers"] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
    return out

  tx = optim.make_optimizer("adafactor", 1e-2)
  flat_p, flat_s = params, tx.init(params)
  scan_p, scan_s = stack(params), tx.init(stack(params))
  for _ in range(2):
    u, flat_s = tx.update(grads, flat_s, flat_p)
    flat_p = optax.apply_updates(flat_p, u)
    u, scan_s = tx.update(stack(grads), scan_s, scan_p)
    scan_p = optax.apply_updates(scan_p, u)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), stack(flat_p), scan_p)
  # Plain optax Adafactor on the stacked tree does mix layers (this is what the wrapper fixes).
  plain = optax.adafactor(1e-2, decay_rate=0.8, multiply_by_parameter_scale=True,
                          clipping_threshold=1.0, min_dim_size_to_factor=128)
  u, _ = plain.update(stack(grads), plain.init(stack(params)), stack(params))
  want, _ = tx.update(stack(grads), tx.init(stack(params)), stack(params))
  rel = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12)),
                     u["layers"], want["layers"])
  assert max(jax.tree.leaves(rel)) > 1e-2


def test_train_step_on_2x4_mesh_matches_one_device():
  """The partitioned step (Adafactor, 2 microbatches, dropout) on a 2x4 mesh == 1 device."""
  cfg = CFG.replace(dropout_rate=0.1)
  tx = optim.make_optimizer("adafactor", 1e-2)
  runs = {}
  for name, devices, spec in (("mesh", jax.devices(), "data=2,model=4"),
                              ("single", jax.devices()[:1], "data=1,model=1")):
    mesh = partitioning.create_mesh(spec, devices)
    rules = partitioning.standard_logical_axis_rules()
    state, shardings = partitioning.create_train_state(cfg, tx, jax.random.key(0), mesh, rules)
    step = trainer.partitioned_train_step(trainer.make_train_step(cfg, 2), shardings, mesh, rules)
    losses_ = []
    for i in range(3):
      batch = partitioning.host_local_to_global(_batch(seed=i), mesh)
      state, metrics = step(state, batch, jax.random.key(7))
      losses_.append(float(metrics["loss"]))
    runs[name] = (losses_, jax.device_get(state.params))
  np.testing.assert_allclose(runs["mesh"][0], runs["single"][0], atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
               runs["mesh"][1], runs["single"][1])


@pytest.mark.parametrize("binding,message", [
    ("TRAIN_STEP = 5", "unknown gin macro 'TRAIN_STEP'.*did you mean TRAIN_STEPS"),
    ("train_script.train.lerning_rate = 0.1", "doesn't have a parameter named 'lerning_rate'"),
    ("trian_script.train.learning_rate = 0.1", "No configurable matching 'trian_script.train'"),
])
def test_unknown_gin_binding_fails_at_parse_time(binding, message):
  import gin
  gin.clear_config()
  try:
    with pytest.raises(ValueError, match=message):
      train_lib.parse_gin(["gin/runs/demo.gin"], [binding])
  finally:
    gin.clear_config()


def test_best_fit_packer_trains_and_resumes_exactly(tmp_path, compile_cache):
  """PACKER='best_fit': a run stopped at step 2 and resumed gives the uninterrupted run's params
  (the packed stream skips the consumed batches); resuming with another packer fails."""
  kw = dict(packer="best_fit", task_feature_lengths={"inputs": 64, "targets": 16})
  full = _train(tmp_path / "full", 4, **kw)
  part = tmp_path / "part"
  _train(part, 2, **kw)
  with pytest.raises(Exception, match="PACKER='seqio' but .* trained with 'best_fit'"):
    _train(part, 4, task_feature_lengths=kw["task_feature_lengths"])
  resumed = _train(part, 4, **kw)
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  meta = json.load(open(part / "checkpoint_4" / "data" / "metadata"))
  assert meta["packer"] == "best_fit" and meta["data_position"] == 4
  rows = [json.loads(line) for line in open(part / "train_metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)
