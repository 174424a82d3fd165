"""Evaluation metrics for FLAN tasks, in seqio's metric-function conventions.

seqio tells metric kinds apart by the names of their positional parameters:

* ``fn(targets, predictions) -> dict`` is a *prediction* metric (generative eval): seqio decodes
  the model's output, runs the task's ``postprocess_fn`` on targets and predictions, then calls it;
* ``fn(targets, scores) -> dict`` is a *score* metric: :func:`rank_classification`, which gets one
  log-likelihood per (example, option) row.

:func:`metric_fns` maps a dataset's metric *kind* (a string in :data:`METRIC_KINDS`) to its
prediction metrics and :func:`postprocessor` to the matching ``postprocess_fn``. Values are on
t5's 0-100 scale and use t5's key names (``accuracy``, ``f1``, ``em``, ``bleu``, ``rouge1``, ...),
so numbers can be put next to t5/FLAN logs.

Kinds:

======================  ==========================================================================
kind                    returned keys
======================  ==========================================================================
``accuracy``            ``accuracy``: exact string match.
``f1_binary``           ``accuracy``, ``f1`` of the positive class ``options[1]`` (MRPC/QQP).
``f1_multiclass``       ``accuracy``, ``mean_{n}class_f1``: macro F1 over the n options (CB).
``mcc``                 ``accuracy``, ``matthews_corrcoef`` (CoLA).
``pearson_spearman``    ``pearson_corrcoef``, ``spearman_corrcoef`` on floats (STS-B).
``squad``               ``em``, ``f1`` after SQuAD normalisation, max over references.
``trivia_qa``           ``em``, ``f1`` after TriviaQA normalisation, max over references.
``multirc``             ``f1a`` (F1 over all options), ``exact_match`` per question if grouped.
``record``              ``em``, ``f1`` as ``squad`` (max over the correct entities).
``bleu``                ``bleu``: sacrebleu corpus BLEU, ``intl`` tokenizer (t5's setting).
``rouge``               ``rouge1``, ``rouge2``, ``rougeLsum`` F-measures, max over references
                        (the example's ``answers`` when it has them, as FLAN's ``rouge_fn``).
``edit_distance``       ``{min,max,mean,median,sum}_edit``: t5's word-level edit distance.
======================  ==========================================================================

Classification kinds compare strings; a prediction that is none of the options counts as wrong.
As in t5 (``t5.evaluation.metrics``, which FLAN used): for ``f1_binary`` it is scored as the
opposite of the target (``f1_score_with_invalid``); for ``mcc`` all invalid predictions form one
extra class (t5's label -1 from ``string_label_to_class_id``). A ``None`` prediction or target is
an error, never the string "None".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from flan_jax.metrics.base import (  # noqa: F401
  ANSWERS_KEY,
  BLEU_TOKENIZER,
  GROUP_KEY,
  INVALID_FLOAT,
  ROUGE_TYPES,
  ROUGE_USE_STEMMER,
  MetricFn,
  _text,
)
from flan_jax.metrics.classification import (  # noqa: F401
  accuracy,
  f1_binary,
  f1_multiclass,
  mcc,
  pearson_spearman,
)
from flan_jax.metrics.generation import bleu, edit_distance, rouge  # noqa: F401
from flan_jax.metrics.postprocessors import (  # noqa: F401
  multirc_postprocessor,
  qa_postprocessor,
  rank_classification_postprocessor,
  string_to_float,
  strip_postprocessor,
)
from flan_jax.metrics.qa import (  # noqa: F401
  multirc,
  normalize_squad,
  normalize_trivia_qa,
  record,
  squad,
  trivia_qa,
)
from flan_jax.metrics.rank import rank_classification  # noqa: F401

# kind -> (metric functions, whether they take `options`, postprocess_fn)
_REGISTRY: dict[str, tuple[tuple[MetricFn, ...], bool, Callable | None]] = {
    "accuracy": ((accuracy,), False, strip_postprocessor),
    "f1_binary": ((f1_binary,), True, strip_postprocessor),
    "f1_multiclass": ((f1_multiclass,), True, strip_postprocessor),
    "mcc": ((mcc,), True, strip_postprocessor),
    "pearson_spearman": ((pearson_spearman,), False, string_to_float),
    "squad": ((squad,), False, qa_postprocessor),
    "trivia_qa": ((trivia_qa,), False, qa_postprocessor),
    "multirc": ((multirc,), True, multirc_postprocessor),
    "record": ((record,), False, qa_postprocessor),
    "bleu": ((bleu,), False, None),
    "rouge": ((rouge,), False, qa_postprocessor),  # every reference where "answers" has them
    "edit_distance": ((edit_distance,), False, None),
}

METRIC_KINDS: tuple[str, ...] = tuple(_REGISTRY)
_NEEDS_OPTIONS = ("f1_binary", "multirc")  # positive class = options[1]


def _lookup(kind: str) -> tuple[tuple[MetricFn, ...], bool, Callable | None]:
  try:
    return _REGISTRY[kind]
  except KeyError:
    raise ValueError(
        f"Unknown metric kind {kind!r}; valid kinds: {', '.join(METRIC_KINDS)}.") from None


def metric_fns(kind: str, options: Sequence[str] | None = None) -> list[MetricFn]:
  """seqio prediction metrics ``fn(targets, predictions) -> dict`` for a metric kind.

  Args:
    kind: one of :data:`METRIC_KINDS`.
    options: the dataset's fixed options in rendering order. ``f1_binary`` and ``multirc`` need
      exactly two, ``(negative, positive)``; ``f1_multiclass`` uses them as the label set; ``mcc``
      uses two of them to score invalid predictions as wrong. Other kinds ignore them.

  Raises:
    ValueError: unknown kind (the message lists the valid ones), or missing/wrong ``options``.
  """
  fns, takes_options, _ = _lookup(kind)
  if kind in _NEEDS_OPTIONS and (options is None or len(options) != 2):
    raise ValueError(f"Metric kind {kind!r} needs options=(negative, positive); got {options!r}.")
  if not takes_options or options is None:
    return list(fns)
  opts = tuple(_text(o) for o in options)
  return [functools.update_wrapper(functools.partial(fn, options=opts), fn) for fn in fns]


def postprocessor(kind: str) -> Callable | None:
  """seqio ``postprocess_fn(output, example=None, is_target=False)`` for a kind, or None."""
  return _lookup(kind)[2]
