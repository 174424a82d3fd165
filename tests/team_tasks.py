"""A team's own tasks, registered the plain seqio way (not through flan_jax's DatasetSpec):
imported by the tests through ``MIXTURE_OR_TASK_MODULE`` / ``--module_import``.

- ``team_data_to_text``: the offline world's data-to-text examples with one fixed prompt; a
  generative task scored by an exact-match metric of its own.
- ``team_flaky_eval``: the same data; its metric fails the first time it runs in a process
  whose ``TEAM_FLAKY_MARKER`` file does not exist yet (it creates it), then works.
"""

import os

import numpy as np
import seqio
import tensorflow as tf

from flan_jax.data import vocab
from flan_jax.data.offline import world

SPLITS = ("train", "validation", "test")


def _dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
  del shuffle_files, seed
  rows = world.examples("world_data_to_text", split)
  return tf.data.Dataset.from_tensor_slices({
      "inputs": [f"Write a sentence about the following data: {r['data']}" for r in rows],
      "targets": [r["answer"] for r in rows]})


def exact_match(targets, predictions):
  return {"exact": 100.0 * float(np.mean([t == p for t, p in zip(targets, predictions,
                                                                     strict=True)]))}


def flaky_exact_match(targets, predictions):
  marker = os.environ["TEAM_FLAKY_MARKER"]
  if not os.path.exists(marker):
    with open(marker, "w") as f:
      f.write("failed once\n")
    raise RuntimeError("the team's metric broke (on purpose, once)")
  return exact_match(targets, predictions)


for _name, _metric in (("team_data_to_text", exact_match), ("team_flaky_eval", flaky_exact_match)):
  seqio.TaskRegistry.add(
      _name,
      source=seqio.FunctionDataSource(_dataset_fn, splits=SPLITS),
      preprocessors=[seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
                     seqio.preprocessors.append_eos_after_trim],
      output_features=vocab.output_features(),
      metric_fns=[_metric])

# A mixture of the team's task (mixtures from a module work too).
seqio.MixtureRegistry.add("team_mixture", [("team_data_to_text", 1.0)])
