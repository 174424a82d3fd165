"""Attention masks: (causal ∨ prefix) ∧ same segment ∧ not padding."""

from __future__ import annotations

import jax.numpy as jnp


def attention_mask(q_index: jnp.ndarray, k_index: jnp.ndarray, q_segment: jnp.ndarray,
                   k_segment: jnp.ndarray, q_bidirectional: jnp.ndarray,
                   k_bidirectional: jnp.ndarray) -> jnp.ndarray:
  """Boolean mask [B, 1, T, S]: may query t attend to key s.

  Args:
    q_index: [T] sequence slot of each query (``cache_index + t`` when decoding).
    k_index: [S] sequence slot of each key.
    q_segment: [B, T] segment ids of the queries; 0 marks padding.
    k_segment: [B, S] segment ids of the keys; 0 marks padding (or an unwritten cache slot).
    q_bidirectional: [B, T] True on prefix (input) tokens: t5x's ``decoder_causal_attention``.
    k_bidirectional: [B, S] the same for keys.
  """
  causal = k_index[None, :] <= q_index[:, None]  # [T, S]
  prefix = q_bidirectional[:, :, None] & k_bidirectional[:, None, :]  # [B, T, S]
  same_segment = q_segment[:, :, None] == k_segment[:, None, :]
  not_padding = (q_segment[:, :, None] != 0) & (k_segment[:, None, :] != 0)
  mask = (causal[None] | prefix) & same_segment & not_padding
  return mask[:, None]  # [B, 1, T, S]
