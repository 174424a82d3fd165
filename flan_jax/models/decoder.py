"""Decoder-only Transformer (LaMDA / t5x ``DecoderOnly`` signature), read top to bottom.

    tokens [B, T] -> embed [B, T, d] -> L x DecoderBlock -> RMSNorm -> logits [B, T, vocab]

    DecoderBlock: x += Dropout(Attention(RMSNorm(x)));  x += Dropout(Mlp(RMSNorm(x)))

Features t5x's decoder-only model passes: ``decoder_target_tokens`` (0 = padding),
``decoder_segment_ids`` (packing), ``decoder_positions``, ``decoder_causal_attention`` (prefix-LM:
bidirectional over the inputs), ``enable_dropout``, ``decode`` (KV cache, see :func:`init_cache`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from flan_jax.models import layers
from flan_jax.models import positions as pos_lib
from flan_jax.models.attention import MaskSpec
from flan_jax.models.config import DecoderConfig
from flan_jax.models.masks import attention_mask

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
    b, t = decoder_input_tokens.shape
    segment = (jnp.ones((b, t), jnp.int32) if decoder_segment_ids is None
               else decoder_segment_ids.astype(jnp.int32))  # [B, T]
    if decoder_target_tokens is not None:  # Target 0 marks padding.
      segment = jnp.where(decoder_target_tokens > 0, segment, 0)
    bidir = (jnp.zeros((b, t), bool) if decoder_causal_attention is None
             else decoder_causal_attention.astype(bool))  # [B, T]

    # Queries occupy slots q_index; keys k_index (the whole cache when decoding).
    cache_index = None
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
    else:  # Full forward pass (or the call that creates the cache).
      if decode:
        self.variable("cache", "index", jnp.zeros, (), jnp.int32)
        self.variable("cache", "segment_ids", jnp.zeros, (b, t), jnp.int32)
        self.variable("cache", "bidirectional", jnp.zeros, (b, t), bool)
      q_index = k_index = jnp.arange(t)
      if cfg.attention == "dense" or decode:
        mask = attention_mask(q_index, k_index, segment, segment, bidir, bidir)  # [B, 1, T, T]
      else:  # The core builds (only) the mask blocks it needs.
        prefix = None if decoder_causal_attention is None else bidir
        mask = MaskSpec(q_index, k_index, segment, segment, prefix, prefix)

    bias, rope = None, None
    if cfg.position == "relative":
      bias = layers.RelativePositionBias(cfg, cfg.relative_bidirectional, name="relpos_bias")(
          q_index, k_index)  # [1, heads, T, S]
    else:
      if decoder_positions is None:
        start = 0 if cache_index is None else cache_index
        decoder_positions = jnp.broadcast_to(start + jnp.arange(t), (b, t))
      rope = pos_lib.rope_tables(decoder_positions, cfg.head_dim, cfg.rope_theta)

    embed = layers.Embed(cfg, name="token_embedder")
    x = embed(decoder_input_tokens)  # [B, T, d_model]
    x = layers.constrain(x, ("batch", "length", "embed"))
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=not enable_dropout)

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

    if last_logits_only:
      x = x[:, -1:]  # [B, 1, d_model]
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
