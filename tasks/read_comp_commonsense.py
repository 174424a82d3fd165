"""Reading comprehension with commonsense: CosmosQA and ReCoRD.

Both are multiple choice over the example's own options: CosmosQA's four answers, and for ReCoRD
the cloze query's prefix continued by each candidate entity plus the rest of the query (several
completions may be correct).
"""

import tensorflow as tf

from flan_jax.data.preprocessors import nonempty
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "read_comp_commonsense"
SUBCLUSTER = "read_comp_and_common_sense"

# --------------------------------------------------------------------------------- CosmosQA

COSMOS_QA_TEMPLATES = (
    T("{context}\n\nAsked about this story: {question}\n\n{options_}"),
    T("Think about this little story before you respond.\n\n{context}\n\n{question}\n\n{options_}"),
    T("Story: {context}\nPuzzle: {question}\n\n{options_}"),
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

# As the reference builds it: the passage is cut at its first "@highlight" (the summary bullets
# are dropped), the query is the cloze sentence up to the blank, and each option completes it with
# an entity followed by the rest of the sentence. Every template shows the query.
RECORD_TEMPLATES = (
    T("{passage}\n\nHow does this sentence about the article end? {query}\n\n{options_}"),
    T("Read the news article and complete the sentence after it.\n\n{passage}\n\n{query}\n\n"
      "{options_}"),
    T("Article: {passage}\n\nContinue: {query}\n\n{options_}"),
    T("{passage}\n\nWhich ending of \"{query}\" agrees with the story?\n\n{options_}"),
    T("Here is a news story.\n\n{passage}\n\nFinish this line so that it is true to the story: "
      "{query}\n\n{options_}"),
    T("{passage}\n\n{query}\n\n{options_}"),
    T("Given the report below, pick the right completion.\n\nReport: {passage}\nStart: {query}"
      "\n\n{options_}"),
    T("Use the passage to complete the statement that follows it.\n\nPassage: {passage}\n"
      "Statement: {query}\n\n{options_}"),
    T("{passage}\n\nQ: After reading this, how would you carry on \"{query}\"?\nA:\n\n"
      "{options_}"),
    T("News: {passage}\n\nThe next sentence begins \"{query}\". What is the rest?\n\n"
      "{options_}"),
)

PLACEHOLDER = "@placeholder"
HIGHLIGHT = "\n@highlight"


def _record_fields(ex):
  parts = tf.strings.split(ex["query"], PLACEHOLDER)
  prefix = tf.strings.strip(parts[0])
  suffix = tf.strings.reduce_join(parts[1:], separator=PLACEHOLDER)
  answers = tf.strings.join([ex["answers"], suffix])
  return {
      "passage": tf.strings.split(ex["passage"], HIGHLIGHT)[0],
      "query": prefix,
      "answer": answers[0],
      "options": tf.strings.join([ex["entities"], suffix]),
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
    continuations=(T("{passage}\n\n{query}"),),
    templates=RECORD_TEMPLATES,
))
