"""Shared pieces of the metrics: the metric-function type, example keys and target helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MetricFn = Callable[..., dict[str, float]]

# Postprocessors read these keys of the (numpy) example that seqio passes them.
ANSWERS_KEY = "answers"  # 1-D strings, every correct answer (as preprocessors.ANSWERS_KEY).
GROUP_KEY = "group"      # MultiRC: a per-question id, so that EM can be grouped by question.

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
# NOTE: t5's `metrics.rouge` (and so FLAN's numbers) built RougeScorer without a stemmer; this
# project's choice is Porter stemming. Set False (or pass use_stemmer=False) to match t5 exactly.
ROUGE_USE_STEMMER = False
BLEU_TOKENIZER = "intl"  # t5's setting; the sacrebleu CLI default is "13a".
INVALID_FLOAT = -1.0     # STS-B scores lie in [0, 5], so -1 marks an unparsable prediction.




def _text(x: Any) -> str:
  """str from str / bytes / numpy scalar (seqio examples hold numpy bytes); None is an error."""
  if x is None:
    raise ValueError("Got None where a prediction or target string was expected; the model "
                     "output or the example is missing (check the predictions passed in).")
  if isinstance(x, bytes):
    return x.decode("utf-8")
  return str(x)


def _check_pairs(targets: Sequence[Any], predictions: Sequence[Any]) -> None:
  if len(targets) != len(predictions):
    raise ValueError(
        f"Got {len(targets)} targets but {len(predictions)} predictions; they must pair up.")
  if not len(targets):
    raise ValueError("No examples to score.")
  missing = [i for i, p in enumerate(predictions) if p is None]
  if missing:
    raise ValueError(f"Predictions {missing[:5]} are None (of {len(predictions)}); a missing "
                     "model output is an error, not the string 'None'.")


def _references(target: Any) -> list[str]:
  """A target as a non-empty list of reference strings (a str is one reference)."""
  if isinstance(target, (str, bytes)):
    return [_text(target)]
  refs = [_text(t) for t in target]
  if not refs:
    raise ValueError("A target has no reference strings.")
  return refs


def _option_index(options: Sequence[str]) -> dict[str, int]:
  return {_text(o).strip(): i for i, o in enumerate(options)}


def _binary_labels(
    targets: Sequence[str], predictions: Sequence[str], options: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray]:
  """0/1 labels for (negative, positive) = (options[0], options[1]).

  A prediction that is neither option is scored as the opposite of its target (t5's
  ``f1_score_with_invalid``), so it is always wrong.
  """
  if options is None or len(options) != 2:
    raise ValueError(f"A binary metric needs options=(negative, positive); got {options!r}.")
  index = _option_index(options)
  bad = sorted({t for t in targets if t not in index})
  if bad:
    raise ValueError(f"Targets {bad[:5]} are not among the options {list(options)}.")
  t = np.array([index[x] for x in targets])
  p = np.array([index.get(x, -1) for x in predictions])
  invalid = p < 0
  p[invalid] = 1 - t[invalid]
  return t, p


def _class_ids(
    targets: Sequence[str], predictions: Sequence[str], labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
  """Option indices; a prediction outside ``labels`` gets -1 (a class no target has)."""
  index = _option_index(labels)
  bad = sorted({t for t in targets if t not in index})
  if bad:
    raise ValueError(f"Targets {bad[:5]} are not among the options {list(labels)}.")
  return (np.array([index[x] for x in targets]),
          np.array([index.get(x, -1) for x in predictions]))


def _accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> float:
  return 100.0 * float(np.mean([t == p for t, p in zip(targets, predictions, strict=True)]))
