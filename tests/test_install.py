"""flan_jax installed as a wheel (not the checkout): gin files and assets travel with it, and the
commands work from any directory. Also: ``flan-jax --help`` needs none of the heavy libraries."""

import os
import shutil
import subprocess
import sys
import sysconfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("setup.py", "pyproject.toml", "README.md", "flan_jax", "tasks", "mixtures", "gin")


def _copy_sources(dest: str) -> None:
  """The files a source distribution holds (building in place would write into the checkout)."""
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
  for name in SOURCES:
    src = os.path.join(REPO, name)
    if os.path.isdir(src):
      shutil.copytree(src, os.path.join(dest, name), ignore=ignore)
    else:
      shutil.copy(src, dest)


def test_wheel_in_a_fresh_venv_trains_the_demo_from_another_directory(tmp_path):
  src, dist, venv, work = (tmp_path / d for d in ("src", "dist", "venv", "elsewhere"))
  src.mkdir()
  work.mkdir()
  _copy_sources(str(src))
  pip = [sys.executable, "-m", "pip"]
  subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                  str(src)], check=True, capture_output=True, timeout=600)
  (wheel,) = dist.glob("flan_jax-*.whl")
  # A fresh venv whose dependencies come from this interpreter's site-packages, read as plain
  # paths: the editable install's finder (a .pth hook there) is not run, so the checkout is not
  # importable and only the wheel provides flan_jax.
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                 timeout=300)
  python = venv / "bin" / "python"
  site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                         "'purelib'))"], check=True, capture_output=True, text=True).stdout.strip()
  with open(os.path.join(site, "_flan_jax_test_deps.pth"), "w") as f:
    f.write(sysconfig.get_path("purelib") + "\n")
  subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                  str(wheel)], check=True, capture_output=True, timeout=600)
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  where = subprocess.run([str(python), "-c", "import flan_jax; print(flan_jax.__file__)"],
                         cwd=work, env=env, check=True, capture_output=True, text=True)
  assert where.stdout.strip().startswith(site), where.stdout  # The wheel, not the checkout.
  model_dir = work / "model"
  result = subprocess.run(
      [str(venv / "bin" / "flan-jax"), "train", "--gin_file=gin/runs/demo.gin",
       f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=3", "--gin.CHECKPOINT_PERIOD=3",
       "--gin.BATCH_SIZE=2", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}"],
      cwd=work, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (model_dir / "checkpoint_3").is_dir()
  assert "training from scratch" in result.stderr  # The warning when no INITIAL_CHECKPOINT_PATH.
  assert "Path not found" not in result.stderr  # Quiet: gin's search-path misses are dropped.


def test_help_imports_no_heavy_library():
  code = ("import sys\nfrom flan_jax import cli\ntry:\n  cli.main(['--help'])\nexcept SystemExit:\n"
          "  pass\nheavy = [m for m in ('jax', 'tensorflow', 'seqio', 'flax', 'orbax') "
          "if m in sys.modules]\nprint('HEAVY', heavy)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=120).stdout
  assert "usage: flan-jax" in out and "infer" in out and "cache-tasks" in out
  assert "HEAVY []" in out
