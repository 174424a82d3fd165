"""notebooks/flan_jax_tour.ipynb runs top to bottom (nbclient, on the offline suite) and is kept
in git without outputs."""

import os

import nbclient
import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "flan_jax_tour.ipynb")


def test_notebook_is_stored_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes(tmp_path, monkeypatch):
  monkeypatch.setenv("FLAN_JAX_TOUR_DIR", str(tmp_path / "tour"))
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
  assert "trained to step 30" in text
  assert "zero-shot NLI accuracy" in text
  assert "generate:" in text
  assert os.path.exists(tmp_path / "tour" / "eval" / "metrics.json")
