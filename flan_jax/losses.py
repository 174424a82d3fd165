"""Targets-only cross-entropy with t5x's loss normalisations, z-loss and label smoothing.

Normalisation is folded into the per-token weights (as t5x's
``get_loss_normalizing_factor_and_weights`` does): :func:`normalized_weights` is computed once on
the *global* batch, after which the loss is a plain weighted **sum**. Summing the losses (and
gradients) of microbatches sliced from the same weights therefore equals the big-batch loss.

Factors (``loss_normalizing_factor``; a float, a :class:`LossNormalizingFactor` or its name):

* ``NUM_REAL_TARGET_TOKENS`` (default here): divide by Σ ``decoder_loss_weights`` (token mean).
* ``NUM_TOTAL_TARGET_TOKENS``: divide by B·L (all target slots, padding included).
* ``AVERAGE_PER_SEQUENCE``: mean over a sequence's target tokens, then mean over sequences; packed
  rows count each segment (``decoder_segment_ids``) as one sequence.
* ``None``: the raw sum (t5x's default, fine for scale-invariant Adafactor).
* a number: divide by that constant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import jax
import jax.numpy as jnp


class LossNormalizingFactor(enum.Enum):
  NUM_REAL_TARGET_TOKENS = 1
  NUM_TOTAL_TARGET_TOKENS = 2
  AVERAGE_PER_SEQUENCE = 3


Factor = LossNormalizingFactor | str | float | None


def parse_factor(factor: Factor) -> LossNormalizingFactor | float | None:
  """A factor given as an enum, its name (from gin), a number or None."""
  if isinstance(factor, str):
    try:
      return LossNormalizingFactor[factor.upper()]
    except KeyError:
      names = [f.name for f in LossNormalizingFactor]
      raise ValueError(f"unknown loss normalizing factor {factor!r}; use one of {names}, a "
                       "number or None") from None
  return factor


def _per_segment_sums(weights: jax.Array, segment_ids: jax.Array) -> jax.Array:
  """For every token, the sum of ``weights`` over its (row, segment); shape [B, L]."""
  b, length = weights.shape
  ids = (jnp.arange(b)[:, None] * (length + 1) + segment_ids).reshape(-1)
  sums = jax.ops.segment_sum(weights.reshape(-1), ids, num_segments=b * (length + 1))
  return sums[ids].reshape(b, length)


def normalized_weights(weights: jax.Array, factor: Factor = "NUM_REAL_TARGET_TOKENS",
                       segment_ids: jax.Array | None = None) -> jax.Array:
  """Loss weights [B, L] (float32) scaled so that Σ token_loss · weights is the normalised loss.

  Call on the global batch (before splitting microbatches).
  """
  factor = parse_factor(factor)
  weights = weights.astype(jnp.float32)
  if factor is None:
    return weights
  if factor == LossNormalizingFactor.NUM_REAL_TARGET_TOKENS:
    return weights / jnp.maximum(jnp.sum(weights), 1e-8)
  if factor == LossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS:
    return weights / weights.size
  if factor == LossNormalizingFactor.AVERAGE_PER_SEQUENCE:
    if segment_ids is None:
      segment_ids = jnp.ones(weights.shape, jnp.int32)
    seg_sums = _per_segment_sums(weights, segment_ids.astype(jnp.int32))
    per_token = jnp.where(seg_sums > 0, weights / jnp.maximum(seg_sums, 1e-8), 0.0)
    num_sequences = jnp.sum(per_token)  # Each non-empty segment's tokens sum to exactly 1.
    return per_token / jnp.maximum(num_sequences, 1e-8)
  return weights / jnp.float32(factor)


def cross_entropy_with_logits(logits: jax.Array, targets: jax.Array, label_smoothing: float = 0.0,
                              z_loss: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """Per-token (loss, z_loss) [B, L], float32; loss includes ``z_loss · log(Z)²``.

  With label smoothing the target distribution puts ``1 - ls`` on the label and ``ls / (V - 1)``
  on every other id; its entropy is subtracted (as t5x does) so a perfect model scores 0.
  """
  logits = logits.astype(jnp.float32)
  vocab = logits.shape[-1]
  log_z = jax.nn.logsumexp(logits, axis=-1)
  logp = logits - log_z[..., None]
  label_logp = jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  if label_smoothing:
    confidence = 1.0 - label_smoothing
    low = label_smoothing / (vocab - 1)
    entropy = -(confidence * jnp.log(confidence) + (vocab - 1) * low * jnp.log(low + 1e-20))
    loss = -((confidence - low) * label_logp + low * jnp.sum(logp, axis=-1)) - entropy
  else:
    loss = -label_logp
  token_z_loss = z_loss * jnp.square(log_z)
  return loss + token_z_loss, token_z_loss


def weighted_cross_entropy(logits: jax.Array, targets: jax.Array, weights: jax.Array,
                           label_smoothing: float = 0.0,
                           z_loss: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Σ loss · weights with already-normalised ``weights``; returns (loss, summed statistics).

  The statistics are sums (safe to add across microbatches): ``loss``, ``z_loss``,
  ``cross_ent_loss`` (without z-loss), ``correct`` and ``num_target_tokens`` (count of weights >
  0; accuracy = correct / num_target_tokens).
  """
  token_loss, token_z = cross_entropy_with_logits(logits, targets, label_smoothing, z_loss)
  loss = jnp.sum(token_loss * weights)
  z = jnp.sum(token_z * weights)
  mask = (weights > 0).astype(jnp.float32)
  correct = jnp.sum((jnp.argmax(logits, axis=-1) == targets) * mask)
  stats = {"loss": loss, "z_loss": z, "cross_ent_loss": loss - z, "correct": correct,
           "num_target_tokens": jnp.sum(mask)}
  return loss, stats


def batch_weights(batch: Mapping[str, jax.Array], factor: Factor) -> jax.Array:
  """``normalized_weights`` of a feature-converted batch (``decoder_loss_weights`` = targets)."""
  weights = batch.get("decoder_loss_weights")
  if weights is None:
    weights = batch["decoder_target_tokens"] > 0
  return normalized_weights(weights, factor, batch.get("decoder_segment_ids"))
