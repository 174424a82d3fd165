"""export-hf of every preset: remote-code model with logits parity, tokenizer, atomicity."""

import json
import os
import random

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flan_jax.data import vocab as vocab_lib  # noqa: E402
from flan_jax.interop import hf as hf_interop  # noqa: E402
from flan_jax.models import Decoder, init_params  # noqa: E402
from flan_jax.models import checkpoint as model_checkpoint  # noqa: E402
from flan_jax.models.gin_config import config_from_gin  # noqa: E402

TINY = config_from_gin(["gin/models/tiny.gin"])


def _model_dir(tmp_path, cfg, name="model", seed=0):
  params = init_params(cfg, jax.random.key(seed))
  params = jax.tree.map(  # Non-trivial norms (a swapped norm would show).
      lambda p: p if p.ndim > 1 else p + jax.random.uniform(jax.random.key(1), p.shape), params)
  path = str(tmp_path / name)
  model_checkpoint.save_params(path, params, cfg, step=5)
  return path, params


def _hf_logits(out_dir, tokens, prefix=None):
  model = transformers.AutoModelForCausalLM.from_pretrained(out_dir, trust_remote_code=True).eval()
  kwargs = {} if prefix is None else {"decoder_causal_attention": torch.as_tensor(prefix)}
  with torch.no_grad():
    return model(torch.as_tensor(tokens), **kwargs).logits.numpy()


@pytest.mark.parametrize("variant", ["tiny", "rope_tied_scaled_gqa", "gelu_untied_bidir"])
def test_every_preset_exports_with_logits_parity(tmp_path, variant):
  cfg = {"tiny": TINY,
         "rope_tied_scaled_gqa": TINY.replace(position="rope", activation="swiglu",
                                              num_kv_heads=2, scan_layers=False),
         "gelu_untied_bidir": TINY.replace(activation="gelu", tie_embeddings=False,
                                           relative_bidirectional=True)}[variant]
  path, params = _model_dir(tmp_path, cfg)
  out = str(tmp_path / "hf")
  assert hf_interop.main_export([path, out]) == 0
  with open(os.path.join(out, "config.json")) as f:
    config = json.load(f)
  assert config["architectures"] == ["FlanJaxForCausalLM"] and config["prefix_lm"] is True
  assert config["eos_token_id"] == 1 and config["max_position_embeddings"] == 2048
  tokens = np.asarray(jax.random.randint(jax.random.key(2), (2, 150), 1, cfg.vocab_size))
  prefix = np.zeros(tokens.shape, bool)
  prefix[0, :40], prefix[1, :7] = True, True
  for mask in (None, prefix):  # Causal (lm-eval's framing) and prefix-LM (FLAN's).
    want = Decoder(cfg).apply({"params": params}, tokens, decoder_causal_attention=mask)
    got = _hf_logits(out, tokens, mask)
    assert np.abs(got - np.asarray(want)).max() < 1e-4


def _strings(n=300):
  rng = random.Random(0)
  alphabet = (list("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"-\n\t") + list(
      "éèçàüßñøåæœ日本語中文한국어🙂😀—–…«»€£ﬁ①Å") + ["  ", "   ", "\u00a0", "\u3000"])
  fixed = ["Hello world", " leading", "trailing ", "a  b", "", " ", "naïve café", "ﬁne ①",
           "Is the sky blue?\n\nOPTIONS:\n- yes\n- no", "Premise: x\tHypothesis: y  \n"]
  return fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
                  for _ in range(n - len(fixed))]


def test_tokenizer_round_trips_the_sentencepiece_model(tmp_path):
  path, _ = _model_dir(tmp_path, TINY.replace(num_layers=1))
  out = str(tmp_path / "hf")
  hf_interop.export_hf(path, out)
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  sp = vocab_lib.vocabulary()
  assert tokenizer.eos_token_id == sp.eos_id == 1 and tokenizer.pad_token_id == 0
  assert tokenizer.bos_token_id is None
  strings = _strings()
  encoded = [list(sp.encode(s)) for s in strings]
  assert [tokenizer.encode(s) for s in strings] == encoded  # No BOS/EOS added, as seqio.
  assert [tokenizer.decode(ids) for ids in encoded] == [sp.decode(ids) for ids in encoded]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
  path, _ = _model_dir(tmp_path, TINY.replace(num_layers=1))
  out = tmp_path / "hf"

  def fail(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(hf_interop, "_write_safetensors", fail)
  with pytest.raises(OSError, match="disk full"):
    hf_interop.export_hf(path, str(out))
  assert sorted(os.listdir(tmp_path)) == ["model"]  # No OUT_DIR, no temporary sibling.
  monkeypatch.undo()
  assert hf_interop.main_export([path, str(out), "--format", "llama"]) == 1  # Clear error.
  assert sorted(os.listdir(tmp_path)) == ["model"]
  assert hf_interop.main_export([os.path.join(path, "checkpoint_5"), str(out)]) == 0
  assert hf_interop.main_export([path, str(out)]) == 1  # Exists: refused without --overwrite.
  assert hf_interop.main_export([path, str(out), "--overwrite"]) == 0
  assert sorted(os.listdir(tmp_path)) == ["hf", "model"]


def test_trained_tiny_model_exports_with_logits_parity(tmp_path):
  """A gin/models/tiny.gin model trained a few steps by the real trainer, then `flan-jax
  export-hf` on its MODEL_DIR: trust_remote_code logits match flan_jax's, tokenizer round-trips."""
  from flan_jax import cli
  from flan_jax import train as train_lib
  from flan_jax.inference import interactive
  from flan_jax.training import config as training
  model_dir = str(tmp_path / "trained")
  train_lib.train(model_dir=model_dir, model_config=TINY,
                  mixture_or_task_name="demo_heldout_nli_train",
                  task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=4, batch_size=8,
                  log_period=10, progress=False,
                  optimizer_cfg=training.OptimizerConfig(learning_rate=1e-2),
                  checkpoint_cfg=training.CheckpointConfig(period=4),
                  partitioning_cfg=training.PartitioningConfig("data=-1,model=1"))
  assert model_checkpoint.steps(model_dir) == [4]
  trained = model_checkpoint.restore_params(model_dir, TINY, step=4)
  initial = init_params(TINY, jax.random.key(0))
  assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
      jax.tree.leaves(trained), jax.tree.leaves(initial), strict=True)) > 1e-3  # Really trained.
  out = str(tmp_path / "hf")
  cli.main(["export-hf", model_dir, out])  # The user's command line.
  with open(os.path.join(out, "config.json")) as f:
    assert json.load(f)["architectures"] == ["FlanJaxForCausalLM"]
  with pytest.raises(SystemExit) as refused:  # OUT_DIR exists: a failing exit status.
    cli.main(["export-hf", model_dir, out])
  assert refused.value.code == 1
  ours = interactive.load(model_dir)
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  texts = ["Premise: the cat sat.\nHypothesis: a cat sat.\nOPTIONS:\n- yes\n- no",
           "naïve café 日本語 🙂", "Is the sky blue?"]
  encoded = [ours.encode(t) for t in texts]
  assert [tokenizer.encode(t) for t in texts] == encoded
  assert [tokenizer.decode(ids) for ids in encoded] == [ours.decode(ids) for ids in encoded]
  tokens = np.zeros((len(texts), max(map(len, encoded))), np.int32)
  for row, ids in enumerate(encoded):
    tokens[row, :len(ids)] = ids
  np.testing.assert_array_less(np.abs(_hf_logits(out, tokens) - ours.logits(tokens)), 1e-4)
  prefix = np.zeros(tokens.shape, bool)
  prefix[:, :5] = True
  want = Decoder(TINY).apply({"params": trained}, tokens, decoder_causal_attention=prefix)
  np.testing.assert_array_less(np.abs(_hf_logits(out, tokens, prefix) - np.asarray(want)), 1e-4)
