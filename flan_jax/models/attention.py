"""Attention cores: dense (reference), blocked online-softmax, and cuDNN on GPU.

All take q [B, T, heads, Dh] and k, v [B, S, kv_heads, Dh] (RoPE already applied) and return the
context [B, T, heads, Dh]. ``DecoderConfig.attention`` picks one:

* ``dense``: the whole [B, heads, T, S] score matrix; plain 4-D einsums when there is one query
  group per KV head (the 5-D grouped einsum of :func:`reference_attention` otherwise).
* ``blocked``: queries in blocks of ``attention_block_q``, keys in blocks of
  ``attention_block_k`` merged with an online softmax (FlashAttention's recurrence). Key blocks
  after a query block are dropped at trace time when the mask is causal (no prefix-LM inputs);
  any other key block is run under ``lax.cond`` only when some (query, key) pair in it may attend
  (packed segments, padding and prefix-LM inputs leave most off-diagonal blocks empty). With
  ``attention_block_k >= S`` and a causal mask this is the dense computation over the visible key
  prefix of each query block (no online-softmax merges at all).
* ``cudnn``: ``jax.nn.dot_product_attention(implementation="cudnn")`` (fused flash attention) with
  ``is_causal`` for plain causal masks and the boolean mask otherwise; GPU only.
* ``pallas``: jax's Pallas TPU flash-attention kernels (forward and backward,
  ``jax.experimental.pallas.ops.tpu.flash_attention``) with the T5 bias as the kernel's ``ab``,
  segments and padding as its segment ids, ``causal`` for plain causal masks and prefix-LM
  inputs folded into ``ab``; run under ``shard_map`` over batch and heads inside a mesh. TPU
  only; elsewhere only in Pallas's TPU interpret mode when ``FLAN_JAX_PALLAS_INTERPRET=1`` (slow:
  for tests and debugging).
* ``auto``: ``pallas`` on TPU, ``cudnn`` on GPU for 16-bit compute, ``blocked`` elsewhere.

Fully masked query rows (padding) get an unspecified context (a uniform average or zero); padding
outputs never reach the loss.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from flan_jax.models.masks import attention_mask

if TYPE_CHECKING:
  from jax.experimental.pallas.ops.tpu.flash_attention import BlockSizes

NEG_INF = -1e10  # Finite, so fully masked (padding) rows stay NaN-free.
PALLAS_INTERPRET_ENV = "FLAN_JAX_PALLAS_INTERPRET"  # "1": the Pallas kernel off TPU, interpreted.
PALLAS_LANES = 128  # The TPU kernel's lane width: its block sizes are multiples of it.


class MaskSpec(NamedTuple):
  """What :func:`flan_jax.models.masks.attention_mask` is built from, for blocked attention.

  ``q_index``/``k_index`` must be ``arange(T)``/``arange(S)`` (a full forward, not a KV-cache
  step). ``q_bidirectional`` is None when no token is a prefix-LM input: the mask is then causal
  (∧ segments ∧ padding) and key blocks after each query block are skipped statically.
  """

  q_index: jax.Array  # [T]
  k_index: jax.Array  # [S]
  q_segment: jax.Array  # [B, T]; 0 = padding.
  k_segment: jax.Array  # [B, S]
  q_bidirectional: jax.Array | None  # [B, T]
  k_bidirectional: jax.Array | None  # [B, S]

  def dense(self, q0: int = 0, q1: int | None = None, k0: int = 0,
            k1: int | None = None) -> jax.Array:
    """The boolean mask [B, 1, q1 - q0, k1 - k0] of a query/key block (default: all)."""
    qs, ks = slice(q0, q1), slice(k0, k1)
    qb = kb = None
    if self.q_bidirectional is None:
      qb = jnp.zeros(self.q_segment[:, qs].shape, bool)
      kb = jnp.zeros(self.k_segment[:, ks].shape, bool)
    else:
      qb, kb = self.q_bidirectional[:, qs], self.k_bidirectional[:, ks]
    return attention_mask(self.q_index[qs], self.k_index[ks], self.q_segment[:, qs],
                          self.k_segment[:, ks], qb, kb)


def reference_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
                        bias: jax.Array | None, dtype: jnp.dtype) -> jax.Array:
  """The original grouped formulation (5-D einsums for any group count); the tests' truth."""
  b, t, h, hd = q.shape
  s, kvh = k.shape[1], k.shape[2]
  groups = h // kvh
  q = q.reshape(b, t, kvh, groups, hd)
  scores = jnp.einsum("btkgd,bskd->bkgts", q, k) * (hd ** -0.5)
  scores = scores.astype(jnp.float32)
  if bias is not None:  # [1 or B, heads, T, S]
    scores = scores + bias.reshape(bias.shape[0], kvh, groups, t, s).astype(jnp.float32)
  scores = jnp.where(mask[:, :, None], scores, NEG_INF)  # mask [B, 1, 1, T, S]
  probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
  return jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, h, hd)


def dense_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
                    bias: jax.Array | None, dtype: jnp.dtype) -> jax.Array:
  """:func:`reference_attention` with 4-D einsums when heads == kv_heads (same arithmetic)."""
  if q.shape[2] != k.shape[2]:
    return reference_attention(q, k, v, mask, bias, dtype)
  scores = jnp.einsum("bthd,bshd->bhts", q, k) * (q.shape[-1] ** -0.5)
  scores = scores.astype(jnp.float32)
  if bias is not None:
    scores = scores + bias.astype(jnp.float32)
  scores = jnp.where(mask, scores, NEG_INF)  # mask [B, 1, T, S]
  probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
  return jnp.einsum("bhts,bshd->bthd", probs, v)


class _Layout:
  """Einsum strings and reshapes for one query group per KV head (4-D) or several (5-D)."""

  def __init__(self, heads: int, kv_heads: int):
    self.kvh, self.groups = kv_heads, heads // kv_heads
    self.grouped = self.groups > 1
    if self.grouped:
      self.qk, self.pv = "bqkgd,bskd->bkgqs", "bkgqs,bskd->bqkgd"
    else:
      self.qk, self.pv = "bqhd,bshd->bhqs", "bhqs,bshd->bqhd"

  def split_q(self, q: jax.Array) -> jax.Array:
    b, t, h, d = q.shape
    return q.reshape(b, t, self.kvh, self.groups, d) if self.grouped else q

  def heads(self, x: jax.Array) -> jax.Array:
    """[1 or B, heads, tq, tk] bias -> the score layout."""
    if not self.grouped:
      return x
    return x.reshape(x.shape[0], self.kvh, self.groups, *x.shape[2:])

  def mask(self, m: jax.Array) -> jax.Array:
    """[B, 1, tq, tk] -> broadcastable to the score layout."""
    return m[:, :, None] if self.grouped else m

  def to_out(self, stat: jax.Array) -> jax.Array:
    """Row statistic in score layout [B, (K, G | H), tq] -> context layout [B, tq, ..., 1]."""
    perm = (0, 3, 1, 2) if self.grouped else (0, 2, 1)
    return jnp.transpose(stat, perm)[..., None]


def blocked_attention(q: jax.Array, k: jax.Array, v: jax.Array, spec: MaskSpec,
                      bias: jax.Array | None, dtype: jnp.dtype, block_q: int,
                      block_k: int) -> jax.Array:
  """Online-softmax attention over key blocks, skipping blocks the mask leaves empty.

  Args:
    q: [B, T, heads, Dh]; k, v: [B, S, kv_heads, Dh].
    spec: the mask's ingredients (self-attention of a full forward).
    bias: [1 or B, heads, T, S] additive bias (T5 relative positions) or None.
    dtype: the compute dtype (probabilities are cast to it before the value einsum).
    block_q, block_k: block sizes (clipped to T and S).
  """
  b, t, h, hd = q.shape
  s = k.shape[1]
  lay = _Layout(h, k.shape[2])
  causal_only = spec.q_bidirectional is None
  q = lay.split_q(q * jnp.asarray(hd ** -0.5, q.dtype))
  block_q, block_k = max(1, min(block_q, t)), max(1, min(block_k, s))
  outs = []
  for q0 in range(0, t, block_q):
    q1 = min(q0 + block_q, t)
    qi = q[:, q0:q1]
    k_end = min(q1, s) if causal_only else s  # Causal: keys after the block's last query unseen.
    ranges = [(k0, min(k0 + block_k, k_end)) for k0 in range(0, k_end, block_k)]
    if len(ranges) == 1:  # One key range: a plain softmax, no merges.
      k0, k1 = ranges[0]
      scores = _block_scores(qi, k, spec, bias, lay, q0, q1, k0, k1)
      probs = jax.nn.softmax(scores, axis=-1)
      outs.append(jnp.einsum(lay.pv, probs.astype(dtype), v[:, k0:k1]).astype(jnp.float32))
      continue
    stat_shape = (b, h, q1 - q0) if not lay.grouped else (b, lay.kvh, lay.groups, q1 - q0)
    state = (jnp.full(stat_shape, NEG_INF, jnp.float32), jnp.zeros(stat_shape, jnp.float32),
             jnp.zeros(qi.shape, jnp.float32))
    for k0, k1 in ranges:
      def update(state, qi=qi, q0=q0, q1=q1, k0=k0, k1=k1):
        scores = _block_scores(qi, k, spec, bias, lay, q0, q1, k0, k1)
        return _merge(state, scores, v[:, k0:k1], lay, dtype)
      diagonal = k0 < q1 and k1 > q0  # Holds every real query's own key: never empty.
      if diagonal:
        state = update(state)
      else:
        state = lax.cond(jnp.any(spec.dense(q0, q1, k0, k1)), update, lambda st: st, state)
    m, total, acc = state
    real = lay.to_out(m > NEG_INF / 2)
    outs.append(jnp.where(real, acc / jnp.maximum(lay.to_out(total), 1e-30), 0.0))
  out = jnp.concatenate(outs, axis=1) if len(outs) > 1 else outs[0]
  return out.reshape(b, t, h, hd).astype(dtype)


def _block_scores(qi: jax.Array, k: jax.Array, spec: MaskSpec, bias: jax.Array | None,
                  lay: _Layout, q0: int, q1: int, k0: int, k1: int) -> jax.Array:
  """Masked float32 scores of query block [q0, q1) against keys [k0, k1)."""
  scores = jnp.einsum(lay.qk, qi, k[:, k0:k1]).astype(jnp.float32)
  if bias is not None:
    scores = scores + lay.heads(bias[:, :, q0:q1, k0:k1]).astype(jnp.float32)
  return jnp.where(lay.mask(spec.dense(q0, q1, k0, k1)), scores, NEG_INF)


def _merge(state: tuple[jax.Array, jax.Array, jax.Array], scores: jax.Array, v: jax.Array,
           lay: _Layout, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One online-softmax step: fold a block of scores (and its values) into (max, sum, acc)."""
  m, total, acc = state
  m_new = jnp.maximum(m, jnp.max(scores, axis=-1))
  p = jnp.exp(scores - m_new[..., None])
  correction = jnp.exp(m - m_new)
  total = total * correction + jnp.sum(p, axis=-1)
  acc = acc * lay.to_out(correction) + jnp.einsum(lay.pv, p.astype(dtype), v).astype(jnp.float32)
  return m_new, total, acc


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array, spec: MaskSpec,
                    bias: jax.Array | None, dtype: jnp.dtype) -> jax.Array:
  """cuDNN fused attention (GPU, 16-bit). The boolean mask (segments, padding, prefix-LM) is
  added as a bias; without prefix-LM inputs ``is_causal`` also lets cuDNN skip the upper triangle.
  """
  if jax.default_backend() != "gpu":
    raise ValueError(f"attention='cudnn' needs a GPU (the backend is {jax.default_backend()!r});"
                     " use attention='blocked', 'dense' or 'auto'")
  out = jax.nn.dot_product_attention(
      q.astype(dtype), k.astype(dtype), v.astype(dtype),
      bias=None if bias is None else bias.astype(dtype), mask=spec.dense(),
      is_causal=spec.q_bidirectional is None, implementation="cudnn")
  return out.astype(dtype)


def check_pallas_blocks(block_q: int, block_k: int) -> None:
  """Raises unless the block sizes suit the Pallas TPU kernel (multiples of its lane width)."""
  if block_q % PALLAS_LANES or block_k % PALLAS_LANES:
    raise ValueError(
        f"attention='pallas' needs attention_block_q and attention_block_k that are multiples "
        f"of {PALLAS_LANES} (the TPU kernel's lane width), got attention_block_q={block_q}, "
        f"attention_block_k={block_k}")


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _kernel_block(limit: int, length: int) -> int:
  """The largest multiple of the lane width that is <= ``limit`` and divides ``length``."""
  lanes = length // PALLAS_LANES
  return PALLAS_LANES * max(d for d in range(1, lanes + 1)
                            if lanes % d == 0 and d * PALLAS_LANES <= max(limit, PALLAS_LANES))


def pallas_attention(q: jax.Array, k: jax.Array, v: jax.Array, spec: MaskSpec,
                     bias: jax.Array | None, dtype: jnp.dtype, block_q: int,
                     block_k: int) -> jax.Array:
  """jax's Pallas TPU flash attention (forward and backward kernels) under the model's masks.

  Segment ids carry segments and padding (segment 0, which no real token shares); a plain causal
  mask is the kernel's ``causal`` (it skips the blocks above the diagonal); prefix-LM inputs are
  folded into the bias ``ab`` (NEG_INF where neither causal nor prefix lets a query see a key).
  The kernel adds ``ab`` before it scales, so queries are pre-scaled by head_dim**-0.5 and
  ``sm_scale`` is 1. KV heads are repeated to the query heads. Sequences are padded to a multiple
  of the lane width (head_dim too when above it); blocks are the largest multiples of the lane
  width <= ``block_q``/``block_k`` that divide the padded lengths. Inside a mesh the kernel runs
  under ``shard_map`` over the batch and heads axes (Mosaic kernels are not partitioned
  automatically). Arguments as :func:`blocked_attention`.
  """
  from jax.experimental.pallas.ops.tpu import flash_attention as fa

  interpret = os.environ.get(PALLAS_INTERPRET_ENV, "") == "1"
  if jax.default_backend() != "tpu" and not interpret:
    raise ValueError(
        f"attention='pallas' runs jax's Pallas TPU kernel and needs a TPU (the backend is "
        f"{jax.default_backend()!r}); use attention='blocked', 'dense' or 'auto', or set "
        f"{PALLAS_INTERPRET_ENV}=1 to interpret the kernel (slow: tests and debugging)")
  check_pallas_blocks(block_q, block_k)
  t, hd = q.shape[1], q.shape[3]
  tp, sp = _round_up(t, PALLAS_LANES), _round_up(k.shape[1], PALLAS_LANES)
  bq, bk = _kernel_block(block_q, tp), _kernel_block(block_k, sp)
  sizes = fa.BlockSizes(block_q=bq, block_k_major=bk, block_k=bk, block_b=1,
                        block_q_major_dkv=bq, block_k_major_dkv=bk, block_k_dkv=bk,
                        block_q_dkv=bq, block_k_major_dq=bk, block_k_dq=bk, block_q_dq=bq)
  args = _pallas_inputs(q, k, v, spec, bias, dtype, tp, sp)
  # bfloat16 halves the [B, heads, T, S] bias; float16 cannot hold NEG_INF.
  ab_dtype = jnp.bfloat16 if jnp.dtype(dtype) == jnp.bfloat16 else jnp.float32

  def kernel(a: dict[str, jax.Array]) -> jax.Array:
    return _pallas_kernel(a, sizes, ab_dtype, interpret)

  out = _over_mesh(kernel, args)
  return jnp.swapaxes(out[:, :, :t, :hd], 1, 2).astype(dtype)  # [B, T, heads, Dh].


def _pallas_inputs(q: jax.Array, k: jax.Array, v: jax.Array, spec: MaskSpec,
                   bias: jax.Array | None, dtype: jnp.dtype, tp: int,
                   sp: int) -> dict[str, jax.Array]:
  """The kernel's operands, heads first and padded to ``tp`` queries and ``sp`` keys: q
  (pre-scaled), k, v (KV heads repeated) [B, heads, Lp, Dp], segment ids [B, Lp] (padding 0),
  and where present the bias [1 or B, heads, tp, sp] and the prefix-LM flags [B, Lp]."""
  h, hd = q.shape[2], q.shape[3]
  dp = hd if hd <= PALLAS_LANES else _round_up(hd, PALLAS_LANES)
  groups = h // k.shape[2]

  def heads_first(x: jax.Array, length: int) -> jax.Array:  # [B, L, n, Dh] -> [B, n, Lp, Dp].
    x = jnp.swapaxes(x.astype(dtype), 1, 2)
    return jnp.pad(x, ((0, 0), (0, 0), (0, length - x.shape[2]), (0, dp - hd)))

  def pad_length(x: jax.Array, length: int) -> jax.Array:  # [B, L] -> [B, Lp].
    return jnp.pad(x, ((0, 0), (0, length - x.shape[1])))

  args = {"q": heads_first(q * jnp.asarray(hd ** -0.5, q.dtype), tp),
          "k": jnp.repeat(heads_first(k, sp), groups, axis=1),
          "v": jnp.repeat(heads_first(v, sp), groups, axis=1),
          "q_segment": pad_length(spec.q_segment, tp), "k_segment": pad_length(spec.k_segment, sp)}
  if bias is not None:
    args["bias"] = jnp.pad(bias, ((0, 0), (0, 0), (0, tp - bias.shape[2]),
                                  (0, sp - bias.shape[3])))
  if spec.q_bidirectional is not None:
    args["q_prefix"] = pad_length(spec.q_bidirectional, tp)
    args["k_prefix"] = pad_length(spec.k_bidirectional, sp)
  return args


def _pallas_kernel(a: dict[str, jax.Array], sizes: BlockSizes, ab_dtype: jnp.dtype,
                   interpret: bool) -> jax.Array:
  """The flash-attention kernel on :func:`_pallas_inputs` (or a shard of them): [B, heads, Lp,
  Dp]. Prefix-LM flags become ``ab`` (causal ∨ prefix); the kernel then masks segments only."""
  from jax.experimental.pallas import tpu as pltpu
  from jax.experimental.pallas.ops.tpu import flash_attention as fa

  (b, h, tp, _), sp = a["q"].shape, a["k"].shape[2]
  ab = a.get("bias")
  if "q_prefix" in a:
    visible = jnp.arange(sp)[None, :] <= jnp.arange(tp)[:, None]
    visible = visible | (a["q_prefix"][:, :, None] & a["k_prefix"][:, None, :])  # [B, Tp, Sp]
    ab = jnp.where(visible[:, None], 0.0 if ab is None else ab.astype(jnp.float32), NEG_INF)
  if ab is not None:
    ab = jnp.broadcast_to(ab, (b, h, tp, sp)).astype(ab_dtype)
  if interpret:  # Process-wide, as the variable is: the backward kernels trace later. True is
    # Pallas's HLO interpreter (a jitted scan over the grid); InterpretParams' simulated TPU
    # memory (host callbacks) hung under shard_map on 8 simulated CPU devices.
    pltpu.set_tpu_interpret_mode(True)
  return fa.flash_attention(a["q"], a["k"], a["v"], ab,
                            fa.SegmentIds(a["q_segment"], a["k_segment"]),
                            causal="q_prefix" not in a, sm_scale=1.0, block_sizes=sizes)


def _over_mesh(kernel: Callable[[dict[str, jax.Array]], jax.Array],
               args: dict[str, jax.Array]) -> jax.Array:
  """``kernel(args)``; inside a mesh of several devices, under ``shard_map`` with the batch and
  heads axes split as the logical-axis rules say (lengths and head_dim whole)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return kernel(args)
  batch, heads = nn.logical_to_mesh_axes(("batch", "heads"))
  P = jax.sharding.PartitionSpec  # noqa: N806
  rows = P(batch, heads, None, None)
  specs = {name: P(batch, None) for name in args} | {"q": rows, "k": rows, "v": rows}
  if "bias" in args:
    specs["bias"] = P(batch if args["bias"].shape[0] > 1 else None, heads, None, None)
  # check_vma off: the kernel's pallas_call declares no varying mesh axes for its outputs.
  return jax.shard_map(kernel, in_specs=(specs,), out_specs=rows, check_vma=False)(args)


def resolve(implementation: str, dtype: jnp.dtype, platform: str | None = None) -> str:
  """The implementation ``auto`` stands for on ``platform`` (default: the default backend)."""
  if implementation != "auto":
    return implementation
  platform = platform or jax.default_backend()
  if platform == "tpu":
    return "pallas"
  if platform == "gpu" and jnp.dtype(dtype).itemsize == 2:
    return "cudnn"
  return "blocked"
