"""The paper-style report: task parsing, per-dataset/cluster statistics, outputs, seqio logs."""

import json
import math

import pytest
import seqio

from flan_jax.data import registry
from flan_jax.data.spec import DATASETS
from flan_jax.evaluation import paper_results
from flan_jax.evaluation import report as report_lib

registry.ensure_registered()


def _acc(values, prefix, suffix="_scoring_eval", key="accuracy"):
  return {f"{prefix}_type_{i}{suffix}": {key: v} for i, v in enumerate(values)}


# anli_r1 test best is template 0 (40) but dev picks template 2; rte dev picks template 0.
TEST = {
    **_acc([40.0, 30.0, 35.0], "anli_r1"),
    **_acc([70.0, 80.0, 90.0], "rte"),
    **_acc([60.0, 70.0, 80.0], "world_nli"),
    **_acc([10.0, 20.0, 30.0, 40.0], "world_qa", suffix=""),
    "world_passage_qa_type_0": {"accuracy": 50.0},
    "world_passage_qa_type_4": {"rouge1": 20.0, "rouge2": 5.0, "rougeLsum": 12.0},  # turned
    "wmt14_enfr_type_0": {"bleu": 20.0},
    "wmt14_enfr_type_1": {"bleu": 30.0},
    "wmt14_enfr_type_7": {"bleu": 10.0},  # turned: Fr->En
    "anli_r1_type_0_scoring_eval_no_options": {"accuracy": 38.0},
    "anli_r1_type_1_scoring_eval_no_options": {"accuracy": 36.0},
    "anli_r1_type_0": {"accuracy": 20.0},
    "anli_r1_dataset_name_scoring_eval": {"accuracy": 41.0},
    "world_qa_type_0_one_shot": {"accuracy": 44.0},
}
DEV = {
    **_acc([30.0, 20.0, 50.0], "anli_r1"),
    **_acc([65.0, 60.0, 55.0], "rte"),
}
UNTUNED = {
    **_acc([33.0, 34.0, 35.0], "anli_r1"),
    **_acc([50.0, 60.0], "rte"),  # only two templates
    "world_qa_type_0": {"accuracy": 5.0},
}
CHANCE = {"anli_r1": 100.0 / 3, "rte": 50.0, "world_qa": 7.0}


@pytest.fixture(scope="module")
def report():
  return report_lib.build_report(TEST, dev_results=DEV, baselines={"untuned": UNTUNED},
                                 chance=CHANCE)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("task,dataset,template,turned,scoring,setting", [
    ("anli_r1_type_3_scoring_eval", "anli_r1", 3, False, True, "zero_shot"),
    ("anli_r1_type_3_scoring_eval_five_shot", "anli_r1", 3, False, True, "5_shot"),
    ("anli_r1_type_3_scoring_eval_10_shot", "anli_r1", 3, False, True, "10_shot"),
    ("anli_r1_type_0_2_shot", "anli_r1", 0, False, False, "generative_2_shot"),
    ("anli_r1_type_3_scoring_eval_no_options", "anli_r1", 3, False, True, "no_options"),
    ("anli_r1_type_3", "anli_r1", 3, False, False, "generative"),
    ("anli_r1_type_9", "anli_r1", 9, True, False, "zero_shot"),
    ("anli_r1_type_2_multi_shot", "anli_r1", 2, False, False, "generative_16_shot"),
    ("world_qa_type_1_one_shot", "world_qa", 1, False, False, "1_shot"),
    ("wmt14_enfr_type_7", "wmt14_enfr", 7, True, False, "zero_shot"),
    ("rte_no_template_scoring_eval", "rte", 0, False, True, "no_template"),
    ("rte_dataset_name", "rte", 0, False, False, "generative_dataset_name"),
    ("trivia_qa_dataset_name", "trivia_qa", 0, False, False, "dataset_name"),
])
def test_parse_task(task, dataset, template, turned, scoring, setting):
  p = report_lib.parse_task(task)
  assert (p.dataset, p.template, p.turned, p.scoring, p.setting) == (
      dataset, template, turned, scoring, setting)
  assert p.row_key == dataset + (":turned" if turned else "")


@pytest.mark.parametrize("task", ["nonexistent_type_0", "anli_r1_type_9_scoring_eval",
                                  "anli_r1_type_0_scoring"])
def test_unknown_task_raises_naming_it(task):
  with pytest.raises(report_lib.UnknownTaskError, match=task):
    report_lib.build_report({task: {"accuracy": 1.0}})


def test_training_task_is_not_an_eval_task():
  with pytest.raises(report_lib.UnknownTaskError, match="not an eval task"):
    report_lib.parse_task("anli_r1_10templates")


@pytest.mark.parametrize("dataset,scoring,turned,metric", [
    ("anli_r1", True, False, "accuracy"),
    ("multirc", True, False, "f1"),  # rank classification's F1 of "yes" over all rows = F1a
    ("multirc", False, False, "f1a"),
    ("cb", False, False, "accuracy"),
    ("natural_questions", False, False, "em"),
    ("drop", False, False, "f1"),
    ("drop", False, True, "rougeLsum"),
    ("wmt14_enfr", False, True, "bleu"),
    ("cnn_dailymail", False, False, "rougeLsum"),
    ("fix_punct", False, False, "mean_edit"),
])
def test_primary_metric(dataset, scoring, turned, metric):
  assert report_lib.primary_metric(dataset, scoring=scoring, turned=turned) == metric


# ----------------------------------------------------------------------------- statistics


def test_dataset_statistics_and_best_dev(report):
  r = report.dataset("anli_r1")
  assert r.templates == {0: 40.0, 1: 30.0, 2: 35.0}
  assert r.mean == pytest.approx(35.0)
  assert r.std == pytest.approx(math.sqrt(50.0 / 3))  # population std: (25 + 25 + 0) / 3
  assert (r.min, r.max, r.num_templates) == (30.0, 40.0, 3)
  assert r.best_dev_template == 2 and r.best_dev == 35.0  # not test-best template 0 (40.0)
  assert r.dev_templates == {0: 30.0, 1: 20.0, 2: 50.0}
  assert r.baselines == {"untuned": pytest.approx(34.0)}
  assert r.chance == pytest.approx(100.0 / 3)
  assert r.metric == "accuracy" and r.cluster == "nli" and r.suite == "flan"
  rte = report.dataset("rte")
  assert (rte.mean, rte.best_dev_template, rte.best_dev) == (80.0, 0, 70.0)
  assert rte.baselines["untuned"] == pytest.approx(55.0)  # over the baseline's 2 templates


def test_paper_columns_for_flan_datasets(report):
  r = report.dataset("anli_r1")
  assert (r.paper.flan_zero_shot, r.paper.gpt3_zero_shot, r.paper.gpt3_few_shot) == (
      47.7, 34.6, 36.8)
  assert report.dataset("rte").paper.is_recalled("flan_best_dev")
  assert report.dataset("world_nli").paper is None
  assert report.dataset("anli_r1", "no_options").paper is None  # zero-shot rows only


def test_cluster_averages(report):
  nli = report.cluster("nli")
  assert nli.all.datasets == ["anli_r1", "rte"]
  assert nli.all.mean == pytest.approx((35.0 + 80.0) / 2)
  assert nli.all.best_dev == pytest.approx((35.0 + 70.0) / 2)
  assert nli.all.baselines == {"untuned": pytest.approx((34.0 + 55.0) / 2)}
  assert nli.all.chance == pytest.approx((100.0 / 3 + 50.0) / 2)
  assert (nli.paper.flan_zero_shot, nli.paper.gpt3_zero_shot, nli.paper.gpt3_few_shot) == (
      56.2, 42.9, 53.2)
  assert nli.paper_subset is None
  assert nli.missing_paper_datasets == ["anli_r2", "anli_r3", "cb"]
  # The offline suite's NLI cluster is kept apart from FLAN's.
  offline = report.cluster("nli", suite="offline")
  assert offline.all.mean == pytest.approx(70.0) and offline.paper is None
  assert offline.all.best_dev is None and offline.all.baselines == {}


def test_generative_rows_and_settings(report):
  qa = report.dataset("world_qa")
  assert (qa.mean, qa.min, qa.max, qa.metric) == (25.0, 10.0, 40.0, "accuracy")
  assert qa.chance is None  # chance is for rank classification only
  assert qa.baselines == {"untuned": 5.0}
  assert report.dataset("anli_r1", "no_options").mean == pytest.approx(37.0)
  assert report.dataset("anli_r1", "generative").mean == 20.0
  assert report.dataset("anli_r1", "dataset_name").templates == {0: 41.0}
  assert report.dataset("world_qa", "1_shot").mean == 44.0  # world_qa_type_0_one_shot (alias)
  assert report.settings == ["zero_shot", "no_options", "1_shot", "generative", "dataset_name"]
  assert report.cluster("nli", setting="no_options").all.mean == pytest.approx(37.0)


def test_turned_rows(report):
  fwd, rev = report.dataset("wmt14_enfr"), report.dataset("wmt14_enfr:turned")
  assert (fwd.title, fwd.mean) == ("WMT'14 En→Fr", 25.0)
  assert (rev.title, rev.mean, rev.metric) == ("WMT'14 Fr→En", 10.0, "bleu")
  assert rev.paper.gpt3_zero_shot == 21.2 and rev.paper.is_recalled("gpt3_zero_shot")
  assert fwd.paper.flan_best_dev == 34.0
  assert report.cluster("translation").all.mean == pytest.approx(17.5)  # both directions
  # A turned non-translation row (ROUGE on a generated question) stays out of the average.
  turned = report.dataset("world_passage_qa:turned")
  assert (turned.metric, turned.mean, turned.in_cluster_average) == ("rougeLsum", 12.0, False)
  assert turned.metric_means == {"rouge1": 20.0, "rouge2": 5.0, "rougeLsum": 12.0}
  rc = report.cluster("reading_comprehension", suite="offline")
  assert rc.all.datasets == ["world_passage_qa"] and rc.all.mean == 50.0


def test_paper_subset_when_complete():
  values = {"anli_r1": 50.0, "anli_r2": 40.0, "anli_r3": 45.0, "cb": 60.0, "rte": 80.0,
            "mnli_matched": 90.0}
  rep = report_lib.build_report(
      {f"{d}_type_0_scoring_eval": {"accuracy": v} for d, v in values.items()})
  nli = rep.cluster("nli")
  assert nli.all.mean == pytest.approx(365.0 / 6)
  assert nli.paper_subset.mean == pytest.approx(275.0 / 5)  # without mnli_matched
  assert nli.comparable is nli.paper_subset and nli.missing_paper_datasets == []


def test_lower_is_better_best_dev():
  rep = report_lib.build_report(
      {"fix_punct_type_0": {"mean_edit": 5.0}, "fix_punct_type_1": {"mean_edit": 3.0}},
      dev_results={"fix_punct_type_0": {"mean_edit": 2.0}, "fix_punct_type_1": {"mean_edit": 4.0}})
  r = rep.dataset("fix_punct")
  assert not r.higher_is_better and r.best_dev_template == 0 and r.best_dev == 5.0


def test_missing_primary_metric_raises():
  with pytest.raises(KeyError, match="rte_type_0_scoring_eval.*accuracy"):
    report_lib.build_report({"rte_type_0_scoring_eval": {"f1": 1.0}})


def test_paper_tables_match_figure_1():
  for cluster in paper_results.PAPER_CLUSTERS.values():
    means = [paper_results.PAPER_DATASETS[k].flan_zero_shot for k in cluster.datasets]
    assert sum(means) / len(means) == pytest.approx(cluster.flan_zero_shot, abs=0.05)
    gpt3 = [paper_results.PAPER_DATASETS[k].gpt3_zero_shot for k in cluster.datasets]
    assert sum(gpt3) / len(gpt3) == pytest.approx(cluster.gpt3_zero_shot, abs=0.05)
  for key, entry in paper_results.PAPER_DATASETS.items():
    dataset, _, turned = key.partition(":")
    assert dataset in DATASETS, key
    assert not turned or DATASETS[dataset].metric == "bleu"
    assert entry.recalled <= {"flan_zero_shot", "flan_best_dev", "flan_few_shot",
                              "gpt3_zero_shot", "gpt3_few_shot"}


# ----------------------------------------------------------------------------- outputs


def test_markdown(report):
  md = report_lib.to_markdown(report)
  assert "35.0 ± 4.1" in md and "30.0–40.0" in md
  assert "35.0 [2]" in md and "70.0 [0]" in md  # best-dev test score [template]
  assert "| Natural language inference | flan | 2 | 57.5 | 52.5 | 44.5 | 41.7 |" in md
  assert "56.2" in md and "47.7" in md and "36.8 [50]" in md
  assert "84.1†" in md and "21.2†" in md and "recalled" in md
  assert "WMT'14 Fr→En" in md and "## Setting: no_options" in md
  assert "(offline suite)" in md


def test_json_round_trip(report):
  data = json.loads(json.dumps(report_lib.to_json(report), allow_nan=False))
  rows = {(r["key"], r["setting"]): r for r in data["datasets"]}
  anli = rows[("anli_r1", "zero_shot")]
  assert anli["templates"] == {"0": 40.0, "1": 30.0, "2": 35.0}
  assert anli["best_dev_template"] == 2 and anli["paper"]["flan_zero_shot"] == 47.7
  assert rows[("rte", "zero_shot")]["paper"]["recalled"] == ["flan_best_dev"]
  nli = next(c for c in data["clusters"] if (c["cluster"], c["suite"], c["setting"]) ==
             ("nli", "flan", "zero_shot"))
  assert nli["all"]["mean"] == 57.5 and nli["comparable"]["mean"] == 57.5
  assert nli["paper"]["flan_zero_shot"] == 56.2


def test_write_report(report, tmp_path):
  paths = report_lib.write_report(report, str(tmp_path / "out"))
  assert set(paths) == {"report_md", "report_json", "report_png"}
  with open(paths["report_png"], "rb") as f:
    png = f.read()
  assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
  with open(paths["report_json"]) as f:
    assert json.load(f)["has_dev"] is True
  with open(paths["report_md"]) as f:
    assert f.read() == report_lib.to_markdown(report)


# ----------------------------------------------------------------------------- seqio logs


def test_load_seqio_metrics_from_json_logger(tmp_path):
  logger = seqio.JSONLogger(str(tmp_path))
  task = "rte_type_0_scoring_eval"
  logger(task, 100, {"accuracy": seqio.metrics.Scalar(60.0),
                     "note": seqio.metrics.Text("skipped")}, None, None, None)
  logger(task, 200, {"accuracy": seqio.metrics.Scalar(75.0)}, None, None, None)
  logger("world_qa_type_0", 200, {"accuracy": seqio.metrics.Scalar(12.5)}, None, None, None)
  with open(tmp_path / "rte_type_1_scoring_eval-metrics.jsonl", "w") as f:  # {"value": x} form
    f.write('{"step": 7, "accuracy": {"value": 42.0}}\n\n')
  assert report_lib.load_seqio_metrics(str(tmp_path)) == {
      task: {"accuracy": 75.0}, "world_qa_type_0": {"accuracy": 12.5},
      "rte_type_1_scoring_eval": {"accuracy": 42.0}}
  assert report_lib.load_seqio_metrics(str(tmp_path), step=100) == {task: {"accuracy": 60.0}}
  rep = report_lib.build_report(report_lib.load_seqio_metrics(str(tmp_path)))
  assert rep.dataset("rte").mean == pytest.approx((75.0 + 42.0) / 2)
  with pytest.raises(FileNotFoundError):
    report_lib.load_seqio_metrics(str(tmp_path / "missing"))


def test_every_registered_task_of_a_dataset_has_one_variant_record():
  """The report reads the TaskVariant records registration leaves (no second list of names)."""
  from flan_jax.data import spec as ds
  assert set(ds.TASK_VARIANTS) == set(ds.TASK_TO_DATASET)
  assert set(ds.TASK_VARIANTS) <= set(seqio.TaskRegistry.names())
  assert sum(map(len, ds.DATASET_VARIANTS.values())) == len(ds.TASK_VARIANTS)
  from flan_jax import metrics
  for name, v in ds.TASK_VARIANTS.items():  # The record says what the registered task does.
    fns = seqio.get_mixture_or_task(name).metric_fns
    assert any(getattr(f, "func", f) is metrics.rank_classification for f in fns) == v.scoring
  rte = ds.DATASETS["rte"]
  turned = [i for i, t in enumerate(rte.templates) if t.turned]
  assert turned and ds.TASK_VARIANTS[ds.eval_task("rte", turned[0])].metric == "rouge"
  assert ds.eval_task("rte", turned[0]) not in {
      v.task for v in ds.DATASET_VARIANTS["rte"] if v.scoring}
  assert ds.TASK_VARIANTS["rte_10templates_five_shot"].shot == "5_shot"
