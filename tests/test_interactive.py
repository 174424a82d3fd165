"""flan_jax.load(path): .score / .rank / .generate on strings and token ids."""

import jax
import numpy as np
import pytest
import seqio
import tensorflow as tf

import flan_jax
from flan_jax.data import vocab
from flan_jax.inference import scoring
from flan_jax.models import DecoderConfig, init_params
from flan_jax.models import checkpoint as model_checkpoint

CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32")
QUESTION = "Is the sky blue?\n\nOPTIONS:\n- yes\n- no\n- maybe"
OPTIONS = ["yes", "no", "maybe"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("model"))
  model_checkpoint.save_params(path, init_params(CFG, jax.random.key(0)), CFG, step=3)
  return flan_jax.load(path)


def _seqio_scores(inputs, targets):
  """t5x score_batch on seqio's DecoderFeatureConverter features of the same strings."""
  v = vocab.vocabulary()
  rows = {"inputs": [list(v.encode(i)) + [1] for i in inputs],
          "targets": [list(v.encode(t)) + [1] for t in targets]}
  ds = tf.data.Dataset.from_generator(
      lambda: ({"inputs": np.array(i, np.int32), "targets": np.array(t, np.int32)}
               for i, t in zip(rows["inputs"], rows["targets"], strict=True)),
      output_signature={"inputs": tf.TensorSpec([None], tf.int32),
                        "targets": tf.TensorSpec([None], tf.int32)})
  ds = seqio.DecoderFeatureConverter(pack=False)(ds, {"inputs": 64, "targets": 16})
  batch = next(ds.batch(len(inputs)).as_numpy_iterator())
  params = init_params(CFG, jax.random.key(0))
  return np.asarray(scoring.score_batch(CFG, params, batch))


def test_score_matches_seqio_feature_layout(model):
  inputs = [QUESTION] * 3
  got = model.score(inputs, OPTIONS)
  np.testing.assert_allclose(got, _seqio_scores(inputs, OPTIONS), atol=1e-5)
  assert model.score(QUESTION, "yes") == pytest.approx(got[0], abs=1e-6)


def test_rank_equals_scoring_each_option(model):
  ranking = model.rank(QUESTION, OPTIONS)
  np.testing.assert_allclose(ranking.scores, model.score([QUESTION] * 3, OPTIONS), atol=1e-5)
  assert ranking.best == int(np.argmax(ranking.scores))
  assert ranking.option == OPTIONS[ranking.best]
  lengths = [len(model.encode(o)) + 1 for o in OPTIONS]
  np.testing.assert_allclose(ranking.per_token, ranking.scores / lengths, atol=1e-6)


def test_token_ids_are_used_as_given(model):
  context = [0, *model.encode("hello"), 1]
  target = [*model.encode("world"), 1]
  assert model.score(context, target) == pytest.approx(model.score("hello", "world"), abs=1e-6)


def test_score_length_mismatch_raises(model):
  with pytest.raises(ValueError, match="2 inputs but 1 targets"):
    model.score(["a", "b"], ["c"])


def test_generate_strings_and_ids(model):
  from flan_jax.inference import decoding
  text = model.generate(QUESTION, max_new_tokens=6)
  assert isinstance(text, str)
  context = [0, *model.encode(QUESTION), 1]
  ids = model.generate(context, max_new_tokens=6)
  tokens, lengths = decoding.left_pad([context])
  want = [int(t) for t in decoding.decode(model.config, model.params, tokens, lengths,
                                          max_new_tokens=6)["tokens"][0]]
  want = want[:want.index(1)] if 1 in want else want
  assert ids == [t for t in want if t]
  assert text == model.vocabulary.decode(ids)
  batch = model.generate([QUESTION, "Another question?"], max_new_tokens=6)
  assert batch[0] == text and len(batch) == 2


def test_hugging_face_dir_scores_like_pytorch(tmp_path):
  """A causal HF Llama loaded with flan_jax.load scores token ids as transformers does."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
      vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
      num_attention_heads=2, num_key_value_heads=1, head_dim=16, bos_token_id=1,
      eos_token_id=2, max_position_embeddings=64)).eval()
  hf.save_pretrained(tmp_path / "hf")
  model = flan_jax.load(str(tmp_path / "hf"))
  assert not model.prefix_lm and model.bos_id == 1 and model.eos_id == 2
  context, options = [1, 17, 40, 5], [[8, 9], [30], [11, 12, 13]]
  with torch.no_grad():
    want = []
    for option in options:
      logp = torch.log_softmax(hf(torch.tensor([context + option])).logits.double(), -1)[0]
      want.append(sum(float(logp[len(context) - 1 + i, t]) for i, t in enumerate(option)))
  ranking = model.rank(context, options)
  np.testing.assert_allclose(ranking.scores, want, atol=1e-4)
  assert ranking.best == int(np.argmax(want))
  ids = model.generate(context, max_new_tokens=4)
  assert len(ids) <= 4 and all(0 <= t < 96 for t in ids)
