"""Optimizers (t5x-like Adafactor, AdamW) and learning-rate schedules for the train step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec

OPTIMIZERS = ("adafactor", "adamw")
SCHEDULES = ("constant", "linear_warmup", "rsqrt", "cosine")


def make_schedule(name: str = "constant", base_learning_rate: float = 1e-3,
                  warmup_steps: int = 0, total_steps: int | None = None,
                  end_learning_rate_fraction: float = 0.0) -> optax.Schedule:
  """``constant``, ``linear_warmup`` (0 -> base over warmup, then constant), ``rsqrt`` (t5x's
  ``constant * rsqrt_decay``: base / sqrt(max(step, warmup))) or ``cosine`` (linear warmup, then
  cosine decay to ``base * end_learning_rate_fraction`` at ``total_steps``)."""
  if name == "constant":
    return optax.constant_schedule(base_learning_rate)
  if name == "linear_warmup":
    return optax.warmup_constant_schedule(0.0, base_learning_rate, max(warmup_steps, 1))
  if name == "rsqrt":
    floor = max(warmup_steps, 1)
    return lambda step: base_learning_rate * jax.lax.rsqrt(
        jnp.maximum(jnp.asarray(step, jnp.float32), floor))
  if name == "cosine":
    if not total_steps:
      raise ValueError("the cosine schedule needs total_steps")
    return optax.warmup_cosine_decay_schedule(
        0.0, base_learning_rate, warmup_steps, max(total_steps, warmup_steps + 1),
        end_value=base_learning_rate * end_learning_rate_fraction)
  raise ValueError(f"unknown schedule {name!r}; use one of {SCHEDULES}")


def make_optimizer(name: str = "adafactor", learning_rate: optax.ScalarOrSchedule = 1e-3, *,
                   weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-8, grad_clip_norm: float | None = None,
                   skip_nonfinite_updates: bool = False,
                   param_specs: Any = None) -> optax.GradientTransformation:
  """``adafactor`` with t5x-like settings (decay 0.8, parameter scaling, update clipping 1.0,
  factored for dims >= 128) or ``adamw``.

  ``skip_nonfinite_updates`` wraps it in ``optax.apply_if_finite`` (NaN/Inf steps are dropped).
  ``param_specs`` (the parameters' mesh PartitionSpecs) keeps Adafactor's per-layer work on
  scanned parameters sharded like the parameters (see :func:`layers_as_batch`).
  """
  if name == "adafactor":
    tx = layers_as_batch(optax.adafactor(
        learning_rate=learning_rate, decay_rate=0.8, multiply_by_parameter_scale=True,
        clipping_threshold=1.0, min_dim_size_to_factor=128,
        weight_decay_rate=weight_decay or None), param_specs)
  elif name == "adamw":
    tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  else:
    raise ValueError(f"unknown optimizer {name!r}; use one of {OPTIMIZERS}")
  if grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(grad_clip_norm), tx)
  if skip_nonfinite_updates:
    tx = optax.apply_if_finite(tx, max_consecutive_errors=1_000_000)
  return tx


def _is_stacked(path: tuple[Any, ...]) -> bool:
  return any(getattr(k, "key", None) == "layers" for k in path)


def _layer_by_layer(update: Callable, g: Any, state: Any, p: Any,
                    spec: PartitionSpec | None = None) -> tuple[Any, Any]:
  """``update`` on one layer of a stacked leaf at a time (a loop over axis 0).

  Same result as ``jax.vmap(update)``, but the temporaries (squared gradients, factored
  statistics, the update before clipping, all float32) exist for one layer, not the whole stack.
  ``spec`` (the stacked leaf's mesh spec) keeps each layer's slices sharded like the leaf.
  """
  layer = None if spec is None else PartitionSpec(*tuple(spec)[1:])
  keep = (lambda x: x) if layer is None else (  # noqa: E731
      lambda x: jax.lax.with_sharding_constraint(x, layer))

  def body(i, carry):  # The gradient buffer is overwritten in place by the updates.
    g_or_u, s = carry
    s_i = jax.tree.map(lambda x: x[i], s)
    p_i = None if p is None else keep(p[i])
    u, s_i = update(keep(g_or_u[i]), s_i, p_i)
    g_or_u = g_or_u.at[i].set(keep(u.astype(g_or_u.dtype)))
    return g_or_u, jax.tree.map(lambda x, y: x.at[i].set(y), s, s_i)

  return jax.lax.fori_loop(0, g.shape[0], body, (g, state))


def layers_as_batch(tx: optax.GradientTransformation,
                    param_specs: Any = None) -> optax.GradientTransformation:
  """Runs ``tx`` per parameter, and per layer on scanned (stacked) parameters.

  With ``scan_layers`` every layer's kernel sits in one array with a leading ``layers`` axis.
  Adafactor's statistics (which two dims are factored, the parameter-scale RMS, update-RMS
  clipping) would then mix layers; t5x's factor rules treat that axis as a batch axis. Here the
  stacked leaves get ``tx`` per layer (init: ``jax.vmap``; update: ``lax.map``, so per-layer
  float32 temporaries are never materialised for the whole stack), and a scanned model gets
  exactly the updates of the unscanned one. Only for leaf-wise transformations (Adafactor); the
  state is a tuple of per-leaf states.
  """

  def leaves(tree: Any) -> tuple[list, Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return flat, treedef

  def init(params: Any) -> tuple:
    flat, _ = leaves(params)
    return tuple(jax.vmap(tx.init)(p) if _is_stacked(path) else tx.init(p) for path, p in flat)

  def update(updates: Any, state: tuple, params: Any = None) -> tuple[Any, tuple]:
    flat, treedef = leaves(updates)
    flat_params = jax.tree_util.tree_leaves(params) if params is not None else [None] * len(flat)
    new_updates, new_state = [], []
    specs = (jax.tree.leaves(param_specs, is_leaf=lambda x: isinstance(x, PartitionSpec))
             if param_specs is not None else [None] * len(flat))
    for (path, g), s, p, spec in zip(flat, state, flat_params, specs, strict=True):
      u, s = (_layer_by_layer(tx.update, g, s, p, spec) if _is_stacked(path)
              else tx.update(g, s, p))
      new_updates.append(u)
      new_state.append(s)
    return jax.tree_util.tree_unflatten(treedef, new_updates), tuple(new_state)

  return optax.GradientTransformation(init, update)
