"""Real rows of original dataset releases, checked against the FLAN reference (docs/real_rows.md).

A *releases directory* holds the files that TFDS would download, one folder per dataset (laid out as
``../shared/realdata``: ``cola/in_domain_train.tsv``, ``dart/dart-v1.1.1-full-dev.json``, ...).
:func:`prepare_dataset` runs TFDS's own builder for a dataset on those local files: a download
manager answers every URL with the local file (or a folder staged in the layout the builder
expects), and splits whose files the release lacks are left out. The prepared data then reaches
flan_jax's registered tasks through ``seqio.set_tfds_data_dir_override``. :func:`check` reads each
dataset's FLAN test split through its registered eval task ``{name}_type_0`` and compares every row
with what the reference's own preprocessing (google-research/FLAN ``flan/tasks.py``, ``flan/v2``)
gives for the same raw row: answer, options and their order, the cleaned input fields, all
references, and the split sizes after the reference's split maps. Expectations are computed here
from the raw files (e.g. the gold label column of a TSV), never by flan_jax's task code.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

# ----------------------------------------------------------------------------- outcome


@dataclasses.dataclass
class Outcome:
  """The result of one dataset's checks.

  Attributes:
    dataset: flan_jax's dataset (or CoT task) name.
    folder: the release folder it is read from.
    present: whether the folder exists (absent datasets are listed, not failed).
    rows: rows read through flan_jax's task.
    passed: checks that held.
    failures: one line per failed check.
  """

  dataset: str
  folder: str
  present: bool = True
  rows: int = 0
  passed: int = 0
  failures: list[str] = dataclasses.field(default_factory=list)

  def check(self, what: str, ok: bool, detail: str = "") -> bool:
    """Counts one check; a failed one is recorded as ``what: detail``."""
    if ok:
      self.passed += 1
    else:
      self.failures.append(f"{what}: {detail}" if detail else what)
    return ok

  def equal(self, what: str, actual: Any, expected: Any) -> bool:
    return self.check(what, actual == expected, f"got {actual!r}, expected {expected!r}")

  def rows_agree(self, what: str, pairs: Iterable[tuple[int, Any, Any]]) -> bool:
    """One check over many rows: each ``(row, actual, expected)`` must agree; the failure says
    how many rows differ and shows the first."""
    bad, first = 0, ""
    total = 0
    for row, actual, expected in pairs:
      total += 1
      if actual != expected:
        bad += 1
        if not first:
          first = f"row {row}: got {_short(actual)}, expected {_short(expected)}"
    return self.check(what, bad == 0, f"{bad} of {total} rows differ; first {first}")


def _short(value: Any, limit: int = 160) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + "..."


# ----------------------------------------------------------------------------- raw files


def _jsonl(path: str) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _lines(path: str) -> list[bytes]:
  with open(path, "rb") as f:
    return [line.rstrip(b"\n") for line in f if line.strip()]


def _cola_dev(folder: str) -> list[list[str]]:
  """GLUE's CoLA dev.tsv: the in-domain dev rows, then the out-of-domain ones (no header)."""
  rows = []
  for name in ("in_domain_dev.tsv", "out_of_domain_dev.tsv"):
    with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
      rows += list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
  return rows


def _count_tsv(path: str) -> int:
  with open(path, encoding="utf-8", newline="") as f:
    return sum(1 for _ in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _aeslc_file(text: str) -> tuple[str, str]:
  """An AESLC ``.subject`` file: the email body up to the first blank line, an ``@subject`` line,
  then the subject up to the next blank line."""
  lines = text.splitlines(keepends=True)
  body, i = [], 0
  while i < len(lines) and lines[i] != "\n":
    body.append(lines[i])
    i += 1
  i += 2  # the blank line and "@subject"
  subject = []
  while i < len(lines) and lines[i] != "\n":
    subject.append(lines[i])
    i += 1
  return "".join(body), "".join(subject)


@functools.cache
def _aeslc_release(folder: str) -> dict[str, list[tuple[str, str]]]:
  """The release's ``.subject`` files parsed, per folder (train, dev, test)."""
  out: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
  with tarfile.open(os.path.join(folder, AESLC_TARBALL)) as tar:
    for member in tar:
      parts = member.name.split("/")
      if member.isfile() and len(parts) == 3 and parts[1] in out and parts[2].endswith(".subject"):
        out[parts[1]].append(_aeslc_file(tar.extractfile(member).read().decode("utf-8")))
  return out


AESLC_TARBALL = "aeslc_enron_subject_line.tar.gz"

# ----------------------------------------------------------------------------- staging
# Each stage function lays a release folder out as the builder's download would be, in ``work``,
# and returns {basename of a URL the builder asks for: local path}.


def _stage_cola(folder: str, work: str) -> dict[str, str]:
  os.makedirs(os.path.join(work, "CoLA"), exist_ok=True)
  shutil.copyfile(os.path.join(folder, "in_domain_train.tsv"),
                  os.path.join(work, "CoLA", "train.tsv"))
  with open(os.path.join(work, "CoLA", "dev.tsv"), "wb") as out:
    for name in ("in_domain_dev.tsv", "out_of_domain_dev.tsv"):  # GLUE's dev.tsv: in-domain first
      with open(os.path.join(folder, name), "rb") as f:
        data = f.read()
      out.write(data if data.endswith(b"\n") else data + b"\n")
  return {"CoLA.zip": work}


def _stage_aeslc(folder: str, work: str) -> dict[str, str]:
  # TFDS downloads the repository's master.zip: AESLC-master/enron_subject_line/{train,dev,test}.
  target = os.path.join(work, "AESLC-master")
  os.makedirs(target, exist_ok=True)
  with tarfile.open(os.path.join(folder, AESLC_TARBALL)) as tar:
    for member in tar:  # only enron_subject_line/<split>/<name>.subject (no links, no "..")
      parts = member.name.split("/")
      if (member.isfile() and len(parts) == 3 and parts[0] == "enron_subject_line"
          and parts[1] in ("train", "dev", "test") and parts[2].endswith(".subject")):
        os.makedirs(os.path.join(target, parts[0], parts[1]), exist_ok=True)
        with open(os.path.join(target, *parts), "wb") as f:
          f.write(tar.extractfile(member).read())
  return {"master.zip": work}


def _stage_piqa(folder: str, work: str) -> dict[str, str]:
  # AI2's zip: physicaliqa-train-dev/{dev.jsonl,dev-labels.lst}; its dev rows carry an id, which
  # the authors' copy lacks (FLAN never reads it).
  target = os.path.join(work, "physicaliqa-train-dev")
  os.makedirs(target, exist_ok=True)
  with open(os.path.join(target, "dev.jsonl"), "w", encoding="utf-8") as f:
    for i, row in enumerate(_jsonl(os.path.join(folder, "valid.jsonl"))):
      f.write(json.dumps({"id": f"dev-{i}", **row}) + "\n")
  shutil.copyfile(os.path.join(folder, "valid-labels.lst"), os.path.join(target, "dev-labels.lst"))
  return {"physicaliqa-train-dev.zip": work}


def _files(*names: str) -> Callable[[str, str], dict[str, str]]:
  """A release whose files are exactly what the builder downloads (same basenames)."""
  def stage(folder: str, work: str) -> dict[str, str]:
    del work
    return {n: os.path.join(folder, n) for n in names if os.path.exists(os.path.join(folder, n))}
  return stage


def _stage_fewglue(task_dir: str) -> Callable[[str, str], dict[str, str]]:
  """FewGLUE's 32 train rows stand in for both train.jsonl and val.jsonl of ``<task>.zip``."""
  def stage(folder: str, work: str) -> dict[str, str]:
    target = os.path.join(work, task_dir)
    os.makedirs(target, exist_ok=True)
    for name in ("train.jsonl", "val.jsonl"):
      shutil.copyfile(os.path.join(folder, task_dir, "train.jsonl"), os.path.join(target, name))
    return {f"{task_dir}.zip": work}
  return stage


class LocalDownloadManager:
  """What a TFDS builder's ``_split_generators`` needs of a download manager, answered from local
  files: each URL maps to ``files[basename]``; a URL the release lacks maps to a path that does
  not exist (the split that needs it is left out by :func:`build`)."""

  def __init__(self, files: Mapping[str, str], absent_dir: str):
    self.files = dict(files)
    self.absent_dir = absent_dir
    self.downloaded_size = 0

  def _resolve(self, url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return self.files.get(name, os.path.join(self.absent_dir, name))

  def download(self, urls: Any) -> Any:
    import tensorflow_datasets as tfds
    return tfds.core.utils.map_nested(self._resolve, urls)

  download_and_extract = download

  def extract(self, paths: Any) -> Any:
    return paths


def _paths(value: Any) -> Iterator[str]:
  if isinstance(value, str):
    yield value
  elif isinstance(value, Mapping):
    for v in value.values():
      yield from _paths(v)
  elif isinstance(value, (list, tuple)):
    for v in value:
      yield from _paths(v)


def build(tfds_name: str, files: Mapping[str, str], data_dir: str, work: str) -> dict[str, int]:
  """Runs TFDS's builder ``tfds_name`` (``name/config:version``) on local ``files`` into
  ``data_dir``; returns the examples per split. Splits whose input files are missing are left
  out; a dataset already prepared there is reused."""
  import tensorflow_datasets as tfds
  builder = tfds.builder(tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    absent = os.path.join(work, "_absent")
    roots = (work, absent, *files.values())
    builder._make_download_manager = lambda **_: LocalDownloadManager(files, absent)  # noqa: SLF001
    generators = builder._split_generators  # noqa: SLF001

    def present_splits(dl_manager):
      kept = [g for g in generators(dl_manager)
              if all(glob.glob(p) for p in _paths(g.gen_kwargs) if p.startswith(roots))]
      if not kept:
        raise FileNotFoundError(f"{tfds_name}: none of its splits' files are in the release "
                                f"({sorted(files)}).")
      return kept

    builder._split_generators = present_splits  # noqa: SLF001
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints its progress; stdout is results
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          try_download_gcs=False))
  return {name: info.num_examples for name, info in builder.info.splits.items()}


# ----------------------------------------------------------------------------- expectations


@dataclasses.dataclass(frozen=True)
class Expected:
  """What the reference gives for one raw row under a non-turned template.

  Attributes:
    target: the training/eval target (the answer).
    options: the options in the reference's order (classification), else None.
    answers: every correct target the reference scores against (multi-reference), else None.
    shown: text the rendered input must contain (the cleaned input fields).
  """

  target: str
  options: tuple[str, ...] | None = None
  answers: tuple[str, ...] | None = None
  shown: tuple[str, ...] = ()


# The reference's split maps, in our words: FLAN split -> (TFDS split, slice of its rows).
_LAST_200 = {"train": ("train", slice(None, -200)), "validation": ("train", slice(-200, None)),
             "test": ("validation", slice(None))}
_LAST_50 = {"train": ("train", slice(None, -50)), "validation": ("train", slice(-50, None)),
            "test": ("validation", slice(None))}
_FIRST_30K = {"train": ("train", slice(None, 30000)), "validation": ("train", slice(-200, None)),
              "test": ("validation", slice(None))}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One FLAN dataset fed by a release folder.

  Attributes:
    name: flan_jax's dataset name (its tasks are ``{name}_type_{i}``...).
    folder: the release folder.
    stage: lays the folder out as the builder's downloads (see the staging functions).
    raw_sizes: rows per TFDS split in the release (splits it lacks are absent).
    key: the raw row of a TFDS example: ``(raw rows, TFDS example) -> raw row``.
    expect: ``raw row -> Expected``.
    raw_rows: the FLAN test split's raw rows, keyed as ``key`` expects.
    splits: the reference's split map (FLAN split -> TFDS split, slice).
    sizes_from_table: TFDS splits the release lacks whose size flan_jax's static table gives,
      with the size the release implies (e.g. PIQA's train labels file).
  """

  name: str
  folder: str
  stage: Callable[[str, str], dict[str, str]]
  raw_sizes: Callable[[str], dict[str, int]]
  raw_rows: Callable[[str], Any]
  key: Callable[[Any, dict], Any]
  expect: Callable[[Any], Expected]
  splits: Mapping[str, tuple[str, slice]] = dataclasses.field(
      default_factory=lambda: dict(_LAST_200))
  sizes_from_table: Callable[[str], dict[str, int]] = lambda folder: {}


def _text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _options_block(options: Sequence[str]) -> str:
  """The reference's OPTIONS block (``format_options``)."""
  return "OPTIONS:\n- " + "\n- ".join(options)


def _classify(options: Sequence[str], answer: str, *shown: str) -> Expected:
  return Expected(target=answer, options=tuple(options),
                  shown=(*shown, _options_block(options)))


# CoLA ------------------------------------------------------------------------------------------
COLA_OPTIONS = ("unacceptable", "acceptable")  # label 0, 1 (column 2 of the TSV)


def _cola() -> Dataset:
  return Dataset(
      name="cola", folder="cola", stage=_stage_cola,
      raw_sizes=lambda d: {"train": _count_tsv(os.path.join(d, "in_domain_train.tsv")),
                           "validation": len(_cola_dev(d))},
      raw_rows=_cola_dev,
      key=lambda rows, ex: rows[int(ex["idx"])],
      expect=lambda row: _classify(COLA_OPTIONS, COLA_OPTIONS[int(row[1])], row[3]))


# TREC ------------------------------------------------------------------------------------------
# The reference's options, by the coarse label's meaning.
TREC_OPTIONS = ("description", "entity", "abbreviation", "human", "numeric", "location")
TREC_COARSE = {"DESC": "description", "ENTY": "entity", "ABBR": "abbreviation", "HUM": "human",
               "NUM": "numeric", "LOC": "location"}


def _trec_rows(folder: str) -> dict[str, list[str]]:
  """Question text -> the coarse label of each raw row with that text (``LABEL:fine text``)."""
  out: dict[str, list[str]] = {}
  with open(os.path.join(folder, "TREC_10.label"), "rb") as f:
    for line in f:
      label, _, text = line.replace(b"\xf0", b" ").strip().decode().partition(" ")
      out.setdefault(text, []).append(label.split(":")[0])
  return out


def _trec() -> Dataset:
  return Dataset(
      name="trec", folder="trec", stage=_files("train_5500.label", "TREC_10.label"),
      raw_sizes=lambda d: {"train": len(_lines(os.path.join(d, "train_5500.label"))),
                           "test": len(_lines(os.path.join(d, "TREC_10.label")))},
      raw_rows=_trec_rows,
      key=lambda rows, ex: (_text(ex["text"]), rows.get(_text(ex["text"]), ["?"])[0]),
      expect=lambda row: _classify(TREC_OPTIONS, TREC_COARSE.get(row[1], row[1]), row[0]),
      splits={**_LAST_200, "test": ("test", slice(None))})


# PIQA ------------------------------------------------------------------------------------------


def _piqa_rows(folder: str) -> list[tuple[dict, int]]:
  labels = [int(x) for x in _lines(os.path.join(folder, "valid-labels.lst"))]
  return list(zip(_jsonl(os.path.join(folder, "valid.jsonl")), labels, strict=True))


def _piqa_expect(row: tuple[dict, int]) -> Expected:
  ex, label = row
  options = (ex["sol1"], ex["sol2"])
  return _classify(options, options[label], ex["goal"])


def _piqa() -> Dataset:
  return Dataset(
      name="piqa", folder="piqa", stage=_stage_piqa,
      raw_sizes=lambda d: {"validation": len(_lines(os.path.join(d, "valid-labels.lst")))},
      raw_rows=_piqa_rows,
      key=lambda rows, ex: rows[int(_text(ex["id"]).split("-")[1])],
      expect=_piqa_expect,
      splits={"train": ("train", slice(None, -100)), "validation": ("train", slice(-100, None)),
              "test": ("validation", slice(None))},
      sizes_from_table=lambda d: {"train": len(_lines(os.path.join(d, "train-labels.lst")))})


# AESLC -----------------------------------------------------------------------------------------


def _aeslc_expect(row: tuple[str, str]) -> Expected:
  body, subject = row
  # The reference: newlines in the body become spaces; in the subject line they are dropped.
  return Expected(target=subject.replace("\n", ""), shown=(body.replace("\n", " "),))


def _aeslc() -> Dataset:
  def sizes(folder: str) -> dict[str, int]:
    files = _aeslc_release(folder)
    return {"train": len(files["train"]), "validation": len(files["dev"]),
            "test": len(files["test"])}

  return Dataset(
      name="aeslc", folder="aeslc", stage=_stage_aeslc, raw_sizes=sizes,
      # Keyed by body and subject as TFDS parsed them (bodies repeat across files).
      raw_rows=lambda d: {row: row for row in _aeslc_release(d)["test"]},
      key=lambda rows, ex: rows.get((_text(ex["email_body"]), _text(ex["subject_line"]))),
      expect=_aeslc_expect,
      splits={"train": ("train", slice(None)), "validation": ("validation", slice(-200, None)),
              "test": ("test", slice(None))})


# Natural Questions (open) ----------------------------------------------------------------------


def _nq() -> Dataset:
  return Dataset(
      name="natural_questions", folder="natural_questions",
      stage=_files("NQ-open.dev.jsonl", "NQ-open.train.jsonl"),
      raw_sizes=lambda d: {"validation": len(_jsonl(os.path.join(d, "NQ-open.dev.jsonl")))},
      raw_rows=lambda d: {r["question"]: r for r in _jsonl(os.path.join(d, "NQ-open.dev.jsonl"))},
      key=lambda rows, ex: rows.get(_text(ex["question"])),
      # The reference: the question gets a "?"; the first answer is the target, all are scored.
      expect=lambda r: Expected(target=r["answer"][0], answers=tuple(r["answer"]),
                                shown=(r["question"] + "?",)),
      splits=_FIRST_30K)


# GEM: DART and E2E -----------------------------------------------------------------------------
DART_FILE = "dart-v1.1.1-full-dev.json"


def _dart_expect(entry: dict) -> Expected:
  triples = "; ".join(" ".join(t) for t in entry["tripleset"])
  # The reference drops bracketed cells such as [TABLECONTEXT] and [TITLE] from the input.
  triples = re.sub(r"\[(.*?)\]", "", triples)
  refs = tuple(a["text"] for a in entry["annotations"])
  return Expected(target=refs[0], answers=refs, shown=(triples,))


def _gem_index(ex: dict) -> int:
  return int(_text(ex["gem_id"]).rsplit("-", 1)[1])


def _dart() -> Dataset:
  def rows(folder: str) -> list[dict]:
    with open(os.path.join(folder, DART_FILE), encoding="utf-8") as f:
      return json.load(f)

  return Dataset(
      name="dart", folder="dart", stage=_files(DART_FILE),
      raw_sizes=lambda d: {"validation": len(rows(d))},
      raw_rows=rows, key=lambda rs, ex: rs[_gem_index(ex)], expect=_dart_expect,
      splits=_FIRST_30K)


def _e2e_rows(folder: str, name: str = "devel-fixed.no-ol.csv") -> list[dict]:
  with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
    return list(csv.DictReader(f))


def _e2e_expect(row: dict) -> Expected:
  # The reference writes each attribute as "name = value": "[" becomes " = ", "]" goes.
  mr = row["mr"].replace("[", " = ").replace("]", "")
  return Expected(target=row["ref"], answers=(row["ref"],), shown=(mr,))


def _e2e() -> Dataset:
  return Dataset(
      name="e2e_nlg", folder="e2e_nlg", stage=_files("devel-fixed.no-ol.csv", "test-fixed.csv"),
      raw_sizes=lambda d: {"validation": len(_e2e_rows(d)),
                           "test": len(_e2e_rows(d, "test-fixed.csv"))},
      raw_rows=_e2e_rows, key=lambda rs, ex: rs[_gem_index(ex)], expect=_e2e_expect,
      splits=_FIRST_30K)


# SuperGLUE (FewGLUE rows) ----------------------------------------------------------------------


def _fewglue(name: str, task_dir: str, expect: Callable[[dict], Expected],
             splits: Mapping[str, tuple[str, slice]], idx: Callable[[dict], Any] | None = None,
             explode: Callable[[dict], Iterable[tuple[Any, dict]]] | None = None) -> Dataset:
  """A SuperGLUE task from FewGLUE's train.jsonl (standing in for train and val)."""
  def path(folder: str) -> str:
    return os.path.join(folder, task_dir, "train.jsonl")

  def rows(folder: str) -> dict:
    raw = _jsonl(path(folder))
    if explode is None:
      return {r["idx"]: r for r in raw}
    return dict(kv for r in raw for kv in explode(r))

  def count(folder: str) -> int:
    return len(rows(folder))

  return Dataset(
      name=name, folder="superglue_fewglue", stage=_stage_fewglue(task_dir),
      raw_sizes=lambda d: {"train": count(d), "validation": count(d)},
      raw_rows=rows, key=lambda rs, ex: rs.get(idx(ex) if idx else int(ex["idx"])),
      expect=expect, splits=splits)


CB_LABELS = {"entailment": "Yes", "contradiction": "No", "neutral": "It's impossible to say"}
RTE_LABELS = {"entailment": "yes", "not_entailment": "no"}
WIC_OPTIONS = ("different meanings", "the same meaning")  # label False, True
NO_YES = ("no", "yes")  # label False/0, True/1


def _copa(r: dict) -> Expected:
  options = (r["choice1"], r["choice2"])
  return _classify(options, options[int(r["label"])], r["premise"])


def _wsc(r: dict) -> Expected:
  t = r["target"]
  return _classify(NO_YES, NO_YES[int(r["label"])], r["text"], t["span1_text"], t["span2_text"])


def _multirc_rows(r: dict) -> Iterator[tuple[Any, dict]]:
  passage = r["passage"]
  for q in passage["questions"]:
    for a in q["answers"]:
      yield (r["idx"], q["idx"], a["idx"]), {"paragraph": passage["text"],
                                             "question": q["question"], "answer": a["text"],
                                             "label": a["label"]}


def _multirc(r: dict) -> Expected:
  # The reference passes the paragraph on as TFDS gives it (whitespace included).
  return _classify(NO_YES, NO_YES[int(r["label"])], r["paragraph"], r["question"], r["answer"])


def _record_rows(r: dict) -> Iterator[tuple[Any, dict]]:
  passage = r["passage"]
  text = passage["text"]
  entities = sorted({text[e["start"]:e["end"] + 1] for e in passage["entities"]})
  for qa in r["qas"]:
    yield (r["idx"], qa["idx"]), {"passage": text, "query": qa["query"], "entities": entities,
                                  "answers": sorted({a["text"] for a in qa["answers"]})}


def _record(r: dict) -> Expected:
  # The reference: the query's text after @placeholder is appended to every entity (the options)
  # and every answer; the passage is cut at its first "\n@highlight"; the query keeps the text
  # before @placeholder, stripped.
  left, right = r["query"].split("@placeholder", 1)
  options = tuple(e + right for e in r["entities"])
  answers = tuple(a + right for a in r["answers"])
  passage = r["passage"].split("\n@highlight", 1)[0]
  return Expected(target=answers[0], options=options, answers=answers,
                  shown=(passage, left.strip(), _options_block(options)))


def _superglue() -> list[Dataset]:
  return [
      _fewglue("cb", "CB", lambda r: _classify(tuple(CB_LABELS.values()), CB_LABELS[r["label"]],
                                               r["premise"], r["hypothesis"]), _LAST_50),
      _fewglue("copa", "COPA", _copa, _LAST_50),
      _fewglue("rte", "RTE", lambda r: _classify(tuple(RTE_LABELS.values()),
                                                 RTE_LABELS[r["label"]], r["premise"],
                                                 r["hypothesis"]), _LAST_200),
      _fewglue("wic", "WiC", lambda r: _classify(WIC_OPTIONS, WIC_OPTIONS[int(r["label"])],
                                                 r["sentence1"], r["sentence2"], r["word"]),
               _LAST_200),
      _fewglue("wsc", "WSC", _wsc, _LAST_50),
      _fewglue("multirc", "MultiRC", _multirc, _LAST_200, explode=_multirc_rows,
               idx=lambda ex: tuple(int(ex["idx"][k]) for k in ("paragraph", "question",
                                                                  "answer"))),
      _fewglue("record", "ReCoRD", _record, _FIRST_30K, explode=_record_rows,
               idx=lambda ex: (int(ex["idx"]["passage"]), int(ex["idx"]["query"]))),
  ]


DATASETS: tuple[Dataset, ...] = (_cola(), _aeslc(), _trec(), _piqa(), _nq(), _dart(), _e2e(),
                                 *_superglue())
# Flan 2022 CoT: the reference's own TSVs (question, answer, rationale), not TFDS.
COT_FOLDER = "cot"
FOLDERS = tuple(dict.fromkeys([d.folder for d in DATASETS] + [COT_FOLDER]))

# ----------------------------------------------------------------------------- preparing


def prepare_dataset(d: Dataset, releases: str, data_dir: str, work: str) -> dict[str, int]:
  """Builds ``d`` from ``releases/<folder>`` with its TFDS builder into ``data_dir`` (files staged
  under ``work``); returns its split sizes."""
  from flan_jax.data import registry
  from flan_jax.data import spec as spec_lib
  registry.ensure_registered()
  stage_dir = os.path.join(work, d.name)
  os.makedirs(stage_dir, exist_ok=True)
  tfds_name = spec_lib.DATASETS[d.name].source.tfds_dataset.name
  return build(tfds_name, d.stage(os.path.join(releases, d.folder), stage_dir), data_dir,
               stage_dir)


# ----------------------------------------------------------------------------- checking


def _decode(value: Any) -> Any:
  import numpy as np
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, np.ndarray) and value.dtype == object:
    return tuple(_decode(v) for v in value.tolist())
  if isinstance(value, dict):
    return {k: _decode(v) for k, v in value.items()}
  return value


def _read(ds: Any) -> list[dict]:
  return [_decode(ex) for ex in ds.as_numpy_iterator()]


def _task_rows(task_name: str, split: str, limit: int | None = None) -> list[dict]:
  """A registered task's split in order (its first ``limit`` rows), strings decoded."""
  from flan_jax.data import registry
  task = registry.get(task_name)
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, num_epochs=1,
                        trim_output_features=False)
  return _read(ds if limit is None else ds.take(limit))


def expected_size(n: int, part: slice) -> int | None:
  """Rows of ``part`` of ``n`` rows; None where a bound lies beyond ``n`` (TFDS refuses such a
  slice, e.g. ``train[:-50]`` of FewGLUE's 32 rows: the release is too small for the map)."""
  if any(b is not None and abs(b) > n for b in (part.start, part.stop)):
    return None
  return len(range(n)[part])


def _check_sizes(out: Outcome, d: Dataset, folder: str, spec: Any) -> int | None:
  """Split sizes after the reference's split maps; returns the test split's expected size. A
  TFDS split the release lacks is compared with flan_jax's static size table where the release
  still tells its size (``sizes_from_table``)."""
  from flan_jax.data import sizes
  tfds_name = spec.source.tfds_dataset.name
  raw, table = d.raw_sizes(folder), d.sizes_from_table(folder)
  test = None
  for split, (tfds_split, part) in d.splits.items():
    if tfds_split in raw:
      want = expected_size(raw[tfds_split], part)
      if want is None:
        continue
      out.equal(f"{split} size", spec.source.num_input_examples(split), want)
    elif tfds_split in table and (want := expected_size(table[tfds_split], part)) is not None:
      out.equal(f"{split} size (static table)",
                sizes.num_examples(tfds_name, spec.source.split_map[split]), want)
    else:
      continue  # the release does not tell this split's size
    if split == "test":
      test = want
  return test


def check_dataset(d: Dataset, releases: str) -> Outcome:
  """Reads ``d``'s FLAN test split through ``{name}_type_0`` (TFDS data must be prepared and
  seqio's data dir set) and checks it against the reference."""
  from flan_jax.data import spec as spec_lib
  folder = os.path.join(releases, d.folder)
  out = Outcome(d.name, d.folder, present=os.path.isdir(folder))
  if not out.present:
    return out
  spec = spec_lib.DATASETS[d.name]
  if spec.templates[0].turned:
    raise ValueError(f"{d.name}: template 0 is turned around; the checks need a plain one.")
  want_test = _check_sizes(out, d, folder, spec)
  task = spec_lib.eval_task(d.name, 0)
  rows = _task_rows(task, "test")
  source = _read(spec.source.get_dataset(split="test", shuffle=False))
  out.rows = len(rows)
  if want_test is not None:
    out.equal("test rows read", len(rows), want_test)
  if not out.equal("rows kept (the reference drops none)", len(rows), len(source)):
    return out
  raw = d.raw_rows(folder)
  expected = []
  for ex in source:
    row = d.key(raw, ex)
    expected.append(None if row is None else d.expect(row))
  missing = [i for i, e in enumerate(expected) if e is None]
  out.check("every row found in the release", not missing,
            f"{len(missing)} rows not found; first row {missing[:1]}")
  pairs = [(i, r, e) for i, (r, e) in enumerate(zip(rows, expected, strict=True)) if e]
  out.rows_agree("answer of every row", ((i, r["targets_pretokenized"], e.target)
                                         for i, r, e in pairs))
  if spec.is_classification:
    out.rows_agree("options and their order", ((i, r.get("options"), e.options)
                                               for i, r, e in pairs))
  out.rows_agree("cleaned input fields shown (texts missing from the input)", (
      (i, [s for s in e.shown if s not in r["inputs_pretokenized"]], []) for i, r, e in pairs))
  if any(e.answers and len(e.answers) > 1 for _, _, e in pairs):
    out.rows_agree("all references kept for scoring", (
        (i, sorted(set(r.get("answers", (r["targets_pretokenized"],)))), sorted(set(e.answers)))
        for i, r, e in pairs if e.answers))
  _check_all_templates(out, spec, expected)
  return out


TEMPLATE_ROWS = 200  # rows of the test split read through the all-templates training task


def _check_all_templates(out: Outcome, spec: Any, expected: Sequence[Expected | None]) -> None:
  """The first :data:`TEMPLATE_ROWS` test rows through ``{name}_{N}templates`` (each row under
  one of the templates): under a plain template the target is the reference's answer, and the
  input shows the OPTIONS block (the reference's options in order) where the template has one."""
  from flan_jax.data import spec as spec_lib
  task = spec_lib.default_train_task(spec)
  rows = _task_rows(task, "test", TEMPLATE_ROWS)
  pairs = [(i, r, e, spec.templates[int(r["template_idx"])])
           for i, (r, e) in enumerate(zip(rows, expected[:len(rows)], strict=True)) if e]
  out.check(f"{task}: several templates used", len({t for *_, t in pairs}) > 1,
            "every row got the same template")
  out.rows_agree(f"{task}: answer under every plain template", (
      (i, r["targets_pretokenized"], e.target) for i, r, e, t in pairs if not t.turned))
  if spec.is_classification:
    out.rows_agree(f"{task}: OPTIONS block shown", (
        (i, _options_block(e.options) in r["inputs_pretokenized"], True)
        for i, r, e, t in pairs if t.has_options))


# CoT -------------------------------------------------------------------------------------------
COT_COLUMNS = ("question", "answer", "rationale")


def cot_file_rows(path: str) -> list[dict[str, str]]:
  """The reference's reading of a CoT TSV: tab-separated question, answer, rationale; the two
  characters ``\\n`` become a newline in the question and the rationale; every field stripped."""
  out = []
  with open(path, encoding="utf-8", newline="") as f:
    for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
      if len(row) != len(COT_COLUMNS):
        raise ValueError(f"{path}:{n}: expected {len(COT_COLUMNS)} tab-separated columns "
                         f"({', '.join(COT_COLUMNS)}), got {len(row)}")
      q, a, r = row
      out.append({"question": q.replace("\\n", "\n").strip(), "answer": a.strip(),
                  "rationale": r.replace("\\n", "\n").strip()})
  return out


def check_cot(releases: str, max_rows: int | None = None) -> list[Outcome]:
  """Each CoT TSV in ``releases/cot`` through ``flan2022_cot_{d}_zs_opt``: the static size (the
  mixing rate's input) equal to the file's rows, and each row's question (real newlines) in the
  input and its rationale and answer in the target; ``max_rows``: only the first rows."""
  import seqio

  from flan_jax.data import local_sources, registry
  folder = os.path.join(releases, COT_FOLDER)
  if not os.path.isdir(folder):
    return [Outcome("cot", COT_FOLDER, present=False)]
  previous = local_sources.data_dir("cot")
  local_sources.set_data_dir("cot", folder)
  try:
    outcomes = []
    for path in sorted(glob.glob(os.path.join(folder, "*_train.tsv"))):
      try:
        outcomes.append(_check_cot_file(path, max_rows, registry, seqio))
      except Exception as e:  # noqa: BLE001 - reported in the table, not swallowed
        out = Outcome(f"cot_{os.path.basename(path)[:-len('_train.tsv')]}", COT_FOLDER)
        out.check("reading the release", False, f"{type(e).__name__}: {e}")
        outcomes.append(out)
    return outcomes
  finally:
    local_sources.set_data_dir("cot", previous)


def _check_cot_file(path: str, max_rows: int | None, registry: Any, seqio: Any) -> Outcome:
  name = os.path.basename(path)[:-len("_train.tsv")]
  out = Outcome(f"cot_{name}", COT_FOLDER)
  want = cot_file_rows(path)
  task_name = f"flan2022_cot_{name}_zs_opt"
  registry.import_lazy(task_name)
  if not out.check("registered", task_name in seqio.TaskRegistry.names(), f"no task {task_name}"):
    return out
  task = seqio.get_mixture_or_task(task_name)
  out.equal("static train size (the mixing rate's input)",
            task.source.num_input_examples("train"), len(want))
  rows = _task_rows(task_name, "train", max_rows)
  out.rows = len(rows)
  count = len(want) if max_rows is None else min(max_rows, len(want))
  if not out.equal("rows read", len(rows), count):
    return out
  want = want[:count]
  pairs = list(enumerate(zip(rows, want, strict=True)))
  out.rows_agree("question shown (real newlines)", (
      (i, w["question"] in r["inputs_pretokenized"], True) for i, (r, w) in pairs))
  out.rows_agree("rationale and answer in the target", (
      (i, [w[k] for k in ("rationale", "answer") if w[k] not in r["targets_pretokenized"]], [])
      for i, (r, w) in pairs))
  return out


# ----------------------------------------------------------------------------- all


def check(releases: str, data_dir: str, work: str, only: Sequence[str] | None = None,
          cot_max_rows: int | None = None) -> list[Outcome]:
  """Prepares (into ``data_dir``, staging under ``work``) and checks every dataset of
  :data:`DATASETS` and the CoT files (``only``: those names; ``"cot"`` for the CoT files); a
  dataset whose folder is absent is reported ``present=False``. Leaves seqio's TFDS data dir
  override at ``data_dir``."""
  import seqio
  if not os.path.isdir(releases):
    raise FileNotFoundError(f"No releases directory {releases!r}: give a directory with one "
                            f"folder per dataset ({', '.join(FOLDERS)}); see docs/real_rows.md.")
  seqio.set_tfds_data_dir_override(data_dir)
  outcomes = [_build_and_check(d, releases, data_dir, work) for d in DATASETS
              if only is None or d.name in only]
  if only is None or "cot" in only:
    outcomes += check_cot(releases, cot_max_rows)
  return outcomes


def _build_and_check(d: Dataset, releases: str, data_dir: str, work: str) -> Outcome:
  """One dataset; a release that its builder or the checks cannot read is a failed check that
  names the error (the other datasets are still checked)."""
  if not os.path.isdir(os.path.join(releases, d.folder)):
    return Outcome(d.name, d.folder, present=False)
  try:
    prepare_dataset(d, releases, data_dir, work)
  except Exception as e:  # noqa: BLE001 - reported in the table, not swallowed
    out = Outcome(d.name, d.folder)
    out.check("TFDS build", False, f"{type(e).__name__}: {e}")
    return out
  try:
    return check_dataset(d, releases)
  except Exception as e:  # noqa: BLE001 - reported in the table, not swallowed
    out = Outcome(d.name, d.folder)
    out.check("reading the release", False, f"{type(e).__name__}: {e}")
    return out


def table(outcomes: Sequence[Outcome]) -> str:
  """A plain-text table: dataset, rows, checks passed/failed, first failure."""
  head = ("dataset", "folder", "rows", "passed", "failed", "first failure")
  lines = []
  for o in outcomes:
    if not o.present:
      lines.append((o.dataset, o.folder, "-", "-", "-", "not present"))
    else:
      lines.append((o.dataset, o.folder, str(o.rows), str(o.passed), str(len(o.failures)),
                    o.failures[0] if o.failures else ""))
  widths = [max(len(r[i]) for r in (head, *lines)) for i in range(5)]
  fmt = "  ".join(f"{{:{w}}}" for w in widths) + "  {}"
  return "\n".join(fmt.format(*r) for r in (head, *lines))
