"""Device meshes, t5x logical-axis rules, sharded train-state creation and a partitioned jit.

Model code names every parameter and main activation with logical axes (``batch, length, embed,
heads, kv_heads, kv, mlp, vocab, relpos_buckets, layers``). The rules below map those names to
mesh axes; ``data`` (batch), ``model`` (Megatron-style tensor parallelism) and, optionally,
``fsdp`` (ZeRO-3-style parameter sharding). A dimension whose size is not divisible by its mesh
axes is replicated instead (e.g. 2 KV heads on a 4-way model axis).

Typical use::

    mesh = create_mesh("data=2,model=4")
    rules = standard_logical_axis_rules()
    state, state_shardings = create_train_state(config, optax.adamw(1e-3), rng, mesh, rules)
    step = partition(train_step, mesh, rules, in_shardings=(state_shardings, data_sharding(mesh)),
                     out_shardings=(state_shardings, None), donate_argnums=(0,))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.models import Decoder, DecoderConfig
from flan_jax.parallel import console

LogicalRules = Sequence[tuple[str, Any]]


class TrainState(struct.PyTreeNode):
  """step, params and optimizer state; ``tx`` is static (not a pytree leaf)."""

  step: jax.Array
  params: Any
  opt_state: Any
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, params: Any, tx: optax.GradientTransformation) -> TrainState:
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), tx=tx)

  def apply_gradients(self, grads: Any) -> TrainState:
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state)


# --- meshes -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MeshSpec:
  """Mesh axis sizes; -1 takes all remaining devices. ``fsdp`` != 1 adds an ``fsdp`` axis."""

  data: int = -1
  model: int = 1
  fsdp: int = 1

  @classmethod
  def parse(cls, text: str) -> MeshSpec:
    """``"data=2,model=4"`` (or ``"fsdp=-1,model=2"``) -> MeshSpec."""
    fields = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
      key, value = part.split("=")
      if key.strip() not in ("data", "model", "fsdp"):
        raise ValueError(f"unknown mesh axis {key!r} in {text!r}; use data, model, fsdp")
      fields[key.strip()] = int(value)
    if "data" not in fields and fields.get("fsdp", 1) == -1:
      fields["data"] = 1
    return cls(**fields)

  def __str__(self) -> str:
    fsdp = f",fsdp={self.fsdp}" if self.fsdp != 1 else ""
    return f"data={self.data}{fsdp},model={self.model}"

  def axis_sizes(self, num_devices: int) -> dict[str, int]:
    """Ordered {axis: size} (data, [fsdp,] model) with -1 resolved for ``num_devices``."""
    sizes = {"data": self.data}
    if self.fsdp != 1:
      sizes["fsdp"] = self.fsdp
    sizes["model"] = self.model
    known = math.prod(v for v in sizes.values() if v != -1)
    free = [k for k, v in sizes.items() if v == -1]
    if len(free) > 1:
      raise ValueError(f"at most one mesh axis may be -1: {self}")
    if free:
      if num_devices % known:
        raise ValueError(f"{num_devices} devices not divisible by {known} ({self})")
      sizes[free[0]] = num_devices // known
    if math.prod(sizes.values()) != num_devices:
      raise ValueError(f"mesh {sizes} does not use exactly {num_devices} devices")
    return sizes


DATA_AXES = ("data", "fsdp")  # The mesh axes the batch dimension is split over.
MESH_AXES = ("data", "fsdp", "model")  # Outermost (slowest network) first.


@dataclasses.dataclass(frozen=True)
class SliceDevice:
  """``device`` taken as a device of slice ``slice_index`` (see :func:`simulate_slices`)."""

  device: Any
  slice_index: int

  def __getattr__(self, name: str) -> Any:  # Only for what the dataclass does not define.
    if name == "device":  # Not set yet (copy, pickle): no recursion.
      raise AttributeError(name)
    return getattr(self.device, name)


def simulate_slices(devices: Sequence[Any], num_slices: int) -> list[SliceDevice]:
  """``devices`` as ``num_slices`` slices of consecutive devices: plans multi-slice meshes on
  simulated CPU devices (:func:`create_mesh` unwraps them)."""
  if num_slices < 1 or len(devices) % num_slices:
    raise ValueError(f"{len(devices)} devices do not split into {num_slices} equal slices")
  per_slice = len(devices) // num_slices
  return [SliceDevice(d, i // per_slice) for i, d in enumerate(devices)]


def _spec(spec: MeshSpec | str) -> MeshSpec:
  return MeshSpec.parse(spec) if isinstance(spec, str) else spec


def create_mesh(spec: MeshSpec | str = MeshSpec(), devices: Sequence[Any] | None = None,
                dcn: MeshSpec | str | None = None) -> Mesh:
  """A mesh over all (global, multi-host) devices; ``model`` is the innermost (fastest) axis.

  ``spec`` is the mesh inside one slice (ICI), ``dcn`` the slices per axis (DCN; gin
  ``DCN_MESH``, e.g. ``'data=2'``): each axis is ICI x DCN devices long (see :func:`device_layout`).
  """
  sizes, array = device_layout(spec, devices, dcn)
  unwrap = np.vectorize(lambda d: d.device if isinstance(d, SliceDevice) else d, otypes=[object])
  axis_types = (jax.sharding.AxisType.Auto,) * len(sizes)
  return Mesh(unwrap(array), tuple(sizes), axis_types=axis_types)


def device_layout(spec: MeshSpec | str = MeshSpec(), devices: Sequence[Any] | None = None,
                  dcn: MeshSpec | str | None = None) -> tuple[dict[str, int], np.ndarray]:
  """({axis: size}, the device array) of :func:`create_mesh`; never falls back.

  Slices are the devices' ``slice_index`` values (TPU, or devices of several slice indices);
  other devices (GPU, CPU) are grouped by host (``process_index``). With ``dcn``,
  ``mesh_utils.create_hybrid_device_mesh`` lays ``spec`` out inside each slice and the slices
  along ``dcn``.
  Devices of several slices without ``dcn`` put ``data`` across the slices when ``spec`` fits one
  slice (and say so), else fail. One slice: ``create_device_mesh`` (TPU coordinates, GPU ids);
  CPU devices have no physical topology and are taken in order. A layout that the topology
  cannot take fails, naming the mesh, the devices and what to set.
  """
  spec = _spec(spec)
  devices = list(jax.devices() if devices is None else devices)
  slice_ids = {getattr(d, "slice_index", None) for d in devices}
  by_slice = devices[0].platform == "tpu" or (None not in slice_ids and len(slice_ids) > 1)
  granule = "slice_index" if by_slice else "process_index"
  slices = len({getattr(d, granule) for d in devices})
  if dcn is None and by_slice and slices > 1:
    dcn = _data_across_slices(spec, len(devices), slices)
  if dcn is None:
    sizes = spec.axis_sizes(len(devices))
    shape = tuple(sizes.values())
    if devices[0].platform == "cpu":  # No coordinates to lay out: the devices in their order.
      return sizes, np.asarray(devices, dtype=object).reshape(shape)
    try:
      return sizes, mesh_utils.create_device_mesh(shape, devices)
    except (ValueError, NotImplementedError, AssertionError) as e:
      raise ValueError(_layout_error(f"mesh {spec}", devices, e)) from None
  return _hybrid_layout(spec, _spec(dcn), devices, granule, slices)


def _data_across_slices(spec: MeshSpec, num_devices: int, slices: int) -> MeshSpec:
  """DCN ``data=slices`` when ``spec`` fits one slice (announced), else a ValueError."""
  per_slice = num_devices // slices
  try:
    spec.axis_sizes(per_slice)
  except ValueError:
    raise ValueError(
        f"the {num_devices} devices span {slices} slices, and MESH {spec} is not a mesh of one "
        f"slice's {per_slice} devices: MESH is the mesh inside a slice and DCN_MESH the slices "
        f"per axis (training.PartitioningConfig.dcn_mesh); set e.g. DCN_MESH = 'data={slices}' "
        f"with MESH = 'data=-1,model={spec.model}'") from None
  console.announce(f"the devices span {slices} slices and no DCN_MESH is set: data across the "
                   f"slices (DCN_MESH = 'data={slices}'), MESH {spec} inside each slice")
  return MeshSpec(data=slices)


def _hybrid_layout(spec: MeshSpec, dcn: MeshSpec, devices: list[Any], granule: str,
                   slices: int) -> tuple[dict[str, int], np.ndarray]:
  """The ICI x DCN layout of :func:`device_layout` (``granule``: how devices group)."""
  unit = "slice" if granule == "slice_index" else "host"
  try:
    dcn_sizes = dcn.axis_sizes(slices)
  except ValueError:
    kind = "slices" if unit == "slice" else "hosts (processes; these devices carry no slice_index)"
    raise ValueError(f"DCN_MESH {dcn} must use exactly the {len(devices)} devices' {slices} "
                     f"{kind}, e.g. DCN_MESH = 'data={slices}'") from None
  try:
    ici_sizes = spec.axis_sizes(len(devices) // slices)
  except ValueError as e:
    raise ValueError(f"MESH {spec} is the mesh inside one {unit} of {len(devices) // slices} "
                     f"devices (DCN_MESH {dcn} spans the {slices}): {e}") from None
  names = [a for a in MESH_AXES if a in ici_sizes or a in dcn_sizes]
  ici_shape = [ici_sizes.get(a, 1) for a in names]
  dcn_shape = [dcn_sizes.get(a, 1) for a in names]
  try:
    array = mesh_utils.create_hybrid_device_mesh(
        ici_shape, dcn_shape, devices, process_is_granule=granule == "process_index")
  except (ValueError, NotImplementedError, AssertionError) as e:
    raise ValueError(_layout_error(f"mesh {spec} per {unit} x DCN_MESH {dcn}", devices,
                                   e)) from None
  return {a: i * d for a, i, d in zip(names, ici_shape, dcn_shape, strict=True)}, array


def _topology(devices: Sequence[Any]) -> str:
  """E.g. '128 TPU v4 devices in 2 slices, chips 4x4x4 per slice'."""
  kind = devices[0].device_kind
  text = f"{len(devices)} {kind} devices"
  slice_ids = sorted({getattr(d, "slice_index", 0) for d in devices})
  if len(slice_ids) > 1:
    text += f" in {len(slice_ids)} slices"
  first = [d for d in devices if getattr(d, "slice_index", 0) == slice_ids[0]]
  coords = [tuple(d.coords) for d in first if getattr(d, "coords", None) is not None]
  if coords:
    dims = [max(c) - min(c) + 1 for c in zip(*coords, strict=True)]
    cores = len({getattr(d, "core_on_chip", 0) for d in first})
    text += (f", chips {'x'.join(map(str, dims))}" + (" per slice" if len(slice_ids) > 1 else "")
             + (f", {cores} cores per chip" if cores > 1 else ""))
  return text


def _layout_error(what: str, devices: Sequence[Any], error: Exception) -> str:
  """What could not be laid out on which devices, why, and meshes that do fit one slice."""
  slice_ids = sorted({getattr(d, "slice_index", 0) for d in devices})
  first = [d for d in devices if getattr(d, "slice_index", 0) == slice_ids[0]]
  fits = []
  for model in (m for m in range(1, len(first) + 1) if len(first) % m == 0):
    try:
      mesh_utils.create_device_mesh((len(first) // model, model), first)
      fits.append(f"'data={len(first) // model},model={model}'")
    except (ValueError, NotImplementedError, AssertionError):
      continue
  hint = (f"meshes that one slice of {len(first)} devices takes: {', '.join(fits)}" if fits else
          f"no data x model mesh lays out on one slice of {len(first)} devices")
  multi = (f"; the devices span {len(slice_ids)} slices: set MESH to one slice's mesh and "
           f"DCN_MESH to the slices per axis (e.g. DCN_MESH = 'data={len(slice_ids)}')"
           if len(slice_ids) > 1 else "")
  return (f"cannot lay out {what} on {_topology(devices)}: {error}. Set MESH "
          f"(training.PartitioningConfig.mesh) to a mesh the topology takes; {hint}{multi}")


# --- logical axis rules -----------------------------------------------------------------------


def standard_logical_axis_rules(activation_partitioning_dims: int = 1,
                                parameter_partitioning_dims: int = 1, fsdp: bool = False,
                                additional_rules: LogicalRules | None = None) -> list:
  """t5x's rules: 1/1 is Megatron-style (heads, mlp, vocab over ``model``).

  ``activation_partitioning_dims=2`` also shards activations' ``embed`` over ``model``;
  ``parameter_partitioning_dims=2`` also shards parameters' ``embed`` over ``data`` (ZeRO-3-like).
  ``fsdp=True`` is for meshes with an ``fsdp`` axis: batch over (data, fsdp), ``embed`` of
  parameters over ``fsdp``. Rules are priority-ordered; a mesh axis is used once per array.
  """
  if activation_partitioning_dims not in (1, 2) or parameter_partitioning_dims not in (1, 2):
    raise ValueError("partitioning dims must be 1 or 2")
  batch = DATA_AXES if fsdp else "data"
  rules: list = [("batch", batch), ("vocab", "model"), ("mlp", "model"), ("heads", "model"),
                 ("kv_heads", "model"), ("joined_kv", "model")]
  if activation_partitioning_dims == 2:
    rules.append(("embed", "model"))
  if parameter_partitioning_dims == 2:
    rules.append(("embed", "data"))
  if fsdp:
    rules.append(("embed", "fsdp"))
  rules += [("embed", None), ("kv", None), ("relpos_buckets", None), ("length", None),
            ("layers", None), ("stack", None), ("mlp_activations", None)]
  return list(additional_rules or []) + rules


# Rule sets selectable by name (gin: ``PARTITIONING_RULES``, i.e.
# ``training.PartitioningConfig.rules``; the eval's ``partitioning_rules``, ``flan-jax plan
# --rules``): keyword arguments of
# :func:`standard_logical_axis_rules`.
RULE_SETS: dict[str, dict[str, Any]] = {
    "1d": {},  # Megatron: heads, mlp, vocab over `model`; parameters replicated over `data`.
    "2d_params": {"parameter_partitioning_dims": 2},  # + parameters' embed over `data`.
    "2d": {"activation_partitioning_dims": 2, "parameter_partitioning_dims": 2},  # full 2-D.
    "2d_activations": {"activation_partitioning_dims": 2},  # + activations' embed over `model`.
    "fsdp": {"fsdp": True},  # Batch over (data, fsdp); parameters' embed over `fsdp`.
}


def logical_axis_rules(name: str = "1d", mesh_axis_names: Sequence[str] | None = None) -> list:
  """The rule set ``name`` (see :data:`RULE_SETS`), checked against the mesh's axis names."""
  if name not in RULE_SETS:
    raise ValueError(f"unknown partitioning rules {name!r}; use one of {sorted(RULE_SETS)}")
  if (name == "fsdp" and mesh_axis_names is not None
      and "fsdp" not in tuple(mesh_axis_names)):
    raise ValueError("partitioning rules 'fsdp' shard parameters over an fsdp mesh axis, but the "
                     f"mesh has {tuple(mesh_axis_names)}; add one (e.g. mesh 'fsdp=-1,model=1')")
  return standard_logical_axis_rules(**RULE_SETS[name])


def mesh_axes(logical: PartitionSpec, shape: Sequence[int], rules: LogicalRules,
              axis_sizes: Mapping[str, int]) -> PartitionSpec:
  """Logical PartitionSpec -> mesh PartitionSpec for one array (replicating undivisible dims)."""
  resolved = nn.logical_to_mesh_axes(tuple(logical), rules)
  out = []
  padded = tuple(resolved) + (None,) * (len(shape) - len(resolved))
  for dim, axes in zip(shape, padded, strict=True):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    names = tuple(n for n in names if n in axis_sizes)
    size = math.prod(axis_sizes[n] for n in names)
    if not names or dim % size:
      out.append(None)
    else:
      out.append(names[0] if len(names) == 1 else names)
  return PartitionSpec(*out)


def logical_param_specs(config: DecoderConfig) -> Any:
  """Tree of logical PartitionSpecs, one per parameter (from ``jax.eval_shape``)."""
  tokens = jax.ShapeDtypeStruct((1, 8), jnp.int32)
  boxed = jax.eval_shape(lambda t: Decoder(config).init(jax.random.key(0), t), tokens)["params"]
  return nn.get_partition_spec(boxed)


def _is_spec(x: Any) -> bool:
  return isinstance(x, PartitionSpec)


def param_mesh_specs(config: DecoderConfig, rules: LogicalRules,
                     axis_sizes: Mapping[str, int]) -> Any:
  """Tree of mesh PartitionSpecs for the parameters (no devices needed)."""
  from flan_jax.models import abstract_params
  shapes = abstract_params(config)
  logical = logical_param_specs(config)
  return jax.tree.map(lambda spec, s: mesh_axes(spec, s.shape, rules, axis_sizes), logical, shapes,
                      is_leaf=_is_spec)


def _axis_sizes(mesh: Mesh) -> dict[str, int]:
  return dict(zip(mesh.axis_names, mesh.devices.shape, strict=True))


def param_shardings(config: DecoderConfig, mesh: Mesh, rules: LogicalRules) -> Any:
  specs = param_mesh_specs(config, rules, _axis_sizes(mesh))
  return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=_is_spec)


def optimizer_state_specs(tx: optax.GradientTransformation, abstract_params: Any,
                          param_specs: Any) -> Any:
  """Optimizer-state PartitionSpecs: a leaf shaped like a parameter inherits its spec.

  Matching is by shape (not by tree position), so it also covers states that do not mirror the
  parameter tree (e.g. :func:`flan_jax.training.step.layers_as_batch`'s per-leaf states).
  Parameters of
  one shape that disagree on their spec leave that shape replicated; everything else (factored
  Adafactor statistics, counters) is replicated.
  """
  abstract_state = jax.eval_shape(tx.init, abstract_params)
  by_shape: dict[tuple[int, ...], PartitionSpec | None] = {}
  for p, spec in zip(jax.tree.leaves(abstract_params), jax.tree.leaves(param_specs,
                                                                       is_leaf=_is_spec),
                     strict=True):
    shape = tuple(p.shape)
    by_shape[shape] = spec if by_shape.get(shape, spec) == spec else None
  return jax.tree.map(lambda leaf: by_shape.get(tuple(leaf.shape)) or PartitionSpec(),
                      abstract_state)


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Batch dimension over data (and fsdp) axes."""
  batch_axes = tuple(a for a in DATA_AXES if a in mesh.axis_names)
  return NamedSharding(mesh, PartitionSpec(batch_axes))


def host_local_to_global(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This host's slice of the global batch -> global arrays sharded over the batch axes."""
  sharding = data_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def replicas(axis_sizes: Mapping[str, int]) -> int:
  """Data-parallel replicas of a mesh given as ``{axis: size}`` (the product of DATA_AXES)."""
  return int(np.prod([int(n) for a, n in axis_sizes.items() if a in DATA_AXES]))


def data_parallel_size(mesh: Mesh) -> int:
  """Devices the batch dimension is split over (the data and fsdp axes)."""
  return replicas(mesh.shape)


def params_mesh(params: Any) -> Mesh | None:
  """The multi-device mesh ``params`` are placed on (``jax.device_put`` with
  :func:`param_shardings`), else None (single-device or host arrays)."""
  for leaf in jax.tree.leaves(params):
    sharding = getattr(leaf, "sharding", None)
    if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
      return sharding.mesh
  return None


def place_batch_like(params: Any, batch: Mapping[str, np.ndarray]
                     ) -> tuple[dict[str, jax.Array], int]:
  """(batch on the devices of ``params``, its real row count), single process.

  Params on a multi-device mesh: rows are padded with copies of row 0 to a multiple of the
  data-parallel size and sharded over the batch axes (the jitted step then runs data-parallel);
  otherwise the arrays go to the default device unchanged.
  """
  rows = len(next(iter(batch.values())))
  mesh = params_mesh(params)
  if mesh is None:
    return {k: jnp.asarray(v) for k, v in batch.items()}, rows
  if jax.process_count() > 1:
    raise ValueError("place_batch_like is single-process; multi-host inference runs through "
                     "flan_jax.eval.Inference (per-host batch slices)")
  short = -rows % data_parallel_size(mesh)
  padded = {k: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[:1], short, 0)])
            for k, v in batch.items()}
  return host_local_to_global(padded, mesh), rows


# --- partitioned functions and train state ----------------------------------------------------


def partition(fn: Callable, mesh: Mesh, rules: LogicalRules, in_shardings: Any = None,
              out_shardings: Any = None, static_argnums: Sequence[int] = (),
              donate_argnums: Sequence[int] = ()) -> Callable:
  """``jax.jit`` with shardings and donation, traced and run inside the mesh and axis rules."""
  kwargs = {}
  if in_shardings is not None:
    kwargs["in_shardings"] = in_shardings
  if out_shardings is not None:
    kwargs["out_shardings"] = out_shardings
  jitted = jax.jit(fn, static_argnums=static_argnums, donate_argnums=donate_argnums, **kwargs)

  def wrapped(*args, **kw):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(*args, **kw)

  def lower(*args, **kw):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted.lower(*args, **kw)

  wrapped.lower = lower
  wrapped.jitted = jitted
  return wrapped


def create_params(config: DecoderConfig, rng: jax.Array, mesh: Mesh, rules: LogicalRules) -> Any:
  """Initializes parameters directly into their shards (never whole on one device)."""
  shardings = param_shardings(config, mesh, rules)

  def init(key):
    tokens = jnp.ones((1, 8), jnp.int32)
    return nn.meta.unbox(Decoder(config).init(key, tokens)["params"])

  return partition(init, mesh, rules, out_shardings=shardings)(rng)


def train_state_shardings(config: DecoderConfig, tx: optax.GradientTransformation,
                          mesh: Mesh, rules: LogicalRules) -> TrainState:
  """NamedShardings for a ``TrainState`` (step replicated, opt state follows the params)."""
  from flan_jax.models import abstract_params
  shapes = abstract_params(config)
  p_specs = param_mesh_specs(config, rules, _axis_sizes(mesh))
  o_specs = optimizer_state_specs(tx, shapes, p_specs)
  to_sharding = lambda s: NamedSharding(mesh, s)  # noqa: E731
  abstract = jax.eval_shape(lambda p: TrainState.create(p, tx), shapes)
  return abstract.replace(
      step=to_sharding(PartitionSpec()),
      params=jax.tree.map(to_sharding, p_specs, is_leaf=_is_spec),
      opt_state=jax.tree.map(to_sharding, o_specs, is_leaf=_is_spec))


def create_train_state(config: DecoderConfig, tx: optax.GradientTransformation, rng: jax.Array,
                       mesh: Mesh, rules: LogicalRules,
                       params: Any | None = None) -> tuple[TrainState, TrainState]:
  """A sharded ``TrainState`` built inside jit with output shardings, and those shardings.

  With ``params`` (e.g. restored), only the optimizer state is created; params are resharded.
  """
  shardings = train_state_shardings(config, tx, mesh, rules)

  if params is None:
    def init(key):
      tokens = jnp.ones((1, 8), jnp.int32)
      p = nn.meta.unbox(Decoder(config).init(key, tokens)["params"])
      return TrainState.create(p, tx)
    state = partition(init, mesh, rules, out_shardings=shardings)(rng)
  else:
    params = jax.device_put(params, shardings.params)
    build = lambda p: TrainState.create(p, tx)  # noqa: E731
    state = partition(build, mesh, rules, in_shardings=(shardings.params,),
                      out_shardings=shardings)(params)
  return state, shardings


def bytes_per_device(abstract_tree: Any, specs: Any, axis_sizes: Mapping[str, int]) -> int:
  """Bytes one device holds for a tree of ShapeDtypeStructs sharded by mesh ``specs``."""
  total = 0
  for leaf, spec in zip(jax.tree.leaves(abstract_tree),
                        jax.tree.leaves(specs, is_leaf=_is_spec), strict=True):
    shards = 1
    for axes in spec:
      for name in ((axes,) if isinstance(axes, str) else tuple(axes or ())):
        shards *= axis_sizes[name]
    total += math.prod(leaf.shape) * jnp.dtype(leaf.dtype).itemsize // shards
  return total
