"""The train step (microbatched, f32 gradient accumulation); optimizers are in :mod:`.optim`.

``make_train_step(config, ...)`` returns ``train_step(state, batch, dropout_rng) -> (state,
metrics)``; ``dropout_rng`` is the run's base key and the step uses ``fold_in(dropout_rng,
state.step)`` (then ``fold_in(., microbatch)``), so dropout is identical across restarts.
``partitioned_train_step`` jits it with state/data shardings and donates the state.

Microbatching follows t5x: loss weights are normalised on the global batch first
(:func:`flan_jax.training.losses.batch_weights`), microbatch i takes rows ``i, i+N, i+2N, ...``
(so every microbatch stays spread over the data axis), and float32 gradients are *summed* in a
``lax.scan``; N microbatches then give the same update as one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from flan_jax.models import MODEL_FEATURES, Decoder, DecoderConfig
from flan_jax.parallel import partitioning
from flan_jax.training import losses, optim

Batch = Mapping[str, jax.Array]


# --- loss and step ----------------------------------------------------------------------------


def loss_fn(params: Any, batch: Batch, weights: jax.Array, rng: jax.Array | None,
            config: DecoderConfig, label_smoothing: float = 0.0,
            z_loss: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Σ token loss · ``weights`` (already normalised) and summed statistics."""
  features = {k: batch[k] for k in MODEL_FEATURES if k in batch}
  enable_dropout = rng is not None and config.dropout_rate > 0
  chunked = config.loss_chunk_size > 0
  out = Decoder(config).apply({"params": params}, **features, enable_dropout=enable_dropout,
                              rngs={"dropout": rng} if enable_dropout else None,
                              return_hidden=chunked)
  if chunked:  # Same loss and gradients without [B, T, vocab] float32 logits.
    return losses.chunked_cross_entropy(
        *out, batch["decoder_target_tokens"], weights, config.loss_chunk_size,
        vocab_major=config.tie_embeddings, label_smoothing=label_smoothing, z_loss=z_loss)
  return losses.weighted_cross_entropy(out, batch["decoder_target_tokens"], weights,
                                       label_smoothing, z_loss)


def _split_microbatches(x: jax.Array, n: int) -> jax.Array:
  """[B, ...] -> [n, B/n, ...]; microbatch i holds rows i, i+n, ... (spread over data shards)."""
  if x.shape[0] % n:
    raise ValueError(f"batch size {x.shape[0]} is not divisible by {n} microbatches")
  return jnp.swapaxes(x.reshape((x.shape[0] // n, n) + x.shape[1:]), 0, 1)


def _constrain(x: jax.Array) -> jax.Array:
  return nn.with_logical_constraint(x, ("batch",) + (None,) * (x.ndim - 1))


def make_train_step(config: DecoderConfig, num_microbatches: int = 1,
                    loss_normalizing_factor: losses.Factor = "NUM_REAL_TARGET_TOKENS",
                    label_smoothing: float = 0.0, z_loss: float = 0.0,
                    learning_rate: optax.Schedule | None = None) -> Callable:
  """``train_step(state, batch, dropout_rng) -> (state, metrics)`` (un-jitted, pure)."""
  factor = losses.parse_factor(loss_normalizing_factor)
  grad_fn = jax.value_and_grad(
      lambda p, b, w, r: loss_fn(p, b, w, r, config, label_smoothing, z_loss), has_aux=True)

  def train_step(state: partitioning.TrainState, batch: Batch,
                 dropout_rng: jax.Array) -> tuple[partitioning.TrainState, dict[str, jax.Array]]:
    rng = jax.random.fold_in(dropout_rng, state.step)
    weights = losses.batch_weights(batch, factor)
    if num_microbatches <= 1:
      (_, stats), grads = grad_fn(state.params, batch, weights, rng)
      grads = jax.tree.map(lambda g: g.astype(jnp.float32), grads)
    else:
      micro = jax.tree.map(lambda x: _split_microbatches(x, num_microbatches),
                           {**batch, "_weights": weights})

      def body(carry, xs):
        grad_sum, stat_sum = carry
        index, mb = xs
        mb = jax.tree.map(_constrain, mb)
        w = mb.pop("_weights")
        (_, stats), grads = grad_fn(state.params, mb, w, jax.random.fold_in(rng, index))
        grad_sum = jax.tree.map(lambda a, g: a + g.astype(jnp.float32), grad_sum, grads)
        stat_sum = jax.tree.map(jnp.add, stat_sum, stats)
        return (grad_sum, stat_sum), None

      zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params)
      stat_zeros = {k: jnp.zeros((), jnp.float32) for k in
                    ("loss", "z_loss", "cross_ent_loss", "correct", "num_target_tokens")}
      (grads, stats), _ = jax.lax.scan(body, (zeros, stat_zeros),
                                       (jnp.arange(num_microbatches), micro))
    new_state = state.apply_gradients(grads)
    metrics = {k: stats[k] for k in ("loss", "z_loss", "cross_ent_loss", "num_target_tokens")}
    metrics["accuracy"] = stats["correct"] / jnp.maximum(stats["num_target_tokens"], 1.0)
    metrics["grad_norm"] = optax.global_norm(grads)
    if learning_rate is not None:
      metrics["learning_rate"] = jnp.asarray(learning_rate(state.step), jnp.float32)
    return new_state, metrics

  return train_step


def partitioned_train_step(train_step: Callable, state_shardings: Any, mesh: Mesh,
                           rules: partitioning.LogicalRules) -> Callable:
  """``train_step`` jitted with (state, data, replicated rng) in-shardings, state out-shardings
  and the state donated."""
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return partitioning.partition(
      train_step, mesh, rules,
      in_shardings=(state_shardings, partitioning.data_sharding(mesh), replicated),
      out_shardings=(state_shardings, replicated), donate_argnums=(0,))


class TrainStep(NamedTuple):
  """The partitioned step a run executes, with its optimizer, LR schedule and state shardings."""

  step_fn: Any
  tx: Any
  learning_rate: Any
  shardings: partitioning.TrainState


def build_train_step(config: DecoderConfig, device_mesh: Mesh,
                     rules: partitioning.LogicalRules, *, train_steps: int | None,
                     optimizer: str = "adafactor", learning_rate: float = 1e-3,
                     schedule: str = "constant", warmup_steps: int = 0,
                     weight_decay: float = 0.0, grad_clip_norm: float | None = None,
                     skip_nonfinite_updates: bool = False, num_microbatches: int = 1,
                     loss_normalizing_factor: losses.Factor = "NUM_REAL_TARGET_TOKENS",
                     label_smoothing: float = 0.0, z_loss: float = 1e-4) -> TrainStep:
  """The jitted, sharded train step of a run (also lowered by :mod:`flan_jax.plan`)."""
  lr = optim.make_schedule(schedule, learning_rate, warmup_steps, train_steps)
  param_specs = partitioning.param_mesh_specs(config, rules, dict(device_mesh.shape))
  tx = optim.make_optimizer(optimizer, lr, weight_decay=weight_decay,
                            grad_clip_norm=grad_clip_norm,
                            skip_nonfinite_updates=skip_nonfinite_updates,
                            param_specs=param_specs)
  shardings = partitioning.train_state_shardings(config, tx, device_mesh, rules)
  step_fn = partitioned_train_step(
      make_train_step(config, num_microbatches, loss_normalizing_factor, label_smoothing, z_loss,
                      lr),
      shardings, device_mesh, rules)
  return TrainStep(step_fn, tx, lr, shardings)
