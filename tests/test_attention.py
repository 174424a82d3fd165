"""Attention cores (dense 4-D, blocked online softmax) against the reference grouped attention.

Values and gradients (float32) on real (non-padding) query rows, for causal, padded, packed and
prefix-LM masks, with and without the T5 relative-position bias, one or two query groups per KV
head, and block sizes that exercise static causal skipping, online-softmax merges and the
``lax.cond`` skip of empty blocks. Model level: the whole decoder (relative and RoPE positions)
with ``attention="blocked"`` equals ``attention="dense"`` in logits and parameter gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import Decoder, DecoderConfig, init_params
from flan_jax.models import attention as attn

ATOL = 1e-5
T = 16


def _segments(kind: str, rng: np.random.Generator, b: int) -> tuple[np.ndarray, np.ndarray | None]:
  """(segment ids [B, T], prefix-LM bidirectional flags [B, T] or None) for a mask kind."""
  seg = np.ones((b, T), np.int32)
  bidir = None
  if kind in ("padded", "packed", "packed_prefix"):
    for row in range(b):
      if kind == "padded":
        seg[row, rng.integers(5, T):] = 0
      else:  # Segments of random lengths, then padding.
        pos, sid = 0, 1
        while pos < T - 2:
          n = int(rng.integers(2, 7))
          seg[row, pos:pos + n] = sid
          pos, sid = pos + n, sid + 1
        seg[row, pos:] = 0
  if kind in ("prefix", "packed_prefix"):
    bidir = np.zeros((b, T), bool)
    for row in range(b):
      for sid in np.unique(seg[row]):
        if sid == 0:
          continue
        idx = np.flatnonzero(seg[row] == sid)
        bidir[row, idx[:int(rng.integers(0, len(idx) + 1))]] = True
  return seg, bidir


def _spec(seg: np.ndarray, bidir: np.ndarray | None) -> attn.MaskSpec:
  idx = jnp.arange(seg.shape[1])
  bid = None if bidir is None else jnp.asarray(bidir)
  return attn.MaskSpec(idx, idx, jnp.asarray(seg), jnp.asarray(seg), bid, bid)


_COMBOS = [
    (1, False, (4, 4)),  # Online-softmax merges and cond-skipped blocks.
    (2, True, (6, 5)),  # Ragged blocks, grouped queries, relative-position bias.
    (1, True, (8, 16)),  # One key range per query block (no merges).
    (2, False, (16, 4)),  # One query block.
]
_KINDS = ["causal", "padded", "packed", "prefix", "packed_prefix"]
# make test: every combination on the most general mask, every mask with the first combination.
_CASES = [pytest.param(kind, *combo, marks=() if kind == "packed_prefix" or combo == _COMBOS[0]
                       else pytest.mark.slow) for kind in _KINDS for combo in _COMBOS]


@pytest.mark.parametrize("kind,groups,with_bias,blocks", _CASES)
def test_blocked_equals_reference(kind, groups, with_bias, blocks):
  rng = np.random.default_rng(hash((kind, groups, with_bias, blocks)) % 2**32)
  b, kvh, hd = 3, 2, 8
  h = kvh * groups
  keys = jax.random.split(jax.random.key(rng.integers(1 << 30)), 5)
  q = jax.random.normal(keys[0], (b, T, h, hd))
  k = jax.random.normal(keys[1], (b, T, kvh, hd))
  v = jax.random.normal(keys[2], (b, T, kvh, hd))
  bias = jax.random.normal(keys[3], (1, h, T, T)) if with_bias else None
  cot = jax.random.normal(keys[4], (b, T, h, hd))
  seg, bidir = _segments(kind, rng, b)
  spec = _spec(seg, bidir)
  real = jnp.asarray(seg != 0)[:, :, None, None]

  def loss(fn, q, k, v, bias):
    return jnp.sum(jnp.where(real, fn(q, k, v, bias), 0.0) * cot)

  ref = lambda q, k, v, bias: attn.reference_attention(  # noqa: E731
      q, k, v, spec.dense(), bias, jnp.float32)
  blocked = lambda q, k, v, bias: attn.blocked_attention(  # noqa: E731
      q, k, v, spec, bias, jnp.float32, *blocks)
  dense = lambda q, k, v, bias: attn.dense_attention(  # noqa: E731
      q, k, v, spec.dense(), bias, jnp.float32)
  argnums = (0, 1, 2, 3) if with_bias else (0, 1, 2)
  want, want_g = jax.jit(jax.value_and_grad(lambda *a: loss(ref, *a), argnums))(q, k, v, bias)
  want_out = jnp.where(real, jax.jit(ref)(q, k, v, bias), 0)
  for fn in (blocked, dense):
    np.testing.assert_allclose(jnp.where(real, jax.jit(fn)(q, k, v, bias), 0), want_out,
                               atol=ATOL)
    got, got_g = jax.jit(jax.value_and_grad(lambda *a, fn=fn: loss(fn, *a), argnums))(
        q, k, v, bias)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=ATOL)
    for g, w in zip(got_g, want_g, strict=True):
      np.testing.assert_allclose(g, w, atol=ATOL)


def test_blocked_skips_empty_blocks_and_causal_tail():
  """The jaxpr has no key block after the diagonal for a causal mask, and one ``cond`` per
  off-diagonal block otherwise."""
  seg, _ = _segments("causal", np.random.default_rng(0), 1)
  q = jnp.ones((1, T, 2, 8))
  kv = jnp.ones((1, T, 2, 8))

  def count(spec, name):
    return str(jax.make_jaxpr(lambda q, k, v: attn.blocked_attention(
        q, k, v, spec, None, jnp.float32, 4, 4))(q, kv, kv)).count(name)

  causal = _spec(seg, None)
  prefix = _spec(seg, np.zeros((1, T), bool))
  # 4 query blocks of 4; each computed (query, key) block is 2 dots (scores, values).
  assert count(causal, "dot_general") == 2 * (1 + 2 + 3 + 4)  # Nothing after the diagonal.
  assert count(causal, "cond[") == 1 + 2 + 3  # Blocks below the diagonal may be empty.
  assert count(prefix, "dot_general") == 2 * 4 * 4
  assert count(prefix, "cond[") == 4 * 4 - 4  # Every off-diagonal block.


@pytest.mark.parametrize("position,num_kv_heads", [
    ("relative", 4), pytest.param("rope", 2, marks=pytest.mark.slow),
    pytest.param("relative", 2, marks=pytest.mark.slow),
    pytest.param("rope", 4, marks=pytest.mark.slow)])
def test_decoder_blocked_equals_dense(position, num_kv_heads):
  """A packed prefix-LM batch with padding: logits on real tokens and all gradients agree."""
  base = DecoderConfig(vocab_size=64, num_layers=2, d_model=32, num_heads=4,
                       num_kv_heads=num_kv_heads, head_dim=8, d_ff=64, dtype="float32",
                       position=position)
  blocked = base.replace(attention="blocked", attention_block_q=4, attention_block_k=4)
  params = init_params(base, jax.random.key(0))
  rng = np.random.default_rng(1)
  seg, bidir = _segments("packed_prefix", rng, 2)
  tokens = jnp.asarray(np.where(seg > 0, rng.integers(1, 64, seg.shape), 0))
  pos = np.zeros_like(seg)
  for row in range(2):
    for sid in np.unique(seg[row]):
      idx = np.flatnonzero(seg[row] == sid)
      pos[row, idx] = np.arange(len(idx))
  feats = dict(decoder_target_tokens=tokens, decoder_segment_ids=jnp.asarray(seg),
               decoder_positions=jnp.asarray(pos), decoder_causal_attention=jnp.asarray(bidir))
  real = jnp.asarray(seg > 0)[..., None]

  def loss(p, cfg):
    logits = Decoder(cfg).apply({"params": p}, tokens, **feats)
    return jnp.sum(jnp.where(real, jax.nn.log_softmax(logits), 0.0)[..., 3]), logits

  grad = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
  (la, logits_a), ga = grad(params, base)
  (lb, logits_b), gb = grad(params, blocked)
  np.testing.assert_allclose(jnp.where(real, logits_b, 0), jnp.where(real, logits_a, 0),
                             atol=ATOL)
  np.testing.assert_allclose(lb, la, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
    np.testing.assert_allclose(b, a, atol=ATOL)
  # Causal (no prefix-LM inputs) uses the statically skipped path: same logits as dense.
  plain = dict(feats, decoder_causal_attention=None)
  np.testing.assert_allclose(
      jnp.where(real, Decoder(blocked).apply({"params": params}, tokens, **plain), 0),
      jnp.where(real, Decoder(base).apply({"params": params}, tokens, **plain), 0), atol=ATOL)


def test_auto_resolves_per_platform():
  assert attn.resolve("auto", jnp.bfloat16, "gpu") == "cudnn"
  assert attn.resolve("auto", jnp.float32, "gpu") == "blocked"
  assert attn.resolve("auto", jnp.bfloat16, "cpu") == "blocked"
  assert attn.resolve("auto", jnp.bfloat16, "tpu") == "pallas"
  assert attn.resolve("auto", jnp.float32, "tpu") == "pallas"
  assert attn.resolve("dense", jnp.bfloat16, "gpu") == "dense"
  with pytest.raises(ValueError, match="attention"):
    DecoderConfig(attention="flash")
