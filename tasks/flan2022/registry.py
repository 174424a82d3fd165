"""Registering Flan 2022 tasks: one seqio task per (task, prompt mode).

A task is a :class:`Flan2022Task`: a data source, the steps that turn its raw rows into
*candidates* (:mod:`flan_jax.data.prompt_modes`) and its train size. Registered names are
``flan2022_{source}_{task}_{mode}`` with ``mode`` in ``zs_opt``, ``zs_noopt``, ``fs_opt``,
``fs_noopt`` (NIv2, CoT and dialog: ``zs_opt`` and ``fs_opt`` only, as the reference).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import seqio
import tensorflow as tf

from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data import vocab as vocab_lib

# Source -> (the reference's ``_task_source`` label, rate cap, modes).
SOURCES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "flan2021": ("Flan2021", 30_000, pm.MODES),
    "t0": ("T0", 20_000, pm.MODES),
    "niv2": ("NIv2", 5_000, ("zs_opt", "fs_opt")),
    "cot": ("CoT", 100_000, ("zs_opt", "fs_opt")),
    "dialog": ("Dialog", 200_000, ("zs_opt", "fs_opt")),
}
INVERSION_RATE = 0.3  # an input-inversion task's rate relative to its base task
PREFIX = "flan2022_"
# Each task's shuffle buffer. seqio's default (1,000) is filled per task before a mixture yields
# anything: ~1.9M rendered examples held in memory before flan2022_submix's first batch. The
# mixture's sampling across ~1,900 tasks already interleaves them; within a task, 128 shuffles over
# a 128-example window (TFDS sources also shuffle their files).
SHUFFLE_BUFFER = 128


@dataclasses.dataclass(frozen=True)
class Flan2022Task:
  """One Flan 2022 task (all its modes).

  Attributes:
    name: ``{source}_{dataset}`` (``_ii`` suffix for input inversion), e.g. ``cot_gsm8k``.
    source: a key of :data:`SOURCES`.
    data_source: the seqio source with a ``train`` split.
    head: preprocessors from raw rows to candidates.
    size: train examples from the static table (None: unknown).
    inversion_of: for an input-inversion task, the name of its base task.
  """

  name: str
  source: str
  data_source: seqio.DataSource
  head: tuple[Callable, ...]
  size: int | None
  inversion_of: str | None = None

  @property
  def modes(self) -> tuple[str, ...]:
    return SOURCES[self.source][2]

  def task_name(self, mode: str) -> str:
    return f"{PREFIX}{self.name}_{mode}"

  def rate(self) -> float:
    """``min(cap, size)`` (the cap when the size is unknown); x0.3 for inversions."""
    cap = SOURCES[self.source][1]
    rate = float(cap if self.size is None else min(cap, self.size))
    return rate * (INVERSION_RATE if self.inversion_of else 1.0)


TASKS: dict[str, Flan2022Task] = {}


def _raw_train(task: Flan2022Task) -> tf.data.Dataset:
  ds = task.data_source.get_dataset(split="train", shuffle=False)
  for step in task.head:
    ds = step(ds)
  return ds


def register(task: Flan2022Task) -> Flan2022Task:
  """Registers ``task``'s seqio task in every mode of its source."""
  if task.name in TASKS:
    raise ValueError(f"Flan 2022 task {task.name!r} is already registered.")
  if task.source not in SOURCES:
    raise ValueError(f"{task.name}: unknown source {task.source!r}; use one of {list(SOURCES)}.")
  label = SOURCES[task.source][0]
  for mode in task.modes:
    step = pm.render_mode(mode, task.name, label, pool_fn=lambda t=task: _raw_train(t),
                          vocabulary=vocab_lib.DEFAULT_VOCABULARY,
                          dialog=task.source == "dialog")
    seqio.TaskRegistry.add(
        task.task_name(mode),
        source=task.data_source,
        preprocessors=[*task.head, step, *prep.tokenize_chain()],
        output_features=vocab_lib.output_features(),
        metric_fns=[],
        shuffle_buffer_size=SHUFFLE_BUFFER,
    )
  TASKS[task.name] = task
  return task


def of_source(source: str, modes: Sequence[str] | None = None) -> list[tuple[str, float]]:
  """(task name, rate) of every registered task of ``source`` in ``modes`` (default: all)."""
  return [(t.task_name(m), t.rate()) for t in TASKS.values() if t.source == source
          for m in t.modes if modes is None or m in modes]


def check_sizes(tfds_data_dir: str | None = None, only: Sequence[str] | None = None
                ) -> list[tuple[str, int | None, int | None]]:
  """(task, static size, size of the prepared data or None) for every Flan 2022 task (of the
  sources in ``only``): local sources count their rows (where their directory is set), TFDS
  sources read the metadata."""
  from flan_jax.data import sizes as tfds_sizes
  from flan_jax.data.spec import MissingDataError, TfdsSource
  rows = []
  for task in TASKS.values():
    if only and task.source not in only:
      continue
    source = task.data_source
    actual = None
    if isinstance(source, TfdsSource):
      actual = tfds_sizes.verify(source.tfds_dataset.name, source.split_map["train"],
                                 tfds_data_dir)
    elif hasattr(source, "count_rows"):
      try:
        actual = source.count_rows("train")
      except MissingDataError:
        actual = None
    rows.append((task.name, task.size, actual))
  return rows
