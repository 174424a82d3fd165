"""Examples per second of a mixture through the trainer's packed input pipeline, on the tests'
offline fixtures (no downloads).

    .venv/bin/python bench/mixture_throughput.py [--mixtures flan2022_submix,flan_heldout_nli_train]
        [--lengths 2048:512,1024:256] [--batches 20] [--batch_size 8]

TFDS sources read ``tfds.testing.mock_data`` (6 examples a split); the Flan 2022 local sources
read tests/fixtures/flan2022 (NIv2: the fixture task file copied under every training task's
name in a temporary directory). For each mixture and ``inputs:targets`` pair it reports the time
to build the pipeline (every sub-task's preprocessing graph) and the examples/s of the
trainer's seqio pipeline (``DecoderFeatureConverter(pack=True)``, shuffled) after 2 warm-up
batches, with the build's cost per sub-task (what the ~1,900 tasks of ``flan2022_submix``
multiply) and the process's resident-memory growth per sub-task from before the build to the last
batch. ``--every K`` measures a systematic sample of a mixture instead: every K-th leaf task with
its rate (``flan2022_submix`` whole needs ~30 MB a task, more than a 24 GiB machine has).
Last line: ``examples_per_s=<mixture>@<lengths>:<value> ...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "flan2022")


def prepare_fixtures(tmp: str) -> None:
  """Points the Flan 2022 sources at the fixtures; NIv2 gets one file per training task."""
  from flan_jax.data import local_sources as sources
  from flan_jax.tasks.flan2022 import niv2
  tasks = os.path.join(tmp, "tasks")
  os.makedirs(tasks)
  template = os.path.join(FIXTURES, "niv2", "tasks", "task1289_trec_classification.json")
  for name in niv2.train_tasks():
    shutil.copyfile(template, os.path.join(tasks, name + ".json"))
  sources.set_data_dir("niv2", tmp)
  sources.set_data_dir("cot", os.path.join(FIXTURES, "cot"))
  sources.set_data_dir("t0", os.path.join(FIXTURES, "t0"))


def _realistic_where_needed(random_rows):
  """tests/test_flan_tasks' realistic mock rows for the datasets whose cleaning filters random
  rows out (an empty task would end the mixture), random mock rows for the rest."""
  import sys
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  from tests.test_flan_tasks import REALISTIC

  def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
    name = self.name + (f"/{self.builder_config.name}" if self.builder_config else "")
    for prefix, fn in REALISTIC.items():
      if name.startswith(prefix):
        return fn(self, split, decoders, read_config, **kwargs)
    return random_rows(self, split, decoders, read_config, **kwargs)

  return as_dataset


def rss_mb() -> float:
  """This process's resident memory (Linux /proc)."""
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def every_kth(mixture: str, k: int) -> str:
  """Registers (once) and names the mixture of every ``k``-th leaf task of ``mixture``, rates
  kept."""
  import seqio
  name = f"{mixture}_every{k}"
  if name not in seqio.MixtureRegistry.names():
    mix = seqio.get_mixture_or_task(mixture)
    seqio.MixtureRegistry.add(name, [(t.name, mix.get_rate(t)) for t in mix.tasks][::k])
  return name


def measure(mixture: str, inputs: int, targets: int, batches: int, batch_size: int) -> dict:
  import seqio
  rss0 = rss_mb()
  start = time.perf_counter()
  # The trainer's pipeline (flan_jax.training.batches.get_dataset) without its shard_info, which
  # asks TFDS for file lists that mock data does not have.
  it = seqio.get_dataset(
      mixture, task_feature_lengths={"inputs": inputs, "targets": targets},
      dataset_split="train", shuffle=True, num_epochs=None, seed=0, batch_size=batch_size,
      feature_converter=seqio.DecoderFeatureConverter(pack=True)).as_numpy_iterator()
  build = time.perf_counter() - start
  task = seqio.get_mixture_or_task(mixture)
  num_tasks = len(task.tasks) if isinstance(task, seqio.Mixture) else 1  # leaf tasks
  for _ in range(2):
    next(it)
  examples = 0
  start = time.perf_counter()
  for _ in range(batches):
    seg = next(it)["decoder_segment_ids"]
    examples += sum(len(set(row[row > 0].tolist())) for row in seg)
  elapsed = time.perf_counter() - start
  return {"build_s": build, "rss_mb_per_task": (rss_mb() - rss0) / num_tasks,
          "examples_per_s": examples / elapsed,
          "examples_per_row": examples / (batches * batch_size), "tasks": num_tasks}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--mixtures", default="flan2022_submix,flan_heldout_nli_train")
  parser.add_argument("--lengths", default="2048:512,1024:256")
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--every", type=int, default=1,
                      help="measure every K-th leaf task of each mixture (rates kept)")
  args = parser.parse_args(argv)
  import tensorflow_datasets as tfds

  from flan_jax.data import registry
  registry.ensure_registered()
  summary = []
  with tempfile.TemporaryDirectory() as tmp, tfds.testing.mock_data(
      num_examples=6, num_sub_examples=4, max_value=3), tfds.testing.mock_data(
          as_dataset_fn=_realistic_where_needed(
              tfds.core.dataset_builder.FileReaderBuilder._as_dataset)):
    for mixture in args.mixtures.split(","):
      registry.get(mixture)  # registers lazily registered collections (flan2022_*)
      if mixture.startswith("flan2022_") and not os.listdir(tmp):
        prepare_fixtures(tmp)
      for pair in args.lengths.split(","):
        inputs, targets = (int(x) for x in pair.split(":"))
        name = every_kth(mixture, args.every) if args.every > 1 else mixture
        r = measure(name, inputs, targets, args.batches, args.batch_size)
        print(f"{name} {inputs}/{targets}: {r['tasks']} tasks, build {r['build_s']:.1f} s "
              f"({r['build_s'] / r['tasks']:.2f} s/task), {r['examples_per_s']:.1f} examples/s, "
              f"{r['examples_per_row']:.2f} examples/row, "
              f"+{r['rss_mb_per_task']:.1f} MB resident/task", flush=True)
        summary.append(f"{name}@{pair}:{r['examples_per_s']:.1f}")
  print("examples_per_s=" + " ".join(summary))


if __name__ == "__main__":
  main()
