"""Flan 2021 in its Flan 2022 form: every trainable 2021 config with its own templates and
preprocessing, but the train split without the 30k slicing (the cap moves into the rate)."""

import re

from flan_jax.data import mixing, sizes
from flan_jax.data import prompt_modes as pm
from flan_jax.data.spec import DatasetSpec, TfdsSource, _Builder
from flan_jax.tasks.flan2022 import registry

_HEAD_SLICE = re.compile(r"^(\w+)\[:\d+\]$")  # "train[:30000]" -> "train"; "[:-200]" is kept


def unsliced(split: str) -> str:
  """The split without a leading-examples slice (``train[:30000]`` -> ``train``)."""
  match = _HEAD_SLICE.match(split)
  return match.group(1) if match else split


def _task(spec: DatasetSpec) -> registry.Flan2022Task:
  old = spec.source
  splits = {**old.split_map, "train": unsliced(old.split_map["train"])}
  source = TfdsSource(old.tfds_dataset.name, splits, old.note)
  size = sizes.num_examples(old.tfds_dataset.name, splits["train"])
  head = (*_Builder(spec).head, pm.candidates_from_patterns(spec.templates, spec.fields))
  return registry.Flan2022Task(f"flan2021_{spec.name}", "flan2021", source, head, size)


for _spec in mixing.training_specs("flan", None):
  registry.register(_task(_spec))
