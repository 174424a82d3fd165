"""Run-time tools: the persistent compilation cache and its compile report, the profiler hook
(PROFILE_STEPS) and the multi-host start from jax's cluster detection (--multihost)."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys

import gin
import jax
import numpy as np
import pytest

from flan_jax import entry
from flan_jax import train as train_lib
from flan_jax.models.checkpoint import BadValueError
from flan_jax.parallel import multihost
from flan_jax.training import config as training_config
from flan_jax.training import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
              "SLURM_LOCALID")
CLUSTER_VARS = (*SLURM_VARS, "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST",
                "TPU_WORKER_HOSTNAMES", "TPU_PROCESS_ADDRESSES", "JAX_COORDINATOR_ADDRESS",
                "JAX_COORDINATOR_PORT")


# --- config values ----------------------------------------------------------------------------


def _config(tmp_path, **kw) -> training_config.TrainConfig:
  from flan_jax.models import DecoderConfig
  args = dict(model_dir=str(tmp_path / "run"), model_config=DecoderConfig(),
              mixture_or_task_name="demo_heldout_nli_train",
              task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=3)
  return training_config.TrainConfig(**{**args, **kw})


def test_profile_steps_are_checked_at_config_time(tmp_path):
  assert _config(tmp_path, profile_steps="10:13").profile_range == (10, 13)
  assert _config(tmp_path).profile_range is None
  assert _config(tmp_path, profile_steps="").profile_range is None
  for bad in ("13:10", "x", "0:3", "5", "5:5", 10):
    with pytest.raises(BadValueError, match=r"PROFILE_STEPS .* 'START:STOP' .* got"):
      _config(tmp_path, profile_steps=bad)


def test_compilation_cache_path_defaults_under_model_dir(tmp_path):
  run = str(tmp_path / "run")
  assert _config(tmp_path).compilation_cache_path == os.path.join(run, "compilation_cache")
  assert _config(tmp_path, compilation_cache_dir="/shared/cache").compilation_cache_path == (
      "/shared/cache")
  assert _config(tmp_path, compilation_cache_dir="gs://b/cache").compilation_cache_path == (
      "gs://b/cache")
  assert _config(tmp_path, model_dir="gs://b/run").compilation_cache_path == (
      "gs://b/run/compilation_cache")
  for off in (None, ""):
    assert _config(tmp_path, compilation_cache_dir=off).compilation_cache_path is None
  with pytest.raises(BadValueError, match="COMPILATION_CACHE_DIR"):
    _config(tmp_path, compilation_cache_dir=3)


def test_gin_macros_reach_the_config(tmp_path, monkeypatch):
  monkeypatch.setattr(train_lib, "_run", lambda cfg: cfg)
  flags = ["--gin_file=gin/models/tiny.gin", "--gin_file=gin/runs/finetune.gin",
           "--gin.MIXTURE_OR_TASK_NAME='demo_heldout_nli_train'",
           "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}", "--gin.TRAIN_STEPS=3",
           f"--gin.MODEL_DIR='{tmp_path}/run'"]
  try:
    cfg = train_lib.run([*flags, "--gin.PROFILE_STEPS='2:4'", "--gin.COMPILATION_CACHE_DIR=None"])
    assert (cfg.profile_steps, cfg.compilation_cache_dir) == ("2:4", None)
    assert train_lib.run(flags).compilation_cache_dir == "compilation_cache"
    with pytest.raises(BadValueError, match="PROFILE_STEPS"):
      train_lib.run([*flags, "--gin.PROFILE_STEPS='13:10'"])
  finally:
    gin.clear_config()


# --- the compilation cache --------------------------------------------------------------------


def test_compile_stats_count_cache_misses_then_hits(tmp_path):
  """A program compiled once is loaded from the cache by a fresh jit of the same computation;
  the process's settings are back after the block."""
  before = jax.config.jax_compilation_cache_dir
  x = np.arange(7, dtype=np.float32)
  with runtime.persistent_cache(str(tmp_path / "cache")):
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    with runtime.CompileStats() as first:
      jax.jit(lambda v: v * 3.5 + 1.25)(x).block_until_ready()
    with runtime.CompileStats() as second:
      jax.jit(lambda v: v * 3.5 + 1.25)(x).block_until_ready()  # A new function: no memory hit.
  assert jax.config.jax_compilation_cache_dir == before
  assert (first.programs, first.hits, first.misses) == (1, 0, 1)
  assert (second.programs, second.hits) == (1, 1)
  assert os.listdir(tmp_path / "cache")
  assert second.summary("/c") == (
      f"compile {second.seconds:.1f} s: 0 programs compiled, 1 from the cache at /c")
  assert "no persistent compilation cache" in first.summary(None)


def test_the_process_cache_wins_over_the_default_only(tmp_path):
  """JAX_COMPILATION_CACHE_DIR (jax.config) is used when COMPILATION_CACHE_DIR is left at its
  default; an explicit COMPILATION_CACHE_DIR (or None) still wins."""
  before = jax.config.jax_compilation_cache_dir
  jax.config.update("jax_compilation_cache_dir", "/process/cache")  # Nothing compiles here.
  try:
    assert _config(tmp_path).compilation_cache_path == "/process/cache"
    assert _config(tmp_path, compilation_cache_dir="/mine").compilation_cache_path == "/mine"
    assert _config(tmp_path, compilation_cache_dir=None).compilation_cache_path is None
  finally:
    jax.config.update("jax_compilation_cache_dir", before)


@pytest.mark.slow  # ~20-40 s of a real (tiny) train on 2 cores.
def test_tiny_train_writes_a_profile_and_fills_the_cache(tmp_path, capfd):
  """PROFILE_STEPS='2:4' traces steps 2 and 3 into MODEL_DIR/profile (an .xplane.pb TensorBoard
  and XProf read); the compile line names the cache, which holds the run's programs."""
  from flan_jax.models import DecoderConfig
  cfg = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                      dtype="float32", param_dtype="float32")
  model_dir = tmp_path / "run"
  train_lib.train(model_dir=str(model_dir), model_config=cfg,
                  mixture_or_task_name="demo_heldout_nli_train",
                  task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=4,
                  batch_size=4, log_period=1, progress=False, profile_steps="2:4",
                  checkpoint_cfg=training_config.CheckpointConfig(period=4),
                  partitioning_cfg=training_config.PartitioningConfig("data=2,model=4"))
  err = capfd.readouterr().err
  traces = glob.glob(str(model_dir / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  assert len(traces) == 1 and os.path.getsize(traces[0]) > 0, err
  assert f"profile of steps 2-3 written to {model_dir / 'profile'}" in err
  cache = model_dir / "compilation_cache"
  assert f"from the cache at {cache}" in err and len(os.listdir(cache)) >= 2, err


# --- multi-host start -------------------------------------------------------------------------


@pytest.fixture
def no_cluster(monkeypatch):
  for name in CLUSTER_VARS:
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


def _slurm(monkeypatch, ntasks: int, procid: int = 0, job: str = "4242") -> None:
  for name, value in zip(SLURM_VARS, (job, "localhost", str(ntasks), str(procid), str(procid)),
                         strict=True):
    monkeypatch.setenv(name, value)


def test_single_host_run_does_not_initialize(no_cluster):
  assert multihost.detect_cluster() is None
  assert multihost.distributed_arguments(None, None, None) is None
  assert entry.initialize_distributed(None, None, None) is False


def test_flags_alone_initialize_without_detection(no_cluster):
  assert multihost.distributed_arguments("h:1234", 2, 1) == (
      {"coordinator_address": "h:1234", "num_processes": 2, "process_id": 1}, None)
  _slurm(no_cluster, 4)  # The flags override a detected cluster.
  assert multihost.distributed_arguments("h:1234", 2, 1)[1] is None


def test_slurm_is_detected_by_jax_and_initialized_without_arguments(no_cluster):
  _slurm(no_cluster, 2)
  assert multihost.distributed_arguments(None, None, None) == (
      {}, multihost.Cluster("SlurmCluster", 2))
  # A flag given with a detected cluster: jax fills in the rest.
  assert multihost.distributed_arguments("h:99", None, None)[0] == {"coordinator_address": "h:99"}
  _slurm(no_cluster, 1)  # One task (e.g. an salloc shell): one process, no initialization...
  assert multihost.distributed_arguments(None, None, None) is None
  assert multihost.distributed_arguments(None, None, None, "on")[0] == {}  # ...unless asked.


def test_bad_multihost_starts_say_what_to_set(no_cluster):
  with pytest.raises(multihost.DistributedInitError, match=r"got only --coordinator_address"):
    multihost.distributed_arguments("h:1", None, None)
  with pytest.raises(multihost.DistributedInitError, match=r"SLURM_JOB_ID.*--process_index"):
    multihost.distributed_arguments(None, None, None, "on")
  with pytest.raises(multihost.DistributedInitError, match="--multihost=off starts one process"):
    multihost.distributed_arguments("h:1", 2, 0, "off")
  _slurm(no_cluster, 2)
  assert multihost.distributed_arguments(None, None, None, "off") is None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


CHILD = """
import jax, numpy as np
from jax.experimental import multihost_utils
from flan_jax import entry
assert entry.initialize_distributed(None, None, None, "auto", {timeout})
rows = multihost_utils.process_allgather(np.array([jax.process_index() * 10 + 1]))
print("OK", jax.process_index(), jax.process_count(), jax.device_count(), rows.ravel().tolist())
"""


def _children(count: int, ntasks: int, timeout: int) -> list[subprocess.Popen]:
  port, procs = _free_port(), []
  for i in range(count):
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARS}
    env.update(dict(zip(SLURM_VARS, ("77", "localhost", str(ntasks), str(i), str(i)),
                        strict=True)))
    env.update(JAX_COORDINATOR_PORT=str(port), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2",
               FLAN_JAX_HEARTBEAT_TIMEOUT="60")
    procs.append(subprocess.Popen([sys.executable, "-c", CHILD.format(timeout=timeout)], cwd=REPO,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True))
  return procs


def test_two_slurm_processes_find_each_other_without_flags():
  """Two processes with srun's SLURM variables (and no --coordinator_address): jax's detection
  gives the coordinator (the first node, JAX_COORDINATOR_PORT), count and index."""
  procs = _children(2, 2, 60)
  outs = []
  try:
    for proc in procs:
      outs.append(proc.communicate(timeout=120)[0])
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  for i, (proc, out) in enumerate(zip(procs, outs, strict=True)):
    assert proc.returncode == 0, out[-3000:]
    assert f"OK {i} 2 4 [1, 11]" in out, out[-3000:]


def test_a_failed_start_names_the_detected_cluster_and_the_flags():
  """Process 0 of 2 whose peer never starts: jax ends the process (a C++ check, no Python
  exception), so the line printed before names SLURM and the flags that override it."""
  (proc,) = _children(1, 2, 3)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode != 0, out[-3000:]
  line = next((x for x in out.splitlines() if x.startswith("flan_jax: jax.distributed")), out)
  assert "from the SlurmCluster environment jax detected (2 processes)" in line, out[-3000:]
  assert "--coordinator_address=HOST:PORT" in line and "--multihost=off" in line


# --- the profiler hook ------------------------------------------------------------------------


def test_profiler_hook_traces_the_steps_of_its_range(tmp_path, monkeypatch):
  """'2:4' starts the trace before step 2 and stops it after step 3 (blocking on its results);
  a run resumed at step 2 starts at open; a process that does not trace writes nothing."""
  from flan_jax.training import hooks
  calls: list[tuple[str, int]] = []
  done = {"step": 0}
  start, stop = jax.profiler.start_trace, jax.profiler.stop_trace
  monkeypatch.setattr(jax.profiler, "start_trace",
                      lambda d: (calls.append(("start", done["step"])), start(d)))
  monkeypatch.setattr(jax.profiler, "stop_trace",
                      lambda: (calls.append(("stop", done["step"])), stop()))
  step_fn = jax.jit(lambda x: x @ x + 1.0)

  def run(profiler: hooks.Profiler, first: int, last: int) -> None:
    state, done["step"] = np.eye(4, dtype=np.float32), first
    with hooks.Hooks([profiler]) as run_hooks:
      for step in range(first + 1, last + 1):
        state = step_fn(state)
        done["step"] = step
        run_hooks.after_step(hooks.StepInfo(step, state, {}, {}, 0.0, last))

  run(hooks.Profiler(str(tmp_path / "a"), 2, 4, 0), 0, 5)
  assert calls == [("start", 1), ("stop", 3)]
  assert glob.glob(str(tmp_path / "a" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  calls.clear()
  run(hooks.Profiler(str(tmp_path / "b"), 2, 4, 2), 2, 5)  # Resumed at step 2: traces step 3.
  assert calls == [("start", 2), ("stop", 3)]
  calls.clear()
  run(hooks.Profiler(str(tmp_path / "c"), 2, 9, 0), 0, 3)  # The run ends first: stops at its end.
  assert calls == [("start", 1), ("stop", 3)]
  calls.clear()
  run(hooks.Profiler(str(tmp_path / "d"), 2, 4, 0, enabled=False), 0, 5)
  assert calls == [] and not (tmp_path / "d").exists()
