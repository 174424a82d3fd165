"""Generation metrics: sacrebleu BLEU, ROUGE-1/2/Lsum, edit distance."""

from __future__ import annotations

import re
from collections.abc import Sequence

import editdistance
import numpy as np
import sacrebleu
from rouge_score import rouge_scorer

from flan_jax.metrics.base import (
  BLEU_TOKENIZER,
  ROUGE_TYPES,
  ROUGE_USE_STEMMER,
  _check_pairs,
  _references,
  _text,
)


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
