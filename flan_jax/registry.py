"""Looking up and listing registered tasks and mixtures, with helpful errors."""

from __future__ import annotations

import difflib
import fnmatch
import re

import seqio


class UnknownNameError(ValueError):
  """A task or mixture name that is not registered."""


def ensure_registered() -> None:
  """Imports the FLAN task and mixture registries (idempotent)."""
  import flan_jax.mixtures  # noqa: F401
  import flan_jax.tasks  # noqa: F401


def all_names() -> list[str]:
  return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))


def close_matches(name: str, n: int = 5) -> list[str]:
  """Registered names that look like ``name`` (by spelling, then by shared prefix)."""
  names = all_names()
  matches = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
  if len(matches) < n:
    stem = name.split("_type_")[0].split("_heldout_")[0][:12]
    matches += [x for x in names if x.startswith(stem) and x not in matches][: n - len(matches)]
  return matches


def get(name: str) -> seqio.Task | seqio.Mixture:
  """``seqio.get_mixture_or_task`` whose error lists close matches."""
  try:
    return seqio.get_mixture_or_task(name)
  except ValueError:
    pass
  suggestions = close_matches(name)
  hint = ("Did you mean: " + ", ".join(suggestions) + "?") if suggestions else \
      "No similar names; run `flan-jax list-tasks` or `flan-jax list-mixtures`."
  raise UnknownNameError(f"Unknown task or mixture {name!r}. {hint}")


def _matcher(pattern: str | None):
  if not pattern:
    return lambda _: True
  if any(c in pattern for c in "*?["):
    return lambda name: fnmatch.fnmatchcase(name, pattern)
  regex = re.compile(pattern)
  return lambda name: regex.search(name) is not None


def list_tasks(pattern: str | None = None) -> list[str]:
  """Task names matching a glob (``rte_*``) or a regular expression (``^rte_type_\\d+$``)."""
  match = _matcher(pattern)
  return sorted(n for n in seqio.TaskRegistry.names() if match(n))


def list_mixtures(pattern: str | None = None) -> list[str]:
  match = _matcher(pattern)
  return sorted(n for n in seqio.MixtureRegistry.names() if match(n))
