"""Log-likelihood scoring: t5x's ``score_batch`` and prefix-shared rank classification.

Token layout (seqio ``DecoderFeatureConverter``, prefix LM): a row is ``[0, c_1..c_C, a_1..a_A]``
shifted right, the first ``C + 1`` positions are the bidirectional *context* and the logits at
position ``C`` predict the first option token ``a_1``. An option's score is the sum of the
log-probs of its tokens (``a_A`` is EOS), which is t5x's ``score_batch`` with loss weights on the
target tokens.

**Prefix sharing.** Scoring K options one row each runs the context K times. Here the context is
encoded once: a prefill of the (left-padded) contexts into the KV cache gives the log-probs of
every option's first token, the cache is repeated K times along the batch axis, and one more
decode call runs all options' remaining tokens ``a_1..a_{A-1}`` against it. Forward tokens per
item drop from ``K (C + A)`` to ``C + K (A - 1)``. Left padding puts every context's end at the
same cache slot; padding has segment id 0 (never attended) and positions are given explicitly, so
scores equal the one-row-per-option path (tested to 1e-5) whatever the batch composition.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.inference import batching
from flan_jax.models import MODEL_FEATURES, Decoder, DecoderConfig, init_cache
from flan_jax.models import cache as cache_lib
from flan_jax.parallel import partitioning

# --- one row per sequence (t5x score_batch) ----------------------------------------------------


def token_log_probs(config: DecoderConfig, params: Any, batch: Mapping[str, Any]) -> jax.Array:
  """log p(target_t | ...) at every position [B, T] (float32; not masked)."""
  feats = {k: batch[k] for k in MODEL_FEATURES if k in batch}
  logits = Decoder(config).apply({"params": params}, **feats)  # [B, T, V]
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  targets = batch["decoder_target_tokens"]
  return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def score_batch(config: DecoderConfig, params: Any, batch: Mapping[str, Any]) -> jax.Array:
  """Sum of target-token log-probs per row [B] (``decoder_loss_weights`` select the targets)."""
  weights = batch.get("decoder_loss_weights")
  if weights is None:
    weights = batch["decoder_target_tokens"] > 0
  return jnp.sum(token_log_probs(config, params, batch) * weights, axis=-1)


# --- prefix-shared rank classification ---------------------------------------------------------


@dataclasses.dataclass
class Item:
  """One multiple-choice question: the model-input context and each option's target tokens.

  ``context`` is fed as is (for seqio features it starts with the shifted-in 0); ``rows`` maps
  each option back to the caller's row index (e.g. seqio's enumeration index).
  """

  context: np.ndarray  # int32 [C]
  options: list[np.ndarray]  # int32 [A_k] each, A_k >= 1
  rows: list[int] = dataclasses.field(default_factory=list)


def split_row(features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(context, target tokens) of one unpacked DecoderFeatureConverter row.

  The context is ``decoder_input_tokens[:n]`` with n = number of ``decoder_causal_attention``
  marks (the inputs plus the shifted-in 0); the targets are the loss-weighted target tokens.
  """
  inputs = np.asarray(features["decoder_input_tokens"])
  weights = np.asarray(features["decoder_loss_weights"]) > 0
  causal = features.get("decoder_causal_attention")
  if causal is None or not np.any(causal):
    raise ValueError("rank classification needs prefix-LM rows (decoder_causal_attention marks "
                     "the inputs); got a row without inputs")
  n = int(np.sum(causal))
  targets = np.asarray(features["decoder_target_tokens"])[weights]
  if not len(targets):
    raise ValueError("a rank-classification row has no target tokens (empty option?)")
  return inputs[:n].astype(np.int32), targets.astype(np.int32)


def group_rows(rows: Iterable[tuple[int, Mapping[str, np.ndarray]]]) -> list[Item]:
  """Groups ``(index, features)`` rows that share a context into :class:`Item`s (first-seen
  order); every option row keeps its index."""
  items: dict[bytes, Item] = {}
  for index, features in rows:
    context, targets = split_row(features)
    key = context.tobytes()
    if key not in items:
      items[key] = Item(context, [])
    items[key].options.append(targets)
    items[key].rows.append(int(index))
  return list(items.values())


def pack_items(items: Sequence[Item], context_length: int | None = None,
               option_length: int | None = None, num_options: int | None = None,
               length_multiple: int = 16) -> dict[str, np.ndarray]:
  """Numpy arrays for :func:`shared_option_scores`: contexts left-padded, options right-padded.

  Lengths default to the batch maxima rounded up to ``length_multiple`` (fewer recompiles).
  Returns ``context`` [B, C], ``context_length`` [B], ``options`` [B, K, A], ``option_length``
  [B, K] (0 for missing options).
  """
  c = context_length or batching.round_up(max(len(it.context) for it in items), length_multiple)
  a = option_length or batching.round_up(max(len(o) for it in items for o in it.options), 4)
  k = num_options or max(len(it.options) for it in items)
  out = {"context": np.zeros((len(items), c), np.int32),
         "context_length": np.zeros((len(items),), np.int32),
         "options": np.zeros((len(items), k, a), np.int32),
         "option_length": np.zeros((len(items), k), np.int32)}
  for b, it in enumerate(items):
    if len(it.context) > c or len(it.options) > k or max(len(o) for o in it.options) > a:
      raise ValueError(f"item {b} does not fit context {c} / {k} options / option length {a}")
    out["context"][b, c - len(it.context):] = it.context
    out["context_length"][b] = len(it.context)
    for j, option in enumerate(it.options):
      out["options"][b, j, :len(option)] = option
      out["option_length"][b, j] = len(option)
  return out


def shared_option_scores(config: DecoderConfig, params: Any, context: jax.Array,
                         context_length: jax.Array, options: jax.Array,
                         option_length: jax.Array, bidirectional_context: bool = True,
                         greedy: bool = False) -> tuple[jax.Array, ...]:
  """Per-option summed and per-token log-probs, the context encoded once per item.

  Args:
    context: int [B, C], left-padded with 0 (``context_length`` [B] real tokens at the end).
    options: int [B, K, A] target tokens, right-padded; ``option_length`` [B, K] (0 = no option).
    bidirectional_context: prefix LM (FLAN) when True; plain causal LM (e.g. HF Llama) when False.
    greedy: also return whether each option is the greedy continuation (lm-eval's ``is_greedy``).

  Returns:
    scores [B, K] (sum of log-probs; 0 for missing options) and token log-probs [B, K, A]
    (+ is-greedy [B, K] bool with ``greedy``).
  """
  b, c = context.shape
  _, k, a = options.shape
  model = Decoder(config)
  slots = jnp.arange(c)[None, :]  # [1, C]
  pad = (c - context_length)[:, None]  # [B, 1]
  in_context = slots >= pad  # [B, C]
  cache = init_cache(config, b, c + max(a - 1, 1))
  logits, state = model.apply(
      {"params": params, "cache": cache}, context,
      decoder_segment_ids=in_context.astype(jnp.int32),
      decoder_positions=jnp.maximum(slots - pad, 0).astype(jnp.int32),
      decoder_causal_attention=in_context & bidirectional_context,
      decode=True, last_logits_only=True, mutable=["cache"])
  first = jax.nn.log_softmax(logits[:, -1], axis=-1)  # [B, V]: predicts every option's a_1.
  is_argmax = [(jnp.argmax(first, -1)[:, None] == options[:, :, 0])[..., None]]  # [B, K, 1]
  first = jnp.take_along_axis(first, options[:, :, 0], axis=-1)  # [B, K]
  token_lp = [first[..., None]]
  if a > 1:  # Options' inputs a_1..a_{A-1} against the repeated context cache.
    steps = jnp.arange(a - 1)[None, None, :]  # [1, 1, A-1]
    valid = steps < (option_length[..., None] - 1)  # [B, K, A-1]
    positions = jnp.broadcast_to(context_length[:, None, None] + steps, valid.shape)
    rest, _ = model.apply(
        {"params": params, "cache": cache_lib.repeat(state["cache"], k)},
        options[..., :-1].reshape(b * k, a - 1),
        decoder_segment_ids=valid.reshape(b * k, a - 1).astype(jnp.int32),
        decoder_positions=positions.reshape(b * k, a - 1).astype(jnp.int32),
        decoder_causal_attention=jnp.zeros((b * k, a - 1), bool),
        decode=True, mutable=["cache"])  # [B*K, A-1, V]
    rest = jax.nn.log_softmax(rest, axis=-1)
    is_argmax.append((jnp.argmax(rest, -1) == options[..., 1:].reshape(b * k, a - 1)).reshape(
        b, k, a - 1))
    rest = jnp.take_along_axis(rest, options[..., 1:].reshape(b * k, a - 1, 1), axis=-1)
    token_lp.append(rest.reshape(b, k, a - 1))
  token_lp = jnp.concatenate(token_lp, axis=-1)  # [B, K, A]
  mask = jnp.arange(a)[None, None, :] < option_length[..., None]
  token_lp = jnp.where(mask, token_lp, 0.0)
  if greedy:
    return token_lp.sum(-1), token_lp, jnp.all(jnp.concatenate(is_argmax, -1) | ~mask, -1)
  return token_lp.sum(-1), token_lp


@functools.partial(jax.jit, static_argnames=("config", "bidirectional_context", "greedy"))
def _shared_scores_jit(config, params, context, context_length, options, option_length,
                       bidirectional_context, greedy=False):
  out = shared_option_scores(config, params, context, context_length, options, option_length,
                             bidirectional_context, greedy)
  return (out[0], out[2]) if greedy else out[0]


@functools.partial(jax.jit, static_argnames=("config",))
def _score_batch_jit(config, params, batch):
  return score_batch(config, params, batch)


def score_items(config: DecoderConfig, params: Any, items: Sequence[Item], batch_size: int = 8,
                bidirectional_context: bool = True, progress: bool = False,
                greedy: bool = False) -> list[Any]:
  """Option scores (summed log-probs) of every item, prefix-shared, ``batch_size`` items a call
  (with ``greedy``: ``(scores, is_greedy)`` per item).

  Items are processed longest context first (as lm-eval does: similar lengths share a batch and
  the first batch is the largest); each batch is padded to ``batch_size`` with copies of its first
  item so every call has the same batch shape. ``params`` on a multi-device mesh (``device_put``
  with :func:`flan_jax.parallel.partitioning.param_shardings`): batches run data-parallel over it
  (:func:`flan_jax.parallel.partitioning.place_batch_like`).
  """
  order = sorted(range(len(items)), key=lambda i: -len(items[i].context))
  out: list[np.ndarray | None] = [None] * len(items)
  batches = batching.padded_batches(len(order), batch_size)
  if progress:
    import tqdm
    batches = tqdm.tqdm(list(batches), desc="score", unit="batch")
  for idx in batches:
    chunk = [order[j] for j in idx if j != batching.PAD]
    batch_items = [items[order[j]] for j in batching.filled(idx)]
    arrays, _ = partitioning.place_batch_like(params, pack_items(batch_items))
    result = _shared_scores_jit(config, params, bidirectional_context=bidirectional_context,
                                greedy=greedy, **arrays)
    scores, is_greedy = (np.asarray(result[0]), np.asarray(result[1])) if greedy else (
        np.asarray(result), None)
    for row, i in enumerate(chunk):
      n = len(items[i].options)
      out[i] = (scores[row, :n], is_greedy[row, :n]) if greedy else scores[row, :n]
  return out  # type: ignore[return-value]


def per_option_features(items: Sequence[Item], length: int | None = None,
                        bidirectional_context: bool = True) -> dict[str, np.ndarray]:
  """One right-padded DecoderFeatureConverter-style row per (item, option): the naive layout."""
  rows = [(it.context, o) for it in items for o in it.options]
  n = length or max(len(ctx) + len(o) - 1 for ctx, o in rows)
  feats = {k: np.zeros((len(rows), n), np.int32) for k in
           ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
            "decoder_causal_attention")}
  for r, (ctx, opt) in enumerate(rows):
    seq = np.concatenate([ctx, opt[:-1]])  # Model inputs.
    feats["decoder_input_tokens"][r, :len(seq)] = seq
    feats["decoder_target_tokens"][r, :len(seq)] = np.concatenate([ctx[1:], opt])
    feats["decoder_loss_weights"][r, len(ctx) - 1:len(seq)] = 1
    if bidirectional_context:
      feats["decoder_causal_attention"][r, :len(ctx)] = 1
  return feats


def score_items_per_option(config: DecoderConfig, params: Any, items: Sequence[Item],
                           batch_size: int = 32, bidirectional_context: bool = True,
                           length: int | None = None) -> list[np.ndarray]:
  """The reference path: every option in its own row through :func:`score_batch`."""
  feats = per_option_features(items, length, bidirectional_context)
  if not bidirectional_context:
    del feats["decoder_causal_attention"]
  n = len(feats["decoder_input_tokens"])
  scores = []
  for idx in batching.padded_batches(n, batch_size):
    chunk = {k: v[batching.filled(idx)] for k, v in feats.items()}
    scores.append(np.asarray(_score_batch_jit(config, params, chunk))[idx != batching.PAD])
  flat = np.concatenate(scores)
  out, start = [], 0
  for it in items:
    out.append(flat[start:start + len(it.options)])
    start += len(it.options)
  return out
