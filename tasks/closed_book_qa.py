"""Closed-book QA: ARC (challenge and easy), Natural Questions (open) and TriviaQA."""

import tensorflow as tf

from flan_jax.data.preprocessors import first_or_empty, join, nonempty
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "closed_book_qa"
SUBCLUSTER = "open_domain_qa"

# --------------------------------------------------------------------------------------- ARC
# Both configs share the templates. TFDS stores answerKey and the choice labels as class ids
# (letters and the digits some questions use both map to A-E), so the answer is the choice whose
# label equals answerKey. Only questions with exactly four choices are kept.

ARC_TEMPLATES = (
    T("{question}\n\n{options_}"),
    T("A grade-school science quiz item:\n\n{question}\n\n{options_}"),
    T("Question: {question}\n\nWhich of the following is the correct answer?\n\n{options_}"),
    T("Q: {question}\n\nPick the right answer from the choices below.\n\n{options_}"),
    T("Here is a question from a grade-school science exam: {question}\n\n{options_}"),
    T("{question}\n\nChoose the best answer.\n\n{options_}"),
    T("Exam item: {question}\nWhich choice is right?\n\n{options_}"),
    T("Use what you know about science to answer: {question}\n\n{options_}"),
    turned("Write a science exam question whose correct answer is \"{answer}\".", "{question}"),
    turned("Make up a multiple-choice science question with these choices: {choices}. The "
           "correct one should be \"{answer}\".", "{question}"),
)


def _arc_answer_index(ex):
  return tf.argmax(tf.cast(tf.equal(ex["choices"]["label"], ex["answerKey"]), tf.int32),
                   output_type=tf.int32)


def _arc_keep(ex):
  labels = ex["choices"]["label"]
  return tf.reduce_all([tf.equal(tf.size(labels), 4), tf.equal(tf.size(ex["choices"]["text"]), 4),
                        tf.reduce_any(tf.equal(labels, ex["answerKey"]))])


def _arc_fields(ex):
  options = ex["choices"]["text"]
  return {"question": ex["question"], "choices": join(options, "; "),
          "answer": tf.gather(options, _arc_answer_index(ex)), "options": options}


for _config, _name, _display in (("ARC-Challenge", "arc_challenge", "ARC (challenge)"),
                                 ("ARC-Easy", "arc_easy", "ARC (easy)")):
  register_dataset(DatasetSpec(
      name=_name,
      cluster=CLUSTER,
      display_name=_display,
      subcluster=SUBCLUSTER,
      source=tfds_source(f"ai2_arc/{_config}:1.0.0", train="train[:-200]",
                         validation="train[-200:]", test="test"),
      fields=("question", "choices", "answer"),
      preprocess=_arc_fields,
      per_example_options=True,
      metric="accuracy",
      filter_fn=_arc_keep,
      continuations=(T("Science question: {question}\nCorrect choice:"),),
      templates=ARC_TEMPLATES,
  ))

# ------------------------------------------------------------------------ Natural Questions
# NQ-open questions are lower-case search queries without a question mark; the templates add one.
# Target = the first reference answer; "answers" holds all of them for the trivia_qa metric.

NATURAL_QUESTIONS_TEMPLATES = (
    T("Reply briefly: {question}?"),
    T("Asked: {question}?\nReplied:"),
    T("{question}?"),
    T("I looked this up online: {question}? What did I find?"),
    T("Please answer the following from general knowledge.\n\n{question}?"),
    T("Search query: {question}?\nBest short reply:"),
    T("{question}? Give a short answer."),
    T("Give a short, factual answer.\n\n{question}?"),
    T("Someone typed this question into a search engine: \"{question}\". What is the answer?"),
    T("Quick question: {question}?"),
)


def _natural_questions_fields(ex):
  return {"question": ex["question"], "answer": first_or_empty(ex["answer"]),
          "answers": ex["answer"]}


register_dataset(DatasetSpec(
    name="natural_questions",
    cluster=CLUSTER,
    display_name="Natural Questions",
    subcluster=SUBCLUSTER,
    source=tfds_source("natural_questions_open:1.0.0", train="train[:30000]",
                       validation="train[-200:]", test="validation"),
    fields=("question", "answer"),
    preprocess=_natural_questions_fields,
    metric="trivia_qa",
    filter_fn=lambda ex: nonempty(first_or_empty(ex["answer"])),
    continuations=(T("{question}?\nThe answer:"),),
    templates=NATURAL_QUESTIONS_TEMPLATES,
))

# -------------------------------------------------------------------------------- TriviaQA
# Closed book: the evidence documents of the rc config are not used. As the reference, the target
# is the answer's normalised value and "answers" (for the trivia_qa metric) its normalised aliases.

TRIVIA_QA_TEMPLATES = (
    T("Here is a general-knowledge teaser.\n\n{question}"),
    T("Trivia round. {question}\nResponse:"),
    T("{question}"),
    T("Trivia time! {question}"),
    T("Quiz: {question}\nYour reply:"),
    T("Pub quiz time: {question} Your guess?"),
    T("Answer this from memory: {question}"),
    T("{question}\n\nGive a short answer."),
    T("Here's a pub quiz question for you: {question}\nWhat's the answer?"),
    T("Test your general knowledge. {question}"),
)


def _trivia_qa_fields(ex):
  answer = ex["answer"]
  return {"question": ex["question"], "answer": answer["normalized_value"],
          "answers": answer["normalized_aliases"]}


register_dataset(DatasetSpec(
    name="trivia_qa",
    cluster=CLUSTER,
    display_name="TriviaQA",
    subcluster=SUBCLUSTER,
    source=tfds_source("trivia_qa/rc:1.1.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("question", "answer"),
    preprocess=_trivia_qa_fields,
    metric="trivia_qa",
    filter_fn=lambda ex: nonempty(ex["answer"]["normalized_value"]),
    continuations=(T("{question}\nThe answer:"),),
    templates=TRIVIA_QA_TEMPLATES,
))
