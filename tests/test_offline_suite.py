"""The embedded offline suite: registration, well-formed examples, determinism, few-shot."""

import json

import pytest
import seqio
import tensorflow as tf

from flan_jax import export_data
from flan_jax.data import mixing, registry
from flan_jax.data import preprocessors as prep
from flan_jax.data import spec as ds
from flan_jax.data.offline import world
from flan_jax.data.vocab import DEFAULT_VOCABULARY
from tests.helpers import check_well_formed, examples, no_network, text, variant_names

registry.ensure_registered()
ALL_NLI = f"world_nli_{len(ds.DATASETS['world_nli'].templates)}templates"  # every template
OFFLINE = mixing.suite_specs("offline")


def test_suite_shape():
  clusters = {s.cluster for s in OFFLINE}
  assert len(clusters) >= 4
  for c in clusters:
    members = [s for s in OFFLINE if s.cluster == c]
    assert len(members) >= 2, c
  assert any(s.is_classification for s in OFFLINE)
  assert any(not s.is_classification for s in OFFLINE)
  assert all(len(s.templates) >= 3 for s in OFFLINE)


def _asked_about(question: str) -> str:
  return next(p.name for p in world.people() if p.name in question.replace("'s", " ").split())


def test_world_generation_is_deterministic_and_consistent():
  assert world.examples("world_qa", "train") == world.examples("world_qa", "train", world.SEED)
  facts = {p.name: p.facts for p in world.people()}
  test_people = {p.name for p in world._split_people("test", world.SEED)}
  for ex in world.examples("world_qa", "test"):
    name = _asked_about(ex["question"])
    assert name in test_people  # closed-book QA asks about unseen people at test time
    assert ex["answer"] in facts[name].values()
  assert all(_asked_about(ex["question"]) not in test_people
             for ex in world.examples("world_qa", "train"))


@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_each_variant_kind_yields_tokenized_examples(spec):
  with no_network():
    names = variant_names(spec, every=False)
    assert len(names) >= 8
    for name in names:
      check_well_formed(name, "validation")


@pytest.mark.slow
@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_every_variant_yields_tokenized_examples(spec):
  for name in variant_names(spec, every=True):
    check_well_formed(name, "validation")


def test_rank_classification_rows():
  exs = examples("world_nli_type_0_scoring_eval", "test", n=9)
  by_example = {}
  for ex in exs:
    by_example.setdefault(int(ex["idx"][0]), []).append(ex)
  first = by_example[0]
  assert [int(e["idx"][1]) for e in first] == [0, 1, 2]
  assert [text(e, "targets") for e in first] == list(world.NLI_OPTIONS)
  assert sum(bool(e["is_correct"]) for e in first) == 1
  assert len({text(e, "inputs") for e in first}) == 1
  assert text(first[0], "inputs").endswith(
      "OPTIONS:\n- yes\n- it is not possible to tell\n- no")
  no_opts = examples("world_nli_type_0_scoring_eval_no_options", "test", n=1)[0]
  assert "OPTIONS" not in text(no_opts, "inputs")


def _train_rows(seed):
  return [(text(e, "inputs"), int(e["template_idx"]))
          for e in examples(ALL_NLI, "train", n=40, seed=seed, shuffle=True)]


def test_same_seed_same_examples_and_templates_other_seed_changes_assignment():
  a, b = _train_rows(7), _train_rows(7)
  assert a == b
  assert len({t for _, t in a}) > 1  # several templates in use
  c = examples(ALL_NLI, "train", n=40, seed=8, shuffle=False)
  d = examples(ALL_NLI, "train", n=40, seed=7, shuffle=False)
  # Same source order, different seed: the template assignment changes.
  assert [int(e["template_idx"]) for e in c] != [int(e["template_idx"]) for e in d]


def test_few_shot_excludes_query_and_respects_budget():
  spec = ds.DATASETS["world_qa"]
  builder = ds._Builder(spec)
  budget = 60
  pool = builder.pool(spec.templates)
  # Queries drawn from the train split itself, so the pool contains each query.
  queries = pool().take(30).map(lambda e: {"inputs": e["inputs_all"][0],
                                           "targets": e["targets_all"][0],
                                           prep.TEMPLATE_IDX_KEY: tf.constant(0, tf.int32)})
  fewshot = prep.fewshot(lambda: pool().take(8), num_shots=5, vocabulary=DEFAULT_VOCABULARY,
                         max_input_tokens=budget, seed=0)
  shots_seen = set()
  for q, ex in zip(queries.as_numpy_iterator(), fewshot(queries).as_numpy_iterator(), strict=True):
    prompt = ex["inputs"].decode()
    query = q["inputs"].decode()
    assert prompt.endswith(query)
    blocks = prompt[: -len(query)].split(prep.FEWSHOT_EXAMPLE_SEP)[:-1]
    assert len(blocks) == ex["num_shots"]
    exemplar = query + prep.FEWSHOT_INPUT_SEP + q["targets"].decode()
    assert exemplar not in blocks  # never its own exemplar
    assert len(DEFAULT_VOCABULARY.encode(prompt)) <= budget or ex["num_shots"] == 0
    shots_seen.add(int(ex["num_shots"]))
  assert shots_seen - {0}, "budget should still admit some exemplars"
  assert max(shots_seen) < 5, "a 60-token budget must prune some of the 5 exemplars"


def test_registered_few_shot_tasks_use_query_template():
  for ex in examples(f"{ALL_NLI}_five_shot", "train", n=6, seed=3):
    prompt = text(ex, "inputs")
    assert ex["num_shots"] == 5
    assert len(DEFAULT_VOCABULARY.encode(prompt)) <= ds.FEWSHOT_MAX_INPUT_TOKENS


def test_mixtures_exist_with_rates():
  for spec in OFFLINE:
    train = seqio.get_mixture_or_task(f"demo_heldout_{spec.cluster}_train")
    assert all(ds.TASK_TO_DATASET[t.name] != spec.name for t in train.tasks)
    evaluation = seqio.get_mixture_or_task(f"demo_heldout_{spec.cluster}_eval")
    assert any(ds.TASK_TO_DATASET[t.name] == spec.name for t in evaluation.tasks)
    assert all(train.get_rate(t) == 1500 for t in train.tasks)


def test_export_jsonl_offline(tmp_path):
  out = tmp_path / "mix.jsonl"
  with no_network():
    n = export_data.export("demo_heldout_nli_train", "train", str(out), num_examples=50,
                           progress=False)
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert n == len(rows) == 50
  assert {"inputs", "targets", "task", "template_idx"} <= set(rows[0])
  train = seqio.get_mixture_or_task("demo_heldout_nli_train")
  assert {r["task"] for r in rows} <= {t.name for t in train.tasks}
  assert len({r["task"] for r in rows}) > 3
  answered = [r for r in rows if "options" in r and not ds.DATASETS[
      ds.TASK_TO_DATASET[r["task"]]].templates[r["template_idx"]].turned]
  assert answered and all(r["targets"] in r["options"] for r in answered)
  evaluation = tmp_path / "eval.jsonl"
  export_data.export("demo_heldout_nli_eval", "test", str(evaluation), progress=False)
  eval_rows = [json.loads(line) for line in evaluation.read_text().splitlines()]
  expected = sum(len(ds.eval_tasks(s)) * world.SPLIT_SIZES["test"] * len(s.options)
                 for s in mixing.cluster_specs("offline", "nli"))  # one row per option
  assert len(eval_rows) == expected
  assert all("is_correct" in r for r in eval_rows)


@pytest.mark.parametrize("name", ["world_nli_type_99", "demo_heldout_nlii_train"])
def test_unknown_name_lists_close_matches(name):
  with pytest.raises(registry.UnknownNameError) as e:
    registry.get(name)
  message = str(e.value)
  assert name in message and "Did you mean" in message
  assert ("world_nli_type_" in message) or ("demo_heldout_nli_train" in message)
