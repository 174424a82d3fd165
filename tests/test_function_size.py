"""No function in the library is longer than ~60 lines (issue 13; ARCHITECTURE.md).

Every ``def`` (methods and nested functions too) under ``flan_jax/``, ``tasks/`` and ``mixtures/``
is measured with ``ast`` from its first decorator to its last line, docstring included.
``flan_jax/assets`` is left out: those files are shipped into exported Hugging Face
directories and follow the transformers modeling-file layout.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 60
# "path:function" -> why it may be longer. Keep it empty; a new entry needs a reason.
ALLOWED: dict[str, str] = {}


def long_functions(source: str, name: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
  """(``name:function`` at its line, length) of each function of ``source`` over ``limit``."""
  out = []
  for node in ast.walk(ast.parse(source, name)):
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
      start = min([node.lineno] + [d.lineno for d in node.decorator_list])
      length = node.end_lineno - start + 1
      if length > limit:
        out.append((f"{name}:{node.name}", length))
  return out


def _library() -> list[pathlib.Path]:
  files = [p for d in ("flan_jax", "tasks", "mixtures") for p in (ROOT / d).rglob("*.py")]
  return sorted(p for p in files if "assets" not in p.relative_to(ROOT).parts)


def test_no_library_function_is_over_60_lines():
  files = _library()
  assert len(files) > 50 and any(p.name == "decoder.py" for p in files)
  found = [(key, n) for p in files
           for key, n in long_functions(p.read_text(), str(p.relative_to(ROOT)))]
  too_long = [f"{key} is {n} lines" for key, n in found if key not in ALLOWED]
  assert not too_long, (f"functions over {MAX_LINES} lines (split them into named pieces):\n  "
                        + "\n  ".join(too_long))
  stale = set(ALLOWED) - {key for key, _ in found}
  assert not stale, f"ALLOWED entries that are no longer long (remove them): {sorted(stale)}"


@pytest.mark.parametrize("body_lines,expected", [(58, False), (59, True)])
def test_the_measure_itself(body_lines, expected):
  # A decorator, the def line and body_lines statements: 60 lines pass, 61 fail.
  source = "@decorator\ndef f():\n" + "  x = 1\n" * body_lines
  assert bool(long_functions(source, "m.py")) is expected
  nested = "def outer():\n  def inner():\n" + "    x = 1\n" * 60 + "  return inner\n"
  assert [k for k, _ in long_functions(nested, "m.py")] == ["m.py:outer", "m.py:inner"]
