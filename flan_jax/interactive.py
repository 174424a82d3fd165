"""Notebook entry point: ``flan_jax.load(path)`` -> a :class:`Model`.

    model = flan_jax.load("demo_out/model")
    model.rank("Is the sky blue?\n\nOPTIONS:\n- yes\n- no", ["yes", "no"])
    model.score(["Translate to French: cat"], ["chat"])
    model.generate("Answer the question: ...", max_new_tokens=32)

``path`` is a flan_jax model directory (``model_config.json`` + ``checkpoint_<step>/``, see
:mod:`flan_jax.model_checkpoint`) or a Hugging Face Llama-family directory (``config.json`` +
safetensors), imported in memory.

Strings go through the model's vocabulary with the layout the model was trained on. flan_jax
models are prefix LMs in seqio's DecoderFeatureConverter layout: the context is ``[0] + inputs +
[EOS]`` (bidirectional) and targets end with EOS, exactly as the eval tasks score them. Hugging
Face models are causal LMs scored as lm-eval does: ``[BOS] + encode(context)`` and the target is
the tail of ``encode(context + target)`` after the context's tokens. Token ids (lists of ints)
are used as given: the context as the model's input prefix, the targets as the scored tokens.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax import scoring
from flan_jax.models import Decoder, DecoderConfig

Text = str | Sequence[int]


@dataclasses.dataclass
class Ranking:
  """Options ranked by log-likelihood: ``scores`` (summed), ``best`` index and text."""

  scores: np.ndarray
  best: int
  option: Any
  per_token: np.ndarray  # scores / option token counts
  best_per_token: int


class Model:
  """A decoder with its parameters (and vocabulary when a tokenizer was found).

  ``prefix_lm``: the model reads its context bidirectionally (flan_jax / t5x decoder-only
  models); False for causal LMs such as imported Hugging Face Llamas.
  """

  def __init__(self, config: DecoderConfig, params: Any, vocabulary: Any = None,
               path: str | None = None, prefix_lm: bool = True, bos_id: int | None = None,
               eos_id: int = 1, batch_size: int = 8):
    self.config = config
    self.params = jax.tree.map(jnp.asarray, params)
    self.vocabulary = vocabulary
    self.path = path
    self.prefix_lm = prefix_lm
    self.bos_id = bos_id
    self.eos_id = eos_id
    self.batch_size = batch_size
    self.module = Decoder(config)
    self._logits = jax.jit(lambda p, tokens: self.module.apply({"params": p}, tokens))

  def logits(self, token_ids: Any) -> np.ndarray:
    """token_ids [B, T] (or [T]) int -> float32 logits [B, T, vocab] (numpy)."""
    tokens = np.asarray(token_ids, np.int32)
    if tokens.ndim == 1:
      tokens = tokens[None]
    return np.asarray(self._logits(self.params, jnp.asarray(tokens)))

  def encode(self, text: str) -> list[int]:
    if self.vocabulary is None:
      raise ValueError("this model has no vocabulary; pass token ids")
    return list(self.vocabulary.encode(text))

  # --- scoring, ranking and generation ---------------------------------------------------------

  def _context(self, inputs: Text) -> np.ndarray:
    """The model-input prefix of ``inputs`` (token ids are used as given)."""
    if not isinstance(inputs, str):
      return np.asarray([int(t) for t in inputs], np.int32)
    ids = self.encode(inputs)
    if self.prefix_lm:
      return np.asarray([0, *ids, self.eos_id], np.int32)
    prefix = [self.bos_id] if self.bos_id is not None else []
    return np.asarray(prefix + ids, np.int32)

  def _target(self, inputs: Text, target: Text) -> np.ndarray:
    if not isinstance(target, str):
      return np.asarray([int(t) for t in target], np.int32)
    if self.prefix_lm:
      return np.asarray([*self.encode(target), self.eos_id], np.int32)
    if not isinstance(inputs, str):
      return np.asarray(self.encode(target), np.int32)
    context = self.encode(inputs)  # lm-eval: split encode(context + target) after the context.
    whole = self.encode(inputs + target)
    if whole[:len(context)] != context:
      return np.asarray(self.encode(target), np.int32)
    return np.asarray(whole[len(context):], np.int32)

  def score(self, inputs: Text | Sequence[Text], targets: Text | Sequence[Text]) -> np.ndarray:
    """log p(target | input) summed over the target tokens (t5x ``score_batch``), per pair."""
    single = isinstance(inputs, str) or (len(inputs) and isinstance(inputs[0], (int, np.integer)))
    ins = [inputs] if single else list(inputs)
    tgts = [targets] if single else list(targets)
    if len(ins) != len(tgts):
      raise ValueError(f"got {len(ins)} inputs but {len(tgts)} targets")
    items = [scoring.Item(self._context(i), [self._target(i, t)])
             for i, t in zip(ins, tgts, strict=True)]
    scores = np.array([s[0] for s in scoring.score_items(
        self.config, self.params, items, self.batch_size, self.prefix_lm)])
    return scores[0] if single else scores

  def rank(self, inputs: Text, options: Sequence[Text]) -> Ranking:
    """Rank classification of ``options`` given ``inputs`` (context encoded once)."""
    if not len(options):
      raise ValueError("rank needs at least one option")
    targets = [self._target(inputs, o) for o in options]
    item = scoring.Item(self._context(inputs), targets)
    scores = scoring.score_items(self.config, self.params, [item], 1, self.prefix_lm)[0]
    per_token = scores / np.array([len(t) for t in targets])
    best = int(np.argmax(scores))
    return Ranking(scores, best, options[best], per_token, int(np.argmax(per_token)))

  def generate(self, inputs: Text | Sequence[Text], max_new_tokens: int = 64,
               method: str = "greedy", seed: int = 0, **kwargs: Any) -> Any:
    """Decodes from ``inputs`` with the KV cache (see :func:`flan_jax.decoding.decode` for
    ``method`` = greedy | sample | beam and its options). Strings in, strings out."""
    from flan_jax import decoding
    single = isinstance(inputs, str) or (len(inputs) and isinstance(inputs[0], (int, np.integer)))
    ins = [inputs] if single else list(inputs)
    prompts = [self._context(i) for i in ins]
    tokens, lengths = decoding.left_pad(prompts)
    out = decoding.decode(self.config, self.params, jnp.asarray(tokens), jnp.asarray(lengths),
                          max_new_tokens=max_new_tokens, eos_id=self.eos_id,
                          bidirectional_prompt=self.prefix_lm, method=method,
                          rng=jax.random.key(seed), **kwargs)
    results = []
    for row, source in zip(np.asarray(out["tokens"]), ins, strict=True):
      ids = decoding.until_eos(row, self.eos_id, drop_padding=self.prefix_lm)
      results.append(self.vocabulary.decode(ids) if isinstance(source, str) else ids)
    return results[0] if single else results

  def __repr__(self) -> str:
    return f"Model({self.path!r}, {self.config.num_params()} parameters)"


def _vocabulary(path: str, config: DecoderConfig):
  """The directory's tokenizer.json; else flan_jax's default (seqio) vocabulary when it fits."""
  if os.path.exists(os.path.join(path, "tokenizer.json")):
    try:
      from flan_jax.hf_vocab import HfTokenizerVocabulary
      return HfTokenizerVocabulary.from_dir(path)
    except ImportError:
      return None
  from flan_jax import vocab as vocab_lib
  vocabulary = vocab_lib.vocabulary()
  return vocabulary if vocabulary.vocab_size <= config.vocab_size else None


def load(path: str, dtype: str | None = None, step: int | None = None) -> Model:
  """Loads a flan_jax or Hugging Face model directory (``dtype`` overrides compute dtype)."""
  from flan_jax import hf_interop, model_checkpoint
  if hf_interop.is_hf_model_dir(path):
    config, params = hf_interop.load_hf(path, dtype=dtype or "float32")
    with open(os.path.join(path, "config.json")) as f:
      hf = json.load(f)
    vocabulary = _vocabulary(path, config)
    eos = hf.get("eos_token_id", getattr(vocabulary, "eos_id", None))
    eos = eos[0] if isinstance(eos, list) else eos
    return Model(config, params, vocabulary, path, prefix_lm=False,
                 bos_id=hf.get("bos_token_id"), eos_id=1 if eos is None else int(eos))
  config = model_checkpoint.load_config(path)
  if dtype:
    config = config.replace(dtype=dtype)
  params = model_checkpoint.restore_params(path, config, step=step)
  return Model(config, params, _vocabulary(path, config), path)
