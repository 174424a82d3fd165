"""Position encodings: T5 relative-position buckets (LaMDA, T5) and rotary embeddings (Llama)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def relative_position_bucket(relative_position: jnp.ndarray, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> jnp.ndarray:
  """Maps ``key_pos - query_pos`` to T5's log-spaced buckets in ``[0, num_buckets)``.

  Half of the (per-direction) buckets hold exact small distances; the rest grow logarithmically
  up to ``max_distance``, beyond which everything shares the last bucket. Unidirectional: keys
  after the query (possible with prefix-LM masks) fall into bucket 0 with distance 0.
  """
  bucket = jnp.zeros_like(relative_position)
  distance = -relative_position  # > 0 for keys before the query.
  if bidirectional:
    num_buckets //= 2
    bucket += (distance < 0).astype(jnp.int32) * num_buckets
    distance = jnp.abs(distance)
  else:
    distance = jnp.maximum(distance, 0)
  max_exact = num_buckets // 2
  is_small = distance < max_exact
  scaled = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / np.log(
      max_distance / max_exact)
  large = max_exact + (scaled * (num_buckets - max_exact)).astype(jnp.int32)
  large = jnp.minimum(large, num_buckets - 1)
  return bucket + jnp.where(is_small, distance, large)


def rope_tables(positions: jnp.ndarray, head_dim: int, theta: float) -> tuple[jnp.ndarray, ...]:
  """cos, sin of shape [B, T, head_dim // 2] (float32) for integer positions [B, T]."""
  inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
  angles = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq, jnp.float32)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
  """Rotates x [B, T, heads, head_dim] with the half-split ("rotate_half", HF) pairing.

  Dimension i is paired with i + head_dim/2 (not the interleaved even/odd pairing), so HF Llama
  q/k weights import without a permutation. Computed in float32, returned in x's dtype.
  """
  x32 = x.astype(jnp.float32)
  x1, x2 = jnp.split(x32, 2, axis=-1)  # [B, T, heads, head_dim/2] each.
  cos, sin = cos[:, :, None, :], sin[:, :, None, :]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)
