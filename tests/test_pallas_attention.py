"""``attention="pallas"`` (jax's Pallas TPU flash attention) against the reference attention.

On CPU the kernel runs in Pallas's TPU interpret mode (``FLAN_JAX_PALLAS_INTERPRET=1``): values and
gradients (float32) wrt q, k, v and the T5 bias on real query rows, for causal, padded, packed and
prefix-LM masks (grouped queries, a length that is not a multiple of 128, blocks of 128 and
more); the whole decoder with ``attention="pallas"`` equals ``"dense"``; inside an 8-device mesh
the kernel runs under ``shard_map``. The cuDNN core gets a numerics test where a GPU is present.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import Decoder, DecoderConfig, init_params
from flan_jax.models import attention as attn
from flan_jax.parallel import partitioning

ATOL = 1e-5


@pytest.fixture
def interpret(monkeypatch):
  monkeypatch.setenv(attn.PALLAS_INTERPRET_ENV, "1")


def _segments(kinds: list[str], rng: np.random.Generator, t: int
              ) -> tuple[np.ndarray, np.ndarray | None]:
  """(segment ids [B, T], prefix-LM flags [B, T] or None): row i of mask kind ``kinds[i]``
  (``causal``, ``padded``, ``packed``, each optionally ``_prefix``: random prefix-LM inputs at
  the start of each segment; rows without it get none)."""
  seg = np.ones((len(kinds), t), np.int32)
  bidir = np.zeros(seg.shape, bool)
  for row, kind in enumerate(kinds):
    if kind.startswith("padded"):
      seg[row, rng.integers(t // 4, t):] = 0
    elif kind.startswith("packed"):
      pos, sid = 0, 1
      while pos < t - 8:  # Segments of random lengths, then padding.
        n = int(rng.integers(4, t // 3))
        seg[row, pos:pos + n] = sid
        pos, sid = pos + n, sid + 1
      seg[row, pos:] = 0
    for sid in set(np.unique(seg[row])) - {0} if kind.endswith("prefix") else ():
      idx = np.flatnonzero(seg[row] == sid)
      bidir[row, idx[:int(rng.integers(1, len(idx) + 1))]] = True
  return seg, (bidir if any(k.endswith("prefix") for k in kinds) else None)


def _spec(seg: np.ndarray, bidir: np.ndarray | None) -> attn.MaskSpec:
  idx = jnp.arange(seg.shape[1])
  bid = None if bidir is None else jnp.asarray(bidir)
  return attn.MaskSpec(idx, idx, jnp.asarray(seg), jnp.asarray(seg), bid, bid)


def _inputs(seed: int, b: int, t: int, h: int, kvh: int, hd: int) -> list[jax.Array]:
  """q, k, v, the bias [1, heads, T, T] and an output cotangent."""
  keys = jax.random.split(jax.random.key(seed), 5)
  return [jax.random.normal(keys[0], (b, t, h, hd)), jax.random.normal(keys[1], (b, t, kvh, hd)),
          jax.random.normal(keys[2], (b, t, kvh, hd)), jax.random.normal(keys[3], (1, h, t, t)),
          jax.random.normal(keys[4], (b, t, h, hd))]


def _check_against_reference(fn, spec: attn.MaskSpec, q, k, v, bias, cot) -> None:
  """``fn(q, k, v, bias)`` equals the reference on real query rows, in value and in gradients
  wrt all four inputs (one vjp each: forward and backward kernels traced once)."""
  real = (spec.q_segment != 0)[:, :, None, None]

  def ref(q, k, v, bias):
    return attn.reference_attention(q, k, v, spec.dense(), bias, jnp.float32)

  @jax.jit
  def value_and_grads(f, q, k, v, bias):
    out, pull = jax.vjp(f, q, k, v, bias)
    return jnp.where(real, out, 0.0), pull(jnp.where(real, cot, 0.0))

  want, want_g = value_and_grads(jax.tree_util.Partial(ref), q, k, v, bias)
  got, got_g = value_and_grads(jax.tree_util.Partial(fn), q, k, v, bias)
  np.testing.assert_allclose(got, want, atol=ATOL)
  for name, g, w in zip(("q", "k", "v", "bias"), got_g, want_g, strict=True):
    np.testing.assert_allclose(g, w, atol=ATOL, err_msg=f"d/d{name}")


def _check_kinds(kinds: list[str], t: int, groups: int, blocks: tuple[int, int],
                 seed: int) -> None:
  rng = np.random.default_rng(seed)
  seg, bidir = _segments(kinds, rng, t)
  spec = _spec(seg, bidir)
  kvh = 2
  q, k, v, bias, cot = _inputs(seed, len(kinds), t, kvh * groups, kvh, 8)

  def pallas(q, k, v, bias):
    return attn.pallas_attention(q, k, v, spec, bias, jnp.float32, *blocks)

  _check_against_reference(pallas, spec, q, k, v, bias, cot)


def test_pallas_equals_reference_causal_padded_packed(interpret):
  """The kernel's causal mask with segment ids: T=200 padded to 256, two query and key blocks
  (the kernel skips the one above the diagonal), grouped queries."""
  _check_kinds(["causal", "padded", "packed"], 200, 2, (128, 128), seed=0)


def test_pallas_equals_reference_prefix_in_a_mesh(interpret):
  """Prefix-LM masks (folded into ``ab``) on a 2 x 4 mesh: batch over ``data``, heads over
  ``model``, the kernel per shard under ``shard_map`` (the bias gradient summed over batch
  shards)."""
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:8]).reshape(2, 4), ("data", "model"))
  rules = partitioning.logical_axis_rules("1d", mesh.axis_names)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    seg, _ = _segments(["causal"], np.random.default_rng(0), 128)
    q = jnp.ones((2, 128, 4, 8))
    assert "shard_map" in str(jax.make_jaxpr(lambda q: attn.pallas_attention(
        q, q, q, _spec(np.repeat(seg, 2, 0), None), None, jnp.float32, 128, 128))(q))
    _check_kinds(["prefix", "padded_prefix", "packed_prefix", "packed"], 128, 2, (128, 128),
                 seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("kinds,t,groups,blocks", [
    (["causal", "causal"], 256, 1, (256, 128)),  # One query block, two key blocks.
    (["padded", "packed"], 384, 1, (128, 384)),  # Three query blocks, one key block.
    (["prefix", "packed_prefix"], 200, 1, (256, 256)),
    (["padded_prefix", "packed_prefix"], 256, 2, (128, 128)),
])
def test_pallas_equals_reference_blocks(interpret, kinds, t, groups, blocks):
  _check_kinds(kinds, t, groups, blocks, seed=t + groups)


@pytest.mark.slow  # ~25 s each on 2 cores.
@pytest.mark.parametrize("prefix_lm,in_mesh", [(True, False), (False, False), (True, True)])
def test_decoder_pallas_equals_dense(interpret, prefix_lm, in_mesh):
  """A packed batch with padding (T=128, relative-position bias, grouped queries, scanned
  layers), prefix-LM or causal, alone or in a 2 x 4 mesh under the 1d rules with ``minimal``
  remat (the trainer's path): logits on real tokens and all parameter gradients agree."""
  base = DecoderConfig(vocab_size=64, num_layers=2, d_model=32, num_heads=4, num_kv_heads=2,
                       head_dim=8, d_ff=64, dtype="float32",
                       remat_policy="minimal" if in_mesh else "none")
  pallas = base.replace(attention="pallas", attention_block_q=128, attention_block_k=128)
  params = init_params(base, jax.random.key(0))
  rng = np.random.default_rng(1)
  seg, bidir = _segments(["packed_prefix", "padded_prefix"], rng, 128)
  tokens = jnp.asarray(np.where(seg > 0, rng.integers(1, 64, seg.shape), 0))
  real = jnp.asarray(seg > 0)[..., None]

  def loss(p, cfg, bidir):
    logits = Decoder(cfg).apply({"params": p}, tokens, decoder_target_tokens=tokens,
                                decoder_segment_ids=jnp.asarray(seg),
                                decoder_causal_attention=bidir)
    return jnp.sum(jnp.where(real, jax.nn.log_softmax(logits), 0.0)[..., 3]), logits

  grad = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
  if in_mesh:
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:8]).reshape(2, 4), ("data", "model"))
    grad = partitioning.partition(jax.value_and_grad(loss, has_aux=True), mesh,
                                  partitioning.logical_axis_rules("1d", mesh.axis_names),
                                  static_argnums=(1,))
  prefix = jnp.asarray(bidir) if prefix_lm else None
  (la, logits_a), ga = grad(params, base, prefix)
  (lb, logits_b), gb = grad(params, pallas, prefix)
  np.testing.assert_allclose(jnp.where(real, logits_b, 0), jnp.where(real, logits_a, 0),
                             atol=ATOL)
  np.testing.assert_allclose(lb, la, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
    np.testing.assert_allclose(b, a, atol=ATOL)


def test_pallas_and_cudnn_refuse_clearly(monkeypatch):
  """pallas off TPU without the interpret switch, blocks the kernel cannot take, cudnn off GPU."""
  monkeypatch.delenv(attn.PALLAS_INTERPRET_ENV, raising=False)
  seg, _ = _segments(["causal"], np.random.default_rng(0), 128)
  q = jnp.ones((1, 128, 2, 8))
  with pytest.raises(ValueError, match="needs a TPU.*FLAN_JAX_PALLAS_INTERPRET=1"):
    attn.pallas_attention(q, q, q, _spec(seg, None), None, jnp.float32, 128, 128)
  monkeypatch.setenv(attn.PALLAS_INTERPRET_ENV, "1")
  with pytest.raises(ValueError, match="attention_block_q=100, attention_block_k=128"):
    attn.pallas_attention(q, q, q, _spec(seg, None), None, jnp.float32, 100, 128)
  with pytest.raises(ValueError, match="attention_block_q=256, attention_block_k=4"):
    DecoderConfig(attention="pallas", attention_block_q=256, attention_block_k=4)
  if jax.default_backend() != "gpu":
    with pytest.raises(ValueError, match="attention='cudnn' needs a GPU"):
      attn.cudnn_attention(q, q, q, _spec(seg, None), None, jnp.bfloat16)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU")
@pytest.mark.parametrize("kind", ["causal", "packed_prefix"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_cudnn_equals_reference(kind, dtype):
  """cuDNN's fused attention in 16-bit vs the float32 reference on the same (rounded) inputs:
  outputs and gradients within 16-bit rounding (2e-2; the reference in 16-bit is as far)."""
  rng = np.random.default_rng(0)
  seg, bidir = _segments([kind, kind], rng, 256)
  spec = _spec(seg, bidir)
  q, k, v, bias, cot = (x.astype(dtype).astype(jnp.float32) for x in _inputs(0, 2, 256, 4, 2, 64))
  real = (spec.q_segment != 0)[:, :, None, None]

  def loss(f, q, k, v, bias):
    return jnp.sum(jnp.where(real, f(q, k, v, bias).astype(jnp.float32), 0.0) * cot)

  def cudnn(q, k, v, bias):
    return attn.cudnn_attention(q, k, v, spec, bias, dtype)

  def ref(q, k, v, bias):
    return attn.reference_attention(q, k, v, spec.dense(), bias, jnp.float32)

  got_g = jax.jit(jax.grad(lambda *a: loss(cudnn, *a), (0, 1, 2, 3)))(q, k, v, bias)
  want_g = jax.jit(jax.grad(lambda *a: loss(ref, *a), (0, 1, 2, 3)))(q, k, v, bias)
  np.testing.assert_allclose(jnp.where(real, jax.jit(cudnn)(q, k, v, bias), 0).astype(jnp.float32),
                             jnp.where(real, ref(q, k, v, bias), 0), atol=2e-2)
  for name, g, w in zip(("q", "k", "v", "bias"), got_g, want_g, strict=True):
    scale = float(jnp.max(jnp.abs(w)))
    np.testing.assert_allclose(np.asarray(g, np.float32) / scale, np.asarray(w) / scale,
                               atol=2e-2, err_msg=f"d/d{name}")
