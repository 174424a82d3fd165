"""Coreference: Definite Pronoun Resolution, Winogrande, WSC (SuperGLUE) and WSC273.

DPR, Winogrande and WSC273 take the example's own candidate referents as options; SuperGLUE WSC
asks yes/no whether the pronoun refers to the given noun phrase. WSC273 is eval-only.
"""

import tensorflow as tf

from flan_jax.dataset_spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.preprocessors import pick
from flan_jax.templates import T

CLUSTER = "coreference"
SUBCLUSTER = "coreference"
NO_YES = ("no", "yes")


# ------------------------------------------------------------------------ DPR (definite pronoun)

DPR_TEMPLATES = (
    T("{sentence}\n\nWho or what does \"{pronoun}\" refer to in the sentence above?\n\n"
      "{options_}"),
    T("Sentence: {sentence}\nPronoun: {pronoun}\n\nWhich candidate is the pronoun about?\n\n"
      "{options_}"),
    T("Resolve the pronoun \"{pronoun}\" in this sentence:\n{sentence}\n\n{options_}"),
    T("{sentence}\n\nIn that sentence, what is \"{pronoun}\"?\n\n{options_}"),
    T("Read the sentence and decide what the word \"{pronoun}\" stands for.\n\n{sentence}\n\n"
      "{options_}"),
    T("Q: In \"{sentence}\", who or what is meant by \"{pronoun}\"?\nA:\n\n{options_}"),
    T("Here is a sentence with an ambiguous pronoun: {sentence}\n\nWhich of the following does "
      "\"{pronoun}\" point to?\n\n{options_}"),
    T("Which noun phrase is the referent of \"{pronoun}\"?\n\n{sentence}\n\n{options_}"),
    T("{sentence}\nWhom or what does the writer mean by \"{pronoun}\" here?\n\n{options_}"),
    T("Use common sense to find the antecedent of \"{pronoun}\" in the sentence below.\n\n"
      "{sentence}\n\n{options_}"),
)


def _dpr_fields(ex):
  return {"sentence": ex["sentence"], "pronoun": ex["pronoun"],
          "answer": tf.gather(ex["candidates"], tf.cast(ex["label"], tf.int32)),
          "options": ex["candidates"]}


register_dataset(DatasetSpec(
    name="definite_pronoun_resolution",
    cluster=CLUSTER,
    display_name="Definite Pronoun Resolution",
    subcluster=SUBCLUSTER,
    source=tfds_source("definite_pronoun_resolution:1.1.0", train="train[:-200]",
                       validation="train[-200:]", test="test"),
    fields=("sentence", "pronoun", "answer"),
    preprocess=_dpr_fields,
    per_example_options=True,
    metric="accuracy",
    filter_fn=lambda ex: tf.cast(ex["label"], tf.int32) < tf.size(ex["candidates"]),
    templates=DPR_TEMPLATES,
))

# -------------------------------------------------------------------------------- Winogrande

WINOGRANDE_TEMPLATES = (
    T("{sentence}\n\nWhat does the \"_\" in the sentence above stand for?\n\n{options_}"),
    T("Fill in the blank with the option that makes sense.\n\n{sentence}\n\n{options_}"),
    T("Sentence: {sentence}\n\nWhich option belongs in the blank?\n\n{options_}"),
    T("Complete the following sentence.\n\n{sentence}\n\n{options_}"),
    T("{sentence}\n\nWho or what should replace the underscore?\n\n{options_}"),
    T("Q: {sentence}\nWhat goes in the blank?\nA:\n\n{options_}"),
    T("In the sentence below one word or phrase is missing (marked _). Which is it?\n\n"
      "{sentence}\n\n{options_}"),
    T("Use common sense to fill in the gap:\n{sentence}\n\n{options_}"),
    T("Which of the following fits best in the blank of \"{sentence}\"?\n\n{options_}"),
    T("{sentence}\n\nThe blank refers to which of these?\n\n{options_}"),
)


def _winogrande_fields(ex):
  choices = tf.stack([ex["option1"], ex["option2"]])
  return {"sentence": ex["sentence"], "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)),
          "options": choices}


register_dataset(DatasetSpec(
    name="winogrande",
    cluster=CLUSTER,
    display_name="Winogrande",
    subcluster=SUBCLUSTER,
    # winogrande:1.1.0 (the reference's pin) is not loadable in TFDS 4.9.10; 1.2.0 is.
    source=tfds_source("winogrande:1.2.0", train="train_xl[:30000]", validation="train_xl[-200:]",
                       test="validation"),
    fields=("sentence", "answer"),
    preprocess=_winogrande_fields,
    per_example_options=True,
    metric="accuracy",
    # The test split is unlabelled (label -1); it is not used, but keep labels in range anyway.
    filter_fn=lambda ex: tf.cast(ex["label"], tf.int32) >= 0,
    templates=WINOGRANDE_TEMPLATES,
))

# ----------------------------------------------------------------------------- WSC (SuperGLUE)

WSC_TEMPLATES = (
    T("{text}\n\nIn the passage above, does \"{pronoun}\" refer to {noun}?\n\n{options_}"),
    T("Passage: {text}\n\nQuestion: is \"{noun}\" what \"{pronoun}\" refers to?\n\n{options_}"),
    T("{text}\n\nDoes the pronoun \"{pronoun}\" stand for \"{noun}\" here?\n\n{options_}"),
    T("Read the text and answer the question.\n\n{text}\n\nIs \"{pronoun}\" the same as "
      "\"{noun}\"?\n\n{options_}"),
    T("Text: {text}\nPronoun: {pronoun}\nCandidate: {noun}\n\nDoes the pronoun refer to the "
      "candidate?\n\n{options_}"),
    T("Here is a sentence: {text}\n\nWould it be correct to say that \"{pronoun}\" means "
      "{noun}?\n\n{options_}"),
    T("{text}\n\nIf we replaced \"{pronoun}\" with \"{noun}\", would the meaning stay the "
      "same?\n\n{options_}"),
    T("Q: In \"{text}\", is {noun} the referent of \"{pronoun}\"?\nA:\n\n{options_}"),
    T("Decide whether the two expressions below mean the same entity in the text.\n\n{text}\n\n"
      "1. {noun}\n2. {pronoun}\n\n{options_}"),
    T("{text}\n\nWho is \"{pronoun}\"? Is it {noun}?\n\n{options_}"),
)


def _wsc_fields(ex):
  return {"text": ex["text"], "noun": ex["span1_text"], "pronoun": ex["span2_text"],
          "answer": pick(NO_YES, ex["label"])}


register_dataset(DatasetSpec(
    name="wsc",
    cluster=CLUSTER,
    display_name="WSC",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/wsc:1.0.2", train="train[:-50]", validation="train[-50:]",
                       test="validation"),
    fields=("text", "noun", "pronoun", "answer"),
    preprocess=_wsc_fields,
    options=NO_YES,  # label 1: span2 (the pronoun) refers to span1 (the noun phrase).
    metric="accuracy",
    templates=WSC_TEMPLATES,
))

# -------------------------------------------------------------------------------------- WSC273

WSC273_TEMPLATES = (
    T("{text}\n\nWho or what does \"{pronoun}\" refer to in the sentence above?\n\n{options_}"),
    T("In the sentence below, the pronoun is marked with asterisks. What does it refer to?\n\n"
      "{marked}\n\n{options_}"),
    T("Sentence: {text}\nPronoun: {pronoun}\n\nWhich option is the pronoun about?\n\n"
      "{options_}"),
    T("{marked}\n\nWhat is *{pronoun}* here?\n\n{options_}"),
    T("Resolve the reference of \"{pronoun}\":\n{text}\n\n{options_}"),
    T("Q: In \"{text}\", who or what is \"{pronoun}\"?\nA:\n\n{options_}"),
    T("Read this Winograd schema and pick the referent of the marked pronoun.\n\n{marked}\n\n"
      "{options_}"),
    T("{text}\n\nWhen the sentence says \"{pronoun}\", which of these is meant?\n\n{options_}"),
    T("Use common sense: in the sentence \"{text}\", what does \"{pronoun}\" point to?\n\n"
      "{options_}"),
    T("Find the antecedent of the starred pronoun.\n\n{marked}\n\n{options_}"),
)


def _wsc273_fields(ex):
  text = ex["text"]
  # Pronoun character offsets, clamped (mock data has random offsets).
  length = tf.strings.length(text, unit="UTF8_CHAR")
  start = tf.clip_by_value(ex["pronoun_start"], 0, length)
  end = tf.clip_by_value(ex["pronoun_end"], start, length)
  marked = tf.strings.join([
      tf.strings.substr(text, 0, start, unit="UTF8_CHAR"), "*",
      tf.strings.substr(text, start, end - start, unit="UTF8_CHAR"), "*",
      tf.strings.substr(text, end, length - end, unit="UTF8_CHAR")])
  # The options as written in the schema (the *_normalized variants are recased to substitute
  # for the pronoun; as stand-alone answers the original casing reads better).
  choices = tf.stack([ex["option1"], ex["option2"]])
  return {"text": text, "marked": marked, "pronoun": ex["pronoun_text"],
          "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)), "options": choices}


register_dataset(DatasetSpec(
    name="wsc273",
    cluster=CLUSTER,
    display_name="WSC273",
    subcluster=None,  # In no reference cluster: registered for evaluation only.
    # TFDS has only a test split. seqio needs all three canonical splits, so every one reads the
    # full test split; eval_only keeps it out of training mixtures.
    source=tfds_source("wsc273:1.0.0", train="test", validation="test", test="test"),
    fields=("text", "marked", "pronoun", "answer"),
    preprocess=_wsc273_fields,
    per_example_options=True,
    metric="accuracy",
    filter_fn=lambda ex: tf.logical_and(ex["label"] >= 0, ex["label"] < 2),
    eval_only=True,
    templates=WSC273_TEMPLATES,
))
