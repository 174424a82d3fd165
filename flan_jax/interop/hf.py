"""Hugging Face Llama-family checkpoints <-> flan_jax (safetensors; no PyTorch at run time).

HF stores ``nn.Linear`` weights as [out, in]; flan_jax kernels are [in, ..., out]:

    model.embed_tokens.weight [V, d]                 token_embedder/embedding [V, d]
    layers.{i}.self_attn.q_proj.weight [H*Dh, d]     layers/attention/query [L, d, H, Dh]
    layers.{i}.self_attn.k_proj / v_proj [Hkv*Dh, d] layers/attention/key, value [L, d, Hkv, Dh]
    layers.{i}.self_attn.o_proj.weight [d, H*Dh]     layers/attention/out [L, H, Dh, d]
    layers.{i}.mlp.gate_proj / up_proj [F, d]        layers/mlp/wi_0, wi_1 [L, d, F]
    layers.{i}.mlp.down_proj.weight [d, F]           layers/mlp/wo [L, F, d]
    layers.{i}.input_layernorm / post_attention_layernorm [d]   pre_attention_norm, pre_mlp_norm
    model.norm.weight [d]                            final_norm/scale
    lm_head.weight [V, d] (absent when tied)         logits_kernel [d, V]

RoPE uses HF's half-split pairing, so q/k need no permutation. (Unscanned configs use
``layers_{i}`` without the leading L axis.)

    flan-jax import-hf HF_DIR OUT_DIR      -> OUT_DIR/{model_config.json, checkpoint_0/, tokenizer*}
    flan-jax export-hf MODEL_DIR OUT_DIR   -> config.json + model*.safetensors (+ index) + tokenizer
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.models import DecoderConfig
from flan_jax.storage import fs

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json", "tokenizer.model")
SUPPORTED_MODEL_TYPES = ("llama", "mistral")


def is_hf_model_dir(path: str) -> bool:
  """A Hugging Face model directory: ``config.json`` plus ``model.safetensors`` (or an index),
  and not a flan_jax model directory (``model_config.json``)."""
  return (os.path.isfile(os.path.join(path, "config.json"))
          and not os.path.isfile(os.path.join(path, "model_config.json"))
          and any(os.path.isfile(os.path.join(path, n))
                  for n in ("model.safetensors", "model.safetensors.index.json")))


# --- configs ----------------------------------------------------------------------------------


def _rope_theta(hf: Mapping[str, Any]) -> float:
  rope = hf.get("rope_parameters") or {}
  scaling = hf.get("rope_scaling") or {}
  rope_type = rope.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
  if rope_type not in ("default", None):
    raise ValueError(f"RoPE scaling {rope_type!r} is not supported (only 'default')")
  return float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))


def decoder_config_from_hf(hf: Mapping[str, Any], dtype: str = "float32",
                           scan_layers: bool = True) -> DecoderConfig:
  """DecoderConfig of a HF ``config.json`` (Llama family: RMSNorm, SwiGLU, RoPE)."""
  model_type = hf.get("model_type")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise ValueError(f"model_type {model_type!r} not supported; use one of {SUPPORTED_MODEL_TYPES}")
  if hf.get("hidden_act", "silu") != "silu":
    raise ValueError(f"hidden_act {hf['hidden_act']!r} not supported (Llama uses 'silu')")
  if hf.get("attention_bias") or hf.get("mlp_bias"):
    raise ValueError("attention_bias / mlp_bias are not supported")
  heads = hf["num_attention_heads"]
  return DecoderConfig(
      vocab_size=hf["vocab_size"], num_layers=hf["num_hidden_layers"], d_model=hf["hidden_size"],
      num_heads=heads, num_kv_heads=hf.get("num_key_value_heads") or heads,
      head_dim=hf.get("head_dim") or hf["hidden_size"] // heads, d_ff=hf["intermediate_size"],
      activation="swiglu", position="rope", rope_theta=_rope_theta(hf),
      norm_eps=hf.get("rms_norm_eps", 1e-6), tie_embeddings=bool(hf.get("tie_word_embeddings")),
      scale_tied_logits=False, dtype=dtype, param_dtype="float32", scan_layers=scan_layers)


def hf_config_from_decoder(cfg: DecoderConfig, torch_dtype: str = "float32",
                           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """A LlamaForCausalLM ``config.json`` for a Llama-shaped DecoderConfig."""
  if cfg.position != "rope" or cfg.activation != "swiglu":
    raise ValueError("only RoPE + SwiGLU models map onto LlamaForCausalLM "
                     f"(got position={cfg.position!r}, activation={cfg.activation!r})")
  if cfg.tie_embeddings and cfg.scale_tied_logits:
    raise ValueError("tied logits scaled by 1/sqrt(d_model) have no Llama equivalent")
  out = {
      "architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model,
      "intermediate_size": cfg.d_ff, "num_hidden_layers": cfg.num_layers,
      "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.kv_heads,
      "head_dim": cfg.head_dim, "hidden_act": "silu", "rms_norm_eps": cfg.norm_eps,
      "rope_theta": cfg.rope_theta,
      "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
      "tie_word_embeddings": cfg.tie_embeddings, "attention_bias": False, "mlp_bias": False,
      "attention_dropout": 0.0, "max_position_embeddings": 4096, "torch_dtype": torch_dtype,
      "dtype": torch_dtype,
  }
  out.update(extra or {})
  return out


# --- tensors ----------------------------------------------------------------------------------


def _safetensors_files(hf_dir: str) -> list[str]:
  index = os.path.join(hf_dir, "model.safetensors.index.json")
  if os.path.exists(index):
    with open(index) as f:
      return sorted(set(json.load(f)["weight_map"].values()))
  single = os.path.join(hf_dir, "model.safetensors")
  if os.path.exists(single):
    return ["model.safetensors"]
  raise FileNotFoundError(f"no model.safetensors(.index.json) in {hf_dir}")


class _LazyState(Mapping):
  """name -> float32 numpy array, read one tensor at a time from the safetensors files."""

  def __init__(self, hf_dir: str):
    from safetensors import safe_open
    self._handles = {}
    self._where = {}
    for name in _safetensors_files(hf_dir):
      handle = safe_open(os.path.join(hf_dir, name), framework="flax")
      self._handles[name] = handle
      for key in handle.keys():
        self._where[key] = name

  def __getitem__(self, key: str) -> np.ndarray:
    return np.asarray(self._handles[self._where[key]].get_tensor(key), np.float32)

  def __iter__(self) -> Iterator[str]:
    return iter(self._where)

  def __len__(self) -> int:
    return len(self._where)


def _layer_maps(cfg: DecoderConfig):
  """(flan path within a layer, HF suffix, HF [out, in] -> flan kernel) for each layer tensor."""
  d, h, kvh, hd = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.head_dim
  return [
      (("attention", "query"), "self_attn.q_proj.weight", lambda w: w.T.reshape(d, h, hd),
       lambda k: k.reshape(d, h * hd).T),
      (("attention", "key"), "self_attn.k_proj.weight", lambda w: w.T.reshape(d, kvh, hd),
       lambda k: k.reshape(d, kvh * hd).T),
      (("attention", "value"), "self_attn.v_proj.weight", lambda w: w.T.reshape(d, kvh, hd),
       lambda k: k.reshape(d, kvh * hd).T),
      (("attention", "out"), "self_attn.o_proj.weight", lambda w: w.T.reshape(h, hd, d),
       lambda k: k.reshape(h * hd, d).T),
      (("mlp", "wi_0"), "mlp.gate_proj.weight", lambda w: w.T, lambda k: k.T),
      (("mlp", "wi_1"), "mlp.up_proj.weight", lambda w: w.T, lambda k: k.T),
      (("mlp", "wo"), "mlp.down_proj.weight", lambda w: w.T, lambda k: k.T),
      (("pre_attention_norm", "scale"), "input_layernorm.weight", lambda w: w, lambda k: k),
      (("pre_mlp_norm", "scale"), "post_attention_layernorm.weight", lambda w: w, lambda k: k),
  ]


def _set(tree: dict, path: Sequence[str], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _get(tree: Mapping, path: Sequence[str]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def hf_state_to_params(state: Mapping[str, np.ndarray], cfg: DecoderConfig) -> dict:
  """HF tensors (name -> [out, in] array) -> flan_jax parameter tree (float32 numpy)."""
  prefix = "model." if "model.embed_tokens.weight" in state else ""
  params: dict = {}
  _set(params, ("token_embedder", "embedding"), state[f"{prefix}embed_tokens.weight"])
  _set(params, ("final_norm", "scale"), state[f"{prefix}norm.weight"])
  if not cfg.tie_embeddings:
    _set(params, ("logits_kernel",), state["lm_head.weight"].T)
  for path, suffix, to_flan, _ in _layer_maps(cfg):
    per_layer = [to_flan(state[f"{prefix}layers.{i}.{suffix}"]) for i in range(cfg.num_layers)]
    if cfg.scan_layers:
      _set(params, ("layers", *path), np.stack(per_layer))
    else:
      for i, value in enumerate(per_layer):
        _set(params, (f"layers_{i}", *path), value)
  return params


def params_to_hf_state(params: Mapping, cfg: DecoderConfig) -> dict[str, np.ndarray]:
  """flan_jax parameter tree -> HF tensor dict (LlamaForCausalLM names)."""
  state = {"model.embed_tokens.weight": np.asarray(_get(params, ("token_embedder", "embedding"))),
           "model.norm.weight": np.asarray(_get(params, ("final_norm", "scale")))}
  if not cfg.tie_embeddings:
    state["lm_head.weight"] = np.asarray(params["logits_kernel"]).T
  for path, suffix, _, to_hf in _layer_maps(cfg):
    for i in range(cfg.num_layers):
      value = (np.asarray(_get(params, ("layers", *path)))[i] if cfg.scan_layers
               else np.asarray(_get(params, (f"layers_{i}", *path))))
      state[f"model.layers.{i}.{suffix}"] = to_hf(value)
  return {k: np.ascontiguousarray(v) for k, v in state.items()}


# --- import / export --------------------------------------------------------------------------


def load_hf(hf_dir: str, dtype: str = "float32", scan_layers: bool = True):
  """(DecoderConfig, float32 numpy params) of a HF model directory; shapes are validated."""
  from flan_jax.models import abstract_params
  from flan_jax.models.checkpoint import check_shapes
  with open(os.path.join(hf_dir, "config.json")) as f:
    hf = json.load(f)
  cfg = decoder_config_from_hf(hf, dtype=dtype, scan_layers=scan_layers)
  state = _LazyState(hf_dir)
  if cfg.tie_embeddings and "lm_head.weight" in state:
    lm_head = state["lm_head.weight"]
    prefix = "model." if "model.embed_tokens.weight" in state else ""
    if not np.array_equal(lm_head, state[f"{prefix}embed_tokens.weight"]):
      raise ValueError("tie_word_embeddings is set but lm_head.weight differs from embed_tokens")
  prefix = "model." if "model.embed_tokens.weight" in state else ""
  if f"{prefix}embed_tokens.weight" in state:  # config.json vs the tensors, before reshaping.
    have = tuple(state[f"{prefix}embed_tokens.weight"].shape)
    if have != (cfg.vocab_size, cfg.d_model):
      raise ValueError(
          f"{hf_dir}/config.json says vocab_size={cfg.vocab_size}, hidden_size={cfg.d_model} but "
          f"{prefix}embed_tokens.weight has shape {have}; fix config.json (or use the config "
          "that came with these weights)")
  try:
    params = hf_state_to_params(state, cfg)
  except KeyError as e:
    raise ValueError(f"HF checkpoint {hf_dir} lacks tensor {e}") from e
  except ValueError as e:  # A reshape of a tensor whose size does not fit config.json.
    raise ValueError(f"{hf_dir}: the tensors do not fit config.json (hidden_size, heads, "
                     f"head_dim, intermediate_size): {e}") from e
  check_shapes(abstract_params(cfg), params, source=f"HF checkpoint {hf_dir}")
  return cfg, params


def copy_tokenizer(src: str, dst: str) -> list[str]:
  copied = []
  for name in TOKENIZER_FILES:
    if fs.exists(fs.join(src, name)):
      fs.makedirs(dst)
      fs.write_bytes(fs.join(dst, name), fs.read_bytes(fs.join(src, name)))
      copied.append(name)
  return copied


SOURCE_CONFIG = "hf_config.json"  # import-hf keeps the source config.json under this name.
_DTYPES = ("float32", "bfloat16", "float16")


def source_dtype(hf: Mapping[str, Any]) -> str:
  """The dtype a HF config declares (``dtype`` / ``torch_dtype``); float32 when it has none."""
  dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
  return dtype if dtype in _DTYPES else "float32"


def source_config(model_dir: str) -> dict[str, Any] | None:
  """The Hugging Face ``config.json`` an ``import-hf`` output came from (None: not imported).

  Its presence marks the model as causal (no bidirectional prefix), with the source's BOS/EOS/pad
  ids and ``max_position_embeddings``."""
  path = fs.join(model_dir, SOURCE_CONFIG)
  if not fs.exists(path):
    return None
  return json.loads(fs.read_text(path))


def import_hf(hf_dir: str, out_dir: str, dtype: str | None = None,
              scan_layers: bool = True) -> DecoderConfig:
  """Writes a flan_jax model directory (config, checkpoint_0, tokenizer, the source config as
  ``hf_config.json``) from a HF directory; ``dtype`` defaults to the source's dtype."""
  from flan_jax.models import checkpoint as model_checkpoint
  with open(os.path.join(hf_dir, "config.json")) as f:
    hf = json.load(f)
  cfg, params = load_hf(hf_dir, dtype=dtype or source_dtype(hf), scan_layers=scan_layers)
  # Never into a live run dir; a different model_config.json there is an error (save_config).
  with model_checkpoint.locked(out_dir, "flan-jax import-hf"):
    model_checkpoint.save_params(out_dir, params, cfg, step=0)
    copy_tokenizer(hf_dir, out_dir)
    fs.write_text(fs.join(out_dir, SOURCE_CONFIG), json.dumps(hf, indent=2))
  return cfg


# Architecture fields of DecoderConfig that the exported flan_jax modeling file reads.
FLAN_CONFIG_FIELDS = ("vocab_size", "num_layers", "d_model", "num_heads", "num_kv_heads",
                      "head_dim", "d_ff", "activation", "position", "relative_num_buckets",
                      "relative_max_distance", "relative_bidirectional", "rope_theta", "norm_eps",
                      "tie_embeddings", "scale_tied_logits")
REMOTE_CODE_FILES = ("configuration_flan_jax.py", "modeling_flan_jax.py")  # In flan_jax/assets.
FORMATS = ("auto", "llama", "flan_jax")
DEFAULT_MAX_POSITIONS = 2048  # lm-eval's default length for models that declare none.


def is_llama_compatible(cfg: DecoderConfig) -> bool:
  """LlamaForCausalLM computes exactly this model (causal use): RoPE, SwiGLU, unscaled logits."""
  return (cfg.position == "rope" and cfg.activation == "swiglu"
          and not (cfg.tie_embeddings and cfg.scale_tied_logits))


def flan_hf_config(cfg: DecoderConfig, prefix_lm: bool, torch_dtype: str = "float32",
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """``config.json`` of the flan_jax remote-code model (any DecoderConfig)."""
  out = {"architectures": ["FlanJaxForCausalLM"], "model_type": "flan_jax_decoder",
         "auto_map": {"AutoConfig": "configuration_flan_jax.FlanJaxConfig",
                      "AutoModelForCausalLM": "modeling_flan_jax.FlanJaxForCausalLM"},
         **{k: getattr(cfg, k) for k in FLAN_CONFIG_FIELDS}, "prefix_lm": prefix_lm,
         "torch_dtype": torch_dtype, "dtype": torch_dtype}
  out.update(extra or {})
  return out


def params_to_flan_state(params: Mapping, cfg: DecoderConfig) -> dict[str, np.ndarray]:
  """flan_jax parameter tree -> ``a.b.c`` tensor names, scanned layers as ``layers.{i}``."""
  state: dict[str, np.ndarray] = {}

  def walk(tree: Mapping, prefix: str, layer: int | None) -> None:
    for key, value in tree.items():
      name = f"{prefix}{key}"
      if isinstance(value, Mapping):
        walk(value, name + ".", layer)
      else:
        state[name] = np.asarray(value) if layer is None else np.asarray(value)[layer]

  for key, value in params.items():
    if key == "layers" and cfg.scan_layers:
      for i in range(cfg.num_layers):
        walk(value, f"layers.{i}.", i)
    elif key.startswith("layers_"):
      walk(value, f"layers.{key[len('layers_'):]}.", None)
    elif isinstance(value, Mapping):
      walk(value, f"{key}.", None)
    else:
      state[key] = np.asarray(value)
  return {k: np.ascontiguousarray(v) for k, v in state.items()}


def _save_file(tensors: Mapping[str, np.ndarray], path: str) -> None:
  """safetensors' ``save_file``; an I/O failure (disk full, ...) is the OSError it wraps."""
  from safetensors import SafetensorError
  from safetensors.numpy import save_file
  try:
    save_file(dict(tensors), path, metadata={"format": "pt"})
  except SafetensorError as e:
    code = re.search(r"os error (\d+)", str(e))
    if code is None:
      raise
    raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), path) from e


def _write_safetensors(out_dir: str, state: Mapping[str, np.ndarray], max_shard_bytes: int) -> None:
  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  for name, value in state.items():
    if shards[-1] and size + value.nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    shards[-1][name] = value
    size += value.nbytes
  if len(shards) == 1:
    _save_file(shards[0], os.path.join(out_dir, "model.safetensors"))
    return
  weight_map = {}
  for i, shard in enumerate(shards):
    name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    _save_file(shard, os.path.join(out_dir, name))
    weight_map.update({k: name for k in shard})
  index = {"metadata": {"total_size": sum(v.nbytes for v in state.values())},
           "weight_map": weight_map}
  with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
    json.dump(index, f, indent=2)


def save_hf(out_dir: str, cfg: DecoderConfig, params: Mapping, torch_dtype: str = "float32",
            max_shard_bytes: int = 5 * 2**30, extra_config: Mapping[str, Any] | None = None,
            fmt: str = "llama", prefix_lm: bool = True) -> None:
  """config.json + model.safetensors (or shards + index) that ``from_pretrained`` loads:
  ``fmt="llama"``: LlamaForCausalLM; ``"flan_jax"``: our remote-code model (any preset)."""
  import ml_dtypes
  np_dtype = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16,
              "float16": np.float16}[torch_dtype]
  os.makedirs(out_dir, exist_ok=True)
  if fmt == "llama":
    config = hf_config_from_decoder(cfg, torch_dtype, extra_config)
    state = params_to_hf_state(params, cfg)
  elif fmt == "flan_jax":
    config = flan_hf_config(cfg, prefix_lm, torch_dtype, extra_config)
    state = params_to_flan_state(params, cfg)
    for name in REMOTE_CODE_FILES:
      shutil.copyfile(os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", name),
                      os.path.join(out_dir, name))
  else:
    raise ValueError(f"export format {fmt!r} not in {FORMATS[1:]}")
  _write_safetensors(out_dir, {k: v.astype(np_dtype) for k, v in state.items()},
                     max_shard_bytes)
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(config, f, indent=2)


def _special_ids(model_dir: str, vocab_ids: Mapping[str, int | None]) -> dict[str, Any]:
  """BOS/EOS/pad ids: the import-hf source's, else the vocabulary's."""
  source = source_config(model_dir) or {}
  out = {k: source[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in source}
  for key, value in vocab_ids.items():
    out.setdefault(key, value)
  return out


def _write_tokenizer(model_dir: str, out_dir: str, max_positions: int) -> dict[str, int | None]:
  """Copies the model's HF tokenizer files; else writes the SentencePiece vocabulary as an HF
  tokenizer. Returns the tokenizer's bos/eos/pad ids."""
  if copy_tokenizer(model_dir, out_dir):
    return {}
  from flan_jax.data import vocab as vocab_lib
  from flan_jax.interop import hf_vocab
  vocabulary = vocab_lib.vocabulary()
  model = getattr(vocabulary, "sp_model", None)
  if model is None:
    raise ValueError(f"{model_dir} has no tokenizer files and the default vocabulary "
                     f"({type(vocabulary).__name__}) is not SentencePiece; export a model whose "
                     "directory holds tokenizer.json")
  return hf_vocab.save_sentencepiece_tokenizer(model, out_dir, max_positions)


def _replace_dir(tmp: str, out_dir: str, overwrite: bool) -> None:
  if os.path.lexists(out_dir):
    if not overwrite:
      raise FileExistsError(f"{out_dir} exists; pass --overwrite or choose another directory")
    old = tmp + ".old"
    os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
  else:
    os.rename(tmp, out_dir)


def export_hf(model_dir: str, out_dir: str, step: int | None = None, torch_dtype: str = "float32",
              max_shard_bytes: int = 5 * 2**30, fmt: str = "auto",
              max_position_embeddings: int | None = None, overwrite: bool = False) -> str:
  """flan_jax model directory -> HF directory, written to a temporary sibling and renamed (a
  failed export leaves nothing). ``fmt``: ``llama`` (LlamaForCausalLM), ``flan_jax``
  (remote-code model, every preset) or ``auto`` (llama when it computes the same model).
  Returns the format written."""
  import tempfile

  from flan_jax.models import checkpoint as model_checkpoint
  if fmt not in FORMATS:
    raise ValueError(f"export format {fmt!r} not in {FORMATS}")
  if os.path.lexists(out_dir) and not overwrite:
    raise FileExistsError(f"{out_dir} exists; pass --overwrite or choose another directory")
  # The readers' restore path: verified; without a step the newest good one.
  restored = model_checkpoint.restore_checkpoint(model_dir, step=step, dtype="float32")
  cfg, params = restored.config, restored.params
  model_dir = model_checkpoint.split_step_dir(model_dir)[0]
  source = source_config(model_dir)
  prefix_lm = source is None  # import-hf outputs are causal; flan_jax-trained ones prefix LMs.
  if fmt == "auto":
    fmt = "llama" if is_llama_compatible(cfg) else "flan_jax"
  if fmt == "llama" and not is_llama_compatible(cfg):
    raise ValueError("LlamaForCausalLM needs RoPE + SwiGLU and unscaled logits (got position="
                     f"{cfg.position!r}, activation={cfg.activation!r}); use --format flan_jax")
  max_positions = max_position_embeddings or (source or {}).get(
      "max_position_embeddings") or DEFAULT_MAX_POSITIONS
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.tmp-",
                         dir=parent)
  try:
    vocab_ids = _write_tokenizer(model_dir, tmp, max_positions)
    extra = {**_special_ids(model_dir, vocab_ids), "max_position_embeddings": max_positions}
    if source and fmt == "llama":  # Keep the source's other Llama fields (rope, eps, ...).
      keep = ("attention_dropout", "initializer_range", "pretraining_tp", "use_cache")
      extra.update({k: source[k] for k in keep if k in source})
    save_hf(tmp, cfg, params, torch_dtype, max_shard_bytes, extra, fmt, prefix_lm)
    generation = {k: extra[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                  if extra.get(k) is not None}
    with open(os.path.join(tmp, "generation_config.json"), "w") as f:
      json.dump({**generation, "_from_model_config": True}, f, indent=2)
    if os.path.isdir(out_dir):  # --overwrite: never replace a live run dir.
      with model_checkpoint.locked(out_dir, "flan-jax export-hf"):
        _replace_dir(tmp, out_dir, overwrite)
    else:
      _replace_dir(tmp, out_dir, overwrite)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return fmt


# --- CLI --------------------------------------------------------------------------------------


def main_import(argv: Sequence[str] | None = None) -> int:
  """``flan-jax import-hf HF_DIR OUT_DIR``."""
  parser = argparse.ArgumentParser(prog="flan-jax import-hf",
                                   description="Hugging Face Llama-family -> flan_jax model dir")
  parser.add_argument("hf_dir")
  parser.add_argument("out_dir")
  parser.add_argument("--dtype", default=None, choices=_DTYPES,
                      help="compute dtype of the imported config (default: the source's dtype)")
  parser.add_argument("--no_scan", action="store_true", help="unscanned layers_{i} parameters")
  args = parser.parse_args(argv)
  from flan_jax.models.checkpoint import ReportedError
  try:
    cfg = import_hf(args.hf_dir, args.out_dir, dtype=args.dtype, scan_layers=not args.no_scan)
  except (ReportedError, ValueError, OSError) as e:  # Messages name the problem and the fix.
    print(f"flan-jax import-hf: error: {e}", file=sys.stderr)
    return 1
  print(f"imported {cfg.num_params()} parameters into {args.out_dir}: {cfg}")
  return 0


def main_export(argv: Sequence[str] | None = None) -> int:
  """``flan-jax export-hf MODEL_DIR OUT_DIR``."""
  parser = argparse.ArgumentParser(prog="flan-jax export-hf",
                                   description="flan_jax model dir -> Hugging Face directory")
  parser.add_argument("model_dir", help="a flan_jax model dir or one of its checkpoint_<step>")
  parser.add_argument("out_dir")
  parser.add_argument("--step", type=int, default=None)
  parser.add_argument("--torch_dtype", default="float32", choices=list(_DTYPES))
  parser.add_argument("--max_shard_gb", type=float, default=5.0)
  parser.add_argument("--format", default="auto", choices=FORMATS,
                      help="llama: LlamaForCausalLM; flan_jax: remote-code model for every preset "
                      "(trust_remote_code=True); auto: llama when it is the same model")
  parser.add_argument("--max_position_embeddings", type=int, default=None,
                      help="declared context length (default: the import-hf source's, else "
                      f"{DEFAULT_MAX_POSITIONS})")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
  args = parser.parse_args(argv)
  from flan_jax.models.checkpoint import ReportedError
  try:
    fmt = export_hf(args.model_dir, args.out_dir, args.step, args.torch_dtype,
                    int(args.max_shard_gb * 2**30), args.format, args.max_position_embeddings,
                    args.overwrite)
  except (ReportedError, FileExistsError, FileNotFoundError, ValueError) as e:
    print(f"flan-jax export-hf: error: {e}", file=sys.stderr)  # Names the problem and the fix.
    return 1
  print(f"exported {args.model_dir} to {args.out_dir} ({fmt})")
  return 0
