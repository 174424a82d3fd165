"""``flan-jax plan``: train's own step compiled for 8 simulated devices (the tiny preset)."""

import json
import os
import subprocess
import sys

import pytest

from flan_jax import cli, model_info, plan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN = ["--gin_file=gin/models/tiny.gin", "--gin_file=gin/runs/finetune.gin",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 96, 'targets': 32}", "--gin.BATCH_SIZE=8"]


def _train_args():
  return plan.train_arguments(["gin/models/tiny.gin", "gin/runs/finetune.gin"],
                              ["TASK_FEATURE_LENGTHS = {'inputs': 96, 'targets': 32}",
                               "BATCH_SIZE = 8"], [REPO])


def test_tiny_plan_matches_model_info_and_analytical_flops():
  args = _train_args()
  result = plan.plan(args, plan.Candidate("data=2,model=4", "1d", "none", 1), 8, "tpu_v4")
  info = model_info.model_info(args["model_config"], "data=2,model=4", "adafactor", "1d")
  b = result["bytes_per_device"]
  assert b["parameters"] == info["param_bytes_per_device"]
  assert b["optimizer_state"] == info["optimizer_bytes_per_device"]
  assert b["temporaries"] > b["gradients_f32"] > 0
  assert b["peak"] == b["arguments"] + b["temporaries"] + b["outputs"] - b["aliased"]
  # XLA counts a while-loop body once; the trip-count correction (2 scanned layers) is needed.
  flops = result["flops_per_step"]
  assert flops["loop_trip_count_correction_per_device"] > 0
  assert abs(flops["compiled_over_analytical"] - 1) < 0.10
  assert flops["model"] < flops["analytical_executed"]  # Causal attention halved for MFU.
  # Megatron on the model axis: activations are all-reduced inside the layers.
  assert result["collectives"]["all-reduce"]["count"] >= 2 * 2
  assert result["collectives"]["all-reduce"]["bytes"] > 0
  assert result["fits"] and result["headroom_bytes"] > 0
  assert 0 < result["mfu"] < 0.5 and result["step_seconds"] > 0
  assert "cpu" in result["backend"]


def test_plan_cli_reports_a_target_too_small(tmp_path, capsys):
  out = tmp_path / "plan.json"
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["plan", *GIN, f"--gin_search_paths={REPO}", "--devices=8", "--mesh=data=8",
              "--rules=2d_params", "--target=tpu_v5e", "--hbm_gib=0.001", f"--output={out}"])
  assert exit_info.value.code == 1
  text = capsys.readouterr().out
  assert "DOES NOT FIT" in text and "collectives per step" in text
  result = json.loads(out.read_text())
  assert not result["fits"] and result["headroom_bytes"] < 0
  assert result["mesh"] == {"data": 8, "model": 1}
  assert result["candidate"]["rules"] == "2d_params" and result["collectives"]
  assert result["command"].startswith("flan-jax plan")


def test_batch_divisibility_error_names_batch_axis_and_fix():
  with pytest.raises(ValueError, match=r"BATCH_SIZE 6 .*data=8 \(8 replicas\).*BATCH_SIZE = 8.*"
                                       r"'data=2,model=4'"):
    plan.plan(_train_args() | {"batch_size": 6}, plan.Candidate("data=8", "1d", "none", 1), 8,
              "tpu_v4")


def test_search_candidates():
  cands = plan.candidates(8, num_heads=4, batch_size=8, remats=("minimal",), microbatches=(1, 2))
  meshes = {c.mesh for c in cands}
  assert "data=2,model=4" in meshes and "data=8,model=1" in meshes
  assert "data=1,fsdp=8,model=1" in meshes and "data=1,model=8" not in meshes  # 4 heads.
  assert all(c.rules == "fsdp" for c in cands if "fsdp" in c.mesh)
  assert {c.rules for c in cands if c.mesh == "data=2,model=4"} == {"1d", "2d_params", "2d"}
  assert plan.Candidate("data=8,model=1", "1d", "minimal", 2) not in cands  # 4 rows / 8.


def test_hlo_analysis_counts_loop_bodies_by_trip_count():
  hlo = """HloModule m

%body (p: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %p = (s32[], f32[4,8]{1,0}) parameter(0)
  %x = f32[4,8]{1,0} get-tuple-element(%p), index=1
  %w = f32[8,8]{1,0} constant({...})
  %d = f32[4,8]{1,0} dot(%x, %w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %ar = f32[4,8]{1,0} all-reduce(%d), replica_groups={}, to_apply=%add
  ROOT %t = (s32[], f32[4,8]{1,0}) tuple(%i, %ar)
}

ENTRY %main (a: f32[4,8]) -> f32[4,8] {
  %a = f32[4,8]{1,0} parameter(0)
  %w = (s32[], f32[4,8]{1,0}) while(%t0), condition=%cond, body=%body, \
backend_config={"known_trip_count":{"n":"3"}}
  ROOT %g = f32[4,8]{1,0} all-gather(%a), dimensions={0}
}
"""
  summary = plan.analyze_hlo(hlo)
  assert summary.dot_flops_once == 2 * 4 * 8 * 8
  assert summary.dot_flops == 3 * summary.dot_flops_once
  assert summary.collectives["all-reduce"] == {"count": 3, "bytes": 3 * 4 * 8 * 4}
  assert summary.collectives["all-gather"] == {"count": 1, "bytes": 4 * 8 * 4}


@pytest.mark.slow
def test_search_ranks_compiled_candidates(tmp_path):
  out = tmp_path / "search.json"
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run(
      [sys.executable, "-m", "flan_jax.plan", *GIN, f"--gin_search_paths={REPO}", "--devices=8",
       "--search", "--max_candidates=2", f"--output={out}"],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  results = json.loads(out.read_text())["search"]
  assert len(results) == 2 and all("error" not in r for r in results)
  assert "rank" in proc.stdout and "plan search" in proc.stderr
