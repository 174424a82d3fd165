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
analytical 6N + attention count; the collectives of the compiled program (kind, the mesh axes
their groups span, count, bytes per step; with ``--dcn_mesh``, those that cross slices) and
whether the gradients reduce by all-reduce or reduce-scatter; the step time as a range: at an
*assumed* ``--fraction`` of the target's peak FLOP/s, and, for the paper's model, at the MFU the
paper's run measured (~60 h for 30k steps on TPU v3-128: about 12 %). The devices are named as
the vendor names slices (``--target tpu_v4 --devices 128``: TPU v4-256, 128 chips). Output: a
console table and ``--output`` (``plan.json``).

``--dcn_mesh data=2`` plans a multi-slice run: ``--devices`` split into that many slices of
consecutive devices, ``--mesh`` the mesh inside one slice (as ``MESH``/``DCN_MESH`` in train).

The program is compiled by the CPU backend: sharding, collectives and FLOPs are those of GSPMD for
any backend, but the CPU compiler keeps some f32 copies of bf16 values and fuses differently, so
the memory figures for TPU/GPU may be lower. ``--search`` compiles candidate meshes (data x fsdp x
model), rule sets, remat policies and microbatch counts (each in a child process with a time
limit) and ranks those that fit by expected step time.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flan_jax.storage import fs

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
  """Per-device figures of one compiled SPMD program, loop bodies weighted by trip counts.

  ``collectives``: kind -> ``count``, ``bytes`` and, given the mesh, ``over`` (the mesh axes the
  replica groups span, e.g. ``"data"`` -> count, bytes; ``"?"``: groups not read); given slices,
  each of these also holds ``across_slices`` (count, bytes of those whose groups span several
  slices: what crosses the DCN)."""

  dot_flops: float = 0.0  # Σ dot FLOPs x executions.
  dot_flops_once: float = 0.0  # Σ dot FLOPs, each instruction once (as XLA's cost analysis).
  collectives: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  unknown_trip_counts: int = 0


_TILE = r"\[([0-9,]+)\](?:T\(([0-9,]+)\))?"  # XLA's iota tile: [dims] then T(permutation).
_IOTA = re.compile(r"\[([0-9,]+)\]<=" + _TILE)
_MESH_GROUPS = re.compile(r"mesh\[([^\]]*)\](?:, device_ids=\((\[[0-9,]+\](?:T\([0-9,]+\))?)\))?"
                          r" \{([^}]*)\}")


def _ints(text: str) -> list[int]:
  return [int(x) for x in text.split(",") if x]


def _iota(dims: str, perm: str | None) -> Any:
  """XLA's iota tile ``<=[dims]T(perm)``: arange reshaped to dims, transposed by perm."""
  import numpy as np
  array = np.arange(math.prod(_ints(dims))).reshape(_ints(dims))
  return array.transpose(_ints(perm)) if perm else array


def replica_groups(attributes: str, num_devices: int) -> list[list[int]] | None:
  """The device groups (partition ids) of one collective's HLO attributes: ``replica_groups`` as
  a list (``{{0,1},{2,3}}``, ``{}``: all devices), an iota (``[2,4]<=[4,2]T(1,0)``) or mesh axes
  (``mesh['axis_0'=4,'axis_1'=2] {'axis_0'}``), or ``source_target_pairs``; None if unread."""
  found = re.search(r"(replica_groups|source_target_pairs)=(\{\}|\{\{[0-9,{}]*\}\}|"
                    r"\[[0-9,]+\]<=\S+|mesh\[.*?\}(?=,|$))", attributes)
  if not found:
    return None
  text = found.group(2)
  if text == "{}":
    return [list(range(num_devices))]
  if text.startswith("{{"):
    return [_ints(g) for g in re.findall(r"\{([0-9,]+)\}", text)]
  iota = _IOTA.match(text)
  if iota:
    return _iota(iota.group(2), iota.group(3)).reshape(_ints(iota.group(1))).tolist()
  mesh = _MESH_GROUPS.match(text)
  if not mesh:
    return None
  axes = [(name, int(size)) for name, size in re.findall(r"'([^']+)'=(\d+)", mesh.group(1))]
  over = re.findall(r"'([^']+)'", mesh.group(3))
  names = [name for name, _ in axes]
  if not axes or any(name not in names for name in over) or re.search(r"[:(]", mesh.group(3)):
    return None  # Sub-axes ('axis_0':(1)2) are not read.
  ids = (_iota(*re.match(_TILE, mesh.group(2)).groups()) if mesh.group(2)
         else _iota(str(math.prod(s for _, s in axes)), None))
  order = [i for i, n in enumerate(names) if n not in over] + [names.index(n) for n in over]
  size = math.prod(s for n, s in axes if n in over)
  return ids.reshape([s for _, s in axes]).transpose(order).reshape(-1, size).tolist()


def _group_axes(groups: list[list[int]] | None, mesh_shape: Mapping[str, int]) -> str:
  """The mesh axes along which the members of ``groups`` differ, e.g. ``"data"``, ``"data,model"``
  (``"-"``: none; ``"?"``: groups not read)."""
  import numpy as np
  if groups is None:
    return "?"
  coords = np.unravel_index(np.asarray([i for g in groups for i in g]), tuple(mesh_shape.values()))
  starts = np.cumsum([0] + [len(g) for g in groups])
  spans = [name for axis, name in enumerate(mesh_shape)
           if any(len(set(coords[axis][a:b])) > 1 for a, b in itertools.pairwise(starts))]
  return ",".join(spans) or "-"


def _add_collective(out: HloSummary, kind: str, size: float, times: float, attributes: str,
                    mesh_shape: Mapping[str, int] | None, slice_of: Sequence[int] | None,
                    cache: dict[str, tuple[str, bool]]) -> None:
  """Counts one collective: its kind, the mesh axes it spans and whether it crosses slices."""
  row = out.collectives.setdefault(kind, {"count": 0, "bytes": 0})
  entries = [row]
  if mesh_shape is not None:
    if attributes not in cache:
      groups = replica_groups(attributes, math.prod(mesh_shape.values()))
      crosses = groups is not None and slice_of is not None and any(
          len({slice_of[i] for i in g}) > 1 for g in groups)
      cache[attributes] = (_group_axes(groups, mesh_shape), crosses)
    axes, crosses = cache[attributes]
    entries.append(row.setdefault("over", {}).setdefault(axes, {"count": 0, "bytes": 0}))
    if slice_of is not None:
      for entry in list(entries):
        entry.setdefault("across_slices", {"count": 0, "bytes": 0})
        if crosses:
          entries.append(entry["across_slices"])
  for entry in entries:
    entry["count"] += times
    entry["bytes"] += size * times


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


def analyze_hlo(text: str, mesh_shape: Mapping[str, int] | None = None,
                slice_of: Sequence[int] | None = None) -> HloSummary:
  """Dot FLOPs and collectives (kind -> count, result bytes) of a compiled module's HLO text.

  A computation's executions are the sum over its call sites of the caller's executions, times the
  ``known_trip_count`` for a while body (1 when XLA does not know it; counted in
  ``unknown_trip_counts``). Computations are listed callees-first, so one reverse pass suffices.
  With the mesh (``{axis: size}``, its devices in partition-id order) each collective also counts
  under the axes its groups span; with ``slice_of`` (each partition id's slice), those across
  slices are counted too.
  """
  comps, entry = _computations(text)
  cache: dict[str, tuple[str, bool]] = {}
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
        _add_collective(out, base, size, times, rest, mesh_shape, slice_of, cache)
  return out


# --- one plan -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Candidate:
  """What one plan compiles: mesh, rule set, remat policy, microbatches."""

  mesh: str
  rules: str
  remat: str
  microbatches: int
  dcn: str | None = None  # Slices per mesh axis (DCN_MESH); ``mesh`` is then one slice's mesh.

  def label(self) -> str:
    dcn = f" dcn={self.dcn}" if self.dcn else ""
    return (f"{self.mesh}{dcn} rules={self.rules} remat={self.remat} "
            f"microbatches={self.microbatches}")


def num_slices(dcn: str | None) -> int:
  """The slices a plan simulates for ``dcn`` (DCN_MESH): the product of its sizes."""
  from flan_jax.parallel import partitioning
  if not dcn:
    return 1
  spec = partitioning.MeshSpec.parse(dcn)
  if -1 in (spec.data, spec.fsdp, spec.model):
    raise ValueError(f"a plan needs every size of DCN_MESH {dcn!r} (no -1), e.g. 'data=2' or "
                     "'data=1,model=2'")
  return spec.data * spec.fsdp * spec.model


# Vendor slice names (Cloud TPU docs): v2-v5p names count TensorCores, v5e/v6e count chips.
# Target -> (name, name units per JAX device, JAX devices per chip): a v3 device is one core (2
# per chip), a v4/v5p device one 2-core (megacore) chip, a v5e/v6e device one 1-core chip.
TPU_SLICE_NAMES = {"tpu_v3": ("v3", 1, 2), "tpu_v4": ("v4", 2, 1), "tpu_v5p": ("v5p", 2, 1),
                   "tpu_v5e": ("v5e", 1, 1), "tpu_v6e": ("v6e", 1, 1)}


def slice_name(target: str, devices: int, slices: int = 1) -> str:
  """The vendor's name for ``devices`` JAX devices of ``target`` in ``slices`` equal slices,
  e.g. ``tpu_v4``, 128 -> ``TPU v4-256 (128 chips)``; ``tpu_v3``, 128 -> ``TPU v3-128 (64
  chips, 128 cores)``."""
  per_slice = devices // slices
  if target not in TPU_SLICE_NAMES:
    return f"{devices} x {target}" + (f" ({slices} groups of {per_slice})" if slices > 1 else "")
  name, units, per_chip = TPU_SLICE_NAMES[target]
  chips = per_slice // per_chip
  cores = f", {per_slice} cores" if per_chip > 1 else ""
  each = " each" if slices > 1 else ""
  text = f"TPU {name}-{per_slice * units} ({chips} chips{cores}{each})"
  return f"{slices} x {text}" if slices > 1 else text


@functools.cache
def _model_of(model_gin: str) -> Any:
  """The DecoderConfig of a model gin (gin is reset: call after the plan's own gin is read)."""
  from flan_jax.models.gin_config import config_from_gin
  return config_from_gin([model_gin])


@dataclasses.dataclass(frozen=True)
class MeasuredRun:
  """A published training run: its wall time gives the MFU it reached."""

  label: str
  model_gin: str  # The model it trained (compared by parameter count and shape).
  target: str
  devices: int
  hours: float
  steps: int
  tokens_per_step: int
  seq_len: int

  def mfu(self, config: Any) -> float:
    """Model FLOPs per second over peak FLOP/s of the run (``config``: its model)."""
    from flan_jax.training import perf
    step_s = self.hours * 3600 / self.steps
    flops = config.train_flops_per_token(self.seq_len) * self.tokens_per_step
    return flops / (step_s * self.devices * perf.accelerator(self.target).peak_flops)

  def matches(self, config: Any) -> bool:
    """Whether ``config`` is this run's model (shape and parameter count)."""
    ref = _model_of(self.model_gin)
    shape = ("num_layers", "d_model", "d_ff", "num_heads", "head_dim", "vocab_size")
    return (all(getattr(config, k) == getattr(ref, k) for k in shape)
            and config.num_params() == ref.num_params())


# FLAN §2.3 (shared/reference flan.md §3): LaMDA-PT 137B instruction-tuned for 30k steps of
# 8,192 tokens (inputs 1024 + targets 256, packed) in "around 60 hours on a TPUv3 with 128 cores".
PAPER_RUN = MeasuredRun("FLAN: ~60 h for 30k steps of 8,192 tokens on TPU v3-128",
                        "gin/models/lamda_137b.gin", "tpu_v3", 128, 60.0, 30_000, 8_192, 1_280)


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


def _sliced_mesh(candidate: Candidate, devices: int) -> tuple[Any, list[int] | None]:
  """The mesh of ``candidate`` on this process's first ``devices`` devices (in ``num_slices``
  simulated slices of consecutive devices with a DCN mesh) and each partition id's slice."""
  import jax

  from flan_jax.parallel import partitioning
  slices = num_slices(candidate.dcn)
  chosen = jax.devices()[:devices]
  if slices == 1:
    return partitioning.create_mesh(candidate.mesh, chosen, candidate.dcn), None
  sliced = partitioning.simulate_slices(chosen, slices)
  slice_by_id = {d.id: d.slice_index for d in sliced}
  mesh = partitioning.create_mesh(candidate.mesh, sliced, candidate.dcn)
  return mesh, [slice_by_id[d.id] for d in mesh.devices.flat]


def step_time(model_flops: float, flops_per_device: float, devices: int, accel: Any,
              fraction: float, config: Any, tokens: int) -> dict[str, Any]:
  """Step time from an assumed fraction of peak (``assumed``) and, for the paper's model, at the
  MFU the paper's run measured (``paper_measured``; None for another model)."""
  peak = devices * accel.peak_flops
  step_s = flops_per_device / (fraction * accel.peak_flops)
  out: dict[str, Any] = {"assumed": {
      "label": f"assumed {100 * fraction:.0f}% of peak FLOP/s (an assumption, not a measurement)",
      "fraction_of_peak": fraction, "step_seconds": step_s,
      "mfu": model_flops / (peak * step_s), "tokens_per_second": tokens / step_s}}
  out["paper_measured"] = None
  if PAPER_RUN.matches(config):
    mfu = PAPER_RUN.mfu(config)
    where = "" if accel.name == PAPER_RUN.target else f", applied to {accel.name}"
    paper_s = model_flops / (peak * mfu)
    out["paper_measured"] = {
        "label": f"paper-measured ({PAPER_RUN.label}: MFU {100 * mfu:.1f}%{where})",
        "step_seconds": paper_s, "mfu": mfu, "tokens_per_second": tokens / paper_s}
  return out


def _gradient_reduction(collectives: Mapping[str, Any], param_shardings: Any) -> dict[str, Any]:
  """All-reduce and reduce-scatter over mesh axes that include a data axis (the gradients'
  reduction, with the loss's and metrics' scalars): kind -> count, bytes; and whether the
  parameters are sharded over a data axis (then a reduce-scatter suffices)."""
  import jax

  from flan_jax.parallel import partitioning
  specs = [s.spec for s in jax.tree.leaves(param_shardings)]
  names = {n for spec in specs for axes in spec
           for n in ((axes,) if isinstance(axes, str) else tuple(axes or ()))}
  out: dict[str, Any] = {"parameters_sharded_over_data": bool(names & set(
      partitioning.DATA_AXES))}
  for kind in ("all-reduce", "reduce-scatter"):
    rows = [row for axes, row in collectives.get(kind, {}).get("over", {}).items()
            if set(axes.split(",")) & set(partitioning.DATA_AXES)]
    out[kind] = {"count": sum(r["count"] for r in rows), "bytes": sum(r["bytes"] for r in rows)}
  return out


def plan(train_args: Mapping[str, Any], candidate: Candidate, devices: int, target: Any,
         fraction: float = 0.5, batch_size: int | None = None) -> dict[str, Any]:
  """Lowers and compiles ``train``'s step for ``candidate`` on ``devices`` devices of this process
  and returns the plan (bytes per device, FLOPs per step, collectives, fit, step time).

  ``target``: a name of :data:`flan_jax.perf.ACCELERATORS` or an ``Accelerator``."""
  import jax

  from flan_jax.training import perf
  accel = perf.accelerator(target) if isinstance(target, str) else target
  if jax.device_count() < devices:
    raise ValueError(f"this process has {jax.device_count()} devices, the plan needs {devices}")
  config = train_args["model_config"].replace(dropout_rate=train_args["dropout_rate"],
                                              remat_policy=candidate.remat)
  lengths = dict(train_args["task_feature_lengths"])
  batch = batch_size or train_args["batch_size"]
  mesh, slice_of = _sliced_mesh(candidate, devices)
  axis_sizes = dict(mesh.shape)
  state, parts, compiled, compile_s = _compile_step(train_args, candidate, config, mesh, batch,
                                                    lengths)
  memory = _bytes_per_device(state, parts.shardings, compiled.memory_analysis(), axis_sizes)
  hlo = analyze_hlo(compiled.as_text(), axis_sizes, slice_of)
  cost = compiled.cost_analysis()
  xla_flops = float((cost[0] if isinstance(cost, (list, tuple)) else cost).get("flops", 0.0))
  flops_per_device = xla_flops + hlo.dot_flops - hlo.dot_flops_once
  seq_len = sum(lengths.values())
  analytic = analytical_flops(config, batch * seq_len, seq_len)
  compiled_flops = flops_per_device * devices
  times = step_time(analytic["model"], flops_per_device, devices, accel, fraction, config,
                    batch * seq_len)
  return {
      "candidate": dataclasses.asdict(candidate), "mesh": axis_sizes, "devices": devices,
      "slices": num_slices(candidate.dcn),
      "slice_name": slice_name(accel.name, devices, num_slices(candidate.dcn)),
      "backend": f"cpu ({devices} simulated devices; XLA CPU compiler)",
      "batch_size": batch, "tokens_per_step": batch * seq_len,
      "parameters": config.num_params(), "compile_seconds": compile_s,
      "bytes_per_device": memory,
      "target": {"name": accel.name, "hbm_bytes": accel.hbm_bytes,
                 "peak_flops": accel.peak_flops, "note": accel.note},
      "fits": memory["peak"] <= accel.hbm_bytes, "headroom_bytes": accel.hbm_bytes - memory["peak"],
      "flops_per_step": {
          "compiled": compiled_flops, "xla_cost_analysis_per_device": xla_flops,
          "loop_trip_count_correction_per_device": hlo.dot_flops - hlo.dot_flops_once,
          "analytical_executed": analytic["executed"], "model": analytic["model"],
          "compiled_over_analytical": compiled_flops / analytic["executed"]},
      "collectives": hlo.collectives,
      "gradient_reduction": _gradient_reduction(hlo.collectives, parts.shardings.params),
      "unknown_trip_counts": hlo.unknown_trip_counts,
      "step_time": times,
  }


def _gib(n: float) -> str:
  """GiB with 2 decimals (3 significant digits below 0.1 GiB)."""
  return f"{n / GIB:8.2f}" if abs(n) >= 0.1 * GIB else f"{n / GIB:8.2g}"


def _format_collectives(p: Mapping[str, Any]) -> list[str]:
  """Collectives by kind and mesh axes (and across slices), then how gradients reduce."""
  sliced = p["slices"] > 1
  lines = ["collectives per step (per device)    over axes      count      GiB"
           + ("   across slices (DCN): count, GiB" if sliced else "")]
  for kind, row in sorted(p["collectives"].items()):
    for axes, part in sorted(row.get("over", {"?": row}).items()):
      dcn = part.get("across_slices", {"count": 0, "bytes": 0})
      lines.append(f"  {kind:30s} {axes:12s} {part['count']:8.0f} {part['bytes'] / GIB:8.3f}"
                   + (f"   {dcn['count']:8.0f} {dcn['bytes'] / GIB:8.3f}" if sliced else ""))
  if not p["collectives"]:
    lines.append("  (none)")
  g = p["gradient_reduction"]
  ar, rs = g["all-reduce"], g["reduce-scatter"]
  kind = ("all-reduce" if ar["bytes"] > rs["bytes"] else "reduce-scatter") if ar["count"] + rs[
      "count"] else "no collective (one data-parallel replica)"
  text = (f"gradients reduce over the data axes by {kind} on the compiled backend "
          f"({p['backend']}): all-reduce {ar['count']:.0f} ({ar['bytes'] / GIB:.3f} GiB), "
          f"reduce-scatter {rs['count']:.0f} ({rs['bytes'] / GIB:.3f} GiB), loss and metric "
          "scalars included"
          + (_ALL_REDUCE_NOTE[g["parameters_sharded_over_data"]] if kind == "all-reduce" else ""))
  return lines + textwrap.wrap(text, 100, subsequent_indent="  ")


_ALL_REDUCE_NOTE = {
    True: ". The parameters are sharded over data, so each device needs only its shard of the "
          "gradients: a reduce-scatter would do, with about half an all-reduce's traffic. XLA's "
          "GPU pipeline turns an all-reduce followed by a per-device dynamic-slice into one "
          "(ReduceScatterCreator); this CPU pipeline does not, so a GPU program may move fewer "
          "bytes than counted here (TPU: check its compiled HLO)",
    False: " (the parameters are replicated over data: every device needs the whole sum)"}


def _format_step_time(p: Mapping[str, Any]) -> list[str]:
  t = p["target"]
  lines = [f"step time on {p['slice_name']} at {t['peak_flops'] / 1e12:.1f} TFLOP/s peak per "
           "device (compute-bound, collectives overlapped), a range:"]
  for row in filter(None, (p["step_time"]["assumed"], p["step_time"]["paper_measured"])):
    lines.append(f"  {row['label']}: step {row['step_seconds']:.3g} s, "
                 f"{row['tokens_per_second']:.0f} tokens/s, MFU {100 * row['mfu']:.1f}%")
  if p["step_time"]["paper_measured"] is None:
    lines.append(f"  paper-measured: not applicable (the paper's run is {PAPER_RUN.model_gin}; "
                 "this is another model)")
  return lines


def format_plan(p: Mapping[str, Any]) -> str:
  """The console table of one plan."""
  b, t, f = p["bytes_per_device"], p["target"], p["flops_per_step"]
  c = p["candidate"]
  dcn = f" x DCN {c['dcn']} ({p['slices']} slices)" if c.get("dcn") else ""
  lines = [
      f"mesh {p['mesh']}{dcn} ({p['devices']} devices: {p['slice_name']}), rules {c['rules']}, "
      f"remat {c['remat']}, {c['microbatches']} microbatch(es), batch {p['batch_size']} "
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
  ]
  return "\n".join(lines + _format_collectives(p) + _format_step_time(p))


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
  dropped = ("--mesh", "--dcn_mesh", "--rules", "--remat", "--microbatches", "--output",
             "--max_candidates", "--max_seconds_per_candidate", "--max_search_seconds")
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
          f"--microbatches={candidate.microbatches}", f"--output={output}", "--quiet",
          *([f"--dcn_mesh={candidate.dcn}"] if candidate.dcn else [])]


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
    out = fs.join(workdir, f"candidate_{i}.json")
    try:
      proc = subprocess.run(_child_command(argv, cand, out), capture_output=True, text=True,
                            timeout=min(timeout_s, left))
      if fs.exists(out):
        results.append(json.loads(fs.read_text(out)))
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
              key=lambda r: r["step_time"]["assumed"]["step_seconds"])
  rest = [r for r in results if "error" in r or not r["fits"]]
  lines = ["rank  step s   MFU%  peak GiB  headroom  candidate"]
  for i, r in enumerate(ok):
    t = r["step_time"]["assumed"]
    lines.append(f"{i + 1:4d}  {t['step_seconds']:6.3f}  {100 * t['mfu']:5.1f}  "
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
  parser.add_argument("--mesh", default=None, help="e.g. data=8,model=16 (default: the gin's "
                      "MESH); with --dcn_mesh, the mesh inside one slice")
  parser.add_argument("--dcn_mesh", default=None,
                      help="slices per mesh axis, e.g. data=2 (default: the gin's DCN_MESH): "
                      "plans --devices as that many slices of consecutive devices")
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


def _run_search(args: argparse.Namespace, argv: Sequence[str], num_heads: int, batch: int,
                dcn: str | None) -> int:
  """``--search``: candidates for one slice's devices (each with ``dcn``), compiled and ranked."""
  import tempfile
  try:
    per_slice = args.devices // num_slices(dcn)
  except ValueError as e:
    sys.exit(f"flan-jax plan: error: {e}")
  cands = [dataclasses.replace(c, dcn=dcn)
           for c in candidates(per_slice, num_heads, batch)[:args.max_candidates]]
  print(f"searching {len(cands)} candidates for {args.devices} devices, target {args.target}",
        file=sys.stderr)
  with tempfile.TemporaryDirectory() as tmp:
    results = search(argv, cands, args.max_seconds_per_candidate, args.max_search_seconds, tmp)
  print(format_search(results))
  fs.write_text(args.output, json.dumps({"search": results}, indent=2))
  return 0 if any("error" not in r and r["fits"] for r in results) else 1


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
  partitioning_cfg = train_args["partitioning_cfg"]
  dcn = args.dcn_mesh or partitioning_cfg.dcn_mesh
  if args.search:
    return _run_search(args, argv, config.num_heads, batch, dcn)
  from flan_jax.training import perf
  target = perf.accelerator(args.target)
  if args.hbm_gib is not None:
    target = dataclasses.replace(target, hbm_bytes=int(args.hbm_gib * GIB),
                                 note=f"HBM overridden to {args.hbm_gib} GiB")
  cand = Candidate(args.mesh or partitioning_cfg.mesh, args.rules or partitioning_cfg.rules,
                   args.remat or config.remat_policy,
                   args.microbatches or train_args["optimizer_cfg"].num_microbatches, dcn)
  try:
    result = plan(train_args, cand, args.devices, target, args.fraction, batch)
  except ValueError as e:
    sys.exit(f"flan-jax plan: error: {e}")
  result["command"] = " ".join(["flan-jax plan", *argv])
  fs.write_text(args.output, json.dumps(result, indent=2))
  if not args.quiet:
    print(format_plan(result))
    print(f"wrote {args.output}")
  return 0 if result["fits"] else 1


def cli_main(argv: Sequence[str] | None = None) -> None:
  """``flan-jax plan``: exits with :func:`main`'s code."""
  sys.exit(main(argv))


if __name__ == "__main__":
  raise SystemExit(main())
