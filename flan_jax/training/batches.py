"""Training data: packed prefix-LM batches from seqio as global ``jax.Array``s, resumable.

The global batch is cut into ``num_shards`` data shards (default: one per process): shard ``s``
is ``seqio.get_dataset(..., DecoderFeatureConverter(pack=True), shard_info=ShardInfo(s,
num_shards))`` with ``batch_size = global // num_shards`` and an **explicit seed** (t5x's
``seed=None`` would reshuffle on every restart), and fills global rows ``[s * b, (s + 1) * b)``.
Each process reads the shards covering the rows its devices hold (a contiguous block, see
:func:`process_row_block`) and concatenates them in shard order. So the global batch depends on
``num_shards`` but not on the physical process count: one process with ``num_shards=2``
assembles exactly the batch that two processes assemble.

Exact resume: the pipeline is deterministic for a fixed seed, task/mixture, feature lengths,
global batch size and shard count (seqio seeds its shuffles and mixture sampling; tf.data keeps
element order). The iterator counts the batches it has handed out (``position``); the trainer
stores that number (and the shard count) in every checkpoint and a resumed run builds the same
pipeline and skips exactly ``position`` batches (``Dataset.skip``). Skipping re-runs
preprocessing for the skipped batches (cost linear in the position, no storage) instead of
saving tf.data iterator state (t5x's ``save_dataset=True``). Changing the shard count or batch
size changes the order.

Packers (``DataConfig.packer``, gin ``PACKER``): ``"seqio"`` (default) is seqio's greedy
``DecoderFeatureConverter(pack=True)``; ``"best_fit"`` packs the converter's unpacked rows with
:func:`flan_jax.data.packing.best_fit_pack` (window ``pack_window`` open rows; 99.7 % non-padding
at 1024 / 256 against seqio's 95.5 %, ``bench/packing.py``) into the same features (segment ids,
positions, per-segment inputs, loss weights and causal attention). It is a pure function of the
(deterministic) unpacked stream, so resume skips batches the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import Mesh

from flan_jax.data import bad_data, packing
from flan_jax.data import preprocessors as prep
from flan_jax.parallel import partitioning
from flan_jax.training.config import PACKERS, check_packer  # noqa: F401  (re-exported)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """What to read; ``batch_size`` is global (all hosts); ``num_shards`` None = process count."""

  mixture_or_task_name: str
  task_feature_lengths: Mapping[str, int]
  batch_size: int
  split: str = "train"
  seed: int = 0
  shuffle: bool = True
  use_cached: bool | None = False  # None: the seqio cache when every sub-task has one.
  pack: bool = True
  num_shards: int | None = None
  packer: str = "seqio"  # With ``pack``: one of PACKERS.
  pack_window: int = 32  # Open rows of the best-fit packer.
  device_prefetch: int = 2  # Global batches put on the devices ahead of the step (0: none).

  def __post_init__(self):
    check_packer(self.packer)

  @property
  def resolved_num_shards(self) -> int:
    return self.num_shards or jax.process_count()


def resolve_use_cached(mixture_or_task_name: str, use_cached: bool | None) -> bool:
  """``USE_CACHED_TASKS``: None reads seqio's offline cache (``flan-jax cache-tasks``) when every
  sub-task has one in the cache dirs, else the raw data; True requires the cache (an error names
  the uncached tasks and the fix); False never reads it."""
  if use_cached is False:
    return False
  item = seqio.get_mixture_or_task(mixture_or_task_name)
  tasks = seqio.get_subtasks(item) if isinstance(item, seqio.Mixture) else [item]
  missing = [t.name for t in tasks if not t.cache_dir]
  if use_cached is None:
    return not missing
  if missing:
    dirs = seqio.utils.get_global_cache_dirs()
    raise ValueError(
        f"USE_CACHED_TASKS=True but {len(missing)} task(s) of {mixture_or_task_name!r} have no "
        f"seqio cache in {dirs or 'any cache dir (none set)'}: {', '.join(missing[:5])}"
        f"{' ...' if len(missing) > 5 else ''}. Cache them with `flan-jax cache-tasks "
        f"--tasks={mixture_or_task_name} --output_cache_dir=DIR` and pass "
        "--seqio_additional_cache_dirs=DIR, or set USE_CACHED_TASKS=None (use a cache when "
        "there is one) or False")
  return True


class TruncationCounter:
  """Counts, per task feature, the examples streamed so far and those longer than their
  ``TASK_FEATURE_LENGTHS`` entry (which seqio then truncates), with the longest lengths.

  Counted by :func:`count_truncation` in each task's pipeline right before seqio's
  ``append_eos_after_trim`` trims (a map that only reads lengths, so batches are unchanged), as
  examples are read: before shuffling and mixing, so including the shuffle buffer's, prefetched
  ones and those skipped on resume; per process.
  """

  def __init__(self, task_feature_lengths: Mapping[str, int]):
    self.lengths = dict(task_feature_lengths)
    with tf.init_scope():  # [seen, truncated per feature] in one variable: read consistently.
      self._counts = tf.Variable(tf.zeros(1 + len(self.lengths), tf.int64), trainable=False)
      self._longest = {k: tf.Variable(0, dtype=tf.int64, trainable=False) for k in self.lengths}

  def wrap(self, ds: tf.data.Dataset,
           output_features: Mapping[str, seqio.Feature]) -> tf.data.Dataset:
    """``ds`` (tokenized, untrimmed task examples, before EOS) with every example counted
    (its length with the EOS to come); elements pass unchanged."""
    features = [k for k in self.lengths if k in ds.element_spec]

    def count(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
      over, ops = [tf.constant(1, tf.int64)], []
      for k, limit in self.lengths.items():
        if k not in features:
          over.append(tf.constant(0, tf.int64))
          continue
        eos = int(k in output_features and output_features[k].add_eos)
        n = tf.cast(tf.shape(ex[k])[0], tf.int64) + eos
        over.append(tf.cast(n > limit, tf.int64))
        ops.append(self._longest[k].assign(tf.maximum(self._longest[k], n)))
      ops.append(self._counts.assign_add(tf.stack(over)))
      with tf.control_dependencies(ops):
        return {k: tf.identity(v) for k, v in ex.items()}

    return ds.map(count)

  def counts(self) -> dict[str, tuple[int, int, int]]:
    """``{feature: (truncated, seen, longest)}`` so far."""
    counts = [int(x) for x in self._counts.numpy()]
    return {k: (counts[1 + i], counts[0], int(self._longest[k].numpy()))
            for i, k in enumerate(self.lengths)}

  def messages(self) -> list[str]:
    """One line per feature with truncated examples so far (none: empty)."""
    return [f"{k}: {over} of {seen} examples so far were longer than TASK_FEATURE_LENGTHS"
            f"[{k!r}]={self.lengths[k]} and were truncated (longest {longest}); raise it to keep "
            "them" for k, (over, seen, longest) in self.counts().items() if over]


_COUNTERS: list[TruncationCounter | None] = prep.TRUNCATION_COUNTERS  # Being built.


def count_truncation(ds: tf.data.Dataset,
                     output_features: Mapping[str, seqio.Feature]) -> tf.data.Dataset:
  """``ds`` counted by the :class:`TruncationCounter` of the training pipeline being built (see
  :func:`get_dataset`); unchanged elsewhere (evaluation, ``show``)."""
  counter = _COUNTERS[-1] if _COUNTERS else None
  return ds if counter is None else counter.wrap(ds, output_features)


# Resident memory one live (uncached) sub-task pipeline holds, measured on flan2022_submix's
# tasks (BENCHMARKS.md: 21 MB zero-shot, 40 MB few-shot, 24 MB on average).
LIVE_TASK_MB = 24


def available_memory_mb() -> float | None:
  """MemAvailable of this (Linux) machine in MB; None where /proc/meminfo is missing."""
  try:
    with open("/proc/meminfo") as f:
      fields = dict(line.split(":", 1) for line in f)
  except OSError:
    return None
  return int(fields["MemAvailable"].split()[0]) / 1024


def warn_if_too_big(mixture_or_task_name: str, use_cached: bool, pipelines: int = 1
                    ) -> str | None:
  """Warns (and returns the message) when ``pipelines`` input pipelines of the mixture's
  uncached sub-tasks would need more memory than is available, before minutes of building end
  in an out-of-memory kill."""
  item = seqio.get_mixture_or_task(mixture_or_task_name)
  tasks = seqio.get_subtasks(item) if isinstance(item, seqio.Mixture) else [item]
  live = len(tasks) if not use_cached else 0
  need = live * LIVE_TASK_MB * pipelines
  have = available_memory_mb()
  if have is None or need <= 0.8 * have:
    return None
  message = (
      f"{mixture_or_task_name!r}: {live} uncached sub-tasks x {pipelines} data shard(s) x "
      f"~{LIVE_TASK_MB} MB each is ~{need / 1024:.0f} GB of input-pipeline memory, more than the "
      f"{have / 1024:.0f} GB available here; the process will likely be killed before its first "
      "batch. Train on a smaller (e.g. per-source) submix, from its export through one "
      "pipeline (`flan-jax export-data NAME --shard i/N`, then "
      "flan_jax.data.exported.register_exported), or on a host with more memory.")
  logging.warning(message)
  return message


def get_dataset(cfg: DataConfig, shard_id: int = 0, num_shards: int = 1,
                counter: TruncationCounter | None = None) -> tf.data.Dataset:
  """Shard ``shard_id``'s infinite stream of numpy-able model-feature batches (global / shards);
  ``counter`` counts the examples the feature lengths truncate (batches unchanged)."""
  if cfg.batch_size % num_shards:
    raise ValueError(f"global batch {cfg.batch_size} not divisible by {num_shards} data shards")
  best_fit = cfg.pack and cfg.packer == "best_fit"
  converter = seqio.DecoderFeatureConverter(pack=cfg.pack and not best_fit)
  batch_size = cfg.batch_size // num_shards
  use_cached = resolve_use_cached(cfg.mixture_or_task_name, cfg.use_cached)
  _COUNTERS.append(counter)
  try:
    ds = seqio.get_dataset(
        cfg.mixture_or_task_name, task_feature_lengths=dict(cfg.task_feature_lengths),
        dataset_split=cfg.split, shuffle=cfg.shuffle, num_epochs=None,
        use_cached=use_cached,
        seed=cfg.seed, batch_size=None if best_fit else batch_size,
        feature_converter=converter, shard_info=seqio.ShardInfo(shard_id, num_shards))
  finally:
    _COUNTERS.pop()
  if best_fit:
    length = sum(cfg.task_feature_lengths.values())
    ds = best_fit_dataset(ds, length, cfg.pack_window).batch(batch_size, drop_remainder=True)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options)


def best_fit_dataset(unpacked: tf.data.Dataset, length: int, window: int) -> tf.data.Dataset:
  """Rows of ``length`` slots best-fit packed (:func:`flan_jax.data.packing.best_fit_pack`) from
  ``unpacked`` (``DecoderFeatureConverter(pack=False)`` rows, unbatched), with seqio's packed
  features; read in order by one Python generator, so the stream stays deterministic."""
  spec = unpacked.element_spec
  names = [k for k in packing.PACKED_FEATURES if k in spec]
  signature = {k: tf.TensorSpec([length], spec[k].dtype) for k in names}
  signature |= {k: tf.TensorSpec([length], tf.int32)
                for k in ("decoder_segment_ids", "decoder_positions")}
  return tf.data.Dataset.from_generator(
      lambda: packing.best_fit_pack(unpacked.as_numpy_iterator(), length, window),
      output_signature=signature)


def process_row_block(mesh: Mesh, batch_size: int,
                      process_index: int | None = None) -> tuple[int, int]:
  """``[lo, hi)``: the global batch rows that ``process_index``'s devices hold under the data
  sharding (``host_local_to_global`` fills them with the process-local batch, in row order)."""
  process_index = jax.process_index() if process_index is None else process_index
  index_map = partitioning.data_sharding(mesh).devices_indices_map((batch_size,))
  rows: set[int] = set()
  for device, index in index_map.items():
    if device.process_index == process_index:
      rows.update(range(batch_size)[index[0]])
  lo, hi = min(rows), max(rows) + 1
  if len(rows) != hi - lo:
    raise ValueError(f"process {process_index} holds non-contiguous batch rows {sorted(rows)}")
  return lo, hi


def shards_for_process(cfg: DataConfig, mesh: Mesh,
                       process_index: int | None = None) -> list[int]:
  """The data shards (in order) whose rows this process's devices hold."""
  num_shards = cfg.resolved_num_shards
  if cfg.batch_size % num_shards:
    raise ValueError(f"global batch {cfg.batch_size} not divisible by {num_shards} data shards")
  per_shard = cfg.batch_size // num_shards
  lo, hi = process_row_block(mesh, cfg.batch_size, process_index)
  if lo % per_shard or hi % per_shard:
    raise ValueError(
        f"process {jax.process_index() if process_index is None else process_index} holds batch "
        f"rows [{lo}, {hi}), not whole data shards of {per_shard} rows ({num_shards} shards of a "
        f"global batch of {cfg.batch_size}); use a num_shards that the process count divides")
  return list(range(lo // per_shard, hi // per_shard))


def _concat(*shards: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  return {k: tf.concat([s[k] for s in shards], axis=0) for k in shards[0]}


class TrainIterator(Iterator[dict[str, jax.Array]]):
  """Global, sharded batches starting at batch ``position``; ``position`` counts batches taken.

  ``last_local_batch`` is the host-local numpy batch behind the latest global batch;
  ``truncation`` counts the examples read so far that the feature lengths truncate.
  """

  def __init__(self, cfg: DataConfig, mesh: Mesh, position: int = 0):
    self.cfg = cfg
    self.mesh = mesh
    self.position = position
    self.shards = shards_for_process(cfg, mesh)
    num_shards = cfg.resolved_num_shards
    self.truncation = TruncationCounter(cfg.task_feature_lengths)
    warn_if_too_big(cfg.mixture_or_task_name,
                    resolve_use_cached(cfg.mixture_or_task_name, cfg.use_cached), len(self.shards))
    parts = [get_dataset(cfg, s, num_shards, self.truncation) for s in self.shards]
    ds = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts)).map(_concat)
    if position:
      ds = ds.skip(position)
    it = ds.prefetch(2).as_numpy_iterator()
    self._it: Iterator[tuple[dict, dict]] = (
        (local, partitioning.host_local_to_global(local, mesh))
        for local in ({k: np.asarray(v) for k, v in b.items()} for b in it))
    if cfg.device_prefetch > 0:
      self._it = DevicePrefetch(self._it, cfg.device_prefetch)
    self.last_local_batch: dict[str, np.ndarray] | None = None

  def __next__(self) -> dict[str, jax.Array]:
    try:
      self.last_local_batch, batch = next(self._it)
    except tf.errors.OpError as e:  # tf.data's bare "corrupted record at N": name the file.
      message = bad_data.explain_record_error(self.cfg.mixture_or_task_name, self.cfg.split, e)
      if message is None:
        raise
      raise bad_data.BadDataError(message) from e
    self.position += 1
    return batch

  def close(self) -> None:
    """Stops the device-prefetch thread (the pipeline is dropped with the iterator)."""
    if isinstance(self._it, DevicePrefetch):
      self._it.close()


class DevicePrefetch:
  """Iterates ``source`` on a background thread, up to ``depth`` items ahead.

  Here the items are (host batch, global ``jax.Array`` batch): reading tf.data and copying the
  batch to the devices overlap the running step. Written by hand because the libraries' helpers
  do something else: ``flax.jax_utils.prefetch_to_device`` splits a leading axis over local
  devices for ``pmap`` and runs in the caller's thread; ``tf.data``'s ``prefetch_to_device`` puts
  tensors on TensorFlow devices. One producer keeps the order, so batches stay deterministic; an
  exception in the producer is raised by the next ``next()``.
  """

  _END = object()

  def __init__(self, source: Iterator, depth: int):
    self._queue: queue.Queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._produce, args=(source,), daemon=True,
                                    name="flan_jax-device-prefetch")
    self._thread.start()

  def _produce(self, source: Iterator) -> None:
    try:
      for item in source:
        if not self._put(item):
          return
      self._put(self._END)
    except BaseException as e:  # noqa: BLE001 -- re-raised in the consumer's thread.
      self._put(e)

  def _put(self, item) -> bool:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def __iter__(self) -> DevicePrefetch:
    return self

  def __next__(self):
    item = self._queue.get()
    if item is self._END:
      self._queue.put(item)  # Later calls stop too.
      raise StopIteration
    if isinstance(item, BaseException):
      raise item
    return item

  def close(self) -> None:
    self._stop.set()
    self._thread.join(timeout=5)


# --- offline caching (seqio's cache_tasks_main) ------------------------------------------------


def cache_tasks_main(argv: list[str] | None = None) -> None:
  """``flan-jax cache-tasks --tasks=REGEX --output_cache_dir=DIR [--module_import=M ...]``:
  seqio's Apache Beam caching job (same flags) with the project's tasks and mixtures imported.
  Train from the cache with ``--seqio_additional_cache_dirs=DIR`` (USE_CACHED_TASKS None/True).
  """
  import sys
  try:
    import apache_beam  # noqa: F401
  except ImportError:
    sys.exit("flan-jax cache-tasks: error: seqio's caching job needs apache-beam; install it "
             "with `pip install 'flan_jax[cache]'` (or `pip install apache-beam`)")
  from absl import app
  from seqio.scripts import cache_tasks_main as seqio_cache
  argv = sys.argv[1:] if argv is None else list(argv)
  modules = ["--module_import=flan_jax.tasks", "--module_import=flan_jax.mixtures",
             "--module_import=flan_jax.mixtures.flan2022"]  # Flan 2022: --tasks='flan2022_cot_.*'
  app.run(seqio_cache.main, argv=["flan-jax cache-tasks", *modules, *argv])
