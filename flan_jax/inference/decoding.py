"""Batched KV-cache decoding: greedy, temperature / top-k / top-p sampling and beam search.

Prompts are the exact token sequences fed to the model. For seqio's ``DecoderFeatureConverter``
that is ``decoder_input_tokens[:sum(decoder_causal_attention)]`` = ``[0, inputs...]``: the logits
at its last position predict the first target token (:func:`decode_features` derives it).

Layout: prompts are left-padded to P slots (:func:`left_pad`), so every row's prompt ends at slot
P - 1 and generated token i sits at slot P + i in every row. Padding gets segment id 0 (masked as
key and query); ``decoder_positions`` = slot - padding, so RoPE sees the unpadded positions, and
T5 relative-position buckets depend only on slot differences, which left padding keeps. One decode
call prefills the prompt into a cache of P + ``max_new_tokens`` slots; a ``lax.while_loop`` then
feeds one token per step and stops early once every row has finished.

Outputs: ``tokens`` [B, N] (first EOS kept, 0 after it), ``log_probs`` [B] (sum of the *model's*
log-probabilities of the generated tokens incl. EOS, before any temperature / top-k / top-p
reshaping), ``lengths`` [B] (tokens up to and incl. the first EOS; N without one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from flan_jax.models import cache as cache_lib
from flan_jax.models.config import DecoderConfig
from flan_jax.models.decoder import Decoder, init_cache

METHODS = ("greedy", "sample", "beam")
NEG_INF = -1.0e7  # Finite "minus infinity" for beam scores (t5x), so sums stay NaN-free.
MIN_TEMPERATURE = 1e-4  # Lower temperatures decode greedily (as in t5x).

# (cache, tokens [R], positions [R]) -> (next-token logits [R, V], cache).
StepFn = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, Any]]


def left_pad(prompts: Sequence[Sequence[int]],
             length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """int32 tokens [B, P] left-padded with 0 (P: ``length`` or the longest prompt), lengths [B]."""
  lengths = np.array([len(p) for p in prompts], np.int32)
  if lengths.size == 0 or lengths.min() < 1:
    raise ValueError("every prompt needs at least one token")
  width = int(lengths.max()) if length is None else length
  if lengths.max() > width:
    raise ValueError(f"prompt of {lengths.max()} tokens does not fit in length {width}")
  tokens = np.zeros((len(prompts), width), np.int32)
  for row, prompt in enumerate(prompts):
    tokens[row, width - len(prompt):] = np.asarray(prompt, np.int32)
  return tokens, lengths


def decode(config: DecoderConfig, params: Any, prompt_tokens: jax.Array, prompt_lengths: jax.Array,
           *, max_new_tokens: int, eos_id: int = 1, bidirectional_prompt: bool = True,
           method: str = "greedy", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           num_beams: int = 4, length_penalty: float = 0.6,
           rng: jax.Array | None = None) -> dict[str, jax.Array]:
  """Generates up to ``max_new_tokens`` tokens after each left-padded prompt (jit-compiled).

  Args:
    config: the model's config.
    params: the model's unboxed parameters.
    prompt_tokens: [B, P] int prompts left-padded with 0 (:func:`left_pad`).
    prompt_lengths: [B] int prompt lengths (each ≥ 1).
    max_new_tokens: N, the number of generated slots.
    eos_id: a row finishes at its first ``eos_id`` (kept in the output; 0 after it).
    bidirectional_prompt: the prompt attends bidirectionally (prefix LM, seqio
      ``decoder_causal_attention``); False for causal LMs.
    method: "greedy", "sample" (``temperature``, then ``top_k``, then ``top_p`` filtering;
      temperature ≤ 1e-4 or top_k == 1 is greedy) or "beam" (t5x beam search, ``num_beams``
      beams, brevity penalty ((5 + length) / 6) ** ``length_penalty`` on finished sequences).
    rng: PRNG key for "sample" (step i uses ``fold_in(rng, i)``); default ``key(0)``.

  Returns:
    ``tokens`` [B, N] int32, ``log_probs`` [B] f32, ``lengths`` [B] int32; for "beam" the best
    beam, plus ``beams`` [B, num_beams, N] and ``beam_scores`` [B, num_beams] (length-penalized,
    best first; scores ≤ NEG_INF / 2 mark filler beams when fewer sequences exist).

  Everything but the arrays and ``eos_id`` is static; settings that decode alike are mapped to
  one canonical form first (e.g. top_k=1 sampling to greedy), so they share one compilation.
  """
  if method not in METHODS:
    raise ValueError(f"method {method!r} not in {METHODS}")
  if max_new_tokens < 1:
    raise ValueError("max_new_tokens must be ≥ 1")
  if top_k < 0 or not 0.0 < top_p <= 1.0 or temperature < 0:
    raise ValueError(f"bad sampling parameters: temperature={temperature} top_k={top_k} "
                     f"top_p={top_p}")
  if method == "beam" and (num_beams < 1 or config.vocab_size < 2):
    raise ValueError("beam search needs num_beams ≥ 1 and a vocabulary of ≥ 2 tokens")
  if method == "sample" and (temperature <= MIN_TEMPERATURE or top_k == 1):
    method = "greedy"
  if method != "sample":
    temperature, top_k, top_p, rng = 1.0, 0, 1.0, None
  if method != "beam":
    num_beams, length_penalty = 1, 0.0
  return _decode(config, params, prompt_tokens, prompt_lengths, jnp.asarray(eos_id, jnp.int32),
                 jax.random.key(0) if rng is None else rng, max_new_tokens=max_new_tokens,
                 bidirectional_prompt=bidirectional_prompt, method=method,
                 temperature=float(temperature), top_k=top_k, top_p=float(top_p),
                 num_beams=num_beams, length_penalty=float(length_penalty))


@functools.partial(jax.jit, static_argnames=(
    "config", "max_new_tokens", "bidirectional_prompt", "method", "temperature", "top_k", "top_p",
    "num_beams", "length_penalty"))
def _decode(config: DecoderConfig, params: Any, prompt_tokens: jax.Array,
            prompt_lengths: jax.Array, eos_id: jax.Array, rng: jax.Array, *, max_new_tokens: int,
            bidirectional_prompt: bool, method: str, temperature: float, top_k: int, top_p: float,
            num_beams: int, length_penalty: float) -> dict[str, jax.Array]:
  """:func:`decode` with canonical, validated settings."""
  b, p = prompt_tokens.shape
  n = max_new_tokens
  prompt_lengths = prompt_lengths.astype(jnp.int32)
  model = Decoder(config)

  def apply(cache, tokens, segments, positions, bidirectional):
    logits, variables = model.apply(
        {"params": params, "cache": cache}, tokens, decoder_segment_ids=segments,
        decoder_positions=positions, decoder_causal_attention=bidirectional, decode=True,
        mutable=["cache"])
    return logits[:, -1], variables["cache"]

  # Prefill: one call over the whole left-padded prompt.
  pad = p - prompt_lengths  # [B]
  slots = jnp.arange(p)[None, :]
  real = slots >= pad[:, None]  # [B, P]
  first_logits, cache = apply(
      init_cache(config, b, p + n), prompt_tokens.astype(jnp.int32), real.astype(jnp.int32),
      jnp.maximum(slots - pad[:, None], 0), real & bidirectional_prompt)

  def step(cache, tokens, positions):
    rows = tokens.shape[0]
    return apply(cache, tokens[:, None], jnp.ones((rows, 1), jnp.int32), positions[:, None],
                 jnp.zeros((rows, 1), bool))

  if method == "beam":
    return _beam_search(step, first_logits, cache, prompt_lengths, n, eos_id, num_beams,
                        length_penalty)
  pick = (_argmax if method == "greedy" else functools.partial(
      _sample, temperature=temperature, top_k=top_k, top_p=top_p))
  return _generate(step, first_logits, cache, prompt_lengths, n, eos_id, pick, rng)


def decode_features(config: DecoderConfig, params: Any, batch: Mapping[str, np.ndarray],
                    **kwargs: Any) -> dict[str, jax.Array]:
  """:func:`decode` on seqio ``DecoderFeatureConverter`` features (a numpy batch).

  The prompt of row b is ``decoder_input_tokens[b, :sum(decoder_causal_attention[b])]``. A row
  without causal-attention marks (a plain LM example) is continued after all its non-padding
  input tokens (up to the last non-zero ``decoder_target_tokens``, else the last non-zero input
  token; at least the BOS slot). ``bidirectional_prompt`` defaults to whether any row has marks.
  """
  tokens, lengths = left_pad(feature_prompts(batch))
  causal = batch.get("decoder_causal_attention")
  kwargs.setdefault("bidirectional_prompt", causal is not None and bool(np.any(causal)))
  return decode(config, params, jnp.asarray(tokens), jnp.asarray(lengths), **kwargs)


def until_eos(tokens: Sequence[int], eos_id: int = 1, drop_padding: bool = True) -> list[int]:
  """Generated ids before the first EOS (seqio decodes these), without padding 0s."""
  ids = [int(t) for t in tokens]
  if eos_id in ids:
    ids = ids[:ids.index(eos_id)]
  return [t for t in ids if t != 0] if drop_padding else ids


def feature_prompts(batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
  """The prompt of every row of a seqio feature batch (see :func:`decode_features`)."""
  inputs = np.asarray(batch["decoder_input_tokens"])
  causal = np.asarray(batch.get("decoder_causal_attention", np.zeros_like(inputs)))
  nonpad = np.asarray(batch.get("decoder_target_tokens", inputs)) != 0
  prompts = []
  for row in range(inputs.shape[0]):
    n = int(causal[row].sum())
    if n == 0:
      n = int(np.flatnonzero(nonpad[row]).max(initial=0)) + 1
    prompts.append(inputs[row, :n].astype(np.int32))
  return prompts


# --- token choice --------------------------------------------------------------------------------


def _argmax(logits: jax.Array, key: jax.Array) -> jax.Array:
  del key
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def filter_logits(logits: jax.Array, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> jax.Array:
  """logits / temperature with tokens outside the top k and outside the nucleus set to -inf.

  The nucleus is the smallest set of most likely tokens whose probability reaches ``top_p``
  (computed after top-k, like Hugging Face); ties at either cutoff are kept.
  """
  logits = logits.astype(jnp.float32) / temperature
  if 0 < top_k < logits.shape[-1]:
    kth = lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p < 1.0:
    ordered = jnp.flip(jnp.sort(logits, axis=-1), axis=-1)  # Descending.
    probs = jax.nn.softmax(ordered, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    kept = jnp.sum(mass_before < top_p, axis=-1, keepdims=True)  # ≥ 1.
    cutoff = jnp.take_along_axis(ordered, kept - 1, axis=-1)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return logits


def _sample(logits: jax.Array, key: jax.Array, *, temperature: float, top_k: int,
            top_p: float) -> jax.Array:
  filtered = filter_logits(logits, temperature, top_k, top_p)
  return jax.random.categorical(key, filtered, axis=-1).astype(jnp.int32)


def _lengths(tokens: jax.Array, eos_id: jax.Array) -> jax.Array:
  """Tokens up to and including the first EOS of each row (all of them without one)."""
  is_eos = tokens == eos_id
  return jnp.where(is_eos.any(-1), jnp.argmax(is_eos, -1) + 1, tokens.shape[-1]).astype(jnp.int32)


# --- greedy and sampling -------------------------------------------------------------------------


def _generate(step: StepFn, first_logits: jax.Array, cache: Any, prompt_lengths: jax.Array,
              n: int, eos_id: jax.Array, pick: Callable[[jax.Array, jax.Array], jax.Array],
              rng: jax.Array) -> dict[str, jax.Array]:
  """One token per row and step; rows that have emitted EOS emit 0."""
  b = first_logits.shape[0]

  def choose(state, logits, i):
    token = pick(logits, jax.random.fold_in(rng, i))
    token = jnp.where(state["done"], 0, token)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], -1)[:, 0]
    return dict(state, i=i + 1, token=token,
                tokens=lax.dynamic_update_slice(state["tokens"], token[:, None], (0, i)),
                log_probs=state["log_probs"] + jnp.where(state["done"], 0.0, logp),
                done=state["done"] | (token == eos_id))

  def cond(state):
    return (state["i"] < n) & ~jnp.all(state["done"])

  def body(state):
    # Token i - 1 sits at slot P + i - 1, position length + i - 1.
    logits, cache = step(state["cache"], state["token"], prompt_lengths + state["i"] - 1)
    return choose(dict(state, cache=cache), logits, state["i"])

  state = dict(i=jnp.int32(0), token=jnp.zeros((b,), jnp.int32),
               tokens=jnp.zeros((b, n), jnp.int32), log_probs=jnp.zeros((b,), jnp.float32),
               done=jnp.zeros((b,), bool), cache=cache)
  state = lax.while_loop(cond, body, choose(state, first_logits, jnp.int32(0)))
  return {"tokens": state["tokens"], "log_probs": state["log_probs"],
          "lengths": _lengths(state["tokens"], eos_id)}


# --- beam search ---------------------------------------------------------------------------------


def brevity_penalty(alpha: float, length: jax.Array) -> jax.Array:
  """t5x / GNMT length normalization ((5 + length) / 6) ** alpha."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather(x: jax.Array, index: jax.Array) -> jax.Array:
  """x [B, M, ...] -> [B, K, ...] rows ``index`` [B, K] of each batch element."""
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


def _beam_search(step: StepFn, first_logits: jax.Array, cache: Any, prompt_lengths: jax.Array,
                 n: int, eos_id: jax.Array, k: int, alpha: float) -> dict[str, jax.Array]:
  """t5x beam search: K alive and K finished beams per row; flat cache row = b * K + beam.

  Each step extends every alive beam by every token, keeps the best 2K candidates (so K survive
  even if K end in EOS), moves the EOS ones into the finished set (score = log-prob / brevity
  penalty) and keeps the best K others alive. The loop stops at N tokens or once no alive beam can
  beat the worst finished one (log-probs only fall). Unlike t5x, which returns alive beams only
  when nothing finished, beams that reach N tokens without EOS then compete with the finished
  ones under the same penalty.
  """
  b, vocab = first_logits.shape
  lengths = jnp.repeat(prompt_lengths, k)  # [B * K]
  flat_rows = jnp.arange(b)[:, None] * k

  def choose(state, logits, i):
    cand = state["alive_logp"][:, :, None] + jax.nn.log_softmax(logits.reshape(b, k, vocab))
    top_logp, top_index = lax.top_k(cand.reshape(b, k * vocab), 2 * k)  # [B, 2K]
    parent, token = top_index // vocab, (top_index % vocab).astype(jnp.int32)
    seqs = _gather(state["alive_seqs"], parent).at[:, :, i].set(token)  # [B, 2K, N]
    ended = (token == eos_id) & (top_logp > NEG_INF / 2)  # Filler candidates never finish.

    alive_logp, keep = lax.top_k(jnp.where(ended, NEG_INF, top_logp), k)
    cache = cache_lib.take(state["cache"], (flat_rows + _gather(parent, keep)).reshape(-1))

    scores = jnp.where(ended, top_logp / brevity_penalty(alpha, i + 1), NEG_INF)
    finished = _top_by_score(
        (state["fin_seqs"], seqs), (state["fin_scores"], scores),
        (state["fin_logp"], jnp.where(ended, top_logp, NEG_INF)), (state["fin_flags"], ended), k)
    return dict(i=i + 1, alive_seqs=_gather(seqs, keep), alive_logp=alive_logp,
                token=_gather(token, keep).reshape(-1), cache=cache, **finished)

  def cond(state):
    # Alive log-probs only fall, so log-prob / the largest penalty still ahead bounds their score.
    bound = state["alive_logp"].max(-1) / jnp.maximum(
        brevity_penalty(alpha, state["i"]), brevity_penalty(alpha, n))
    settled = state["fin_flags"].all(-1) & (state["fin_scores"].min(-1) > bound)
    return (state["i"] < n) & ~jnp.all(settled)

  def body(state):
    logits, cache = step(state["cache"], state["token"], lengths + state["i"] - 1)
    return choose(dict(state, cache=cache), logits, state["i"])

  state = _beam_start(cache, b, n, k)
  state = lax.while_loop(cond, body, choose(state, jnp.repeat(first_logits, k, 0), jnp.int32(0)))
  return _beam_result(state, n, eos_id, k, alpha)


def _beam_start(cache: Any, b: int, n: int, k: int) -> dict[str, Any]:
  """The search state before the first token: beam 0 of each row alive, nothing finished."""
  return dict(
      i=jnp.int32(0), cache=cache_lib.repeat(cache, k), token=jnp.zeros((b * k,), jnp.int32),
      alive_seqs=jnp.zeros((b, k, n), jnp.int32),
      alive_logp=jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1)),
      fin_seqs=jnp.zeros((b, k, n), jnp.int32), fin_scores=jnp.full((b, k), NEG_INF),
      fin_logp=jnp.full((b, k), NEG_INF), fin_flags=jnp.zeros((b, k), bool))


def _beam_result(state: Mapping[str, Any], n: int, eos_id: jax.Array, k: int,
                 alpha: float) -> dict[str, jax.Array]:
  """The best K of the finished and the alive beams (alive ones: full length if the loop ran to
  N, else dominated by every finished beam), best first."""
  alive_ok = state["alive_logp"] > NEG_INF / 2
  final = _top_by_score(
      (state["fin_seqs"], state["alive_seqs"]),
      (state["fin_scores"],
       jnp.where(alive_ok, state["alive_logp"] / brevity_penalty(alpha, n), NEG_INF)),
      (state["fin_logp"], state["alive_logp"]), (state["fin_flags"], alive_ok), k)
  best = final["fin_seqs"][:, 0]
  return {"tokens": best, "log_probs": final["fin_logp"][:, 0], "lengths": _lengths(best, eos_id),
          "beams": final["fin_seqs"], "beam_scores": final["fin_scores"]}


def _top_by_score(seqs: tuple[jax.Array, jax.Array], scores: tuple[jax.Array, jax.Array],
                  logp: tuple[jax.Array, jax.Array], flags: tuple[jax.Array, jax.Array],
                  k: int) -> dict[str, jax.Array]:
  """The best K of two beam sets (concatenated on axis 1), best first."""
  all_scores = jnp.concatenate(scores, axis=1)
  top_scores, index = lax.top_k(all_scores, k)
  pick = lambda pair: _gather(jnp.concatenate(pair, axis=1), index)  # noqa: E731
  return dict(fin_seqs=pick(seqs), fin_scores=top_scores, fin_logp=pick(logp),
              fin_flags=pick(flags))
