"""Example forms and cleaning as google-research/FLAN builds them, on realistic mock rows.

Each test feeds a hand-written row in the dataset's TFDS structure through the registered task and
checks the rendered input, options and target against the reference's form (tasks/README.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from flan_jax.data import registry
from flan_jax.data import spec as ds
from tests.helpers import examples, text

registry.ensure_registered()


def _as_dataset(columns: dict):
  def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
    del self, split, decoders, read_config, kwargs
    return tf.data.Dataset.from_tensor_slices(columns)
  return as_dataset


def _decode(x):
  if isinstance(x, bytes):
    return x.decode()
  if isinstance(x, np.ndarray) and x.dtype == object:
    return [_decode(v) for v in x.tolist()]
  if isinstance(x, dict):
    return {k: _decode(v) for k, v in x.items()}
  return x


def fields(name: str, rows: dict, split: str = "train") -> list[dict]:
  """The dataset's fields (+ options, answers) after filter and preprocessing, per kept row."""
  spec = ds.DATASETS[name]
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset(rows)):
    data = spec.source.get_dataset(split=split, shuffle=False)
    for step in ds._Builder(spec).head:
      data = step(data)
    return [_decode(ex) for ex in data.as_numpy_iterator()]


def rendered(task: str, rows: dict, split: str = "test") -> list[tuple[str, str]]:
  """(inputs, targets) of a registered task on the mock rows."""
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset(rows)):
    return [(text(ex, "inputs"), text(ex, "targets")) for ex in examples(task, split, n=50)]


# ----------------------------------------------------------------------------- 1. example forms

WINOGRANDE = {"sentence": ["Sarah was a much better surgeon than Maria so _ always got the harder "
                           "cases."],
              "option1": ["Sarah"], "option2": ["Maria"], "label": [0]}


def test_winogrande_is_completion_style():
  (ex,) = fields("winogrande", WINOGRANDE)
  assert ex["context"] == "Sarah was a much better surgeon than Maria so "
  assert ex["options"] == ["Sarah always got the harder cases.",
                           "Maria always got the harder cases."]
  assert ex["answer"] == "Sarah always got the harder cases."
  spec = ds.DATASETS["winogrande"]
  free = [i for i, t in enumerate(spec.templates) if t.options_free]
  assert free, "the reference's later Winogrande templates have no options block"
  inputs, target = rendered(f"winogrande_type_{free[0]}", WINOGRANDE)[0]
  assert "OPTIONS" not in inputs and inputs.endswith(ex["context"])
  assert target == "Sarah always got the harder cases."
  rows = rendered(ds.scoring_task("winogrande", free[0]), WINOGRANDE)
  assert [t for _, t in rows] == ex["options"]  # rank classification over the completions
  with_block, _ = rendered("winogrande_type_0", WINOGRANDE)[0]
  assert with_block.endswith("OPTIONS:\n- Sarah always got the harder cases.\n- Maria always got "
                             "the harder cases.")


def test_wsc273_completes_from_the_pronoun():
  sentence = ("The city councilmen refused the demonstrators a permit because they feared "
              "violence.")
  start = sentence.index(" they ") + 1
  rows = {"text": [sentence], "pronoun_text": ["they"], "pronoun_start": [start],
          "pronoun_end": [start + 4], "option1": ["The city councilmen"],
          "option2": ["The demonstrators"], "option1_normalized": ["the city councilmen"],
          "option2_normalized": ["the demonstrators"], "label": [0]}
  (ex,) = fields("wsc273", rows, split="test")
  assert ex["context"] == "The city councilmen refused the demonstrators a permit because"
  assert ex["options"] == ["the city councilmen feared violence.",
                           "the demonstrators feared violence."]
  assert ex["answer"] == "the city councilmen feared violence."
  inputs, target = rendered("wsc273_type_0", rows)[0]
  assert ex["context"] in inputs and target == ex["answer"]


RECORD = {
    "passage": ["The club won the cup on Saturday.\n@highlight\nFans cheered\n@highlight\nA "
                "parade is planned"],
    "query": ["Supporters of @placeholder filled the streets after the final."],
    "entities": [["Chelsea", "Arsenal"]],
    "answers": [["Chelsea"]],
    "idx": {"passage": [0], "query": [0]},
}


def test_record_cuts_passage_and_completes_the_query():
  (ex,) = fields("record", RECORD)
  assert ex["passage"] == "The club won the cup on Saturday."
  assert ex["query"] == "Supporters of"
  assert ex["options"] == ["Chelsea filled the streets after the final.",
                           "Arsenal filled the streets after the final."]
  assert ex["answers"] == ["Chelsea filled the streets after the final."]
  spec = ds.DATASETS["record"]
  for i in range(len(spec.templates)):
    inputs, target = rendered(f"record_type_{i}", RECORD)[0]
    assert "Supporters of" in inputs, i  # every template shows the query
    assert "@highlight" not in inputs and "Fans cheered" not in inputs
    assert target == "Chelsea filled the streets after the final."


WMT = {"de": ["Guten Morgen, wie geht es dir?"], "en": ["Good morning, how are you?"]}


def test_wmt16_directions_follow_the_reference():
  inputs, target = rendered("wmt16_translate_deen_type_0", WMT)[0]
  assert "Good morning, how are you?" in inputs and target == "Guten Morgen, wie geht es dir?"
  assert "German" in inputs
  # English -> X majority (0, 4-7), X -> English (1-3), write in X (8), identify X (9).
  for i in (0, 4, 5, 6, 7):
    assert rendered(f"wmt16_translate_deen_type_{i}", WMT)[0][1] == WMT["de"][0], i
  for i in (1, 2, 3):
    inputs, target = rendered(f"wmt16_translate_deen_type_{i}", WMT)[0]
    assert target == WMT["en"][0] and WMT["de"][0] in inputs, i
  inputs, target = rendered("wmt16_translate_deen_type_8", WMT)[0]
  assert target == WMT["de"][0] and "German" in inputs and WMT["en"][0] not in inputs
  inputs, target = rendered("wmt16_translate_deen_type_9", WMT)[0]
  assert target == "German" and WMT["de"][0] in inputs
  ru = {"ru": ["Доброе утро."], "en": ["Good morning."]}
  assert rendered("wmt16_translate_ruen_type_0", ru)[0][1] == "Доброе утро."


SENT140 = {"text": ["i hate mondays", "going to the shop", "best day ever"],
           "polarity": [0, 2, 4], "date": ["d"] * 3, "query": ["q"] * 3, "user": ["u"] * 3}


def test_sentiment140_keeps_neutral_test_tweets_as_negative():
  rows = rendered("sentiment140_type_0", SENT140)
  assert [t for _, t in rows] == ["negative", "negative", "positive"]
  assert "going to the shop" in rows[1][0]


def test_sentiment140_opt_in_drops_neutral():
  from tasks import sentiment
  name = "sentiment140_no_neutral_test"
  if name not in ds.DATASETS:
    ds.register_dataset(sentiment.sentiment140_spec(name, drop_neutral=True, suite="custom"))
  rows = rendered(f"{name}_type_0", SENT140)
  assert [t for _, t in rows] == ["negative", "positive"]


DROP = {"passage": ["The Bears scored 3 touchdowns and 2 field goals."],
        "question": ["How many touchdowns did the Bears score?"], "answer": ["3"],
        "validated_answers": [["three"]], "query_id": ["q0"]}


def test_drop_scores_against_the_single_answer_by_default():
  (ex,) = fields("drop", DROP)
  assert ex["answer"] == "3" and ex["answers"] == ["3"]
  from tasks import reading_comprehension
  name = "drop_validated_test"
  if name not in ds.DATASETS:
    ds.register_dataset(reading_comprehension.drop_spec(name, validated_answers=True,
                                                        suite="custom"))
  (ex,) = fields(name, DROP)
  assert ex["answers"] == ["3", "three"]


def test_trivia_qa_targets_are_normalised():
  rows = {"question": ["Which band recorded Abbey Road?"], "question_id": ["tq0"],
          "answer": {"value": ["The Beatles"], "normalized_value": ["beatles"],
                     "aliases": [["The Beatles", "Beatles"]],
                     "normalized_aliases": [["beatles", "fab four"]],
                     "type": ["WikipediaEntity"]}}
  (ex,) = fields("trivia_qa", rows)
  assert ex["answer"] == "beatles" and ex["answers"] == ["beatles", "fab four"]
  assert rendered("trivia_qa_type_0", rows)[0][1] == "beatles"


# ----------------------------------------------------------------------------- 2. cleaning


def test_hellaswag_markers_removed():
  rows = {"context": ["[header] How to bake bread [title] Mix the flour. [step] Add water"],
          "endings": [["[substeps] Knead it well.", "Eat it raw.", "[title] Bake it.",
                       "Throw it."]],
          "activity_label": ["Baking"], "label": [0], "split_type": ["indomain"],
          "source_id": ["s"]}
  (ex,) = fields("hellaswag", rows)
  assert ex["context"] == "How to bake bread \nMix the flour. \nAdd water"
  assert ex["options"] == ["Knead it well.", "Eat it raw.", "Bake it.", "Throw it."]
  assert ex["answer"] == "Knead it well."


def test_imdb_br_tags_become_newlines():
  (ex,) = fields("imdb_reviews", {"text": ["Great film.<br /><br />Loved it."], "label": [1]})
  assert ex["text"] == "Great film.\n\nLoved it." and ex["answer"] == "positive"


def test_yelp_escapes_cleaned():
  (ex,) = fields("yelp_polarity_reviews",
                 {"text": ['He said \\""wow\\"" and left.\\nGreat food.'], "label": [0]})
  assert ex["text"] == 'He said "wow" and left. Great food.'


def test_qqp_doubled_quotes():
  (ex,) = fields("glue_qqp", {"question1": ['What does ""hello"" mean?'],
                              "question2": ["Meaning of hello?"], "label": [1], "idx": [0]})
  assert ex["question1"] == "What does 'hello' mean?"


@pytest.mark.parametrize("article, expected", [
    ("LONDON, England (CNN) -- The prime minister spoke today.", "The prime minister spoke today."),
    ("By . Daily Mail Reporter . PUBLISHED: . 10:02 EST, 3 May 2013 . | . UPDATED: . 11:20 EST, "
     "3 May 2013 . The council voted on Monday.", "The council voted on Monday."),
    ("Last updated at 5:06 PM on 2nd June 2012 . Rain fell.", "Rain fell."),
    ("No dateline here. Sales rose in 2013 . Then fell.",
     "No dateline here. Sales rose in 2013 . Then fell."),
])
def test_cnn_dailymail_dateline_removed(article, expected):
  (ex,) = fields("cnn_dailymail", {"article": [article], "highlights": ["h"], "id": ["i"]})
  assert ex["article"] == expected


def test_aeslc_newlines():
  (ex,) = fields("aeslc", {"email_body": ["Hi team,\nSee attached.\n"],
                           "subject_line": ["Budget\nupdate"]})
  assert ex["body"] == "Hi team, See attached. " and ex["answer"] == "Budgetupdate"


def test_samsum_markup_removed():
  (ex,) = fields("samsum", {"dialogue": ["Amanda: look <file_photo>\r\nJerry: nice"],
                            "summary": ["Amanda sends a photo."], "id": ["1"]})
  assert ex["dialogue"] == "Amanda: look  \nJerry: nice"


def test_gigaword_unk_and_hash_filtered():
  rows = {"document": ["UNK company profits rise sharply", "shares rose # percent on monday",
                       "japan 's economy grew in the third quarter"],
          "summary": ["profits rise", "shares rise", "japan economy grows"]}
  kept = fields("gigaword", rows)
  assert [ex["answer"] for ex in kept] == ["japan economy grows"]


def test_opinion_abstracts_numbered_reviews():
  reviews = [f"Review {i}." for i in range(12)]
  (ex,) = fields("opinion_abstracts_rotten_tomatoes", {
      "_movie_name": ["the_dark_knight"], "_critic_consensus": ["Dark and gripping."],
      "_critics": {"key": [[f"c{i}" for i in range(12)]], "value": [reviews]}})
  assert ex["movie"] == "the dark knight"
  assert ex["critics"] == "\n".join(f"{i + 1}. Review {i}." for i in range(10))
  (ex,) = fields("opinion_abstracts_idebate", {
      "_debate_name": ["School uniforms"], "_claim": ["Uniforms reduce bullying."],
      "_argument_sentences": {"key": [["a", "b"]], "value": [["First point.", "Second point."]]}})
  assert ex["argument"] == "1. First point.\n2. Second point."
