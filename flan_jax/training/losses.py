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
from collections.abc import Callable, Mapping
from typing import Any

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


# --- chunked cross-entropy ----------------------------------------------------------------------


def _chunk_terms(h: jax.Array, kernel: jax.Array, targets: jax.Array, weights: jax.Array,
                 vocab_major: bool, label_smoothing: float, z_loss: float,
                 with_grad: bool) -> tuple[tuple[jax.Array, ...], jax.Array | None]:
  """Summed (loss, z_loss, correct, count) of one chunk and, if asked, d loss / d logits."""
  spec = "bcd,vd->bcv" if vocab_major else "bcd,dv->bcv"
  logits = jnp.einsum(spec, h, kernel).astype(jnp.float32)  # [B, c, V]: one chunk only.
  token_loss, token_z = cross_entropy_with_logits(logits, targets, label_smoothing, z_loss)
  mask = (weights > 0).astype(jnp.float32)
  sums = (jnp.sum(token_loss * weights), jnp.sum(token_z * weights),
          jnp.sum((jnp.argmax(logits, axis=-1) == targets) * mask), jnp.sum(mask))
  if not with_grad:
    return sums, None
  vocab = logits.shape[-1]
  log_z = jax.nn.logsumexp(logits, axis=-1, keepdims=True)
  p = jnp.exp(logits - log_z)
  onehot = jax.nn.one_hot(targets, vocab, dtype=jnp.float32)
  if label_smoothing:  # d/dlogits of -(conf - low) log p_y - low Σ log p.
    low = label_smoothing / (vocab - 1)
    d = (1.0 - label_smoothing - low) * (p - onehot) - low * (1.0 - vocab * p)
  else:
    d = p - onehot
  d = (d + 2.0 * z_loss * log_z * p) * weights[..., None]
  return sums, d.astype(h.dtype)


def _sequence_chunks(hidden: jax.Array, targets: jax.Array, weights: jax.Array,
                     chunk_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """[n_chunks, B, chunk, ...] views of hidden, int32 targets and float32 weights; the sequence
  is padded to a multiple of the chunk with zero-weight positions."""
  b, t, _ = hidden.shape
  chunk = max(1, min(chunk_size, t))
  pad = -t % chunk
  if pad:  # Zero-weight positions; jnp.pad's VJP cuts their gradients off again.
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    weights = jnp.pad(weights, ((0, 0), (0, pad)))
  n = (t + pad) // chunk
  split = lambda x: jnp.swapaxes(x.reshape((b, n, chunk) + x.shape[2:]), 0, 1)  # noqa: E731
  return split(hidden), split(targets.astype(jnp.int32)), split(weights.astype(jnp.float32))


def _scan_chunks(terms: Callable, kernel: jax.Array, xs: tuple[jax.Array, ...], with_grad: bool,
                 vocab_major: bool) -> tuple[tuple[Any, Any], Any]:
  """``lax.scan`` of ``terms`` over the sequence chunks ``xs`` (hidden, targets, weights):
  ((the four summed statistics, d kernel), d hidden per chunk); without ``with_grad`` only the
  sums (d kernel a zero scalar, no d hidden)."""
  zero = jnp.zeros((), jnp.float32)

  def body(carry, x):
    sums, dk = carry
    h, tg, w = x
    chunk_sums, dlogits = terms(h, tg, w, kernel, with_grad)
    sums = tuple(a + c for a, c in zip(sums, chunk_sums, strict=True))
    if not with_grad:
      return (sums, dk), None
    spec_h, spec_k = (("bcv,vd->bcd", "bcv,bcd->vd") if vocab_major
                      else ("bcv,dv->bcd", "bcd,bcv->dv"))
    dh = jnp.einsum(spec_h, dlogits, kernel)
    dk = dk + (jnp.einsum(spec_k, dlogits, h) if vocab_major
               else jnp.einsum(spec_k, h, dlogits)).astype(jnp.float32)
    return (sums, dk), dh

  dk0 = jnp.zeros(kernel.shape, jnp.float32) if with_grad else zero
  return jax.lax.scan(body, ((zero,) * 4, dk0), xs)


def chunked_cross_entropy(hidden: jax.Array, kernel: jax.Array, targets: jax.Array,
                          weights: jax.Array, chunk_size: int, vocab_major: bool = True,
                          label_smoothing: float = 0.0,
                          z_loss: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """:func:`weighted_cross_entropy` of ``logits = hidden @ kernel`` without full logits.

  The output projection, log-softmax, loss, z-loss and their gradient run over sequence chunks
  of ``chunk_size`` positions in a ``lax.scan``; a custom VJP computes d hidden and d kernel in
  that same pass (three matmuls per chunk, as the unchunked step), so no [B, T, vocab] array is
  ever stored. Logits are computed in the inputs' dtype and upcast to float32, like the model.

  Args:
    hidden: [B, T, d] final activations (after the final norm and tied-logit scaling).
    kernel: [vocab, d] (``vocab_major``: the tied embedding) or [d, vocab].
    targets, weights: [B, T]; weights already normalised (:func:`batch_weights`).
  Returns:
    (loss, statistics) as :func:`weighted_cross_entropy`; only ``loss`` is differentiable (the
    statistics are returned under ``stop_gradient``).
  """
  xs = _sequence_chunks(hidden, targets, weights, chunk_size)
  terms = lambda h, tg, w, k, g: _chunk_terms(  # noqa: E731
      h, k, tg, w, vocab_major, label_smoothing, z_loss, g)
  forward = lambda kernel, xs, with_grad: _scan_chunks(  # noqa: E731
      terms, kernel, xs, with_grad, vocab_major)

  @jax.custom_vjp
  def fused(hidden_xs, kernel, tg_xs, w_xs):
    (sums, _), _ = forward(kernel, (hidden_xs, tg_xs, w_xs), False)
    return sums

  def fused_fwd(hidden_xs, kernel, tg_xs, w_xs):
    (sums, dk), dh = forward(kernel, (hidden_xs, tg_xs, w_xs), True)
    return sums, (dh, dk.astype(kernel.dtype))

  def fused_bwd(res, cts):
    dh, dk = res
    ct = cts[0]  # Only the loss is differentiable.
    return ((dh * ct).astype(dh.dtype), (dk * ct).astype(dk.dtype), None, None)

  fused.defvjp(fused_fwd, fused_bwd)
  loss, z, correct, count = fused(*xs[:1], kernel, *xs[1:])
  stats = jax.lax.stop_gradient({"z_loss": z, "cross_ent_loss": loss - z, "correct": correct,
                                 "num_target_tokens": count})
  stats["loss"] = jax.lax.stop_gradient(loss)
  return loss, stats
