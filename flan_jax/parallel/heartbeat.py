"""Multi-process watchdog: a dead peer stops the survivors promptly, with one readable line.

Without it a process whose peer died waits in a collective until jax's coordination service
gives up and aborts with a C++ stack dump. :func:`start` (called by
:func:`flan_jax.parallel.multihost.initialize`) runs a daemon thread in every process: it writes
a counter to the coordinator's key-value store every second and watches the peers' counters.

How long a peer may stay silent depends on what it is doing (measured from its first completed
step, then adaptive; why: a live process under load starves its Python heartbeat thread mostly
while it starts up -- imports, building the input pipeline, tracing and compiling -- and a fixed
20 s declared live peers dead on a busy machine):

- until the peer has completed its first training step (:func:`step_completed`; its counter
  says so), ``startup_s`` (default 120 s; ``FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT``);
- after it, ``timeout_s`` (default 20 s; ``FLAN_JAX_HEARTBEAT_TIMEOUT``), raised to
  ``GAP_FACTOR`` times the longest silence of that peer seen since its first step (a loaded
  host stretches every gap), never above ``startup_s``;
- a peer that exited while this one still runs (a clean finish waits in jax's shutdown barrier,
  an error leaves this one hanging in a collective): ``startup_s``.

A peer silent that long, a peer gone that long, or an unreachable coordinator (process 0 died)
ends this process with exit code 1 after printing, e.g.::

    flan_jax: process 1 of 2 stopped sending heartbeats 20 s ago (killed, or its host is gone);
    stopping process 0 too. Restart all 2 processes with the same command: training resumes
    from the latest complete checkpoint.

jax's own detection (its coordination service's ``heartbeat_timeout_seconds``, 100 s by default,
which may fire from half of it after a death and aborts with a thread dump) is set by
:func:`jax_heartbeat_timeout_s` far enough above ``startup_s`` that this message always comes
first. Silences are measured on the watcher's own clock, so clock skew between hosts does not
matter.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import threading
import time

PREFIX = "flan_jax/parallel/heartbeat/"
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_STARTUP_S = 120.0
GAP_FACTOR = 3.0
INTERVAL_S = 1.0
EXITED = "exited"
_RESTART = ("Restart all {n} processes with the same command: training resumes from the latest "
            "complete checkpoint.")
_RUNNING = threading.Event()  # Set by step_completed(): this process completed a step.


@dataclasses.dataclass(frozen=True)
class Timeouts:
  """How long a peer may stay silent (seconds; see the module docstring)."""

  timeout_s: float = DEFAULT_TIMEOUT_S  # After the peer's first completed step (the floor).
  startup_s: float = DEFAULT_STARTUP_S  # Before it, after its exit, and the adaptive ceiling.

  def __post_init__(self):
    if not 0 < self.timeout_s <= self.startup_s:
      raise ValueError(
          f"heartbeat timeouts need 0 < FLAN_JAX_HEARTBEAT_TIMEOUT ({self.timeout_s:g} s) <= "
          f"FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT ({self.startup_s:g} s); raise the start-up one")

  @classmethod
  def from_env(cls) -> Timeouts:
    """The defaults, overridden by ``FLAN_JAX_HEARTBEAT_TIMEOUT`` /
    ``FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT`` (seconds)."""
    values = {}
    for field, name in (("timeout_s", "FLAN_JAX_HEARTBEAT_TIMEOUT"),
                        ("startup_s", "FLAN_JAX_HEARTBEAT_STARTUP_TIMEOUT")):
      text = os.environ.get(name)
      if text is None:
        continue
      try:
        values[field] = float(text)
      except ValueError:
        raise ValueError(f"{name}={text!r} is not a number of seconds") from None
    if "timeout_s" in values and "startup_s" not in values:
      values["startup_s"] = max(DEFAULT_STARTUP_S, values["timeout_s"])
    return cls(**values)


def jax_heartbeat_timeout_s(timeouts: Timeouts) -> int:
  """``heartbeat_timeout_seconds`` for ``jax.distributed.initialize``: jax may declare a peer
  dead from half of it after the peer's last beat, ours fires at most ``startup_s`` plus two
  beats after it; twice that plus a minute keeps ours first."""
  return int(2 * (timeouts.startup_s + 2 * INTERVAL_S) + 60)


def step_completed() -> None:
  """Tells the peers that this process completed a training step (its start-up is over): from
  then on they allow it the shorter, adaptive silence. Cheap; call it after every step."""
  _RUNNING.set()


def _die(message: str) -> None:
  print(f"flan_jax: {message}", file=sys.stderr, flush=True)
  os._exit(1)


def _beat_value(beat: int) -> str:
  return f"{'run' if _RUNNING.is_set() else 'start'}:{beat}"


class _Peer:
  """What the watcher saw of one peer: its last value, when it changed, its longest gap."""

  def __init__(self, value: str | None, now: float):
    self.value, self.changed, self.longest_gap = value, now, 0.0

  def update(self, value: str | None, now: float) -> None:
    if value != self.value:
      if self.running and value is not None and value.startswith("run:"):
        self.longest_gap = max(self.longest_gap, now - self.changed)
      self.value, self.changed = value, now

  @property
  def running(self) -> bool:
    return self.value is not None and self.value.startswith("run:")

  def allowed(self, timeouts: Timeouts) -> float:
    if not self.running:  # Starting up (or unknown), or exited.
      return timeouts.startup_s
    return min(timeouts.startup_s, max(timeouts.timeout_s, GAP_FACTOR * self.longest_gap))


def watch(client, index: int, count: int, timeouts: Timeouts, interval_s: float = INTERVAL_S,
          stop: threading.Event | None = None) -> None:
  """The watchdog loop (``client``: jax's ``DistributedRuntimeClient``, or anything with its
  ``key_value_set`` / ``key_value_dir_get``)."""
  peers: dict[int, _Peer] = {}
  beat = 0
  restart = _RESTART.format(n=count)
  while stop is None or not stop.is_set():
    beat += 1
    try:
      client.key_value_set(f"{PREFIX}{index}", _beat_value(beat), allow_overwrite=True)
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
      if peer not in peers:
        peers[peer] = _Peer(value, now)
        continue
      seen = peers[peer]
      seen.update(value, now)
      idle = now - seen.changed
      if idle < seen.allowed(timeouts):
        continue
      if value == EXITED:
        _die(f"process {peer} of {count} exited {idle:.0f} s ago while process {index} still "
             f"runs (see its log for why); stopping process {index} too. {restart}")
      phase = "after its first step" if seen.running else "while starting up"
      _die(f"process {peer} of {count} stopped sending heartbeats {idle:.0f} s ago {phase} "
           f"(killed, or its host is gone); stopping process {index} too. {restart}")
    time.sleep(interval_s)


def start(index: int, count: int, timeouts: Timeouts) -> threading.Thread | None:
  """Starts the watchdog thread of this process (after ``jax.distributed.initialize``, which
  ``timeouts`` also configured: :func:`jax_heartbeat_timeout_s`)."""
  if count < 2:
    return None
  from jax._src import distributed
  client = distributed.global_state.client
  if client is None:
    return None

  def exited() -> None:
    try:
      client.key_value_set(f"{PREFIX}{index}", EXITED, allow_overwrite=True)
    except Exception:  # noqa: BLE001 -- the coordinator may be gone already.
      pass

  atexit.register(exited)
  thread = threading.Thread(target=watch, args=(client, index, count, timeouts), daemon=True,
                            name="flan_jax-heartbeat")
  thread.start()
  return thread
