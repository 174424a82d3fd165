"""Registry-wide leak check: no task trains on, or draws few-shot exemplars from, the rows a
dataset is evaluated on (issue 27: WSC273 trained on, and drew exemplars from, its test split).

Evaluation reads each dataset's ``test`` split (``flan-jax eval``'s default). Training tasks and
every few-shot exemplar pool read ``train``. So for every dataset: its ``train`` rows and its
``test`` rows are disjoint, or it has no ``train`` split, is marked ``eval_only`` and no training
mixture (FLAN 2021 or Flan 2022) holds any task of it. TFDS splits are compared as the example
ranges TFDS resolves from the split specs (sizes from the static table); in-memory sources by
their rows.
"""

from __future__ import annotations

import dataclasses

import pytest
import seqio

from flan_jax.data import registry, sizes
from flan_jax.data import spec as ds
from flan_jax.mixtures import flan2022  # noqa: F401 - registers the Flan 2022 tasks and mixtures
from flan_jax.tasks.flan2022 import registry as f22

registry.ensure_registered()

EVAL_SPLIT = "test"
READS_TRAIN = ("train",)  # every training task and every few-shot exemplar pool


def _tfds_overlap(source: ds.TfdsSource, a: str, b: str) -> int:
  """How many examples splits ``a`` and ``b`` of a TFDS source share."""
  spec_a, spec_b = source.split_map[a], source.split_map[b]
  if sizes.split_name(spec_a) != sizes.split_name(spec_b):
    return 0
  name = source.tfds_dataset.name
  full = sizes.full_size(name, spec_a)
  assert full is not None, (
      f"{name}: {spec_a!r} and {spec_b!r} slice the same split; add its size to "
      "flan_jax/data/sizes.py SPLIT_SIZES so that the leak check can compare them.")
  ranges_a, ranges_b = sizes.split_ranges(spec_a, full), sizes.split_ranges(spec_b, full)
  return sum(len(range(max(x.start, y.start), min(x.stop, y.stop)))
             for x in ranges_a for y in ranges_b)


def _rows(source: seqio.DataSource, split: str) -> set[tuple]:
  data = source.get_dataset(split=split, shuffle=False)
  return {tuple(sorted((k, repr(v)) for k, v in ex.items())) for ex in data.as_numpy_iterator()}


def _overlap(source: seqio.DataSource, a: str, b: str) -> int:
  if isinstance(source, ds.TfdsSource):
    return _tfds_overlap(source, a, b)
  return len(_rows(source, a) & _rows(source, b))


def _training_mixtures() -> list[str]:
  """Every registered mixture that trains: FLAN's ``*_train*`` and all of Flan 2022's."""
  return [m for m in seqio.MixtureRegistry.names()
          if "_train" in m or m.startswith(f22.PREFIX)]


def _trained_datasets() -> dict[str, set[str]]:
  """dataset -> the training mixtures holding one of its tasks (Flan 2022's ``flan2021_{d}``
  tasks included)."""
  flan2021 = {t.task_name(m): name.removeprefix("flan2021_") for name, t in f22.TASKS.items()
              if t.source == "flan2021" for m in t.modes}
  held: dict[str, set[str]] = {}
  for mixture in _training_mixtures():
    for task in seqio.get_mixture_or_task(mixture).tasks:
      dataset = ds.TASK_TO_DATASET.get(task.name) or flan2021.get(task.name)
      if dataset:
        held.setdefault(dataset, set()).add(mixture)
  return held


TRAINED = _trained_datasets()


# The embedded offline suite samples each split's rows at random from one small synthetic world
# (flan_jax/data/offline/world.py), so identical rows land in train and test: of 200 test rows,
# data_to_text 172, entailment 51, paraphrase 110, posts 3, reviews 2, same_facts 74 and
# triples_to_text 198 are train rows too. Known and open (strict: passes once fixed).
OFFLINE_OVERLAP = ("world_data_to_text", "world_entailment", "world_paraphrase", "world_posts",
                   "world_reviews", "world_same_facts", "world_triples_to_text")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="offline world rows repeat"))
    if n in OFFLINE_OVERLAP else n for n in sorted(ds.DATASETS)])
def test_train_and_exemplar_rows_are_not_the_evaluated_rows(name):
  spec = ds.DATASETS[name]
  readers = [v.task for v in ds.DATASET_VARIANTS[name] if v.kind == "train" or v.shot]
  if not spec.has_train_split:
    assert spec.eval_only, f"{name} has no train split but is not marked eval_only"
    assert not readers, f"{name} has no train split, yet {readers[:3]} read one"
    assert name not in TRAINED, f"eval-only {name} is in {sorted(TRAINED[name])[:3]}"
    return
  shared = _overlap(spec.source, "train", EVAL_SPLIT)
  assert shared == 0, (f"{name}: {shared} of the rows it is evaluated on are in its train split, "
                       f"which {len(readers)} tasks (training, few-shot exemplars) read")
  if spec.eval_only:
    assert name not in TRAINED, f"eval-only {name} is in {sorted(TRAINED[name])[:3]}"


@pytest.mark.parametrize("name", sorted(n for n, t in f22.TASKS.items()
                                        if t.source == "flan2021" and
                                        n.removeprefix("flan2021_") in ds.DATASETS))
def test_flan2022_versions_of_flan2021_datasets_do_not_train_on_their_test_rows(name):
  """Flan 2022 drops the 30k train slice; one TFDS split sliced into train and test must keep
  it (as the reference keeps those configs' splits)."""
  spec = ds.DATASETS[name.removeprefix("flan2021_")]
  source = f22.TASKS[name].data_source
  test_only = ds.TfdsSource(spec.source.tfds_dataset.name,
                            {"train": source.split_map["train"],
                             EVAL_SPLIT: spec.source.split_map[EVAL_SPLIT]})
  assert _tfds_overlap(test_only, "train", EVAL_SPLIT) == 0


def test_wsc273_is_evaluation_only_with_no_exemplars():
  spec = ds.DATASETS["wsc273"]
  assert list(spec.source.splits) == [EVAL_SPLIT]
  assert spec.eval_only and not spec.has_train_split
  assert ds.eval_tasks(spec, "1_shot") == [] and ds.eval_tasks(spec)
  registered = set(seqio.TaskRegistry.names())
  assert not any(t.startswith("wsc273_") and ("shot" in t or "templates" in t)
                 for t in registered)
  assert {"wsc273_type_0_scoring_eval", "wsc273_dataset_name_scoring_eval"} <= registered


def test_a_dataset_without_a_train_split_must_be_eval_only():
  spec = ds.DATASETS["wsc273"]
  with pytest.raises(ValueError, match=r"no 'train' split.*eval_only=True"):
    ds.register_dataset(dataclasses.replace(spec, name="wsc273_copy", eval_only=False))
