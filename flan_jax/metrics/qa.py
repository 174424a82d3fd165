"""Question-answering metrics: SQuAD / TriviaQA EM and F1 (t5's normalisations), ReCoRD, MultiRC."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from flan_jax.metrics.base import _binary_labels, _check_pairs, _references, _text

# The SQuAD / TriviaQA normalisations are hand-written: each is a few lines in the official
# evaluation scripts, and the only packaged versions (HF `evaluate`) load their code from the hub
# at run time, which an offline machine cannot do.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SQUAD_PUNCT = frozenset(string.punctuation)
_TRIVIA_QA_PUNCT = frozenset(string.punctuation + "‘’´`_")


def _normalize(text: str, punct: frozenset[str], repl: str) -> str:
  text = "".join(repl if ch in punct else ch for ch in text.lower())
  return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_squad(text: str) -> str:
  """Official SQuAD v1.1: lowercase, delete punctuation, drop a/an/the, squeeze whitespace."""
  return _normalize(text, _SQUAD_PUNCT, "")


def normalize_trivia_qa(text: str) -> str:
  """Official TriviaQA: lowercase, punctuation (incl. underscores and curly quotes) -> space,
  drop a/an/the, squeeze whitespace."""
  return _normalize(text, _TRIVIA_QA_PUNCT, " ")


def _token_f1(reference: str, prediction: str) -> float:
  """Bag-of-tokens F1 of two normalised strings (0 when they share no token, even if both are
  empty, as in the SQuAD v1.1 script)."""
  pred, ref = prediction.split(), reference.split()
  same = sum((collections.Counter(pred) & collections.Counter(ref)).values())
  if same == 0:
    return 0.0
  precision, recall = same / len(pred), same / len(ref)
  return 2 * precision * recall / (precision + recall)


def _qa_scores(
    targets: Sequence[Any], predictions: Sequence[str], normalize: Callable[[str], str]
) -> dict[str, float]:
  _check_pairs(targets, predictions)
  em, f1 = [], []
  for target, prediction in zip(targets, predictions, strict=True):
    refs = [normalize(r) for r in _references(target)]
    pred = normalize(_text(prediction))
    em.append(max(float(r == pred) for r in refs))
    f1.append(max(_token_f1(r, pred) for r in refs))
  return {"em": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


def squad(targets: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
  """SQuAD EM and token F1, x100; a target is a string or a list of references (max over them)."""
  return _qa_scores(targets, predictions, normalize_squad)


def trivia_qa(
    targets: Sequence[str | Sequence[str]], predictions: Sequence[str]
) -> dict[str, float]:
  """TriviaQA EM and token F1, x100 (TriviaQA normalisation, max over references)."""
  return _qa_scores(targets, predictions, normalize_trivia_qa)


def record(targets: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
  """ReCoRD: EM and F1 with SQuAD normalisation, max over the correct entities (as t5's
  SuperGLUE ``record`` metric)."""
  return _qa_scores(targets, predictions, normalize_squad)


def multirc(
    targets: Sequence[str | Mapping[str, Any]],
    predictions: Sequence[str | Mapping[str, Any]],
    *,
    options: Sequence[str] | None = None,
) -> dict[str, float]:
  """MultiRC: ``f1a`` = binary F1 over all answer options (positive = ``options[1]``), x100.

  Targets may be plain strings or ``{"group": question_id, "value": label}`` dicts (made by
  :func:`multirc_postprocessor` when the example carries ``GROUP_KEY``); predictions may be strings
  or ``{"value": label}``. With grouped targets ``exact_match`` is also returned: the share of
  questions whose answer options are all predicted right. Plain-string targets give ``f1a`` only.
  """
  _check_pairs(targets, predictions)

  def value(x: Any) -> str:
    return _text(x["value"]) if isinstance(x, Mapping) else _text(x)

  t_values = [value(t) for t in targets]
  p_values = [value(p) for p in predictions]
  t, p = _binary_labels(t_values, p_values, options)
  out = {"f1a": 100.0 * float(skm.f1_score(t, p, zero_division=0.0))}
  grouped = [isinstance(x, Mapping) and "group" in x for x in targets]
  if any(grouped):
    if not all(grouped):
      raise ValueError("Either every MultiRC target carries a 'group' or none does.")
    per_group: dict[Hashable, list[bool]] = collections.defaultdict(list)
    for x, tv, pv in zip(targets, t_values, p_values, strict=True):
      per_group[_group_key(x["group"])].append(tv == pv)
    out["exact_match"] = 100.0 * float(np.mean([all(v) for v in per_group.values()]))
  return out


def _group_key(group: Any) -> Hashable:
  if isinstance(group, np.ndarray):
    return tuple(group.tolist())
  if isinstance(group, np.generic):
    return group.item()
  return group
