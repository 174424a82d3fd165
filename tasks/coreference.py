"""Coreference: Definite Pronoun Resolution, Winogrande, WSC (SuperGLUE) and WSC273.

DPR takes the example's own candidate referents as options; Winogrande and WSC273 are sentence
completions (each option is a candidate followed by the rest of the sentence), as the reference
builds them; SuperGLUE WSC asks yes/no whether the pronoun refers to the given noun phrase.
WSC273 is eval-only.
"""

import tensorflow as tf

from flan_jax.data.preprocessors import first_or_empty, pick
from flan_jax.data.spec import DatasetSpec, TfdsSource, register_dataset, tfds_source
from flan_jax.data.templates import T, completion

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
# Completion style, as the reference builds it: the context is the sentence up to the blank, and
# each option is a candidate followed by the rest of the sentence. The last four templates show no
# options block (completion templates): the model continues the context with each option.

WINOGRANDE_TEMPLATES = (
    T("Pick the words that close off this sentence.\n\n{context}\n\n{options_}"),
    T("{context}\n\nWhich ending fits the sentence best?\n\n{options_}"),
    T("Finish the sentence below so that it makes sense.\n\n{context}\n\n{options_}"),
    T("Pick the continuation that uses common sense correctly:\n{context}\n\n{options_}"),
    T("Sentence start: {context}\n\nChoose how it goes on.\n\n{options_}"),
    T("Q: What is the most sensible way to complete \"{context}\"?\nA:\n\n{options_}"),
    completion("Continue this sentence in the way that makes the most sense:\n\n{context}"),
    completion("Use common sense to finish the sentence.\n\n{context}"),
    completion("Here is the beginning of a sentence; carry on from where it stops.\n\n{context}"),
    completion("Write the rest of this sentence: {context}"),
)


def _winogrande_fields(ex):
  parts = tf.strings.split(ex["sentence"], "_")
  context = parts[0]
  rest = first_or_empty(parts[1:])  # mock data may have no blank
  choices = tf.stack([tf.strings.join([ex["option1"], rest]),
                      tf.strings.join([ex["option2"], rest])])
  return {"context": context, "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)),
          "options": choices}


register_dataset(DatasetSpec(
    name="winogrande",
    cluster=CLUSTER,
    display_name="Winogrande",
    subcluster=SUBCLUSTER,
    # winogrande:1.1.0 (the reference's pin) is not loadable in TFDS 4.9.10; 1.2.0 is.
    source=tfds_source("winogrande:1.2.0", train="train_xl[:30000]", validation="train_xl[-200:]",
                       test="validation"),
    fields=("context", "answer"),
    preprocess=_winogrande_fields,
    per_example_options=True,
    metric="accuracy",
    # The test split is unlabelled (label -1); it is not used, but keep labels in range anyway.
    filter_fn=lambda ex: tf.cast(ex["label"], tf.int32) >= 0,
    continuations=(T("{context}"),),
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
    T("{text}\n\nWhom does \"{pronoun}\" mean here: {noun}?\n\n{options_}"),
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
# Completion from the pronoun, as the reference builds it: the context is the text before the
# pronoun, and each option is a (normalised) candidate followed by the text after the pronoun.

WSC273_TEMPLATES = (
    T("How should this sentence continue?\n\n{context}\n\n{options_}"),
    T("{context}\n\nWhich continuation makes sense?\n\n{options_}"),
    T("Complete the text below with the ending that fits.\n\n{context}\n\n{options_}"),
    T("Beginning: {context}\n\nSelect the right way to finish it.\n\n{options_}"),
    T("Q: What comes after \"{context}\"?\nA:\n\n{options_}"),
    T("Use common sense: which ending goes with \"{context}\"?\n\n{options_}"),
    T("The sentence below stops halfway. How does it go on?\n\n{context}\n\n{options_}"),
    completion("Carry on with this sentence so that it makes sense:\n\n{context}"),
    completion("Finish the following sentence.\n\n{context}"),
    completion("Add the words that come next: {context}"),
)


def _wsc273_fields(ex):
  text = ex["text"]
  # Pronoun character offsets, clamped (mock data has random offsets).
  length = tf.strings.length(text, unit="UTF8_CHAR")
  start = tf.clip_by_value(tf.cast(ex["pronoun_start"], tf.int32), 0, length)
  end = tf.clip_by_value(tf.cast(ex["pronoun_end"], tf.int32), start, length)
  prefix = tf.strings.strip(tf.strings.substr(text, 0, start, unit="UTF8_CHAR"))
  suffix = tf.strings.strip(tf.strings.substr(text, end, length - end, unit="UTF8_CHAR"))
  choices = tf.strings.join(
      [tf.stack([ex["option1_normalized"], ex["option2_normalized"]]), suffix], separator=" ")
  return {"context": prefix, "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)),
          "options": choices}


register_dataset(DatasetSpec(
    name="wsc273",
    cluster=CLUSTER,
    display_name="WSC273",
    subcluster=None,  # In no reference cluster: registered for evaluation only.
    # TFDS has only a test split, and so has the source (as the reference's): no training task,
    # no few-shot exemplars and no dev split for choosing a template; evaluation only.
    source=TfdsSource("wsc273:1.0.0", {"test": "test"}),
    fields=("context", "answer"),
    preprocess=_wsc273_fields,
    per_example_options=True,
    metric="accuracy",
    filter_fn=lambda ex: tf.logical_and(ex["label"] >= 0, ex["label"] < 2),
    eval_only=True,
    continuations=(T("{context}"),),
    templates=WSC273_TEMPLATES,
))
