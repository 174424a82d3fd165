"""Issue 12: verified checkpoints with fallback, a locked self-describing MODEL_DIR, failed saves
that stop the run, strict metric rows and clear errors for bad values (one test per finding)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from flan_jax import eval as eval_lib
from flan_jax import train as train_lib
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.parallel import partitioning
from flan_jax.training import checkpoints, hooks, logs
from flan_jax.training import config as training_config
from flan_jax.training import state as state_lib

MESH = "data=2,model=4"  # conftest's 8 simulated devices
CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32", param_dtype="float32")


def _args(model_dir, steps: int, **kw) -> dict:
  args = dict(model_dir=str(model_dir), model_config=CFG,
              mixture_or_task_name="demo_heldout_nli_train",
              task_feature_lengths={"inputs": 32, "targets": 8}, train_steps=steps, batch_size=4,
              optimizer_cfg=training_config.OptimizerConfig(learning_rate=1e-2),
              checkpoint_cfg=training_config.CheckpointConfig(period=2),
              partitioning_cfg=training_config.PartitioningConfig(MESH), log_period=10,
              progress=False)
  args.update(kw)
  return args


def _train(model_dir, steps: int, **kw):
  return train_lib.train(**_args(model_dir, steps, **kw))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A 4-step run with checkpoint_2 and checkpoint_4 (copied by the tests that damage it)."""
  path = tmp_path_factory.mktemp("base") / "run"
  _train(path, 4)
  return path


def _copy(run, tmp_path):
  target = tmp_path / "run"
  shutil.copytree(run, target)
  return target


def _no_compile(monkeypatch):
  def refuse(*a, **k):
    raise AssertionError("built/compiled the train step before the check")
  monkeypatch.setattr(state_lib, "build_train_step", refuse)
  monkeypatch.setattr(partitioning, "create_train_state", refuse)


def _largest_file(path) -> str:
  files = [os.path.join(r, n) for r, _, ns in os.walk(path) for n in ns]
  return max(files, key=os.path.getsize)


def _flip_bit(path: str, offset: int, bit: int = 0) -> None:
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ (1 << bit)]))


# --- 1. a resume with a different config; model_config.json ---------------------------------


def test_resume_with_different_config_fails_before_compiling(run, tmp_path, monkeypatch):
  model_dir = _copy(run, tmp_path)
  before = (model_dir / "model_config.json").read_text()
  _no_compile(monkeypatch)
  with pytest.raises(checkpoints.ConfigMismatchError) as e:
    _train(model_dir, 6, model_config=CFG.replace(activation="swiglu", rope_theta=500.0))
  message = str(e.value)
  assert "activation (checkpoint 'gated_gelu', MODEL_CONFIG 'swiglu')" in message
  assert "rope_theta" in message and "ALLOW_CONFIG_CHANGE" in message
  assert (model_dir / "model_config.json").read_text() == before
  # Each checkpoint carries its own config.
  assert checkpoints.stored_config(str(model_dir / "checkpoint_4")) == CFG.replace(
      dropout_rate=0.0)
  # import-hf (save_params) into that dir with another config does not rewrite it either.
  other = CFG.replace(d_ff=128)
  from flan_jax.models import init_params
  with pytest.raises(checkpoints.ConfigMismatchError, match="d_ff"):
    checkpoints.save_params(str(model_dir), init_params(other, jax.random.key(0)), other)
  assert (model_dir / "model_config.json").read_text() == before


def test_allow_config_change_resumes_and_records_it(run, tmp_path):
  model_dir = _copy(run, tmp_path)
  changed = CFG.replace(activation="swiglu")  # Same shapes, another function.
  state = _train(model_dir, 5, model_config=changed,
                 checkpoint_cfg=training_config.CheckpointConfig(period=2,
                                                                 allow_config_change=True))
  assert int(state.step) == 5
  record = [json.loads(line) for line in open(model_dir / checkpoints.CONFIG_CHANGES_FILE)]
  assert record[-1]["changes"] == {"activation": ["gated_gelu", "swiglu"]}
  assert checkpoints.stored_config(str(model_dir / "checkpoint_5")).activation == "swiglu"
  assert checkpoints.stored_config(str(model_dir / "checkpoint_4")).activation == "gated_gelu"
  assert any(n.startswith("model_config.") and n != "model_config.json"
             for n in os.listdir(model_dir))


# --- 2. disk full -----------------------------------------------------------------------------


def _tmpfs(path) -> bool:
  os.makedirs(path, exist_ok=True)
  return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
                        capture_output=True).returncode == 0


def test_disk_full_stops_at_the_failed_save_keeping_earlier_checkpoints(tmp_path, monkeypatch):
  mount = tmp_path / "disk"  # 64 MiB: room for the run until the filler takes the rest.
  real = _tmpfs(mount)  # A real full file system where root may mount one, else injected.
  model_dir = mount / "run"
  save = checkpoints.TrainCheckpoints.save

  def filling_save(self, state, meta):
    if meta["step"] == 4:
      self.finish()  # checkpoint_2 is on disk; then the disk fills up.
      if real:
        # Unbuffered, so that closing the file has nothing left to flush (a buffered file
        # re-raises ENOSPC from close() when its last write was partial).
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
          with pytest.raises(OSError):
            while True:
              os.write(fd, b"\0" * 65536)
        finally:
          os.close(fd)
      else:
        monkeypatch.setattr(checkpoints, "write_checksums", _enospc)
    return save(self, state, meta)

  monkeypatch.setattr(checkpoints.TrainCheckpoints, "save", filling_save)
  try:
    with pytest.raises(checkpoints.CheckpointWriteError) as e:
      _train(model_dir, 8, log_period=1)
    assert str(e.value).startswith("checkpoint_4 could not be written: No space left on device; "
                                   "checkpoint_2 is the latest good one")
    rows = [json.loads(line) for line in open(model_dir / train_lib.METRICS_FILE)]
    assert rows[-1]["step"] <= 5  # Stopped at the next step, not at the next save.
    assert checkpoints.problem(str(model_dir / "checkpoint_2"), need_data=True) is None
    assert not checkpoints.is_complete_checkpoint(str(model_dir / "checkpoint_4"))
    assert not (model_dir / checkpoints.LOCK_FILE).exists()
  finally:
    if real:
      subprocess.run(["umount", str(mount)], check=False)


def _enospc(path):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


# --- 3. bit flips -----------------------------------------------------------------------------


def test_relative_checkpoint_paths_restore(run, tmp_path, monkeypatch):
  """make demo passes relative dirs (demo_out/pretrained/checkpoint_N) as initial checkpoints."""
  model_dir = _copy(run, tmp_path)
  want = checkpoints.restore_params(str(model_dir), step=4)
  monkeypatch.chdir(model_dir.parent)
  got = checkpoints.restore_params(os.path.join(model_dir.name, "checkpoint_4"))
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _array_chunks(state_dir: str) -> list[tuple[str, str, int, int]]:
  """(array key, data file, offset, length) of each array value stored out of line in the OCDBT
  database of ``state_dir`` (tensorstore's own dump of the B-tree)."""
  import tensorstore as ts
  base = ts.KvStore.open({"driver": "file", "path": state_dir + "/"}).result()
  root = ts.ocdbt.dump(base).result()["versions"][-1]["root"]["location"]
  chunks = []
  for entry in ts.ocdbt.dump(base, node=root).result()["entries"]:
    if "indirect_value" in entry:  # value:<prefix>:<file>:<offset>:<length>
      _, prefix, file, offset, length = entry["indirect_value"].split(":")
      chunks.append((entry["key"].decode(), prefix + file, int(offset), int(length)))
  return chunks


def _same_params(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_single_bit_flips_are_detected_and_fallen_back_from(run, tmp_path):
  """12 single-bit flips, 6 in the small files (sha256 in checksums.json, :func:`problem`) and 6 in
  array chunks (crc32c per chunk, checked by tensorstore as the chunk is read): each one is named,
  and the reader falls back to checkpoint_2 with its exact parameters."""
  model_dir = _copy(run, tmp_path)
  step_dir = str(model_dir / "checkpoint_4")
  assert checkpoints.problem(step_dir, need_data=True) is None
  with open(os.path.join(step_dir, checkpoints.CHECKSUM_FILE)) as f:
    listed = json.load(f)["files"]
  small = sorted(n for n, (_, digest) in listed.items() if digest is not None)
  assert {"state/_METADATA", "state/manifest.ocdbt", "data/metadata"} <= set(small)
  assert all(listed[n][1] is None for n in listed if model_checkpoint.is_array_data_file(n))
  chunks = [c for c in _array_chunks(os.path.join(step_dir, "state")) if c[0].startswith("params.")]
  assert len(chunks) >= 6
  older = checkpoints.restore_params(str(model_dir), CFG, step=2)
  rng = np.random.default_rng(0)
  targets = [(n, int(rng.integers(listed[n][0]))) for n in rng.choice(small, 6, replace=False)]
  for i in rng.choice(len(chunks), 6, replace=False):
    key, file, offset, length = chunks[i]
    targets.append((f"state/{file}", offset + int(rng.integers(length))))
  for name, offset in targets:
    path, bit = os.path.join(step_dir, name), int(rng.integers(8))
    _flip_bit(path, offset, bit)
    reason = checkpoints.problem(step_dir)
    if model_checkpoint.is_array_data_file(name):
      assert reason is None  # Nothing large is read back by the file-level check ...
      with pytest.raises(checkpoints.CheckpointError, match="checksum mismatch in state/ array "
                         "chunk params"):
        checkpoints.restore_params(str(model_dir), CFG, step=4)  # ... the read itself checks.
    else:
      assert reason == f"checksum mismatch in {name} (its content changed after it was written)"
    assert _same_params(checkpoints.restore_params(str(model_dir), CFG), older), name
    _flip_bit(path, offset, bit)  # Restored: the next flip is a single one again.
  assert checkpoints.problem(step_dir) is None
  assert _same_params(checkpoints.restore_params(str(model_dir), CFG),
                      checkpoints.restore_params(str(run), CFG, step=4))


@pytest.mark.slow  # ~70 s: 12 whole-state restores.
def test_random_bit_flips_in_array_data_files_never_load_silently(run, tmp_path):
  """Anywhere in the data files (chunks, B-tree nodes, shard indices): a resume's restore fails or,
  where no read uses the byte (a process's B-tree superseded by the merged one), returns exactly
  the written state."""
  model_dir = _copy(run, tmp_path)
  step_dir = model_dir / "checkpoint_4"
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        model_checkpoint.state_metadata(str(step_dir)))

  def restore():  # The whole state (step, params, optimizer state), as a resume reads it.
    return model_checkpoint.restore_tree(str(step_dir), target)

  want = restore()
  files = [str(p) for p in (step_dir / "state").rglob("*") if p.is_file()
           and model_checkpoint.is_array_data_file(str(p.relative_to(step_dir)))]
  sizes = np.array([os.path.getsize(f) for f in files], float)
  rng, failed = np.random.default_rng(1), 0
  for _ in range(12):
    path = str(rng.choice(files, p=sizes / sizes.sum()))  # A byte drawn uniformly.
    offset, bit = int(rng.integers(os.path.getsize(path))), int(rng.integers(8))
    _flip_bit(path, offset, bit)
    try:
      got = restore()
    except model_checkpoint.UnreadableCheckpointError:
      failed += 1
    else:
      assert _same_params(got, want), (path, offset, bit)
    _flip_bit(path, offset, bit)
  assert failed >= 6  # (8 of 12 with this seed) so the restore above did read most bytes.


def test_bit_flip_in_latest_falls_back_to_previous_on_resume(run, tmp_path, caplog):
  model_dir = _copy(run, tmp_path)
  data_file = _largest_file(model_dir / "checkpoint_4" / "state")
  _flip_bit(data_file, os.path.getsize(data_file) // 2)
  with caplog.at_level(logging.WARNING):
    state = _train(model_dir, 4)
  assert int(state.step) == 4
  bad = [n for n in os.listdir(model_dir) if n.startswith("checkpoint_4.bad-")]
  assert len(bad) == 1
  assert "checkpoint_4 is unusable (checksum mismatch in state/" in caplog.text
  rows = [json.loads(line) for line in open(model_dir / train_lib.METRICS_FILE)]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  fresh = checkpoints.restore_params(str(run), CFG, step=4)
  again = checkpoints.restore_params(str(model_dir), CFG, step=4)
  for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --- 4. a damaged latest checkpoint; none good ------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "manifest", "bad_json", "other_config"])
def test_damaged_latest_falls_back_with_the_reason(run, tmp_path, damage, caplog):
  model_dir = _copy(run, tmp_path)
  latest = model_dir / "checkpoint_4"
  if damage == "truncate":
    data_file = _largest_file(latest / "state")
    with open(data_file, "r+b") as f:
      f.truncate(os.path.getsize(data_file) // 2)
    expected = "truncated?"
  elif damage == "manifest":
    os.remove(latest / "state" / "manifest.ocdbt")
    expected = "file state/manifest.ocdbt is missing"
  elif damage == "bad_json":
    (latest / "data" / "metadata").write_text("{not json")
    os.remove(latest / checkpoints.CHECKSUM_FILE)  # Else the checksums catch it first.
    expected = "data/metadata is not valid JSON"
  else:  # Arrays of another config, copied in without checksums.
    shutil.rmtree(latest / "state")
    other = CFG.replace(d_model=48)
    from flan_jax.models import init_params
    checkpoints.save_params(str(tmp_path / "other"), init_params(other, jax.random.key(1)), other)
    shutil.copytree(tmp_path / "other" / "checkpoint_0" / "state", latest / "state")
    os.remove(latest / checkpoints.CHECKSUM_FILE)
    checkpoints.write_checksums(str(latest))  # Listed, as a copy with its checksums would be.
    expected = "does not match the model config's shape"
  with caplog.at_level(logging.WARNING):
    params = checkpoints.restore_params(str(model_dir), CFG)  # eval/export/load's path
  assert expected in caplog.text and "checkpoint_4 is unusable" in caplog.text
  assert os.path.isdir(latest)  # Readers never move anything.
  good = checkpoints.restore_params(str(run), CFG, step=2)
  for a, b in zip(jax.tree.leaves(good), jax.tree.leaves(params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_no_good_checkpoint_lists_what_was_tried(run, tmp_path):
  model_dir = _copy(run, tmp_path)
  os.remove(model_dir / "checkpoint_4" / "state" / "manifest.ocdbt")
  (model_dir / "checkpoint_2" / "data" / "metadata").write_text("{")
  with pytest.raises(checkpoints.CheckpointError) as e:
    checkpoints.restore_params(str(model_dir), CFG)
  assert "checkpoint_4: file state/manifest.ocdbt is missing" in str(e.value)
  assert "checkpoint_2: file data/metadata is 1 bytes" in str(e.value)


# --- 5. a missing data/ item ------------------------------------------------------------------


def test_missing_data_item_is_incomplete_for_the_trainer(run, tmp_path):
  model_dir = _copy(run, tmp_path)
  shutil.rmtree(model_dir / "checkpoint_4" / "data")
  assert "no data/metadata" in checkpoints.problem(str(model_dir / "checkpoint_4"),
                                                   need_data=True)
  found = checkpoints.restore_latest(str(model_dir), checkpoints.read_data, need_data=True,
                                     move_bad=True)
  assert found[0] == 2 and found[1]["data_position"] == 2 and found[1]["seed"] == 0
  assert any(n.startswith("checkpoint_4.bad-") for n in os.listdir(model_dir))


# --- 6. the MODEL_DIR lock --------------------------------------------------------------------


def test_lock_refuses_a_second_writer_and_takes_over_a_stale_one(run, tmp_path, capsys):
  model_dir = _copy(run, tmp_path)
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
  try:
    lock = model_dir / checkpoints.LOCK_FILE
    import socket
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                "purpose": "flan-jax train", "since": "now"}))
    with pytest.raises(checkpoints.ModelDirLockedError, match=f"pid {holder.pid}"):
      _train(model_dir, 6)
    from flan_jax.interop import hf as hf_interop
    with pytest.raises(checkpoints.ModelDirLockedError, match="in use by flan-jax train"):
      with checkpoints.locked(str(model_dir), "flan-jax import-hf"):
        pass
    assert hf_interop.main_export([str(run), str(model_dir), "--overwrite"]) == 1
    assert "in use by flan-jax train" in capsys.readouterr().err
    assert sorted(checkpoints.steps(str(model_dir))) == [2, 4]  # Nothing was touched.
  finally:
    holder.kill()
    holder.wait()
  time.sleep(0.1)
  with checkpoints.locked(str(model_dir), "test"):  # The holder is gone: a stale lock.
    assert json.loads(lock.read_text())["pid"] == os.getpid()
  assert "removing the stale lock" in capsys.readouterr().err
  assert not lock.exists()


# --- 7. metric rows ---------------------------------------------------------------------------


def test_torn_last_metrics_line_is_repaired_and_nonfinite_is_json(tmp_path, capsys):
  path = str(tmp_path / train_lib.METRICS_FILE)
  logs.write_metrics(path, [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")},
                                  {"step": 3, "loss": float("inf")}])
  with open(path, "a") as f:
    f.write('{"step": 4, "lo')  # A kill in the middle of a write.
  logs.truncate_metrics(path, 3)
  rows = [json.loads(line, parse_constant=pytest.fail) for line in open(path)]
  assert rows == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": None}, {"step": 3, "loss": None}]
  assert f"repaired {path}: dropped 1 torn line(s) (line 4)" in capsys.readouterr().err


# --- 8. eval / export of a missing or incomplete step; t5x and TF checkpoints -----------------


def test_eval_and_export_of_missing_or_incomplete_steps_explain(run, tmp_path, caplog):
  model_dir = _copy(run, tmp_path)
  mesh = partitioning.create_mesh(MESH)
  rules = partitioning.standard_logical_axis_rules()
  from flan_jax.interop import hf as hf_interop
  with pytest.raises(checkpoints.CheckpointError, match="checkpoint_9 cannot be used: it does "
                     r"not exist \(checkpoints in .*: \[2, 4\]\)"):
    hf_interop.export_hf(str(model_dir), str(tmp_path / "hf"), step=9)
  os.remove(model_dir / "checkpoint_4" / "_CHECKPOINT_METADATA")
  with pytest.raises(checkpoints.CheckpointError, match="checkpoint_4 cannot be used: incomplete"):
    checkpoints.restore_params(str(model_dir / "checkpoint_4"))
  with caplog.at_level(logging.WARNING):
    config, params, step, _ = eval_lib.load_model(str(model_dir), mesh, rules)
  assert step == 2 and "checkpoint_4 is unusable (incomplete" in caplog.text


def test_t5x_and_tf_checkpoints_are_named_with_a_conversion_hint(tmp_path, monkeypatch):
  t5x = tmp_path / "t5x" / "checkpoint_1000"
  (t5x / "target.decoder.layers_0.mlp.wi.kernel").mkdir(parents=True)
  (t5x / "checkpoint").write_bytes(b"\x81\xa6target")
  tf_dir = tmp_path / "tf"
  tf_dir.mkdir()
  for name in ("checkpoint", "model.ckpt-100.index", "model.ckpt-100.data-00000-of-00001"):
    (tf_dir / name).write_text("x")
  _no_compile(monkeypatch)
  for path, kind in ((t5x, "t5x checkpoint"), (t5x.parent, "t5x checkpoints"),
                     (tf_dir, "TensorFlow checkpoint")):
    with pytest.raises(checkpoints.CheckpointError, match=f"INITIAL_CHECKPOINT_PATH: .*{kind}.*"
                       "Hugging Face"):
      _train(tmp_path / "run", 2, initial_checkpoint_path=str(path))
    with pytest.raises(checkpoints.CheckpointError, match=kind):
      eval_lib.load_model(str(path), partitioning.create_mesh(MESH),
                          partitioning.standard_logical_axis_rules())


# --- 9. bad values ----------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"batch_size": "eight"}, "BATCH_SIZE (train_script.train.batch_size) must be an integer >= 1, "
     "got 'eight' (str); e.g. --gin.BATCH_SIZE=8"),
    ({"train_steps": "ten"}, "TRAIN_STEPS (train_script.train.train_steps) must be an integer >= 0 "
     "or None, got 'ten' (str)"),
    ({"train_steps": -5}, "TRAIN_STEPS (train_script.train.train_steps) must be an integer >= 0 "
     "or None, got -5"),
    ({"relative_steps": -1}, "TRAIN_STEPS_RELATIVE (train_script.train.relative_steps) must be an "
     "integer >= 0 or None, got -1"),
    ({"batch_size": 0}, "BATCH_SIZE (train_script.train.batch_size) must be an integer >= 1, "
     "got 0"),
    # The flat keyword argument of before the typed configs (one release) is checked the same.
    ({"checkpoint_period": 0}, "CHECKPOINT_PERIOD (training.CheckpointConfig.period) must be an "
     "integer >= 1, got 0"),
    ({"task_feature_lengths": {"inputs": 0, "targets": 8}},
     "TASK_FEATURE_LENGTHS['inputs'] must be a positive integer"),
    ({"initial_checkpoint_path": "/nonexistent/model"}, "INITIAL_CHECKPOINT_PATH '/nonexistent"),
])
def test_bad_values_fail_before_anything_is_created(tmp_path, monkeypatch, change, message):
  _no_compile(monkeypatch)
  with pytest.raises(checkpoints.BadValueError) as e:
    _train(tmp_path / "run", 2, **change)
  assert message in str(e.value)
  assert not (tmp_path / "run").exists()


def test_model_dir_that_is_a_file(tmp_path, monkeypatch):
  _no_compile(monkeypatch)
  (tmp_path / "file").write_text("")
  with pytest.raises(checkpoints.ModelDirError, match="MODEL_DIR .* is a file, not a directory"):
    _train(tmp_path / "file", 2)


def test_read_only_model_dir(tmp_path, monkeypatch):
  """A read-only file system (a real one where root may mount it; root ignores permissions)."""
  _no_compile(monkeypatch)
  target = tmp_path / "ro"
  os.makedirs(target)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)],
                    capture_output=True).returncode:
    pytest.skip("cannot mount a read-only file system here")
  try:
    with pytest.raises(checkpoints.ModelDirError, match="is not writable .*Read-only file syst"):
      _train(target, 2)
  finally:
    subprocess.run(["umount", str(target)], check=False)


def test_train_steps_at_or_below_the_restored_step(run, tmp_path, monkeypatch, capsys):
  model_dir = _copy(run, tmp_path)
  monkeypatch.setattr(partitioning, "create_train_state", pytest.fail)
  with pytest.raises(checkpoints.BadValueError, match="nothing to do: .*checkpoint_4 is at "
                     "step 4 and TRAIN_STEPS is 3; raise TRAIN_STEPS"):
    _train(model_dir, 3)
  # A rerun of the finished job is an error unless asked for (a scheduler's rerun).
  with pytest.raises(checkpoints.BadValueError, match="checkpoint_4 is already at TRAIN_STEPS=4"
                     ".*ALLOW_NOTHING_TO_DO=True"):
    _train(model_dir, 4)
  assert int(_train(model_dir, 4, allow_nothing_to_do=True).step) == 4
  assert "checkpoint_4 is already at TRAIN_STEPS=4" in capsys.readouterr().err


def test_nonfinite_message_names_what_was_nonfinite():
  assert hooks.nonfinite_text(2.5, float("inf")) == (
      "non-finite grad norm inf (the loss, 2.5, is finite)")
  assert hooks.nonfinite_text(float("nan"), 1.0) == "non-finite loss nan (grad norm 1.0 " \
      "is finite)"
  assert "loss nan and grad norm nan" in hooks.nonfinite_text(float("nan"), float("nan"))


@pytest.mark.slow  # ~70 s: one flan_jax.train subprocess per reported error (test-all)
def test_command_line_prints_reported_errors_without_traceback(tmp_path):
  (tmp_path / "file").write_text("")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for flags, message in (
      ([f"--gin.MODEL_DIR='{tmp_path}/run'", "--gin.BATCH_SIZE='eight'"],
       "BATCH_SIZE (train_script.train.batch_size) must be an integer"),
      ([f"--gin.MODEL_DIR='{tmp_path}/run'", "--gin.CHECKPOINT_PATH_TYPO=1"], "error"),
      ([f"--gin.MODEL_DIR='{tmp_path}/file'"], "is a file, not a directory"),
      ([f"--gin.MODEL_DIR='{tmp_path}/run'", "--gin.BATCH_SIZE=3",
        "--gin.MESH='data=2,model=1'"], "does not split over")):
    proc = subprocess.run([sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/demo.gin",
                           "--gin.train_script.train.progress=False", *flags], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "cannot schedule new futures" not in proc.stderr  # (orbax, after an early error)
  proc = subprocess.run([sys.executable, "-m", "flan_jax.train", "--gin_file=gin/runs/nope.gin"],
                        cwd=repo, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and "nope.gin" in proc.stderr and "Traceback" not in proc.stderr, \
      proc.stderr[-2000:]



def test_flan_mixture_without_tfds_data_fails_early_with_the_build_command(tmp_path, monkeypatch):
  import seqio

  from flan_jax.data.spec import MissingDataError
  _no_compile(monkeypatch)
  seqio.set_tfds_data_dir_override(str(tmp_path / "empty_tfds"))
  try:
    with pytest.raises(MissingDataError, match="tfds build super_glue/rte"):
      _train(tmp_path / "run", 2, mixture_or_task_name="rte_7templates")
  finally:
    seqio.set_tfds_data_dir_override(None)


def test_import_hf_with_a_wrong_hidden_size_names_it(tmp_path, capsys):
  pytest.importorskip("safetensors")
  from flan_jax.interop import hf as hf_interop
  from flan_jax.models import init_params
  llama = CFG.replace(activation="swiglu", position="rope", tie_embeddings=False,
                      scale_tied_logits=False)
  hf_dir = str(tmp_path / "hf")
  hf_interop.save_hf(hf_dir, llama, init_params(llama, jax.random.key(0)))
  with open(os.path.join(hf_dir, "config.json")) as f:
    config = json.load(f)
  config["hidden_size"] = 48
  with open(os.path.join(hf_dir, "config.json"), "w") as f:
    json.dump(config, f)
  assert hf_interop.main_import([hf_dir, str(tmp_path / "out")]) == 1
  err = capsys.readouterr().err
  assert "config.json says vocab_size=512, hidden_size=48 but" in err
  assert "embed_tokens.weight has shape (512, 32)" in err and "Traceback" not in err


# --- issue 28: verification that cannot be bypassed; a race-free lock; the readers' restore ----


def _readers(model_dir, tmp_path) -> dict[str, int | None]:
  """The step each reader loads from ``model_dir``: eval/infer (one loader), export-hf and
  :func:`flan_jax.load` (None: export-hf names no step; its fallback line is checked instead)."""
  import flan_jax
  from flan_jax.interop import hf as hf_interop
  mesh, rules = partitioning.create_mesh(MESH), partitioning.standard_logical_axis_rules()
  _, _, eval_step, _ = eval_lib.load_model(str(model_dir), mesh, rules)
  hf_interop.export_hf(str(model_dir), str(tmp_path / "hf"), overwrite=True)
  model = flan_jax.load(str(model_dir))
  want = checkpoints.restore_params(str(model_dir), CFG, step=2)
  return {"eval/infer": eval_step, "load": 2 if _same_params(model.params, want) else None}


@pytest.mark.parametrize("damage", ["deleted", "empty"])
def test_checksums_deleted_or_emptied_are_damage_for_every_reader(run, tmp_path, damage, caplog):
  """Deleting checksums.json (or replacing it with a list of no files) cannot switch verification
  off: with one bit flipped in an array file and one in data/metadata (the data position 4 -> 5,
  still valid JSON), trainer, eval/infer, export-hf and flan_jax.load all fall back to
  checkpoint_2, each with the reason; the step asked for by name is refused."""
  model_dir = _copy(run, tmp_path)
  latest = model_dir / "checkpoint_4"
  meta = json.loads((latest / checkpoints.METADATA_FILE).read_text())
  assert meta["custom_metadata"] == model_checkpoint.WRITER_METADATA  # The commit record says so.
  sums = latest / checkpoints.CHECKSUM_FILE
  if damage == "deleted":
    os.remove(sums)
    reason = "checksums.json is missing"
  else:
    sums.write_text(json.dumps({"algorithm": "sha256", "files": {}}))
    reason = "checksums.json lists no files"
  key, file, offset, length = next(c for c in _array_chunks(str(latest / "state"))
                                   if c[0].startswith("params."))
  _flip_bit(str(latest / "state" / file), offset + length // 2)
  data = latest / "data" / "metadata"
  _flip_bit(str(data), data.read_bytes().index(b'"data_position": 4') + 17)
  assert json.loads(data.read_text())["data_position"] == 5
  assert checkpoints.problem(str(latest)).startswith(reason)
  with caplog.at_level(logging.WARNING):
    assert _readers(model_dir, tmp_path) == {"eval/infer": 2, "load": 2}
  assert caplog.text.count(f"checkpoint_4 is unusable ({reason}") >= 3  # eval, export, load
  with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint_4 cannot be used: {reason}"):
    checkpoints.restore_params(str(model_dir), CFG, step=4)
  # The trainer's restore: moved aside, resumes from checkpoint_2 at its data position.
  found = checkpoints.restore_latest(str(model_dir), checkpoints.read_data, need_data=True,
                                     move_bad=True)
  assert found[0] == 2 and found[1]["data_position"] == 2
  assert any(n.startswith("checkpoint_4.bad-") for n in os.listdir(model_dir))


def test_checkpoint_from_elsewhere_loads_with_one_unverified_line(tmp_path, capsys):
  """A plain orbax checkpoint (no flan_jax step metadata, no data item, no checksums.json) is
  loaded, with one line saying it is not verified; listing extra files in a flan_jax one fails."""
  import orbax.checkpoint as ocp

  from flan_jax.interop import loading
  from flan_jax.models import init_params
  params = init_params(CFG, jax.random.key(3))
  model_dir = str(tmp_path / "plain")
  checkpoints.save_config(model_dir, CFG)
  with ocp.CheckpointManager(model_dir, options=ocp.CheckpointManagerOptions(
      step_prefix="checkpoint")) as manager:
    manager.save(7, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params})))
    manager.wait_until_finished()
  capsys.readouterr()
  loaded = loading.load_model(model_dir)
  assert loaded.step == 7 and _same_params(loaded.params, params)
  err = capsys.readouterr().err
  assert err.count("was not written by flan_jax (no checksums.json): its files are not verified") \
      == 1, err
  # A flan_jax checkpoint with a file its checksums.json does not list.
  checkpoints.save_params(str(tmp_path / "ours"), params, CFG, step=1)
  (tmp_path / "ours" / "checkpoint_1" / "state" / "extra").write_text("x")
  assert checkpoints.problem(str(tmp_path / "ours" / "checkpoint_1")) == (
      "file state/extra is not listed in checksums.json (added after the save, or checksums.json "
      "was replaced)")


def test_a_fresh_lock_is_never_stale(tmp_path, capsys, monkeypatch):
  """The race of issue 28: a lock another trainer has just created but not yet written (empty)
  refuses the second trainer instead of being removed as stale; the exclusive create never shows
  such a file, and of two racing creators exactly one wins (an injected delay between writing
  and publishing the lock)."""
  import threading

  from flan_jax.storage import fs
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  lock = model_dir / checkpoints.LOCK_FILE
  lock.write_text("")  # Just created by another taker, not yet written.
  with pytest.raises(checkpoints.ModelDirLockedError, match="is being locked by another process"):
    with checkpoints.locked(str(model_dir), "second trainer"):
      pass
  assert lock.exists() and "removing the stale lock" not in capsys.readouterr().err
  old = time.time() - 2 * model_checkpoint.LOCK_GRACE_S  # An unreadable lock left long ago.
  os.utime(lock, (old, old))
  with checkpoints.locked(str(model_dir), "test"):
    assert json.loads(lock.read_text())["pid"] == os.getpid()
  assert "removing the stale lock" in capsys.readouterr().err
  # Two creators, each slowed down between writing its content and publishing it.
  real_fsync = os.fsync
  monkeypatch.setattr(fs.os, "fsync", lambda fd: (time.sleep(0.3), real_fsync(fd)))
  seen, won = [], []

  def create(owner: str) -> None:
    if fs.create_exclusive(str(lock), owner):
      won.append(owner)

  takers = [threading.Thread(target=create, args=(f"taker {i}",)) for i in range(2)]
  for t in takers:
    t.start()
  while any(t.is_alive() for t in takers):
    with contextlib.suppress(FileNotFoundError):
      seen.append(lock.read_text())
  for t in takers:
    t.join()
  assert len(won) == 1 and lock.read_text() == won[0]
  assert set(seen) <= {won[0]}  # Never an empty or partly written lock.
  assert not [n for n in os.listdir(model_dir) if ".tmp-" in n]
  # Two takers found the same stale lock; the first replaced it: the second must not remove the
  # first one's fresh lock in its place.
  assert not fs.remove_if_unchanged(str(lock), "the stale lock both read")
  assert lock.read_text() == won[0]
  assert fs.remove_if_unchanged(str(lock), won[0]) and not lock.exists()
  # A file system without hard links (gcsfuse): O_EXCL, the grace period covering its window.
  monkeypatch.setattr(fs.os, "link", lambda *a: (_ for _ in ()).throw(
      OSError(errno.EPERM, "Operation not permitted")))
  assert fs.create_exclusive(str(lock), "one") and not fs.create_exclusive(str(lock), "two")
  assert lock.read_text() == "one"


@pytest.mark.parametrize("damage", ["file", "array_flip"])
def test_readers_fall_back_to_the_last_good_checkpoint(run, tmp_path, damage, caplog):
  """eval/infer, export-hf and flan_jax.load share the trainer's restore: a checkpoint dir
  replaced by a file or an array chunk that fails its checksum on read is skipped with a line
  (never NotADirectoryError); asked for by step, it is an error naming the reason."""
  model_dir = _copy(run, tmp_path)
  latest = model_dir / "checkpoint_4"
  if damage == "file":
    shutil.rmtree(latest)
    latest.write_text("not a checkpoint")
    reason = "it is a file, not a checkpoint directory"
  else:
    key, file, offset, length = next(c for c in _array_chunks(str(latest / "state"))
                                     if c[0].startswith("params."))
    _flip_bit(str(latest / "state" / file), offset + length // 2)
    reason = "checksum mismatch in state/ array chunk params."
  with caplog.at_level(logging.WARNING):
    assert _readers(model_dir, tmp_path) == {"eval/infer": 2, "load": 2}
  assert caplog.text.count(f"checkpoint_4 is unusable ({reason}") >= 3
  with pytest.raises(checkpoints.CheckpointError, match="checkpoint_4 "):
    checkpoints.restore_params(str(model_dir), CFG, step=4)


def test_unmovable_bad_checkpoint_is_skipped_and_messages_show_no_internals(run, tmp_path,
                                                                           monkeypatch, capsys):
  """A damaged checkpoint on a read-only mount (renaming it fails: EROFS) is skipped in memory
  with a line, not an OSError; orbax/tensorstore errors never show Python object reprs."""
  from flan_jax.storage import fs
  model_dir = _copy(run, tmp_path)
  os.remove(model_dir / "checkpoint_4" / checkpoints.CHECKSUM_FILE)

  def read_only(path, *a, **k):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

  monkeypatch.setattr(fs, "move_dir", read_only)
  found = checkpoints.restore_latest(str(model_dir), checkpoints.read_data, need_data=True,
                                     move_bad=True)
  assert found[0] == 2 and (model_dir / "checkpoint_4").is_dir()
  assert ("cannot be moved aside (Read-only file system); skipping it for this run"
          in capsys.readouterr().err)
  try:
    raise ValueError("Error reading <bound method pybind11_detail_function_record_v1.__call__ of "
                     "<tensorstore.Spec object at 0x7f00deadbeef>>: disk gone")
  except ValueError as e:
    text = checkpoints.error_text(e)
  assert text == "ValueError: Error reading ...: disk gone"


@pytest.mark.parametrize("flip", [("vocab_size", 1), ("{", 0)])
def test_damaged_model_config_recovers_from_the_checkpoint_copy(run, tmp_path, flip, capsys):
  """One flipped bit in model_config.json (an unknown field ``vocab_sizg``, or bad JSON): readers
  and the trainer's checks use the config stored in the newest checkpoint, with a line, and the
  trainer's save_config rewrites the file."""
  model_dir = _copy(run, tmp_path)
  path = model_dir / checkpoints.CONFIG_FILE
  text, bit = path.read_bytes(), flip[1]
  _flip_bit(str(path), text.index(flip[0].encode()) + len(flip[0]) - 1, bit)
  stored = checkpoints.stored_config(str(model_dir / "checkpoint_4"))
  assert checkpoints.load_config(str(model_dir)) == stored
  assert not checkpoints.check_resume_config(str(model_dir), None, CFG)
  err = capsys.readouterr().err
  assert "model_config.json is damaged" in err
  assert "using the model config stored in checkpoint_4" in err
  checkpoints.save_config(str(model_dir), CFG)
  assert DecoderConfig.from_json(path.read_text()) == CFG


def test_eval_mode_all_skips_an_unusable_checkpoint_with_a_line(run, tmp_path, capsys):
  """MODE='all' (no step asked for) evaluates the good checkpoints and names the bad one."""
  model_dir = _copy(run, tmp_path)
  os.remove(model_dir / "checkpoint_2" / checkpoints.CHECKSUM_FILE)
  mesh, rules = partitioning.create_mesh(MESH), partitioning.standard_logical_axis_rules()
  steps: dict[int, dict] = {}

  def run_model(path: str) -> tuple[int, dict]:
    step = eval_lib.load_model(path, mesh, rules)[2]
    return step, {"step": step}

  assert eval_lib._follow_checkpoints(str(model_dir), "all", None, 1.0, run_model, steps) == {
      "step": 4}
  assert list(steps) == [4]
  assert "skipping " + str(model_dir / "checkpoint_2") + ": " in capsys.readouterr().err
