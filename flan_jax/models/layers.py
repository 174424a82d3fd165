"""Transformer building blocks with logical axis names on every parameter and main activation.

Parameter axis names follow t5x: ``vocab, embed, heads, kv_heads, kv, mlp, relpos_buckets``
(scanned layers add ``layers`` in front). Kernels are stored [in, ..., out] (no transposes at run
time); each projection is one explicit einsum.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from flan_jax.models import attention as attn_lib
from flan_jax.models import positions as pos_lib
from flan_jax.models.config import DecoderConfig


def param(module: nn.Module, name: str, init: Callable, shape: tuple[int, ...],
           names: tuple[str, ...], cfg: DecoderConfig) -> jnp.ndarray:
  """A parameter with logical axis names, cast to the compute dtype."""
  value = module.param(name, nn.with_logical_partitioning(init, names), shape, cfg.weight_dtype)
  return jnp.asarray(value, cfg.compute_dtype)


def kernel_init(in_axis, out_axis) -> Callable:
  """Fan-in truncated-normal initializer (t5x's dense kernels) over the given axes."""
  return nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis,
                                          out_axis=out_axis)


def constrain(x: jnp.ndarray, names: tuple[str, ...]) -> jnp.ndarray:
  """Logical sharding constraint on an activation (a no-op outside a mesh)."""
  return nn.with_logical_constraint(x, names)


class RMSNorm(nn.Module):
  """x / rms(x) * scale, normalized in float32 like HF Llama and t5x."""

  config: DecoderConfig

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    cfg = self.config
    scale = param(self, "scale", nn.initializers.ones, (x.shape[-1],), ("embed",), cfg)
    x32 = x.astype(jnp.float32)
    x32 = x32 * lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + cfg.norm_eps)
    return x32.astype(cfg.compute_dtype) * scale


class Embed(nn.Module):
  """Token embedding [vocab, embed]; ``attend`` gives tied output logits."""

  config: DecoderConfig

  def setup(self):
    cfg = self.config
    self.embedding = self.param(
        "embedding", nn.with_logical_partitioning(nn.initializers.normal(1.0), ("vocab", "embed")),
        (cfg.vocab_size, cfg.d_model), cfg.weight_dtype)

  def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
    """tokens [B, T] int -> [B, T, d_model]."""
    return jnp.take(jnp.asarray(self.embedding, self.config.compute_dtype), tokens, axis=0)

  def attend(self, x: jnp.ndarray) -> jnp.ndarray:
    """x [B, T, d_model] -> logits [B, T, vocab]."""
    return jnp.einsum("btd,vd->btv", x, jnp.asarray(self.embedding, self.config.compute_dtype))


class Mlp(nn.Module):
  """Feed-forward: wo(act(wi_0 x) * wi_1 x) when gated, else wo(act(wi x))."""

  config: DecoderConfig

  @nn.compact
  def __call__(self, x: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
    cfg = self.config
    d, f = cfg.d_model, cfg.d_ff
    init_in, init_out = kernel_init(0, 1), kernel_init(0, 1)
    act = {"gated_gelu": nn.gelu, "swiglu": nn.silu, "gelu": nn.gelu, "relu": nn.relu}[
        cfg.activation]
    if cfg.gated:
      wi_0 = param(self, "wi_0", init_in, (d, f), ("embed", "mlp"), cfg)
      wi_1 = param(self, "wi_1", init_in, (d, f), ("embed", "mlp"), cfg)
      h = act(jnp.einsum("btd,df->btf", x, wi_0)) * jnp.einsum("btd,df->btf", x, wi_1)
    else:
      wi = param(self, "wi", init_in, (d, f), ("embed", "mlp"), cfg)
      h = act(jnp.einsum("btd,df->btf", x, wi))
    h = constrain(h, ("batch", "length", "mlp"))  # [B, T, d_ff]
    h = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(h, deterministic=deterministic)
    wo = param(self, "wo", init_out, (f, d), ("mlp", "embed"), cfg)
    return jnp.einsum("btf,fd->btd", h, wo)


class Attention(nn.Module):
  """Multi-head / grouped-query attention with an optional KV cache (``decode``).

  In decode mode every call appends its T new keys/values at ``cache_index`` to a cache of
  S slots (created by the first call, sized by its input) and attends over all S slots; the caller
  supplies the mask [B, 1, T, S] that hides unwritten slots. A full forward may pass an
  :class:`flan_jax.models.attention.MaskSpec` instead; ``config.attention`` then picks the core.
  """

  config: DecoderConfig
  decode: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, bias: jnp.ndarray | None,
               rope: tuple[jnp.ndarray, jnp.ndarray] | None, cache_index: jnp.ndarray | None,
               deterministic: bool) -> jnp.ndarray:
    cfg = self.config
    b, t, d = x.shape
    h, kvh, hd = cfg.num_heads, cfg.kv_heads, cfg.head_dim
    init_in, init_out = kernel_init(0, (1, 2)), kernel_init((0, 1), 2)
    wq = param(self, "query", init_in, (d, h, hd), ("embed", "heads", "kv"), cfg)
    wk = param(self, "key", init_in, (d, kvh, hd), ("embed", "kv_heads", "kv"), cfg)
    wv = param(self, "value", init_in, (d, kvh, hd), ("embed", "kv_heads", "kv"), cfg)
    wo = param(self, "out", init_out, (h, hd, d), ("heads", "kv", "embed"), cfg)

    q = constrain(jnp.einsum("btd,dhk->bthk", x, wq), ("batch", "length", "heads", "kv"))
    k = jnp.einsum("btd,dhk->bthk", x, wk)  # [B, T, kv_heads, head_dim]
    v = jnp.einsum("btd,dhk->bthk", x, wv)
    if rope is not None:
      q = pos_lib.apply_rope(q, *rope)
      k = pos_lib.apply_rope(k, *rope)

    if self.decode:
      initialized = self.has_variable("cache", "cached_key")
      cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
      cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
      if initialized:  # Append at cache_index; attend over all S cache slots.
        k = lax.dynamic_update_slice(cached_k.value, k.astype(cached_k.value.dtype),
                                     (0, cache_index, 0, 0))
        v = lax.dynamic_update_slice(cached_v.value, v.astype(cached_v.value.dtype),
                                     (0, cache_index, 0, 0))
        cached_k.value, cached_v.value = k, v
        k, v = k.astype(cfg.compute_dtype), v.astype(cfg.compute_dtype)

    ctx = _attention_core(cfg, q, k, v, mask, bias)  # [B, T, heads, head_dim]
    ctx = constrain(ctx, ("batch", "length", "heads", "kv"))
    return jnp.einsum("bthk,hkd->btd", ctx, wo)


def _attention_core(cfg: DecoderConfig, q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray,
                    mask: jnp.ndarray | attn_lib.MaskSpec, bias: jnp.ndarray | None) -> jnp.ndarray:
  """The context [B, T, heads, head_dim] from the implementation ``cfg.attention`` selects."""
  dtype = cfg.compute_dtype
  if not isinstance(mask, attn_lib.MaskSpec):
    return attn_lib.dense_attention(q, k, v, mask, bias, dtype)
  impl = attn_lib.resolve(cfg.attention, dtype)
  if impl == "blocked":
    return attn_lib.blocked_attention(q, k, v, mask, bias, dtype, cfg.attention_block_q,
                                      cfg.attention_block_k)
  if impl == "cudnn":
    return attn_lib.cudnn_attention(q, k, v, mask, bias, dtype)
  if impl == "pallas":
    return attn_lib.pallas_attention(q, k, v, mask, bias, dtype, cfg.attention_block_q,
                                     cfg.attention_block_k)
  return attn_lib.dense_attention(q, k, v, mask.dense(), bias, dtype)


class RelativePositionBias(nn.Module):
  """T5 bias per (head, bucket), shared by all layers: returns [1, heads, T, S]."""

  config: DecoderConfig
  bidirectional: bool = False

  @nn.compact
  def __call__(self, q_index: jnp.ndarray, k_index: jnp.ndarray) -> jnp.ndarray:
    cfg = self.config
    table = self.param(
        "rel_embedding",
        nn.with_logical_partitioning(nn.initializers.normal(1.0), ("heads", "relpos_buckets")),
        (cfg.num_heads, cfg.relative_num_buckets), cfg.weight_dtype)
    buckets = pos_lib.relative_position_bucket(
        k_index[None, :] - q_index[:, None], self.bidirectional, cfg.relative_num_buckets,
        cfg.relative_max_distance)  # [T, S]
    bias = jnp.take(jnp.asarray(table, jnp.float32), buckets, axis=1)  # [heads, T, S]
    return bias[None]
