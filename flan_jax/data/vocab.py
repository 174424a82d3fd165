"""Vocabularies: the project's SentencePiece model, seqio's ByteVocabulary, chosen by gin.

Tasks are registered at import time, before gin files are parsed, so their output features hold
:data:`DEFAULT_VOCABULARY`, a proxy that resolves to :func:`vocabulary` (gin-configurable) the first
time it is used. ``--gin.vocabulary.kind="'byte'"`` switches every task to bytes;
:func:`set_default_vocabulary` installs any other ``seqio.Vocabulary`` (e.g. an imported model's).
"""

from __future__ import annotations

import os

import gin
import seqio
import tensorflow as tf

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")  # flan_jax/assets
DEFAULT_SPM_PATH = os.path.join(ASSETS_DIR, "flan_jax_world.spm.model")


@gin.configurable
def vocabulary(kind: str = "sentencepiece", sentencepiece_model: str | None = None,
               extra_ids: int = 0) -> seqio.Vocabulary:
  """Builds the vocabulary named by ``kind``: ``"sentencepiece"`` or ``"byte"``."""
  if kind == "sentencepiece":
    path = sentencepiece_model or DEFAULT_SPM_PATH
    if not os.path.exists(path):
      raise FileNotFoundError(
          f"SentencePiece model {path} not found. Rebuild the project's model with "
          "`python -m flan_jax.build_vocab`, or choose bytes with gin/vocab/byte.gin.")
    return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
  if kind == "byte":
    return seqio.ByteVocabulary(extra_ids=extra_ids)
  raise ValueError(f"Unknown vocabulary kind {kind!r}; use 'sentencepiece' or 'byte'.")


class _DefaultVocabulary(seqio.Vocabulary):
  """Proxy that resolves the configured vocabulary lazily and delegates everything to it."""

  def __init__(self):
    super().__init__(extra_ids=0)
    self._delegate: seqio.Vocabulary | None = None

  @property
  def delegate(self) -> seqio.Vocabulary:
    if self._delegate is None:
      self._delegate = vocabulary()
    return self._delegate

  def set(self, vocab: seqio.Vocabulary | None) -> None:
    self._delegate = vocab

  # seqio.Vocabulary's public interface, delegated.
  @property
  def eos_id(self):
    return self.delegate.eos_id

  @property
  def pad_id(self):
    return self.delegate.pad_id

  @property
  def unk_id(self):
    return self.delegate.unk_id

  @property
  def vocab_size(self):
    return self.delegate.vocab_size

  @property
  def _base_vocab_size(self):
    return self.delegate.vocab_size

  def encode(self, s):
    return self.delegate.encode(s)

  def decode(self, ids):
    return self.delegate.decode(ids)

  def encode_tf(self, s):
    return self.delegate.encode_tf(s)

  def decode_tf(self, ids):
    return self.delegate.decode_tf(ids)

  def _encode(self, s):
    return self.delegate.encode(s)

  def _decode(self, ids):
    return self.delegate.decode(ids)

  def _encode_tf(self, s):
    return self.delegate.encode_tf(s)

  def _decode_tf(self, ids):
    return self.delegate.decode_tf(ids)

  def __eq__(self, other):
    other = other.delegate if isinstance(other, _DefaultVocabulary) else other
    return self.delegate == other

  def __hash__(self):
    return id(self)


DEFAULT_VOCABULARY = _DefaultVocabulary()


def set_default_vocabulary(vocab: seqio.Vocabulary | None) -> None:
  """Makes every registered flan_jax task use ``vocab`` (None: back to the gin choice)."""
  DEFAULT_VOCABULARY.set(vocab)


def output_features(vocab: seqio.Vocabulary | None = None) -> dict[str, seqio.Feature]:
  """FLAN's "delimited LM" features: optional ``inputs`` and ``targets``, both with EOS."""
  vocab = vocab or DEFAULT_VOCABULARY
  return {
      "inputs": seqio.Feature(vocabulary=vocab, add_eos=True, required=False),
      "targets": seqio.Feature(vocabulary=vocab, add_eos=True),
  }


def token_lengths(vocab: seqio.Vocabulary, strings: tf.Tensor) -> tf.Tensor:
  """Tokens in each string of the 1-D ``strings`` (int64 ``[n]``) under ``vocab``.

  seqio's ``encode_tf`` is batched (ragged) for SentencePiece but scalar-only for
  ``ByteVocabulary``, whose token count is the UTF-8 byte count; any other vocabulary is encoded
  string by string.
  """
  while isinstance(vocab, _DefaultVocabulary):
    vocab = vocab.delegate
  if isinstance(vocab, seqio.ByteVocabulary):
    return tf.cast(tf.strings.length(strings, unit="BYTE"), tf.int64)
  if isinstance(vocab, seqio.SentencePieceVocabulary):
    return vocab.encode_tf(strings).row_lengths()
  return tf.map_fn(lambda s: tf.size(vocab.encode_tf(s), out_type=tf.int64), strings,
                   fn_output_signature=tf.int64)
