"""Hugging Face Llama interop: logits parity after import and after export (fp32, T >= 256)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from flan_jax.interop import hf as hf_interop  # noqa: E402
from flan_jax.models import Decoder  # noqa: E402
from flan_jax.models import checkpoint as model_checkpoint  # noqa: E402

SEQ = 272


def _make_hf(tmp_path, name, *, kv_heads, tied, theta, vocab=256):
  torch.manual_seed(0)
  config = transformers.LlamaConfig(
      vocab_size=vocab, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=16, rms_norm_eps=1e-5,
      tie_word_embeddings=tied, max_position_embeddings=512,
      rope_parameters={"rope_type": "default", "rope_theta": theta})
  model = transformers.LlamaForCausalLM(config).eval()
  with torch.no_grad():  # Non-trivial norms, so a swapped norm would be caught.
    for n, p in model.named_parameters():
      if "norm" in n:
        p.uniform_(0.5, 1.5)
  path = os.path.join(tmp_path, name)
  model.save_pretrained(path)
  return model, path


def _hf_logits(model, tokens):
  with torch.no_grad():
    return model(torch.as_tensor(np.array(tokens))).logits.numpy()


def _tokens(vocab=256):
  return np.asarray(jax.random.randint(jax.random.key(3), (2, SEQ), 0, vocab), np.int32)


@pytest.mark.parametrize("kv_heads,tied,theta", [(2, False, 50_000.0), (4, True, 500.0)])
def test_import_export_parity(tmp_path, kv_heads, tied, theta):
  hf_model, hf_dir = _make_hf(tmp_path, "hf", kv_heads=kv_heads, tied=tied, theta=theta)
  tokens = _tokens()
  want = _hf_logits(hf_model, tokens)

  cfg, params = hf_interop.load_hf(hf_dir)
  assert cfg.kv_heads == kv_heads and cfg.tie_embeddings == tied and cfg.rope_theta == theta
  got = Decoder(cfg).apply({"params": params}, jnp.asarray(tokens))
  assert np.abs(np.asarray(got) - want).max() < 1e-4

  # import-hf -> flan_jax dir -> export-hf -> transformers.from_pretrained.
  flan_dir, out_dir = os.path.join(tmp_path, "flan"), os.path.join(tmp_path, "out")
  assert hf_interop.main_import([hf_dir, flan_dir, "--dtype", "float32"]) == 0
  assert hf_interop.main_export([flan_dir, out_dir]) == 0
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(out_dir).eval()
  assert np.abs(_hf_logits(reloaded, tokens) - want).max() < 1e-4
  source = hf_model.config
  assert reloaded.config.max_position_embeddings == source.max_position_embeddings == 512
  assert (reloaded.config.bos_token_id, reloaded.config.eos_token_id) == (
      source.bos_token_id, source.eos_token_id)
  generation = transformers.GenerationConfig.from_pretrained(out_dir)
  assert generation.eos_token_id == source.eos_token_id


def test_sharded_export_and_unscanned_import(tmp_path):
  hf_model, hf_dir = _make_hf(tmp_path, "hf", kv_heads=1, tied=False, theta=10_000.0)
  cfg, params = hf_interop.load_hf(hf_dir, scan_layers=False)
  assert "layers_1" in params
  out_dir = os.path.join(tmp_path, "sharded")
  hf_interop.save_hf(out_dir, cfg, params, max_shard_bytes=200_000)
  with open(os.path.join(out_dir, "model.safetensors.index.json")) as f:
    assert len(set(json.load(f)["weight_map"].values())) > 1
  cfg2, params2 = hf_interop.load_hf(out_dir)  # Sharded import.
  tokens = _tokens()[:, :64]
  got = Decoder(cfg2).apply({"params": params2}, jnp.asarray(tokens))
  assert np.abs(np.asarray(got) - _hf_logits(hf_model, tokens)).max() < 1e-4


def test_mismatched_checkpoint_names_parameter_and_shapes(tmp_path):
  _, hf_dir = _make_hf(tmp_path, "hf", kv_heads=2, tied=True, theta=10_000.0)
  flan_dir = os.path.join(tmp_path, "flan")
  hf_interop.import_hf(hf_dir, flan_dir, dtype="float32")
  cfg = model_checkpoint.load_config(flan_dir)
  with pytest.raises(ValueError, match=r"different model config: d_ff \(checkpoint 172, asked "
                                       r"200\)"):
    model_checkpoint.restore_params(flan_dir, cfg.replace(d_ff=200))
  with open(os.path.join(hf_dir, "config.json")) as f:
    hf_cfg = json.load(f)
  hf_cfg["intermediate_size"] = 200
  with open(os.path.join(hf_dir, "config.json"), "w") as f:
    json.dump(hf_cfg, f)
  with pytest.raises(ValueError, match=r"wi_0.*\(2, 64, 172\).*\(2, 64, 200\)"):
    hf_interop.load_hf(hf_dir)


def test_load_and_tokenizer_vocabulary(tmp_path):
  tokenizers = pytest.importorskip("tokenizers")
  from flan_jax.inference import interactive
  from flan_jax.interop.hf_vocab import HfTokenizerVocabulary

  hf_model, hf_dir = _make_hf(tmp_path, "hf", kv_heads=2, tied=True, theta=10_000.0, vocab=300)
  words = ["<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(297)]
  tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)},
                                                         unk_token="<unk>"))
  tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
  tok.decoder = tokenizers.decoders.WordPiece()
  tok.save(os.path.join(hf_dir, "tokenizer.json"))
  with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
    json.dump({"eos_token": "</s>", "unk_token": "<unk>"}, f)

  vocab = HfTokenizerVocabulary.from_dir(hf_dir)
  assert vocab.eos_id == 1 and vocab.unk_id == 2 and vocab.vocab_size == 300
  ids = vocab.encode("w5 w17 w3")
  assert list(ids) == [8, 20, 6]
  assert vocab.decode(list(ids) + [1, 9]) == "w5 w17 w3"  # Stops at EOS.
  assert [int(i) for i in vocab.encode_tf("w5 w17").numpy()] == [8, 20]

  tokens = np.array([ids + [7, 7, 9]], np.int32)
  want = _hf_logits(hf_model, tokens)
  for path in (hf_dir, os.path.join(tmp_path, "flan")):
    if path != hf_dir:
      hf_interop.import_hf(hf_dir, path, dtype="float32")
    model = interactive.load(path)
    assert model.vocabulary is not None and model.encode("w5 w17 w3") == list(ids)
    got = model.logits(tokens)
    assert got.shape == (1, 6, 300) and isinstance(got, np.ndarray)
    assert np.abs(got - want).max() < 1e-4
