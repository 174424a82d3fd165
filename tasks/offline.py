"""The embedded offline suite: 5 clusters x 2 datasets about one synthetic world, no downloads.

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
    ),
    "world_entailment": (
        T("{premise}\n\nQuestion: does this mean that \"{hypothesis}\"?\n\n{options_}"),
        T("Given that \"{premise}\", is it true that \"{hypothesis}\"?\n\n{options_}"),
        T("Check the claim against the text.\nText: {premise}\nClaim: {hypothesis}\n"
          "Is the claim supported?\n\n{options_}"),
    ),
    "world_reviews": (
        T("{text}\n\nWhat is the sentiment of this review?\n\n{options_}"),
        T("Review: {text}\n\nIs this review positive or negative?\n\n{options_}"),
        T("Read the review and tell me how the writer feels.\n\n{text}\n\n{options_}"),
        turned("Write a {answer} review of a meal.", "{text}"),
    ),
    "world_posts": (
        T("{name} wrote: \"{text}\"\n\nWhat is the sentiment of this post?\n\n{options_}"),
        T("Post: {text}\n\nIs the feeling of this post positive or negative?\n\n{options_}"),
        T("How does the writer feel?\n\n{text}\n\n{options_}"),
    ),
    "world_qa": (
        T("Answer the question.\n\n{question}"),
        T("Q: {question}\nA:"),
        T("Please answer this question: {question}"),
        T("{question}\n\nWhat is the answer?"),
    ),
    "world_qa_choice": (
        T("Answer the question.\n\n{question}\n\n{options_}"),
        T("Q: {question}\n\nPick the answer.\n\n{options_}"),
        T("Please answer this question: {question}\n\n{options_}"),
    ),
    "world_passage_qa": (
        T("{passage}\n\nAnswer the question based on the paragraph above: {question}"),
        T("Read the text and answer the question.\n\nText: {passage}\nQuestion: {question}"),
        T("{passage}\n\nQ: {question}\nA:"),
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
    ),
    "world_data_to_text": (
        T("Write a sentence about the following data: {data}"),
        T("Data: {data}\n\nDescribe this data in one sentence."),
        T("Turn the data into text.\n\n{data}"),
        turned("Sentence: {answer}\n\nWhat data does this sentence describe?", "{data}"),
    ),
    "world_triples_to_text": (
        T("Write a sentence that uses these facts:\n\n{triples}"),
        T("Facts:\n{triples}\n\nDescribe these facts in one sentence."),
        T("Turn the triples into text.\n\n{triples}"),
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
