"""KV-cache decoding vs. full forward passes: greedy, EOS, sampling filters, beam search (fp32)."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.inference import decoding
from flan_jax.models import Decoder, DecoderConfig, abstract_params

PROMPTS = ([0, 5, 9, 17], [0, 3, 4, 5, 6, 7, 8, 9, 10], [0])  # Different lengths; 1 = BOS only.
N = 6


def _config(**kw) -> DecoderConfig:
  base = dict(vocab_size=128, num_layers=2, d_model=32, num_heads=4, num_kv_heads=2, head_dim=8,
              d_ff=64, dtype="float32", tie_embeddings=False)  # Untied: less repetitive output.
  base.update(kw)
  return DecoderConfig(**base)


@functools.lru_cache
def _params(cfg: DecoderConfig, seed: int = 1):
  """Random parameters drawn with numpy (eager flax init costs seconds per config here)."""
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == "scale":
      return jnp.ones(leaf.shape, leaf.dtype)
    std = 1.0 if name in ("embedding", "rel_embedding") else cfg.d_model ** -0.5
    return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, abstract_params(cfg))


@functools.partial(jax.jit, static_argnums=(0, 5))
def _log_probs(cfg, params, tokens, length, prompt_length, bidirectional):
  """Full forward of right-padded rows (no cache): log-softmax [B, L, V]."""
  slots = jnp.arange(tokens.shape[1])[None]
  logits = Decoder(cfg).apply(
      {"params": params}, tokens, decoder_segment_ids=(slots < length[:, None]).astype(jnp.int32),
      decoder_causal_attention=(slots < prompt_length[:, None]) & bidirectional)
  return jax.nn.log_softmax(logits)


def _right_pad(prompts, width):
  tokens = np.zeros((len(prompts), width), np.int32)
  for row, p in enumerate(prompts):
    tokens[row, :len(p)] = p
  return tokens, np.array([len(p) for p in prompts])


def _reference_greedy(cfg, params, prompts, n, eos_id, bidirectional=True):
  """Argmax of a fresh full forward pass per new token; (tokens [B, n], log_probs [B])."""
  buf, plen = _right_pad(prompts, max(map(len, prompts)) + n)
  rows = np.arange(len(prompts))
  out = np.zeros((len(prompts), n), np.int32)
  total, done = np.zeros(len(prompts)), np.zeros(len(prompts), bool)
  for i in range(n):
    lp = np.asarray(_log_probs(cfg, params, buf, plen + i, plen, bidirectional))
    lp = lp[rows, plen + i - 1]  # Predicts the token at slot plen + i.
    tok = np.where(done, 0, lp.argmax(-1))
    total += np.where(done, 0.0, lp[rows, tok])
    out[:, i], buf[rows, plen + i] = tok, tok
    done |= tok == eos_id
  return out, total


def _generated_log_probs(cfg, params, prompts, generated, bidirectional=True):
  """Log-softmax [B, n, V] of the full forward at the slots predicting each generated token."""
  n = generated.shape[1]
  buf, plen = _right_pad(prompts, max(map(len, prompts)) + n)
  rows = np.arange(len(prompts))[:, None]
  buf[rows, plen[:, None] + np.arange(n)] = generated
  lp = np.asarray(_log_probs(cfg, params, buf, plen + n, plen, bidirectional))
  return lp[rows, plen[:, None] - 1 + np.arange(n)]


def _np_lengths(tokens: np.ndarray, eos_id: int) -> np.ndarray:
  """Tokens up to and including the first EOS of each row."""
  is_eos = tokens == eos_id
  return np.where(is_eos.any(-1), is_eos.argmax(-1) + 1, tokens.shape[-1])


def _decode(cfg, params, prompts=PROMPTS, **kw):
  tokens, lengths = decoding.left_pad(prompts)
  out = decoding.decode(cfg, params, jnp.asarray(tokens), jnp.asarray(lengths), **kw)
  return {k: np.asarray(v) for k, v in out.items()}


def test_left_pad():
  tokens, lengths = decoding.left_pad([[0, 7], [0, 1, 2, 3]], length=5)
  np.testing.assert_array_equal(tokens, [[0, 0, 0, 0, 7], [0, 0, 1, 2, 3]])
  np.testing.assert_array_equal(lengths, [2, 4])
  with pytest.raises(ValueError):
    decoding.left_pad([[1, 2, 3]], length=2)
  with pytest.raises(ValueError):
    decoding.left_pad([[1], []])


@pytest.mark.parametrize("position,scan,kv_heads,bidirectional", [
    ("relative", True, 2, True), ("rope", False, 1, True), ("relative", False, 4, False),
    ("rope", True, 2, False)])
def test_greedy_matches_full_forward(position, scan, kv_heads, bidirectional):
  cfg = _config(position=position, scan_layers=scan, num_kv_heads=kv_heads,
                relative_bidirectional=not scan)
  params = _params(cfg)
  want, want_lp = _reference_greedy(cfg, params, PROMPTS, N, eos_id=1, bidirectional=bidirectional)
  got = _decode(cfg, params, max_new_tokens=N, bidirectional_prompt=bidirectional)
  np.testing.assert_array_equal(got["tokens"], want)
  np.testing.assert_allclose(got["log_probs"], want_lp, atol=1e-4)


def test_eos_stops_rows_and_pads_with_zeros():
  cfg = _config()
  params = _params(cfg)
  free = _decode(cfg, params, max_new_tokens=N, eos_id=cfg.vocab_size)  # EOS unreachable.
  assert (free["lengths"] == N).all()
  # EOS := the token row 0 first emits at step 2, so rows stop at different steps (or never).
  eos = int(free["tokens"][0, 2])
  assert eos not in free["tokens"][0, :2]
  got = _decode(cfg, params, max_new_tokens=N, eos_id=eos)
  want, want_lp = _reference_greedy(cfg, params, PROMPTS, N, eos_id=eos)
  np.testing.assert_array_equal(got["tokens"], want)
  np.testing.assert_allclose(got["log_probs"], want_lp, atol=1e-4)
  for row, toks in enumerate(free["tokens"]):
    hits = np.flatnonzero(toks == eos)
    length = hits[0] + 1 if hits.size else N
    assert got["lengths"][row] == length
    np.testing.assert_array_equal(got["tokens"][row, :length], toks[:length])
    assert (got["tokens"][row, length:] == 0).all()
  assert got["lengths"][0] == 3
  assert got["log_probs"][0] > free["log_probs"][0]  # Fewer (negative) terms summed.


def test_decode_features_prompts():
  cfg = _config()
  params = _params(cfg)
  # seqio prefix-LM features: [0, inputs..., targets...] shifted right; marks over [0, inputs...].
  inputs, causal, targets = (np.zeros((3, 12), np.int32) for _ in range(3))
  inputs[0, :7], causal[0, :4], targets[0, :6] = [0, 5, 9, 17, 40, 41, 1], 1, [5, 9, 17, 40, 41, 1]
  inputs[1, :9], targets[1, :9] = PROMPTS[1], PROMPTS[1][1:] + [11]  # No marks: plain LM row.
  inputs[2, :3], causal[2, :1], targets[2, :2] = [0, 7, 1], 1, [7, 1]  # Empty inputs: BOS only.
  batch = {"decoder_input_tokens": inputs, "decoder_causal_attention": causal,
           "decoder_target_tokens": targets}
  got = decoding.decode_features(cfg, params, batch, max_new_tokens=N)
  want = _decode(cfg, params, prompts=PROMPTS, max_new_tokens=N)
  np.testing.assert_array_equal(np.asarray(got["tokens"]), want["tokens"])


def test_filter_logits_top_k_and_nucleus():
  logits = jnp.log(jnp.array([[0.05, 0.5, 0.15, 0.3]]))
  kept = lambda **kw: np.isfinite(np.asarray(decoding.filter_logits(logits, **kw)))[0]  # noqa: E731
  np.testing.assert_array_equal(kept(top_k=1), [0, 1, 0, 0])
  np.testing.assert_array_equal(kept(top_k=2), [0, 1, 0, 1])
  np.testing.assert_array_equal(kept(top_p=0.45), [0, 1, 0, 0])
  np.testing.assert_array_equal(kept(top_p=0.8), [0, 1, 0, 1])  # 0.5 + 0.3 reaches 0.8.
  np.testing.assert_array_equal(kept(top_p=0.81), [0, 1, 1, 1])
  np.testing.assert_array_equal(kept(top_k=2, top_p=0.9), [0, 1, 0, 1])
  np.testing.assert_allclose(decoding.filter_logits(logits, temperature=2.0), logits / 2)


def test_degenerate_sampling_is_greedy():
  cfg = _config()
  params = _params(cfg)
  greedy = _decode(cfg, params, max_new_tokens=N)
  for kw in (dict(top_k=1), dict(temperature=0.0), dict(temperature=1e-5, top_p=0.9)):
    got = _decode(cfg, params, max_new_tokens=N, method="sample", rng=jax.random.key(3), **kw)
    np.testing.assert_array_equal(got["tokens"], greedy["tokens"], err_msg=str(kw))


def _sampled_log_probs(cfg, params, prompts, out):
  """Full-forward log-softmax [B, N, V] behind each sample; checks ``log_probs``; valid [B, N]."""
  lp = _generated_log_probs(cfg, params, prompts, out["tokens"])
  chosen = np.take_along_axis(lp, out["tokens"][..., None], -1)[..., 0]
  valid = np.arange(out["tokens"].shape[1])[None] < out["lengths"][:, None]
  np.testing.assert_allclose(out["log_probs"], (chosen * valid).sum(-1), atol=1e-4)
  assert (out["tokens"][~valid] == 0).all()
  return lp, valid


def test_top_k_samples_follow_the_filtered_distribution():
  cfg = _config()
  params = _params(cfg)
  prompts, n, copies = list(PROMPTS) * 1000, 4, 1000
  run = lambda seed: _decode(cfg, params, prompts=prompts, max_new_tokens=n, method="sample",  # noqa: E731
                             temperature=2.0, top_k=3, rng=jax.random.key(seed))
  out, same, other = run(0), run(0), run(1)
  np.testing.assert_array_equal(out["tokens"], same["tokens"])  # Same rng, same output.
  assert (out["tokens"] != other["tokens"]).mean() > 0.3
  lp, valid = _sampled_log_probs(cfg, params, prompts, out)
  higher = lp > np.take_along_axis(lp, out["tokens"][..., None], -1)
  assert (higher.sum(-1)[valid] < 3).all()  # Every sample is among the top 3.
  for row in range(len(PROMPTS)):  # First-token frequencies: softmax(top-3 logits / 2).
    first_lp = lp[row, 0]
    top = np.argsort(-first_lp)[:3]
    want = np.exp(first_lp[top] / 2) / np.exp(first_lp[top] / 2).sum()
    freq = [(out["tokens"][row::len(PROMPTS), 0] == t).sum() / copies for t in top]
    np.testing.assert_allclose(freq, want, atol=0.05)


def test_samples_stay_in_the_nucleus():
  cfg = _config()
  params = _params(cfg)
  temperature, top_p = 0.7, 0.6
  for seed in range(3):
    out = _decode(cfg, params, max_new_tokens=N, method="sample", temperature=temperature,
                  top_p=top_p, rng=jax.random.key(seed))
    lp, valid = _sampled_log_probs(cfg, params, PROMPTS, out)
    probs = np.exp(lp / temperature)
    probs /= probs.sum(-1, keepdims=True)
    higher = probs > np.take_along_axis(probs, out["tokens"][..., None], -1)
    assert ((probs * higher).sum(-1)[valid] < top_p).all()  # Mass ranked above each sample.


def test_single_beam_is_greedy():
  cfg = _config()
  params = _params(cfg)
  kw = dict(max_new_tokens=N, eos_id=cfg.vocab_size)
  greedy = _decode(cfg, params, **kw)
  beam = _decode(cfg, params, method="beam", num_beams=1, **kw)
  np.testing.assert_array_equal(beam["tokens"], greedy["tokens"])
  np.testing.assert_allclose(beam["log_probs"], greedy["log_probs"], atol=1e-4)
  assert beam["beams"].shape == (len(PROMPTS), 1, N)


def test_wide_beam_finds_the_exhaustive_argmax():
  cfg = _config(vocab_size=6, scan_layers=False)
  params = _params(cfg, 2)
  prompts, n, eos = ([0, 3, 4], [0, 5, 2, 4, 3, 5]), 3, 1
  beam = _decode(cfg, params, prompts=prompts, max_new_tokens=n, eos_id=eos, method="beam",
                 num_beams=36, length_penalty=0.0)
  # Every continuation of n tokens; a sequence ends at its first EOS (zeros after it).
  cont = np.array(list(itertools.product(range(cfg.vocab_size), repeat=n)), np.int32)  # [C, n]
  lp = _generated_log_probs(cfg, params, [p for p in prompts for _ in cont], np.tile(cont, (2, 1)))
  ended_before = np.cumsum(cont == eos, axis=1) - (cont == eos) > 0
  for row, lp_row in enumerate(np.split(lp, 2)):  # [C, n, V] per prompt.
    step_lp = np.take_along_axis(lp_row, cont[..., None], -1)[..., 0]
    totals = np.where(ended_before, 0.0, step_lp).sum(-1)
    best = cont[totals.argmax()] * ~ended_before[totals.argmax()]
    np.testing.assert_array_equal(beam["tokens"][row], best)
    np.testing.assert_allclose(beam["log_probs"][row], totals.max(), atol=1e-4)
    assert beam["lengths"][row] == _np_lengths(best[None], eos)[0]
    # Greedy, read off the same table, never beats the beam.
    greedy_lp, match = 0.0, np.ones(len(cont), bool)
    for j in range(n):
      c = np.flatnonzero(match)[0]
      tok = lp_row[c, j].argmax()
      greedy_lp += lp_row[c, j, tok]
      match &= cont[:, j] == tok
      if tok == eos:
        break
    assert beam["log_probs"][row] >= greedy_lp - 1e-5


def test_beam_scores_are_length_penalized_log_probs():
  cfg = _config(vocab_size=6, position="rope")
  params = _params(cfg, 2)
  prompts, n, alpha, k = ([0, 3, 4], [0, 5, 2, 4, 3, 5]), 5, 0.6, 4
  out = _decode(cfg, params, prompts=prompts, max_new_tokens=n, eos_id=1, method="beam",
                num_beams=k, length_penalty=alpha)
  beams = out["beams"].reshape(-1, n)  # [2K, n]
  lengths = _np_lengths(beams, 1)
  assert (lengths < n).any() and (lengths == n).any()  # EOS-ended and full-length hypotheses.
  valid = np.arange(n)[None] < lengths[:, None]
  assert ((beams == 0) | valid).all()
  lp = _generated_log_probs(cfg, params, [p for p in prompts for _ in range(k)], beams)
  total = (np.take_along_axis(lp, beams[..., None], -1)[..., 0] * valid).sum(-1)
  np.testing.assert_allclose(out["beam_scores"].reshape(-1), total / ((5 + lengths) / 6) ** alpha,
                             atol=1e-4)
  assert (np.diff(out["beam_scores"], axis=1) <= 0).all()  # Best first.
  np.testing.assert_allclose(out["log_probs"], total[::k], atol=1e-4)
  np.testing.assert_array_equal(out["lengths"], lengths[::k])
  np.testing.assert_array_equal(out["tokens"], out["beams"][:, 0])
  for row in range(len(prompts)):
    assert len({tuple(b) for b in out["beams"][row]}) == k  # Distinct hypotheses.
