"""Batch-axis operations on a KV cache from :func:`flan_jax.models.init_cache`.

The cache is a pytree: ``index`` (scalar, shared by all rows), ``segment_ids`` / ``bidirectional``
[B, S], and per layer ``cached_key`` / ``cached_value`` [B, S, kv_heads, head_dim] (with a
leading ``layers`` axis when ``scan_layers``). Rank classification broadcasts one prefilled
context to its options (:func:`repeat`); beam search reorders rows (:func:`take`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def batch_axis(path: tuple[Any, ...], leaf: jax.Array) -> int | None:
  """The batch axis of a cache leaf: None for the scalar ``index``, 1 under scanned ``layers``."""
  if leaf.ndim == 0:
    return None
  keys = [getattr(p, "key", None) for p in path]
  return 1 if "layers" in keys and keys[-1] in ("cached_key", "cached_value") else 0


def map_batch(cache: Any, fn: Callable[[jax.Array, int], jax.Array]) -> Any:
  """Applies ``fn(leaf, batch_axis)`` to every leaf that has a batch axis."""

  def apply(path, leaf):
    axis = batch_axis(path, leaf)
    return leaf if axis is None else fn(leaf, axis)

  return jax.tree_util.tree_map_with_path(apply, cache)


def repeat(cache: Any, repeats: int) -> Any:
  """Row b becomes rows b*repeats .. b*repeats+repeats-1 (``jnp.repeat`` on the batch axis)."""
  return map_batch(cache, lambda x, axis: jnp.repeat(x, repeats, axis=axis))


def take(cache: Any, rows: jax.Array) -> Any:
  """New row i = old row ``rows[i]`` (``rows`` int [B'])."""
  return map_batch(cache, lambda x, axis: jnp.take(x, rows, axis=axis))
