"""Gin plumbing shared by the entry points (train, eval): parsing and required macros."""

from __future__ import annotations

import os
from collections.abc import Sequence

import gin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_search_paths: Sequence[str] = (".",)) -> None:
  """Parses files (later ones win) then bindings, searching ``gin_search_paths`` + repo root."""
  for path in list(gin_search_paths) + [REPO_ROOT]:
    gin.add_config_file_search_path(os.path.abspath(path))
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings), finalize_config=False)


def macro_is_set(name: str) -> bool:
  try:
    value = gin.query_parameter(f"%{name}")
  except ValueError:
    return False
  return repr(value) != "%gin.REQUIRED"


def check_required_macros(names: Sequence[str]) -> None:
  """Raises ValueError naming every required macro that is unset or ``%gin.REQUIRED``.

  ``TRAIN_STEPS`` may stay unset (it becomes None) when ``TRAIN_STEPS_RELATIVE`` is set.
  """
  relative = macro_is_set("TRAIN_STEPS_RELATIVE") and gin.query_parameter(
      "%TRAIN_STEPS_RELATIVE") is not None
  if relative and "TRAIN_STEPS" in names and not macro_is_set("TRAIN_STEPS"):
    gin.parse_config("TRAIN_STEPS = None")
  missing = [name for name in names if not macro_is_set(name)]
  if missing:
    hints = " ".join(f"--gin.{m}=..." for m in missing)
    raise ValueError(f"required gin macro(s) not set: {', '.join(missing)} (e.g. {hints})")
