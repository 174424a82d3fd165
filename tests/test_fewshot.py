"""Few-shot variants: the reference's shot counts, the one/five/multi aliases, and training
exemplars with mixed templates (the reference) vs the query's template (eval)."""

from __future__ import annotations

import seqio

from flan_jax.data import preprocessors as prep
from flan_jax.data import registry
from flan_jax.data import spec as ds
from tests.helpers import examples, text

registry.ensure_registered()

# A phrase unique to each world_nli template (offline suite), to tell which one rendered a block.
MARKERS = ("Based on the paragraph above", "Premise:", "Read the text and decide",
           "Write a sentence that follows", "Can we conclude that", "Can we infer that")
ALL_TEMPLATES = f"world_nli_{len(ds.DATASETS['world_nli'].templates)}templates"  # all of them


def _template_of(block: str) -> int:
  (hit,) = [i for i, m in enumerate(MARKERS) if m in block]
  return hit


def _blocks(ex: dict) -> tuple[list[str], str]:
  prompt = text(ex, "inputs")
  parts = prompt.split(prep.FEWSHOT_EXAMPLE_SEP)
  return parts[:-1], parts[-1]


def test_reference_shot_counts_and_aliases():
  assert ds.SHOTS == {"1_shot": 1, "2_shot": 2, "3_shot": 3, "5_shot": 5, "10_shot": 10,
                      "16_shot": 16}  # flan/few_shot.py ShotConfig (MULTI = 16)
  for k in ds.SHOTS:
    assert seqio.get_mixture_or_task(f"rte_type_0_scoring_eval_{k}")
    assert seqio.get_mixture_or_task(f"rte_10templates_{k}")
  for alias, canonical in ds.SHOT_ALIASES.items():
    assert (seqio.get_mixture_or_task(f"rte_type_2_{alias}")
            is seqio.get_mixture_or_task(f"rte_type_2_{canonical}"))
    assert ds.TASK_TO_DATASET[f"rte_10templates_{alias}"] == "rte"
    assert seqio.get_mixture_or_task(f"flan_heldout_nli_eval_{alias}")
  assert ds.shot_name("five_shot") == "5_shot"


def test_training_exemplars_mix_templates_eval_exemplars_follow_the_query():
  mixed = 0
  for ex in examples(f"{ALL_TEMPLATES}_3_shot", "train", n=8, seed=1):
    blocks, query = _blocks(ex)
    assert _template_of(query) == int(ex["template_idx"])
    mixed += any(_template_of(b) != int(ex["template_idx"]) for b in blocks)
  assert mixed, "training exemplars should use their own templates"
  for ex in examples("world_nli_type_1_3_shot", "test", n=4):
    blocks, query = _blocks(ex)
    assert blocks and all(_template_of(b) == 1 for b in blocks + [query])


def test_mixed_templates_flag_off_uses_query_template():
  spec = ds.DATASETS["world_nli"]
  builder = ds._Builder(spec)
  queries = builder.pool(spec.templates)().take(6).map(
      lambda e: {"inputs": e["inputs_all"][2], "targets": e["targets_all"][2],
                 prep.TEMPLATE_IDX_KEY: 2})
  for flag in (False, True):
    out = list(builder.fewshot("3_shot", mixed_templates=flag)(queries).as_numpy_iterator())
    used = {_template_of(b) for ex in out for b in _blocks(
        {"inputs_pretokenized": ex["inputs"]})[0]}
    assert used == {2} if not flag else len(used) > 1, (flag, used)
