"""A FLAN dataset as a declarative spec, and the seqio tasks registered from it.

A cluster module under ``tasks/`` reads like a table: one :class:`DatasetSpec` per dataset with its
source, the fields its preprocessor produces, its options, metric kind and ten templates.
:func:`register_dataset` turns a spec into these seqio tasks (``t`` = the dataset's name):

====================================  ==========================================================
``t_{N}templates`` (N=1,2,4,7,10)     training: one template per example, from the first N
``t_10templates_{shot}``              training, few-shot
``t_no_template`` / ``t_dataset_name``  ablations: fields only / fields prefixed by the name
``t_type_{i}``                        generative eval with template i
``t_type_{i}_{shot}``                 the same, few-shot
``t_type_{i}_scoring_eval``           rank classification with template i (classification)
``t_type_{i}_scoring_eval_no_options``  rank classification, options block removed
``t_type_{i}_scoring_eval_{shot}``    rank classification, few-shot
====================================  ==========================================================

``{shot}`` is one of :data:`SHOTS` (the reference's counts: ``1_shot`` ... ``16_shot``; the names
``one_shot``, ``five_shot`` and ``multi_shot`` are aliases of ``1_shot``, ``5_shot``, ``16_shot``).
Few-shot *training* exemplars are each rendered with their own template (the reference's batch
formatter templates every example independently; ``fewshot_mixed_templates=False`` makes them use
the query's); few-shot *eval* exemplars use the query's template, as the reference's per-template
tasks. Turned-around templates get no scoring variants (their target is not the label).

Datasets with ``continuations`` (GPT-3-style prompts for the untuned baseline, the paper's
"LaMDA-PT" zero-shot column) also get ``continuations_t_type_{i}`` (generative) or
``continuations_t_type_{i}_scoring_eval`` (classification: rank classification over the options,
written as ``continuation_options`` words when given, e.g. "true"/"false" for yes/no).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from flan_jax import metrics
from flan_jax.data import preprocessors as prep
from flan_jax.data import sizes
from flan_jax.data import templates as tmpl
from flan_jax.data import vocab as vocab_lib

NUM_TEMPLATES_LIST = (1, 2, 4, 7, 10)
SHOTS: dict[str, int] = {f"{k}_shot": k for k in (1, 2, 3, 5, 10, 16)}  # few_shot.ShotConfig
SHOT_ALIASES: dict[str, str] = {"one_shot": "1_shot", "five_shot": "5_shot",
                                "multi_shot": "16_shot"}
FEWSHOT_MAX_INPUT_TOKENS = 960
FEWSHOT_SEED = 0

# The paper's 12 clusters, in a stable order, with their display titles.
CLUSTERS: dict[str, str] = {
    "nli": "Natural language inference",
    "commonsense": "Commonsense",
    "sentiment": "Sentiment",
    "paraphrase": "Paraphrase",
    "closed_book_qa": "Closed-book QA",
    "struct_to_text": "Struct to text",
    "translation": "Translation",
    "reading_comprehension": "Reading comprehension",
    "read_comp_commonsense": "Reading comprehension with commonsense",
    "coreference": "Coreference",
    "misc": "Miscellaneous",
    "summarization": "Summarization",
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Everything flan_jax needs to know about one dataset (config).

  Attributes:
    name: task-name stem, e.g. ``"rte"``.
    cluster: the paper cluster (a key of :data:`CLUSTERS` or of the registry's extra clusters).
    source: a seqio data source with canonical splits ``train``/``validation``/``test``.
    fields: the template fields that ``preprocess`` produces (scalar strings).
    preprocess: raw example -> dict with every name in ``fields``; classification datasets with
      per-example choices also return ``"options"`` (1-D strings); several correct options may be
      given as ``"answers"`` (1-D strings). Runs inside ``tf.data``.
    templates: the dataset's instruction templates (10 for FLAN datasets).
    options: the fixed option list of a classification dataset, in rendering order.
    per_example_options: the classification dataset takes its options from each example.
    metric: metric kind of generative eval (see :mod:`flan_jax.metrics`).
    display_name: human name, used by the dataset-name ablation and reports.
    subcluster: the reference repository's finer cluster (metadata only).
    filter_fn: keeps raw examples for which it is true (per-dataset cleaning).
    num_train_examples: size of the ``train`` split, known without downloading.
    eval_only: never part of a training mixture. Required when the source has no ``train``
      split (wsc273): such a dataset gets no training and no few-shot tasks, since there is no
      split other than the evaluated one to train on or draw exemplars from.
    note: how to prepare data that TFDS cannot download itself.
    suite: ``"flan"`` for the paper's datasets, ``"offline"`` for the embedded suite; mixtures
      are built per suite.
    expected_num_templates: how many templates registration insists on (None: any).
    continuations: GPT-3-style continuation prompts (no instruction, no options block) for the
      untuned baseline.
    continuation_options: the fixed options as the continuation prompts' answer words, in the
      order of ``options`` (None: the options themselves).
    fewshot_mixed_templates: few-shot training exemplars each get their own template (as the
      reference); False: the query's template.
  """

  name: str
  cluster: str
  source: seqio.DataSource
  fields: tuple[str, ...]
  preprocess: Callable[[dict], dict]
  templates: tuple[tmpl.Template, ...]
  options: tuple[str, ...] | None = None
  per_example_options: bool = False
  metric: str = "accuracy"
  display_name: str = ""
  subcluster: str | None = None
  filter_fn: Callable[[dict], tf.Tensor] | None = None
  num_train_examples: int | None = None
  eval_only: bool = False
  note: str = ""
  suite: str = "flan"
  expected_num_templates: int | None = 10
  continuations: tuple[tmpl.Template, ...] = ()
  continuation_options: tuple[str, ...] | None = None
  fewshot_mixed_templates: bool = True

  @property
  def is_classification(self) -> bool:
    return self.options is not None or self.per_example_options

  @property
  def title(self) -> str:
    return self.display_name or self.name

  @property
  def has_train_split(self) -> bool:
    """The source has a ``train`` split: training tasks and few-shot exemplars read it."""
    return "train" in self.source.splits


DATASETS: dict[str, DatasetSpec] = {}


# ----------------------------------------------------------------------------- task names


def train_task(name: str, num_templates: int = 10, shot: str | None = None) -> str:
  return f"{name}_{num_templates}templates" + (f"_{shot}" if shot else "")


def default_train_task(spec: DatasetSpec, shot: str | None = None) -> str:
  """The training task over all of a dataset's templates (``t_10templates`` for FLAN)."""
  return train_task(spec.name, len(spec.templates), shot)


def eval_task(name: str, template_idx: int, shot: str | None = None) -> str:
  return f"{name}_type_{template_idx}" + (f"_{shot}" if shot else "")


def scoring_task(name: str, template_idx: int, *, no_options: bool = False,
                 shot: str | None = None) -> str:
  suffix = "_no_options" if no_options else (f"_{shot}" if shot else "")
  return f"{name}_type_{template_idx}_scoring_eval{suffix}"


def continuation_task(spec: DatasetSpec, idx: int) -> str:
  """``continuations_{t}_type_{i}`` (+ ``_scoring_eval`` for classification), as the reference."""
  return f"continuations_{spec.name}_type_{idx}" + ("_scoring_eval" if spec.is_classification
                                                    else "")


def baseline_eval_tasks(spec: DatasetSpec) -> list[str]:
  """The untuned baseline's eval tasks: the continuation prompts where the dataset has them,
  else its per-template eval tasks."""
  if spec.continuations:
    return [continuation_task(spec, i) for i in range(len(spec.continuations))]
  return eval_tasks(spec)


def ablation_task(name: str, kind: str, scoring: bool = False) -> str:
  """``kind``: ``"no_template"`` or ``"dataset_name"``."""
  return f"{name}_{kind}" + ("_scoring_eval" if scoring else "")


def eval_tasks(spec: DatasetSpec, shot: str | None = None, *, no_options: bool = False
               ) -> list[str]:
  """The per-template eval tasks of a dataset: rank classification for classification datasets
  (non-turned templates), generative otherwise. None few-shot where the dataset has no train
  split to draw exemplars from (as the reference, which cannot build few-shot WSC273)."""
  if shot and not spec.has_train_split:
    return []
  if spec.is_classification:
    return [scoring_task(spec.name, i, no_options=no_options, shot=shot)
            for i, t in enumerate(spec.templates) if not t.turned]
  return [eval_task(spec.name, i, shot=shot) for i in range(len(spec.templates))]


# ----------------------------------------------------------------------------- sources


class MissingDataError(FileNotFoundError):
  """TFDS data that has not been prepared."""


class TfdsSource(seqio.TfdsDataSource):
  """``seqio.TfdsDataSource`` whose missing-data error says how to prepare the data."""

  def __init__(self, tfds_name: str, splits: Mapping[str, str], note: str = ""):
    # read_only: never try to download while building a pipeline (prepare data with `tfds build`).
    super().__init__(tfds_name=tfds_name, splits=splits, read_only=True)
    self.split_map = dict(splits)
    self.note = note

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *args, **kwargs) -> tf.data.Dataset:
    try:
      return super().get_dataset(split, shuffle, seed, shard_info, *args, **kwargs)
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
      message = str(e).lower()
      if not any(k in message for k in ("could not find", "not found", "no such", "data_dir")):
        raise
      raise MissingDataError(self.prepare_message()) from e

  def list_shards(self, split: str) -> Sequence[str]:
    """The split's files, or none where TFDS has no split metadata (unprepared or mocked data).

    seqio asks for the files whenever it shards (``--shard i/N``, one host of several): with at
    least N it gives each shard whole files, otherwise examples ``i, i + N, ...`` of the source.
    Reading unprepared data then fails in ``get_dataset`` with the preparation message rather
    than TFDS's bare ``KeyError``.
    """
    try:
      return super().list_shards(split)
    except KeyError:
      return []

  def num_input_examples(self, split: str) -> int | None:
    """From the prepared data's metadata, else the static table (unprepared or mocked data)."""
    try:
      return super().num_input_examples(split)
    except (KeyError, AssertionError, FileNotFoundError, tf.errors.NotFoundError):
      spec = self.split_map.get(split)
      return None if spec is None else sizes.num_examples(self.tfds_dataset.name, spec)

  def prepare_message(self) -> str:
    name = self.tfds_dataset.name
    data_dir = self.tfds_dataset.data_dir or "~/tensorflow_datasets"
    lines = [f"TFDS dataset {name} is not prepared in {data_dir}."]
    if self.note:
      lines.append(self.note)
    lines.append(
        f"Prepare it on a machine with internet access: `tfds build {name.split(':')[0]} "
        f"--data_dir=DIR` (add --manual_dir for manual downloads), then pass "
        "--tfds_data_dir=DIR to flan-jax (or call seqio.set_tfds_data_dir_override(DIR)).")
    return " ".join(lines)


def tfds_source(tfds_name: str, *, train: str, validation: str, test: str,
                extra_splits: Mapping[str, str] | None = None, note: str = "") -> TfdsSource:
  """A TFDS source with FLAN's canonical split mapping."""
  splits = {"train": train, "validation": validation, "test": test, **(extra_splits or {})}
  return TfdsSource(tfds_name, splits, note)


def static_train_size(source: seqio.DataSource) -> int | None:
  """Train-split size from :mod:`flan_jax.data.sizes` for a TFDS source (None if unknown)."""
  if isinstance(source, TfdsSource) and "train" in source.split_map:
    return sizes.num_examples(source.tfds_dataset.name, source.split_map["train"])
  return None


# ----------------------------------------------------------------------------- derived templates


def _field_only_template(template: tmpl.Template, prefix: str = "") -> tmpl.Template:
  """Template 0 with its instruction words removed: the fields, one per line (+ options)."""
  names = [f for _, f, _, _ in string.Formatter().parse(template.inputs)
           if f and f != tmpl.OPTIONS_FIELD]
  names = list(dict.fromkeys(names))
  inputs = prefix + "\n".join("{" + n + "}" for n in names)
  if template.has_options:
    inputs += "\n\n{" + tmpl.OPTIONS_FIELD + "}"
  return tmpl.Template(inputs, template.targets)


def no_template(spec: DatasetSpec) -> tmpl.Template:
  return _field_only_template(spec.templates[0])


def dataset_name_template(spec: DatasetSpec) -> tmpl.Template:
  title = CLUSTERS.get(spec.cluster, spec.cluster)
  prefix = f"[{title}: {spec.title}] ".replace("{", "{{").replace("}", "}}")
  return _field_only_template(spec.templates[0], prefix)


# ----------------------------------------------------------------------------- registration


class _Builder:
  """Builds the preprocessor chains of one spec's tasks."""

  def __init__(self, spec: DatasetSpec):
    self.spec = spec
    self.head: list = []
    if spec.filter_fn is not None:
      self.head.append(prep.filter_examples(spec.filter_fn))
    self.head.append(prep.map_fields(spec.preprocess, spec.fields))
    self.head.append(prep.add_options(spec.options))

  def pool(self, templates: Sequence[tmpl.Template]) -> Callable[[], tf.data.Dataset]:
    render = prep.render_pool(self.head, templates)
    source = self.spec.source
    return lambda: render(source.get_dataset(split="train", shuffle=False))

  def fewshot(self, shot: str, mixed_templates: bool = False) -> Callable:
    # The pool renders every template; the query's template_idx (or, mixed, each exemplar's own
    # hash) picks the exemplars' rendering.
    return prep.fewshot(self.pool(self.spec.templates), SHOTS[shot], vocab_lib.DEFAULT_VOCABULARY,
                        FEWSHOT_MAX_INPUT_TOKENS, FEWSHOT_SEED, mixed_templates=mixed_templates)

  def register(self, variant: TaskVariant, steps: list) -> None:
    """Registers ``variant``'s seqio task (and its shot-alias names) from the spec's head steps
    and ``steps``; records the variant for :data:`TASK_VARIANTS`."""
    spec = self.spec
    if variant.scoring:
      num_classes = len(spec.options) if spec.options is not None else None
      metric_fns = [functools.partial(metrics.rank_classification, num_classes=num_classes)]
      postprocess_fn = metrics.rank_classification_postprocessor
      steps = steps + [prep.rank_classification]
    else:
      metric_fns = metrics.metric_fns(variant.metric, options=spec.options)
      postprocess_fn = metrics.postprocessor(variant.metric)
    seqio.TaskRegistry.add(
        variant.task,
        source=spec.source,
        preprocessors=self.head + steps + prep.tokenize_chain(),
        output_features=vocab_lib.output_features(),
        postprocess_fn=postprocess_fn,
        metric_fns=metric_fns,
    )
    _record(variant)
    for alias, canonical in SHOT_ALIASES.items():
      if variant.task.endswith("_" + canonical):
        alias_name = variant.task[: -len(canonical)] + alias
        seqio.TaskRegistry.add_provider(alias_name, seqio.TaskRegistry.get(variant.task))
        _record(dataclasses.replace(variant, task=alias_name))


def shot_name(shot: str) -> str:
  """The canonical ``{k}_shot`` name of a shot name or alias (``five_shot`` -> ``5_shot``)."""
  if shot in SHOTS:
    return shot
  if shot in SHOT_ALIASES:
    return SHOT_ALIASES[shot]
  raise ValueError(f"Unknown shot setting {shot!r}; use one of "
                   f"{', '.join([*SHOTS, *SHOT_ALIASES])}.")


TASK_TO_DATASET: dict[str, str] = {}
TURNED_METRIC = "rouge"


@dataclasses.dataclass(frozen=True)
class TaskVariant:
  """What one registered task is (one record per task name, shot aliases included).

  Attributes:
    task: the seqio task name.
    dataset: the spec's name.
    kind: ``"train"``, ``"ablation"``, ``"eval"`` (generative, per template), ``"scoring"``
        (rank classification, per template) or ``"continuation"``.
    template: index into ``spec.templates`` (``spec.continuations`` for continuations; None for
        training tasks over several templates).
    turned: the template is turned around (its target is not the label).
    scoring: rank classification (else decoded output).
    shot: the canonical ``{k}_shot`` for few-shot tasks, else None.
    extra: ``"no_options"``, ``"no_template"`` or ``"dataset_name"``, else None.
    metric: the metric kind of a generative task (:func:`generative_metric`); None for scoring.
  """

  task: str
  dataset: str
  kind: str
  template: int | None
  turned: bool = False
  scoring: bool = False
  shot: str | None = None
  extra: str | None = None
  metric: str | None = None


TASK_VARIANTS: dict[str, TaskVariant] = {}
DATASET_VARIANTS: dict[str, list[TaskVariant]] = {}


def _record(variant: TaskVariant) -> None:
  TASK_VARIANTS[variant.task] = variant
  TASK_TO_DATASET[variant.task] = variant.dataset
  DATASET_VARIANTS.setdefault(variant.dataset, []).append(variant)


def generative_metric(spec: DatasetSpec, turned: bool = False) -> str:
  """The metric kind of a generative task. A turned template generates free text (a premise, a
  question): it is scored with ROUGE, except where the dataset's own metric already compares free
  text (BLEU for reverse translation)."""
  return TURNED_METRIC if turned and spec.metric not in ("bleu", "rouge") else spec.metric


def _validated(spec: DatasetSpec) -> DatasetSpec:
  """``spec`` checked, with its train size and display name filled in."""
  if not re.fullmatch(r"[\w]+", spec.name):
    raise ValueError(f"Dataset name {spec.name!r} must be letters, digits and underscores.")
  if spec.name in DATASETS:
    raise ValueError(f"Dataset {spec.name!r} is already registered.")
  if not spec.has_train_split and not spec.eval_only:
    raise ValueError(f"{spec.name}: its source has no 'train' split (splits: "
                     f"{list(spec.source.splits)}); mark it eval_only=True or give it a train "
                     "split disjoint from the one it is evaluated on.")
  if spec.is_classification and spec.options is not None and spec.per_example_options:
    raise ValueError(f"{spec.name}: give fixed options or per_example_options, not both.")
  tmpl.validate_templates(spec.name, spec.templates, spec.fields,
                          classification=spec.is_classification,
                          expected_count=spec.expected_num_templates)
  if spec.num_train_examples is None:
    spec = dataclasses.replace(spec, num_train_examples=static_train_size(spec.source))
  if not spec.display_name:
    spec = dataclasses.replace(spec, display_name=spec.name)
  if spec.continuations:
    tmpl.validate_templates(f"{spec.name} (continuations)", spec.continuations, spec.fields,
                            classification=False, expected_count=None)
  if spec.continuation_options is not None and (
      spec.options is None or len(spec.continuation_options) != len(spec.options)):
    raise ValueError(f"{spec.name}: continuation_options must give one word per fixed option "
                     f"{spec.options!r}; got {spec.continuation_options!r}.")
  if spec.note and isinstance(spec.source, TfdsSource) and not spec.source.note:
    spec.source.note = spec.note  # the missing-data error repeats the manual-download note
  return spec


def _register_training(b: _Builder) -> None:
  """``t_{N}templates``, few-shot training (where the source has a train split) and the two
  instruction ablations."""
  spec, templates, fields = b.spec, b.spec.templates, b.spec.fields
  train = functools.partial(TaskVariant, dataset=spec.name, kind="train", template=None,
                            metric=spec.metric)
  counts = sorted({n for n in NUM_TEMPLATES_LIST if n <= len(templates)} | {len(templates)})
  for n in counts if spec.has_train_split else ():
    b.register(train(train_task(spec.name, n)), [prep.assign_template(templates[:n], fields)])
  for shot in SHOTS if spec.has_train_split else ():
    b.register(train(train_task(spec.name, len(templates), shot), shot=shot),
               [prep.assign_template(templates, fields),
                b.fewshot(shot, mixed_templates=spec.fewshot_mixed_templates)])
  for kind, template in (("no_template", no_template(spec)),
                         ("dataset_name", dataset_name_template(spec))):
    ablation = functools.partial(TaskVariant, dataset=spec.name, kind="ablation", template=0,
                                 extra=kind)
    b.register(ablation(ablation_task(spec.name, kind), metric=spec.metric),
               [prep.apply_template(template)])
    if spec.is_classification:
      b.register(ablation(ablation_task(spec.name, kind, scoring=True), scoring=True),
                 [prep.apply_template(template)])


def _register_template(b: _Builder, i: int, template: tmpl.Template) -> None:
  """The eval tasks of template ``i``: generative (+ few-shot), rank classification (+ without
  options, few-shot) for classification datasets' non-turned templates. Few-shot only where the
  source has a train split (the exemplars' pool)."""
  spec = b.spec
  shots = SHOTS if spec.has_train_split else {}
  render = prep.apply_template(template, i)
  gen = functools.partial(TaskVariant, dataset=spec.name, kind="eval", template=i,
                          turned=template.turned, metric=generative_metric(spec, template.turned))
  b.register(gen(eval_task(spec.name, i)), [render])
  for shot in shots:
    b.register(gen(eval_task(spec.name, i, shot), shot=shot), [render, b.fewshot(shot)])
  if not spec.is_classification or template.turned:
    return  # Turned templates get no scoring variants (their target is not the label).
  rank = functools.partial(TaskVariant, dataset=spec.name, kind="scoring", template=i,
                           scoring=True)
  b.register(rank(scoring_task(spec.name, i)), [render])
  b.register(rank(scoring_task(spec.name, i, no_options=True), extra="no_options"),
             [prep.apply_template(template.without_options(), i)])
  for shot in shots:
    b.register(rank(scoring_task(spec.name, i, shot=shot), shot=shot), [render, b.fewshot(shot)])


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
  """Validates ``spec`` and registers all its seqio tasks. Returns the spec (with sizes filled)."""
  spec = _validated(spec)
  b = _Builder(spec)
  _register_training(b)
  for i, template in enumerate(spec.templates):
    _register_template(b, i, template)
  relabel = ([prep.relabel_options(spec.options, spec.continuation_options)]
             if spec.continuation_options is not None else [])
  for i, template in enumerate(spec.continuations):
    b.register(TaskVariant(continuation_task(spec, i), spec.name, "continuation", i,
                           scoring=spec.is_classification, metric=spec.metric),
               relabel + [prep.apply_template(template, i)])
  DATASETS[spec.name] = spec
  return spec
