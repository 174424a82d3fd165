"""PyTorch forward pass of an exported flan_jax decoder (``trust_remote_code=True``).

Mirrors ``flan_jax.models.Decoder`` computation by computation (float32 norms and softmax, T5
relative-position buckets or half-split RoPE, grouped-query attention, gated-GELU / SwiGLU /
GELU / ReLU MLPs with tanh-approximated GELU as flax's ``nn.gelu``, tied logits optionally scaled
by 1/sqrt(d_model)). Parameter names are flan_jax's, one entry per layer
(``layers.{i}.attention.query`` [d_model, heads, head_dim], ...), so no kernel is transposed.

``forward(input_ids, attention_mask=None, decoder_causal_attention=None)``: the optional bool
``decoder_causal_attention`` [B, T] marks a bidirectional prefix (flan_jax's prefix-LM inputs);
without it the model is causal, which is how lm-eval's ``HFLM`` runs it. Generation runs the full
sequence every step (no KV cache).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

try:
  from .configuration_flan_jax import FlanJaxConfig
except ImportError:  # Imported as a plain module (tests).
  from configuration_flan_jax import FlanJaxConfig

_NEG_INF = -1e10


def _param(*shape):
  return nn.Parameter(torch.zeros(*shape))


class _Scale(nn.Module):
  def __init__(self, d, eps):
    super().__init__()
    self.scale = _param(d)
    self.eps = eps

  def forward(self, x):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.scale


class _Embed(nn.Module):
  def __init__(self, vocab, d):
    super().__init__()
    self.embedding = _param(vocab, d)


class _RelposBias(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    self.rel_embedding = _param(cfg.num_heads, cfg.relative_num_buckets)
    self.cfg = cfg

  def forward(self, length):
    cfg = self.cfg
    idx = torch.arange(length)
    relative = idx[None, :] - idx[:, None]  # key - query, [T, S]
    num_buckets, bucket, distance = cfg.relative_num_buckets, torch.zeros_like(relative), -relative
    if cfg.relative_bidirectional:
      num_buckets //= 2
      bucket = bucket + (distance < 0).long() * num_buckets
      distance = distance.abs()
    else:
      distance = distance.clamp(min=0)
    max_exact = num_buckets // 2
    scaled = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(
        cfg.relative_max_distance / max_exact)
    large = (max_exact + (scaled * (num_buckets - max_exact)).to(torch.int32)).clamp(
        max=num_buckets - 1)
    buckets = bucket + torch.where(distance < max_exact, distance, large.long())
    return self.rel_embedding[:, buckets][None]  # [1, H, T, S]


def _rope(x, positions, theta):
  """Half-split rotary embedding of x [B, T, H, Dh] at integer positions [B, T]."""
  dim = x.shape[-1]
  inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
  angles = positions.float()[..., None] * inv_freq.float()
  cos, sin = angles.cos()[:, :, None, :], angles.sin()[:, :, None, :]
  x1, x2 = x.chunk(2, dim=-1)
  return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class _Attention(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    d, h, kvh, hd = cfg.d_model, cfg.num_heads, cfg.num_kv_heads or cfg.num_heads, cfg.head_dim
    self.query, self.key, self.value = _param(d, h, hd), _param(d, kvh, hd), _param(d, kvh, hd)
    self.out = _param(h, hd, d)
    self.cfg = cfg

  def forward(self, x, mask, bias, positions):
    cfg = self.cfg
    q = torch.einsum("btd,dhk->bthk", x, self.query)
    k = torch.einsum("btd,dhk->bthk", x, self.key)
    v = torch.einsum("btd,dhk->bthk", x, self.value)
    if cfg.position == "rope":
      q, k = _rope(q, positions, cfg.rope_theta), _rope(k, positions, cfg.rope_theta)
    groups = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(groups, dim=2), v.repeat_interleave(groups, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) * cfg.head_dim ** -0.5
    if bias is not None:
      scores = scores + bias
    scores = torch.where(mask[:, None], scores, torch.full_like(scores, _NEG_INF))
    probs = scores.softmax(-1)
    return torch.einsum("bthk,hkd->btd", torch.einsum("bhts,bshd->bthd", probs, v), self.out)


class _Mlp(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    d, f = cfg.d_model, cfg.d_ff
    self.gated = cfg.activation in ("gated_gelu", "swiglu")
    if self.gated:
      self.wi_0, self.wi_1 = _param(d, f), _param(d, f)
    else:
      self.wi = _param(d, f)
    self.wo = _param(f, d)
    self.act = {"gated_gelu": lambda y: F.gelu(y, approximate="tanh"), "swiglu": F.silu,
                "gelu": lambda y: F.gelu(y, approximate="tanh"), "relu": F.relu}[cfg.activation]

  def forward(self, x):
    if self.gated:
      h = self.act(x @ self.wi_0) * (x @ self.wi_1)
    else:
      h = self.act(x @ self.wi)
    return h @ self.wo


class _Block(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    self.pre_attention_norm = _Scale(cfg.d_model, cfg.norm_eps)
    self.attention = _Attention(cfg)
    self.pre_mlp_norm = _Scale(cfg.d_model, cfg.norm_eps)
    self.mlp = _Mlp(cfg)

  def forward(self, x, mask, bias, positions):
    x = x + self.attention(self.pre_attention_norm(x), mask, bias, positions)
    return x + self.mlp(self.pre_mlp_norm(x))


class FlanJaxForCausalLM(PreTrainedModel, GenerationMixin):
  config_class = FlanJaxConfig
  base_model_prefix = "flan_jax"
  main_input_name = "input_ids"
  _no_split_modules = ["_Block"]

  def __init__(self, config):
    super().__init__(config)
    self.token_embedder = _Embed(config.vocab_size, config.d_model)
    if config.position == "relative":
      self.relpos_bias = _RelposBias(config)
    self.layers = nn.ModuleList([_Block(config) for _ in range(config.num_layers)])
    self.final_norm = _Scale(config.d_model, config.norm_eps)
    if not config.tie_embeddings:
      self.logits_kernel = _param(config.d_model, config.vocab_size)
    self.post_init()

  def _init_weights(self, module):
    pass  # Weights always come from the exported checkpoint.

  def get_input_embeddings(self):
    return None

  def forward(self, input_ids, attention_mask=None, decoder_causal_attention=None, labels=None,
              **kwargs):
    cfg = self.config
    b, t = input_ids.shape
    real = (torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None
            else attention_mask.bool())
    causal = torch.ones(t, t, dtype=torch.bool, device=input_ids.device).tril()[None]
    if decoder_causal_attention is not None:
      prefix = decoder_causal_attention.bool()
      causal = causal | (prefix[:, :, None] & prefix[:, None, :])
    mask = causal & real[:, :, None] & real[:, None, :]  # [B, T, S]
    positions = (real.long().cumsum(-1) - 1).clamp(min=0)  # Left padding keeps positions.
    bias = self.relpos_bias(t).float() if cfg.position == "relative" else None
    x = self.token_embedder.embedding[input_ids].float()
    for layer in self.layers:
      x = layer(x, mask, bias, positions)
    x = self.final_norm(x)
    if cfg.tie_embeddings:
      if cfg.scale_tied_logits:
        x = x * cfg.d_model ** -0.5
      logits = x @ self.token_embedder.embedding.T
    else:
      logits = x @ self.logits_kernel
    loss = None
    if labels is not None:
      loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                             labels[:, 1:].reshape(-1), ignore_index=-100)
    return CausalLMOutputWithPast(loss=loss, logits=logits.float())

  def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
    return {"input_ids": input_ids, "attention_mask": attention_mask}
