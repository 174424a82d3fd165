"""Fixed-shape batches over a list of units (items, prompts, rows): every batch has
``batch_size`` rows, so one compiled function serves them all; the last is padded with copies
of its first unit, whose outputs are dropped."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PAD = -1  # The index of a padding row.


def round_up(n: int, multiple: int) -> int:
  """``n`` rounded up to a multiple of ``multiple``, at least one (padded lengths: fewer compiled
  shapes)."""
  return max(multiple, -(-n // multiple) * multiple)


def padded_batches(num_units: int, batch_size: int) -> Iterator[np.ndarray]:
  """The unit indices of each batch, in order; the last batch padded with :data:`PAD`."""
  for start in range(0, num_units, batch_size):
    idx = np.arange(start, min(start + batch_size, num_units))
    yield np.concatenate([idx, np.full(batch_size - len(idx), PAD, int)])


def filled(idx: np.ndarray) -> np.ndarray:
  """``idx`` with each padding row replaced by the batch's first unit (real, valid inputs)."""
  return np.where(idx == PAD, idx[0], idx)
