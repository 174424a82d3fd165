"""Shared command-line plumbing of ``python -m flan_jax.train`` and ``python -m flan_jax.eval``.

t5x's flags (``--gin_file``, ``--gin.NAME=VALUE``, ``--gin_bindings``, ``--gin_search_paths``,
``--tfds_data_dir``, multi-process ``--coordinator_address/--process_count/--process_index``) are
defined once per process, so both entry points (or repeated calls in a notebook) can run in one
interpreter.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import gin
import jax

from flan_jax import gin_utils


def _define_flags() -> None:
  from absl import flags
  if "gin_file" in flags.FLAGS:
    return
  flags.DEFINE_multi_string("gin_file", [], "Gin files; later ones override earlier ones.")
  flags.DEFINE_multi_string("gin_bindings", [], "Individual gin bindings.")
  flags.DEFINE_list("gin_search_paths", ["."], "Search paths for gin files (+ repo root).")
  flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir override for seqio.")
  flags.DEFINE_string("coordinator_address", None,
                      "Multi-host: HOST:PORT of process 0's coordinator (jax.distributed).")
  flags.DEFINE_integer("process_count", None, "Multi-host: number of processes.")
  flags.DEFINE_integer("process_index", None, "Multi-host: this process's index.")
  flags.DEFINE_integer("initialization_timeout", 300, "Multi-host: seconds to wait for peers.")


def initialize_distributed(coordinator_address: str, process_count: int | None,
                           process_index: int | None, timeout_s: int = 300) -> None:
  """``jax.distributed.initialize`` (t5x's multi-process flags); CPU collectives use gloo."""
  if process_count is None or process_index is None:
    raise ValueError("--coordinator_address needs --process_count and --process_index")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address, num_processes=process_count,
                             process_id=process_index, initialization_timeout=timeout_s)


def _is_config_error(error: ValueError) -> bool:
  """gin's parse errors and the required-macro check."""
  text = str(error)
  return any(marker in text for marker in (
      "required gin macro", "unknown gin macro", "No configurable matching",
      "doesn't have a parameter named", "In bindings string", "Unable to find file"))


def run(program: str, argv: Sequence[str] | None, required_macros: Sequence[str],
        configurable: Callable, on_result: Callable[[Any], None] | None = None) -> None:
  """Parses the flags (``argv``: flags only; None = ``sys.argv``), sets up distributed JAX,
  logging, TFDS and gin, checks ``required_macros``, calls gin's ``configurable`` and hands its
  result to ``on_result``."""
  from absl import app, flags
  from absl import logging as absl_logging

  from flan_jax.models.gin_config import rewrite_gin_args
  _define_flags()
  if flags.FLAGS.is_parsed():
    flags.FLAGS.unparse_flags()  # A second call in one process starts from the defaults.

  def main(_):
    values = flags.FLAGS
    if values.coordinator_address:  # Before anything touches devices.
      initialize_distributed(values.coordinator_address, values.process_count,
                             values.process_index, values.initialization_timeout)
    if not values["verbosity"].present:
      absl_logging.set_verbosity(absl_logging.WARNING)  # orbax/seqio INFO lines drown the bars.
    import seqio
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")  # Leave accelerator memory to JAX.
    if values.tfds_data_dir:
      seqio.set_tfds_data_dir_override(values.tfds_data_dir)
    from flan_jax.dataset_spec import MissingDataError
    from flan_jax.registry import UnknownNameError
    try:
      gin_utils.parse_gin(values.gin_file, values.gin_bindings, values.gin_search_paths)
      gin_utils.check_required_macros(required_macros)
      result = gin.get_configurable(configurable)()
    except (UnknownNameError, MissingDataError) as e:  # The message says it all.
      sys.exit(f"{program}: error: {e}")
    except ValueError as e:
      if not _is_config_error(e):
        raise
      sys.exit(f"{program}: error: {e}")
    if on_result is not None:
      on_result(result)

  # absl wants a program name first.
  full = list(sys.argv) if argv is None else [program, *argv]
  app.run(main, argv=rewrite_gin_args(full))
