"""Reading a :class:`DecoderConfig` from gin files (``MODEL_CONFIG = @models.DecoderConfig()``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import gin

from flan_jax.config.gin_utils import GIN_ROOT, REPO_ROOT  # noqa: F401  (REPO_ROOT re-exported)
from flan_jax.models.config import DecoderConfig


def _model_config(config: DecoderConfig = gin.REQUIRED) -> DecoderConfig:
  return config


_getter = gin.external_configurable(_model_config, "flan_jax_model_config")


def rewrite_gin_args(argv: Sequence[str]) -> list[str]:
  """t5x-style ``--gin.NAME=VALUE`` -> ``--gin_bindings=NAME = VALUE``."""
  out = []
  for arg in argv:
    if arg.startswith("--gin.") and "=" in arg:
      name, value = arg[len("--gin."):].split("=", 1)
      out.append(f"--gin_bindings={name} = {value}")
    else:
      out.append(arg)
  return out


def config_from_gin(gin_files: Sequence[str] = (), gin_bindings: Sequence[str] = (),
                    macro: str = "MODEL_CONFIG", clear: bool = True) -> DecoderConfig:
  """Parses gin files/bindings (search path: cwd, the gin root) and evaluates ``%MODEL_CONFIG``.

  ``clear`` resets gin first, so bindings of earlier parses do not leak into this config.
  """
  if clear:
    gin.clear_config()
  for path in (os.getcwd(), GIN_ROOT):
    gin.add_config_file_search_path(path)
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings), finalize_config=False,
                                      skip_unknown=False)
  gin.parse_config(f"flan_jax_model_config.config = %{macro}")
  return _getter()
