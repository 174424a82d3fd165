r"""``flan-jax plan``: will a training run fit, before you get the pod? A compile-time plan.

    python -m flan_jax.plan --gin_file=gin/flan/flan_heldout_nli.gin --devices 128 \
        --mesh data=8,model=16 --target tpu_v4

Takes the gin files and ``--gin.NAME=VALUE`` macros of ``flan-jax train``, builds **train's own**
partitioned step (:func:`flan_jax.train.build_train_step`: the same optimizer, loss, dropout,
microbatching, remat and rules) with abstract, sharded state and batch, then lowers and compiles it
for ``--devices`` simulated CPU devices (nothing is allocated). It reports per device: parameters
and optimizer state (from the shardings, as ``model-info``), the f32 gradients, XLA's temporaries
(activations, gradients, optimizer temporaries) and the peak against ``--target``'s HBM; FLOPs per
step from XLA's cost analysis (while-loop bodies counted by their trip count) next to the
analytical 6N + attention count; the collectives of the compiled program (kind, count, bytes per
step); and the step time and MFU expected at ``--fraction`` of the target's peak FLOP/s. Output:
a console table and ``--output`` (``plan.json``).

The program is compiled by the CPU backend: sharding, collectives and FLOPs are those of GSPMD for
any backend, but the CPU compiler keeps some f32 copies of bf16 values and fuses differently, so
the memory figures for TPU/GPU may be lower. ``--search`` compiles candidate meshes (data x fsdp x
model), rule sets, remat policies and microbatch counts (each in a child process with a time
limit) and ranks those that fit by expected step time.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

GIB = 2**30
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
                "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
                "f8e4m3fn": 1, "f8e5m2": 1, "s4": 1, "u4": 1}
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute",
               "ragged-all-to-all", "collective-broadcast")


# --- compiled HLO: loop trip counts, dot FLOPs and collectives --------------------------------


_ARRAY = re.compile(r"\b([a-z][a-z0-9]*)\[([0-9,]*)\]")
_HEADER = re.compile(r"^(ENTRY )?%?([\w.\-]+) \((.*)\) -> .* \{$")
_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.+?) ([a-z][\w\-]*)\((.*)$")
_CALLEE = re.compile(r"\b(calls|to_apply|body|condition|branch_computations|"
                     r"called_computations)=(\{[^}]*\}|%[\w.\-]+)")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def _arrays(shape_text: str) -> list[tuple[str, tuple[int, ...]]]:
  return [(t, tuple(int(d) for d in dims.split(",") if d)) for t, dims in _ARRAY.findall(
      shape_text) if t in _DTYPE_BYTES]


def _nbytes(arrays: Sequence[tuple[str, tuple[int, ...]]]) -> int:
  return sum(_DTYPE_BYTES[t] * math.prod(dims) for t, dims in arrays)


@dataclasses.dataclass
class HloSummary:
  """Per-device figures of one compiled SPMD program, loop bodies weighted by trip counts."""

  dot_flops: float = 0.0  # Σ dot FLOPs x executions.
  dot_flops_once: float = 0.0  # Σ dot FLOPs, each instruction once (as XLA's cost analysis).
  collectives: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
  unknown_trip_counts: int = 0


_Computation = tuple[str, list[str], dict[str, tuple[int, ...]]]


def _computations(text: str) -> tuple[list[_Computation], str | None]:
  """The computations of HLO text in order, each (name, instruction lines, parameter shapes),
  and the ENTRY computation's name."""
  comps: list[_Computation] = []
  entry = None
  current = None
  for line in text.splitlines():
    header = _HEADER.match(line)
    if header:
      shapes = {name: dims for name, (_, dims) in (
          (m.group(1), _arrays(m.group(2))[0]) for m in re.finditer(
              r"([\w.\-]+): ([a-z][a-z0-9]*\[[0-9,]*\])", header.group(3)))}
      current = (header.group(2), [], shapes)
      comps.append(current)
      if header.group(1):
        entry = header.group(2)
    elif line.startswith("}"):
      current = None
    elif current is not None:
      current[1].append(line)
  return comps, entry


def analyze_hlo(text: str) -> HloSummary:
  """Dot FLOPs and collectives (kind -> count, result bytes) of a compiled module's HLO text.

  A computation's executions are the sum over its call sites of the caller's executions, times the
  ``known_trip_count`` for a while body (1 when XLA does not know it; counted in
  ``unknown_trip_counts``). Computations are listed callees-first, so one reverse pass suffices.
  """
  comps, entry = _computations(text)
  executions = {name: 0.0 for name, _, _ in comps}
  if entry is None:
    return HloSummary()
  executions[entry] = 1.0
  out = HloSummary()
  for name, lines, shapes in reversed(comps):
    times = executions.get(name, 0.0)
    for line in lines:
      m = _INSTR.match(line)
      if not m:
        continue
      result, shape_text, op, rest = m.group(1), m.group(2), m.group(3), m.group(4)
      arrays = _arrays(shape_text)
      if arrays:
        shapes[result] = arrays[0][1]
      trip = 1
      if op == "while":
        found = _TRIP.search(rest)
        if found:
          trip = int(found.group(1))
        else:
          out.unknown_trip_counts += 1
      for key, callees in _CALLEE.findall(rest):
        for callee in re.findall(r"%?([\w.\-]+)", callees.strip("{}")):
          if callee in executions:
            executions[callee] += times * (trip if key in ("body", "condition") else 1)
      if op == "dot":
        operands = re.findall(r"%([\w.\-]+)", rest.split(")", 1)[0])
        contracting = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", rest)
        lhs = shapes.get(operands[0]) if operands else None
        if lhs is not None and arrays:
          dims = [int(d) for d in contracting.group(1).split(",") if d] if contracting else []
          flops = 2.0 * math.prod(arrays[0][1]) * math.prod(lhs[d] for d in dims)
          out.dot_flops += flops * times
          out.dot_flops_once += flops
      base = op[:-len("-start")] if op.endswith("-start") else op
      if base in COLLECTIVES:
        size = (max(_nbytes([a]) for a in arrays) if op.endswith("-start") and arrays
                else _nbytes(arrays))
        row = out.collectives.setdefault(base, {"count": 0, "bytes": 0})
        row["count"] += times
        row["bytes"] += size * times
  return out


# --- one plan -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Candidate:
  """What one plan compiles: mesh, rule set, remat policy, microbatches."""

  mesh: str
  rules: str
  remat: str
  microbatches: int

  def label(self) -> str:
    return f"{self.mesh} rules={self.rules} remat={self.remat} microbatches={self.microbatches}"


def train_arguments(gin_files: Sequence[str], gin_bindings: Sequence[str],
                    search_paths: Sequence[str] = (".",)) -> dict[str, Any]:
  """The arguments gin would pass to ``train`` (its defaults, then the files' bindings; the typed
  configs ``optimizer_cfg``, ``partitioning_cfg``, ... built, as gin builds them)."""
  import inspect

  import gin

  from flan_jax import train as train_lib
  from flan_jax.config import gin_utils
  gin.clear_config()
  gin_utils.parse_gin(gin_files, gin_bindings, search_paths)
  defaults = {k: p.default for k, p in inspect.signature(train_lib.train).parameters.items()}
  values = {**defaults, **gin.get_bindings(train_lib.train)}
  required = [k for k in ("model_config", "task_feature_lengths") if values[k] is gin.REQUIRED
              or type(values[k]) is object]
  if required:
    raise ValueError(f"the gin files set no {', '.join(required)} (include a model gin and a run "
                     "gin such as gin/runs/finetune.gin)")
  return {k: (None if v is gin.REQUIRED or type(v) is object else v) for k, v in values.items()}


def _abstract_batch(batch_size: int, lengths: Mapping[str, int], mesh: Any) -> dict[str, Any]:
  """The packed seqio ``DecoderFeatureConverter`` features ``train`` feeds, as sharded structs."""
  import jax
  import jax.numpy as jnp

  from flan_jax.parallel import partitioning
  length = sum(lengths.values())
  names = ["decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
           "decoder_segment_ids", "decoder_positions"]
  if "inputs" in lengths:
    names.append("decoder_causal_attention")
  sharding = partitioning.data_sharding(mesh)
  return {k: jax.ShapeDtypeStruct((batch_size, length), jnp.int32, sharding=sharding)
          for k in names}


def analytical_flops(config: Any, tokens: int, seq_len: int) -> dict[str, float]:
  """Per step: PaLM model FLOPs (6N + causal attention; MFU's numerator) and what the compiled
  step should execute (6N + full score matrices + the remat policy's forward recompute)."""
  n = config.num_layers * config.matmul_params_per_layer() + config.vocab_size * config.d_model
  attention = 12 * config.num_layers * config.num_heads * config.head_dim * seq_len  # fwd+bwd.
  recompute = {"none": 0.0, "dots": 0.0, "minimal": attention / 3,
               "full": 2.0 * config.num_layers * config.matmul_params_per_layer() + attention / 3}
  return {"model": tokens * config.train_flops_per_token(seq_len),
          "executed": tokens * (6 * n + attention + recompute[config.remat_policy])}


def _compile_step(train_args: Mapping[str, Any], candidate: Candidate, config: Any, mesh: Any,
                  batch: int, lengths: Mapping[str, int]) -> tuple[Any, Any, Any, float]:
  """(abstract TrainState, the TrainStep parts, the compiled step, seconds to lower and compile)
  of ``train``'s step for ``candidate`` on ``mesh`` (nothing is allocated: state and batch are
  abstract)."""
  import jax

  from flan_jax import train as train_lib
  from flan_jax.parallel import partitioning
  from flan_jax.training import checkpoints
  rules = partitioning.logical_axis_rules(candidate.rules, mesh.axis_names)
  train_lib.check_batch_divisibility(batch, candidate.microbatches, dict(mesh.shape),
                                     candidate.mesh)
  step_kwargs = train_args["optimizer_cfg"].step_kwargs() | {
      "num_microbatches": candidate.microbatches}
  parts = train_lib.build_train_step(
      config, mesh, rules,
      train_steps=train_args["train_steps"] or train_args["relative_steps"] or 1, **step_kwargs)
  state = checkpoints.abstract_train_state(config, parts.tx, parts.shardings)
  rng = jax.eval_shape(lambda: jax.random.key(0))
  start = time.perf_counter()
  lowered = parts.step_fn.lower(state, _abstract_batch(batch, lengths, mesh), rng)
  compiled = lowered.compile()
  return state, parts, compiled, time.perf_counter() - start


def _bytes_per_device(state: Any, shardings: Any, mem: Any,
                      axis_sizes: Mapping[str, int]) -> dict[str, int]:
  """Per device: parameters, optimizer state, float32 gradients (from the shardings) and XLA's
  memory analysis (arguments, outputs, aliased, temporaries, their peak)."""
  import jax

  from flan_jax.parallel import partitioning
  spec = lambda s: s.spec  # noqa: E731
  param_specs = jax.tree.map(spec, shardings.params)
  f32 = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, "float32"), state.params)
  peak = (mem.argument_size_in_bytes + mem.temp_size_in_bytes + mem.output_size_in_bytes
          - mem.alias_size_in_bytes)
  return {
      "parameters": partitioning.bytes_per_device(state.params, param_specs, axis_sizes),
      "optimizer_state": partitioning.bytes_per_device(
          state.opt_state, jax.tree.map(spec, shardings.opt_state), axis_sizes),
      "gradients_f32": partitioning.bytes_per_device(f32, param_specs, axis_sizes),
      "arguments": mem.argument_size_in_bytes, "outputs": mem.output_size_in_bytes,
      "aliased": mem.alias_size_in_bytes, "temporaries": mem.temp_size_in_bytes, "peak": peak}


def plan(train_args: Mapping[str, Any], candidate: Candidate, devices: int, target: Any,
         fraction: float = 0.5, batch_size: int | None = None) -> dict[str, Any]:
  """Lowers and compiles ``train``'s step for ``candidate`` on ``devices`` devices of this process
  and returns the plan (bytes per device, FLOPs per step, collectives, fit, step time).

  ``target``: a name of :data:`flan_jax.perf.ACCELERATORS` or an ``Accelerator``."""
  import jax

  from flan_jax.parallel import partitioning
  from flan_jax.training import perf
  accel = perf.accelerator(target) if isinstance(target, str) else target
  if jax.device_count() < devices:
    raise ValueError(f"this process has {jax.device_count()} devices, the plan needs {devices}")
  config = train_args["model_config"].replace(dropout_rate=train_args["dropout_rate"],
                                              remat_policy=candidate.remat)
  lengths = dict(train_args["task_feature_lengths"])
  batch = batch_size or train_args["batch_size"]
  mesh = partitioning.create_mesh(candidate.mesh, jax.devices()[:devices])
  axis_sizes = dict(mesh.shape)
  state, parts, compiled, compile_s = _compile_step(train_args, candidate, config, mesh, batch,
                                                    lengths)
  memory = _bytes_per_device(state, parts.shardings, compiled.memory_analysis(), axis_sizes)
  peak = memory["peak"]
  hlo = analyze_hlo(compiled.as_text())
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = float(cost.get("flops", 0.0))
  flops_per_device = xla_flops + hlo.dot_flops - hlo.dot_flops_once
  seq_len = sum(lengths.values())
  analytic = analytical_flops(config, batch * seq_len, seq_len)
  compiled_flops = flops_per_device * devices
  step_s = flops_per_device / (fraction * accel.peak_flops)
  return {
      "candidate": dataclasses.asdict(candidate),
      "mesh": axis_sizes,
      "devices": devices,
      "backend": f"cpu ({devices} simulated devices; XLA CPU compiler)",
      "batch_size": batch,
      "tokens_per_step": batch * seq_len,
      "parameters": config.num_params(),
      "compile_seconds": compile_s,
      "bytes_per_device": memory,
      "target": {"name": accel.name, "hbm_bytes": accel.hbm_bytes,
                 "peak_flops": accel.peak_flops, "note": accel.note},
      "fits": peak <= accel.hbm_bytes,
      "headroom_bytes": accel.hbm_bytes - peak,
      "flops_per_step": {
          "compiled": compiled_flops, "xla_cost_analysis_per_device": xla_flops,
          "loop_trip_count_correction_per_device": hlo.dot_flops - hlo.dot_flops_once,
          "analytical_executed": analytic["executed"], "model": analytic["model"],
          "compiled_over_analytical": compiled_flops / analytic["executed"]},
      "collectives": hlo.collectives,
      "unknown_trip_counts": hlo.unknown_trip_counts,
      "fraction_of_peak": fraction,
      "step_seconds": step_s,
      "mfu": analytic["model"] / (devices * accel.peak_flops * step_s),
      "tokens_per_second": batch * seq_len / step_s,
  }


def _gib(n: float) -> str:
  """GiB with 2 decimals (3 significant digits below 0.1 GiB)."""
  return f"{n / GIB:8.2f}" if abs(n) >= 0.1 * GIB else f"{n / GIB:8.2g}"


def format_plan(p: Mapping[str, Any]) -> str:
  """The console table of one plan."""
  b, t, f = p["bytes_per_device"], p["target"], p["flops_per_step"]
  c = p["candidate"]
  lines = [
      f"mesh {p['mesh']} ({p['devices']} devices), rules {c['rules']}, remat {c['remat']}, "
      f"{c['microbatches']} microbatch(es), batch {p['batch_size']} "
      f"({p['tokens_per_step']} tokens), {p['parameters'] / 1e9:.2f}B parameters",
      f"compiled for {p['backend']} in {p['compile_seconds']:.1f} s",
      "per device                                   GiB",
      f"  parameters                             {_gib(b['parameters'])}",
      f"  optimizer state                        {_gib(b['optimizer_state'])}",
      f"  gradients (f32, part of temporaries)   {_gib(b['gradients_f32'])}",
      f"  activations + other temporaries        {_gib(b['temporaries'] - b['gradients_f32'])}",
      f"  XLA temporaries                        {_gib(b['temporaries'])}",
      f"  peak (arguments + temporaries + outputs - aliased)  {_gib(b['peak']).strip()}",
      f"target {t['name']}: {t['hbm_bytes'] / GIB:.1f} GiB HBM per device -> "
      + (f"FITS, headroom {p['headroom_bytes'] / GIB:.2f} GiB "
         f"({100 * p['headroom_bytes'] / t['hbm_bytes']:.0f}%)" if p["fits"] else
         f"DOES NOT FIT, {-p['headroom_bytes'] / GIB:.2f} GiB over"),
      f"FLOPs per step: compiled {f['compiled']:.3e} (XLA cost analysis, loop bodies x trip "
      f"count) vs analytical {f['analytical_executed']:.3e} (6N + attention + remat recompute): "
      f"x{f['compiled_over_analytical']:.3f}; model FLOPs (6N + causal attention) "
      f"{f['model']:.3e}",
      "collectives per step (per device)   count      GiB",
  ]
  for kind, row in sorted(p["collectives"].items()):
    lines.append(f"  {kind:30s} {row['count']:8.0f} {row['bytes'] / GIB:8.3f}")
  if not p["collectives"]:
    lines.append("  (none)")
  lines.append(f"expected at {100 * p['fraction_of_peak']:.0f}% of {t['peak_flops'] / 1e12:.1f} "
               f"TFLOP/s per device (compute-bound, collectives overlapped): step "
               f"{p['step_seconds']:.3f} s, {p['tokens_per_second']:.0f} tokens/s, "
               f"MFU {100 * p['mfu']:.1f}%")
  return "\n".join(lines)


# --- search -------------------------------------------------------------------------------


def candidate_meshes(devices: int, num_heads: int, batch_size: int) -> list[str]:
  """data x fsdp x model factorisations of ``devices`` (powers of two for model and fsdp; model
  at most the head count) whose data-parallel size divides the batch."""
  out = []
  for model in (m for m in range(1, devices + 1) if devices % m == 0 and m <= num_heads):
    rest = devices // model
    for fsdp in (f for f in range(1, rest + 1) if rest % f == 0):
      data = rest // fsdp
      if batch_size % (data * fsdp):
        continue
      out.append(f"data={data},fsdp={fsdp},model={model}" if fsdp > 1 else
                 f"data={data},model={model}")
  return out


def candidates(devices: int, num_heads: int, batch_size: int,
               remats: Sequence[str] = ("minimal", "full"),
               microbatches: Sequence[int] = (1, 2)) -> list[Candidate]:
  """Every mesh with the rule sets that apply to it, remat policies and microbatch counts."""
  from flan_jax.parallel import partitioning  # As elsewhere here: jax only once planning runs.
  out = []
  for mesh in candidate_meshes(devices, num_heads, batch_size):
    rule_sets = ("fsdp",) if "fsdp" in mesh else ("1d", "2d_params", "2d")
    axis_sizes = {k: int(v) for k, v in (a.split("=") for a in mesh.split(","))}
    replicas = partitioning.replicas(axis_sizes)
    for rules, remat, micro in itertools.product(rule_sets, remats, microbatches):
      if batch_size % micro == 0 and (batch_size // micro) % replicas == 0:
        out.append(Candidate(mesh, rules, remat, micro))
  return out


def _child_command(argv: Sequence[str], candidate: Candidate, output: str) -> list[str]:
  dropped = ("--mesh", "--rules", "--remat", "--microbatches", "--output", "--max_candidates",
             "--max_seconds_per_candidate", "--max_search_seconds")
  keep, skip = [], False
  for a in argv:
    if skip:
      skip = False
    elif a == "--search":
      continue
    elif a.startswith(dropped):
      skip = "=" not in a  # "--output plan.json": the value is the next token.
    else:
      keep.append(a)
  return [sys.executable, "-m", "flan_jax.plan", *keep, f"--mesh={candidate.mesh}",
          f"--rules={candidate.rules}", f"--remat={candidate.remat}",
          f"--microbatches={candidate.microbatches}", f"--output={output}", "--quiet"]


def search(argv: Sequence[str], cands: Sequence[Candidate], timeout_s: float,
           budget_s: float, workdir: str) -> list[dict[str, Any]]:
  """Compiles each candidate in a child process (``timeout_s`` each, ``budget_s`` in all)."""
  import tqdm
  results = []
  start = time.time()
  bar = tqdm.tqdm(cands, desc="plan search", unit="compile", dynamic_ncols=True)
  for i, cand in enumerate(bar):
    left = budget_s - (time.time() - start)
    if left <= 0:
      results.append({"candidate": dataclasses.asdict(cand), "error": "search time budget spent"})
      continue
    bar.set_postfix_str(cand.label())
    out = os.path.join(workdir, f"candidate_{i}.json")
    try:
      proc = subprocess.run(_child_command(argv, cand, out), capture_output=True, text=True,
                            timeout=min(timeout_s, left))
      if os.path.exists(out):
        with open(out) as f:
          results.append(json.load(f))
      else:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
        results.append({"candidate": dataclasses.asdict(cand), "error": tail[0]})
    except subprocess.TimeoutExpired:
      results.append({"candidate": dataclasses.asdict(cand),
                      "error": f"compile exceeded {min(timeout_s, left):.0f} s"})
  bar.close()
  return results


def format_search(results: Sequence[Mapping[str, Any]]) -> str:
  ok = sorted((r for r in results if "error" not in r and r["fits"]),
              key=lambda r: r["step_seconds"])
  rest = [r for r in results if "error" in r or not r["fits"]]
  lines = ["rank  step s   MFU%  peak GiB  headroom  candidate"]
  for i, r in enumerate(ok):
    lines.append(f"{i + 1:4d}  {r['step_seconds']:6.3f}  {100 * r['mfu']:5.1f}  "
                 f"{r['bytes_per_device']['peak'] / GIB:8.2f}  {r['headroom_bytes'] / GIB:8.2f}  "
                 f"{Candidate(**r['candidate']).label()}")
  for r in rest:
    why = r.get("error") or f"does not fit ({r['bytes_per_device']['peak'] / GIB:.2f} GiB)"
    lines.append(f"   -  {'':6s}  {'':5s}  {'':8s}  {'':8s}  {Candidate(**r['candidate']).label()}"
                 f": {why}")
  return "\n".join(lines)


# --- command line -------------------------------------------------------------------------


def _use_devices(n: int) -> bool:
  """Makes this process simulate ``n`` CPU devices if JAX has not started; True when it has
  (at least) ``n`` CPU devices."""
  import jax
  from jax._src import xla_bridge
  if not xla_bridge.backends_are_initialized():
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", n)
  return jax.devices()[0].platform == "cpu" and jax.device_count() >= n


def build_parser() -> argparse.ArgumentParser:
  from flan_jax.models.config import REMAT_POLICIES
  from flan_jax.parallel import partitioning
  from flan_jax.training import perf
  parser = argparse.ArgumentParser(prog="flan-jax plan", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gin_file", action="append", default=[], required=True)
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--gin_search_paths", default=".", help="comma-separated")
  parser.add_argument("--devices", type=int, required=True, help="number of devices to plan for")
  parser.add_argument("--mesh", default=None, help="e.g. data=8,model=16 (default: the gin's)")
  parser.add_argument("--rules", default=None, choices=sorted(partitioning.RULE_SETS),
                      help="partitioning rule set (default: the gin's PARTITIONING_RULES)")
  parser.add_argument("--remat", default=None, choices=REMAT_POLICIES,
                      help="remat policy (default: MODEL_CONFIG's)")
  parser.add_argument("--microbatches", type=int, default=None,
                      help="default: the gin's NUM_MICROBATCHES")
  parser.add_argument("--batch_size", type=int, default=None, help="default: the gin's")
  parser.add_argument("--target", default="tpu_v4", choices=list(perf.ACCELERATORS))
  parser.add_argument("--hbm_gib", type=float, default=None,
                      help="override the target's HBM per device (GiB)")
  parser.add_argument("--fraction", type=float, default=0.5,
                      help="fraction of the peak FLOP/s assumed for the step time (default 0.5)")
  parser.add_argument("--output", default="plan.json")
  parser.add_argument("--search", action="store_true",
                      help="compile candidate meshes/rules/remat/microbatches; rank those that fit")
  parser.add_argument("--max_candidates", type=int, default=40)
  parser.add_argument("--max_seconds_per_candidate", type=float, default=120.0)
  parser.add_argument("--max_search_seconds", type=float, default=900.0)
  parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m flan_jax.plan`` / ``flan-jax plan``; returns the exit code (1: does not fit)."""
  from flan_jax.models.gin_config import rewrite_gin_args
  argv = rewrite_gin_args(sys.argv[1:] if argv is None else list(argv))
  args = build_parser().parse_args(argv)
  if args.devices < 1:
    sys.exit("flan-jax plan: error: --devices must be >= 1")
  if not args.search and not _use_devices(args.devices):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={args.devices}"])
    return subprocess.call([sys.executable, "-m", "flan_jax.plan", *argv], env=env)
  try:
    train_args = train_arguments(args.gin_file, args.gin_bindings,
                                 args.gin_search_paths.split(","))
  except ValueError as e:
    sys.exit(f"flan-jax plan: error: {e}")
  config = train_args["model_config"]
  batch = args.batch_size or train_args["batch_size"]
  if args.search:
    import tempfile
    cands = candidates(args.devices, config.num_heads, batch)[:args.max_candidates]
    print(f"searching {len(cands)} candidates for {args.devices} devices, target {args.target}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
      results = search(argv, cands, args.max_seconds_per_candidate, args.max_search_seconds, tmp)
    print(format_search(results))
    with open(args.output, "w") as f:
      json.dump({"search": results}, f, indent=2)
    return 0 if any("error" not in r and r["fits"] for r in results) else 1
  from flan_jax.training import perf
  target = perf.accelerator(args.target)
  if args.hbm_gib is not None:
    target = dataclasses.replace(target, hbm_bytes=int(args.hbm_gib * GIB),
                                 note=f"HBM overridden to {args.hbm_gib} GiB")
  partitioning_cfg = train_args["partitioning_cfg"]
  cand = Candidate(args.mesh or partitioning_cfg.mesh, args.rules or partitioning_cfg.rules,
                   args.remat or config.remat_policy,
                   args.microbatches or train_args["optimizer_cfg"].num_microbatches)
  try:
    result = plan(train_args, cand, args.devices, target, args.fraction, batch)
  except ValueError as e:
    sys.exit(f"flan-jax plan: error: {e}")
  result["command"] = " ".join(["flan-jax plan", *argv])
  with open(args.output, "w") as f:
    json.dump(result, f, indent=2)
  if not args.quiet:
    print(format_plan(result))
    print(f"wrote {args.output}")
  return 0 if result["fits"] else 1


def cli_main(argv: Sequence[str] | None = None) -> None:
  """``flan-jax plan``: exits with :func:`main`'s code."""
  sys.exit(main(argv))


if __name__ == "__main__":
  raise SystemExit(main())
