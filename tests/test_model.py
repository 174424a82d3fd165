"""Decoder: masks, packing, prefix-LM, KV-cache decoding, scan/remat equivalence (fp32)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import Decoder, DecoderConfig, init_cache, init_params
from flan_jax.models.masks import attention_mask

ATOL = 1e-5


def _config(**kw):
  base = dict(vocab_size=128, num_layers=2, d_model=32, num_heads=4, num_kv_heads=2, head_dim=8,
              d_ff=64, dtype="float32")
  base.update(kw)
  return DecoderConfig(**base)


def _tokens(shape, seed=0, vocab=128):
  return jax.random.randint(jax.random.key(seed), shape, 1, vocab)


def test_param_count_matches_config():
  for cfg in (_config(), _config(position="rope", tie_embeddings=False, activation="gelu")):
    params = init_params(cfg, jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()


def test_mask_matches_bruteforce():
  rng = np.random.default_rng(0)
  seg = rng.integers(0, 3, (2, 9))
  bid = rng.random((2, 9)) < 0.5
  got = np.asarray(attention_mask(jnp.arange(9), jnp.arange(9), seg, seg, bid, bid))[:, 0]
  for b, q, k in itertools.product(range(2), range(9), range(9)):
    want = ((k <= q) or (bid[b, q] and bid[b, k])) and seg[b, q] == seg[b, k] and seg[b, q] != 0
    assert got[b, q, k] == want


@pytest.mark.parametrize("position", ["relative", "rope"])
def test_packed_equals_unpacked(position):
  cfg = _config(position=position)
  params = init_params(cfg, jax.random.key(0))
  model = Decoder(cfg)
  lengths, prefix = (5, 7, 3), (2, 3, 0)
  examples = [_tokens((1, n), seed=i) for i, n in enumerate(lengths)]
  tokens = jnp.concatenate(examples + [jnp.zeros((1, 2), jnp.int32)], axis=1)  # 15 + 2 padding.
  segments = jnp.concatenate([jnp.full((1, n), i + 1) for i, n in enumerate(lengths)]
                             + [jnp.zeros((1, 2), jnp.int32)], axis=1)
  positions = jnp.concatenate([jnp.arange(n)[None] for n in lengths + (2,)], axis=1)
  prefix_masks = [(jnp.arange(n) < p)[None] for n, p in zip(lengths, prefix, strict=True)]
  causal_attn = jnp.concatenate(prefix_masks + [jnp.zeros((1, 2), bool)], axis=1)
  packed = model.apply({"params": params}, tokens, decoder_target_tokens=tokens,
                       decoder_segment_ids=segments, decoder_positions=positions,
                       decoder_causal_attention=causal_attn)
  start = 0
  for ex, n, p in zip(examples, lengths, prefix, strict=True):
    alone = model.apply({"params": params}, ex,
                        decoder_causal_attention=(jnp.arange(n) < p)[None])
    np.testing.assert_allclose(packed[:, start:start + n], alone, atol=ATOL)
    start += n


def test_padding_does_not_change_logits():
  cfg = _config()
  params = init_params(cfg, jax.random.key(0))
  tok = _tokens((1, 6))
  padded = jnp.pad(tok, ((0, 0), (0, 4)))
  a = Decoder(cfg).apply({"params": params}, tok)
  b = Decoder(cfg).apply({"params": params}, padded, decoder_target_tokens=padded)
  np.testing.assert_allclose(a, b[:, :6], atol=ATOL)


@pytest.mark.parametrize("bidirectional_buckets", [False, True])
def test_prefix_lm_mask(bidirectional_buckets):
  cfg = _config(relative_bidirectional=bidirectional_buckets)
  params = init_params(cfg, jax.random.key(0))
  model = Decoder(cfg)
  tok = _tokens((1, 10))
  prefix = (jnp.arange(10) < 4)[None]
  causal = model.apply({"params": params}, tok)
  same = model.apply({"params": params}, tok, decoder_causal_attention=jnp.zeros_like(prefix))
  np.testing.assert_allclose(causal, same, atol=ATOL)
  prefix_lm = model.apply({"params": params}, tok, decoder_causal_attention=prefix)
  # Inputs see each other: changing input token 3 changes logits at 0..3 under prefix-LM only.
  tok2 = tok.at[0, 3].set((tok[0, 3] + 1) % 128 + 1)
  prefix_lm2 = model.apply({"params": params}, tok2, decoder_causal_attention=prefix)
  causal2 = model.apply({"params": params}, tok2)
  assert float(jnp.abs(prefix_lm2[:, :3] - prefix_lm[:, :3]).max()) > 1e-4
  np.testing.assert_allclose(causal2[:, :3], causal[:, :3], atol=ATOL)
  # Targets stay causal: changing the last token changes nothing before it.
  tok3 = tok.at[0, 9].set((tok[0, 9] + 1) % 128 + 1)
  prefix_lm3 = model.apply({"params": params}, tok3, decoder_causal_attention=prefix)
  np.testing.assert_allclose(prefix_lm3[:, :9], prefix_lm[:, :9], atol=ATOL)


@pytest.mark.parametrize("position,scan", [("relative", True), ("rope", False), ("rope", True)])
def test_kv_cache_decode_matches_full_forward(position, scan):
  cfg = _config(position=position, scan_layers=scan, num_kv_heads=1)
  params = init_params(cfg, jax.random.key(0))
  model = Decoder(cfg)
  tok = _tokens((2, 12))
  prefix = jnp.arange(12)[None] < jnp.array([[5], [3]])
  full = model.apply({"params": params}, tok, decoder_causal_attention=prefix)
  cache = init_cache(cfg, batch=2, max_length=16)
  step = jax.jit(lambda c, t, p: model.apply({"params": params, "cache": c}, t, decode=True,
                                             decoder_causal_attention=p, mutable=["cache"]))
  logits, variables = step(cache, tok[:, :5], prefix[:, :5])  # Prefill.
  outs = [logits]
  for i in range(5, 12):  # One token per step.
    logits, variables = step(variables["cache"], tok[:, i:i + 1], prefix[:, i:i + 1])
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=ATOL)


@pytest.mark.parametrize("policy", ["none", "minimal", "full"])
def test_scan_and_remat_do_not_change_results(policy):
  cfg_scan = _config(remat_policy=policy, dropout_rate=0.1)
  cfg_loop = cfg_scan.replace(scan_layers=False)
  params = init_params(cfg_scan, jax.random.key(0))
  # Unstack the scanned parameters into layers_i.
  loop_params = {k: v for k, v in params.items() if k != "layers"}
  for i in range(cfg_scan.num_layers):
    loop_params[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], params["layers"])
  tok = _tokens((2, 8))

  def loss(p, cfg):
    return jnp.mean(Decoder(cfg).apply({"params": p}, tok) ** 2)

  la, ga = jax.value_and_grad(loss)(params, cfg_scan)
  lb, gb = jax.value_and_grad(loss)(loop_params, cfg_loop)
  np.testing.assert_allclose(la, lb, rtol=1e-5)
  np.testing.assert_allclose(ga["layers"]["mlp"]["wo"][1], gb["layers_1"]["mlp"]["wo"],
                             atol=1e-6)


def test_dropout_is_active_only_when_enabled():
  cfg = _config(dropout_rate=0.5)
  params = init_params(cfg, jax.random.key(0))
  tok = _tokens((1, 8))
  a = Decoder(cfg).apply({"params": params}, tok)
  b = Decoder(cfg).apply({"params": params}, tok, enable_dropout=True,
                         rngs={"dropout": jax.random.key(1)})
  assert float(jnp.abs(a - b).max()) > 1e-3


def test_bf16_compute_keeps_f32_params():
  cfg = _config(dtype="bfloat16")
  params = init_params(cfg, jax.random.key(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  logits = Decoder(cfg).apply({"params": params}, _tokens((1, 8)))
  assert logits.dtype == jnp.float32 and bool(jnp.isfinite(logits).all())


def test_last_logits_only_equals_last_position():
  cfg = DecoderConfig(vocab_size=64, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                      dtype="float32")
  params = init_params(cfg, jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(1), (2, 9), 0, 64)
  full = Decoder(cfg).apply({"params": params}, tokens)
  last = Decoder(cfg).apply({"params": params}, tokens, last_logits_only=True)
  assert last.shape == (2, 1, 64)
  np.testing.assert_allclose(last[:, 0], full[:, -1], atol=1e-6)
