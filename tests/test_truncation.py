"""Too-short TASK_FEATURE_LENGTHS: the trainer counts and reports the truncated examples."""

import json
import re

import numpy as np
import seqio

from flan_jax import train as train_lib
from flan_jax.models import DecoderConfig
from flan_jax.training import batches as data_lib
from flan_jax.training import config as training_config

CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32", param_dtype="float32")
TASK = "world_data_to_text_4templates"  # One task: its stream is read in order.
LENGTHS = {"inputs": 40, "targets": 12}
LINE = re.compile(r"(\w+): (\d+) of (\d+) examples so far were longer than "
                  r"TASK_FEATURE_LENGTHS\['(\w+)'\]=(\d+) and were truncated \(longest (\d+)\); "
                  r"raise it to keep them")


def test_too_short_lengths_are_counted_and_reported(tmp_path, capsys):
  train_lib.train(model_dir=str(tmp_path), model_config=CFG, mixture_or_task_name=TASK,
                  task_feature_lengths=LENGTHS, train_steps=3, batch_size=4, log_period=1,
                  progress=False,
                  checkpoint_cfg=training_config.CheckpointConfig(3, async_checkpointing=False),
                  partitioning_cfg=training_config.PartitioningConfig("data=2,model=4"))
  found = [LINE.search(line) for line in capsys.readouterr().err.splitlines()]
  final: dict[str, tuple[int, int, int]] = {}
  for m in filter(None, found):
    assert m[1] == m[4] and int(m[5]) == LENGTHS[m[1]]
    final[m[1]] = (int(m[2]), int(m[3]), int(m[6]))
  assert set(final) == {"inputs", "targets"}, found
  seed = json.load(open(tmp_path / "checkpoint_3" / "data" / "metadata"))["seed"]
  # A direct count: the same seeded, untrimmed stream of the task's tokenized examples.
  seen = final["inputs"][1]
  assert final["targets"][1] == seen and seen >= 3 * 4  # At least the examples 3 batches packed.
  # Examples are counted as the task pipeline reads them, before shuffling: the unshuffled
  # stream's first `seen`, untrimmed (lengths with EOS).
  stream = seqio.get_mixture_or_task(TASK).get_dataset(
      {k: 10**6 for k in LENGTHS}, split="train", shuffle=False, seed=seed, num_epochs=None)
  lengths = {k: np.asarray([len(ex[k]) for ex in stream.take(seen + 64).as_numpy_iterator()])
             for k in LENGTHS}
  for k, limit in LENGTHS.items():
    over, (said_over, said_seen, longest) = int((lengths[k][:seen] > limit).sum()), final[k]
    assert (said_over, said_seen) == (over, seen), k
    # The longest is read apart from the counts: the pipeline may have read a few more since.
    assert lengths[k][:seen].max() <= longest <= lengths[k].max(), k
  assert 0 < final["inputs"][0] < seen
  # The last row (the end of the run) has the fractions so far.
  rows = [json.loads(line) for line in open(tmp_path / "train_metrics.jsonl")]
  last = rows[-1]
  for k in LENGTHS:
    if final[k][0]:
      assert last[f"data/truncated_fraction_{k}"] == final[k][0] / seen


def test_long_enough_lengths_report_nothing(tmp_path, capsys):
  cfg = data_lib.DataConfig(TASK, {"inputs": 512, "targets": 64}, 4, seed=0)
  counter = data_lib.TruncationCounter(cfg.task_feature_lengths)
  batches = data_lib.get_dataset(cfg, counter=counter).take(2)
  plain = data_lib.get_dataset(cfg).take(2)
  # Counting never changes the batches.
  for a, b in zip(batches.as_numpy_iterator(), plain.as_numpy_iterator(), strict=True):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  (over, seen, longest), = {counter.counts()["inputs"]}
  assert over == 0 and seen > 0 and 0 < longest <= 512 and counter.messages() == []
