"""Shared command-line plumbing of ``python -m flan_jax.train``, ``.eval`` and ``.infer``.

t5x's flags (``--gin_file``, ``--gin.NAME=VALUE``, ``--gin_bindings``, ``--gin_search_paths``,
``--tfds_data_dir``, multi-process ``--coordinator_address/--process_count/--process_index``;
``--multihost=auto`` starts jax.distributed without them where jax detects the cluster),
seqio's ``--module_import`` and absl's ``--verbosity`` are defined once per process, so the entry
points (or repeated calls in a notebook) can run in one interpreter. :func:`run` is the command
line (absl's ``app.run``: exits, errors as messages); :func:`call` is the Python API (returns the
result, errors raise).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gin
import jax

from flan_jax.config import gin_utils
from flan_jax.parallel import multihost


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
  flags.DEFINE_enum("multihost", "auto", list(multihost.MODES),
                    "Multi-host start: 'auto' calls jax.distributed.initialize() when jax detects "
                    "a cluster of several processes (SLURM srun, Cloud TPU VM, GKE, Kubernetes, "
                    "Open MPI; the --coordinator_address/--process_count/--process_index flags "
                    "override it); 'on' requires one; 'off' starts one process.")
  flags.DEFINE_multi_string("module_import", [],
                            "Modules that register your tasks/mixtures (seqio's --module_import); "
                            "also gin's MIXTURE_OR_TASK_MODULE.")
  flags.DEFINE_multi_string("seqio_additional_cache_dirs", [],
                            "Directories with seqio caches (flan-jax cache-tasks), as in t5x.")


def initialize_distributed(coordinator_address: str | None, process_count: int | None,
                           process_index: int | None, mode: str = "auto",
                           timeout_s: int = 300) -> bool:
  """``jax.distributed.initialize`` for t5x's multi-process flags, or with no arguments where jax
  detects the cluster itself (TPU pod, GKE, SLURM; :func:`flan_jax.parallel.multihost.
  distributed_arguments`); then the heartbeat watchdog. False: a single-process run."""
  found = multihost.distributed_arguments(coordinator_address, process_count, process_index,
                                          mode)
  if found is None:
    return False
  multihost.initialize(*found, timeout_s=timeout_s)
  return True


def _is_config_error(error: ValueError) -> bool:
  """gin's parse errors and the required-macro check."""
  text = str(error)
  return any(marker in text for marker in (
      "required gin macro", "unknown gin macro", "No configurable matching",
      "doesn't have a parameter named", "In bindings string", "Unable to find file",
      "unknown gin name"))


def _config_error_text(error: ValueError) -> str:
  """The message of a configuration error, with the flan_jax spelling of a t5x name it hit."""
  hint = gin_utils.explain_t5x_name(str(error))
  return f"{error}\n  hint: {hint}" if hint and hint not in str(error) else str(error)


_GIN_CALLS = re.compile(r"(\n  In call to configurable '[^']*' \(<[^\n]*>\))+$")


def _without_gin_calls(text: str) -> str:
  """An error's message without the ``In call to configurable 'infer' (<function infer at
  0x...>)`` lines gin appends (an internal object, no help to the user)."""
  return _GIN_CALLS.sub("", text)


def _exit_if_stopped(program: str, error: BaseException) -> None:
  """Exits with one line (no traceback) for a Ctrl-C or a full disk (:func:`cli.stop_message`).
  """
  from flan_jax import cli
  text = cli.stop_message(error)
  if text is not None:
    print(f"{program}: {text}", file=sys.stderr)
    sys.exit(130 if isinstance(error, KeyboardInterrupt) else 1)


def _execute(values: Any, required_macros: Sequence[str], configurable: Callable) -> Any:
  """Sets up distributed JAX, logging, TFDS, gin and the task modules, checks
  ``required_macros`` and returns the result of gin's ``configurable``."""
  from absl import logging as absl_logging

  from flan_jax.data import registry
  if not jax.distributed.is_initialized():
    initialize_distributed(values.coordinator_address, values.process_count,
                           values.process_index, values.multihost, values.initialization_timeout)
  if not values["verbosity"].present:
    # Quiet by default: orbax/seqio/TF warnings drown the progress bars; --verbosity=0 shows INFO.
    absl_logging.set_verbosity(absl_logging.ERROR)
  import seqio
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")  # Leave accelerator memory to JAX.
  if values.tfds_data_dir:
    seqio.set_tfds_data_dir_override(values.tfds_data_dir)
  if values.seqio_additional_cache_dirs:
    seqio.add_global_cache_dirs(values.seqio_additional_cache_dirs)
  gin.clear_config()  # A second call in one process starts from its own flags only.
  gin_utils.parse_gin(values.gin_file, values.gin_bindings, values.gin_search_paths)
  registry.import_modules([*values.module_import, *gin_utils.task_modules()])
  gin_utils.check_required_macros(required_macros)
  return gin.get_configurable(configurable)()


def _parse_flags(program: str, argv: Sequence[str]) -> Any:
  from absl import flags

  from flan_jax.models.gin_config import rewrite_gin_args
  _define_flags()
  if flags.FLAGS.is_parsed():
    flags.FLAGS.unparse_flags()  # A second call in one process starts from the defaults.
  rest = flags.FLAGS(rewrite_gin_args([program, *argv]))
  if len(rest) > 1:
    raise ValueError(f"{program}: unexpected arguments {rest[1:]} (flags only, e.g. "
                     "--gin_file=...)")
  return flags.FLAGS


def call(program: str, argv: Sequence[str], required_macros: Sequence[str],
         configurable: Callable) -> Any:
  """The Python API of an entry point (notebooks): the same flags as the command line, returns
  ``configurable``'s result and raises errors instead of exiting."""
  return _execute(_parse_flags(program, argv), required_macros, configurable)


def run(program: str, argv: Sequence[str] | None, required_macros: Sequence[str],
        configurable: Callable, on_result: Callable[[Any], None] | None = None) -> None:
  """The command line (``argv``: flags only; None = ``sys.argv``): :func:`call` under absl's
  ``app.run``, configuration errors as one message (exit 1), then ``on_result(result)``."""
  from absl import app, flags

  from flan_jax.models.gin_config import rewrite_gin_args
  _define_flags()
  if flags.FLAGS.is_parsed():
    flags.FLAGS.unparse_flags()  # A second call in one process starts from the defaults.

  def main(_):
    from flan_jax.data.bad_data import BadDataError
    from flan_jax.data.registry import UnknownNameError
    from flan_jax.data.spec import MissingDataError
    from flan_jax.training.checkpoints import ReportedError
    try:
      result = _execute(flags.FLAGS, required_macros, configurable)
    except (UnknownNameError, MissingDataError, ReportedError, BadDataError,
            multihost.DistributedInitError) as e:  # The message says it all.
      sys.exit(f"{program}: error: {_without_gin_calls(str(e))}")
    except ValueError as e:
      if not _is_config_error(e):
        _exit_if_stopped(program, e)
        raise
      sys.exit(f"{program}: error: {_config_error_text(e)}")
    except OSError as e:  # gin: a --gin_file that is not found (IOError).
      if "Unable to open file" not in str(e):
        _exit_if_stopped(program, e)
        raise
      sys.exit(f"{program}: error: {e} Check the --gin_file path (relative to the current "
               "directory, the repository root or --gin_search_paths).")
    except (Exception, KeyboardInterrupt) as e:
      _exit_if_stopped(program, e)
      raise
    if on_result is not None:
      on_result(result)

  # absl wants a program name first.
  full = list(sys.argv) if argv is None else [program, *argv]
  app.run(main, argv=rewrite_gin_args(full))
