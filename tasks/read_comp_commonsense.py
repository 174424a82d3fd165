"""Reading comprehension with commonsense: CosmosQA and ReCoRD.

Both are multiple choice over the example's own options: CosmosQA's four answers, and for ReCoRD
the cloze query completed with each candidate entity (several completions may be correct).
"""

import tensorflow as tf

from flan_jax.dataset_spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.preprocessors import nonempty
from flan_jax.templates import T, turned

CLUSTER = "read_comp_commonsense"
SUBCLUSTER = "read_comp_and_common_sense"

# --------------------------------------------------------------------------------- CosmosQA

COSMOS_QA_TEMPLATES = (
    T("{context}\n\nQuestion: {question}\n\n{options_}"),
    T("Read the passage and answer the question.\n\n{context}\n\n{question}\n\n{options_}"),
    T("Context: {context}\nQ: {question}\nA:\n\n{options_}"),
    T("{context}\n\nBased on the text above, {question}\n\n{options_}"),
    T("Answer the question using common sense and the story below.\n\nStory: {context}\n"
      "Question: {question}\n\n{options_}"),
    T("{question}\n\nThink about this passage before answering: {context}\n\n{options_}"),
    T("Here is a short text: {context}\n\nWhat is the most reasonable answer to \"{question}\"?"
      "\n\n{options_}"),
    T("{context}\n\nPick the best answer. {question}\n\n{options_}"),
    turned("{context}\n\nWrite a question about the passage above whose answer is: {answer}",
           "{question}"),
    turned("Passage: {context}\nAnswer: {answer}\n\nWhat question about the passage does this "
           "answer?", "{question}"),
)


def _cosmos_qa_fields(ex):
  choices = tf.stack([ex["answer0"], ex["answer1"], ex["answer2"], ex["answer3"]])
  return {"context": ex["context"], "question": ex["question"],
          "answer": tf.gather(choices, tf.cast(ex["label"], tf.int32)), "options": choices}


register_dataset(DatasetSpec(
    name="cosmos_qa",
    cluster=CLUSTER,
    display_name="CosmosQA",
    subcluster=SUBCLUSTER,
    source=tfds_source("cosmos_qa:1.0.0", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=("context", "question", "answer"),
    preprocess=_cosmos_qa_fields,
    per_example_options=True,
    metric="accuracy",
    templates=COSMOS_QA_TEMPLATES,
))

# ----------------------------------------------------------------------------------- ReCoRD

RECORD_TEMPLATES = (
    T("{passage}\n\nWhat is the most logical next sentence?\n\n{options_}"),
    T("Read the news article and complete the sentence after it.\n\n{passage}\n\n{query}\n\n"
      "{options_}"),
    T("Article: {passage}\n\nFill in the blank: {query}\n\n{options_}"),
    T("{passage}\n\nWhich sentence most plausibly continues the story?\n\n{options_}"),
    T("Write the next sentence of this article.\n\n{passage}\n\n{options_}"),
    T("{passage}\n\nIn the sentence \"{query}\", who or what belongs in the blank?\n\n"
      "{options_}"),
    T("Here is a summary of a news story: {passage}\n\nHow does the article go on?\n\n"
      "{options_}"),
    T("Use the passage to complete the statement that follows it.\n\nPassage: {passage}\n"
      "Statement: {query}\n\n{options_}"),
    T("{passage}\n\nQ: Which of these sentences is consistent with the text above?\nA:\n\n"
      "{options_}"),
    T("News: {passage}\n\nWhat comes next?\n\n{options_}"),
)

PLACEHOLDER = "@placeholder"


def _record_passage(passage: tf.Tensor) -> tf.Tensor:
  """Turns ReCoRD's "\\n@highlight\\n" bullet markers into sentence breaks."""
  passage = tf.strings.regex_replace(passage, r"([.!?\"'])\s*\n@highlight\n", r"\1 ")
  passage = tf.strings.regex_replace(passage, r"\s*\n@highlight\n", ". ")
  passage = tf.strings.strip(passage)
  return tf.strings.regex_replace(passage, r"([^.!?\"'])$", r"\1.")


def _fill(query: tf.Tensor, entities: tf.Tensor) -> tf.Tensor:
  """The query with its placeholder replaced by each entity (1-D)."""
  parts = tf.strings.split(query, PLACEHOLDER)
  prefix = parts[0]
  suffix = tf.strings.reduce_join(parts[1:], separator=PLACEHOLDER)
  return tf.strings.join([prefix, entities, suffix])


def _record_fields(ex):
  query = ex["query"]
  answers = _fill(query, ex["answers"])
  return {
      "passage": _record_passage(ex["passage"]),
      "query": tf.strings.regex_replace(query, PLACEHOLDER, "___"),
      "answer": answers[0],
      "options": _fill(query, ex["entities"]),
      "answers": answers,
  }


def _record_usable(ex):
  return tf.logical_and(tf.size(ex["entities"]) > 0, tf.size(ex["answers"]) > 0) & nonempty(
      ex["query"])


register_dataset(DatasetSpec(
    name="record",
    cluster=CLUSTER,
    display_name="ReCoRD",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/record:1.0.2", train="train[:30000]",
                       validation="train[-200:]", test="validation"),
    fields=("passage", "query", "answer"),
    preprocess=_record_fields,
    per_example_options=True,
    metric="record",
    filter_fn=_record_usable,
    templates=RECORD_TEMPLATES,
))
