"""Partitioning on 8 simulated CPU devices: a 2x4 mesh matches 1 device; specs follow the rules."""

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import mesh_utils
from jax.sharding import PartitionSpec as P

from flan_jax.models import Decoder, DecoderConfig
from flan_jax.parallel import partitioning

CFG = DecoderConfig(vocab_size=128, num_layers=2, d_model=32, num_heads=4, num_kv_heads=2,
                    head_dim=8, d_ff=64, dtype="float32", tie_embeddings=False)


def _loss(params, batch):
  logits = Decoder(CFG).apply({"params": params}, batch["decoder_input_tokens"],
                              decoder_target_tokens=batch["decoder_target_tokens"])
  logp = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(logp, batch["decoder_target_tokens"][..., None], axis=-1)[..., 0]
  weights = (batch["decoder_target_tokens"] > 0).astype(jnp.float32)
  return jnp.sum(nll * weights) / jnp.sum(weights)


def _batch():
  tokens = np.asarray(jax.random.randint(jax.random.key(1), (4, 16), 1, 128), np.int32)
  return {"decoder_input_tokens": tokens, "decoder_target_tokens": np.roll(tokens, -1, axis=1)}


def test_mesh_spec_parse():
  assert partitioning.MeshSpec.parse("data=2,model=4").axis_sizes(8) == {"data": 2, "model": 4}
  sizes = partitioning.MeshSpec.parse("fsdp=-1,model=2").axis_sizes(8)
  assert sizes == {"data": 1, "fsdp": 4, "model": 2}
  with pytest.raises(ValueError):
    partitioning.MeshSpec.parse("data=3,model=4").axis_sizes(8)


def test_2x4_mesh_matches_single_device():
  assert jax.device_count() == 8
  mesh = partitioning.create_mesh("data=2,model=4")
  rules = partitioning.standard_logical_axis_rules()
  state, shardings = partitioning.create_train_state(CFG, optax.sgd(0.1), jax.random.key(0), mesh,
                                                     rules)
  # Parameters are sharded as the rules say (heads, mlp, vocab over `model`; 2 KV heads cannot
  # split 4 ways, so they are replicated).
  layer = state.params["layers"]
  assert layer["attention"]["query"].sharding.spec == P(None, None, "model", None)
  assert layer["attention"]["out"].sharding.spec == P(None, "model", None, None)
  assert layer["attention"]["key"].sharding.spec == P(None, None, None, None)
  assert layer["mlp"]["wi_0"].sharding.spec == P(None, None, "model")
  assert layer["mlp"]["wo"].sharding.spec == P(None, "model", None)
  assert state.params["token_embedder"]["embedding"].sharding.spec == P("model", None)
  assert state.params["logits_kernel"].sharding.spec == P(None, "model")
  shard_shape = layer["mlp"]["wi_0"].addressable_shards[0].data.shape
  assert shard_shape == (2, 32, 16)

  batch = partitioning.host_local_to_global(_batch(), mesh)
  grad_fn = partitioning.partition(
      jax.value_and_grad(_loss), mesh, rules,
      in_shardings=(shardings.params, partitioning.data_sharding(mesh)))
  loss, grads = grad_fn(state.params, batch)

  single = jax.tree.map(lambda x: jax.device_put(np.asarray(x), jax.devices()[0]), state.params)
  ref_loss, ref_grads = jax.jit(jax.value_and_grad(_loss))(single, _batch())
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), grads,
               ref_grads)

  # A donated, partitioned train step keeps the shardings.
  def train_step(st, b):
    return st.apply_gradients(jax.grad(_loss)(st.params, b))

  step = partitioning.partition(train_step, mesh, rules,
                                in_shardings=(shardings, partitioning.data_sharding(mesh)),
                                out_shardings=shardings, donate_argnums=(0,))
  new_state = step(state, batch)
  assert int(new_state.step) == 1
  assert new_state.params["layers"]["mlp"]["wi_0"].sharding.spec == P(None, None, "model")


def test_2d_and_fsdp_rules():
  sizes = {"data": 2, "fsdp": 2, "model": 2}
  fsdp_rules = partitioning.standard_logical_axis_rules(fsdp=True)
  specs = partitioning.param_mesh_specs(CFG, fsdp_rules, sizes)
  assert specs["layers"]["mlp"]["wi_0"] == P(None, "fsdp", "model")
  two_d = partitioning.standard_logical_axis_rules(parameter_partitioning_dims=2)
  specs = partitioning.param_mesh_specs(CFG, two_d, {"data": 2, "model": 4})
  assert specs["layers"]["attention"]["query"] == P(None, "data", "model", None)
  # Activations keep batch on data even though params use data for embed.
  assert partitioning.mesh_axes(P("batch", "length", "embed"), (4, 8, 32), two_d,
                                {"data": 2, "model": 4}) == P("data", None, None)


def _packed_batch(seed: int, b: int = 8, length: int = 32) -> dict[str, np.ndarray]:
  """A prefix-LM batch with two packed segments per row and padding at the end."""
  rng = np.random.default_rng(seed)
  targets = rng.integers(1, 512, (b, length)).astype(np.int32)
  seg = np.zeros((b, length), np.int32)
  seg[:, : length // 2], seg[:, length // 2: length - 4] = 1, 2
  targets[seg == 0] = 0
  causal = np.zeros_like(seg)
  causal[:, :5] = 1
  return {"decoder_input_tokens": np.roll(targets, 1, axis=1) * (seg > 0),
          "decoder_target_tokens": targets, "decoder_segment_ids": seg,
          "decoder_loss_weights": ((seg > 0) & (causal == 0)).astype(np.int32),
          "decoder_positions": np.where(seg == 1, np.arange(length), np.arange(length)
                                        - length // 2).astype(np.int32) * (seg > 0),
          "decoder_causal_attention": causal}


@pytest.mark.slow  # ~80 s; test_2x4_mesh_matches_single_device covers the mesh in make test
def test_rule_sets_train_tiny_preset_like_one_device():
  """``train``'s own step (Adafactor, z-loss, dropout) on the tiny preset: every selectable rule
  set on 8 devices gives the 1-device losses (1e-5) and parameters."""
  from flan_jax import train
  from flan_jax.models.gin_config import config_from_gin
  cfg = config_from_gin(["gin/models/tiny.gin"]).replace(dropout_rate=0.1)
  meshes = {"1d": "data=2,model=4", "2d_params": "data=2,model=4", "2d": "data=2,model=4",
            "fsdp": "data=2,fsdp=2,model=2"}
  runs = {}
  for name, spec in [("single", "data=1,model=1"), *meshes.items()]:
    devices = jax.devices()[:1] if name == "single" else jax.devices()
    mesh = partitioning.create_mesh(spec, devices)
    rules = partitioning.logical_axis_rules("1d" if name == "single" else name, mesh.axis_names)
    parts = train.build_train_step(cfg, mesh, rules, train_steps=3, learning_rate=1e-2)
    state, _ = partitioning.create_train_state(cfg, parts.tx, jax.random.key(0), mesh, rules)
    if name == "fsdp":  # Parameters really are sharded over the fsdp axis.
      assert "fsdp" in str(state.params["layers"]["mlp"]["wi_0"].sharding.spec)
    if name in ("2d_params", "2d"):
      assert "data" in str(state.params["layers"]["mlp"]["wi_0"].sharding.spec)
    losses = []
    for i in range(3):
      batch = partitioning.host_local_to_global(_packed_batch(i), mesh)
      state, metrics = parts.step_fn(state, batch, jax.random.key(7))
      losses.append(float(metrics["loss"]))
    runs[name] = (losses, jax.device_get(state.params))
  assert runs["single"][0][-1] < runs["single"][0][0]
  for name in meshes:
    np.testing.assert_allclose(runs[name][0], runs["single"][0], atol=1e-5, rtol=1e-5,
                               err_msg=name)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4),
                 runs[name][1], runs["single"][1])


def test_rule_set_names_and_fsdp_needs_its_axis():
  assert partitioning.logical_axis_rules("2d") == partitioning.standard_logical_axis_rules(2, 2)
  with pytest.raises(ValueError, match="unknown partitioning rules '3d'"):
    partitioning.logical_axis_rules("3d")
  with pytest.raises(ValueError, match="add one"):
    partitioning.logical_axis_rules("fsdp", ("data", "model"))


@pytest.mark.parametrize("rules,batch,message", [
    ("2d", 6, r"BATCH_SIZE 6 .*data=8 \(8 replicas\).*BATCH_SIZE = 8"),
    ("fsdp", 8, "partitioning rules 'fsdp' shard parameters over an fsdp mesh axis"),
])
def test_train_checks_rules_and_batch_before_compiling(tmp_path, rules, batch, message):
  from flan_jax import train
  from flan_jax.models.gin_config import config_from_gin
  from flan_jax.training.config import PartitioningConfig
  with pytest.raises(ValueError, match=message):
    train.train(model_dir=str(tmp_path), model_config=config_from_gin(["gin/models/tiny.gin"]),
                mixture_or_task_name="demo_heldout_nli_train",
                task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=1,
                batch_size=batch, partitioning_cfg=PartitioningConfig("data=8", rules),
                progress=False)


# --- multi-slice meshes: device layouts on fake TPU devices (as jax's mesh_utils tests) ------


@dataclasses.dataclass(frozen=True)
class FakeTpu:
  """What ``mesh_utils`` reads of a TPU device."""

  id: int
  coords: tuple[int, int, int]
  slice_index: int
  device_kind: str
  core_on_chip: int = 0
  process_index: int = 0
  platform: str = "tpu"


def _tpu_slices(kind: str, dims: tuple[int, int, int], num_slices: int) -> list[FakeTpu]:
  """``num_slices`` slices of ``dims`` chips (one device per chip), each from coordinate 0."""
  per_slice = math.prod(dims)
  return [FakeTpu(s * per_slice + i, (x, y, z), s, kind)
          for s in range(num_slices)
          for i, (z, y, x) in enumerate(itertools.product(*map(range, reversed(dims))))]


def test_two_slices_put_data_across_slices_and_model_inside_one(capsys):
  devices = _tpu_slices("TPU v5p", (2, 2, 4), 2)  # 2 x v5p-32 (16 chips each).
  with pytest.raises((AssertionError, ValueError, NotImplementedError)):
    mesh_utils.create_device_mesh((4, 8), devices)  # One slice's layout: the coordinates clash.
  sizes, array = partitioning.device_layout("data=2,model=8", devices, dcn="data=2")
  assert sizes == {"data": 4, "model": 8} and array.shape == (4, 8)
  slice_of = np.vectorize(lambda d: d.slice_index)(array)
  assert (slice_of[:2] == 0).all() and (slice_of[2:] == 1).all()  # Each slice contiguous on data.
  assert all(len(set(row)) == 1 for row in slice_of)  # `model` never crosses a slice.
  assert sorted(d.id for d in array.flat) == list(range(32))
  # Without DCN_MESH, a MESH of one slice puts data across the slices, and says so.
  sizes_auto, auto = partitioning.device_layout("data=-1,model=8", devices)
  assert sizes_auto == sizes and (auto == array).all()
  assert "span 2 slices and no DCN_MESH is set" in capsys.readouterr().err


def test_meshes_a_topology_cannot_take_fail_with_the_fix():
  v4 = _tpu_slices("TPU v4", (4, 4, 4), 1)  # A v4-128 slice: 64 chips.
  _, array = partitioning.device_layout("data=4,model=16", v4)
  assert array.shape == (4, 16)
  with pytest.raises(ValueError, match=r"cannot lay out mesh data=2,model=32 on 64 TPU v4 devices, "
                                       r"chips 4x4x4: .*'data=4,model=16'"):
    partitioning.device_layout("data=2,model=32", v4)
  two = _tpu_slices("TPU v5p", (2, 2, 4), 2)
  with pytest.raises(ValueError, match=r"span 2 slices, and MESH data=4,model=8 is not a mesh of "
                                       r"one slice's 16 devices.*DCN_MESH = 'data=2'"):
    partitioning.device_layout("data=4,model=8", two)
  with pytest.raises(ValueError, match=r"DCN_MESH data=4,model=1 must use exactly the 32 devices' "
                                       r"2 slices"):
    partitioning.device_layout("data=-1,model=8", two, dcn="data=4")
  with pytest.raises(ValueError, match=r"8 devices' 1 hosts \(processes; these devices carry "
                                       r"no slice_index\), e.g. DCN_MESH = 'data=1'"):
    partitioning.device_layout("data=2,model=2", jax.devices(), dcn="data=2")  # CPU: no slices.


def test_simulated_slices_make_a_real_cpu_mesh():
  devices = jax.devices()
  mesh = partitioning.create_mesh("data=2,model=2", partitioning.simulate_slices(devices, 2),
                                  dcn="data=2")
  assert dict(mesh.shape) == {"data": 4, "model": 2}
  assert [d.id for d in mesh.devices[:2].flat] == [d.id for d in devices[:4]]
  x = jax.device_put(np.arange(8.0), partitioning.data_sharding(mesh))
  assert float(jax.jit(jnp.sum)(x)) == 28.0


def test_train_builds_its_mesh_with_dcn_mesh(tmp_path):
  from flan_jax import train
  from flan_jax.models.checkpoint import BadValueError
  from flan_jax.models.gin_config import config_from_gin
  from flan_jax.training.config import PartitioningConfig
  with pytest.raises(BadValueError, match=r"DCN_MESH \(training.PartitioningConfig.dcn_mesh\) "
                                          r"must be a mesh such as 'data=2'"):
    PartitioningConfig("data=-1", "1d", "dta=2")
  with pytest.raises(ValueError, match=r"DCN_MESH data=2,model=1 must use exactly the 8 "):
    train.train(model_dir=str(tmp_path), model_config=config_from_gin(["gin/models/tiny.gin"]),
                mixture_or_task_name="demo_heldout_nli_train",
                task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=1, batch_size=8,
                partitioning_cfg=PartitioningConfig("data=-1", "1d", "data=2"), progress=False)


@pytest.mark.parametrize("command", ["eval", "infer"])
def test_eval_and_infer_build_their_mesh_with_dcn_mesh(command, monkeypatch):
  """eval/infer take a dcn_mesh as train's DCN_MESH; one that does not fit the devices fails."""
  import importlib
  module = importlib.import_module(f"flan_jax.{command}")
  run = module.evaluate if command == "eval" else module.infer
  kwargs = {"task_feature_lengths": {"inputs": 32, "targets": 8}} if command == "infer" else {}
  with pytest.raises(ValueError, match=r"DCN_MESH data=2,model=1 must use exactly the 8 "):
    run(mixture_or_task_name="demo_heldout_nli_train", checkpoint_path="unused",
        output_dir="unused", dcn_mesh="data=2", **kwargs)
