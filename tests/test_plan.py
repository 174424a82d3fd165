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
  assumed = result["step_time"]["assumed"]
  assert 0 < assumed["mfu"] < 0.5 and assumed["step_seconds"] > 0
  assert assumed["label"].startswith("assumed 50% of peak FLOP/s")
  assert result["step_time"]["paper_measured"] is None  # Not the paper's model.
  assert "cpu" in result["backend"] and result["slice_name"] == "TPU v4-16 (8 chips)"
  # 1-D rules replicate the parameters over data: their gradients are all-reduced over `data`.
  over = result["collectives"]["all-reduce"]["over"]
  assert over["data"]["count"] > 0 and over["model"]["count"] > 0
  grads = result["gradient_reduction"]
  assert not grads["parameters_sharded_over_data"] and grads["all-reduce"]["bytes"] > 0


def test_plan_cli_two_slices_reports_what_crosses_them_and_a_target_too_small(tmp_path, capsys):
  out = tmp_path / "plan.json"
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["plan", *GIN, f"--gin_search_paths={REPO}", "--devices=8", "--mesh=data=2,model=2",
              "--dcn_mesh=data=2", "--rules=2d_params", "--target=tpu_v5e", "--hbm_gib=0.001",
              f"--output={out}"])
  assert exit_info.value.code == 1
  text = capsys.readouterr().out
  assert "DOES NOT FIT" in text and "across slices (DCN)" in text
  result = json.loads(out.read_text())
  assert not result["fits"] and result["headroom_bytes"] < 0
  assert result["mesh"] == {"data": 4, "model": 2} and result["slices"] == 2
  assert result["slice_name"] == "2 x TPU v5e-4 (4 chips each)"
  assert result["candidate"]["rules"] == "2d_params" and result["candidate"]["dcn"] == "data=2"
  assert result["command"].startswith("flan-jax plan")
  # `data` runs across the 2 slices (every data group crosses them); `model` stays inside one.
  crossing = 0
  for kind, row in result["collectives"].items():
    for axes, part in row["over"].items():
      if "data" in axes.split(","):
        assert part["across_slices"] == {"count": part["count"], "bytes": part["bytes"]}, kind
        crossing += part["count"]
      elif axes == "model":
        assert part["across_slices"]["count"] == 0, kind
  assert crossing > 0 and result["collectives"]["all-reduce"]["over"]["model"]["count"] > 0
  # 2-D parameters are sharded over data, yet the CPU backend all-reduces their gradients.
  grads = result["gradient_reduction"]
  assert grads["parameters_sharded_over_data"] and grads["all-reduce"]["count"] > 0
  assert "gradients reduce over the data axes by all-reduce" in text
  assert "ReduceScatterCreator" in text


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
  # With the mesh and 2 slices: `{}` groups span every axis and both slices; no groups: unread.
  sliced = plan.analyze_hlo(hlo, {"data": 2, "model": 4}, [0] * 4 + [1] * 4).collectives
  both = {"count": 3, "bytes": 3 * 4 * 8 * 4}
  assert sliced["all-reduce"]["over"] == {"data,model": {**both, "across_slices": both}}
  assert sliced["all-reduce"]["across_slices"] == both
  assert sliced["all-gather"]["over"]["?"]["across_slices"] == {"count": 0, "bytes": 0}


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


def test_slice_names_count_what_the_vendor_counts():
  assert plan.slice_name("tpu_v4", 64) == "TPU v4-128 (64 chips)"  # Megacore: device = chip.
  assert plan.slice_name("tpu_v4", 128) == "TPU v4-256 (128 chips)"
  assert plan.slice_name("tpu_v3", 128) == "TPU v3-128 (64 chips, 128 cores)"  # Device = core.
  assert plan.slice_name("tpu_v5e", 256) == "TPU v5e-256 (256 chips)"  # Named by chips.
  assert plan.slice_name("tpu_v5p", 64, 2) == "2 x TPU v5p-64 (32 chips each)"
  assert plan.slice_name("h100", 128) == "128 x h100"


def test_paper_measured_step_time_reproduces_the_papers_run():
  from flan_jax.models.gin_config import config_from_gin
  from flan_jax.training import perf
  config = config_from_gin(["gin/models/lamda_137b.gin"])
  mfu = plan.PAPER_RUN.mfu(config)
  assert 0.11 < mfu < 0.13  # ~60 h for 30k steps of 8,192 tokens on 128 v3 cores.
  tokens = 8192
  model_flops = config.train_flops_per_token(1280) * tokens
  v3 = perf.accelerator("tpu_v3")
  times = plan.step_time(model_flops, model_flops / 128, 128, v3, 0.5, config, tokens)
  assert times["assumed"]["step_seconds"] == pytest.approx(model_flops / 128 / (0.5 * 61.5e12))
  paper = times["paper_measured"]
  assert paper["step_seconds"] == pytest.approx(60 * 3600 / 30000)  # The paper's own step.
  assert paper["label"].startswith("paper-measured (FLAN: ~60 h for 30k steps")
  assert f"MFU {100 * mfu:.1f}%" in paper["label"] and "applied to" not in paper["label"]
  v4 = plan.step_time(model_flops, model_flops / 128, 128, perf.accelerator("tpu_v4"), 0.5,
                      config, tokens)["paper_measured"]
  assert "applied to tpu_v4" in v4["label"] and v4["step_seconds"] < paper["step_seconds"]
  other = config.replace(num_layers=2)
  assert plan.step_time(1.0, 1.0, 1, v3, 0.5, other, 1)["paper_measured"] is None


@pytest.mark.parametrize("attributes,groups", [
    ("replica_groups={{0,1},{2,3}}, to_apply=%add", [[0, 1], [2, 3]]),
    ("replica_groups={}, to_apply=%add", [[0, 1, 2, 3]]),
    ("replica_groups=[2,2]<=[4], dimensions={0}", [[0, 1], [2, 3]]),
    ("replica_groups=[2,2]<=[2,2]T(1,0), use_global_device_ids=true", [[0, 2], [1, 3]]),
    ("replica_groups=mesh['axis_0'=2,'axis_1'=2] {'axis_0'}, use_global_device_ids=true",
     [[0, 2], [1, 3]]),
    ("replica_groups=mesh['axis_0'=2,'axis_1'=2], device_ids=([2,2]T(1,0)) {'axis_1'}, to_apply",
     [[0, 2], [1, 3]]),
    ("source_target_pairs={{0,1},{1,0}}, metadata={}", [[0, 1], [1, 0]]),
    ("replica_groups=mesh['axis_0'=4] {'axis_0':(1)2}, to_apply=%add", None),  # Sub-axes.
])
def test_replica_groups_of_each_hlo_format(attributes, groups):
  assert plan.replica_groups(attributes, 4) == groups
