"""Messages for the person running a (possibly multi-host) job."""

from __future__ import annotations

import logging
import sys

import jax


def announce(message: str) -> None:
  """Logs ``message`` on every host and prints it to stderr once (process 0)."""
  logging.info(message)
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)
