"""The FLAN paper's headline numbers (arXiv v5), as data for :mod:`flan_jax.evaluation.report`.

Transcribed from ``/work/shared/reference/flan.md`` §4.1-4.3:

* §4.1 Figure 1: per held-out cluster, FLAN 137B zero-shot (the average over the cluster's
  datasets of the *mean over templates*) and GPT-3 175B zero-/few-shot. Checked (✓).
* §4.2 the per-dataset values behind Figure 1 (✓ or Σ: they reproduce the Figure 1 averages).
* §4.3 commonsense, coreference, ReCoRD, DROP, SQuAD v2 and translation: mostly *recalled* (R in
  flan.md, "verify before use"). Those values carry their field name in ``recalled`` so that
  reports can footnote them.

Keys are this project's report row keys: a dataset config name of
:data:`flan_jax.data.spec.DATASETS` (``anli_r1``, ``bool_q``, ...) or, for the reverse direction
of a translation pair (its turned-around templates), the name + :data:`TURNED_SUFFIX`
(``wmt14_enfr`` is En→Fr, ``wmt14_enfr:turned`` is Fr→En). Values are on the 0-100 scale.
"""

from __future__ import annotations

import dataclasses

TURNED_SUFFIX = ":turned"  # Row key of a dataset's turned-around templates (reverse translation).

RECALLED_NOTE = "recalled (marked R in flan.md §4): not checked against the paper; verify"


@dataclasses.dataclass(frozen=True)
class PaperDataset:
  """The paper's numbers for one dataset (None: not given).

  Attributes:
    key: report row key (dataset config name, or name + TURNED_SUFFIX).
    title: the paper's name for it.
    metric: the paper's metric ("acc", "F1a", "EM", "F1", "BLEU").
    flan_zero_shot: FLAN 137B zero-shot, mean over templates.
    flan_best_dev: FLAN 137B zero-shot with the template chosen on dev.
    flan_few_shot: FLAN 137B few-shot (best template), where known.
    gpt3_zero_shot: GPT-3 175B zero-shot.
    gpt3_few_shot: GPT-3 175B few-shot with ``gpt3_k`` exemplars.
    gpt3_k: the number of GPT-3 few-shot exemplars, where known.
    recalled: names of the fields above that flan.md marks as recalled (R).
    note: provenance caveats worth a footnote.
  """

  key: str
  title: str
  metric: str
  flan_zero_shot: float | None = None
  flan_best_dev: float | None = None
  flan_few_shot: float | None = None
  gpt3_zero_shot: float | None = None
  gpt3_few_shot: float | None = None
  gpt3_k: int | None = None
  recalled: frozenset[str] = frozenset()
  note: str = ""

  def is_recalled(self, field: str) -> bool:
    return field in self.recalled


@dataclasses.dataclass(frozen=True)
class PaperCluster:
  """A Figure 1 bar group: averages over ``datasets`` (report row keys)."""

  cluster: str
  title: str
  datasets: tuple[str, ...]
  flan_zero_shot: float
  gpt3_zero_shot: float
  gpt3_few_shot: float
  note: str = ""


_ALL_R = frozenset({"flan_zero_shot", "flan_best_dev", "flan_few_shot", "gpt3_zero_shot",
                    "gpt3_few_shot"})
_GPT3_R = frozenset({"gpt3_zero_shot", "gpt3_few_shot"})
_PWC = "FLAN value from a paperswithcode mirror (✓); its setting is unclear, probably best-dev."


def _d(key: str, title: str, metric: str, **kwargs) -> PaperDataset:
  return PaperDataset(key, title, metric, **kwargs)


_DATASETS: tuple[PaperDataset, ...] = (
    # §4.2: NLI.
    _d("anli_r1", "ANLI R1", "acc", flan_zero_shot=47.7, gpt3_zero_shot=34.6,
       gpt3_few_shot=36.8, gpt3_k=50),
    _d("anli_r2", "ANLI R2", "acc", flan_zero_shot=43.9, gpt3_zero_shot=35.4,
       gpt3_few_shot=34.0, gpt3_k=50),
    _d("anli_r3", "ANLI R3", "acc", flan_zero_shot=47.0, gpt3_zero_shot=34.5,
       gpt3_few_shot=40.2, gpt3_k=50),
    _d("cb", "CB", "acc", flan_zero_shot=64.1, gpt3_zero_shot=46.4, gpt3_few_shot=82.1,
       gpt3_k=32),
    _d("rte", "RTE", "acc", flan_zero_shot=78.3, flan_best_dev=84.1, gpt3_zero_shot=63.5,
       gpt3_few_shot=72.9, gpt3_k=32, recalled=frozenset({"flan_best_dev"})),
    # §4.2: reading comprehension.
    _d("bool_q", "BoolQ", "acc", flan_zero_shot=80.2, flan_best_dev=82.9, gpt3_zero_shot=60.5,
       gpt3_few_shot=77.5, gpt3_k=32,
       note="Best-dev 82.9 is from a third-party leaderboard table (✓); its setting is presumed "
       "best-dev."),
    _d("multirc", "MultiRC", "F1a", flan_zero_shot=74.5, gpt3_zero_shot=72.9,
       gpt3_few_shot=74.8, gpt3_k=32),
    _d("openbookqa", "OBQA", "acc", flan_zero_shot=77.4, gpt3_zero_shot=57.6,
       gpt3_few_shot=65.4, gpt3_k=100),
    # §4.2: closed-book QA.
    _d("arc_challenge", "ARC-c", "acc", flan_zero_shot=61.7, flan_best_dev=63.1,
       flan_few_shot=63.8, gpt3_zero_shot=51.4, gpt3_few_shot=51.5, gpt3_k=50,
       note="FLAN few-shot 63.8 uses k=13 (✓ paperswithcode mirror)."),
    _d("arc_easy", "ARC-e", "acc", flan_zero_shot=79.5, gpt3_zero_shot=68.8, gpt3_few_shot=70.1,
       gpt3_k=50),
    _d("natural_questions", "NQ", "EM", flan_zero_shot=18.6, gpt3_zero_shot=14.6,
       gpt3_few_shot=29.9, gpt3_k=64),
    _d("trivia_qa", "TriviaQA", "EM", flan_zero_shot=66.5, gpt3_zero_shot=64.3,
       gpt3_few_shot=71.2, gpt3_k=64,
       note="A paperswithcode mirror lists 56.7, probably a mis-copy."),
    # §4.3: commonsense and coreference (R unless flan.md marks ✓).
    _d("copa", "COPA", "acc", flan_zero_shot=90.6, gpt3_zero_shot=91.0, gpt3_few_shot=92.0,
       recalled=_ALL_R),
    _d("hellaswag", "HellaSwag", "acc", flan_zero_shot=56.4, flan_best_dev=56.7,
       gpt3_zero_shot=78.9, gpt3_few_shot=79.3, recalled=_ALL_R),
    _d("piqa", "PIQA", "acc", flan_zero_shot=80.9, gpt3_zero_shot=81.0, gpt3_few_shot=82.3,
       recalled=_ALL_R),
    _d("story_cloze", "StoryCloze", "acc", flan_zero_shot=92.2, flan_best_dev=93.4,
       flan_few_shot=94.7, gpt3_zero_shot=83.2, gpt3_few_shot=87.7, recalled=_ALL_R),
    _d("winogrande", "Winogrande", "acc", flan_zero_shot=67.3, flan_few_shot=72.8,
       gpt3_zero_shot=70.2, gpt3_few_shot=77.7,
       recalled=_ALL_R - {"flan_few_shot"},
       note="FLAN few-shot 72.8 uses k=16 (✓ paperswithcode leaderboard)."),
    _d("wsc273", "WSC273", "acc", flan_zero_shot=80.8, gpt3_zero_shot=88.3, gpt3_few_shot=88.6,
       recalled=_ALL_R),
    _d("record", "ReCoRD", "acc", flan_best_dev=72.5, gpt3_zero_shot=90.2, gpt3_few_shot=89.0,
       recalled=_GPT3_R,
       note="FLAN zero-shot 72.5 is a paperswithcode value (✓), setting unclear (probably "
       "best-dev); prompt-tuned FLAN reaches 85.1 (✓)."),
    # §4.3: reading comprehension outside Figure 1 (R, FLAN values approximate).
    _d("drop", "DROP", "F1", flan_zero_shot=22.0, gpt3_zero_shot=23.6, gpt3_few_shot=36.5,
       recalled=_ALL_R, note="FLAN value is approximate (≈22)."),
    _d("squad_v2", "SQuAD v2", "F1", flan_zero_shot=41.0, gpt3_zero_shot=59.5,
       gpt3_few_shot=69.8, recalled=_ALL_R, note="FLAN value is approximate (≈41)."),
    # §4.3: translation, BLEU. GPT-3 values are R except Fr→En few-shot.
    _d("wmt14_enfr:turned", "Fr→En", "BLEU", gpt3_zero_shot=21.2, gpt3_few_shot=39.2,
       recalled=frozenset({"gpt3_zero_shot"})),
    _d("wmt14_enfr", "En→Fr", "BLEU", flan_best_dev=34.0, gpt3_zero_shot=25.2,
       gpt3_few_shot=32.6, recalled=_GPT3_R, note=_PWC),
    _d("wmt16_translate_deen", "De→En", "BLEU", flan_best_dev=39.8, gpt3_zero_shot=27.2,
       gpt3_few_shot=40.6, recalled=_GPT3_R, note=_PWC),
    _d("wmt16_translate_deen:turned", "En→De", "BLEU", flan_best_dev=27.0,
       gpt3_zero_shot=24.6, gpt3_few_shot=29.7, recalled=_GPT3_R, note=_PWC),
    _d("wmt16_translate_roen", "Ro→En", "BLEU", gpt3_zero_shot=19.9, gpt3_few_shot=39.5,
       recalled=_GPT3_R),
    _d("wmt16_translate_roen:turned", "En→Ro", "BLEU", gpt3_zero_shot=14.1, gpt3_few_shot=21.0,
       recalled=_GPT3_R),
)

PAPER_DATASETS: dict[str, PaperDataset] = {d.key: d for d in _DATASETS}

# §4.1 Figure 1 (✓ from two independent transcriptions).
PAPER_CLUSTERS: dict[str, PaperCluster] = {c.cluster: c for c in (
    PaperCluster("nli", "NLI", ("anli_r1", "anli_r2", "anli_r3", "cb", "rte"),
                 flan_zero_shot=56.2, gpt3_zero_shot=42.9, gpt3_few_shot=53.2),
    PaperCluster("reading_comprehension", "Reading comp.", ("bool_q", "multirc", "openbookqa"),
                 flan_zero_shot=77.4, gpt3_zero_shot=63.7, gpt3_few_shot=72.6),
    PaperCluster("closed_book_qa", "Closed-book QA",
                 ("arc_easy", "arc_challenge", "natural_questions", "trivia_qa"),
                 flan_zero_shot=56.6, gpt3_zero_shot=49.8, gpt3_few_shot=55.7,
                 note="v1 of the paper: 53.7, labelled \"Open-domain QA\"."),
)}
