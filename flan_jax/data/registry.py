"""Looking up and listing registered tasks and mixtures, with helpful errors; importing the
modules that register other teams' tasks (t5x's ``MIXTURE_OR_TASK_MODULE``, seqio's
``--module_import``)."""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import gc
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Iterator

import seqio


class UnknownNameError(ValueError):
  """A task or mixture name that is not registered."""


@contextlib.contextmanager
def bulk_registration() -> Iterator[None]:
  """Pauses Python's cyclic garbage collector while thousands of tasks are registered.

  Registering ~12.5k seqio tasks allocates many small objects; with TensorFlow's large heap already
  loaded each full collection walks it again, which took ~80% of registration time (cProfile:
  1.4 s of 1.7 s). Registration creates no reference cycles worth collecting, so collection
  resumes (and catches up) when the block ends.
  """
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if enabled:
      gc.enable()


# The modules that register the FLAN tasks and mixtures (tasks/ and mixtures/ at the repository
# top). They sit above this package (they are built from its specs), so they are imported by name
# as any team's task module is (`--module_import`).
FLAN_MODULES = ("flan_jax.tasks", "flan_jax.mixtures")


def ensure_registered() -> None:
  """Imports the FLAN task and mixture registries (idempotent)."""
  for module in FLAN_MODULES:
    importlib.import_module(module)


def import_modules(modules: str | Iterable[str] | None) -> list[str]:
  """Imports each module (dotted name, or ``path/to/file.py``) that registers tasks/mixtures,
  as seqio's ``--module_import`` does; returns the names imported. The current directory is
  searched first, as for ``python -m``."""
  if not modules:
    return []
  if isinstance(modules, str):
    modules = [modules]
  if "" not in sys.path and "." not in sys.path:
    sys.path.insert(0, "")
  done = []
  for module in modules:
    if not module:
      continue
    try:
      if module.endswith(".py"):
        name = os.path.splitext(os.path.basename(module))[0]
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) == os.path.abspath(module):
          done.append(module)  # Imported already: its tasks are registered.
          continue
        spec = importlib.util.spec_from_file_location(name, os.path.abspath(module))
        if spec is None or not os.path.isfile(module):
          raise ModuleNotFoundError(f"No file {module!r}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)  # type: ignore[union-attr]
      else:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
      raise UnknownNameError(
          f"cannot import task module {module!r} ({e}); pass an importable dotted module name "
          "(on PYTHONPATH or in the current directory) or a path to a .py file") from e
    done.append(module)
  return done


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


# Name prefix -> the module that registers those names on first use (kept out of
# ensure_registered: importing it costs time every command would pay).
LAZY_MODULES = {"flan2022_": "flan_jax.mixtures.flan2022"}


def import_lazy(name_or_pattern: str | None) -> None:
  """Imports the lazily registered collection a name (or list filter) refers to."""
  for prefix, module in LAZY_MODULES.items():
    if name_or_pattern and prefix.rstrip("_") in name_or_pattern and module not in sys.modules:
      importlib.import_module(module)


def get(name: str) -> seqio.Task | seqio.Mixture:
  """``seqio.get_mixture_or_task`` whose error lists close matches."""
  import_lazy(name)
  try:
    return seqio.get_mixture_or_task(name)
  except ValueError:
    pass
  suggestions = close_matches(name)
  hint = ("Did you mean: " + ", ".join(suggestions) + "?") if suggestions else \
      "No similar names; run `flan-jax list-tasks` or `flan-jax list-mixtures`."
  raise UnknownNameError(
      f"Unknown task or mixture {name!r}. {hint} If it is registered by your own module, import "
      "it first: --gin.MIXTURE_OR_TASK_MODULE=\"'my_team.tasks'\" (train/eval/infer) or "
      "--module_import=my_team.tasks (every flan-jax data command).")


def vocab_size(name: str) -> int:
  """The largest vocabulary size among the output features of a task or mixture."""
  item = get(name)
  tasks = seqio.get_subtasks(item) if isinstance(item, seqio.Mixture) else [item]
  return max(f.vocabulary.vocab_size for t in tasks for f in t.output_features.values())


def check_vocab_size(name: str, model_vocab_size: int, what: str = "task") -> None:
  """Raises ValueError when ``name``'s token ids can exceed the model's embedding table (the
  loss would turn NaN at the first step), before anything compiles."""
  size = vocab_size(name)
  if size > model_vocab_size:
    raise ValueError(
        f"{what} {name!r} uses a vocabulary of {size} ids but the model's vocab_size is "
        f"{model_vocab_size}: token ids >= {model_vocab_size} have no embedding. Use a model with "
        f"vocab_size >= {size} (e.g. --gin.models.DecoderConfig.vocab_size={size}) or a task with "
        "the model's vocabulary (gin/vocab/*.gin)")


def _matcher(pattern: str | None):
  if not pattern:
    return lambda _: True
  if any(c in pattern for c in "*?["):
    return lambda name: fnmatch.fnmatchcase(name, pattern)
  regex = re.compile(pattern)
  return lambda name: regex.search(name) is not None


def list_tasks(pattern: str | None = None) -> list[str]:
  """Task names matching a glob (``rte_*``) or a regular expression (``^rte_type_\\d+$``)."""
  import_lazy(pattern)
  match = _matcher(pattern)
  return sorted(n for n in seqio.TaskRegistry.names() if match(n))


def list_mixtures(pattern: str | None = None) -> list[str]:
  import_lazy(pattern)
  match = _matcher(pattern)
  return sorted(n for n in seqio.MixtureRegistry.names() if match(n))
