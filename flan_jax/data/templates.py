"""Instruction templates: an input pattern and a target pattern with named fields.

A template is a pair of ``str.format``-style patterns. Placeholders name fields that a dataset's
preprocessor produces (``{premise}``, ``{answer}``, ...). Classification datasets get the special
field ``{options_}``: the options block FLAN appends to the input, rendered as::

    OPTIONS:
    - first option
    - second option

Rendering happens inside ``tf.data`` (so it runs in seqio pipelines); :func:`render_py` does
the same in plain Python for inspection and tests.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterable, Mapping, Sequence

import tensorflow as tf

OPTIONS_FIELD = "options_"
OPTIONS_HEADER = "OPTIONS:"


@dataclasses.dataclass(frozen=True)
class Template:
  """One instruction template.

  Attributes:
    inputs: pattern of the model input, e.g. ``"{premise}\\nDoes it follow that {hypothesis}?"``.
    targets: pattern of the target, usually ``"{answer}"``.
    turned: True for a "turned around" template (the task inverted, e.g. write a premise that
      supports a given hypothesis). Turned classification templates carry no options block.
    options_free: a classification template that deliberately shows no options block: the
      options are continuations of the input (e.g. Winogrande's sentence completions), scored by
      rank classification. The per-template opt-out of the "end with {options_}" rule.
  """

  inputs: str
  targets: str = "{answer}"
  turned: bool = False
  options_free: bool = False

  @property
  def fields(self) -> frozenset[str]:
    return frozenset(pattern_fields(self.inputs) | pattern_fields(self.targets))

  @property
  def has_options(self) -> bool:
    return OPTIONS_FIELD in pattern_fields(self.inputs)

  def without_options(self) -> Template:
    """The same template with the options block removed (FLAN's "no options" ablation)."""
    return dataclasses.replace(self, inputs=strip_options(self.inputs))


def T(inputs: str, targets: str = "{answer}") -> Template:  # noqa: N802 - reads like a table entry.
  """A regular template."""
  return Template(inputs, targets)


def turned(inputs: str, targets: str) -> Template:
  """A turned-around template (the task inverted)."""
  return Template(inputs, targets, turned=True)


def completion(inputs: str, targets: str = "{answer}") -> Template:
  """A classification template without an options block: the input is continued by an option."""
  return Template(inputs, targets, options_free=True)


def pattern_fields(pattern: str) -> set[str]:
  """Names of the placeholders in a pattern."""
  return {field for _, field, _, _ in string.Formatter().parse(pattern) if field}


def strip_options(pattern: str) -> str:
  """Removes the ``{options_}`` placeholder and the whitespace before it."""
  marker = "{" + OPTIONS_FIELD + "}"
  if marker not in pattern:
    return pattern
  head, _, tail = pattern.partition(marker)
  return head.rstrip() + tail


def format_options_py(options: Sequence[str]) -> str:
  """FLAN's options block: ``OPTIONS:`` then one ``- option`` line per option."""
  return OPTIONS_HEADER + "".join("\n- " + o for o in options)


def format_options_tf(options: tf.Tensor) -> tf.Tensor:
  """TF version of :func:`format_options_py` for a 1-D string tensor."""
  return tf.strings.join([OPTIONS_HEADER, tf.strings.reduce_join("\n- " + options)])


def render_py(pattern: str, fields: Mapping[str, str]) -> str:
  """Fills a pattern from a dict of strings (the reference for :func:`render_tf`)."""
  return pattern.format(**fields)


def render_tf(pattern: str, fields: Mapping[str, tf.Tensor]) -> tf.Tensor:
  """Fills a pattern from a dict of scalar string tensors with ``tf.strings.join``."""
  pieces: list[tf.Tensor | str] = []
  for literal, field, spec, conversion in string.Formatter().parse(pattern):
    if literal:
      pieces.append(literal)
    if field:
      if spec or conversion:
        raise ValueError(f"Template placeholders take no format spec: {{{field}}} in {pattern!r}")
      pieces.append(fields[field])
  if not pieces:
    return tf.constant("")
  return tf.strings.join(pieces)


class TemplateError(ValueError):
  """A template does not fit its dataset."""


def validate_templates(
    dataset: str,
    templates: Sequence[Template],
    fields: Iterable[str],
    *,
    classification: bool,
    expected_count: int | None = 10,
) -> None:
  """Checks a dataset's templates against the fields its preprocessor produces.

  Raises:
    TemplateError: naming the dataset, the template index and what is wrong.
  """
  available = set(fields) | ({OPTIONS_FIELD} if classification else set())
  if expected_count is not None and len(templates) != expected_count:
    raise TemplateError(f"{dataset}: expected {expected_count} templates, got {len(templates)}.")
  seen: dict[tuple[str, str], int] = {}
  for i, template in enumerate(templates):
    missing = sorted(template.fields - available)
    if missing:
      raise TemplateError(
          f"{dataset}: template {i} uses field(s) {missing} that the preprocessor does not "
          f"produce (it produces {sorted(available)}).")
    key = (template.inputs, template.targets)
    if key in seen:
      raise TemplateError(f"{dataset}: template {i} duplicates template {seen[key]}.")
    seen[key] = i
    if OPTIONS_FIELD in pattern_fields(template.targets):
      raise TemplateError(f"{dataset}: template {i} puts the options block in the target.")
    if template.has_options:
      if not template.inputs.rstrip().endswith("{" + OPTIONS_FIELD + "}"):
        raise TemplateError(f"{dataset}: template {i} must end its input with the options block.")
      if template.turned:
        raise TemplateError(f"{dataset}: template {i} is turned around but carries options.")
      if template.options_free:
        raise TemplateError(f"{dataset}: template {i} is marked options_free but has options.")
    elif classification and not template.turned and not template.options_free:
      raise TemplateError(
          f"{dataset}: template {i} is a classification template without the options block; "
          "end its input with {options_}, mark it turned(), or make it a completion() whose "
          "options continue the input.")
  if expected_count is not None and sum(t.turned for t in templates) > 3:
    raise TemplateError(f"{dataset}: at most 3 templates may be turned around.")
