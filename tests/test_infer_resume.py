"""``flan-jax infer`` output directories: what produced them is recorded and checked on resume;
one writer per output file; never a duplicate line (issue 28, case 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from flan_jax import infer
from flan_jax.data import registry
from flan_jax.models import DecoderConfig, init_params
from flan_jax.models import checkpoint as model_checkpoint

TASK = "world_qa_type_0"
LENGTHS = {"inputs": 32, "targets": 4}


class _Model:
  """The prediction/score functions infer_task calls (the output logic is under test here; a
  real model runs in test_infer_end_to_end_with_two_checkpoints): example ``i`` -> token ids
  ``[3 + i % 7 + offset, EOS]``."""

  def __init__(self, offset: int = 0):
    self.offset, self.calls = offset, 0

  def predict_fn(self, ds):
    self.calls += 1
    return [(i, np.array([3 + i % 7 + self.offset, 1])) for i, _ in ds.as_numpy_iterator()]

  def score_fn(self, ds):
    return [(i, -1.0 - i) for i, _ in ds.as_numpy_iterator()]


@pytest.fixture(scope="module")
def task():
  registry.ensure_registered()
  return registry.get(TASK)


def _run(task, out, model=None, chunk_size=4, record=None, restart=False):
  return infer.infer_task(task, model or _Model(), str(out), "validation", LENGTHS, chunk_size,
                          progress=False, num_examples=12,
                          record=record or {"checkpoint_digest": "a" * 64}, restart=restart)


def _indices(path) -> list[int]:
  with open(path) as f:
    return [json.loads(line)["index"] for line in f]


def _crash_after_first_chunk(path: str) -> str:
  """What a killed run leaves: its manifest and first chunk, no final file; the full text."""
  with open(path) as f:
    text = f.read()
  os.remove(path)
  os.makedirs(path + ".chunks")
  with open(os.path.join(path + ".chunks", "chunk_00000.jsonl"), "w") as f:
    f.writelines(text.splitlines(keepends=True)[:4])
  return text


def test_resume_with_another_checkpoint_or_chunk_size_is_refused(task, tmp_path):
  path, count = _run(task, tmp_path)
  assert count == 12 and _indices(path) == list(range(12))
  manifest = json.load(open(path + infer.MANIFEST_SUFFIX))
  assert manifest["chunk_size"] == 4 and manifest["task"] == TASK
  text = _crash_after_first_chunk(path)
  with pytest.raises(infer.InferOutputError, match=f"checkpoint_digest: '{'a' * 64}' -> "
                     f"'{'b' * 64}'.*restart=True"):
    _run(task, tmp_path, record={"checkpoint_digest": "b" * 64})
  with pytest.raises(infer.InferOutputError, match="chunk_size: 4 -> 8"):
    _run(task, tmp_path, chunk_size=8)
  assert not os.path.exists(path)  # Refused before anything was written.
  # The same run resumes: the chunk written before the crash is kept, each example once.
  model = _Model()
  assert _run(task, tmp_path, model)[1] == 12 and model.calls == 2
  assert open(path).read() == text and not os.path.exists(path + ".chunks")
  # A finished file of another checkpoint is not passed off as this one's ...
  with pytest.raises(infer.InferOutputError, match="checkpoint_digest"):
    _run(task, tmp_path, _Model(1), record={"checkpoint_digest": "b" * 64})
  assert _run(task, tmp_path)[1] == 12  # ... the same run's is skipped ...
  # ... and restart=True redoes the task.
  _run(task, tmp_path, _Model(1), record={"checkpoint_digest": "b" * 64}, restart=True)
  assert _indices(path) == list(range(12)) and open(path).read() != text
  assert json.load(open(path + infer.MANIFEST_SUFFIX))["checkpoint_digest"] == "b" * 64


def test_chunks_that_do_not_cover_each_example_once_are_never_joined(tmp_path):
  chunks = tmp_path / "t.jsonl.chunks"
  chunks.mkdir()
  for n, first in enumerate((0, 4)):
    (chunks / f"chunk_{n:05d}.jsonl").write_text("".join(
        json.dumps({"index": i}) + "\n" for i in range(first, first + 8)))
  with pytest.raises(infer.InferOutputError, match="examples 0-7, 4-11, not 0-11 once each"):
    infer._join_chunks(str(chunks), str(tmp_path / "t.jsonl"), 12)
  assert not (tmp_path / "t.jsonl").exists()


def test_a_second_infer_of_the_same_output_is_refused_cleanly(task, tmp_path):
  """A live process holds the output file's lock: a second infer stops with one message naming
  it (no crash on a temporary file); once the holder is gone its lock is stale and taken over."""
  name = os.path.basename(infer.output_path(str(tmp_path), TASK))
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
  try:
    (tmp_path / (name + infer.LOCK_SUFFIX)).write_text(json.dumps(
        {"host": os.uname().nodename, "pid": holder.pid, "purpose": f"flan-jax infer of {name}",
         "since": "now"}))
    with pytest.raises(model_checkpoint.ModelDirLockedError,
                       match=f"in use by flan-jax infer of {name} .*pid {holder.pid}.* another "
                       "INFER_OUTPUT_DIR"):
      _run(task, tmp_path)
  finally:
    holder.kill()
    holder.wait()
  path, _ = _run(task, tmp_path)
  assert _indices(path) == list(range(12))
  assert not (tmp_path / (name + infer.LOCK_SUFFIX)).exists()


def test_checkpoint_digest_tells_checkpoints_apart(tmp_path):
  cfg = DecoderConfig(vocab_size=64, num_layers=1, d_model=8, num_heads=1, head_dim=8, d_ff=16)
  shapes = jax.eval_shape(lambda: init_params(cfg, jax.random.key(0)))  # No compile: fast.
  digests = []
  for seed in (0, 1):
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda s, r=rng: r.standard_normal(s.shape).astype(s.dtype), shapes)
    model_checkpoint.save_params(str(tmp_path / f"m{seed}"), params, cfg, step=3)
    digests.append(infer.checkpoint_digest(str(tmp_path / f"m{seed}"), 3))
  assert digests[0] != digests[1]
  assert infer.checkpoint_digest(str(tmp_path / "m0" / "checkpoint_3"), 3) == digests[0]


@pytest.mark.slow  # ~60 s on 2 busy cores: two real checkpoints through infer().
def test_infer_end_to_end_with_two_checkpoints(tmp_path):
  cfg = DecoderConfig(vocab_size=32128, num_layers=1, d_model=16, num_heads=2, head_dim=8,
                      d_ff=32, dtype="float32")
  models = []
  for seed in (0, 1):
    models.append(str(tmp_path / f"m{seed}"))
    model_checkpoint.save_params(models[-1], init_params(cfg, jax.random.key(seed)), cfg, step=3)
  out = str(tmp_path / "out")
  kwargs = {"chunk_size": 4, "num_examples": 8, "batch_size": 4, "progress": False}
  path = infer.infer(TASK, models[0], out, LENGTHS, **kwargs)[TASK]
  manifest = json.load(open(path + infer.MANIFEST_SUFFIX))
  assert manifest["checkpoint_step"] == 3 and manifest["decode_kwargs"] == {}
  with pytest.raises(infer.InferOutputError, match="checkpoint_digest"):
    infer.infer(TASK, models[1], out, LENGTHS, **kwargs)
  assert _indices(infer.infer(TASK, models[1], out, LENGTHS, restart=True, **kwargs)[TASK]) == \
      list(range(8))
