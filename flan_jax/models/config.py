"""Configuration of the decoder-only Transformer (LaMDA / T5-style or Llama-style).

``DecoderConfig`` is a frozen dataclass, so it can be hashed into ``jax.jit`` static arguments and
written to JSON next to a checkpoint. Gin files build it with ``@models.DecoderConfig()`` (see
``gin/models/*.gin``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax.numpy as jnp

from flan_jax.models.attention import check_pallas_blocks

ACTIVATIONS = ("gated_gelu", "swiglu", "gelu", "relu")
POSITIONS = ("relative", "rope")
REMAT_POLICIES = ("none", "minimal", "dots", "full")
ATTENTION_IMPLEMENTATIONS = ("dense", "blocked", "cudnn", "pallas", "auto")  # models.attention.


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Hyper-parameters of :class:`flan_jax.models.Decoder`.

  ``head_dim`` is independent of ``d_model // num_heads`` (LaMDA 137B: d_model 8192 and 128 heads
  of 128). ``num_kv_heads`` < ``num_heads`` gives grouped-query attention (1: multi-query).
  """

  vocab_size: int = 512
  num_layers: int = 2
  d_model: int = 64
  num_heads: int = 4
  num_kv_heads: int | None = None  # None: same as num_heads.
  head_dim: int = 16
  d_ff: int = 128
  activation: str = "gated_gelu"  # gated_gelu (LaMDA, T5.1.1) | swiglu (Llama) | gelu | relu.
  position: str = "relative"  # relative (T5/LaMDA buckets) | rope (Llama).
  relative_num_buckets: int = 32
  relative_max_distance: int = 128
  relative_bidirectional: bool = False  # Separate buckets for keys after the query (prefix).
  rope_theta: float = 10_000.0
  norm_eps: float = 1e-6
  tie_embeddings: bool = True
  scale_tied_logits: bool = True  # t5x: logits = x @ embedding.T / sqrt(d_model) when tied.
  dropout_rate: float = 0.0
  dtype: str = "bfloat16"  # Compute dtype.
  param_dtype: str = "float32"
  scan_layers: bool = True
  remat_policy: str = "none"  # none | minimal (no-batch-dim dots saved) | dots | full.
  # Attention core of full forwards (KV-cache steps are always dense): dense | blocked | cudnn |
  # pallas (TPU) | auto (pallas on TPU, cudnn on GPU in 16-bit, else blocked); see
  # flan_jax.models.attention. pallas needs blocks that are multiples of 128.
  attention: str = "dense"
  attention_block_q: int = 256
  attention_block_k: int = 512
  # > 0: the trainer's cross-entropy runs over chunks of this many positions (fused gradient, no
  # [B, T, vocab] float32 log-probs); 0: the plain loss on full logits.
  loss_chunk_size: int = 0

  def __post_init__(self):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"activation {self.activation!r} not in {ACTIVATIONS}")
    if self.position not in POSITIONS:
      raise ValueError(f"position {self.position!r} not in {POSITIONS}")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"remat_policy {self.remat_policy!r} not in {REMAT_POLICIES}")
    if self.attention not in ATTENTION_IMPLEMENTATIONS:
      raise ValueError(f"attention {self.attention!r} not in {ATTENTION_IMPLEMENTATIONS}")
    if self.attention_block_q < 1 or self.attention_block_k < 1 or self.loss_chunk_size < 0:
      raise ValueError("attention_block_q/_k must be >= 1 and loss_chunk_size >= 0, got "
                       f"{self.attention_block_q}, {self.attention_block_k}, "
                       f"{self.loss_chunk_size}")
    if self.attention == "pallas":
      check_pallas_blocks(self.attention_block_q, self.attention_block_k)
    if self.num_heads % self.kv_heads:
      raise ValueError(f"num_heads {self.num_heads} not a multiple of num_kv_heads {self.kv_heads}")
    if self.position == "rope" and self.head_dim % 2:
      raise ValueError("RoPE needs an even head_dim")

  @property
  def kv_heads(self) -> int:
    return self.num_kv_heads or self.num_heads

  @property
  def gated(self) -> bool:
    return self.activation in ("gated_gelu", "swiglu")

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  @property
  def weight_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.param_dtype)

  def replace(self, **changes: Any) -> DecoderConfig:
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> DecoderConfig:
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - fields
    if unknown:
      raise ValueError(f"unknown DecoderConfig fields: {sorted(unknown)}")
    return cls(**d)

  @classmethod
  def from_json(cls, text: str) -> DecoderConfig:
    return cls.from_dict(json.loads(text))

  # --- counts -------------------------------------------------------------------------------------

  def matmul_params_per_layer(self) -> int:
    """Attention (q, k, v, o) plus MLP kernel parameters of one layer."""
    attn = self.d_model * self.head_dim * (2 * self.num_heads + 2 * self.kv_heads)
    mlp = self.d_model * self.d_ff * (3 if self.gated else 2)
    return attn + mlp

  def num_params(self) -> int:
    """Exact parameter count (equals the count of the initialized tree)."""
    per_layer = self.matmul_params_per_layer() + 2 * self.d_model
    total = self.num_layers * per_layer + self.d_model  # + final norm.
    total += self.vocab_size * self.d_model * (1 if self.tie_embeddings else 2)
    if self.position == "relative":
      total += self.relative_num_buckets * self.num_heads
    return total

  def train_flops_per_token(self, seq_len: int, causal: bool = True) -> float:
    """PaLM model FLOPs per trained token: 6N + attention (QK^T and AV, forward + backward).

    N counts matmul parameters including the output projection (not the embedding gather).
    The attention term 12·L·H·Dh·T is halved when ``causal`` (only half the score matrix is used).
    """
    n = self.num_layers * self.matmul_params_per_layer() + self.vocab_size * self.d_model
    attn = 12 * self.num_layers * self.num_heads * self.head_dim * seq_len
    return 6 * n + (attn / 2 if causal else attn)
