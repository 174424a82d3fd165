"""The project's SentencePiece model: shipped = rebuilt, lossless enough, gin-switchable."""

import gin
import seqio

from flan_jax import build_vocab
from flan_jax.data import vocab


def test_shipped_model_is_reproducible():
  with open(vocab.DEFAULT_SPM_PATH, "rb") as f:
    shipped = f.read()
  assert build_vocab.train() == shipped, (
      "flan_jax/assets/flan_jax_world.spm.model is stale: run `python -m flan_jax.build_vocab`")


def test_round_trip_and_special_ids():
  v = vocab.vocabulary()
  assert (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2)
  text = "Mira lives in Oakton.\n\nOPTIONS:\n- yes\n- no — Überraschung 日本"
  ids = v.encode(text)
  assert v.decode(ids) == text  # byte fallback covers anything outside the world's text
  # World text is compressed well below one piece per character. (Since the reading-comprehension
  # passages about visitors joined the training text, some people's names, e.g. "Mira", are no
  # longer single pieces: 10 pieces here, 8 before.)
  assert len(v.encode("Mira lives in Oakton.")) <= 10
  assert len(v.encode("Oakton")) == 1  # a town of the world is one piece


def test_answer_words_are_single_pieces_as_targets():
  """Targets are encoded on their own (with the dummy "▁" prefix): every one-word answer of the
  offline suite must be one piece there, or rank classification favours the shorter words (the
  model built from inputs and targets joined by a newline split "yes" into "▁" + "yes" while "no"
  was one piece, and an untuned model answered "no" to everything)."""
  import flan_jax.tasks.offline  # noqa: F401 - registers the offline suite.
  from flan_jax.data.offline import world
  v = vocab.vocabulary()
  words = set(world.YES_NO) | set(world.SENTIMENT) | {x for vs in world.VALUES.values() for x in vs}
  split = {w: v.encode(w) for w in sorted(words) if len(v.encode(w)) != 1}
  assert not split, f"answer words split into several pieces: {split}"


def test_gin_switches_to_bytes():
  try:
    gin.parse_config_file("gin/vocab/byte.gin")
    v = vocab.vocabulary()
    assert isinstance(v, seqio.ByteVocabulary)
  finally:
    gin.clear_config()
  assert isinstance(vocab.vocabulary(), seqio.SentencePieceVocabulary)


def test_default_vocabulary_proxy_can_be_replaced():
  try:
    vocab.set_default_vocabulary(seqio.ByteVocabulary())
    assert vocab.DEFAULT_VOCABULARY.encode("ab") == [97 + 3, 98 + 3]
  finally:
    vocab.set_default_vocabulary(None)
  assert vocab.DEFAULT_VOCABULARY.vocab_size == vocab.vocabulary().vocab_size
