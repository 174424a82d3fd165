"""Commonsense: COPA, HellaSwag, PiQA, StoryCloze.

All four are multiple choice with the example's own choices as options (``per_example_options``).
"""

import tensorflow as tf

from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "commonsense"
SUBCLUSTER = "common_sense"


def _in_range(index: tf.Tensor, choices: tf.Tensor) -> tf.Tensor:
  """True where ``index`` points at one of ``choices`` (mock data has random labels/lengths)."""
  index = tf.cast(index, tf.int32)
  return tf.logical_and(index >= 0, index < tf.size(choices))


# -------------------------------------------------------------------------------------- COPA

COPA_TEMPLATES = (
    T("{premise} {connector}\n\n{options_}"),
    T("Premise: {premise}\nQuestion: {connector}\n\nPick the more plausible alternative.\n\n"
      "{options_}"),
    T("Complete the sentence with the more likely option.\n\n{premise_clause} {joiner}...\n\n"
      "{options_}"),
    T("Here is an event: \"{premise}\"\n\nWhich of the following is more likely to be its "
      "{relation}?\n\n{options_}"),
    T("{premise_clause} {joiner}\n\nPick the clause that finishes this.\n\n{options_}"),
    T("Think about the situation below and choose the likelier {relation}.\n\n{premise}\n\n"
      "{options_}"),
    T("{premise} {connector} ...\nWhat fills the gap?\n\n{options_}"),
    T("Which alternative is the {relation} of \"{premise}\"?\n\n{options_}"),
    turned("Consider this event: {answer}\n\nDescribe a plausible {inverse_relation} of it.",
           "{premise}"),
    turned("Write a sentence describing something that could be the {inverse_relation} of the "
           "following.\n\n{answer}", "{premise}"),
)


def _copa_fields(ex):
  is_cause = tf.equal(tf.strings.lower(tf.strings.strip(ex["question"])), "cause")
  choices = tf.stack([ex["choice1"], ex["choice2"]])
  return {
      "premise": ex["premise"],
      # The premise without its final full stop, for "<premise> because/so <choice>" templates.
      "premise_clause": tf.strings.regex_replace(ex["premise"], r"[.\s]+$", ""),
      "connector": tf.where(is_cause, "What was the cause?", "What happened as a result?"),
      "joiner": tf.where(is_cause, "because", "so"),
      "relation": tf.where(is_cause, "cause", "effect"),
      # The premise's relation to the answer (the answer is a cause -> the premise is its effect).
      "inverse_relation": tf.where(is_cause, "effect", "cause"),
      "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)),
      "options": choices,
  }


register_dataset(DatasetSpec(
    name="copa",
    cluster=CLUSTER,
    display_name="COPA",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/copa:1.0.2", train="train[:-50]", validation="train[-50:]",
                       test="validation"),
    fields=("premise", "premise_clause", "connector", "joiner", "relation", "inverse_relation",
            "answer"),
    preprocess=_copa_fields,
    per_example_options=True,
    metric="accuracy",
    continuations=(T("{premise_clause} {joiner}"),),
    templates=COPA_TEMPLATES,
))

# --------------------------------------------------------------------------------- HellaSwag

HELLASWAG_TEMPLATES = (
    T("{context}\n\nWhat is the most natural way for this text to continue?\n\n{options_}"),
    T("Pick the ending that best completes the passage.\n\n{context}\n\n{options_}"),
    T("Activity: {activity}\n\n{context}...\n\nHow does it most likely go on?\n\n{options_}"),
    T("{context}\n\nWhich of these comes next?\n\n{options_}"),
    T("Continue the following description of \"{activity}\".\n\n{context}\n\n{options_}"),
    T("Here is the start of a text: {context}\n\nChoose the most sensible continuation.\n\n"
      "{options_}"),
    T("Finish this passage with the option that makes the most sense.\n\n{context}\n\n"
      "{options_}"),
    T("Topic: {activity}\nText: {context}\n\nWhat happens next?\n\n{options_}"),
    T("Q: {context} ... what follows?\nA:\n\n{options_}"),
    T("{context}\n\nSelect the most plausible next sentence.\n\n{options_}"),
)


def _hellaswag_fields(ex):
  # As the reference: WikiHow's "[header] " marker goes, other "[title] "/"[step] " markers in the
  # context become line breaks, and markers in the endings go.
  context = tf.strings.regex_replace(ex["context"], r"\[header\]\s", "")
  context = tf.strings.regex_replace(context, r"\[.*?\]\s", "\n")
  endings = tf.strings.regex_replace(ex["endings"], r"\[.*?\]\s", "")
  return {
      "context": context,
      "activity": ex["activity_label"],
      "answer": tf.gather(endings, tf.cast(ex["label"], tf.int32)),
      "options": endings,
  }


register_dataset(DatasetSpec(
    name="hellaswag",
    cluster=CLUSTER,
    display_name="HellaSwag",
    subcluster=SUBCLUSTER,
    source=tfds_source("hellaswag:1.1.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("context", "activity", "answer"),
    preprocess=_hellaswag_fields,
    per_example_options=True,
    metric="accuracy",
    filter_fn=lambda ex: _in_range(ex["label"], ex["endings"]),
    continuations=(T("{context}"),),
    templates=HELLASWAG_TEMPLATES,
))

# -------------------------------------------------------------------------------------- PiQA

PIQA_TEMPLATES = (
    T("Goal: {goal}\n\nWhich approach would a practical person choose?\n\n{options_}"),
    T("Practical challenge: {goal}\n\n{options_}"),
    T("{goal}\n\nChoose the better solution.\n\n{options_}"),
    T("Here is a practical task: \"{goal}\"\n\nWhich approach would actually work?\n\n"
      "{options_}"),
    T("Task: {goal}\nMethod:\n\n{options_}"),
    T("Use physical common sense to pick the right way to accomplish the goal below.\n\n"
      "{goal}\n\n{options_}"),
    T("Pick the smarter approach to this:\n{goal}\n\n{options_}"),
    T("Someone wants to know: {goal}\nWhat should they do?\n\n{options_}"),
    turned("Here is a method: {answer}\n\nWhat goal could someone achieve with it?", "{goal}"),
    turned("Write a goal that the following solution accomplishes.\n\nSolution: {answer}",
           "{goal}"),
)


def _piqa_fields(ex):
  choices = tf.stack([ex["sol1"], ex["sol2"]])
  return {"goal": ex["goal"], "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)),
          "options": choices}


register_dataset(DatasetSpec(
    name="piqa",
    cluster=CLUSTER,
    display_name="PiQA",
    subcluster=SUBCLUSTER,
    source=tfds_source("piqa:1.0.0", train="train[:-100]", validation="train[-100:]",
                       test="validation"),
    fields=("goal", "answer"),
    preprocess=_piqa_fields,
    per_example_options=True,
    metric="accuracy",
    continuations=(T("Goal: {goal}\nSolution:"),),
    templates=PIQA_TEMPLATES,
))

# -------------------------------------------------------------------------------- StoryCloze

STORY_CLOZE_TEMPLATES = (
    T("{context}\n\nChoose the closing line that fits this story.\n\n{options_}"),
    T("Read the beginning of a short story:\n{context}\n\nChoose the sentence that ends it "
      "best.\n\n{options_}"),
    T("Story: {context}\n\nWhat is the most fitting final sentence?\n\n{options_}"),
    T("Pick the right ending for this story.\n\n{context}\n\n{options_}"),
    T("{context}\n\nAfter all that, which sentence wraps the story up?\n\n{options_}"),
    T("Here are the first four sentences of a story: {context}\n\nWhich fifth sentence makes "
      "sense?\n\n{options_}"),
    T("Finish the story with one of the options.\n\n{context}\n\n{options_}"),
    T("Q: {context} What is the last sentence of the story?\nA:\n\n{options_}"),
    turned("Write the first four sentences of a story that ends like this:\n\n{answer}",
           "{context}"),
    turned("Ending: {answer}\n\nWhat could have happened before this ending? Tell it as a short "
           "story.", "{context}"),
)


STORY_CLOZE_NOTE = (
    "Manual download: request the ROCStories Cloze Test (Spring 2016) at "
    "https://www.cs.rochester.edu/nlp/rocstories/, save the val/test CSVs as "
    "cloze_test_val__spring2016.csv and cloze_test_test__spring2016.csv in "
    "<tfds_data_dir>/downloads/manual/.")


def _story_cloze_fields(ex):
  # TFDS keeps the CSV's 1-based AnswerRightEnding as the label.
  return {"context": ex["context"],
          "answer": tf.gather(ex["endings"], tf.cast(ex["label"], tf.int32) - 1),
          "options": ex["endings"]}


register_dataset(DatasetSpec(
    name="story_cloze",
    cluster=CLUSTER,
    display_name="StoryCloze",
    subcluster=SUBCLUSTER,
    # TFDS has no train split: train on the 2016 validation split, test on its test split.
    source=tfds_source("story_cloze/2016:1.0.0", train="validation[:-200]",
                       validation="validation[-200:]", test="test"),
    fields=("context", "answer"),
    preprocess=_story_cloze_fields,
    per_example_options=True,
    metric="accuracy",
    filter_fn=lambda ex: _in_range(tf.cast(ex["label"], tf.int32) - 1, ex["endings"]),
    note=STORY_CLOZE_NOTE,
    continuations=(T("{context}"),),
    templates=STORY_CLOZE_TEMPLATES,
))
