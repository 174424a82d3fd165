"""The paper-style evaluation report: per-dataset and per-cluster zero-shot scores.

Input is seqio-style results, ``{eval task name: {metric: value}}`` (as
:func:`flan_jax.eval.run_evaluator` returns them, or :func:`load_seqio_metrics` reads them back).
Each task name is looked up in the tasks that :func:`flan_jax.data.spec.register_dataset`
registered, which gives its dataset, template index and *setting*:

==========================  ===================================================================
setting                     tasks
==========================  ===================================================================
``zero_shot``               ``t_type_i_scoring_eval`` (classification), ``t_type_i`` (otherwise)
``no_options``              ``t_type_i_scoring_eval_no_options``
``1_shot`` ... ``16_shot``   ``t_type_i_scoring_eval_{shot}`` / ``t_type_i_{shot}`` (aliases too)
``continuations``           ``continuations_t_type_i[_scoring_eval]`` (a baseline's prompts)
``generative[_{shot}]``     ``t_type_i[_{shot}]`` of a classification dataset (decoded text)
``no_template`` ...         the ablations ``t_no_template[_scoring_eval]``, ``t_dataset_name...``
                            (one task, derived from template 0: reported as template 0)
==========================  ===================================================================

A dataset's turned-around templates form their own row, keyed ``name + ":turned"``: for
translation that is the reverse direction (``wmt14_enfr:turned`` is Fr→En); other turned rows are
listed but left out of cluster averages (they are not the dataset's task).

Each row reports one *primary metric* (:func:`primary_metric`): ``accuracy`` for rank
classification (MultiRC: ``f1``, which is F1a, the paper's metric); for decoded output the main key
of the dataset's metric kind (:data:`PRIMARY_METRIC`: ``em`` for NQ/TriviaQA as the paper,
``f1`` for SQuAD-style QA, ``f1a`` for MultiRC, ``bleu``, ``rougeLsum``, ``mean_edit``, which is
lower-is-better). The means of every other metric key are kept in ``metric_means``.

As in the paper (flan.md §2.3) a row gives the **mean over templates** and the **best-dev**
template: chosen on the dev split, reported with its *test* score. A cluster averages its dataset
rows; for the paper's Figure 1 clusters it also averages just the paper's datasets
(``paper_subset``), the number comparable with the paper (FLAN 137B, GPT-3 175B, from
:mod:`flan_jax.evaluation.paper_results`). Clusters are kept apart per suite (FLAN vs offline).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flan_jax.data import registry
from flan_jax.evaluation import paper_results as paper_lib
from flan_jax.storage import fs

TURNED_SUFFIX = paper_lib.TURNED_SUFFIX
ZERO_SHOT = "zero_shot"
SCORING_METRIC = "accuracy"
# Metric kind (flan_jax.metrics) -> the key a report shows for decoded (generative) output.
PRIMARY_METRIC: dict[str, str] = {
    "accuracy": "accuracy",
    "f1_binary": "accuracy",
    "f1_multiclass": "accuracy",  # The paper reports CB accuracy.
    "mcc": "accuracy",
    "pearson_spearman": "pearson_corrcoef",
    "squad": "f1",                # DROP / SQuAD / CoQA: F1.
    "trivia_qa": "em",            # NQ / TriviaQA: EM.
    "multirc": "f1a",
    "record": "em",
    "bleu": "bleu",
    "rouge": "rougeLsum",
    "edit_distance": "mean_edit",
}
LOWER_IS_BETTER = frozenset({"mean_edit"})
SUITE_ORDER = ("flan", "offline")
CONTINUATIONS = "continuations"  # the setting of continuations_* tasks (untuned-baseline prompts)
SETTING_ORDER = ("zero_shot", "no_options", CONTINUATIONS, "1_shot", "2_shot", "3_shot", "5_shot",
                 "10_shot", "16_shot", "generative", "no_template", "dataset_name")
RECALLED_MARK = "†"
METRIC_FILE_SUFFIX = "-metrics.jsonl"  # seqio.JSONLogger: <task>-metrics.jsonl


# ----------------------------------------------------------------------------- task names


@dataclasses.dataclass(frozen=True)
class ParsedTask:
  """What an eval task name means for the report."""

  task: str
  dataset: str
  template: int
  turned: bool
  scoring: bool  # rank classification (else decoded output)
  setting: str

  @property
  def row_key(self) -> str:
    return self.dataset + (TURNED_SUFFIX if self.turned else "")


class UnknownTaskError(ValueError):
  """A results key that is not an eval task of a registered flan_jax dataset."""


@functools.cache
def _dataset_tasks(dataset: str) -> dict[str, ParsedTask]:
  """Every eval task of ``dataset``, from the TaskVariant records its registration left."""
  from flan_jax.data import spec as ds
  is_classification = ds.DATASETS[dataset].is_classification
  out: dict[str, ParsedTask] = {}
  for v in ds.DATASET_VARIANTS[dataset]:
    if v.kind == "train":
      continue
    if v.kind == "continuation":
      setting = CONTINUATIONS
    else:  # An alias reports under the canonical shot setting.
      natural_scoring = is_classification and not v.turned
      parts = [] if v.scoring == natural_scoring else ["generative"]
      extra = v.shot or v.extra
      setting = "_".join(parts + ([extra] if extra else [])) or ZERO_SHOT
    out[v.task] = ParsedTask(v.task, dataset, v.template, v.turned, v.scoring, setting)
  return out


def parse_task(task: str) -> ParsedTask:
  """(dataset, template index, setting, ...) of an eval task name.

  Raises:
    UnknownTaskError: ``task`` is not registered from a dataset spec, or is not an eval task.
  """
  registry.ensure_registered()
  from flan_jax.data import spec as ds
  dataset = ds.TASK_TO_DATASET.get(task)
  if dataset is None:
    matches = [m for m in registry.close_matches(task) if m in ds.TASK_TO_DATASET]
    hint = f" Did you mean: {', '.join(matches)}?" if matches else ""
    raise UnknownTaskError(
        f"Unknown eval task {task!r}: not a task of any registered flan_jax dataset.{hint}")
  parsed = _dataset_tasks(dataset).get(task)
  if parsed is None:
    raise UnknownTaskError(
        f"Task {task!r} of dataset {dataset!r} is not an eval task (a training task?); the "
        "report takes per-template eval tasks such as "
        f"{ds.eval_tasks(ds.DATASETS[dataset])[0]!r}.")
  return parsed


def primary_metric(dataset: str, *, scoring: bool, turned: bool = False) -> str:
  """The metric key a report shows for a dataset's tasks (see the module docstring)."""
  from flan_jax.data import spec as ds
  spec = ds.DATASETS[dataset]
  if scoring:
    return "f1" if spec.metric == "multirc" else SCORING_METRIC
  return PRIMARY_METRIC[ds.generative_metric(spec, turned)]


# ----------------------------------------------------------------------------- report data


@dataclasses.dataclass
class DatasetRow:
  """One dataset (or its turned-around templates) in one setting.

  ``templates``/``dev_templates``: template index -> primary metric on test / dev. ``std`` is the
  population standard deviation over templates. ``best_dev_template`` has the best dev score
  (ties: lowest index) among templates with both scores; ``best_dev`` is its *test* score.
  ``baselines``: label -> the baseline's mean over its templates of this row.
  """

  key: str
  dataset: str
  title: str
  cluster: str
  suite: str
  setting: str
  metric: str
  higher_is_better: bool
  templates: dict[int, float]
  mean: float
  std: float
  min: float
  max: float
  num_templates: int
  metric_means: dict[str, float]
  dev_templates: dict[int, float] = dataclasses.field(default_factory=dict)
  best_dev_template: int | None = None
  best_dev: float | None = None
  baselines: dict[str, float] = dataclasses.field(default_factory=dict)
  chance: float | None = None
  in_cluster_average: bool = True
  paper: paper_lib.PaperDataset | None = None


@dataclasses.dataclass
class Averages:
  """Averages over the dataset rows ``datasets`` (None where a row lacks the value)."""

  datasets: list[str]
  mean: float
  best_dev: float | None
  baselines: dict[str, float]
  chance: float | None


@dataclasses.dataclass
class ClusterRow:
  """A cluster in one setting: averages of its dataset rows, and the paper's Figure 1 values.

  ``paper_subset`` averages only the paper's Figure 1 datasets (when all are present), the number
  to compare with ``paper``; ``missing_paper_datasets`` lists those absent.
  """

  cluster: str
  title: str
  suite: str
  setting: str
  all: Averages
  paper_subset: Averages | None = None
  missing_paper_datasets: list[str] = dataclasses.field(default_factory=list)
  paper: paper_lib.PaperCluster | None = None

  @property
  def comparable(self) -> Averages:
    """The averages to put next to the paper's: the paper subset if complete, else all."""
    return self.paper_subset or self.all


@dataclasses.dataclass
class Report:
  datasets: list[DatasetRow]
  clusters: list[ClusterRow]
  baseline_labels: list[str]
  has_dev: bool

  def dataset(self, key: str, setting: str = ZERO_SHOT) -> DatasetRow:
    for row in self.datasets:
      if row.key == key and row.setting == setting:
        return row
    raise KeyError(f"No row {key!r} in setting {setting!r}.")

  def cluster(self, cluster: str, suite: str = "flan", setting: str = ZERO_SHOT) -> ClusterRow:
    for row in self.clusters:
      if (row.cluster, row.suite, row.setting) == (cluster, suite, setting):
        return row
    raise KeyError(f"No cluster {cluster!r} of suite {suite!r} in setting {setting!r}.")

  @property
  def settings(self) -> list[str]:
    return sorted({r.setting for r in self.datasets}, key=_setting_rank)


# ----------------------------------------------------------------------------- building


def _setting_rank(setting: str) -> tuple[int, str]:
  return (SETTING_ORDER.index(setting) if setting in SETTING_ORDER else len(SETTING_ORDER),
          setting)


def _scalar(task: str, metrics: Mapping[str, Any], key: str) -> float:
  if key not in metrics:
    raise KeyError(f"Results of {task!r} have no metric {key!r} (the report's primary metric "
                   f"for it); they have: {sorted(metrics)}.")
  value = metrics[key]
  if isinstance(value, Mapping):  # seqio's {"value": x} form
    value = value["value"]
  return float(getattr(value, "value", value))


_Groups = dict[tuple[str, str], dict[int, tuple[ParsedTask, Mapping[str, Any]]]]


def _group(results: Mapping[str, Mapping[str, Any]]) -> _Groups:
  """(row key, setting) -> template index -> (parsed task, metrics)."""
  groups: _Groups = {}
  for task, metrics in results.items():
    p = parse_task(task)
    groups.setdefault((p.row_key, p.setting), {})[p.template] = (p, metrics)
  return groups


def _primary_scores(group: Mapping[int, tuple[ParsedTask, Mapping[str, Any]]], metric: str
                    ) -> dict[int, float]:
  return {i: _scalar(p.task, m, metric) for i, (p, m) in sorted(group.items())}


def _mean(values: Iterable[float]) -> float:
  values = list(values)
  return math.fsum(values) / len(values)


def _title(spec: Any, turned: bool) -> str:
  """Display name; translation pairs read as directions (``WMT'14 En→Fr`` / ``Fr→En``)."""
  title = spec.title
  head, _, pair = title.rpartition(" ")
  src, dash, tgt = pair.partition("-")
  if spec.metric == "bleu" and dash and src.isalpha() and tgt.isalpha():
    return f"{head} {tgt}→{src}" if turned else f"{head} {src}→{tgt}"
  return title + (" (turned)" if turned else "")


def _row(key: str, setting: str, group: Mapping[int, tuple[ParsedTask, Mapping[str, Any]]],
         dev: Mapping[int, tuple[ParsedTask, Mapping[str, Any]]] | None,
         baselines: Mapping[str, _Groups], chance: Mapping[str, float]) -> DatasetRow:
  from flan_jax.data import spec as ds
  first = next(iter(group.values()))[0]
  spec = ds.DATASETS[first.dataset]
  metric = primary_metric(first.dataset, scoring=first.scoring, turned=first.turned)
  higher = metric not in LOWER_IS_BETTER
  scores = _primary_scores(group, metric)
  values = list(scores.values())
  mean = _mean(values)
  common = set.intersection(*(set(m) for _, m in group.values()))
  metric_means = {}
  for k in sorted(common):
    try:
      metric_means[k] = _mean(_scalar(p.task, m, k) for p, m in group.values())
    except (TypeError, ValueError, KeyError):
      continue  # not a scalar
  row = DatasetRow(
      key=key, dataset=spec.name, title=_title(spec, first.turned), cluster=spec.cluster,
      suite=spec.suite, setting=setting, metric=metric, higher_is_better=higher,
      templates=scores, mean=mean, std=math.sqrt(_mean((v - mean) ** 2 for v in values)),
      min=min(values), max=max(values), num_templates=len(values), metric_means=metric_means,
      in_cluster_average=not first.turned or spec.metric == "bleu")
  if dev:
    row.dev_templates = {i: s for i, s in _primary_scores(dev, metric).items() if i in scores}
    if row.dev_templates:
      sign = 1.0 if higher else -1.0
      row.best_dev_template = max(row.dev_templates,
                                  key=lambda i: (sign * row.dev_templates[i], -i))
      row.best_dev = scores[row.best_dev_template]
  for label, groups in baselines.items():
    # A baseline scored with continuation prompts (the paper's LaMDA-PT zero-shot column) stands
    # next to the instruction-tuned zero-shot row.
    found = groups.get((key, CONTINUATIONS)) if setting == ZERO_SHOT else None
    found = found or groups.get((key, setting))
    if found:
      row.baselines[label] = _mean(_primary_scores(found, metric).values())
  if first.scoring and metric == SCORING_METRIC and spec.name in chance:
    row.chance = float(chance[spec.name])
  if spec.suite == "flan" and setting == ZERO_SHOT:
    row.paper = paper_lib.PAPER_DATASETS.get(key)
  return row


def _averages(rows: Sequence[DatasetRow], labels: Sequence[str]) -> Averages:
  best = [r.best_dev for r in rows]
  chances = [r.chance for r in rows]
  return Averages(
      datasets=[r.key for r in rows],
      mean=_mean(r.mean for r in rows),
      best_dev=None if None in best else _mean(best),  # type: ignore[arg-type]
      baselines={label: _mean(r.baselines[label] for r in rows) for label in labels
                 if all(label in r.baselines for r in rows)},
      chance=None if None in chances else _mean(chances))  # type: ignore[arg-type]


def _cluster_rank(suite: str, cluster: str) -> tuple:
  from flan_jax.data import spec as ds
  order = list(ds.CLUSTERS)
  return (SUITE_ORDER.index(suite) if suite in SUITE_ORDER else len(SUITE_ORDER), suite,
          order.index(cluster) if cluster in order else len(order), cluster)


def build_report(test_results: Mapping[str, Mapping[str, float]],
                 dev_results: Mapping[str, Mapping[str, float]] | None = None,
                 baselines: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                 chance: Mapping[str, float] | None = None) -> Report:
  """The report of ``test_results`` (``{eval task: {metric: value}}``).

  Args:
    test_results: the model's results on the test split.
    dev_results: the same tasks on the dev split; picks each row's best-dev template.
    baselines: label (e.g. ``"untuned"``) -> results of the same shape on the test split; only
      rows the model has are reported.
    chance: dataset name -> chance accuracy (0-100), shown for rank-classification rows.

  Raises:
    ValueError: no results; UnknownTaskError: a task name that is not a registered eval task;
    KeyError: a task's results lack its primary metric.
  """
  if not test_results:
    raise ValueError("No test results to report.")
  from flan_jax.data import spec as ds
  groups = _group(test_results)
  dev_groups = _group(dev_results) if dev_results else {}
  base_groups = {label: _group(r) for label, r in (baselines or {}).items()}
  dataset_order = {name: i for i, name in enumerate(ds.DATASETS)}

  def rank(item):
    (key, setting), group = item
    p = next(iter(group.values()))[0]
    spec = ds.DATASETS[p.dataset]
    return (_setting_rank(setting), _cluster_rank(spec.suite, spec.cluster),
            dataset_order[p.dataset], p.turned)

  rows = [_row(key, setting, group, dev_groups.get((key, setting)), base_groups, chance or {})
          for (key, setting), group in sorted(groups.items(), key=rank)]

  labels = list(base_groups)
  by_cluster: dict[tuple[str, str, str], list[DatasetRow]] = {}
  for row in rows:
    if row.in_cluster_average:
      by_cluster.setdefault((row.setting, row.suite, row.cluster), []).append(row)
  clusters = []
  for (setting, suite, cluster), members in by_cluster.items():
    c = ClusterRow(cluster=cluster, title=ds.CLUSTERS.get(cluster, cluster.replace("_", " ")),
                   suite=suite, setting=setting, all=_averages(members, labels))
    if suite == "flan" and setting == ZERO_SHOT and cluster in paper_lib.PAPER_CLUSTERS:
      c.paper = paper_lib.PAPER_CLUSTERS[cluster]
      present = {r.key: r for r in members}
      c.missing_paper_datasets = [k for k in c.paper.datasets if k not in present]
      if not c.missing_paper_datasets:
        c.paper_subset = _averages([present[k] for k in c.paper.datasets], labels)
    clusters.append(c)
  return Report(datasets=rows, clusters=clusters, baseline_labels=labels,
                has_dev=any(r.best_dev is not None for r in rows))


# ----------------------------------------------------------------------------- markdown


def _fmt(x: float | None, recalled: bool = False) -> str:
  if x is None:
    return "—"
  return f"{x:.1f}" + (RECALLED_MARK if recalled else "")


def _paper_fmt(p: paper_lib.PaperDataset | None, field: str) -> str:
  if p is None:
    return "—"
  value = getattr(p, field)
  text = _fmt(value, value is not None and p.is_recalled(field))
  if field == "gpt3_few_shot" and value is not None and p.gpt3_k:
    text += f" [{p.gpt3_k}]"
  return text


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return lines


def _dataset_table(report: Report, rows: Sequence[DatasetRow], notes: list[str],
                   with_cluster: bool = False) -> list[str]:
  with_paper = any(r.paper is not None for r in rows)
  with_chance = any(r.chance is not None for r in rows)
  headers = (["Dataset"] + (["Cluster"] if with_cluster else []) +
             ["Metric", "#T", "Mean ± std", "Min–max"] +
             (["Best-dev [template]"] if report.has_dev else []) +
             [f"{label} mean" for label in report.baseline_labels] +
             (["Chance"] if with_chance else []) +
             (["Paper FLAN mean", "Paper FLAN best-dev", "GPT-3 zs", "GPT-3 fs [k]"]
              if with_paper else []))
  body = []
  for r in rows:
    name = r.title
    if r.paper is not None and r.paper.note:
      notes.append(f"{r.title}: {r.paper.note}")
      name += f" [{len(notes)}]"
    if not r.in_cluster_average:
      name += " (not in cluster average)"
    metric = r.metric + ("" if r.higher_is_better else " ↓")
    cells = [name] + ([r.cluster] if with_cluster else []) + [
        metric, str(r.num_templates), f"{r.mean:.1f} ± {r.std:.1f}", f"{r.min:.1f}–{r.max:.1f}"]
    if report.has_dev:
      cells.append("—" if r.best_dev is None else f"{r.best_dev:.1f} [{r.best_dev_template}]")
    cells += [_fmt(r.baselines.get(label)) for label in report.baseline_labels]
    if with_chance:
      cells.append(_fmt(r.chance))
    if with_paper:
      cells += [_paper_fmt(r.paper, f) for f in
                ("flan_zero_shot", "flan_best_dev", "gpt3_zero_shot", "gpt3_few_shot")]
    body.append(cells)
  return _table(headers, body)


def _cluster_table(report: Report, clusters: Sequence[ClusterRow]) -> list[str]:
  with_paper = any(c.paper is not None for c in clusters)
  headers = (["Cluster", "Suite", "#Datasets", "Mean"] +
             (["Best-dev"] if report.has_dev else []) + list(report.baseline_labels) +
             ["Chance"] +
             (["Ours on paper datasets", "Paper FLAN 137B", "GPT-3 zs", "GPT-3 fs"]
              if with_paper else []))
  body = []
  for c in clusters:
    a = c.all
    cells = [c.title, c.suite, str(len(a.datasets)), _fmt(a.mean)]
    if report.has_dev:
      cells.append(_fmt(a.best_dev))
    cells += [_fmt(a.baselines.get(label)) for label in report.baseline_labels]
    cells.append(_fmt(a.chance))
    if with_paper:
      if c.paper is None:
        cells += ["—"] * 4
      else:
        s = c.paper_subset
        ours = (_fmt(s.mean) + (f" (best-dev {s.best_dev:.1f})" if s.best_dev is not None
                                else "")) if s else \
            f"— (missing {', '.join(c.missing_paper_datasets)})"
        cells += [ours, _fmt(c.paper.flan_zero_shot), _fmt(c.paper.gpt3_zero_shot),
                  _fmt(c.paper.gpt3_few_shot)]
    body.append(cells)
  return _table(headers, body)


def to_markdown(report: Report) -> str:
  """The report as Markdown: a cluster summary, one table per cluster, other settings, notes."""
  notes: list[str] = []
  lines = ["# Evaluation report", "",
           "Scores are on a 0-100 scale. *Mean*: the mean over templates of the row's metric "
           "(± population std over templates); *Best-dev*: the template with the best dev-split "
           "score, reported with its test score. Cluster scores average their datasets "
           "(↓: lower is better). Paper numbers: FLAN 137B and GPT-3 175B from the FLAN paper "
           "(flan.md §4); Figure 1 averages only the paper's datasets "
           "(*Ours on paper datasets*).", ""]
  zero = [c for c in report.clusters if c.setting == ZERO_SHOT]
  if zero:
    lines += ["## Cluster summary (zero-shot)", ""] + _cluster_table(report, zero) + [""]
    for c in zero:
      if c.paper is not None and c.paper.note:
        notes.append(f"Figure 1 {c.paper.title}: {c.paper.note}")
  sections: dict[tuple[str, str], list[DatasetRow]] = {}
  for r in report.datasets:
    if r.setting == ZERO_SHOT:
      sections.setdefault((r.suite, r.cluster), []).append(r)
  from flan_jax.data import spec as ds
  for (suite, cluster), rows in sections.items():
    title = ds.CLUSTERS.get(cluster, cluster.replace("_", " "))
    lines += [f"## {title} ({suite} suite)", ""] + _dataset_table(report, rows, notes) + [""]
  others = [s for s in report.settings if s != ZERO_SHOT]
  for setting in others:
    rows = [r for r in report.datasets if r.setting == setting]
    lines += [f"## Setting: {setting}", ""]
    lines += _dataset_table(report, rows, notes, with_cluster=True) + [""]
    clusters = [c for c in report.clusters if c.setting == setting]
    if clusters:
      lines += _cluster_table(report, clusters) + [""]
  recalled = any(r.paper is not None and r.paper.recalled for r in report.datasets)
  if notes or recalled:
    lines += ["## Notes", ""]
    if recalled:
      lines += [f"{RECALLED_MARK} Paper value {paper_lib.RECALLED_NOTE}.", ""]
    lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + [""]
  return "\n".join(lines)


# ----------------------------------------------------------------------------- JSON


def _jsonable(x: Any) -> Any:
  if dataclasses.is_dataclass(x) and not isinstance(x, type):
    return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (set, frozenset)):
    return sorted(_jsonable(v) for v in x)
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def to_json(report: Report) -> dict[str, Any]:
  """The report as plain JSON data (template indices become string keys; NaN becomes null)."""
  out = _jsonable(report)
  for c, data in zip(report.clusters, out["clusters"], strict=True):
    data["comparable"] = _jsonable(c.comparable)
  out["recalled_note"] = paper_lib.RECALLED_NOTE
  return out


# ----------------------------------------------------------------------------- plot


_COLORS = {"ours": "#1f77b4", "chance": "#bbbbbb", "FLAN 137B (paper)": "#6baed6",
           "GPT-3 175B zero-shot": "#fd8d3c", "GPT-3 175B few-shot": "#e6550d"}
_BASELINE_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _plot_groups(report: Report) -> list[tuple[str, list[tuple[str, float]]]]:
  """(x label, [(bar name, value)]) of each zero-shot cluster, as :func:`plot` draws them."""
  groups = []
  for c in report.clusters:
    if c.setting != ZERO_SHOT:
      continue
    a = c.comparable
    bars = [("ours", a.mean)] + [(label, a.baselines[label]) for label in report.baseline_labels
                                 if label in a.baselines]
    if a.chance is not None:
      bars.append(("chance", a.chance))
    if c.paper is not None:
      bars += [("FLAN 137B (paper)", c.paper.flan_zero_shot),
               ("GPT-3 175B zero-shot", c.paper.gpt3_zero_shot),
               ("GPT-3 175B few-shot", c.paper.gpt3_few_shot)]
    label = c.title + ("" if c.suite == "flan" else f"\n({c.suite})")
    if c.paper is not None and c.paper_subset is None:
      label += "\n(paper datasets incomplete)"
    groups.append((label, bars))
  return groups


def plot(report: Report, path: str, title: str = "Zero-shot performance on held-out clusters"
         ) -> str:
  """A Figure-1-style grouped bar chart of the zero-shot clusters, written as PNG to ``path``.

  Per cluster: ours, each baseline and chance (on the paper's datasets when the cluster is a
  complete Figure 1 cluster, else on all its datasets), then the paper's FLAN 137B and GPT-3
  zero-/few-shot where known.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  groups = _plot_groups(report)
  colors = dict(_COLORS)
  for i, label in enumerate(report.baseline_labels):
    colors[label] = _BASELINE_COLORS[i % len(_BASELINE_COLORS)]
  width = 0.8
  fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(groups) + 2), 4.5))
  seen: set[str] = set()
  w = width / max([len(bars) for _, bars in groups] + [1])  # same bar width in every group
  for g, (_, bars) in enumerate(groups):
    for j, (name, value) in enumerate(bars):
      x = g + (j - (len(bars) - 1) / 2) * w
      ax.bar(x, value, w * 0.95, color=colors[name], label=None if name in seen else name,
             hatch="//" if name.startswith("GPT-3") else None, edgecolor="white")
      ax.text(x, value + 0.5, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
      seen.add(name)
  ax.set_xticks(range(len(groups)))
  ax.set_xticklabels([label for label, _ in groups], fontsize=8)
  ax.set_ylabel("Zero-shot performance")
  ax.set_title(title)
  top = max([v for _, bars in groups for _, v in bars] + [1.0])
  ax.set_ylim(0, top * 1.15)
  if not groups:
    ax.text(0.5, 0.5, "no zero-shot clusters", ha="center", va="center", transform=ax.transAxes)
  else:
    order = ["ours", *report.baseline_labels, *list(_COLORS)[1:]]
    handles, names = ax.get_legend_handles_labels()
    pairs = sorted(zip(handles, names, strict=True), key=lambda hn: order.index(hn[1]))
    ax.legend([h for h, _ in pairs], [n for _, n in pairs], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
  ax.spines[["top", "right"]].set_visible(False)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, dpi=120, format="png")
  plt.close(fig)
  fs.makedirs(fs.dirname(fs.resolve(path)))
  fs.write_bytes(path, png.getvalue())
  return path


# ----------------------------------------------------------------------------- files


def write_report(report: Report, out_dir: str) -> dict[str, str]:
  """Writes ``report.md``, ``report.json`` and ``report.png``; returns their paths."""
  fs.makedirs(out_dir)
  paths = {"report_md": fs.join(out_dir, "report.md"),
           "report_json": fs.join(out_dir, "report.json"),
           "report_png": fs.join(out_dir, "report.png")}
  fs.write_text(paths["report_md"], to_markdown(report))
  fs.write_text(paths["report_json"],
                json.dumps(to_json(report), indent=2, ensure_ascii=False, allow_nan=False))
  plot(report, paths["report_png"])
  return paths


def _metric_value(value: Any) -> float | None:
  """A logged metric as float: a number, or seqio's ``{"value": number}``; else None."""
  if isinstance(value, Mapping):
    value = value.get("value")
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return float(value)


def load_seqio_metrics(log_dir: str, step: int | None = None) -> dict[str, dict[str, float]]:
  """``{task: {metric: value}}`` from seqio ``JSONLogger`` files ``<task>-metrics.jsonl``.

  Each line is ``{"step": N, "<metric>": value, ...}`` (seqio 0.0.20 writes scalar values bare;
  ``{"value": x}`` is accepted too; text and array metrics are skipped). Takes the latest step of
  each task (the last such line), or ``step`` (tasks without it are left out).

  Raises:
    FileNotFoundError: ``log_dir`` is not a directory.
  """
  if not fs.isdir(log_dir):
    raise FileNotFoundError(f"No seqio log directory {log_dir!r}.")
  out: dict[str, dict[str, float]] = {}
  for name in sorted(n for n in fs.listdir(log_dir) if n.endswith(METRIC_FILE_SUFFIX)):
    task = name[:-len(METRIC_FILE_SUFFIX)]
    chosen: dict | None = None
    for line in fs.read_text(fs.join(log_dir, name)).split("\n"):
      if not line.strip():
        continue
      row = json.loads(line)
      s = row.get("step", -1)
      if (step is None and (chosen is None or s >= chosen.get("step", -1))) or s == step:
        chosen = row
    if chosen is None:
      continue
    values = {k: _metric_value(v) for k, v in chosen.items() if k != "step"}
    out[task] = {k: v for k, v in values.items() if v is not None}
  return out
