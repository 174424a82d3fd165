"""Decoder-only Transformer (LaMDA / t5x ``DecoderOnly`` signature), read top to bottom.

    tokens [B, T] -> embed [B, T, d] -> L x DecoderBlock -> RMSNorm -> logits [B, T, vocab]

    DecoderBlock: x += Dropout(Attention(RMSNorm(x)));  x += Dropout(Mlp(RMSNorm(x)))

Features t5x's decoder-only model passes: ``decoder_target_tokens`` (0 = padding),
``decoder_segment_ids`` (packing), ``decoder_positions``, ``decoder_causal_attention`` (prefix-LM:
bidirectional over the inputs), ``enable_dropout``, ``decode`` (KV cache, see :func:`init_cache`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flan_jax.models import layers
from flan_jax.models import positions as pos_lib
from flan_jax.models.attention import MaskSpec
from flan_jax.models.config import DecoderConfig
from flan_jax.models.masks import attention_mask

# The batch features :class:`Decoder` takes (a batch may hold more, e.g. loss weights).
MODEL_FEATURES = ("decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids",
                  "decoder_positions", "decoder_causal_attention")

_REMAT_POLICIES = {
    "minimal": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "full": jax.checkpoint_policies.nothing_saveable,
}


class DecoderBlock(nn.Module):
  """Pre-norm attention + MLP residual block; returns (x, None) so it can be scanned."""

  config: DecoderConfig
  deterministic: bool = True
  decode: bool = False

  @nn.compact
  def __call__(self, x, mask, bias, rope, cache_index):
    cfg = self.config
    drop = lambda y: nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(  # noqa: E731
        y, deterministic=self.deterministic)
    h = layers.RMSNorm(cfg, name="pre_attention_norm")(x)
    h = layers.Attention(cfg, decode=self.decode, name="attention")(
        h, mask, bias, rope, cache_index, self.deterministic)
    x = x + drop(h)
    h = layers.RMSNorm(cfg, name="pre_mlp_norm")(x)
    x = x + drop(layers.Mlp(cfg, name="mlp")(h, self.deterministic))
    return layers.constrain(x, ("batch", "length", "embed")), None


class Decoder(nn.Module):
  """The full model; ``__call__`` returns float32 logits [B, T, vocab]."""

  config: DecoderConfig

  @nn.compact
  def __call__(self, decoder_input_tokens: jnp.ndarray,
               decoder_target_tokens: jnp.ndarray | None = None,
               decoder_segment_ids: jnp.ndarray | None = None,
               decoder_positions: jnp.ndarray | None = None,
               decoder_causal_attention: jnp.ndarray | None = None,
               enable_dropout: bool = False, decode: bool = False,
               last_logits_only: bool = False, return_hidden: bool = False) -> jnp.ndarray:
    """float32 logits [B, T, vocab]; [B, 1, vocab] (last position) with ``last_logits_only``
    (a prefill that only needs the next-token distribution skips the output projection of the
    other T - 1 positions). ``return_hidden``: ``(x, kernel)`` instead, the output projection's
    input [B, T, d_model] and weight ([vocab, d_model] when tied, else [d_model, vocab]), for
    :func:`flan_jax.training.losses.chunked_cross_entropy`."""
    cfg = self.config
    mask, q_index, k_index, cache_index = self._mask(
        decoder_input_tokens.shape, decoder_target_tokens, decoder_segment_ids,
        decoder_causal_attention, decode)
    bias, rope = self._positions(decoder_input_tokens.shape, q_index, k_index, cache_index,
                                 decoder_positions)
    embed = layers.Embed(cfg, name="token_embedder")
    x = embed(decoder_input_tokens)  # [B, T, d_model]
    x = layers.constrain(x, ("batch", "length", "embed"))
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=not enable_dropout)
    x = self._blocks(x, mask, bias, rope, cache_index, enable_dropout, decode)
    if last_logits_only:
      x = x[:, -1:]  # [B, 1, d_model]
    return self._logits(x, embed, enable_dropout, return_hidden)

  def _mask(self, shape: tuple[int, int], targets: jnp.ndarray | None,
            segment_ids: jnp.ndarray | None, causal_attention: jnp.ndarray | None,
            decode: bool) -> tuple[Any, jnp.ndarray, jnp.ndarray, jnp.ndarray | None]:
    """(mask, query slots, key slots, cache index): the attention mask (dense [B, 1, T, S] or a
    :class:`MaskSpec` the blocked core expands); while decoding, the cache's segment and prefix
    records are extended and the keys are the whole cache."""
    b, t = shape
    segment = (jnp.ones((b, t), jnp.int32) if segment_ids is None
               else segment_ids.astype(jnp.int32))  # [B, T]
    if targets is not None:  # Target 0 marks padding.
      segment = jnp.where(targets > 0, segment, 0)
    bidir = (jnp.zeros((b, t), bool) if causal_attention is None
             else causal_attention.astype(bool))  # [B, T]
    if decode and self.has_variable("cache", "index"):
      index = self.variable("cache", "index", jnp.zeros, (), jnp.int32)
      k_seg = self.variable("cache", "segment_ids", jnp.zeros, (b, t), jnp.int32)
      k_bidir = self.variable("cache", "bidirectional", jnp.zeros, (b, t), bool)
      cache_index = index.value
      k_seg.value = jax.lax.dynamic_update_slice(k_seg.value, segment, (0, cache_index))
      k_bidir.value = jax.lax.dynamic_update_slice(k_bidir.value, bidir, (0, cache_index))
      index.value = cache_index + t
      q_index = cache_index + jnp.arange(t)
      k_index = jnp.arange(k_seg.value.shape[1])
      mask = attention_mask(q_index, k_index, segment, k_seg.value, bidir, k_bidir.value)
      return mask, q_index, k_index, cache_index
    if decode:  # The call that creates the cache.
      self.variable("cache", "index", jnp.zeros, (), jnp.int32)
      self.variable("cache", "segment_ids", jnp.zeros, (b, t), jnp.int32)
      self.variable("cache", "bidirectional", jnp.zeros, (b, t), bool)
    q_index = k_index = jnp.arange(t)
    if self.config.attention == "dense" or decode:
      mask = attention_mask(q_index, k_index, segment, segment, bidir, bidir)  # [B, 1, T, T]
    else:  # The core builds (only) the mask blocks it needs.
      prefix = None if causal_attention is None else bidir
      mask = MaskSpec(q_index, k_index, segment, segment, prefix, prefix)
    return mask, q_index, k_index, None

  def _positions(self, shape: tuple[int, int], q_index: jnp.ndarray, k_index: jnp.ndarray,
                 cache_index: jnp.ndarray | None, positions: jnp.ndarray | None
                 ) -> tuple[jnp.ndarray | None, Any]:
    """(relative position bias [1, heads, T, S], None) or (None, RoPE tables)."""
    cfg = self.config
    if cfg.position == "relative":
      bias = layers.RelativePositionBias(cfg, cfg.relative_bidirectional, name="relpos_bias")(
          q_index, k_index)  # [1, heads, T, S]
      return bias, None
    if positions is None:
      start = 0 if cache_index is None else cache_index
      positions = jnp.broadcast_to(start + jnp.arange(shape[1]), shape)
    return None, pos_lib.rope_tables(positions, cfg.head_dim, cfg.rope_theta)

  def _blocks(self, x: jnp.ndarray, mask: Any, bias: jnp.ndarray | None, rope: Any,
              cache_index: jnp.ndarray | None, enable_dropout: bool, decode: bool
              ) -> jnp.ndarray:
    """The layer stack (scanned or ``layers_{i}``; rematerialised by ``remat_policy``)."""
    cfg = self.config
    block = DecoderBlock
    if cfg.remat_policy != "none":
      block = nn.remat(block, policy=_REMAT_POLICIES[cfg.remat_policy],
                       prevent_cse=not cfg.scan_layers)
    kwargs = dict(deterministic=not enable_dropout, decode=decode)
    if cfg.scan_layers:
      stack = nn.scan(block, variable_axes={"params": 0, "cache": 0},
                      split_rngs={"params": True, "dropout": True},
                      in_axes=(nn.broadcast,) * 4, length=cfg.num_layers,
                      metadata_params={nn.PARTITION_NAME: "layers"})
      x, _ = stack(cfg, name="layers", **kwargs)(x, mask, bias, rope, cache_index)
    else:
      for i in range(cfg.num_layers):
        x, _ = block(cfg, name=f"layers_{i}", **kwargs)(x, mask, bias, rope, cache_index)
    return x

  def _logits(self, x: jnp.ndarray, embed: layers.Embed, enable_dropout: bool,
              return_hidden: bool) -> Any:
    """Final norm and output projection (tied: the embedding's ``attend``): float32 logits, or
    ``(x, kernel)`` with ``return_hidden``."""
    cfg = self.config
    x = layers.RMSNorm(cfg, name="final_norm")(x)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=not enable_dropout)
    if cfg.tie_embeddings:
      if cfg.scale_tied_logits:
        x = x * (cfg.d_model ** -0.5)
      if return_hidden:
        return x, jnp.asarray(embed.embedding, cfg.compute_dtype)
      logits = embed.attend(x)
    else:
      kernel = layers.param(self, "logits_kernel", layers.kernel_init(0, 1),
                             (cfg.d_model, cfg.vocab_size), ("embed", "vocab"), cfg)
      if return_hidden:
        return x, kernel
      logits = jnp.einsum("btd,dv->btv", x, kernel)
    logits = layers.constrain(logits, ("batch", "length", "vocab"))
    return logits.astype(jnp.float32)  # [B, T, vocab]


def init_params(config: DecoderConfig, rng: jax.Array, batch: int = 1, length: int = 8):
  """Unboxed float parameters (for small models; large ones: flan_jax.parallel.partitioning)."""
  tokens = jnp.ones((batch, length), jnp.int32)
  return nn.meta.unbox(Decoder(config).init(rng, tokens)["params"])


def abstract_params(config: DecoderConfig, boxed: bool = False):
  """Parameter ShapeDtypeStructs via ``jax.eval_shape`` (nothing allocated)."""
  tokens = jax.ShapeDtypeStruct((1, 8), jnp.int32)
  variables = jax.eval_shape(lambda tok: Decoder(config).init(jax.random.key(0), tok), tokens)
  params = variables["params"]
  return params if boxed else nn.meta.unbox(params)


def init_cache(config: DecoderConfig, batch: int, max_length: int):
  """An empty KV cache for ``batch`` sequences of up to ``max_length`` tokens (all zeros)."""
  tokens = jax.ShapeDtypeStruct((batch, max_length), jnp.int32)
  shapes = jax.eval_shape(
      lambda tok: Decoder(config).init(jax.random.key(0), tok, decode=True), tokens)["cache"]
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), nn.meta.unbox(shapes))
