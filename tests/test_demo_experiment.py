"""The demo's experiment: honesty rules, bootstrap intervals, and a shortened end-to-end run."""

import dataclasses
import json
import random

import numpy as np
import pytest
import scipy.stats

from flan_jax import demo_experiment as de
from flan_jax.data import registry
from flan_jax.data import spec as ds
from flan_jax.data.templates import T


@pytest.fixture(scope="module", autouse=True)
def _registered():
  registry.ensure_registered()


def _spec(name):
  return ds.DATASETS[name]


def test_the_demo_heldout_cluster_keeps_every_honesty_rule():
  assert de.honesty_violations("nli") == []
  train = {s.name for s in de.mixing.training_specs("offline", "nli")}
  assert "world_passage_yesno" in train and not train & {"world_nli", "world_entailment"}


def test_honesty_check_finds_planted_violations():
  reviews = _spec("world_reviews")
  nli_template = _spec("world_nli").templates[0].inputs
  planted = {
      "field": dataclasses.replace(reviews, fields=(*reviews.fields, "premise")),
      "word": dataclasses.replace(reviews, templates=(T("Premise: {text}\n\n{options_}"),)),
      # An NLI template with other field names is still an NLI template.
      "template": dataclasses.replace(reviews, templates=(
          T(nli_template.replace("premise", "text").replace("hypothesis", "text")),)),
      "vocabulary": dataclasses.replace(reviews,
                                        options=("negative", "it is not possible to tell")),
  }
  expected = {"field": "held-out field", "word": "names held-out field",
              "template": "is a held-out template", "vocabulary": "target vocabulary"}
  for kind, spec in planted.items():
    found = de.honesty_violations("nli", [spec])
    assert any(expected[kind] in v for v in found), (kind, found)
  assert de.honesty_violations("nli", [reviews]) == []


def test_train_and_eval_prompts():
  specs = de.mixing.training_specs("offline", "nli")
  pairs = de.training_pairs(specs, "instructions", 5, random.Random(0))
  assert len(pairs) == 5 * len(specs)
  assert not any("premise" in x.lower() or "hypothesis" in x.lower() for x, _ in pairs)
  sets = de.eval_sets("nli", n=10)
  assert [s.name for s in sets] == ["world_nli", "world_entailment"]
  assert sets[0].chance == pytest.approx(1 / 3) and sets[1].chance == pytest.approx(1 / 2)
  context, options, answer = sets[1].rows[0][0]
  assert context.endswith("OPTIONS:\n- yes\n- no") and options[answer] in ("yes", "no")
  named = de.eval_sets("nli", "dataset_name", n=10)
  assert len(named[0].rows) == 1 and named[0].rows[0][0][0].startswith("[")


def test_bootstrap_of_one_seed_matches_scipy_percentile_interval():
  x = (np.random.default_rng(1).random(300) < 0.6).astype(float)
  mean, low, high = de.bootstrap([[x]], num_samples=4000)
  ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                              random_state=0).confidence_interval
  assert mean == pytest.approx(x.mean())
  assert low == pytest.approx(ref.low, abs=0.012) and high == pytest.approx(ref.high, abs=0.012)


def test_bootstrap_resamples_seeds_and_pairs_the_difference():
  a, b = np.ones(50), np.zeros(50)
  # Seeds that disagree: the interval spans both seeds' values.
  mean, low, high = de.bootstrap([[a], [b]], num_samples=500)
  assert mean == 0.5 and low == 0.0 and high == 1.0
  # A model against itself: a paired difference of exactly zero.
  x = (np.random.default_rng(2).random(80) < 0.5).astype(float)
  assert de.bootstrap([[x]], 300, baseline=[[x]]) == (0.0, 0.0, 0.0)
  # Two datasets: the cluster mean is their mean, not the pooled mean.
  assert de.bootstrap([[np.ones(10), np.zeros(90)]], 10)[0] == 0.5


def test_cluster_counts_end_with_all_clusters():
  n = len(de.training_clusters("nli"))
  counts = de.cluster_counts("nli")
  assert counts[0] == 1 and counts[-1] == n and counts == sorted(set(counts))


def test_smoke_run_of_the_demo_experiment(tmp_path):
  """The whole procedure at the smoke budget: pretrain, tune, score tuned and untuned, report."""
  out = de.main(["--preset", "smoke", "--seeds", "1", "--output_dir", str(tmp_path),
                 "--no_progress"])
  with open(out["main"]["json"]) as f:
    (summary,) = json.load(f)
  assert summary["datasets"] == ["world_nli", "world_entailment"]
  assert summary["chance"] == pytest.approx(100 * (1 / 3 + 1 / 2) / 2)
  for key in ("tuned", "untuned"):
    mean, low, high = summary[key]
    assert 0 <= low <= mean <= high <= 100
  assert summary["difference"][0] == pytest.approx(summary["tuned"][0] - summary["untuned"][0])
  assert len(summary["tuned_per_seed"]) == 1
  assert (tmp_path / "demo.png").stat().st_size > 0
  assert "| all clusters |" in (tmp_path / "demo.md").read_text()


def test_mixing_weights_scale_each_dataset_s_share():
  specs = de.mixing.training_specs("offline", "nli")
  budget = de.Budget(weights=(("reading_comprehension", 3), ("world_passage_yesno", 2)))
  weights = {s.name: budget.weight(s) for s in specs}
  assert weights["world_passage_yesno"] == 6 and weights["world_passage_qa"] == 3
  assert weights["world_reviews"] == 1
  pairs = de.training_pairs(specs, "instructions", 5, random.Random(0), weights)
  assert len(pairs) == 5 * (len(specs) - 3) + 5 * (3 + 3 + 6)
  yesno = {x for x, _ in pairs if "Based on the paragraph above, answer the question" in x}
  assert 0 < len(yesno) <= 30  # only world_passage_yesno has that template: up to 6 x 5 pairs
  # More than the train split: it cycles through the split (each copy under a random template).
  split = len(de.world.examples("world_passage_yesno", "train"))
  many = de.training_pairs([_spec("world_passage_yesno")], "instructions", split, random.Random(0),
                           {"world_passage_yesno": 2})
  assert len(many) == 2 * split


def test_mixing_weights_are_parsed_and_checked():
  assert de.parse_weights("reading_comprehension=3, world_qa=0.5") == (
      ("reading_comprehension", 3.0), ("world_qa", 0.5))
  for bad in ("reading_comprehension", "=2", "world_qa=x"):
    with pytest.raises(ValueError, match="name=multiplier"):
      de.parse_weights(bad)
  with pytest.raises(ValueError, match="not training clusters or datasets"):
    de.run("nli", [0], de.Budget(weights=(("nli", 2.0),)), log=lambda _: None)
