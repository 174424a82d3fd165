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
``rouge``               ``rouge1``, ``rouge2``, ``rougeLsum`` F-measures, max over references.
``edit_distance``       ``{min,max,mean,median,sum}_edit``: t5's word-level edit distance.
======================  ==========================================================================

Classification kinds compare strings; a prediction that is none of the options counts as wrong.
As in t5 (``t5.evaluation.metrics``, which FLAN used): for ``f1_binary`` it is scored as the
opposite of the target (``f1_score_with_invalid``); for ``mcc`` all invalid predictions form one
extra class (t5's label -1 from ``string_label_to_class_id``). A ``None`` prediction or target is
an error, never the string "None".
"""

from __future__ import annotations

import collections
import functools
import re
import string
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import editdistance
import numpy as np
import sacrebleu
import scipy.stats
from rouge_score import rouge_scorer
from sklearn import metrics as skm

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


# ----------------------------------------------------------------------------- helpers


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


# ----------------------------------------------------------------------------- classification


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


# ----------------------------------------------------------------------------- QA

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


# ----------------------------------------------------------------------------- generation


def bleu(targets: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
  """sacrebleu corpus BLEU with t5's settings (``intl`` tokenizer, exp smoothing, cased).

  One reference per example; a target may also be a list of references, in which case every
  example must have the same number of them.
  """
  _check_pairs(targets, predictions)
  refs = [_references(t) for t in targets]
  if len({len(r) for r in refs}) != 1:
    raise ValueError("bleu needs the same number of references for every example.")
  # sacrebleu wants one list per reference slot.
  streams = [list(stream) for stream in zip(*refs, strict=True)]
  scorer = sacrebleu.metrics.BLEU(lowercase=False, tokenize=BLEU_TOKENIZER, smooth_method="exp",
                                  effective_order=False)
  return {"bleu": float(scorer.corpus_score([_text(p) for p in predictions], streams).score)}


def _sentence_lines(text: str) -> str:
  """t5's trick for rougeLsum: one sentence per line, splitting at " . "."""
  return text.replace(" . ", " .\n")


def rouge(
    targets: Sequence[str | Sequence[str]],
    predictions: Sequence[str],
    *,
    use_stemmer: bool = ROUGE_USE_STEMMER,
) -> dict[str, float]:
  """ROUGE-1/2/Lsum F-measure, x100, averaged over examples.

  A target may be a list of references: each ROUGE type takes the best-scoring reference per
  prediction (FLAN's ``rouge_fn``). The mean replaces t5's bootstrap "mid" estimate, which is
  about the same number but random.
  """
  _check_pairs(targets, predictions)
  scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
  totals = dict.fromkeys(ROUGE_TYPES, 0.0)
  for target, prediction in zip(targets, predictions, strict=True):
    refs = [_sentence_lines(r) for r in _references(target)]
    best = scorer.score_multi(refs, _sentence_lines(_text(prediction)))
    for key in ROUGE_TYPES:
      totals[key] += best[key].fmeasure
  return {key: 100.0 * totals[key] / len(targets) for key in ROUGE_TYPES}


def edit_distance(
    targets: Sequence[str], predictions: Sequence[str], *, lower: bool = True
) -> dict[str, float]:
  """Word-level Levenshtein distance, as t5's ``edit_distance``: min, max, mean, median, sum.

  Words come from splitting the (lowercased) text at every non-word character, exactly like t5,
  so punctuation leaves empty tokens behind ("a, b" -> ["a", "", "b"]).
  """
  _check_pairs(targets, predictions)
  distances = []
  for target, prediction in zip(targets, predictions, strict=True):
    target, prediction = _text(target), _text(prediction)
    if lower:
      target, prediction = target.lower(), prediction.lower()
    distances.append(editdistance.eval(re.split(r"\W", target), re.split(r"\W", prediction)))
  d = np.asarray(distances, dtype=np.float64)
  return {
      "min_edit": float(d.min()),
      "max_edit": float(d.max()),
      "mean_edit": float(d.mean()),
      "median_edit": float(np.median(d)),
      "sum_edit": float(d.sum()),
  }


# ----------------------------------------------------------------------------- postprocessors


def strip_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                        is_target: bool = False) -> str:
  """Text with surrounding whitespace removed (classification kinds)."""
  del example, is_target
  return _text(output).strip()


def string_to_float(output: Any, example: Mapping[str, Any] | None = None,
                    is_target: bool = False, default: float = INVALID_FLOAT) -> float:
  """``float(output)``, or ``default`` (-1.0) when it does not parse (t5's string_to_float)."""
  del example, is_target
  try:
    return float(_text(output).strip())
  except ValueError:
    return default


def qa_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                     is_target: bool = False) -> str | list[str]:
  """t5's ``postprocessors.qa``: a target becomes the example's answer list; text otherwise.

  (Turned-around templates, whose target is not an answer, are scored with ROUGE and never get
  here.) An example without ``answers`` keeps its target string. Normalisation happens inside the
  metric.
  """
  text = _text(output)
  if is_target and example is not None and ANSWERS_KEY in example:
    return [_text(a) for a in np.atleast_1d(example[ANSWERS_KEY])]
  return text


def multirc_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                          is_target: bool = False) -> str | dict[str, Any]:
  """Stripped text; a target becomes ``{"group", "value"}`` when the example has ``GROUP_KEY``."""
  text = _text(output).strip()
  if is_target and example is not None and GROUP_KEY in example:
    return {"group": _group_key(example[GROUP_KEY]), "value": text}
  return text


def rank_classification_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                                      is_target: bool = False) -> Any:
  """For targets ``(idx, is_correct, num_tokens, num_chars)`` from the example (the option's
  token and character lengths feed the normalised accuracies); for predictions the score."""
  if not is_target:
    return output
  if example is None:
    raise ValueError("rank_classification_postprocessor needs the example for targets.")
  idx = tuple(int(i) for i in np.asarray(example["idx"]).reshape(-1))
  num_tokens = int(np.size(example["targets"])) if "targets" in example else 0
  text = example.get("targets_pretokenized")
  num_chars = len(_text(text)) if text is not None else 0
  return idx, bool(example["is_correct"]), num_tokens, num_chars


# ----------------------------------------------------------------------------- rank classification


def rank_classification(
    targets: Sequence[tuple[Sequence[int], bool]],
    scores: Sequence[float],
    num_classes: int | None = None,
) -> dict[str, float]:
  """Multiple choice by log-likelihood ranking (a seqio *score* metric).

  Each row is one (example, option) pair: its target is ``(idx, is_correct)`` from
  :func:`rank_classification_postprocessor` with ``idx = (example_index, option_index)`` (longer
  t5 tuples are accepted; extra fields are ignored) and its score the option's summed
  log-likelihood. Rows are grouped by ``idx[0]``; the predicted option is the argmax score (ties go
  to the lowest option index). ``accuracy`` (x100) counts a prediction as right when it is any of
  the correct options.

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

  correct, labels, preds = [], [], []
  for example in sorted(groups):
    rows = groups[example]
    options = sorted(rows)
    option_scores = [rows[o][0] for o in options]
    pred = options[int(np.argmax(option_scores))]  # np.argmax takes the first maximum.
    correct.append(rows[pred][1])
    right = [o for o in options if rows[o][1]]
    labels.append(right[0] if right else -1)
    preds.append(pred)
    if num_classes is not None and options != list(range(num_classes)):
      raise ValueError(
          f"Example {example} has options {options}; num_classes={num_classes} expects "
          f"0..{num_classes - 1}.")

  out = {"accuracy": 100.0 * float(np.mean(correct))}
  for name, by_row in lengths.items():  # lm-eval's acc_norm is the per-character one.
    if by_row is None:
      continue
    hits = []
    for example in sorted(groups):
      rows = groups[example]
      options = sorted(rows)
      normed = [rows[o][0] / by_row[(example, o)] for o in options]
      hits.append(rows[options[int(np.argmax(normed))]][1])
    out[f"accuracy_per_{name}"] = 100.0 * float(np.mean(hits))
  if num_classes is not None:
    out[f"mean_{num_classes}class_f1"] = 100.0 * float(skm.f1_score(
        labels, preds, labels=list(range(num_classes)), average="macro", zero_division=0.0))
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


# ----------------------------------------------------------------------------- registry

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
    "rouge": ((rouge,), False, None),
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
