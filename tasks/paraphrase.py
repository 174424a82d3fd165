"""Paraphrase: MRPC, QQP, PAWS (Wiki) and STS-B."""

import tensorflow as tf

from flan_jax.data.preprocessors import pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "paraphrase"
SUBCLUSTER = "paraphrase"
NO_YES = ("no", "yes")  # label 0 = not a paraphrase/duplicate, 1 = paraphrase/duplicate.
STSB_OPTIONS = ("0", "1", "2", "3", "4", "5")


def _sentence_pair_fields(ex):
  """MRPC and PAWS: two sentences and a binary paraphrase label."""
  return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"],
          "answer": pick(NO_YES, ex["label"])}


SENTENCE_PAIR_FIELDS = ("sentence1", "sentence2", "answer")

# --------------------------------------------------------------------------------------- MRPC

MRPC_TEMPLATES = (
    T("{sentence1}\n{sentence2}\n\nAre these two lines a restatement of one another?\n\n"
      "{options_}"),
    T("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nIs Sentence B a paraphrase of "
      "Sentence A?\n\n{options_}"),
    T("Are the following two sentences equivalent in meaning?\n\n\"{sentence1}\"\n"
      "\"{sentence2}\"\n\n{options_}"),
    T("Two news sentences:\n{sentence1}\n{sentence2}\nIs the information in them equivalent?\n\n"
      "{options_}"),
    T("First sentence: {sentence1}\nSecond sentence: {sentence2}\n\nDoes the second sentence "
      "restate the first one?\n\n{options_}"),
    T("{sentence1}\n\nDoes the sentence above mean the same as \"{sentence2}\"?\n\n{options_}"),
    T("Decide whether the two sentences below are paraphrases of each other.\n\n1. {sentence1}\n"
      "2. {sentence2}\n\n{options_}"),
    T("Q: Is \"{sentence1}\" just another way of saying \"{sentence2}\"?\n\n{options_}"),
    T("Compare \"{sentence1}\" with \"{sentence2}\". Do the two have the same meaning?\n\n"
      "{options_}"),
    T("An editor rewrote the sentence \"{sentence1}\" as \"{sentence2}\". Did the rewrite keep "
      "the original meaning?\n\n{options_}"),
)

register_dataset(DatasetSpec(
    name="glue_mrpc",
    cluster=CLUSTER,
    display_name="MRPC",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/mrpc:2.0.0", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=SENTENCE_PAIR_FIELDS,
    preprocess=_sentence_pair_fields,
    options=NO_YES,
    metric="f1_binary",
    templates=MRPC_TEMPLATES,
))

# --------------------------------------------------------------------------------------- QQP

QQP_TEMPLATES = (
    T("{question1}\n{question2}\n\nWould one reply cover both of these?\n\n{options_}"),
    T("Question 1: {question1}\nQuestion 2: {question2}\n\nWould the same answer work for both "
      "questions?\n\n{options_}"),
    T("Could \"{question1}\" and \"{question2}\" be merged as duplicates on a Q&A site?\n\n"
      "{options_}"),
    T("One user of a Q&A site asked: {question1}\nAnother user asked: {question2}\nShould the "
      "two posts be merged as duplicates?\n\n{options_}"),
    T("Are the following two questions duplicates of each other?\n\n1) {question1}\n"
      "2) {question2}\n\n{options_}"),
    T("First question: {question1}\nSecond question: {question2}\nIs the second question a "
      "rewording of the first?\n\n{options_}"),
    T("{question1}\n\nIs this question the same as \"{question2}\"?\n\n{options_}"),
    T("Check whether these two questions are paraphrases.\n{question1}\n{question2}\n\n"
      "{options_}"),
    T("Q1: {question1}\nQ2: {question2}\nDo Q1 and Q2 seek the same information?\n\n{options_}"),
    T("I want to know if two questions mean the same thing. The first is \"{question1}\" and the "
      "second is \"{question2}\". Do they?\n\n{options_}"),
)


def _qqp_fields(ex):
  # As the reference: QQP's doubled quotes ("") become an apostrophe.
  return {"question1": tf.strings.regex_replace(ex["question1"], '""', "'"),
          "question2": tf.strings.regex_replace(ex["question2"], '""', "'"),
          "answer": pick(NO_YES, ex["label"])}


register_dataset(DatasetSpec(
    name="glue_qqp",
    cluster=CLUSTER,
    display_name="QQP",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/qqp:2.0.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("question1", "question2", "answer"),
    preprocess=_qqp_fields,
    options=NO_YES,
    metric="f1_binary",
    templates=QQP_TEMPLATES,
))

# --------------------------------------------------------------------------------------- PAWS

PAWS_TEMPLATES = (
    T("{sentence1}\n{sentence2}\n\nIs the second line a faithful rewording of the first?\n\n"
      "{options_}"),
    T("Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nThese sentences share most of their "
      "words. Do they also express the same meaning?\n\n{options_}"),
    T("Is the sentence \"{sentence2}\" a paraphrase of \"{sentence1}\"?\n\n{options_}"),
    T("Read the two sentences and tell whether they are paraphrases.\n\n{sentence1}\n"
      "{sentence2}\n\n{options_}"),
    T("Original: {sentence1}\nReworded: {sentence2}\n\nDoes the reworded version keep the "
      "original meaning?\n\n{options_}"),
    T("{sentence1}\n\nIs that the same as saying \"{sentence2}\"?\n\n{options_}"),
    T("Word order can change meaning. Do \"{sentence1}\" and \"{sentence2}\" say the same "
      "thing?\n\n{options_}"),
    T("Here is a sentence: {sentence1}\nHere is another one: {sentence2}\nWould a careful reader "
      "consider them equivalent?\n\n{options_}"),
    T("Q: Does \"{sentence1}\" have the same meaning as \"{sentence2}\"?\n\n{options_}"),
    T("Determine if these two sentences are semantically equivalent:\n(1) {sentence1}\n"
      "(2) {sentence2}\n\n{options_}"),
)

register_dataset(DatasetSpec(
    name="paws_wiki",
    cluster=CLUSTER,
    display_name="PAWS",
    subcluster=SUBCLUSTER,
    # Default config labeled_final_tokenized (the one FLAN's unqualified name loads).
    source=tfds_source("paws_wiki:1.1.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=SENTENCE_PAIR_FIELDS,
    preprocess=_sentence_pair_fields,
    options=NO_YES,
    metric="accuracy",
    templates=PAWS_TEMPLATES,
))

# --------------------------------------------------------------------------------------- STS-B

STSB_TEMPLATES = (
    T("{sentence1}\n{sentence2}\n\nOn a scale from 0 to 5, how similar in meaning are the two "
      "sentences above?\n\n{options_}"),
    T("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nRate how similar A and B are in "
      "meaning, where 0 means unrelated and 5 means they mean exactly the same.\n\n{options_}"),
    T("How close in meaning are \"{sentence1}\" and \"{sentence2}\"? Give a score from 0 (not at "
      "all) to 5 (identical).\n\n{options_}"),
    T("Score the similarity of these two sentences from 0 to 5.\n\n1. {sentence1}\n"
      "2. {sentence2}\n\n{options_}"),
    T("First: {sentence1}\nSecond: {sentence2}\nOn a 0-5 scale, where higher means more alike, "
      "how similar are they?\n\n{options_}"),
    T("{sentence1}\n\nHow much does the sentence above overlap in meaning with \"{sentence2}\"? "
      "Answer with a number from 0 to 5.\n\n{options_}"),
    T("Q: On a scale of 0 to 5, how similar are \"{sentence1}\" and \"{sentence2}\"?\n\n"
      "{options_}"),
    T("Judge the semantic similarity of this pair, 0 being completely different and 5 being "
      "equivalent:\n{sentence1}\n{sentence2}\n\n{options_}"),
    turned("Write a sentence that has a similarity score of {answer} out of 5 with this one:\n\n"
           "{sentence1}", "{sentence2}"),
    turned("Sentence: {sentence1}\n\nGenerate a second sentence whose meaning matches the first "
           "with a similarity of {answer} on a scale from 0 to 5.", "{sentence2}"),
)


def _stsb_fields(ex):
  # Scores are floats in [0, 5]; the target is the score rounded to the nearest integer (tf.round:
  # ties to even, like Python's round). The clip only matters for out-of-range (mock) values.
  score = tf.round(tf.clip_by_value(tf.cast(ex["label"], tf.float32), 0.0, 5.0))
  return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"],
          "answer": pick(STSB_OPTIONS, score)}


register_dataset(DatasetSpec(
    name="stsb",
    cluster=CLUSTER,
    display_name="STS-B",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/stsb:2.0.0", train="train[:-100]", validation="train[-100:]",
                       test="validation"),
    fields=SENTENCE_PAIR_FIELDS,
    preprocess=_stsb_fields,
    options=STSB_OPTIONS,
    metric="pearson_spearman",
    templates=STSB_TEMPLATES,
))
