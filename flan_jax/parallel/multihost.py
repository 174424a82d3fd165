"""Multi-host helpers: barriers and values agreed on by every process."""

from __future__ import annotations

import time

import jax
import numpy as np


def sync(name: str) -> None:
  """A barrier across processes (a no-op on one host)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def shared_seed(random_seed: int | None) -> int:
  """``random_seed``, or (None) one drawn from the clock on process 0 and sent to all."""
  if random_seed is not None:
    return int(random_seed)
  from jax.experimental import multihost_utils
  seed = np.int32(time.time_ns() % (2**31 - 1))
  return int(multihost_utils.broadcast_one_to_all(seed))
