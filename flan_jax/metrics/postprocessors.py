r"""seqio ``postprocess_fn``\ s: model output (and targets) to the values the metrics take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flan_jax.metrics.base import ANSWERS_KEY, GROUP_KEY, INVALID_FLOAT, _text
from flan_jax.metrics.qa import _group_key


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

  Also ROUGE's (FLAN scores CommonGen, DART, E2E and WebNLG against every reference this way).
  Turned-around templates, whose target is not an answer, carry no ``answers``
  (``data.preprocessors.apply_template``), so an example without them keeps its target string.
  Normalisation happens inside the metric.
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
