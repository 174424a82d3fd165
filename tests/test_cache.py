"""seqio's offline cache: `flan-jax cache-tasks` caches an offline task (Apache Beam, the
`flan_jax[cache]` extra) and training reads it (USE_CACHED_TASKS + --seqio_additional_cache_dirs).
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "world_qa_4templates"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None,
                                reason="needs apache-beam: pip install 'flan_jax[cache]'")


def _run(*argv: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def test_cache_an_offline_task_and_train_from_the_cache(tmp_path):
  cache = tmp_path / "cache"
  _run("-m", "flan_jax.cli", "cache-tasks", f"--tasks={TASK}", f"--output_cache_dir={cache}")
  task_dir = cache / TASK
  assert (task_dir / "COMPLETED").exists()
  with open(task_dir / "info.train.json") as f:
    assert json.load(f)  # seqio's per-split info of the cached train split.
  model_dir = tmp_path / "model"
  _run("-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{model_dir}'",
       f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'", "--gin.USE_CACHED_TASKS=True",
       f"--seqio_additional_cache_dirs={cache}", "--gin.TRAIN_STEPS=3",
       "--gin.CHECKPOINT_PERIOD=3")
  assert (model_dir / "checkpoint_3").is_dir()
