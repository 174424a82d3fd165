"""Run-time tools of a training run: jax's persistent compilation cache and the compile report.

The cache (``COMPILATION_CACHE_DIR``, default ``MODEL_DIR/compilation_cache``) keeps each
compiled XLA program, so a restarted run (preemption, a crash, the same config again) loads its
programs instead of compiling them. jax writes entries from process 0 only: on a multi-host
slice put the cache on storage every host reads (``gs://...`` works through etils' epath, as
MODEL_DIR usually is). :class:`CompileStats` counts XLA compile seconds and cache hits through
``jax.monitoring``; the loop prints one line after the first step, e.g.
``compile 14.2 s: 3 programs compiled, 0 from the cache at /run/compilation_cache``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
from jax.experimental.compilation_cache import compilation_cache

# jax.monitoring events (jax/_src/dispatch.py, compiler.py, compilation_cache.py).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # A compile or cache load.
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
CACHE_MISS_EVENT = "/jax/compilation_cache/cache_misses"


_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")


def _apply(values: dict[str, Any]) -> None:
  if values["jax_compilation_cache_dir"] != jax.config.jax_compilation_cache_dir:
    compilation_cache.reset_cache()  # jax opens its cache once per process; reopen it.
  for name, value in values.items():
    jax.config.update(name, value)


@contextlib.contextmanager
def persistent_cache(path: str | None) -> Iterator[None]:
  """jax's persistent compilation cache at ``path`` (None: off) inside the block, caching every
  program however small or quick to compile (jax's defaults skip programs that compile in under
  1 s); the process's own settings again after it."""
  before = {name: getattr(jax.config, name) for name in _SETTINGS}
  inside = dict(before, jax_compilation_cache_dir=path)
  if path is not None:
    inside.update(jax_persistent_cache_min_compile_time_secs=0.0,
                  jax_persistent_cache_min_entry_size_bytes=-1)  # -1: no size limit.
  _apply(inside)
  try:
    yield
  finally:
    _apply(before)


class CompileStats:
  """XLA compile seconds and persistent-cache hits/misses while open (a context manager; jax's
  listeners are global, so :meth:`close` removes them)."""

  def __init__(self) -> None:
    self.seconds, self.programs, self.hits, self.misses = 0.0, 0, 0, 0
    self._open = False

  def _on_duration(self, event: str, duration: float, **kwargs: object) -> None:
    del kwargs
    if event == BACKEND_COMPILE_EVENT:
      self.seconds += duration
      self.programs += 1

  def _on_event(self, event: str, **kwargs: object) -> None:
    del kwargs
    if event == CACHE_HIT_EVENT:
      self.hits += 1
    elif event == CACHE_MISS_EVENT:
      self.misses += 1

  def open(self) -> CompileStats:
    if not self._open:
      jax.monitoring.register_event_duration_secs_listener(self._on_duration)
      jax.monitoring.register_event_listener(self._on_event)
      self._open = True
    return self

  def close(self) -> None:
    if self._open:
      jax.monitoring.unregister_event_duration_listener(self._on_duration)
      jax.monitoring.unregister_event_listener(self._on_event)
      self._open = False

  def __enter__(self) -> CompileStats:
    return self.open()

  def __exit__(self, *exc: object) -> None:
    self.close()

  def summary(self, cache_path: str | None) -> str:
    """One line: compile seconds, programs compiled and loaded from the cache, where it is."""
    if cache_path is None:
      where = "no persistent compilation cache (COMPILATION_CACHE_DIR = None)"
    else:
      where = f"{self.hits} from the cache at {cache_path}"
    compiled = self.programs - self.hits
    return (f"compile {self.seconds:.1f} s: {compiled} program{'s' * (compiled != 1)} compiled, "
            f"{where}")
