"""Miscellaneous: CoQA, QuAC, WiC, Math, Fix Punctuation, True Case, Word Segment, TREC, CoLA.

The paper's "Misc." cluster; the reference repository splits it into finer clusters, kept here as
``subcluster``: conversational_qa, word_disambiguation, math, text_formatting,
question_classification and linguistic_acceptability.
"""

import tensorflow as tf

from flan_jax.data.preprocessors import nonempty, pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "misc"


def _numbered(items: tf.Tensor) -> tf.Tensor:
  """["a", "b"] -> "1. a\\n2. b" (a 1-D string tensor as a numbered list)."""
  numbers = tf.strings.as_string(tf.range(1, tf.size(items) + 1))
  return tf.strings.reduce_join(tf.strings.join([numbers, items], separator=". "), separator="\n")


def _squash_spaces(text: tf.Tensor) -> tf.Tensor:
  return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


# --------------------------------------------------------------------------------------- CoQA
# TFDS CoQA holds one story per example with all its questions and answers; as in FLAN the whole
# conversation becomes one example: the story plus the numbered questions -> the numbered answers.

COQA_TEMPLATES = (
    T("{story}\n\nAnswer the numbered questions below about the text above, numbering your "
      "answers the same way.\n\n{numbered_questions}"),
    T("Read the passage, then answer the questions that follow it.\n\n{story}\n\n"
      "{numbered_questions}"),
    T("Passage:\n{story}\n\nQuestions:\n{numbered_questions}\n\nAnswers:"),
    T("{story}\n\nUsing the story above, give a short answer to each of these questions:\n"
      "{numbered_questions}"),
    T("Here is a story followed by a series of questions about it. Answer them one by one.\n\n"
      "Story: {story}\n\n{numbered_questions}"),
    T("{numbered_questions}\n\nAnswer the questions above. They are all about this text:\n\n"
      "{story}"),
    T("I read the following text:\n{story}\n\nThen I was asked:\n{numbered_questions}\n\n"
      "What are the answers?"),
    T("Text: {story}\n\nRespond to each question in order, keeping every answer brief.\n"
      "{numbered_questions}"),
    T("{story}\n\nA reader asked several questions about this passage:\n{numbered_questions}\n\n"
      "Write a numbered list of answers."),
    turned("{story}\n\nHere are numbered answers about the passage above:\n{numbered_answers}\n\n"
           "Write the numbered questions that these answers respond to.",
           "{numbered_questions}"),
)


def _coqa_num_turns(ex):
  return tf.minimum(tf.size(ex["questions"]), tf.size(ex["answers"]["input_text"]))


def _coqa_fields(ex):
  n = _coqa_num_turns(ex)
  numbered_answers = _numbered(ex["answers"]["input_text"][:n])
  return {"story": ex["story"], "numbered_questions": _numbered(ex["questions"][:n]),
          "numbered_answers": numbered_answers, "answer": numbered_answers}


def _coqa_filter(ex):
  return tf.logical_and(_coqa_num_turns(ex) > 0, nonempty(ex["story"]))


register_dataset(DatasetSpec(
    name="coqa",
    cluster=CLUSTER,
    display_name="CoQA",
    subcluster="conversational_qa",
    source=tfds_source("coqa:1.0.0", train="train[:-100]", validation="train[-100:]",
                       test="test"),
    fields=("story", "numbered_questions", "numbered_answers", "answer"),
    preprocess=_coqa_fields,
    filter_fn=_coqa_filter,
    metric="squad",
    templates=COQA_TEMPLATES,
))

# --------------------------------------------------------------------------------------- QuAC
# TFDS QuAC has one question per example (no earlier turns of the dialogue). QuAC marks
# unanswerable questions with the token CANNOTANSWER, which it also appends to every context: the
# token is removed from the context and such answers become QUAC_UNANSWERABLE.

QUAC_UNANSWERABLE = "unanswerable"
_CANNOTANSWER = "CANNOTANSWER"

QUAC_TEMPLATES = (
    T("Background: {background}\n\nFrom the section \"{section_title}\" of the article about "
      "{title}:\n{context}\n\nQ: {question}\nA:"),
    T("{title} - {section_title}\n\n{context}\n\nAnswer the question using words from the text "
      "above, or reply \"unanswerable\" if the text does not say: {question}"),
    T("Read this excerpt about {title} and answer the question after it.\n\n{context}\n\n"
      "{question}"),
    T("{background}\n\n{context}\n\nBased on the passages above: {question}"),
    T("Background: {context}\nStudent asks: {question}\nTeacher quotes:"),
    T("Here is some background on {title}: {background}\n\nThis is the section titled "
      "\"{section_title}\":\n{context}\n\nA student asks, \"{question}\" How would you answer "
      "using the section?"),
    T("{context}\n\nIn a conversation about {title}, someone asks \"{question}\". Answer with a "
      "quote from the passage above, or say \"unanswerable\" if it contains no answer."),
    T("Answer a question about a section of a Wikipedia article.\n\nArticle: {title}\n"
      "Section: {section_title}\n{context}\n\nQuestion: {question}"),
    turned("{background}\n\n{context}\n\nWrite a question that a curious reader might ask about "
           "the \"{section_title}\" section of the article on {title}.",
           "{question}"),
    turned("{context}\n\nThe passage above is a section of the Wikipedia article about {title}. "
           "What is the title of the section?",
           "{section_title}"),
)


def _quac_answer(text: tf.Tensor) -> tf.Tensor:
  """CANNOTANSWER -> QUAC_UNANSWERABLE (scalar or 1-D)."""
  text = tf.strings.strip(text)
  return tf.where(tf.equal(text, _CANNOTANSWER), tf.constant(QUAC_UNANSWERABLE), text)


def _quac_fields(ex):
  context = tf.strings.regex_replace(ex["context"], r"\s*" + _CANNOTANSWER + r"\s*$", "")
  answer = _quac_answer(ex["orig_answer"]["text"])
  references = _quac_answer(ex["answers"]["text"])
  return {"title": ex["title"], "section_title": ex["section_title"],
          "background": ex["background"], "context": context, "question": ex["question"],
          "answer": answer, "answers": tf.concat([[answer], references], axis=0)}


def _quac_filter(ex):
  return tf.logical_and(nonempty(ex["question"]), nonempty(ex["orig_answer"]["text"]))


register_dataset(DatasetSpec(
    name="quac",
    cluster=CLUSTER,
    display_name="QuAC",
    subcluster="conversational_qa",
    source=tfds_source("quac:1.0.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("title", "section_title", "background", "context", "question", "answer"),
    preprocess=_quac_fields,
    filter_fn=_quac_filter,
    metric="trivia_qa",
    templates=QUAC_TEMPLATES,
))

# --------------------------------------------------------------------------------------- WiC

WIC_OPTIONS = ("different meanings", "the same meaning")  # label 0 = False = different senses.

WIC_TEMPLATES = (
    T("{sentence1}\n{sentence2}\n\nIn the two sentences above, is the word \"{word}\" used with "
      "the same meaning or with different meanings?\n\n{options_}"),
    T("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nHow does the meaning of \"{word}\" in "
      "A compare with its meaning in B?\n\n{options_}"),
    T("Consider the word \"{word}\" in these two sentences:\n1. {sentence1}\n2. {sentence2}\n\n"
      "Does it have the same meaning in both, or different meanings?\n\n{options_}"),
    T("Word: {word}\nFirst use: {sentence1}\nSecond use: {sentence2}\n\nDo the two uses have the "
      "same meaning or different meanings?\n\n{options_}"),
    T("Both of these sentences contain \"{word}\".\n\n{sentence1}\n\n{sentence2}\n\nIs the word "
      "used with the same meaning each time, or with different meanings?\n\n{options_}"),
    T("Decide whether \"{word}\" means the same thing in \"{sentence1}\" and in \"{sentence2}\"."
      "\n\n{options_}"),
    T("{sentence1}\n\n{sentence2}\n\nIf you looked up \"{word}\" in a dictionary for each sentence "
      "above, would you find the same meaning or different meanings?\n\n{options_}"),
    T("Is \"{word}\" used with one sense in both of these?\n\n{sentence1}\n{sentence2}\n\n"
      "{options_}"),
    T("Word sense comparison for \"{word}\".\nSentence one: {sentence1}\nSentence two: "
      "{sentence2}\nAre the two senses identical or different?\n\n{options_}"),
    T("In \"{sentence1}\", the word \"{word}\" has a certain meaning. In \"{sentence2}\", does it "
      "keep that meaning, or do the sentences use different meanings?\n\n{options_}"),
)


def _wic_fields(ex):
  return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"], "word": ex["word"],
          "answer": pick(WIC_OPTIONS, ex["label"])}


register_dataset(DatasetSpec(
    name="wic",
    cluster=CLUSTER,
    display_name="WiC",
    subcluster="word_disambiguation",
    source=tfds_source("super_glue/wic:1.0.2", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=("sentence1", "sentence2", "word", "answer"),
    preprocess=_wic_fields,
    options=WIC_OPTIONS,
    metric="accuracy",
    templates=WIC_TEMPLATES,
))

# --------------------------------------------------------------------------------------- Math

MATH_TEMPLATES = (
    T("Find the unknown in this equation task.\n\n{question}"),
    T("{question}\n\nWork it out and give the value."),
    T("Equation to solve: {question}\nValue:"),
    T("Algebra exercise:\n\n{question}\n\nResult:"),
    T("{question}\nGive only the final number."),
    T("Work out the value of the unknown.\n{question}"),
    T("Find the solution of the following linear equation problem.\n\n{question}"),
    T("Here is an exercise from an algebra worksheet: {question} What is the result?"),
    T("Q: {question}\n\nWhat number answers this question?"),
    T("Algebra:\n{question}\nSolution:"),
)


def _clean_math(text: tf.Tensor) -> tf.Tensor:
  """Removes bytes-repr artefacts (b'...\\n') that some versions of the data carry."""
  text = tf.strings.strip(text)
  text = tf.strings.regex_replace(text, r"(?s)^b'(.*)'$", r"\1")
  text = tf.strings.regex_replace(text, r"(?s)^b\"(.*)\"$", r"\1")
  text = tf.strings.regex_replace(text, r"(\\n)+$", "")
  return tf.strings.strip(tf.strings.regex_replace(text, r"\\n", " "))


def _math_fields(ex):
  return {"question": _clean_math(ex["question"]), "answer": _clean_math(ex["answer"])}


def _math_filter(ex):
  return tf.logical_and(nonempty(_clean_math(ex["question"])), nonempty(_clean_math(ex["answer"])))


register_dataset(DatasetSpec(
    name="math_dataset",
    cluster=CLUSTER,
    display_name="Math (algebra, linear 1D)",
    subcluster="math",
    source=tfds_source("math_dataset/algebra__linear_1d:1.0.0", train="train[:30000]",
                       validation="train[-200:]", test="test"),
    fields=("question", "answer"),
    preprocess=_math_fields,
    filter_fn=_math_filter,
    metric="accuracy",
    templates=MATH_TEMPLATES,
))

# ------------------------------------------------------------------------- text formatting
# Fix Punctuation, True Case and Word Segment all corrupt the English side of ParaCrawl en-da,
# in disjoint slices of its train split; the target is the original sentence (whitespace
# normalised). Examples that the corruption leaves unchanged are dropped (nothing to restore).

PARA_CRAWL_ENDA = "para_crawl/enda:1.2.0"
TEXT_FORMATTING = "text_formatting"


def _english(ex) -> tf.Tensor:
  """The English sentence, whitespace normalised (runs of spaces cannot be restored anyway)."""
  return _squash_spaces(ex["en"])


def _without_punct(text: tf.Tensor) -> tf.Tensor:
  """Dashes become spaces, other punctuation is deleted ("It's well-known." -> "Its well known")."""
  text = tf.strings.regex_replace(text, r"\p{Pd}+", " ")
  return _squash_spaces(tf.strings.regex_replace(text, r"\pP+", ""))


def _lowercase(text: tf.Tensor) -> tf.Tensor:
  return tf.strings.lower(text, encoding="utf-8")


def _without_spaces(text: tf.Tensor) -> tf.Tensor:
  return tf.strings.regex_replace(text, r"\s+", "")


def _changes(corrupt):
  """filter_fn: keeps sentences that are non-empty and that ``corrupt`` actually changes."""

  def _keep(ex):
    text = _english(ex)
    return tf.logical_and(nonempty(text), tf.not_equal(corrupt(text), text))

  return _keep


FIX_PUNCT_TEMPLATES = (
    T("Insert the missing punctuation marks: {no_punct}"),
    T("{no_punct}\n\nWrite the text above with correct punctuation."),
    T("The following sentence has lost its punctuation. Put it back.\n\n{no_punct}"),
    T("Punctuate this text:\n{no_punct}"),
    T("{no_punct}\n\nCan you add the missing commas, periods and other punctuation marks?"),
    T("Insert the punctuation that is missing from: {no_punct}"),
    T("Without punctuation: {no_punct}\nWith punctuation:"),
    T("Restore the punctuation marks in the sentence below.\n{no_punct}"),
    T("Here is some text without any punctuation:\n\n{no_punct}\n\nRewrite it properly "
      "punctuated."),
    T("{no_punct}\nThe commas, full stops and other marks are gone. Put them back."),
)


TRUE_CASE_TEMPLATES = (
    T("{lowercased}\n\nWrite the sentence above with correct capitalization."),
    T("Fix the capitalization of this text: {lowercased}"),
    T("The text below is all in lowercase. Capitalize it properly.\n\n{lowercased}"),
    T("Lowercase: {lowercased}\nProperly cased:"),
    T("Rewrite with capital letters where English needs them:\n{lowercased}"),
    T("{lowercased}\n\nHow should the sentence above be capitalized?"),
    T("Restore the upper-case letters in the following sentence.\n{lowercased}"),
    T("Someone typed this without using the shift key: \"{lowercased}\"\nWhat should it look "
      "like?"),
    T("Apply sentence case and capitalize proper nouns: {lowercased}"),
    turned("Write this text in all lowercase letters.\n\n{answer}", "{lowercased}"),
)


WORD_SEGMENT_TEMPLATES = (
    T("The gaps between words were lost here; restore them: {no_spaces}"),
    T("{no_spaces}\n\nThe spaces are missing from the text above. Write it with spaces."),
    T("Split this run-together text into separate words.\n\n{no_spaces}"),
    T("Without spaces: {no_spaces}\nWith spaces:"),
    T("Insert the missing spaces:\n{no_spaces}"),
    T("{no_spaces}\nWhat does this say? Write it with the words separated."),
    T("Please segment the following string into words: {no_spaces}"),
    turned("Remove every space from this sentence: {answer}", "{no_spaces}"),
    turned("{answer}\n\nWrite the sentence above with all the words joined together, with no "
           "spaces.", "{no_spaces}"),
    T("Someone forgot to press the space bar when typing this:\n\n{no_spaces}\n\nFix it."),
)


def _text_formatting_fields(field: str, corrupt):
  def _fields(ex):
    text = _english(ex)
    return {field: corrupt(text), "answer": text}
  return _fields


# Disjoint slices of para_crawl/enda's English side: name, title, corrupted field, corruption,
# (train, validation) slices, templates.
TEXT_FORMATTING_TABLE = (
    ("fix_punct", "Fix Punctuation", "no_punct", _without_punct,
     ("train[30200:60200]", "train[60200:60400]"), FIX_PUNCT_TEMPLATES),
    ("true_case", "True Case", "lowercased", _lowercase,
     ("train[:30000]", "train[30000:30200]"), TRUE_CASE_TEMPLATES),
    ("word_segment", "Word Segment", "no_spaces", _without_spaces,
     ("train[60400:90400]", "train[90400:90600]"), WORD_SEGMENT_TEMPLATES),
)

for _name, _title, _field, _corrupt, (_train, _validation), _templates in TEXT_FORMATTING_TABLE:
  register_dataset(DatasetSpec(
      name=_name,
      cluster=CLUSTER,
      display_name=_title,
      subcluster=TEXT_FORMATTING,
      source=tfds_source(PARA_CRAWL_ENDA, train=_train, validation=_validation,
                         test="train[-3000:]"),
      fields=(_field, "answer"),
      preprocess=_text_formatting_fields(_field, _corrupt),
      filter_fn=_changes(_corrupt),
      metric="edit_distance",
      templates=_templates,
  ))

# --------------------------------------------------------------------------------------- TREC

# In TFDS label-coarse order: DESC, ENTY, ABBR, HUM, NUM, LOC.
TREC_OPTIONS = ("description", "entity", "abbreviation", "human", "numeric", "location")

TREC_TEMPLATES = (
    T("Sort this question by the type of answer it expects.\n\n{question}\n\n{options_}"),
    T("{question}\n\nWhich category best describes the answer the question above is looking for?"
      "\n\n{options_}"),
    T("Question: {question}\n\nDoes this question ask for a description, an entity, an "
      "abbreviation, a human, a number or a location?\n\n{options_}"),
    T("Classify the question by the type of its answer.\n\n{question}\n\n{options_}"),
    T("Q: {question}\nWhat type of answer is expected?\n\n{options_}"),
    T("I want to know what type of answer this question needs: \"{question}\"\n\n{options_}"),
    T("{question}\n\nThe answer to this question is best described as which of the following?"
      "\n\n{options_}"),
    T("Read the question and choose the category of information it requests.\n{question}\n\n"
      "{options_}"),
    T("Is the answer to \"{question}\" a description, an entity, an abbreviation, a human, a "
      "numeric value or a location?\n\n{options_}"),
    turned("Write a question whose answer is of this type: {answer}.", "{question}"),
)


def _trec_fields(ex):
  return {"question": ex["text"], "answer": pick(TREC_OPTIONS, ex["label-coarse"])}


register_dataset(DatasetSpec(
    name="trec",
    cluster=CLUSTER,
    display_name="TREC",
    subcluster="question_classification",
    source=tfds_source("trec:1.0.0", train="train[:-200]", validation="train[-200:]",
                       test="test"),
    fields=("question", "answer"),
    preprocess=_trec_fields,
    options=TREC_OPTIONS,
    metric="accuracy",
    templates=TREC_TEMPLATES,
))

# --------------------------------------------------------------------------------------- CoLA

COLA_OPTIONS = ("unacceptable", "acceptable")

COLA_TEMPLATES = (
    T("Sentence: \"{sentence}\"\n\nTo a native English speaker, is this sentence grammatically "
      "acceptable or unacceptable?\n\n{options_}"),
    T("{sentence}\n\nHow would you judge the grammar of the sentence above?\n\n{options_}"),
    T("Decide whether the following sentence is linguistically acceptable.\n\n{sentence}\n\n"
      "{options_}"),
    T("Rate the following sentence as English: acceptable or unacceptable?\n{sentence}\n\n"
      "{options_}"),
    T("Test sentence: \"{sentence}\"\nIs this test sentence acceptable or unacceptable?\n\n"
      "{options_}"),
    T("Here is a sentence: {sentence}\n\nJudged by the rules of English grammar, how acceptable "
      "is it?\n\n{options_}"),
    T("Check the grammaticality of this sentence: {sentence}\n\n{options_}"),
    T("{sentence}\n\nWould a fluent speaker find the sentence above acceptable or unacceptable?"
      "\n\n{options_}"),
    turned("Write a sentence that a linguist would judge grammatically {answer}.", "{sentence}"),
    turned("Give an example of an English sentence whose grammar is {answer}.", "{sentence}"),
)


def _cola_fields(ex):
  return {"sentence": ex["sentence"], "answer": pick(COLA_OPTIONS, ex["label"])}


register_dataset(DatasetSpec(
    name="cola",
    cluster=CLUSTER,
    display_name="CoLA",
    subcluster="linguistic_acceptability",
    # flan.md: the reference repo leaves glue/cola unversioned; pinned here.
    source=tfds_source("glue/cola:2.0.0", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=("sentence", "answer"),
    preprocess=_cola_fields,
    options=COLA_OPTIONS,
    metric="mcc",
    templates=COLA_TEMPLATES,
))
