"""``flan-jax model-info``: parameter count and per-device memory of a model preset.

    python -m flan_jax.model_info --gin_file=gin/models/lamda_137b.gin --mesh=data=4,model=16

Everything is computed from ``jax.eval_shape`` and the partitioning rules: no parameter is
allocated and the mesh needs no real devices.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

import jax
import optax

from flan_jax.models import abstract_params
from flan_jax.models.gin_config import config_from_gin, rewrite_gin_args
from flan_jax.parallel import partitioning
from flan_jax.training import step as trainer


def measured_matmul_flops(dtype: str = "float32", n: int = 1024, reps: int = 3) -> float:
  """Attainable FLOP/s of the first device: the best of ``reps`` jitted ``dtype`` n³ matmuls
  (CPUs have no datasheet peak; MFU on CPU is measured against this)."""
  import time

  import jax.numpy as jnp
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    start = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n ** 3 / best


@dataclasses.dataclass(frozen=True)
class Accelerator:
  """One JAX device of an accelerator: HBM bytes, dense bf16 peak FLOP/s and the lower-case
  substrings of ``jax.Device.device_kind`` that name it."""

  name: str
  hbm_bytes: int
  peak_flops: float
  device_kinds: tuple[str, ...]
  note: str = ""


# The one table of accelerators (``flan-jax plan --target``, the trainer's MFU by device kind).
# Sources: Google Cloud TPU system-architecture pages (v3: 123 TFLOP/s and 32 GiB per 2-core chip,
# and JAX has one device per core; v4 275 / 32 GiB, v5e 197 / 16 GiB, v5p 459 / 95 GiB, v6e 918 /
# 32 GiB per chip, one device per chip), NVIDIA datasheets (dense bf16, i.e. half the "with
# sparsity" figure: A100 312, H100/H200 SXM 989.4, H100 PCIe 756; HBM 80 GB, 80 GB, 141 GB).
ACCELERATORS: dict[str, Accelerator] = {a.name: a for a in (
    Accelerator("tpu_v3", 16 * 2**30, 61.5e12, ("tpu v3",), "per core (2 per chip)"),
    Accelerator("tpu_v4", 32 * 2**30, 275e12, ("tpu v4",)),
    Accelerator("tpu_v5e", 16 * 2**30, 197e12, ("v5 lite", "v5e")),
    Accelerator("tpu_v5p", 95 * 2**30, 459e12, ("v5p", "tpu v5")),
    Accelerator("tpu_v6e", 32 * 2**30, 918e12, ("v6 lite", "v6e")),
    Accelerator("a100_80g", 80 * 10**9, 312e12, ("a100",)),
    Accelerator("h100_pcie", 80 * 10**9, 756e12, ("h100 pcie",)),
    Accelerator("h100", 80 * 10**9, 989e12, ("h100",)),
    Accelerator("h200", 141 * 10**9, 989e12, ("h200", "gh200")),
)}
# (device-kind substring, peak) pairs, first match wins (``h100 pcie`` before ``h100``, ``v5
# lite`` before ``tpu v5``).
PEAK_FLOPS_BY_DEVICE_KIND = tuple(
    (kind, a.peak_flops) for a in sorted(ACCELERATORS.values(), key=lambda a: a.name != "h100_pcie")
    for kind in a.device_kinds)


def accelerator(name: str) -> Accelerator:
  """The :data:`ACCELERATORS` entry ``name`` (e.g. ``tpu_v4``, ``h100``)."""
  if name not in ACCELERATORS:
    raise ValueError(f"unknown target {name!r}; use one of {', '.join(ACCELERATORS)}")
  return ACCELERATORS[name]


# The trainer's own optimizers with a schedule as ``train`` builds them (their state is what a
# run holds), plus plain SGD.
OPTIMIZERS = {
    "adafactor": lambda: trainer.make_optimizer("adafactor", trainer.make_schedule()),
    "adamw": lambda: trainer.make_optimizer("adamw", trainer.make_schedule()),
    "sgd": lambda: optax.sgd(1e-3),
}


def _gib(n: int) -> str:
  return f"{n} ({n / 2**30:.2f} GiB)"


def model_info(config, mesh: str = "data=1,model=1", optimizer: str = "adafactor",
               rules: str | None = None) -> dict:
  """Parameter count and per-device bytes of params and optimizer state on a mesh spec.

  ``rules``: a :data:`flan_jax.parallel.partitioning.RULE_SETS` name (default: ``fsdp`` on a mesh
  with an
  fsdp axis, else ``1d``)."""
  spec = partitioning.MeshSpec.parse(mesh)
  sizes = {k: (1 if v == -1 else v) for k, v in
           {"data": spec.data, **({"fsdp": spec.fsdp} if spec.fsdp != 1 else {}),
            "model": spec.model}.items()}
  rules = rules or ("fsdp" if "fsdp" in sizes else "1d")
  axis_rules = partitioning.logical_axis_rules(rules, tuple(sizes))
  shapes = abstract_params(config)
  specs = partitioning.param_mesh_specs(config, axis_rules, sizes)
  tx = OPTIMIZERS[optimizer]()
  opt_shapes = jax.eval_shape(tx.init, shapes)
  opt_specs = partitioning.optimizer_state_specs(tx, shapes, specs)
  count = sum(x.size for x in jax.tree.leaves(shapes))
  return {
      "parameters": count,
      "mesh": sizes,
      "rules": rules,
      "param_bytes_per_device": partitioning.bytes_per_device(shapes, specs, sizes),
      "optimizer_bytes_per_device": partitioning.bytes_per_device(opt_shapes, opt_specs, sizes),
      "specs": specs,
      "shapes": shapes,
  }


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="flan-jax model-info", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gin_file", action="append", default=[], required=True)
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--mesh", default="data=1,model=1",
                      help="mesh axis sizes, e.g. data=8,model=16 or fsdp=64,model=8")
  parser.add_argument("--rules", default=None, choices=sorted(partitioning.RULE_SETS),
                      help="partitioning rule set (default: fsdp with an fsdp axis, else 1d)")
  parser.add_argument("--optimizer", default="adafactor", choices=sorted(OPTIMIZERS))
  parser.add_argument("--verbose", action="store_true", help="print every parameter and its spec")
  args = parser.parse_args(rewrite_gin_args(sys.argv[1:] if argv is None else argv))
  config = config_from_gin(args.gin_file, args.gin_bindings)
  info = model_info(config, args.mesh, args.optimizer, args.rules)
  print(f"config: {config}")
  if args.verbose:
    flat = jax.tree_util.tree_flatten_with_path(info["shapes"])[0]
    specs = jax.tree.leaves(info["specs"],
                            is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    for (path, leaf), spec in zip(flat, specs, strict=True):
      print(f"  {jax.tree_util.keystr(path):60s} {str(leaf.shape):28s} {spec}")
  print(f"mesh: {info['mesh']} rules: {info['rules']}")
  print(f"parameter bytes per device: {_gib(info['param_bytes_per_device'])}")
  print(f"optimizer ({args.optimizer}) state bytes per device: "
        f"{_gib(info['optimizer_bytes_per_device'])}")
  print(f"parameters (billions): {info['parameters'] / 1e9:.3f}")
  print(f"parameters: {info['parameters']}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
