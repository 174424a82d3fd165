"""Multi-process watchdog: a dead peer stops the survivors promptly, with one readable line.

Without it a process whose peer died waits in a collective until jax's coordination service
gives up (~100 s) and aborts with a C++ stack dump. :func:`start` (called by
:func:`flan_jax.entry.initialize_distributed`) runs a daemon thread in every process: it bumps a
counter in the coordinator's key-value store every second and watches the peers' counters. A
peer whose counter has not moved for ``timeout_s`` (default 20 s; ``FLAN_JAX_HEARTBEAT_TIMEOUT``),
a peer that exited ``timeout_s`` ago while this one still runs, or an unreachable coordinator
(process 0 died) ends this process with exit code 1 after printing, e.g.::

    flan_jax: process 1 of 2 stopped sending heartbeats 20 s ago (killed, or its host is gone);
    stopping process 0 too. Restart all 2 processes with the same command: training resumes
    from the latest complete checkpoint.

Counters are compared on the watcher's own clock, so clock skew between hosts does not matter.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

PREFIX = "flan_jax/parallel/heartbeat/"
DEFAULT_TIMEOUT_S = 20.0
_RESTART = ("Restart all {n} processes with the same command: training resumes from the latest "
            "complete checkpoint.")


def _die(message: str) -> None:
  print(f"flan_jax: {message}", file=sys.stderr, flush=True)
  os._exit(1)


def watch(client, index: int, count: int, timeout_s: float, interval_s: float = 1.0,
          stop: threading.Event | None = None) -> None:
  """The watchdog loop (``client``: jax's ``DistributedRuntimeClient``)."""
  seen: dict[int, tuple[str | None, float]] = {}
  beat = 0
  restart = _RESTART.format(n=count)
  while stop is None or not stop.is_set():
    beat += 1
    try:
      client.key_value_set(f"{PREFIX}{index}", str(beat), allow_overwrite=True)
      values = dict(client.key_value_dir_get(PREFIX))
    except Exception as e:  # noqa: BLE001 -- the coordinator (process 0) is gone.
      if index == 0:
        raise
      reason = " ".join(str(e).split())[:160]
      _die(f"lost the coordinator (process 0 of {count}: {reason}); stopping process {index} "
           f"too. {restart}")
    now = time.monotonic()
    for peer in range(count):
      if peer == index:
        continue
      value = values.get(f"{PREFIX}{peer}")
      if peer not in seen or value != seen[peer][0]:
        seen[peer] = (value, now)
        continue
      idle = now - seen[peer][1]
      if idle < timeout_s:
        continue
      if value == "exited":
        _die(f"process {peer} of {count} exited {idle:.0f} s ago while process {index} still "
             f"runs (see its log for why); stopping process {index} too. {restart}")
      _die(f"process {peer} of {count} stopped sending heartbeats {idle:.0f} s ago (killed, or "
           f"its host is gone); stopping process {index} too. {restart}")
    time.sleep(interval_s)


def start(index: int, count: int, timeout_s: float | None = None) -> threading.Thread | None:
  """Starts the watchdog thread of this process (after ``jax.distributed.initialize``)."""
  if count < 2:
    return None
  from jax._src import distributed
  client = distributed.global_state.client
  if client is None:
    return None
  timeout_s = float(os.environ.get("FLAN_JAX_HEARTBEAT_TIMEOUT", timeout_s or DEFAULT_TIMEOUT_S))

  def exited() -> None:
    try:
      client.key_value_set(f"{PREFIX}{index}", "exited", allow_overwrite=True)
    except Exception:  # noqa: BLE001 -- the coordinator may be gone already.
      pass

  atexit.register(exited)
  thread = threading.Thread(target=watch, args=(client, index, count, timeout_s), daemon=True,
                            name="flan_jax-heartbeat")
  thread.start()
  return thread
