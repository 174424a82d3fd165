"""``flan-jax model-info``: parameter count and per-device memory of a model preset.

    python -m flan_jax.model_info --gin_file=gin/models/lamda_137b.gin --mesh=data=4,model=16

Everything is computed from ``jax.eval_shape`` and the partitioning rules: no parameter is
allocated and the mesh needs no real devices.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax
import optax

from flan_jax.models import abstract_params
from flan_jax.models.gin_config import config_from_gin, rewrite_gin_args
from flan_jax.parallel import partitioning
from flan_jax.training import optim

# The trainer's own optimizers with a schedule as ``train`` builds them (their state is what a
# run holds), plus plain SGD.
OPTIMIZERS = {
    "adafactor": lambda: optim.make_optimizer("adafactor", optim.make_schedule()),
    "adamw": lambda: optim.make_optimizer("adamw", optim.make_schedule()),
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
