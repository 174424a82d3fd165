"""The import layering of flan_jax (ARCHITECTURE.md): a library package imports only packages of
earlier layers; the commands at the top (``flan_jax/*.py``) may import anything.

Every ``import`` of every module is read with ``ast`` (function-level imports included), so an
import moved into a function to dodge a cycle still counts.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Lowest first. `tasks` is the top-level tasks/ and mixtures/ (flan_jax.tasks / flan_jax.mixtures):
# declarative content over data/. `commands` is every module directly in flan_jax/ (train.py,
# eval.py, cli.py, ..., the one-release shims) and flan_jax/__init__.py (`flan_jax.load`).
LAYERS = ("storage", "config", "metrics", "data", "tasks", "models", "parallel", "interop",
          "training", "inference", "evaluation", "commands")
RANK = {name: i for i, name in enumerate(LAYERS)}


def _module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(ROOT)
  if rel.parts[0] in ("tasks", "mixtures"):
    rel = pathlib.Path("flan_jax", *rel.parts)
  parts = list(rel.with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _sources() -> dict[str, pathlib.Path]:
  files = [*(ROOT / "flan_jax").rglob("*.py"), *(ROOT / "tasks").rglob("*.py"),
           *(ROOT / "mixtures").rglob("*.py")]
  return {_module_name(p): p for p in files if "assets" not in p.parts}


def layer(module: str) -> str:
  """The layer of a flan_jax module name."""
  parts = module.split(".")
  if len(parts) == 1:
    return "commands"
  if parts[1] in ("tasks", "mixtures"):
    return "tasks"
  if parts[1] in RANK:
    return parts[1]
  return "commands"


def imports(module: str, path: pathlib.Path, known: set[str]) -> list[tuple[str, int]]:
  """The flan_jax modules ``module`` imports (resolved to a module, not a name in it), with
  their line numbers."""
  found = []
  package = module if path.name == "__init__.py" else module.rpartition(".")[0]
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{anchor}.{base}" if base else anchor
      # `from flan_jax import metrics` imports the module flan_jax.metrics.
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    else:
      continue
    found += [(t, node.lineno) for t in targets if t.split(".")[0] == "flan_jax"]
  return found


def _arrows() -> list[tuple[str, str, int]]:
  sources = _sources()
  known = set(sources)
  return [(module, target, line) for module, path in sorted(sources.items())
          for target, line in imports(module, path, known)]


def upward(arrows: list[tuple[str, str, int]]) -> list[str]:
  """Arrows from a library layer to a later layer (commands may import anything)."""
  bad = []
  for module, target, line in arrows:
    src, dst = layer(module), layer(target)
    if src != "commands" and RANK[dst] > RANK[src]:
      bad.append(f"{module}:{line} ({src}) imports {target} ({dst})")
  return bad


def package_cycles(arrows: list[tuple[str, str, int]]) -> list[list[str]]:
  """Cycles in the graph of layers (arrows within one layer left out)."""
  graph: dict[str, set[str]] = {}
  for module, target, _ in arrows:
    src, dst = layer(module), layer(target)
    if src != dst:
      graph.setdefault(src, set()).add(dst)
  cycles, state = [], {}

  def visit(node: str, stack: list[str]) -> None:
    state[node] = "open"
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt, [*stack, nxt])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  return cycles


def test_every_module_is_read():
  sources = _sources()
  assert "flan_jax.data.spec" in sources and "flan_jax.tasks.nli" in sources
  assert {layer(m) for m in sources} == set(LAYERS)


def test_no_import_goes_up_the_layers():
  bad = upward(_arrows())
  assert not bad, ("imports that go up the layer order " + " -> ".join(LAYERS) +
                   " (see ARCHITECTURE.md; move the code down or the caller up):\n  " +
                   "\n  ".join(bad))


def test_no_cycle_between_layers():
  assert not package_cycles(_arrows())


@pytest.mark.parametrize("arrow,expected", [
    (("flan_jax.data.spec", "flan_jax.training.batches", 3), True),
    (("flan_jax.training.batches", "flan_jax.data.spec", 3), False),
    (("flan_jax.eval", "flan_jax.evaluation.report", 3), False),  # commands import anything
    (("flan_jax.tasks.nli", "flan_jax.models.config", 3), True),
])
def test_the_rule_itself(arrow, expected):
  assert bool(upward([arrow])) is expected


def test_cycle_detection_itself():
  arrows = [("flan_jax.data.x", "flan_jax.models.y", 1),
            ("flan_jax.models.y", "flan_jax.data.x", 1)]
  assert package_cycles(arrows)
