"""Losses, microbatching, checkpoint/resume and validation of the trainer (tiny configs)."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flan_jax import losses, partitioning, registry, trainer
from flan_jax import train as train_lib
from flan_jax.models import DecoderConfig, init_params

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
  tx = trainer.make_optimizer("adamw", 1e-2)
  state, shardings = partitioning.create_train_state(CFG, tx, jax.random.key(0), mesh, rules)
  step = trainer.partitioned_train_step(trainer.make_train_step(CFG, 2), shardings, mesh, rules)
  batch = partitioning.host_local_to_global(_batch(), mesh)
  first = None
  for _ in range(5):
    state, metrics = step(state, batch, jax.random.key(0))
    first = first if first is not None else float(metrics["loss"])
  assert int(state.step) == 5 and float(metrics["loss"]) < first


def test_schedules_and_optimizers():
  assert float(trainer.make_schedule("constant", 0.1)(50)) == pytest.approx(0.1)
  assert float(trainer.make_schedule("linear_warmup", 0.1, 10)(5)) == pytest.approx(0.05)
  assert float(trainer.make_schedule("rsqrt", 1.0, 100)(400)) == pytest.approx(0.05)
  assert float(trainer.make_schedule("rsqrt", 1.0, 100)(10)) == pytest.approx(0.1)
  cos = trainer.make_schedule("cosine", 0.1, 10, 110)
  assert float(cos(10)) == pytest.approx(0.1) and float(cos(110)) == pytest.approx(0.0)
  with pytest.raises(ValueError):
    trainer.make_schedule("nope")
  for name in ("adafactor", "adamw"):
    tx = trainer.make_optimizer(name, 1e-3, skip_nonfinite_updates=True)
    params = {"w": jnp.ones((4, 3))}
    updates, _ = tx.update({"w": jnp.full((4, 3), jnp.nan)}, tx.init(params), params)
    assert not np.any(updates["w"])  # The NaN step is skipped.


# --- train(): validation, checkpoints, exact resume ------------------------------------------


def _train(model_dir, steps, **kw):
  args = dict(model_dir=str(model_dir), model_config=CFG,
              mixture_or_task_name="demo_heldout_nli_train",
              task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=steps, batch_size=4,
              dropout_rate=0.1, checkpoint_period=2, optimizer="adafactor", learning_rate=1e-2,
              num_microbatches=2, mesh="data=2,model=4", log_period=2, progress=False,
              async_checkpointing=True)
  args.update(kw)
  return train_lib.train(**args)


def test_unknown_mixture_fails_before_compiling(tmp_path, monkeypatch):
  def no_compile(*a, **k):
    raise AssertionError("compiled before validating")

  monkeypatch.setattr(partitioning, "create_train_state", no_compile)
  with pytest.raises(registry.UnknownNameError, match="demo_heldout_nli_train"):
    _train(tmp_path, 2, mixture_or_task_name="demo_heldout_nli_trian")
  with pytest.raises(ValueError, match="TASK_FEATURE_LENGTHS"):
    _train(tmp_path, 2, task_feature_lengths={"targets": 8})


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
  _train(part, 4, checkpoint_period=3)
  # A crash after step 4, before its checkpoint; a checkpoint dir cut short (no metadata) and an
  # orbax tmp dir. Both must be ignored; training resumes from checkpoint_3.
  shutil.rmtree(part / "checkpoint_4")
  shutil.copytree(part / "checkpoint_3", part / "checkpoint_5")
  os.remove(part / "checkpoint_5" / "_CHECKPOINT_METADATA")
  shutil.copytree(part / "checkpoint_3", part / "checkpoint_4.orbax-checkpoint-tmp-1")
  resumed = _train(part, 6, checkpoint_period=3)
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
