"""The untuned baseline's GPT-3-style continuation prompts (``continuations_*`` tasks), their
eval mixtures and the report's baseline column."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from flan_jax.data import registry
from flan_jax.data import spec as ds
from flan_jax.data import templates as tmpl
from flan_jax.evaluation import report
from tests.helpers import examples
from tests.test_flan_forms import _as_dataset, rendered

registry.ensure_registered()

# google-research/FLAN baseline_templates.PATTERNS keys, as flan_jax dataset names.
REFERENCE_BASELINE = (
    ["anli_r1", "anli_r2", "anli_r3", "cb", "rte", "arc_easy", "arc_challenge", "bool_q",
     "openbookqa", "copa", "hellaswag", "piqa", "story_cloze", "record", "winogrande",
     "common_gen", "dart", "e2e_nlg", "web_nlg_en", "para_crawl_enes", "wmt14_enfr",
     "natural_questions", "trivia_qa", "wsc273", "multirc"]
    + [f"wmt16_translate_{x}en" for x in ("cs", "de", "fi", "ro", "ru", "tr")])


@pytest.mark.parametrize("name", REFERENCE_BASELINE)
def test_continuation_tasks_exist_for_reference_baseline_datasets(name):
  spec = ds.DATASETS[name]
  assert spec.continuations
  for i, t in enumerate(spec.continuations):
    task = ds.continuation_task(spec, i)
    assert ds.TASK_TO_DATASET[task] == name
    assert task == f"continuations_{name}_type_{i}" + ("_scoring_eval"
                                                       if spec.is_classification else "")
    assert not t.has_options and tmpl.OPTIONS_HEADER not in t.inputs


RTE = {"premise": ["The cat sat on the mat."], "hypothesis": ["A cat is sitting."],
       "label": [0], "idx": [0]}


def test_rte_continuation_rows_use_true_false():
  rows = rendered("continuations_rte_type_0_scoring_eval", RTE)
  assert [t for _, t in rows] == ["true", "false"]  # label 0 = entailment = yes -> "true"
  inputs = rows[0][0]
  assert inputs == "The cat sat on the mat.\nClaim: A cat is sitting.\nThe claim is"
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset(RTE)):
    exs = examples("continuations_rte_type_0_scoring_eval", "test", n=4)
  assert [bool(e["is_correct"]) for e in exs] == [True, False]


MULTIRC = {"paragraph": ["Ann fed the cat .  Then she slept ."],
           "question": ["Who fed the cat?"], "answer": ["Ann"], "label": [1],
           "idx": {"paragraph": [3], "question": [7], "answer": [0]}}


def test_multirc_continuation_states_the_candidate_and_scores_no_yes():
  rows = rendered("continuations_multirc_type_0_scoring_eval", MULTIRC)
  assert [t for _, t in rows] == ["no", "yes"]
  assert rows[0][0] == ("Ann fed the cat .  Then she slept .\n\nQuestion: Who fed the cat?\n"
                        "Suggested answer: Ann\nIs the suggested answer right (yes or no)?")
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset(MULTIRC)):
    exs = examples("continuations_multirc_type_0_scoring_eval", "test", n=4)
  assert [bool(e["is_correct"]) for e in exs] == [False, True]  # label 1: the candidate is right


def test_translation_continuations_both_directions():
  wmt = {"de": ["Guten Morgen."], "en": ["Good morning."]}
  assert rendered("continuations_wmt16_translate_deen_type_0", wmt) == [
      ("English: Good morning.\nGerman:", "Guten Morgen.")]
  assert rendered("continuations_wmt16_translate_deen_type_1", wmt) == [
      ("German: Guten Morgen.\nEnglish:", "Good morning.")]


def test_continuation_eval_mixture_per_cluster():
  mix = registry.get("flan_heldout_nli_eval_continuations")
  names = {t.name for t in mix.tasks}
  assert "continuations_rte_type_0_scoring_eval" in names
  # Datasets without continuation prompts keep their instruction templates.
  assert ds.scoring_task("qnli", 0) in names and not any("continuations_qnli" in n for n in names)
  demo = {t.name for t in registry.get("demo_heldout_nli_eval_continuations").tasks}
  assert demo == {"continuations_world_nli_type_0_scoring_eval",
                  "continuations_world_entailment_type_0_scoring_eval"}


def test_report_baseline_column_from_continuation_prompts():
  tuned = {ds.scoring_task("world_nli", i): {"accuracy": 50.0 + i} for i in range(3)}
  untuned = {"continuations_world_nli_type_0_scoring_eval": {"accuracy": 37.5}}
  rep = report.build_report(tuned, baselines={"untuned": untuned})
  (row,) = [r for r in rep.datasets if r.dataset == "world_nli"]
  assert row.setting == report.ZERO_SHOT and row.mean == pytest.approx(51.0)
  assert row.baselines == {"untuned": pytest.approx(37.5)}
  assert "untuned" in report.to_markdown(rep)
  assert report.parse_task("continuations_world_nli_type_0_scoring_eval").setting == (
      report.CONTINUATIONS)
