"""Notebook entry point: ``flan_jax.load(path)`` -> a :class:`Model` with ``.logits``.

``path`` is a flan_jax model directory (``model_config.json`` + ``checkpoint_<step>/``, see
:mod:`flan_jax.model_checkpoint`) or a Hugging Face Llama-family directory (``config.json`` +
safetensors), imported in memory.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import Decoder, DecoderConfig


class Model:
  """A decoder with its parameters (and vocabulary when a tokenizer was found)."""

  def __init__(self, config: DecoderConfig, params: Any, vocabulary: Any = None,
               path: str | None = None):
    self.config = config
    self.params = jax.tree.map(jnp.asarray, params)
    self.vocabulary = vocabulary
    self.path = path
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

  def __repr__(self) -> str:
    return f"Model({self.path!r}, {self.config.num_params()} parameters)"


def _is_hf_dir(path: str) -> bool:
  config = os.path.join(path, "config.json")
  if not os.path.exists(config):
    return False
  with open(config) as f:
    return "model_type" in json.load(f)


def _vocabulary(path: str):
  if os.path.exists(os.path.join(path, "tokenizer.json")):
    try:
      from flan_jax.hf_vocab import HfTokenizerVocabulary
      return HfTokenizerVocabulary.from_dir(path)
    except ImportError:
      return None
  return None


def load(path: str, dtype: str | None = None, step: int | None = None) -> Model:
  """Loads a flan_jax or Hugging Face model directory (``dtype`` overrides compute dtype)."""
  from flan_jax import model_checkpoint
  if _is_hf_dir(path) and not os.path.exists(os.path.join(path, model_checkpoint.CONFIG_FILE)):
    from flan_jax import hf_interop
    config, params = hf_interop.load_hf(path, dtype=dtype or "float32")
  else:
    config = model_checkpoint.load_config(path)
    if dtype:
      config = config.replace(dtype=dtype)
    params = model_checkpoint.restore_params(path, config, step=step)
  return Model(config, params, _vocabulary(path), path)
