"""Random tiny Llama directories with offline-trained tokenizers, for lm-eval comparisons.

Three tokenizer styles: ``bos`` (byte-level BPE whose post-processor adds ``<s>``), ``none``
(byte-level BPE, no BOS token at all) and ``llama2`` (Metaspace ``▁`` with prepend_scheme
"first", byte fallback, adds ``<s>``, the Llama-2 layout).
"""

from __future__ import annotations

import os

CORPUS = [
    "Answer the question: is the sky blue? yes no maybe. Question: which one? Answer:",
    "Le café est très bon, naïve façade. Réponse : oui non",
    "The quick brown fox jumps over the lazy dog.\n\nOPTIONS:\n- yes\n- no\n- maybe",
    "日本語のテキスト　です。 émoji 🙂 test\ttab  double  spaces",
] * 10
STYLES = ("bos", "none", "llama2")
VOCAB = 420


def make_tokenizer(style: str, path: str):
  """Trains and saves (``save_pretrained``) a tokenizer of ``style``; returns it."""
  import tokenizers
  import transformers
  from tokenizers import decoders, models, pre_tokenizers, processors, trainers
  if style == "llama2":
    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first",
                                                 split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    alphabet = []
  else:
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
  tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
      vocab_size=VOCAB, special_tokens=special, initial_alphabet=alphabet, show_progress=False))
  if style != "none":
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, bos_token=None if style == "none" else "<s>", eos_token="</s>",
      unk_token="<unk>")
  fast.save_pretrained(path)
  return fast


def make_llama_dir(path: str, style: str, max_position_embeddings: int = 64, seed: int = 0,
                   num_layers: int = 2, d_model: int = 32):
  """A random LlamaForCausalLM (float32) + a ``style`` tokenizer saved in ``path``.

  ``config.json`` keeps LlamaConfig's default ``bos_token_id=1`` even for the ``none`` style
  (as real exports do): flan_jax must follow the tokenizer, not the config."""
  import torch
  import transformers
  os.makedirs(path, exist_ok=True)
  make_tokenizer(style, path)
  torch.manual_seed(seed)
  config = transformers.LlamaConfig(
      vocab_size=VOCAB, hidden_size=d_model, intermediate_size=2 * d_model,
      num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
      max_position_embeddings=max_position_embeddings, bos_token_id=1, eos_token_id=2,
      rms_norm_eps=1e-5, tie_word_embeddings=False)
  model = transformers.LlamaForCausalLM(config).eval()
  with torch.no_grad():  # Sharper distributions than the 0.02-std init, so decisions differ.
    for name, p in model.named_parameters():
      if "norm" not in name:
        p.mul_(8.0)
  model.save_pretrained(path)
  return model


# (context, continuation) requests: contexts ending in spaces and newlines, empty contexts,
# non-ASCII options, and one request longer than max_position_embeddings=64.
QUESTIONS = [
    ("Question: is the sky blue?\nAnswer:", [" yes", " no", " maybe"]),
    ("Answer the question: which one? Answer: ", ["yes", "no", "oui"]),
    ("Le café est très bon.\n", ["Réponse : oui", "Réponse : non"]),
    ("OPTIONS:\n- yes\n- no\n\n", ["yes", "no"]),
    ("", [" yes", "naïve façade", "日本語"]),
    ("The quick brown fox " * 12 + "jumps over the\n", [" lazy dog.", "café"]),
    ("émoji 🙂 test\t", ["tab", " double  spaces"]),
]


def requests() -> list[tuple[str, str]]:
  return [(c, o) for c, options in QUESTIONS for o in options]
