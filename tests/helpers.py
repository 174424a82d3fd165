"""Shared test utilities."""

from __future__ import annotations

import functools
import socket
from contextlib import contextmanager

import numpy as np
import seqio

from flan_jax.data import spec as ds
from flan_jax.data.vocab import DEFAULT_VOCABULARY

LENGTHS = {"inputs": 1024, "targets": 256}


def examples(task_name: str, split: str = "validation", n: int = 4, seed: int | None = 0,
             shuffle: bool = False) -> list[dict]:
  """The first ``n`` preprocessed examples of a task, as numpy dicts."""
  task = seqio.get_mixture_or_task(task_name)
  ds = task.get_dataset(LENGTHS, split=split, shuffle=shuffle, seed=seed, num_epochs=1)
  return list(ds.take(n).as_numpy_iterator())


def text(ex: dict, key: str) -> str:
  return ex[f"{key}_pretokenized"].decode()


@contextmanager
def no_network():
  """Any attempt to open a network connection from Python fails the test."""
  original = socket.socket.connect

  def refuse(self, address):
    raise AssertionError(f"network access attempted: {address}")

  socket.socket.connect = refuse
  try:
    yield
  finally:
    socket.socket.connect = original


def variant_names(spec: ds.DatasetSpec, every: bool) -> list[str]:
  """All registered tasks of a dataset, or one of each kind (template 0 / the last template)."""
  names = [t for t, d in ds.TASK_TO_DATASET.items() if d == spec.name]
  if every:
    return names
  last = len(spec.templates) - 1
  keep = {ds.default_train_task(spec), ds.train_task(spec.name, 1),
          ds.default_train_task(spec, "five_shot"), ds.ablation_task(spec.name, "no_template"),
          ds.ablation_task(spec.name, "dataset_name"), ds.eval_task(spec.name, 0),
          ds.eval_task(spec.name, last), ds.eval_task(spec.name, 0, "one_shot"),
          ds.scoring_task(spec.name, 0), ds.scoring_task(spec.name, 0, no_options=True),
          ds.scoring_task(spec.name, 0, shot="five_shot")}
  return [n for n in names if n in keep]


def check_well_formed(name: str, split: str) -> None:
  exs = examples(name, split, n=2)
  assert exs, name
  for ex in exs:
    assert ex["targets"].dtype == np.int32 and ex["targets"][-1] == 1  # EOS
    assert ex["inputs"][-1] == 1 and len(ex["inputs"]) > 1
    decoded = DEFAULT_VOCABULARY.decode(ex["targets"].tolist())
    if len(ex["targets"]) < LENGTHS["targets"]:
      assert decoded == text(ex, "targets"), name
    else:  # trimmed to the sequence length (long mock text): a prefix survives
      assert text(ex, "targets").startswith(decoded[:-1]), name


@functools.cache
def text_builder(class_name: str, count: int, prefix: str = "question") -> type:
  """A TFDS builder class ``class_name`` (registered with TFDS once per process) of ``count``
  train examples ``{"inputs": f"{prefix} {i}", "targets": f"answer {i}"}``."""
  import tensorflow_datasets as tfds

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {"inputs": tfds.features.Text(), "targets": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(count):
      yield i, {"inputs": f"{prefix} {i}", "targets": f"answer {i}"}

  return type(class_name, (tfds.core.GeneratorBasedBuilder,), {
      "VERSION": tfds.core.Version("1.0.0"), "_info": _info,
      "_split_generators": _split_generators, "_generate_examples": _generate_examples})
