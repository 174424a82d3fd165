"""Bad input data named by file and line (or record) before or when it is read
(flan_jax.data.bad_data, exported, the trainer's batches)."""

from __future__ import annotations

import json

import jax
import pytest
import seqio

from flan_jax.data import bad_data, exported
from flan_jax.parallel import partitioning
from flan_jax.training import batches
from tests import helpers

LENGTHS = {"inputs": 32, "targets": 8}
# One bad line of each kind the fault campaign found, as written to a part.
BAD_LINES = {
    "cut": (b'{"inputs": "What is 2 + 2?", "targets": "fo',
            "not one JSON object (Unterminated string starting at [column 41]; cut short?)"),
    "torn": (b'{"inputs": "Q 1", "targets": "A 1"}{"inputs": "Q 2", "tar',
             "not one JSON object (Extra data [column 36]; two lines run together"),
    "not_utf8": (b'{"inputs": "caf\xe9 \xff", "targets": "A"}', "not UTF-8"),
    "no_targets": (b'{"inputs": "Q", "task": "t"}', "no 'targets' field"),
}


def _good(part: int, i: int) -> bytes:
  return json.dumps({"inputs": f"question {part}-{i}", "targets": f"answer {part}-{i}",
                     "task": f"task_{part}", "_template_idx": i % 3}).encode()


def _parts(tmp_path, bad: dict[int, list[tuple[int, bytes]]], parts: int = 4,
           lines: int = 12) -> list[str]:
  """``parts`` JSONL files of ``lines`` good lines, with ``bad[part]``'s (line number, bytes)
  put in place."""
  paths = []
  for p in range(parts):
    rows = [_good(p, i) for i in range(lines)]
    for number, line in bad.get(p, []):
      rows[number - 1] = line
    path = tmp_path / f"part-{p:05d}-of-{parts:05d}.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    paths.append(str(path))
  return paths


def _register(name: str, files: list[str], **kwargs) -> str:
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  exported.register_exported(name, files, **kwargs)
  return name


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_a_bad_line_in_the_third_part_fails_before_the_first_batch(tmp_path, kind):
  """Building the trainer's pipeline (before step 1) fails naming the part, the line and what
  is wrong; it used to fail wherever the shuffle buffer reached the line, unnamed."""
  line, what = BAD_LINES[kind]
  name = _register(f"test_bad_data_{kind}", _parts(tmp_path, {2: [(7, line)]}))
  cfg = batches.DataConfig(name, LENGTHS, batch_size=4)
  with pytest.raises(bad_data.BadDataError) as raised:
    batches.get_dataset(cfg)
  message = str(raised.value)
  assert f"{tmp_path}/part-00002-of-00004.jsonl line 7: {what}" in message, message
  assert "1 bad line(s) in the 4 file(s)" in message and "skip_bad_lines=N" in message


def test_skip_bad_lines_budget_skips_and_logs_each(tmp_path, capsys):
  """Within the budget every bad line is skipped with a line on stderr and every good line is
  read once; one more bad line than the budget fails; each data shard checks only its parts."""
  bad = {0: [(3, BAD_LINES["cut"][0])], 2: [(7, BAD_LINES["not_utf8"][0]),
                                            (12, BAD_LINES["no_targets"][0])],
         3: [(1, BAD_LINES["torn"][0])]}
  files = _parts(tmp_path, bad)
  task = seqio.get_mixture_or_task(_register("test_bad_data_skip", files, skip_bad_lines=4))
  got = list(task.get_dataset(LENGTHS, split="train", shuffle=False, num_epochs=1)
             .as_numpy_iterator())
  assert len(got) == 4 * 12 - 4
  assert {e["inputs_pretokenized"].decode() for e in got} == {
      f"question {p}-{i}" for p in range(4) for i in range(12)
      if (i + 1) not in [n for n, _ in bad.get(p, [])]}
  err = capsys.readouterr().err
  for p, rows in bad.items():
    for number, _ in rows:
      assert f"skipping {files[p]} line {number}: " in err, err
  assert err.count("skip_bad_lines=4)") == 4

  task = seqio.get_mixture_or_task(_register("test_bad_data_skip3", files, skip_bad_lines=3))
  with pytest.raises(bad_data.BadDataError, match="(?s)4 bad line.*more than skip_bad_lines=3"):
    task.get_dataset(LENGTHS, split="train", shuffle=False, num_epochs=1)
  # Data shard 1 of 2 reads parts 1 and 3: one bad line, within a budget of 1.
  task = seqio.get_mixture_or_task(_register("test_bad_data_skip1", files, skip_bad_lines=1))
  half = list(task.get_dataset(LENGTHS, split="train", shuffle=False, num_epochs=1,
                               shard_info=seqio.ShardInfo(1, 2)).as_numpy_iterator())
  assert len(half) == 2 * 12 - 1
  with pytest.raises(ValueError, match="skip_bad_lines must be a count >= 0"):
    exported.register_exported("test_bad_data_negative", files, skip_bad_lines=-1)


def _corrupt_probe(data_dir: str) -> list[str]:
  """The probe prepared offline in ``data_dir`` as 2 files; its train files."""
  import tensorflow_datasets as tfds
  builder = helpers.text_builder("FlanJaxCorruptProbe", 40, "question number")(
      data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=2))
  return [info.filename for info in
          seqio.TfdsDataSource("flan_jax_corrupt_probe:1.0.0",
                               tfds_data_dir=data_dir).tfds_dataset.files("train")]


@pytest.mark.parametrize("where", ["data", "header"])
def test_a_corrupted_tfds_record_is_named_by_dataset_split_and_file(tmp_path, where):
  """One flipped byte in the 2nd file of a prepared TFDS split: the trainer's batches fail
  naming the dataset, the split and the file, not a bare 'corrupted record at N'."""
  import tensorflow as tf
  data_dir = str(tmp_path / "tfds")
  files = _corrupt_probe(data_dir)
  records = list(tf.data.TFRecordDataset(files[1]).as_numpy_iterator())
  # The 3rd record of the file: 12 header bytes + data + 4 crc bytes each.
  start = sum(12 + len(r) + 4 for r in records[:2])
  flip = start + (12 + 5 if where == "data" else 2)
  raw = bytearray(open(files[1], "rb").read())
  raw[flip] ^= 0xFF
  open(files[1], "wb").write(bytes(raw))

  name = f"test_bad_data_tfds_{where}"
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  from flan_jax.data import vocab
  seqio.TaskRegistry.add(
      name, source=seqio.TfdsDataSource("flan_jax_corrupt_probe:1.0.0", tfds_data_dir=data_dir),
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      output_features=vocab.output_features())
  # Read in this thread (data) and on the device-prefetch thread (header).
  cfg = batches.DataConfig(name, LENGTHS, batch_size=8, num_shards=1,
                           device_prefetch=0 if where == "data" else 2)
  mesh = partitioning.create_mesh("data=8,model=1", jax.devices())
  it = batches.TrainIterator(cfg, mesh)
  with pytest.raises(bad_data.BadDataError) as raised:
    for _ in range(20):
      next(it)
  message = str(raised.value)
  offset = start + (12 if where == "data" else 0)
  assert (f"TFDS dataset flan_jax_corrupt_probe:1.0.0, split 'train': file {files[1]} "
          f"has a corrupted record at byte {offset}") in message, message
  assert f"tfds build flan_jax_corrupt_probe --data_dir={data_dir}" in message


def test_the_trainer_stops_on_a_bad_line_before_step_1(tmp_path, monkeypatch):
  """flan_jax.train on the parts: the error names part 3 and its line before the first step
  runs (train_loop never starts) and before any checkpoint or metric is written."""
  from flan_jax import train as train_lib
  from flan_jax.models import DecoderConfig
  from flan_jax.training import config as training_config
  from flan_jax.training import loop

  def no_step(*args, **kwargs):
    raise AssertionError("training started")

  monkeypatch.setattr(loop, "train_loop", no_step)
  (tmp_path / "data").mkdir()
  files = _parts(tmp_path / "data", {2: [(5, BAD_LINES["no_targets"][0])]})
  name = _register("test_bad_data_trainer", files)
  model_dir = tmp_path / "run"
  with pytest.raises(bad_data.BadDataError, match=r"part-00002-of-00004\.jsonl line 5: no "):
    train_lib.train(
        model_dir=str(model_dir), mixture_or_task_name=name, task_feature_lengths=LENGTHS,
        model_config=DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2,
                                   head_dim=16, d_ff=64, dtype="float32", param_dtype="float32"),
        train_steps=2, batch_size=4, progress=False,
        partitioning_cfg=training_config.PartitioningConfig("data=2,model=4"))
  assert not any(p.name.startswith("checkpoint_") for p in model_dir.iterdir())
  assert not (model_dir / train_lib.METRICS_FILE).exists()
