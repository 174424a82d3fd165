"""Flan 2022 data sources that read local files: Super-NaturalInstructions task JSON, the CoT
TSVs, and T0-SF either as rows rendered with promptsource's YAML templates (read with jinja2) or as
the pre-rendered P3 release.

Nothing downloads. Each source finds its directory when a pipeline is built, from
:func:`set_data_dir` (``export-data --data_dir niv2=DIR``) or an environment variable
(``FLAN_NIV2_DIR``, ``FLAN_COT_DIR``, ``FLAN_T0_DIR``, ``FLAN_P3_DIR``), and raises
:class:`flan_jax.dataset_spec.MissingDataError` saying what to download and where to put it.

T0-SF's route (:func:`t0_route`): ``promptsource`` (the default) renders ``t0`` rows at run time;
``p3`` reads the release's rendered prompts. A ``p3`` directory being set selects ``p3``; so does
``FLAN_T0_ROUTE=p3`` or the gin binding ``flan_jax.data.local_sources.t0_route.route = 'p3'``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import json
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import gin
import seqio
import tensorflow as tf

from flan_jax.data.prompt_modes import OPTION_SEP
from flan_jax.data.spec import MissingDataError

ENV_VARS = {"niv2": "FLAN_NIV2_DIR", "cot": "FLAN_COT_DIR", "t0": "FLAN_T0_DIR",
            "p3": "FLAN_P3_DIR"}
HOW_TO_GET = {
    "niv2": ("the Super-NaturalInstructions release: `git clone "
             "https://github.com/allenai/natural-instructions DIR` (its tasks/*.json)"),
    "cot": ("the nine chain-of-thought TSVs of the Flan Collection (flan/v2/cot_data/*_train.tsv "
            "in google-research/FLAN): copy them into DIR"),
    "t0": ("each T0-SF dataset's rows as JSON lines, DIR/<dataset>[/<subset>]/<split>.jsonl, "
           "e.g. from the Hugging Face datasets library on a machine with internet access: "
           "`load_dataset(name, subset, split=split).to_json(path)`"),
    "p3": ("the pre-rendered P3 release: `git lfs install && git clone "
           "https://huggingface.co/datasets/bigscience/P3 DIR` (or only the prompt folders you "
           "need, DIR/data/<dataset>_<prompt>/train.tfrecord-00000-of-00001 with its "
           "info.train.json)"),
}
_DATA_DIRS: dict[str, str] = {}


def set_data_dir(source: str, path: str | None) -> None:
  """Where a source's files live (``niv2``, ``cot``, ``t0`` or ``p3``); None: the
  environment variable."""
  if source not in ENV_VARS:
    raise ValueError(f"Unknown Flan 2022 source {source!r}; use one of {sorted(ENV_VARS)}.")
  if path is None:
    _DATA_DIRS.pop(source, None)
  else:
    _DATA_DIRS[source] = os.path.expanduser(path)


def data_dir(source: str) -> str | None:
  return _DATA_DIRS.get(source) or os.environ.get(ENV_VARS[source]) or None


def _missing(source: str, what: str) -> MissingDataError:
  where = data_dir(source)
  found = f"{what} is not in {where}." if where else (
      f"{what}: no {source} directory is set.")
  return MissingDataError(
      f"Flan 2022 {source} data: {found} Get {HOW_TO_GET[source]}; then pass "
      f"--data_dir {source}=DIR to flan-jax export-data (or set {ENV_VARS[source]}=DIR).")


def _path(source: str, *parts: str) -> str:
  root = data_dir(source)
  path = os.path.join(root, *parts) if root else os.path.join(*parts)
  if not root or not os.path.exists(path):
    raise _missing(source, os.path.join(*parts))
  return path


def _uid(*values: str) -> str:
  return hashlib.sha1("\x1f".join(values).encode()).hexdigest()


class _PythonSource(seqio.FunctionDataSource):
  """A FunctionDataSource over rows from a Python generator (read when a pipeline is built)."""

  def __init__(self, rows: Callable[[str], Iterator[dict]], signature: Mapping[str, tf.TensorSpec],
               splits: Sequence[str], sizes: Mapping[str, int] | None = None):
    """``rows(split)`` finds its files at once (raising MissingDataError) and returns an iterator
    that reads them lazily."""
    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
      del shuffle_files, seed
      rows(split)  # a missing file fails here, when the pipeline is built, not inside tf.data
      return tf.data.Dataset.from_generator(lambda: rows(split), output_signature=dict(signature))

    super().__init__(dataset_fn, splits=tuple(splits),
                     num_input_examples={s: (sizes or {}).get(s) for s in splits})
    self._rows = rows

  def num_input_examples(self, split: str) -> int | None:
    """The static size, else the rows of the local data (None when it is missing)."""
    size = super().num_input_examples(split)
    if size is None:
      try:
        size = self.count_rows(split)
      except MissingDataError:
        return None
    return size

  def count_rows(self, split: str) -> int:
    """Rows in the local data (reads it; raises MissingDataError when absent)."""
    return sum(1 for _ in self._rows(split))


_STR = tf.TensorSpec([], tf.string)
_STRS = tf.TensorSpec([None], tf.string)

# ----------------------------------------------------------------------------- NIv2


def niv2_source(task: str, size: int | None = None) -> seqio.DataSource:
  """One Super-NaturalInstructions task from ``DIR/tasks/<task>.json``: every instance is a
  train example with the task's definition and first positive example."""

  def rows(split: str) -> Iterator[dict]:
    del split
    return _read(_path("niv2", "tasks", task + ".json"))

  def _read(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
    langs = data.get("Input_language", ["English"]) + data.get("Output_language", ["English"])
    if any(lang != "English" for lang in langs):
      raise ValueError(f"NIv2 {task} is not an English task ({langs}); Flan 2022 uses English "
                       "tasks only.")
    definition = " ".join(data["Definition"]).strip()
    positives = data.get("Positive Examples") or [{"input": "", "output": ""}]
    for inst in data["Instances"]:
      outputs = inst["output"] if isinstance(inst["output"], list) else [inst["output"]]
      yield {"definition": definition, "input": inst["input"], "output": outputs[0],
             "pos_input": positives[0]["input"], "pos_output": positives[0]["output"],
             "id": str(inst.get("id", ""))}

  signature = {k: _STR for k in ("definition", "input", "output", "pos_input", "pos_output", "id")}
  return _PythonSource(rows, signature, ("train",), {"train": size} if size else None)


# ----------------------------------------------------------------------------- CoT

COT_COLUMNS = ("question", "answer", "rationale")


def cot_source(dataset: str, size: int | None = None) -> seqio.DataSource:
  """One CoT dataset from ``DIR/<dataset>_train.tsv``: tab-separated question, answer,
  rationale per line, no header (the Flan Collection's layout)."""

  def rows(split: str) -> Iterator[dict]:
    del split
    return _read(_path("cot", f"{dataset}_train.tsv"))

  def _read(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8", newline="") as f:
      for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if len(row) != len(COT_COLUMNS):
          raise ValueError(f"{path}:{n}: expected {len(COT_COLUMNS)} tab-separated columns "
                           f"({', '.join(COT_COLUMNS)}), got {len(row)}")
        yield dict(zip(COT_COLUMNS, (c.strip() for c in row), strict=True))

  return _PythonSource(rows, {k: _STR for k in COT_COLUMNS}, ("train",),
                       {"train": size} if size else None)


# ----------------------------------------------------------------------------- T0-SF


def promptsource_dir() -> str:
  """promptsource's shipped templates directory (the optional ``flan_jax[flan2022]`` extra)."""
  spec = importlib.util.find_spec("promptsource")
  if spec is None or not spec.submodule_search_locations:
    raise MissingDataError(
        "T0-SF templates come from the promptsource package, which is not installed: "
        "`pip install --no-deps --ignore-requires-python promptsource==0.2.3` (its own pins do "
        "not install on Python >= 3.10; flan_jax needs only its YAML files, jinja2 and pyyaml).")
  return os.path.join(list(spec.submodule_search_locations)[0], "templates")


@functools.cache
def promptsource_templates(dataset: str) -> tuple[dict, ...]:
  """The templates of ``dataset`` (``name`` or ``name/subset``) from promptsource's YAML, in file
  order: dicts with ``name``, ``jinja``, ``answer_choices`` (or None), ``original_task`` and
  ``choices_in_prompt``."""
  import yaml

  class _Loader(yaml.SafeLoader):
    pass

  def _mapping(loader, node):
    return loader.construct_mapping(node, deep=True)

  _Loader.add_constructor("!Template", _mapping)
  _Loader.add_constructor("!TemplateMetadata", _mapping)
  path = os.path.join(promptsource_dir(), dataset, "templates.yaml")
  if not os.path.exists(path):
    raise ValueError(f"promptsource has no templates for {dataset!r} ({path}).")
  with open(path, encoding="utf-8") as f:
    data = yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
  out = []
  for t in data["templates"].values():
    meta = t.get("metadata") or {}
    out.append({"name": t["name"], "jinja": t["jinja"], "answer_choices": t.get("answer_choices"),
                "original_task": bool(meta.get("original_task")),
                "choices_in_prompt": bool(meta.get("choices_in_prompt"))})
  return tuple(out)


@functools.lru_cache(maxsize=1)
def _jinja_env():
  import jinja2

  # Lenient undefined values, as promptsource renders them (a missing key renders empty).
  env = jinja2.Environment()
  env.globals.update(zip=zip)
  env.filters["highlight"] = lambda x: x
  env.filters["most_frequent"] = lambda xs: max(set(xs), key=list(xs).count) if xs else ""
  # promptsource's random choice, drawn from the row's own seeded generator (thread-safe).
  env.filters["choice"] = jinja2.pass_context(lambda ctx, xs: ctx[_RNG].choice(list(xs)))
  return env


@functools.lru_cache(maxsize=4096)
def _compiled(source: str):
  return _jinja_env().from_string(source)


_RNG = "__flan_jax_rng"
_PIPE = "\u241f\u241f\u241f"  # stands in for "|||" inside field values while rendering


def render_promptsource(template: dict, row: Mapping) -> tuple[str, str, list[str]] | None:
  """(input, target, answer choices) of one row with one promptsource template; None when the
  template renders no target for the row (promptsource skips such rows too)."""
  rng = random.Random(_uid(template["name"], json.dumps(row, sort_keys=True, default=str)))
  safe = {k: v.replace("|||", _PIPE) if isinstance(v, str) else v for k, v in row.items()}
  choices: list[str] = []
  if template["answer_choices"]:
    text = _compiled(template["answer_choices"]).render(**safe, **{_RNG: rng})
    choices = [c.strip().replace(_PIPE, "|||") for c in text.split("|||")]
  parts = _compiled(template["jinja"]).render(**safe, answer_choices=choices, **{_RNG: rng})
  parts = parts.split("|||")
  parts = [p.strip().replace(_PIPE, "|||") for p in parts]
  if len(parts) < 2 or not parts[0] or not parts[1]:
    return None
  return parts[0], parts[1], choices


def t0_source(dataset: str, size: int | None = None) -> seqio.DataSource:
  """A T0-SF dataset's ``train`` rows from ``DIR/<dataset>/train.jsonl``, each rendered with
  every promptsource template of the dataset: rows carry the candidates directly. On the ``p3``
  route (:func:`t0_route`), P3's rendered rows instead, one template per row."""

  def rows(split: str) -> Iterator[dict]:
    return _read(promptsource_templates(dataset), _path("t0", dataset, f"{split}.jsonl"))

  def _read(templates: tuple[dict, ...], path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
      for line in f:
        if not line.strip():
          continue
        row = json.loads(line)
        inputs, targets, options = [], [], []
        for t in templates:
          rendered = render_promptsource(t, row)
          if rendered is None:
            continue
          x, y, choices = rendered
          inputs.append(x)
          targets.append(y)
          # Templates that already list their choices get no second options block.
          options.append("" if t["choices_in_prompt"] else OPTION_SEP.join(choices))
        if inputs:
          yield {"_cand_inputs": inputs, "_cand_targets": targets, "_cand_options": options,
                 "_uid": _uid(dataset, line.strip())}

  signature = {"_cand_inputs": _STRS, "_cand_targets": _STRS, "_cand_options": _STRS,
               "_uid": _STR}
  return _T0Source(dataset, rows, signature, {"train": size} if size else None)


# ----------------------------------------------------------------------------- T0-SF from P3

T0_ROUTES = ("promptsource", "p3")
_P3_SCORE_EVAL = "_score_eval"  # P3's rank-classification copies (one row per choice): eval only


@gin.configurable
def t0_route(route: str | None = None) -> str:
  """How T0-SF data is read: ``route`` (gin), else ``FLAN_T0_ROUTE``, else ``p3`` when a P3
  directory is set (``--data_dir p3=DIR`` / ``FLAN_P3_DIR``), else ``promptsource``."""
  route = route or os.environ.get("FLAN_T0_ROUTE") or ("p3" if data_dir("p3") else "promptsource")
  if route not in T0_ROUTES:
    raise ValueError(f"Unknown T0-SF route {route!r}; use one of {T0_ROUTES}.")
  return route


def p3_prefix(dataset: str) -> str:
  """P3's folder-name prefix of a promptsource dataset (``duorc/SelfRC`` -> ``duorc_SelfRC_``):
  P3 names a prompt's folder ``<dataset>_<subset>_<prompt name>`` with every run of characters
  other than letters, digits, ``_`` and ``.`` replaced by ``_``."""
  return re.sub(r"[^\w.]+", "_", dataset.replace("/", "_")) + "_"


def p3_folder(dataset: str, prompt: str) -> str:
  """P3's folder name of one promptsource prompt of ``dataset``."""
  return p3_prefix(dataset) + re.sub(r"[^\w.]+", "_", prompt)


def p3_prompt_dirs(dataset: str, split: str = "train") -> list[str]:
  """The P3 prompt folders of ``dataset`` that hold ``split`` (sorted; no ``_score_eval``)."""
  root = data_dir("p3")
  if not root:
    raise _missing("p3", f"T0-SF {dataset} (P3 folders {p3_prefix(dataset)}*)")
  if os.path.isdir(os.path.join(root, "data")):  # the repository root rather than its data/
    root = os.path.join(root, "data")
  prefix = p3_prefix(dataset)
  found = sorted(
      os.path.join(root, name) for name in (os.listdir(root) if os.path.isdir(root) else [])
      if name.startswith(prefix) and not name.endswith(_P3_SCORE_EVAL)
      and tf.io.gfile.glob(os.path.join(root, name, f"{split}.tfrecord-*")))
  if not found:
    raise _missing("p3", f"T0-SF {dataset}: P3 folders {prefix}*/{split}.tfrecord-*")
  return found


def _p3_features(folder: str, split: str) -> dict[str, tf.io.FixedLenFeature]:
  """The parse spec of the text features, from the folder's ``info.<split>.json`` when present
  (``answer_choices`` only where the prompt has choices)."""
  spec = {"inputs_pretokenized": tf.io.FixedLenFeature([], tf.string),
          "targets_pretokenized": tf.io.FixedLenFeature([], tf.string)}
  info = os.path.join(folder, f"info.{split}.json")
  features = None
  if os.path.exists(info):
    with open(info, encoding="utf-8") as f:
      features = json.load(f).get("features", {})
  if features is None or "answer_choices" in features:
    spec["answer_choices"] = tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
  return spec


def _p3_candidates(folder: str, split: str) -> tf.data.Dataset:
  """One P3 prompt folder as single-template candidates. Its choices become the example's options
  unless the prompt text already lists every one of them."""
  files = sorted(tf.io.gfile.glob(os.path.join(folder, f"{split}.tfrecord-*")))
  spec = _p3_features(folder, split)
  name = os.path.basename(folder)

  def _parse(record: tf.Tensor) -> dict[str, tf.Tensor]:
    ex = tf.io.parse_single_example(record, spec)
    inputs, targets = tf.strings.strip(ex["inputs_pretokenized"]), tf.strings.strip(
        ex["targets_pretokenized"])
    choices = tf.strings.strip(ex.get("answer_choices", tf.constant([], tf.string)))
    choices = tf.boolean_mask(choices, tf.strings.length(choices) > 0)
    # A choice occurs in the prompt when splitting the prompt on it gives more than one piece.
    occurs = tf.map_fn(lambda c: tf.size(tf.strings.split(inputs, sep=c)) > 1, choices,
                       fn_output_signature=tf.bool)
    listed = tf.reduce_all(occurs)
    options = tf.cond(listed | (tf.size(choices) == 0), lambda: tf.constant(""),
                      lambda: tf.strings.reduce_join(choices, separator=OPTION_SEP))
    return {"_cand_inputs": inputs[None], "_cand_targets": targets[None],
            "_cand_options": options[None],
            "_uid": tf.strings.join([name, inputs, targets], "\x1f")}

  return tf.data.TFRecordDataset(files).map(_parse)


def p3_dataset(dataset: str, split: str = "train") -> tf.data.Dataset:
  """T0-SF ``dataset`` from P3: its prompt folders' rows, taken round-robin (deterministic)."""
  parts = [_p3_candidates(folder, split) for folder in p3_prompt_dirs(dataset, split)]
  if len(parts) == 1:
    return parts[0]
  choice = tf.data.Dataset.range(len(parts)).repeat()
  return tf.data.Dataset.choose_from_datasets(parts, choice, stop_on_empty_dataset=False)


class _T0Source(_PythonSource):
  """A T0-SF dataset through the route :func:`t0_route` names when a pipeline is built."""

  def __init__(self, dataset: str, rows: Callable[[str], Iterator[dict]],
               signature: Mapping[str, tf.TensorSpec], sizes: Mapping[str, int] | None):
    super().__init__(rows, signature, ("train",), sizes)
    self.dataset = dataset

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *args, **kwargs) -> tf.data.Dataset:
    if t0_route() != "p3":
      return super().get_dataset(split, shuffle, seed, shard_info, *args, **kwargs)
    ds = p3_dataset(self.dataset, split)
    if shard_info and shard_info.num_shards > 1:
      ds = ds.shard(shard_info.num_shards, shard_info.index)
    return ds

  def count_rows(self, split: str) -> int:
    if t0_route() != "p3":
      return super().count_rows(split)
    return sum(1 for _ in p3_dataset(self.dataset, split))
