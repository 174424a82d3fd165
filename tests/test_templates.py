"""Templates: rendering in TF equals Python, the options block, and registration-time checks."""

import pytest
import tensorflow as tf

from flan_jax.data import templates as tmpl
from flan_jax.data.templates import T, turned

FIELDS = {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}


def test_options_block_is_flans_format():
  assert tmpl.format_options_py(["yes", "no"]) == "OPTIONS:\n- yes\n- no"
  tf_block = tmpl.format_options_tf(tf.constant(["yes", "it is not possible to tell", "no"]))
  assert tf_block.numpy().decode() == "OPTIONS:\n- yes\n- it is not possible to tell\n- no"


@pytest.mark.parametrize("pattern", [
    "{premise}\n\nIs it true that \"{hypothesis}\"?\n\n{options_}",
    "Premise: {premise} {{literal braces}} {hypothesis}",
    "{premise}{hypothesis}",
    "no fields at all",
])
def test_render_tf_matches_python(pattern):
  fields = dict(FIELDS, options_=tmpl.format_options_py(["yes", "no"]))
  tf_fields = {k: tf.constant(v) for k, v in fields.items()}
  assert tmpl.render_tf(pattern, tf_fields).numpy().decode() == tmpl.render_py(pattern, fields)


def test_strip_options_removes_block_and_whitespace():
  t = T("{premise}\n\nTrue?\n\n{options_}")
  assert t.without_options().inputs == "{premise}\n\nTrue?"
  assert not t.without_options().has_options


def _ten(extra=()):
  base = [T(f"{{premise}} {{hypothesis}} q{i}\n\n{{options_}}") for i in range(10 - len(extra))]
  return base + list(extra)


def test_valid_set_passes():
  tmpl.validate_templates("ds", _ten([turned("Write: {premise}", "{hypothesis}")]),
                          FIELDS, classification=True)


def test_missing_field_names_dataset_index_and_field():
  bad = _ten()
  bad[4] = T("{premise} {context}\n\n{options_}")
  with pytest.raises(tmpl.TemplateError, match=r"ds: template 4 .*\['context'\]"):
    tmpl.validate_templates("ds", bad, FIELDS, classification=True)


def test_classification_template_must_end_with_options():
  bad = _ten()
  bad[2] = T("{options_}\n\n{premise} {hypothesis}")
  with pytest.raises(tmpl.TemplateError, match="template 2 must end"):
    tmpl.validate_templates("ds", bad, FIELDS, classification=True)
  bad[2] = T("{premise} {hypothesis} no options here")
  with pytest.raises(tmpl.TemplateError, match="template 2 .*without the options"):
    tmpl.validate_templates("ds", bad, FIELDS, classification=True)


def test_turned_templates_carry_no_options_and_at_most_three():
  with pytest.raises(tmpl.TemplateError, match="turned around but carries options"):
    tmpl.validate_templates("ds", _ten([turned("{premise}\n\n{options_}", "{hypothesis}")]),
                            FIELDS, classification=True)
  four = [turned(f"Write {i}: {{premise}}", "{hypothesis}") for i in range(4)]
  with pytest.raises(tmpl.TemplateError, match="at most 3"):
    tmpl.validate_templates("ds", _ten(four), FIELDS, classification=True)


def test_count_and_duplicates():
  with pytest.raises(tmpl.TemplateError, match="expected 10 templates, got 9"):
    tmpl.validate_templates("ds", _ten()[:9], FIELDS, classification=True)
  dup = _ten()
  dup[7] = dup[3]
  with pytest.raises(tmpl.TemplateError, match="template 7 duplicates template 3"):
    tmpl.validate_templates("ds", dup, FIELDS, classification=True)
