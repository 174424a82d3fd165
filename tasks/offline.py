"""The embedded offline suite: 6 clusters x 2-3 datasets about one synthetic world, no downloads.

Data comes from :mod:`flan_jax.data.offline.world`; here each dataset gets its templates, written in
the same instruction style (and often the same words) as the FLAN templates so that instructions
transfer across clusters. ``offline_world_lm`` is the world's plain-text corpus for LM pretraining.
"""

import functools

import seqio
import tensorflow as tf

from flan_jax.data import vocab as vocab_lib
from flan_jax.data.offline import world
from flan_jax.data.spec import DatasetSpec, register_dataset
from flan_jax.data.templates import T, turned

SPLITS = ("train", "validation", "test")


def _source(task: str) -> seqio.FunctionDataSource:
  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del shuffle_files, seed  # In-memory data: shuffling happens in seqio after preprocessing.
    rows = world.examples(task, split)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return tf.data.Dataset.from_tensor_slices(columns)

  return seqio.FunctionDataSource(
      dataset_fn, splits=SPLITS, num_input_examples={s: world.SPLIT_SIZES[s] for s in SPLITS})


def _identity(ex):
  return dict(ex)


TEMPLATES = {
    "world_nli": (
        T("{premise}\n\nBased on the paragraph above, is it true that \"{hypothesis}\"?\n\n"
          "{options_}"),
        T("Premise: {premise}\nHypothesis: {hypothesis}\n\nDoes the premise entail the "
          "hypothesis?\n\n{options_}"),
        T("Read the text and decide if the sentence is true.\n\nText: {premise}\n"
          "Sentence: {hypothesis}\n\n{options_}"),
        turned("Write a sentence that follows from this text.\n\n{premise}", "{hypothesis}"),
        T("{premise}\n\nCan we conclude that \"{hypothesis}\"?\n\n{options_}"),
        T("Suppose \"{premise}\" Can we infer that \"{hypothesis}\"?\n\n{options_}"),
    ),
    "world_entailment": (
        T("{premise}\n\nQuestion: does this mean that \"{hypothesis}\"?\n\n{options_}"),
        T("Given that \"{premise}\", is it true that \"{hypothesis}\"?\n\n{options_}"),
        T("Check the claim against the text.\nText: {premise}\nClaim: {hypothesis}\n"
          "Is the claim supported?\n\n{options_}"),
        T("{premise}\n\nDoes it follow that \"{hypothesis}\"?\n\n{options_}"),
        T("Premise: {premise}\nHypothesis: {hypothesis}\n\nIs the hypothesis entailed by the "
          "premise?\n\n{options_}"),
    ),
    "world_reviews": (
        T("{text}\n\nWhat is the sentiment of this review?\n\n{options_}"),
        T("Review: {text}\n\nIs this review positive or negative?\n\n{options_}"),
        T("Read the review and tell me how the writer feels.\n\n{text}\n\n{options_}"),
        turned("Write a {answer} review of a meal.", "{text}"),
        T("{text}\n\nHow did the writer find the meal?\n\n{options_}"),
    ),
    "world_posts": (
        T("{name} wrote: \"{text}\"\n\nWhat is the sentiment of this post?\n\n{options_}"),
        T("Post: {text}\n\nIs the feeling of this post positive or negative?\n\n{options_}"),
        T("How does the writer feel?\n\n{text}\n\n{options_}"),
        T("{text}\n\nIs this a happy or an unhappy post?\n\n{options_}"),
        turned("Write a {answer} post about a day out.", "{text}"),
    ),
    "world_qa": (
        T("Answer the question.\n\n{question}"),
        T("Q: {question}\nA:"),
        T("Please answer this question: {question}"),
        T("{question}\n\nWhat is the answer?"),
        T("Question: {question}\nAnswer:"),
    ),
    "world_qa_choice": (
        T("Answer the question.\n\n{question}\n\n{options_}"),
        T("Q: {question}\n\nPick the answer.\n\n{options_}"),
        T("Please answer this question: {question}\n\n{options_}"),
        T("{question}\n\nChoose the right answer.\n\n{options_}"),
        T("Question: {question}\n\nWhich of these is the answer?\n\n{options_}"),
    ),
    "world_passage_qa": (
        T("{passage}\n\nAnswer the question based on the paragraph above: {question}"),
        T("Read the text and answer the question.\n\nText: {passage}\nQuestion: {question}"),
        T("{passage}\n\nQ: {question}\nA:"),
        T("Passage: {passage}\n\nUsing the passage, answer: {question}"),
        turned("{passage}\n\nWrite a question about the paragraph above whose answer is "
               "\"{answer}\".", "{question}"),
    ),
    "world_passage_choice": (
        T("{passage}\n\nAnswer the question based on the paragraph above: {question}\n\n"
          "{options_}"),
        T("Read the text and answer the question.\n\nText: {passage}\nQuestion: {question}\n\n"
          "{options_}"),
        T("{passage}\n\nQ: {question}\n\n{options_}"),
        T("Passage: {passage}\n\n{question} Pick the answer from the passage.\n\n{options_}"),
        T("{passage}\n\nUsing the passage, answer: {question}\n\n{options_}"),
    ),
    "world_passage_yesno": (
        T("{passage}\n\nBased on the paragraph above, answer the question: {question}\n\n"
          "{options_}"),
        T("Read the text and answer the question.\n\nText: {passage}\nQuestion: {question}\n\n"
          "{options_}"),
        T("{passage}\n\nQ: {question}\n\n{options_}"),
        T("Passage: {passage}\n\n{question} Answer from the passage.\n\n{options_}"),
        T("{passage}\n\nDoes the passage say so? {question}\n\n{options_}"),
    ),
    "world_data_to_text": (
        T("Write a sentence about the following data: {data}"),
        T("Data: {data}\n\nDescribe this data in one sentence."),
        T("Turn the data into text.\n\n{data}"),
        T("{data}\n\nWrite a sentence that says all of this."),
        turned("Sentence: {answer}\n\nWhat data does this sentence describe?", "{data}"),
    ),
    "world_triples_to_text": (
        T("Write a sentence that uses these facts:\n\n{triples}"),
        T("Facts:\n{triples}\n\nDescribe these facts in one sentence."),
        T("Turn the triples into text.\n\n{triples}"),
        T("{triples}\n\nWrite these triples as one sentence."),
        T("Here are some facts as triples:\n{triples}\n\nSay them in plain English."),
    ),
    # Paraphrase (FLAN's MRPC/QQP cluster): do two sentences say the same thing?
    "world_paraphrase": (
        T("{sentence1}\n{sentence2}\n\nDo these two sentences mean the same thing?\n\n{options_}"),
        T("Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nIs sentence 2 a paraphrase of "
          "sentence 1?\n\n{options_}"),
        T("Do \"{sentence1}\" and \"{sentence2}\" say the same thing?\n\n{options_}"),
        T("Here are two sentences:\n{sentence1}\n{sentence2}\nDo they have the same "
          "meaning?\n\n{options_}"),
        T("{sentence1}\n\nCan this be said another way as \"{sentence2}\"?\n\n{options_}"),
    ),
    "world_same_facts": (
        T("First: {sentence1}\nSecond: {sentence2}\n\nDo the two descriptions give the same "
          "facts?\n\n{options_}"),
        T("{sentence1}\n{sentence2}\n\nAre these two sentences saying the same thing?\n\n"
          "{options_}"),
        T("Compare the two descriptions.\n\n1. {sentence1}\n2. {sentence2}\n\nDo they agree "
          "on every fact?\n\n{options_}"),
        T("Is \"{sentence2}\" a rewording of \"{sentence1}\"?\n\n{options_}"),
        T("Description A: {sentence1}\nDescription B: {sentence2}\n\nDo A and B describe the "
          "person the same way?\n\n{options_}"),
    ),
}

# GPT-3-style continuation prompts for the untuned baseline (the demo's "untuned" column), with the
# answer words the continuations end in, in the order of the dataset's options.
CONTINUATIONS = {
    "world_nli": ((T("{premise}\nClaim: {hypothesis}\nThe claim is"),),
                  ("true", "neither", "false")),
    "world_entailment": ((T("{premise}\nClaim: {hypothesis}\nThe claim is"),), ("true", "false")),
}

for _task in world.TASKS:
  _continuations, _words = CONTINUATIONS.get(_task.name, ((), None))
  register_dataset(DatasetSpec(
      name=_task.name,
      cluster=_task.cluster,
      display_name=_task.name.replace("_", " "),
      source=_source(_task.name),
      fields=_task.fields,
      preprocess=_identity,
      templates=TEMPLATES[_task.name],
      continuations=_continuations,
      continuation_options=_words,
      options=_task.options,
      per_example_options=_task.per_example_options,
      metric="accuracy",
      num_train_examples=world.SPLIT_SIZES["train"],
      suite="offline",
      expected_num_templates=None,
  ))


# ----------------------------------------------------------------------------- LM corpus


def _corpus_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
  del shuffle_files, seed
  docs = world.corpus()
  cut = len(docs) - 40
  text = docs[:cut] if split == "train" else docs[cut:]
  return tf.data.Dataset.from_tensor_slices({"text": text})


seqio.TaskRegistry.add(
    "offline_world_lm",
    source=seqio.FunctionDataSource(_corpus_fn, splits=("train", "validation")),
    preprocessors=[
        functools.partial(seqio.preprocessors.rekey, key_map={"targets": "text"}),
        seqio.preprocessors.tokenize,
        seqio.CacheDatasetPlaceholder(),
        seqio.preprocessors.append_eos_after_trim,
    ],
    output_features={"targets": vocab_lib.output_features()["targets"]},
    metric_fns=[],
)
