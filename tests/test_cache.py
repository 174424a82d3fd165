"""seqio's offline cache as a user runs it: `flan-jax cache-tasks` caches an offline task with
Apache Beam (the `flan_jax[cache]` extra), then seqio reads the cache back (``use_cached=True``) and
training reads it (USE_CACHED_TASKS + --seqio_additional_cache_dirs).

Beam needs protobuf<7 and the main venv has protobuf 7, so the caching job runs in the interpreter
of ``make cache-venv`` (``.venv-cache``: the `cache` extra layered in front of .venv's packages;
``make test`` passes it as FLAN_JAX_CACHE_PYTHON). Reading and training use this interpreter.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import seqio

from flan_jax.data import registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "world_qa_type_0"  # one template: its cached and uncached examples match exactly.
LENGTHS = {"inputs": 256, "targets": 32}


def _cache_python() -> str:
  """The interpreter that runs the Beam caching job."""
  explicit = os.environ.get("FLAN_JAX_CACHE_PYTHON")
  if explicit:
    assert os.access(explicit, os.X_OK), (
        f"FLAN_JAX_CACHE_PYTHON={explicit} is not an executable; run `make cache-venv`")
    return explicit
  local = os.path.join(REPO, ".venv-cache", "bin", "python")
  if os.access(local, os.X_OK):
    return local
  if importlib.util.find_spec("apache_beam") is not None:
    return sys.executable
  pytest.skip("needs apache-beam: `make cache-venv` (what `make test` does) or "
              "`pip install 'flan_jax[cache]'`")


def _run(python: str, *argv: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([python, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _cache_tasks(cache) -> None:
  python = _cache_python()
  probe = subprocess.run([python, "-c", "import apache_beam, sys; print(apache_beam.__version__)"],
                         capture_output=True, text=True)
  assert probe.returncode == 0, f"{python} cannot import apache_beam: {probe.stderr[-2000:]}"
  _run(python, "-m", "flan_jax.cli", "cache-tasks", f"--tasks={TASK}",
       f"--output_cache_dir={cache}")


def _examples(ds) -> list[tuple]:
  rows = [tuple((k, np.asarray(v).tolist()) for k, v in sorted(ex.items()))
          for ex in ds.as_numpy_iterator()]
  return sorted(rows, key=repr)


# One test (the caching job runs once, also under xdist): cache, read back, train from the cache.
@pytest.mark.slow  # ~80 s: a beam caching job, then training from its cache (test-all)
def test_cache_tasks_then_seqio_reads_the_cache_and_training_uses_it(tmp_path):
  cache = tmp_path / "cache"
  _cache_tasks(cache)
  task_dir = cache / TASK
  assert (task_dir / "COMPLETED").exists()
  registry.ensure_registered()
  task = seqio.get_mixture_or_task(TASK)
  old_dirs = seqio.utils.get_global_cache_dirs()
  seqio.add_global_cache_dirs([str(cache)])
  try:
    assert task.cache_dir == str(task_dir)
    for split in ("train", "validation"):
      with open(task_dir / f"info.{split}.json") as f:
        assert json.load(f)["features"]  # seqio's per-split info of the cached split.
      cached = _examples(task.get_dataset(LENGTHS, split=split, use_cached=True, shuffle=False))
      raw = _examples(task.get_dataset(LENGTHS, split=split, use_cached=False, shuffle=False))
      assert cached, f"{split}: no cached examples"
      assert cached == raw, f"{split}: the cached examples differ from the uncached ones"
  finally:
    seqio.utils.set_global_cache_dirs(old_dirs)
    task._cache_dir = None  # pylint: disable=protected-access

  model_dir = tmp_path / "model"
  _run(sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
       f"--gin.MODEL_DIR='{model_dir}'", f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
       "--gin.USE_CACHED_TASKS=True", f"--seqio_additional_cache_dirs={cache}",
       "--gin.TRAIN_STEPS=3", "--gin.CHECKPOINT_PERIOD=3")
  assert (model_dir / "checkpoint_3").is_dir()
