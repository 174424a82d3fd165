"""Training data: packed prefix-LM batches from seqio as global ``jax.Array``s, resumable.

Each host reads its shard (``ShardInfo(process_index, process_count)``) of
``seqio.get_dataset(..., DecoderFeatureConverter(pack=True))`` with ``batch_size = global //
process_count`` and an **explicit seed** (t5x's ``seed=None`` would reshuffle on every restart).

Exact resume: the pipeline is deterministic for a fixed seed, task/mixture, feature lengths,
global batch size and host count (seqio seeds its shuffles and mixture sampling; tf.data keeps
element order). The iterator counts the batches it has handed out (``position``); the trainer
stores that number in every checkpoint and a resumed run builds the same pipeline and skips
exactly ``position`` batches (``Dataset.skip``). Skipping re-runs preprocessing for the skipped
batches (cost linear in the position, no storage) instead of saving tf.data iterator state
(t5x's ``save_dataset=True``). Changing the host count or batch size changes the order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import Mesh

from flan_jax import partitioning


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What to read; ``batch_size`` is global (all hosts)."""

  mixture_or_task_name: str
  task_feature_lengths: Mapping[str, int]
  batch_size: int
  split: str = "train"
  seed: int = 0
  shuffle: bool = True
  use_cached: bool = False
  pack: bool = True


def get_dataset(cfg: DataConfig, shard_id: int = 0, num_shards: int = 1) -> tf.data.Dataset:
  """This host's infinite stream of numpy-able model-feature batches (batch = global / shards)."""
  if cfg.batch_size % num_shards:
    raise ValueError(f"global batch {cfg.batch_size} not divisible by {num_shards} hosts")
  converter = seqio.DecoderFeatureConverter(pack=cfg.pack)
  ds = seqio.get_dataset(
      cfg.mixture_or_task_name, task_feature_lengths=dict(cfg.task_feature_lengths),
      dataset_split=cfg.split, shuffle=cfg.shuffle, num_epochs=None, use_cached=cfg.use_cached,
      seed=cfg.seed, batch_size=cfg.batch_size // num_shards, feature_converter=converter,
      shard_info=seqio.ShardInfo(shard_id, num_shards))
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options)


class TrainIterator(Iterator[dict[str, jax.Array]]):
  """Global, sharded batches starting at batch ``position``; ``position`` counts batches taken."""

  def __init__(self, cfg: DataConfig, mesh: Mesh, position: int = 0):
    self.cfg = cfg
    self.mesh = mesh
    self.position = position
    ds = get_dataset(cfg, jax.process_index(), jax.process_count())
    if position:
      ds = ds.skip(position)
    self._it = ds.prefetch(2).as_numpy_iterator()

  def __next__(self) -> dict[str, jax.Array]:
    batch = next(self._it)
    self.position += 1
    return partitioning.host_local_to_global(
        {k: np.asarray(v) for k, v in batch.items()}, self.mesh)
