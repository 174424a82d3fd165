"""Multi-host helpers: starting a multi-process run (flags or jax's cluster detection), barriers
and values agreed on by every process."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import jax
import numpy as np

from flan_jax.parallel import heartbeat


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


# --- starting a multi-process run -------------------------------------------------------------

MODES = ("auto", "on", "off")  # --multihost.
_FLAGS_HINT = ("pass --coordinator_address=HOST:PORT (process 0's host) --process_count=N "
               "--process_index=I (0..N-1, one per process)")
_FLAG_NAMES = {"coordinator_address": "coordinator_address", "num_processes": "process_count",
               "process_id": "process_index"}  # jax.distributed.initialize's names -> flags.


class DistributedInitError(RuntimeError):
  """A multi-process start that cannot go on; the message says what was found and what to set."""


@dataclasses.dataclass(frozen=True)
class Cluster:
  """A cluster environment found by jax's own detection (``jax._src.clusters``)."""

  name: str  # jax's ClusterEnv class, e.g. SlurmCluster, GceTpuCluster, GkeTpuCluster.
  process_count: int


def detect_cluster() -> Cluster | None:
  """The cluster environment ``jax.distributed.initialize()`` would use without arguments: the
  first of jax's detectors (Open MPI, SLURM, Cloud TPU VM metadata, GKE TPU's
  ``TPU_WORKER_HOSTNAMES``, Kubernetes with the ``kubernetes`` package) that finds its
  environment, in jax's order; the opt-in mpi4py detector is skipped, as jax skips it."""
  from jax._src import clusters
  for env in clusters.ClusterEnv._cluster_types:
    if env.opt_in_only_method or not env.is_env_present():
      continue
    try:
      count = int(env.get_process_count())
    except Exception as e:  # noqa: BLE001 -- reported with what was detected.
      raise DistributedInitError(
          f"jax detected a {env.__name__} environment but could not read its process count "
          f"({type(e).__name__}: {e}); {_FLAGS_HINT}, or --multihost=off for one process") from e
    return Cluster(env.__name__, count)
  return None


def distributed_arguments(coordinator_address: str | None, process_count: int | None,
                          process_index: int | None, mode: str = "auto"
                          ) -> tuple[dict[str, Any], Cluster | None] | None:
  """The keyword arguments of ``jax.distributed.initialize`` for the multi-host flags, with the
  cluster that fills in the rest; None: a single-process run (no initialization).

  All three flags: exactly those (no detection). Otherwise, where jax detects a cluster of
  more than one process (``mode`` 'auto') or any cluster (``mode`` 'on'), the flags given and
  jax's detection for the rest. ``mode`` 'off': never initialize."""
  if mode not in MODES:
    raise DistributedInitError(f"--multihost must be one of {MODES}, got {mode!r}")
  given = {k: v for k, v in (("coordinator_address", coordinator_address),
                             ("num_processes", process_count), ("process_id", process_index))
           if v is not None}
  if mode == "off":
    if given:
      raise DistributedInitError("--multihost=off starts one process; drop --coordinator_address, "
                                 "--process_count and --process_index (or use --multihost=auto)")
    return None
  if len(given) == 3:
    return given, None
  cluster = detect_cluster()
  if cluster is None:
    if given:
      raise DistributedInitError(
          f"--coordinator_address, --process_count and --process_index go together (got only "
          f"{', '.join('--' + _FLAG_NAMES[k] for k in given)}) and jax detected no cluster "
          "environment (SLURM, Cloud TPU, GKE, Kubernetes, Open MPI) to fill in the rest")
    if mode == "on":
      raise DistributedInitError(
          "--multihost=on but jax detected no cluster environment (SLURM: SLURM_JOB_ID, "
          "SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID from srun; Cloud TPU VM "
          "metadata; GKE TPU: TPU_WORKER_HOSTNAMES; Kubernetes: KUBERNETES_SERVICE_HOST and the "
          f"kubernetes package; Open MPI: OMPI_MCA_orte_hnp_uri); {_FLAGS_HINT}")
    return None
  if not given and cluster.process_count < 2 and mode == "auto":
    return None
  return given, cluster


def initialize(arguments: dict[str, Any], cluster: Cluster | None, timeout_s: int = 300) -> None:
  """``jax.distributed.initialize(**arguments)`` (jax's detection fills in what ``arguments``
  lacks; CPU collectives use gloo), then the heartbeat watchdog
  (:mod:`flan_jax.parallel.heartbeat`, whose timeouts also set jax's
  ``heartbeat_timeout_seconds``). One line first names the source and the flags that
  override it: jax ends the process itself (a C++ check) when peers do not connect in time."""
  source = (f"the {cluster.name} environment jax detected ({cluster.process_count} processes)"
            if cluster else "the flags")
  shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items()) or "no arguments"
  advice = (f"check that every process was started and can reach process 0, or {_FLAGS_HINT} "
            "(they override the detection), or --multihost=off for one process")
  print(f"flan_jax: jax.distributed.initialize({shown}) from {source}, waiting up to "
        f"{timeout_s} s (--initialization_timeout) for every process; if it fails, {advice}",
        file=sys.stderr, flush=True)
  try:
    timeouts = heartbeat.Timeouts.from_env()
  except ValueError as e:
    raise DistributedInitError(str(e)) from e
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    # jax's own watchdog set above ours, so that a dead peer gets our line, not its abort.
    jax.distributed.initialize(**arguments, initialization_timeout=timeout_s,
                               heartbeat_timeout_seconds=heartbeat.jax_heartbeat_timeout_s(timeouts))
  except Exception as e:  # noqa: BLE001 -- re-raised with what was detected and what to set.
    raise DistributedInitError(f"jax.distributed.initialize({shown}) from {source} failed: "
                               f"{type(e).__name__}: {e}; {advice}") from e
  from jax._src import distributed
  state = distributed.global_state
  heartbeat.start(state.process_id, state.num_processes, timeouts)  # A dead peer stops the rest.
