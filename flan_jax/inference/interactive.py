"""Notebook entry point: ``flan_jax.load(path)`` -> a :class:`Model`.

    model = flan_jax.load("demo_out/model")
    model.rank("Is the sky blue?\n\nOPTIONS:\n- yes\n- no", ["yes", "no"])
    model.score(["Translate to French: cat"], ["chat"])
    model.generate("Answer the question: ...", max_new_tokens=32)

``path`` is a flan_jax model directory (``model_config.json`` + ``checkpoint_<step>/``, see
:mod:`flan_jax.models.checkpoint`), one ``checkpoint_<step>`` inside it, an ``import-hf`` output or
a Hugging Face Llama-family directory (``config.json`` + safetensors), imported in memory.

Strings go through the model's vocabulary with the layout the model was trained on. flan_jax
models are prefix LMs in seqio's DecoderFeatureConverter layout: the context is ``[0] + inputs +
[EOS]`` (bidirectional) and targets end with EOS, exactly as the eval tasks score them. Causal
models (Hugging Face directories and ``import-hf`` outputs) follow lm-evaluation-harness exactly
(see README, "lm-eval conventions"): the tokenizer's own special tokens, trailing context
whitespace moved into the continuation, the continuation = the tail of ``encode(context +
continuation)``, an empty context conditioned on BOS (EOS when the tokenizer has no BOS), left
truncation to ``max_position_embeddings``. Token ids (lists of ints) are used as given: the
context as the model's input prefix, the targets as the scored tokens.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.inference import scoring
from flan_jax.interop import loading
from flan_jax.models import Decoder, DecoderConfig
from flan_jax.parallel import partitioning

Text = str | Sequence[int]


@dataclasses.dataclass
class Ranking:
  """Options ranked by log-likelihood: ``scores`` (summed), ``best`` index and text.

  ``per_token`` / ``per_char`` / ``per_byte`` divide the scores by each option's token count,
  character count (lm-eval ``acc_norm``) and UTF-8 byte count (``acc_bytes``); characters and
  bytes are counted without the option's leading whitespace (lm-eval's target delimiter) and are
  ``None`` for token-id options.
  """

  scores: np.ndarray
  best: int
  option: Any
  per_token: np.ndarray  # scores / option token counts
  best_per_token: int
  per_char: np.ndarray | None = None
  best_per_char: int | None = None
  per_byte: np.ndarray | None = None
  best_per_byte: int | None = None


class Model:
  """A decoder with its parameters (and vocabulary when a tokenizer was found).

  ``prefix_lm``: the model reads its context bidirectionally (flan_jax / t5x decoder-only
  models); False for causal LMs such as imported Hugging Face Llamas. ``tokenizer``: the Hugging
  Face tokenizer of a causal model (``transformers.AutoTokenizer``), which decides BOS/EOS as
  lm-eval's ``HFLM`` does. ``max_length``: lm-eval's maximum length (``max_position_embeddings``);
  longer requests are truncated from the left. ``bos_id`` is only used for token-id requests.
  """

  def __init__(self, config: DecoderConfig, params: Any, vocabulary: Any = None,
               path: str | None = None, prefix_lm: bool = True, bos_id: int | None = None,
               eos_id: int = 1, batch_size: int = 8, tokenizer: Any = None,
               max_length: int | None = None):
    self.config = config
    self.params = jax.tree.map(jnp.asarray, params)
    self.vocabulary = vocabulary
    self.path = path
    self.prefix_lm = prefix_lm
    self.bos_id = bos_id
    self.eos_id = eos_id
    self.batch_size = batch_size
    self.tokenizer = tokenizer
    self.max_length = max_length
    self.module = Decoder(config)
    self._logits = jax.jit(lambda p, tokens: self.module.apply({"params": p}, tokens))

  def logits(self, token_ids: Any) -> np.ndarray:
    """token_ids [B, T] (or [T]) int -> float32 logits [B, T, vocab] (numpy)."""
    tokens = np.asarray(token_ids, np.int32)
    if tokens.ndim == 1:
      tokens = tokens[None]
    return np.asarray(self._logits(self.params, jnp.asarray(tokens)))

  # --- tokenization ------------------------------------------------------------------------

  def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
    """Token ids of ``text``. Causal models with a Hugging Face tokenizer add its special tokens
    as ``tokenizer.encode`` does (``None``: the tokenizer's default, not when ``text`` already
    starts with the BOS string, as lm-eval's ``HFLM.tok_encode``); others never add any."""
    if self.tokenizer is not None:
      if add_special_tokens is None:
        bos = self.tokenizer.decode(self.prefix_token_id)
        add_special_tokens = False if bos and text.startswith(bos) else None
      kwargs = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
      return list(self.tokenizer.encode(text, **kwargs))
    if self.vocabulary is None:
      raise ValueError("this model has no vocabulary; pass token ids")
    return [int(i) for i in self.vocabulary.encode(text)]

  def decode(self, ids: Sequence[int]) -> str:
    if self.tokenizer is not None:
      return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)
    if self.vocabulary is None:
      raise ValueError("this model has no vocabulary")
    return self.vocabulary.decode([int(i) for i in ids])

  @property
  def prefix_token_id(self) -> int:
    """The token an empty context is conditioned on: lm-eval's ``prefix_token_id`` (the
    tokenizer's BOS, else its EOS) for causal models; seqio's shifted-in 0 for prefix LMs."""
    if self.prefix_lm:
      return 0
    if self.tokenizer is not None:
      bos = self.tokenizer.bos_token_id
      return self.tokenizer.eos_token_id if bos is None else bos
    return self.eos_id if self.bos_id is None else self.bos_id

  def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) of a request, as lm-eval's ``TemplateLM.loglikelihood``
    and ``_encode_pair``: trailing context whitespace moves into the continuation, the
    continuation is the tail of ``encode(context + continuation)`` after ``encode(context)``,
    an empty context becomes ``[prefix_token_id]``. Prefix LMs get ``[0]`` in front."""
    if context == "":
      cont = self.encode(continuation, add_special_tokens=False)
      prefix = self.prefix_token_id
      if not cont:
        raise ValueError(f"continuation {continuation!r} encodes to no tokens")
      return ([prefix], cont) if cont[0] != prefix else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
      context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = self.encode(context + continuation)
    ctx = self.encode(context)
    cont = whole[len(ctx):]
    return ([0, *ctx] if self.prefix_lm else ctx), cont

  def _truncate(self, context: Sequence[int], cont: Sequence[int]) -> tuple[list[int], list[int]]:
    """lm-eval's left truncation: the model reads ``(context + cont)[-(max_length + 1):][:-1]``."""
    context, cont = list(context), list(cont)
    if not cont:
      raise ValueError("a continuation with no tokens cannot be scored")
    if self.max_length is None or len(context) + len(cont) <= self.max_length + 1:
      return context, cont
    if len(cont) > self.max_length:
      raise ValueError(f"a continuation of {len(cont)} tokens exceeds max_length "
                       f"{self.max_length}; shorten it or raise max_length")
    whole = (context + cont)[-(self.max_length + 1):]
    return whole[:len(whole) - len(cont)], cont

  def loglikelihood_tokens(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]
                           ) -> list[tuple[float, bool]]:
    """(sum log p(cont | context), cont is the greedy continuation) per (context ids,
    continuation ids) request, lm-eval's ``_loglikelihood_tokens``: requests sharing a context
    are scored with the context encoded once (prefix sharing), ``batch_size`` contexts a call."""
    items: dict[bytes, scoring.Item] = {}
    for index, (context, cont) in enumerate(requests):
      context, cont = self._truncate(context, cont)
      key = np.asarray(context, np.int32).tobytes()
      if key not in items:
        items[key] = scoring.Item(np.asarray(context, np.int32), [])
      items[key].options.append(np.asarray(cont, np.int32))
      items[key].rows.append(index)
    grouped = list(items.values())
    calls = -(-len(grouped) // self.batch_size)  # Even batches: no padding copies in the last.
    results = scoring.score_items(self.config, self.params, grouped, -(-len(grouped) // calls),
                                  self.prefix_lm, greedy=True)
    out: list[tuple[float, bool] | None] = [None] * len(requests)
    for item, (scores, greedy) in zip(grouped, results, strict=True):
      for row, score, is_greedy in zip(item.rows, scores, greedy, strict=True):
        out[row] = (float(score), bool(is_greedy))
    return out  # type: ignore[return-value]

  def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
    """lm-eval's ``loglikelihood`` on (context, continuation) strings."""
    return self.loglikelihood_tokens([self.encode_pair(c, x) for c, x in requests])

  # --- scoring, ranking and generation ---------------------------------------------------------

  def _context(self, inputs: Text) -> np.ndarray:
    """The model-input prefix of ``inputs`` (token ids are used as given)."""
    if not isinstance(inputs, str):
      return np.asarray([int(t) for t in inputs], np.int32)
    if self.prefix_lm:
      return np.asarray([0, *self.encode(inputs), self.eos_id], np.int32)
    if not inputs:
      return np.asarray([self.prefix_token_id], np.int32)
    return np.asarray(self.encode(inputs), np.int32)

  def _pair(self, inputs: Text, target: Text) -> tuple[list[int], list[int]]:
    """(context, target) token ids of one request in the model's layout (see module doc)."""
    if isinstance(inputs, str) and isinstance(target, str) and not self.prefix_lm:
      return self.encode_pair(inputs, target)
    context = self._context(inputs).tolist()
    if not isinstance(target, str):
      return context, [int(t) for t in target]
    if self.prefix_lm:
      return context, [*self.encode(target), self.eos_id]
    return context, self.encode(target, add_special_tokens=False)

  def score(self, inputs: Text | Sequence[Text], targets: Text | Sequence[Text]) -> np.ndarray:
    """log p(target | input) summed over the target tokens (t5x ``score_batch``), per pair."""
    single = isinstance(inputs, str) or (len(inputs) and isinstance(inputs[0], (int, np.integer)))
    ins = [inputs] if single else list(inputs)
    tgts = [targets] if single else list(targets)
    if len(ins) != len(tgts):
      raise ValueError(f"got {len(ins)} inputs but {len(tgts)} targets")
    scores = np.array([s for s, _ in self.loglikelihood_tokens(
        [self._pair(i, t) for i, t in zip(ins, tgts, strict=True)])])
    return scores[0] if single else scores

  def rank(self, inputs: Text, options: Sequence[Text]) -> Ranking:
    """Rank classification of ``options`` given ``inputs`` (context encoded once)."""
    if not len(options):
      raise ValueError("rank needs at least one option")
    pairs = [self._pair(inputs, o) for o in options]
    scores = np.array([s for s, _ in self.loglikelihood_tokens(pairs)])
    per_token = scores / np.array([len(t) for _, t in pairs])
    best = int(np.argmax(scores))
    ranking = Ranking(scores, best, options[best], per_token, int(np.argmax(per_token)))
    if all(isinstance(o, str) for o in options):
      stripped = [o.lstrip() or o for o in options]
      ranking.per_char = scores / np.array([max(len(o), 1) for o in stripped])
      ranking.per_byte = scores / np.array([max(len(o.encode("utf-8")), 1) for o in stripped])
      ranking.best_per_char = int(np.argmax(ranking.per_char))
      ranking.best_per_byte = int(np.argmax(ranking.per_byte))
    return ranking

  def generate(self, inputs: Text | Sequence[Text], max_new_tokens: int = 64,
               method: str = "greedy", seed: int = 0, **kwargs: Any) -> Any:
    """Decodes from ``inputs`` with the KV cache (see :func:`flan_jax.inference.decoding.decode` for
    ``method`` = greedy | sample | beam and its options). Strings in, strings out."""
    from flan_jax.inference import decoding
    single = isinstance(inputs, str) or (len(inputs) and isinstance(inputs[0], (int, np.integer)))
    ins = [inputs] if single else list(inputs)
    prompts = [self._context(i) for i in ins]
    if self.max_length is not None:  # lm-eval: prompts keep their last max_length - new tokens.
      keep = self.max_length - max_new_tokens
      if keep < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt within "
                         f"max_length {self.max_length}")
      prompts = [p[-keep:] for p in prompts]
    tokens, lengths = decoding.left_pad(prompts)
    batch, _ = partitioning.place_batch_like(self.params, {"tokens": tokens, "lengths": lengths})
    out = decoding.decode(self.config, self.params, batch["tokens"], batch["lengths"],
                          max_new_tokens=max_new_tokens, eos_id=self.eos_id,
                          bidirectional_prompt=self.prefix_lm, method=method,
                          rng=jax.random.key(seed), **kwargs)
    results = []
    for row, source in zip(np.asarray(out["tokens"])[:len(ins)], ins, strict=True):
      ids = decoding.until_eos(row, self.eos_id, drop_padding=self.prefix_lm)
      results.append(self.decode(ids) if isinstance(source, str) else ids)
    return results[0] if single else results

  def __repr__(self) -> str:
    return f"Model({self.path!r}, {self.config.num_params()} parameters)"


def _vocabulary(path: str, config: DecoderConfig):
  """The directory's tokenizer.json; else flan_jax's default (seqio) vocabulary when it fits."""
  if os.path.exists(os.path.join(path, "tokenizer.json")):
    try:
      from flan_jax.interop.hf_vocab import HfTokenizerVocabulary
      return HfTokenizerVocabulary.from_dir(path)
    except ImportError:
      return None
  from flan_jax.data import vocab as vocab_lib
  vocabulary = vocab_lib.vocabulary()
  return vocabulary if vocabulary.vocab_size <= config.vocab_size else None


def _causal_model(path: str, config: DecoderConfig, params: Any, hf: dict, **kwargs) -> Model:
  """A causal Model with the source's tokenizer, BOS/EOS ids and max_position_embeddings."""
  from flan_jax.interop import hf_vocab
  tokenizer = hf_vocab.load_tokenizer(path)
  vocabulary = _vocabulary(path, config)
  eos = hf.get("eos_token_id")
  if eos is None:
    eos = getattr(tokenizer, "eos_token_id", None) or getattr(vocabulary, "eos_id", None)
  eos = eos[0] if isinstance(eos, list) else eos
  bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else hf.get(
      "bos_token_id")
  return Model(config, params, vocabulary, path, prefix_lm=False, bos_id=bos,
               eos_id=1 if eos is None else int(eos), tokenizer=tokenizer,
               max_length=hf.get("max_position_embeddings"), **kwargs)


def load(path: str, dtype: str | None = None, step: int | None = None,
         batch_size: int = 8) -> Model:
  """Loads a flan_jax model directory (or one of its ``checkpoint_<step>`` dirs), an
  ``import-hf`` output or a Hugging Face directory (``dtype`` overrides the compute dtype;
  Hugging Face directories default to float32)."""
  loaded = loading.load_model(path, dtype=dtype, step=step, what="path")
  if loaded.hf_config is not None:  # A Hugging Face directory or an import-hf output: causal.
    return _causal_model(loaded.model_dir, loaded.config, loaded.params, loaded.hf_config,
                         batch_size=batch_size)
  return Model(loaded.config, loaded.params, _vocabulary(loaded.model_dir, loaded.config),
               loaded.model_dir, batch_size=batch_size)
