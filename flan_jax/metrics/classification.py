"""Classification metrics: accuracy, F1 (binary, multi-class), MCC, Pearson/Spearman."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats
from sklearn import metrics as skm

from flan_jax.metrics.base import _accuracy, _binary_labels, _check_pairs, _class_ids, _text


def accuracy(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Exact string match, x100."""
  _check_pairs(targets, predictions)
  return {"accuracy": _accuracy(targets, predictions)}


def f1_binary(
    targets: Sequence[str], predictions: Sequence[str], *, options: Sequence[str] | None = None
) -> dict[str, float]:
  """Accuracy and F1 of the positive class ``options[1]`` (GLUE MRPC / QQP), x100."""
  _check_pairs(targets, predictions)
  t, p = _binary_labels(targets, predictions, options)
  return {
      "accuracy": _accuracy(targets, predictions),
      "f1": 100.0 * float(skm.f1_score(t, p, zero_division=0.0)),
  }


def f1_multiclass(
    targets: Sequence[str], predictions: Sequence[str], *, options: Sequence[str] | None = None
) -> dict[str, float]:
  """Accuracy and macro F1 over the options (SuperGLUE CB), x100.

  Without ``options`` the label set is the sorted set of targets.
  """
  _check_pairs(targets, predictions)
  labels = list(options) if options is not None else sorted(set(targets))
  t, p = _class_ids(targets, predictions, labels)
  n = len(labels)
  f1 = skm.f1_score(t, p, labels=list(range(n)), average="macro", zero_division=0.0)
  return {"accuracy": _accuracy(targets, predictions), f"mean_{n}class_f1": 100.0 * float(f1)}


def mcc(
    targets: Sequence[str], predictions: Sequence[str], *, options: Sequence[str] | None = None
) -> dict[str, float]:
  """Accuracy and Matthews correlation (CoLA), x100, exactly as t5's GLUE CoLA metric.

  Predictions outside the label set (``options``, else the sorted set of targets) all become one
  extra class, -1 (t5's ``string_label_to_class_id``), whatever their text.
  """
  _check_pairs(targets, predictions)
  labels = list(options) if options is not None else sorted({_text(x).strip() for x in targets})
  t, p = _class_ids([_text(x).strip() for x in targets], [_text(x).strip() for x in predictions],
                    labels)
  return {
      "accuracy": _accuracy(targets, predictions),
      "matthews_corrcoef": 100.0 * float(skm.matthews_corrcoef(t, p)),
  }


def pearson_spearman(
    targets: Sequence[float], predictions: Sequence[float]
) -> dict[str, float]:
  """Pearson and Spearman correlation (STS-B), x100. NaN when either side is constant."""
  _check_pairs(targets, predictions)
  t = np.asarray(targets, dtype=np.float64)
  p = np.asarray(predictions, dtype=np.float64)
  if len(t) < 2 or np.all(t == t[0]) or np.all(p == p[0]):
    # Correlation is undefined; scipy would warn and return NaN (or raise for n < 2).
    return {"pearson_corrcoef": float("nan"), "spearman_corrcoef": float("nan")}
  return {
      "pearson_corrcoef": 100.0 * float(scipy.stats.pearsonr(t, p)[0]),
      "spearman_corrcoef": 100.0 * float(scipy.stats.spearmanr(t, p)[0]),
  }
