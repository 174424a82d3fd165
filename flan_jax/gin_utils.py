"""Gin plumbing shared by the entry points (train, eval): parsing and required macros."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence

import gin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_INCLUDE = re.compile(r"""^\s*include\s+['"]([^'"]+)['"]""", re.M)
_MACRO_USE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")
_MACRO_DEF = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=", re.M)


def _resolve(path: str, search_paths: Sequence[str]) -> str | None:
  for root in ["", *search_paths]:
    candidate = os.path.join(root, path)
    if os.path.isfile(candidate):
      return candidate
  return None


def known_macros(gin_files: Sequence[str], search_paths: Sequence[str]) -> set[str]:
  """Macros that the files (and the files they include) define or use."""
  known: set[str] = set()
  pending, seen = list(gin_files), set()
  while pending:
    path = _resolve(pending.pop(), search_paths)
    if path is None or path in seen:
      continue
    seen.add(path)
    with open(path) as f:
      text = f.read()
    known |= set(_MACRO_USE.findall(text)) | set(_MACRO_DEF.findall(text))
    pending.extend(_INCLUDE.findall(text))
  return known


def check_macro_bindings(gin_files: Sequence[str], gin_bindings: Sequence[str],
                         search_paths: Sequence[str]) -> None:
  """A ``--gin.NAME=...`` macro that no file defines or uses would be silently ignored by gin
  (a typo such as ``TRAIN_STEP``): raise naming it and the close matches."""
  known = known_macros(gin_files, search_paths)
  for binding in gin_bindings:
    for name in _MACRO_DEF.findall(binding.strip()):
      if name not in known and known:
        close = difflib.get_close_matches(name, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown gin macro {name!r}: none of {list(gin_files)} defines or uses "
                         f"it{hint}")


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_search_paths: Sequence[str] = (".",)) -> None:
  """Parses files (later ones win) then bindings, searching ``gin_search_paths`` + repo root.

  Unknown configurables/parameters fail in gin; unknown macros fail here (see
  :func:`check_macro_bindings`).
  """
  search = [os.path.abspath(p) for p in [*gin_search_paths, REPO_ROOT]]
  for path in search:
    gin.add_config_file_search_path(path)
  check_macro_bindings(gin_files, gin_bindings, search)
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
