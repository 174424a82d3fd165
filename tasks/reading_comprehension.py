"""Reading comprehension: BoolQ, DROP, MultiRC, OpenBookQA, SQuAD v1.1 and SQuAD v2.0."""

import tensorflow as tf

from flan_jax.data.preprocessors import first_or_empty, nonempty, pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "reading_comprehension"
SUBCLUSTER = "reading_comprehension"
NO_YES = ("no", "yes")
# SQuAD v2.0 target for questions the passage cannot answer (the templates say so).
UNANSWERABLE = "unanswerable"

# ------------------------------------------------------------------------------------- BoolQ
# Questions are lower-case and carry no question mark, so the templates add one.

BOOL_Q_TEMPLATES = (
    T("{passage}\n\nAfter reading this, answer the question: {question}?\n\n{options_}"),
    T("A passage about {title}:\n{passage}\n\nIs the answer to \"{question}?\" yes or no?"
      "\n\n{options_}"),
    T("Q: {question}?\n\nUse this text to decide:\n{passage}\n\n{options_}"),
    T("Read the article below, then answer the question after it.\n\nTitle: {title}\n{passage}"
      "\n\nQuestion: {question}?\n\n{options_}"),
    T("{title}\n\n{passage}\n\n{question}?\n\n{options_}"),
    T("Here is some background on {title}: {passage}\n\nGiven that, {question}?\n\n{options_}"),
    T("Answer this yes/no question using the passage.\n\nQuestion: {question}?\n"
      "Passage: {passage}\n\n{options_}"),
    T("{passage}\n\nCan you tell from the text above: {question}?\n\n{options_}"),
    T("Text: {passage}\n\nBased on this text, what is the answer to the question \"{question}?\""
      "\n\n{options_}"),
    T("I read this about {title}: {passage}\n\nSo, {question}?\n\n{options_}"),
)


def _bool_q_fields(ex):
  return {"title": ex["title"], "passage": ex["passage"], "question": ex["question"],
          "answer": pick(NO_YES, ex["answer"])}


register_dataset(DatasetSpec(
    name="bool_q",
    cluster=CLUSTER,
    display_name="BoolQ",
    subcluster=SUBCLUSTER,
    source=tfds_source("bool_q:1.0.0", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=("title", "passage", "question", "answer"),
    preprocess=_bool_q_fields,
    options=NO_YES,
    metric="accuracy",
    continuations=(T("{passage}\nQ: {question}?\nReply (yes or no):"),),
    templates=BOOL_Q_TEMPLATES,
))

# -------------------------------------------------------------------------------------- DROP

DROP_TEMPLATES = (
    T("{passage}\n\nWorking from the passage, {question}"),
    T("Go through the passage and respond to the question.\n\n{passage}\n\nQuestion: {question}\n"
      "Answer:"),
    T("Passage: {passage}\n\nAsked: {question}\nWorked answer:"),
    T("{passage}\n\n{question}"),
    T("Here is a passage with some numbers and facts in it:\n{passage}\n\n"
      "Use it to work out the answer: {question}"),
    T("Question: {question}\n\nFind the answer in this text, counting or comparing where "
      "needed:\n{passage}"),
    T("{passage}\n\nUsing the passage above, answer this: {question}"),
    T("Answer based on the text below.\n{question}\n\n{passage}"),
    turned("{passage}\n\nWrite a question about this passage whose answer is \"{answer}\".",
           "{question}"),
    turned("Read the passage, then write a question about it that takes some reasoning (such as "
           "counting or subtracting) to answer, and give the answer.\n\n{passage}",
           "Question: {question}\nAnswer: {answer}"),
)


def _drop_fields(ex):
  # As the reference: the single answer is the only reference.
  return {"passage": ex["passage"], "question": ex["question"], "answer": ex["answer"],
          "answers": tf.reshape(ex["answer"], [1])}


def _drop_fields_validated(ex):
  out = _drop_fields(ex)
  out["answers"] = tf.concat([[ex["answer"]], ex["validated_answers"]], axis=0)
  return out


def drop_spec(name: str = "drop", *, validated_answers: bool = False,
              suite: str = "flan") -> DatasetSpec:
  """The DROP spec. By default scored against the single ``answer`` as the reference; with
  ``validated_answers=True`` the crowd-validated answers count as references too."""
  return DatasetSpec(
      name=name,
      cluster=CLUSTER,
      display_name="DROP" + (" (validated answers)" if validated_answers else ""),
      subcluster=SUBCLUSTER,
      source=tfds_source("drop:2.0.0", train="train[:30000]", validation="train[-200:]",
                         test="dev"),
      fields=("passage", "question", "answer"),
      preprocess=_drop_fields_validated if validated_answers else _drop_fields,
      metric="squad",
      filter_fn=lambda ex: nonempty(ex["answer"]),
      templates=DROP_TEMPLATES,
      suite=suite,
  )


register_dataset(drop_spec())

# ----------------------------------------------------------------------------------- MultiRC
# One example per (paragraph, question, candidate answer); the label says whether the candidate
# is correct. The field function also returns "group" (a label key, not a template field): it
# identifies the question, so the multirc metric can score exact match per question.

MULTIRC_TEMPLATES = (
    T("{paragraph}\n\nQuestion: {question}\nProposed answer: {response}\n\n"
      "Is the proposed answer correct?\n\n{options_}"),
    T("Read the text and judge the answer.\n\n{paragraph}\n\nQ: {question}\nA: {response}\n\n"
      "Is A a right answer to Q?\n\n{options_}"),
    T("{paragraph}\n\nAccording to the paragraph, is \"{response}\" a correct answer to the "
      "question \"{question}\"?\n\n{options_}"),
    T("Paragraph: {paragraph}\n\nSomeone asked \"{question}\" and was told \"{response}\". "
      "Were they told correctly?\n\n{options_}"),
    T("Question: {question}\nCandidate answer: {response}\n\nCheck the candidate against this "
      "passage:\n{paragraph}\n\nIs it correct?\n\n{options_}"),
    T("{paragraph}\n\n{question}\n\nWould \"{response}\" be a valid answer?\n\n{options_}"),
    T("Based on the passage below, decide whether the response answers the question "
      "correctly.\n\nPassage: {paragraph}\nQuestion: {question}\nResponse: {response}"
      "\n\n{options_}"),
    T("{paragraph}\n\nAfter reading the above, is it right to say that the answer to "
      "\"{question}\" is \"{response}\"?\n\n{options_}"),
    T("Does the response fit the question, given the text?\n\nText: {paragraph}\n\n"
      "Question: {question}\n\nResponse: {response}\n\n{options_}"),
    turned("{paragraph}\n\nAsk a question about the paragraph above.", "{question}"),
)


def _multirc_fields(ex):
  group = tf.strings.join([tf.strings.as_string(ex["idx"]["paragraph"]),
                           tf.strings.as_string(ex["idx"]["question"])], separator="-")
  # The paragraph as SuperGLUE v2 writes it (spaced punctuation, double spaces between
  # sentences), untouched as in the reference.
  return {"paragraph": ex["paragraph"], "question": ex["question"],
          "response": ex["answer"], "answer": pick(NO_YES, ex["label"]), "group": group}


register_dataset(DatasetSpec(
    name="multirc",
    cluster=CLUSTER,
    display_name="MultiRC",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/multirc:1.0.2", train="train[:-200]",
                       validation="train[-200:]", test="validation"),
    fields=("paragraph", "question", "response", "answer"),
    preprocess=_multirc_fields,
    options=NO_YES,
    metric="multirc",
    # The untuned baseline's prompt: like the reference's answer-key pattern, the candidate answer
    # is stated and the model's next word (no/yes) judges it.
    continuations=(T("{paragraph}\n\nQuestion: {question}\nSuggested answer: {response}\n"
                     "Is the suggested answer right (yes or no)?"),),
    templates=MULTIRC_TEMPLATES,
))

# -------------------------------------------------------------------------------- OpenBookQA
# The question stem is often an unfinished sentence that one of the four choices completes;
# "fact" is the open-book science fact the question is built on.

OPENBOOKQA_TEMPLATES = (
    T("Fact: {fact}\n\nUse the fact to answer: {question}\n\n{options_}"),
    T("{question}\n\n{options_}"),
    T("Here is a science fact: {fact}\n\nGiven that, which choice best completes or answers "
      "this?\n{question}\n\n{options_}"),
    T("Q: {question}\nHint: {fact}\n\nPick the best answer.\n\n{options_}"),
    T("With the fact \"{fact}\" in mind, settle this: \"{question}\"\n\n{options_}"),
    T("Choose the correct option.\n\n{question}\n\n{options_}"),
    T("{fact}\n\nKeeping that in mind, pick the answer to: {question}\n\n{options_}"),
    turned("Question: {question}\nAnswer: {answer}\n\nWhat general fact explains why this answer "
           "is right?", "{fact}"),
    turned("Fact: {fact}\n\nWrite a quiz question that tests this fact and whose answer is "
           "\"{answer}\".", "{question}"),
    turned("Write a short science question based on the following fact, and give its answer."
           "\n\n{fact}", "{question}\nAnswer: {answer}"),
)


def _openbookqa_fields(ex):
  q = ex["question"]
  options = tf.stack([q["choice_A"], q["choice_B"], q["choice_C"], q["choice_D"]])
  return {"fact": ex["fact1"], "question": q["stem"],
          "answer": tf.gather(options, ex["answerKey"]), "options": options}


register_dataset(DatasetSpec(
    name="openbookqa",
    cluster=CLUSTER,
    display_name="OpenBookQA",
    subcluster=SUBCLUSTER,
    source=tfds_source("openbookqa:0.1.0", train="train", validation="validation[:200]",
                       test="test"),
    fields=("fact", "question", "answer"),
    preprocess=_openbookqa_fields,
    per_example_options=True,
    metric="accuracy",
    continuations=(T("{fact} {question}"),),
    templates=OPENBOOKQA_TEMPLATES,
))

# ------------------------------------------------------------------------------------- SQuAD
# Target = the first reference answer; "answers" holds every reference for the squad metric.

SQUAD_V1_TEMPLATES = (
    T("{context}\n\nAnswer the question using the passage above: {question}"),
    T("The passage below is about {title}. Use it to respond.\n\n{context}\n\nQuery: {question}"),
    T("Background: {context}\nAsked: {question}\nReply:"),
    T("{context}\n\n{question}"),
    T("Question: {question}\n\nThe answer is a span of this text; find it:\n{context}"),
    T("Here is an article on {title}:\n{context}\n\nUse it to answer: {question}"),
    T("Answer this, based on the text below: {question}\n\n{context}"),
    T("Extract the answer to \"{question}\" from the following text.\n\n{context}"),
    turned("{context}\n\nWrite a question about the passage above whose answer is \"{answer}\".",
           "{question}"),
    turned("Topic: {title}\n\nAsk a question about this passage.\n\n{context}", "{question}"),
)

SQUAD_V2_TEMPLATES = (
    T("{context}\n\nAnswer the question from the passage above, or reply \"unanswerable\" if "
      "the passage does not contain the answer: {question}"),
    T("Read this passage about {title}.\n\n{context}\n\nQuestion: {question}\n"
      "(If the passage gives no answer, write \"unanswerable\".)"),
    T("Context: {context}\nQ: {question} (answer \"unanswerable\" if the context does not say)"
      "\nA:"),
    T("{context}\n\n{question}\n\nIf this question cannot be answered from the text, the answer "
      "is \"unanswerable\"."),
    T("Some questions about a text have no answer in it. Answer this one, or say "
      "\"unanswerable\".\n\nText: {context}\n\nQuestion: {question}"),
    T("Here is an article on {title}:\n{context}\n\nUsing only the article, what is the answer "
      "to this question? {question}\nReply \"unanswerable\" if the article does not tell you."),
    T("Question: {question}\n\nFind the answer in the passage below. If it is not there, "
      "respond with \"unanswerable\".\n\n{context}"),
    T("Extract the answer to \"{question}\" from the following text, or write \"unanswerable\" "
      "when the text has no answer.\n\n{context}"),
    T("Passage on {title}: {context}\n\nCan the passage answer \"{question}\"? If so, give the "
      "answer; if not, write \"unanswerable\"."),
    T("{question}\n\nAnswer based on this text (say \"unanswerable\" if it has no answer):\n"
      "{context}"),
)


def _squad_fields(ex):
  answers = ex["answers"]["text"]
  if "is_impossible" in ex:  # SQuAD v2.0.
    answers = tf.cond(ex["is_impossible"], lambda: tf.constant([UNANSWERABLE]), lambda: answers)
  return {"title": tf.strings.regex_replace(ex["title"], "_", " "), "context": ex["context"],
          "question": ex["question"], "answer": first_or_empty(answers), "answers": answers}


def _squad_v1_keep(ex):
  return nonempty(first_or_empty(ex["answers"]["text"]))


def _squad_v2_keep(ex):
  return tf.logical_or(ex["is_impossible"], _squad_v1_keep(ex))


for _name, _display, _tfds, _templates, _keep in (
    ("squad_v1", "SQuAD v1.1", "squad/v1.1:3.0.0", SQUAD_V1_TEMPLATES, _squad_v1_keep),
    ("squad_v2", "SQuAD v2.0", "squad/v2.0:3.0.0", SQUAD_V2_TEMPLATES, _squad_v2_keep),
):
  register_dataset(DatasetSpec(
      name=_name,
      cluster=CLUSTER,
      display_name=_display,
      subcluster=SUBCLUSTER,
      source=tfds_source(_tfds, train="train[:30000]", validation="train[-200:]",
                         test="validation"),
      fields=("title", "context", "question", "answer"),
      preprocess=_squad_fields,
      metric="squad",
      filter_fn=_keep,
      templates=_templates,
  ))
