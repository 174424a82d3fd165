"""Rank classification (t5-exact): the option with the highest log-likelihood per example."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm

_Groups = dict[int, dict[int, tuple[float, bool]]]  # example -> option -> (score, is_correct)


def _group_rows(targets: Sequence[tuple[Sequence[int], bool]], scores: Sequence[float]
                ) -> tuple[_Groups, dict[str, dict[tuple[int, int], int] | None]]:
  """Rows grouped by example, and each row's token/char length (None: not every row has it)."""
  groups: dict[int, dict[int, tuple[float, bool]]] = collections.defaultdict(dict)
  lengths: dict[str, dict[tuple[int, int], int]] = {"token": {}, "char": {}}
  for target, score in zip(targets, scores, strict=True):
    idx = tuple(int(i) for i in np.asarray(target[0]).reshape(-1))
    if len(idx) < 2:
      raise ValueError(f"A target's idx must be (example_index, option_index); got {idx}.")
    example, option = idx[0], idx[1]
    if option in groups[example]:
      raise ValueError(
          f"idx {(example, option)} occurs more than once. Rank classification needs unique "
          "(example, option) pairs; this is most likely caused by running it in a multi-host "
          "setting where each host evaluated (and so duplicated) the same examples.")
    groups[example][option] = (float(score), bool(target[1]))
    for name, pos in (("token", 2), ("char", 3)):
      if len(target) > pos and lengths[name] is not None and int(target[pos]) > 0:
        lengths[name][(example, option)] = int(target[pos])
      else:
        lengths[name] = None  # Not every row has the length: no such normalisation.
  return groups, lengths


def _argmax(scores: Sequence[float]) -> int:
  """The best option, compared as t5 compares them: in float32 (t5 casts the log-likelihoods,
  length-normalised ones included, to float32 before its argmax), the first of exact ties.

  So options whose float64 scores differ only by rounding (-0.3 / 3 vs -0.1) tie, and the first
  wins, as in t5."""
  return int(np.argmax(np.asarray(scores, dtype=np.float32)))


def _length_normalised_accuracy(groups: _Groups, by_row: Mapping[tuple[int, int], int]) -> float:
  """Accuracy (x100) ranking each example's options by score / length."""
  hits = []
  for example in sorted(groups):
    rows = groups[example]
    options = sorted(rows)
    normed = [rows[o][0] / by_row[(example, o)] for o in options]
    hits.append(rows[options[_argmax(normed)]][1])
  return 100.0 * float(np.mean(hits))


def rank_classification(
    targets: Sequence[tuple[Sequence[int], bool]],
    scores: Sequence[float],
    num_classes: int | None = None,
) -> dict[str, float]:
  """Multiple choice by log-likelihood ranking (a seqio *score* metric).

  Each row is one (example, option) pair: its target is ``(idx, is_correct)`` from
  :func:`rank_classification_postprocessor` with ``idx = (example_index, option_index)`` (longer
  t5 tuples are accepted; extra fields are ignored) and its score the option's summed
  log-likelihood. Rows are grouped by ``idx[0]``; the predicted option is the argmax score,
  compared in float32 as t5 does (ties go to the lowest option index). ``accuracy`` (x100) counts
  a prediction as right when it is any of the correct options.

  Targets may carry the option's token and character lengths as a 3rd and 4th field (as
  :func:`rank_classification_postprocessor` gives them); then ``accuracy_per_token`` and
  ``accuracy_per_char`` rank by score / length too (the latter is lm-eval's ``acc_norm``).

  With ``num_classes`` (a fixed option set, option_index in ``[0, num_classes)``) it also returns
  ``mean_{n}class_f1``: macro F1 of the predicted option index against the first correct option
  index; for two classes additionally ``f1`` of option 1 and, as t5 (when every example has one
  correct option), ``auc-roc`` / ``auc-pr`` of option 1's softmax probability over the two
  options' scores against "option 1 is correct" (NaN when only one class occurs).

  Raises:
    ValueError: on length mismatch, a repeated ``(idx[0], idx[1])`` pair, or (with
      ``num_classes``) an example whose option count or indices do not fit.
  """
  if len(targets) != len(scores):
    raise ValueError(f"Got {len(targets)} targets but {len(scores)} scores.")
  if not len(targets):
    raise ValueError("No examples to score.")

  groups, lengths = _group_rows(targets, scores)
  correct, labels, preds = _predictions(groups, num_classes)
  out = {"accuracy": 100.0 * float(np.mean(correct))}
  for name, by_row in lengths.items():  # lm-eval's acc_norm is the per-character one.
    if by_row is not None:
      out[f"accuracy_per_{name}"] = _length_normalised_accuracy(groups, by_row)
  if num_classes is not None:
    out.update(_class_metrics(groups, labels, preds, num_classes))
  return out


def _predictions(groups: Mapping[int, Mapping[int, tuple[float, bool]]],
                 num_classes: int | None) -> tuple[list[bool], list[int], list[int]]:
  """Per example (in index order): is the argmax option correct, the first correct option
  index (-1: none) and the predicted option index."""
  correct, labels, preds = [], [], []
  for example in sorted(groups):
    rows = groups[example]
    options = sorted(rows)
    option_scores = [rows[o][0] for o in options]
    pred = options[_argmax(option_scores)]
    correct.append(rows[pred][1])
    right = [o for o in options if rows[o][1]]
    labels.append(right[0] if right else -1)
    preds.append(pred)
    if num_classes is not None and options != list(range(num_classes)):
      raise ValueError(
          f"Example {example} has options {options}; num_classes={num_classes} expects "
          f"0..{num_classes - 1}.")
  return correct, labels, preds


def _class_metrics(groups: Mapping[int, Mapping[int, tuple[float, bool]]], labels: list[int],
                   preds: list[int], num_classes: int) -> dict[str, float]:
  """Macro F1 over the fixed option set; for two classes also f1 of option 1 and t5's AUCs."""
  out = {f"mean_{num_classes}class_f1": 100.0 * float(skm.f1_score(
      labels, preds, labels=list(range(num_classes)), average="macro", zero_division=0.0))}
  if num_classes == 2:
    out["f1"] = 100.0 * float(skm.f1_score(labels, preds, labels=[1], average="macro",
                                           zero_division=0.0))
    if all(sum(c for _, c in groups[e].values()) == 1 for e in groups):
      out.update(_binary_auc(groups))
  return out


def _binary_auc(groups: Mapping[int, Mapping[int, tuple[float, bool]]]) -> dict[str, float]:
  """t5's AUC for two-option rank classification: P(option 1) = softmax of the two scores."""
  examples = sorted(groups)
  is_one = np.array([groups[e][1][1] for e in examples], dtype=np.int64)
  scores = np.array([[groups[e][0][0], groups[e][1][0]] for e in examples], dtype=np.float64)
  scores -= scores.max(axis=1, keepdims=True)
  probs = np.exp(scores)
  probs = probs[:, 1] / probs.sum(axis=1)
  if len(set(is_one.tolist())) < 2:
    return {"auc-roc": float("nan"), "auc-pr": float("nan")}
  return {"auc-roc": 100.0 * float(skm.roc_auc_score(is_one, probs)),
          "auc-pr": 100.0 * float(skm.average_precision_score(is_one, probs))}
