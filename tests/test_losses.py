"""Chunked cross-entropy (fused custom VJP) against the full-logits loss: values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import DecoderConfig, init_params
from flan_jax.training import losses
from flan_jax.training import step as trainer


@pytest.mark.parametrize("vocab_major", [True, False])
@pytest.mark.parametrize("label_smoothing,z_loss", [(0.0, 0.0), (0.0, 1e-2), (0.1, 1e-4)])
@pytest.mark.parametrize("chunk", [5, pytest.param(4, marks=pytest.mark.slow),
                                   pytest.param(64, marks=pytest.mark.slow)])
def test_chunked_equals_full(vocab_major, label_smoothing, z_loss, chunk):
  b, t, d, v = 3, 12, 16, 50
  keys = jax.random.split(jax.random.key(chunk), 4)
  hidden = jax.random.normal(keys[0], (b, t, d))
  kernel = jax.random.normal(keys[1], (v, d) if vocab_major else (d, v)) * 0.5
  targets = jax.random.randint(keys[2], (b, t), 1, v)
  weights = losses.normalized_weights(jax.random.uniform(keys[3], (b, t)) > 0.3)

  def full(h, k):
    logits = jnp.einsum("btd,vd->btv" if vocab_major else "btd,dv->btv", h, k)
    return losses.weighted_cross_entropy(logits, targets, weights, label_smoothing, z_loss)

  def chunked(h, k):
    return losses.chunked_cross_entropy(h, k, targets, weights, chunk, vocab_major,
                                        label_smoothing, z_loss)

  (want, want_stats), want_g = jax.value_and_grad(full, (0, 1), has_aux=True)(hidden, kernel)
  (got, got_stats), got_g = jax.jit(jax.value_and_grad(chunked, (0, 1), has_aux=True))(
      hidden, kernel)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert set(got_stats) == set(want_stats)
  for name in want_stats:
    np.testing.assert_allclose(got_stats[name], want_stats[name], rtol=1e-6, atol=1e-7)
  for g, w in zip(got_g, want_g, strict=True):
    np.testing.assert_allclose(g, w, atol=1e-6)
  np.testing.assert_allclose(chunked(hidden, kernel)[0], want, rtol=1e-6)  # Primal (no VJP).


@pytest.mark.parametrize("tie", [True, False])
def test_trainer_loss_chunked_equals_full(tie):
  """The trainer's loss_fn with ``loss_chunk_size`` matches the full logits (tied and untied)."""
  cfg = DecoderConfig(vocab_size=96, num_layers=1, d_model=32, num_heads=2, head_dim=16,
                      d_ff=64, dtype="float32", tie_embeddings=tie, position="rope")
  params = init_params(cfg, jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(1), (2, 10), 1, 96)
  batch = {"decoder_input_tokens": tokens, "decoder_target_tokens": tokens.at[1, 7:].set(0)}
  weights = losses.batch_weights(batch, "NUM_REAL_TARGET_TOKENS")
  grad = jax.value_and_grad(trainer.loss_fn, has_aux=True)
  (want, _), want_g = grad(params, batch, weights, None, cfg, 0.0, 1e-4)
  (got, _), got_g = grad(params, batch, weights, None, cfg.replace(loss_chunk_size=3), 0.0, 1e-4)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  for g, w in zip(jax.tree.leaves(got_g), jax.tree.leaves(want_g), strict=True):
    np.testing.assert_allclose(g, w, atol=1e-6)
