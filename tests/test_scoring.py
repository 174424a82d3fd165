"""Scoring: prefix-shared rank classification == one row per option == PyTorch transformers."""

import os

import jax
import numpy as np
import pytest

from flan_jax.inference import scoring
from flan_jax.models import DecoderConfig, init_params

CONFIGS = {
    "relative": DecoderConfig(vocab_size=97, num_layers=2, d_model=32, num_heads=4, head_dim=8,
                              d_ff=64, dtype="float32", relative_bidirectional=True),
    "rope_gqa": DecoderConfig(vocab_size=97, num_layers=2, d_model=32, num_heads=4,
                              num_kv_heads=2, head_dim=8, d_ff=64, dtype="float32",
                              position="rope", activation="swiglu", tie_embeddings=False,
                              scan_layers=False),
}


def _items(n: int = 7, seed: int = 0, vocab: int = 97, first: int = 0) -> list[scoring.Item]:
  """Items with varied context lengths, option counts (2-4) and option lengths (1-5)."""
  rng = np.random.default_rng(seed)
  items = []
  for _ in range(n):
    ctx = rng.integers(2, vocab, rng.integers(3, 30)).astype(np.int32)
    ctx[0] = first
    options = [rng.integers(2, vocab, rng.integers(1, 6)).astype(np.int32)
               for _ in range(rng.integers(2, 5))]
    items.append(scoring.Item(ctx, options))
  items[1].options[0] = items[1].options[1].copy()  # Duplicate options score identically.
  return items


def _params(cfg: DecoderConfig):
  return init_params(cfg, jax.random.key(1))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_prefix_shared_equals_per_option(name):
  cfg = CONFIGS[name]
  params, items = _params(cfg), _items()
  naive = scoring.score_items_per_option(cfg, params, items, batch_size=5)
  shared = scoring.score_items(cfg, params, items, batch_size=3)
  for want, got in zip(naive, shared, strict=True):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  assert np.all(np.concatenate(naive) < 0)
  np.testing.assert_allclose(shared[1][0], shared[1][1], atol=1e-6)


def test_scores_do_not_depend_on_batch_size():
  cfg = CONFIGS["relative"]
  params, items = _params(cfg), _items(9, seed=4)
  runs = [np.concatenate(scoring.score_items(cfg, params, items, batch_size=bs))
          for bs in (1, 3, 8)]
  for other in runs[1:]:
    np.testing.assert_allclose(other, runs[0], atol=1e-5, rtol=0)


def test_causal_context_matches_per_option():
  cfg = CONFIGS["rope_gqa"]
  params, items = _params(cfg), _items(5, seed=2)
  naive = scoring.score_items_per_option(cfg, params, items, bidirectional_context=False)
  shared = scoring.score_items(cfg, params, items, bidirectional_context=False)
  np.testing.assert_allclose(np.concatenate(shared), np.concatenate(naive), atol=1e-5)
  # And the prefix-LM context really is different from a causal one.
  prefix = scoring.score_items(cfg, params, items)
  assert np.abs(np.concatenate(prefix) - np.concatenate(shared)).max() > 1e-3


def test_group_rows_from_features_round_trip():
  items = _items(4, seed=3)
  feats = scoring.per_option_features(items)
  n = len(feats["decoder_input_tokens"])
  rows = [(i, {k: v[i] for k, v in feats.items()}) for i in range(n)]
  rows = rows[::-1]  # Grouping does not rely on order; it keeps each row's index.
  grouped = scoring.group_rows(rows)
  assert len(grouped) == len(items)
  by_context = {g.context.tobytes(): g for g in grouped}
  flat = 0
  offsets = []
  for it in items:
    offsets.append(flat)
    flat += len(it.options)
  for it, offset in zip(items, offsets, strict=True):
    g = by_context[it.context.tobytes()]
    order = np.argsort(g.rows)
    assert [g.rows[i] for i in order] == list(range(offset, offset + len(it.options)))
    for i, j in enumerate(order):
      np.testing.assert_array_equal(g.options[j], it.options[i])


def test_split_row_rejects_rows_without_inputs():
  row = {"decoder_input_tokens": np.array([0, 5, 6]), "decoder_target_tokens": np.array([5, 6, 1]),
         "decoder_loss_weights": np.array([1, 1, 1]),
         "decoder_causal_attention": np.array([0, 0, 0])}
  with pytest.raises(ValueError, match="prefix-LM"):
    scoring.split_row(row)


def test_rank_scores_match_pytorch_transformers(tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from flan_jax.interop import hf as hf_interop
  torch.manual_seed(0)
  hf_cfg = transformers.LlamaConfig(
      vocab_size=128, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
      tie_word_embeddings=False, max_position_embeddings=256)
  model = transformers.LlamaForCausalLM(hf_cfg).eval()
  with torch.no_grad():
    for n, p in model.named_parameters():
      if "norm" in n:
        p.uniform_(0.5, 1.5)
  path = os.path.join(tmp_path, "hf")
  model.save_pretrained(path)
  cfg, params = hf_interop.load_hf(path)
  items = _items(6, seed=5, vocab=128, first=1)  # Llama contexts start with BOS (1).

  want = []
  with torch.no_grad():
    for it in items:
      scores = []
      for opt in it.options:
        ids = torch.as_tensor(np.concatenate([it.context, opt])[None].astype(np.int64))
        logp = torch.log_softmax(model(ids).logits.double(), -1)[0]
        c = len(it.context)
        scores.append(sum(float(logp[c - 1 + m, int(t)]) for m, t in enumerate(opt)))
      want.append(np.array(scores))
  got = scoring.score_items(cfg, params, items, batch_size=4, bidirectional_context=False)
  np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), atol=1e-4, rtol=0)
