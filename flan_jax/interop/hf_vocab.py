"""A seqio ``Vocabulary`` around a Hugging Face ``tokenizer.json`` (the ``tokenizers`` library).

    vocab = HfTokenizerVocabulary.from_dir(model_dir)   # tokenizer.json (+ tokenizer_config.json)
    flan_jax.data.vocab.set_default_vocabulary(vocab)        # every flan_jax task now uses it

seqio pads with id 0 and stops decoding at ``eos_id``. Many HF tokenizers give id 0 a real token
(Llama 2: ``<unk>``; Llama 3: ``!``); such a token is then indistinguishable from padding in
seqio's feature converters, which is harmless for ``<unk>`` but worth knowing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import seqio


def _special_id(tokenizer, value) -> int | None:
  if value is None:
    return None
  if isinstance(value, dict):
    value = value.get("content")
  if isinstance(value, int):
    return value
  return tokenizer.token_to_id(value)


TOKENIZER_CONFIG_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def load_tokenizer(model_dir: str):
  """The directory's Hugging Face tokenizer (``transformers.AutoTokenizer``, as lm-eval's
  ``HFLM`` loads it), or None when the directory has no tokenizer files."""
  if not any(os.path.exists(os.path.join(model_dir, n)) for n in TOKENIZER_CONFIG_FILES):
    return None
  try:
    import transformers
  except ImportError as e:
    raise ImportError(f"{model_dir} has a Hugging Face tokenizer; reading it needs transformers "
                      "(pip install 'flan_jax[hf]')") from e
  return transformers.AutoTokenizer.from_pretrained(model_dir)


class HfTokenizerVocabulary(seqio.Vocabulary):
  """Encodes without adding BOS/EOS (seqio appends EOS itself); decodes skipping specials."""

  def __init__(self, tokenizer_file: str, eos_id: int | None = None, unk_id: int | None = None,
               extra_ids: int = 0):
    from tokenizers import Tokenizer
    self._path = os.path.abspath(tokenizer_file)
    self._tokenizer = Tokenizer.from_file(self._path)
    self._eos_id = eos_id
    self._unk_id = unk_id
    super().__init__(extra_ids=extra_ids)

  @classmethod
  def from_dir(cls, model_dir: str, **kwargs) -> HfTokenizerVocabulary:
    """Reads EOS/UNK from tokenizer_config.json, config.json or hf_config.json (import-hf)."""
    vocab = cls(os.path.join(model_dir, "tokenizer.json"), **kwargs)
    for name in ("tokenizer_config.json", "config.json", "hf_config.json"):
      path = os.path.join(model_dir, name)
      if not os.path.exists(path):
        continue
      with open(path) as f:
        meta = json.load(f)
      if vocab._eos_id is None:
        eos = meta.get("eos_token_id", meta.get("eos_token"))
        vocab._eos_id = _special_id(vocab._tokenizer, eos[0] if isinstance(eos, list) else eos)
      if vocab._unk_id is None:
        vocab._unk_id = _special_id(vocab._tokenizer, meta.get("unk_token"))
    return vocab

  @property
  def tokenizer(self):
    return self._tokenizer

  @property
  def eos_id(self) -> int | None:
    return self._eos_id

  @property
  def unk_id(self) -> int | None:
    return self._unk_id

  @property
  def _base_vocab_size(self) -> int:
    return self._tokenizer.get_vocab_size(with_added_tokens=True)

  def _encode(self, s: str) -> Sequence[int]:
    return self._tokenizer.encode(s, add_special_tokens=False).ids

  def _decode(self, ids: Sequence[int]) -> str:
    ids = [int(i) for i in ids if 0 <= int(i) < self._base_vocab_size and int(i) != self._eos_id]
    return self._tokenizer.decode(ids, skip_special_tokens=True)

  def _encode_tf(self, s):
    import tensorflow as tf

    def encode_batch(strings):
      flat = [x.decode("utf-8") for x in strings.numpy().reshape(-1)]
      ids = [e.ids for e in self._tokenizer.encode_batch(flat, add_special_tokens=False)]
      values = [i for row in ids for i in row]
      return (tf.constant(values, tf.int32, shape=[len(values)]),
              tf.constant([len(r) for r in ids], tf.int64, shape=[len(ids)]))

    s = tf.convert_to_tensor(s, tf.string)
    if s.shape.rank == 0:
      return self._encode_tf(tf.reshape(s, [1]))[0]
    values, lengths = tf.py_function(encode_batch, [s], [tf.int32, tf.int64])
    values.set_shape([None])
    lengths.set_shape([None])
    return tf.RaggedTensor.from_row_lengths(values, lengths)

  def _decode_tf(self, ids):
    import tensorflow as tf

    def decode_batch(x):
      rows = x.numpy().reshape(-1, x.shape[-1]) if x.shape.rank else x.numpy().reshape(1, -1)
      return tf.constant([self._decode(r.tolist()) for r in rows])

    ids = tf.convert_to_tensor(ids)
    out = tf.py_function(decode_batch, [ids], tf.string)
    return tf.reshape(out, tf.shape(ids)[:-1])

  def __eq__(self, other) -> bool:
    return isinstance(other, HfTokenizerVocabulary) and other._path == self._path and (
        other._eos_id == self._eos_id)

  def __hash__(self) -> int:
    return hash((self._path, self._eos_id))


# --- SentencePiece -> Hugging Face tokenizer -------------------------------------------------


def sentencepiece_tokenizer(sp_model: bytes):
  """A ``tokenizers.Tokenizer`` (Unigram) that encodes and decodes as the SentencePiece model
  ``sp_model`` (serialized ``ModelProto``) does, following its normalizer spec: the precompiled
  normalization map, the dummy-prefix ``▁``, whitespace kept or collapsed, byte fallback."""
  import tokenizers
  from sentencepiece import sentencepiece_model_pb2
  from tokenizers import Regex, decoders, normalizers, pre_tokenizers
  proto = sentencepiece_model_pb2.ModelProto()
  proto.ParseFromString(sp_model)
  spec, trainer = proto.normalizer_spec, proto.trainer_spec
  if trainer.model_type != sentencepiece_model_pb2.TrainerSpec.UNIGRAM:
    raise ValueError("only Unigram SentencePiece models convert (got model_type "
                     f"{trainer.model_type})")
  tokenizer = tokenizers.Tokenizer(tokenizers.models.Unigram(
      [(p.piece, p.score) for p in proto.pieces], trainer.unk_id, trainer.byte_fallback))
  steps = [normalizers.Precompiled(spec.precompiled_charsmap)] if spec.precompiled_charsmap else []
  if spec.remove_extra_whitespaces:
    steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
  # SentencePiece prepends "▁" even to text that starts with whitespace (Metaspace would not).
  steps += [normalizers.Prepend("▁")] if spec.add_dummy_prefix else []
  tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
  tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
      replacement="▁", prepend_scheme="never", split=trainer.split_by_whitespace)
  tokenizer.decoder = decoders.Sequence(
      [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
      + ([decoders.Strip(" ", 1, 0)] if spec.add_dummy_prefix else []))
  specials = {}
  for name, index in (("pad_token", trainer.pad_id), ("eos_token", trainer.eos_id),
                      ("unk_token", trainer.unk_id), ("bos_token", trainer.bos_id)):
    if 0 <= index < len(proto.pieces):
      specials[name] = proto.pieces[index].piece
  tokenizer.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                                for t in specials.values()])
  return tokenizer, specials


def save_sentencepiece_tokenizer(sp_model: bytes, out_dir: str,
                                 model_max_length: int | None = None) -> dict[str, int | None]:
  """Writes ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json`` for
  ``transformers.AutoTokenizer`` (no BOS is added: seqio's SentencePiece models have none).
  Returns the ``bos_token_id`` / ``eos_token_id`` / ``pad_token_id`` for ``config.json``."""
  tokenizer, specials = sentencepiece_tokenizer(sp_model)
  os.makedirs(out_dir, exist_ok=True)
  tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
  config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
            "add_bos_token": False, "add_eos_token": False, **specials}
  if model_max_length:
    config["model_max_length"] = model_max_length
  with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
    json.dump(config, f, indent=2)
  with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
    json.dump(specials, f, indent=2)
  return {f"{name[:-len('_token')]}_token_id": tokenizer.token_to_id(specials.get(name))
          if name in specials else None for name in ("bos_token", "eos_token", "pad_token")}
