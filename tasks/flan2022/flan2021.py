"""Flan 2021 in its Flan 2022 form: every trainable 2021 config with its own templates and
preprocessing, but the train split without the 30k slicing (the cap moves into the rate), plus
the two datasets v2 adds (``flan2021_lambada``, ``flan2021_unified_qa_science_inst``)."""

import re

import tensorflow as tf

from flan_jax.data import mixing, sizes
from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data.spec import DatasetSpec, TfdsSource, _Builder
from flan_jax.data.templates import T
from flan_jax.tasks.flan2022 import registry

# The reference keeps these configs' splits as they are (several slice one TFDS split into train,
# validation and test: dropping the train slice would train on the test rows).
KEEP_SPLITS = frozenset({"true_case", "fix_punct", "word_segment", "para_crawl_enes",
                         "opinion_abstracts_idebate", "opinion_abstracts_rotten_tomatoes"})
_RESERVED_TAIL = re.compile(r"\[-(\d+):\]")  # a validation split "train[-200:]" reserves 200


def v2_train_split(name: str, splits: dict[str, str]) -> str:
  """The Flan 2022 train split of a 2021 config, as the reference's
  ``reset_split_maxes_on_flan_v0_configs``: the train slice is dropped (the 30k cap moves into
  the rate), except that the examples a ``[-N:]`` validation split reserves stay out of train
  (``train[:30000]`` with validation ``train[-200:]`` -> ``train[:-200]``) and the
  :data:`KEEP_SPLITS` configs keep theirs."""
  train = splits["train"]
  if name in KEEP_SPLITS or "[" not in train:
    return train
  reserved = _RESERVED_TAIL.search(splits.get("validation", ""))
  base = train.split("[")[0]
  return f"{base}[:-{reserved.group(1)}]" if reserved else base


def _task(spec: DatasetSpec) -> registry.Flan2022Task:
  old = spec.source
  splits = {**old.split_map, "train": v2_train_split(spec.name, old.split_map)}
  source = TfdsSource(old.tfds_dataset.name, splits, old.note)
  size = sizes.num_examples(old.tfds_dataset.name, splits["train"])
  head = (*_Builder(spec).head, pm.candidates_from_patterns(spec.templates, spec.fields))
  return registry.Flan2022Task(f"flan2021_{spec.name}", "flan2021", source, head, size)


for _spec in mixing.training_specs("flan", None):
  registry.register(_task(_spec))


# ----------------------------------------------------------------------------- v2's two additions
# Flan 2022 adds two datasets to the 2021 configs: LAMBADA (predict a passage's last word) and
# the middle-school AI2 science questions as UnifiedQA prints them. Templates are our own.

LAMBADA_FIELDS = ("context", "answer")
LAMBADA_TEMPLATES = (
    T("{context} ___\n\nWhich word fills the blank at the end?", "{answer}"),
    T("Finish the last sentence with one word.\n\n{context}", "{answer}"),
    T("{context}\n\nWhat is the next word?", "{answer}"),
    T("Read the passage and guess the word that ends it.\n\nPassage: {context}\nWord:", "{answer}"),
    T("Continue this text with exactly one word:\n{context}", "{answer}"),
    T("Passage: \"{context} ...\"\nThe missing final word is", "{answer}"),
)

SCIENCE_FIELDS = ("question", "answer")
SCIENCE_TEMPLATES = (
    T("{question}\n\nOne of these is right:\n{options_}", "{answer}"),
    T("Science quiz. {question}\n{options_}", "{answer}"),
    T("Answer this middle-school science question.\n\n{question}\n\n{options_}", "{answer}"),
    T("Science question: {question}\n{options_}\nReply with one of the options.", "{answer}"),
    T("Which answer is correct? {question}\n\n{options_}", "{answer}"),
    T("Test question: {question}\n\nPick the best answer.\n{options_}", "{answer}"),
)


def lambada_fields(ex: dict) -> dict:
  """A passage -> everything before its last word (``context``) and that word (``answer``)."""
  passage = tf.strings.strip(ex["passage"])
  return {"context": tf.strings.regex_replace(passage, r"\s+\S+$", ""),
          "answer": tf.strings.regex_replace(passage, r"(?s)^.*\s(\S+)$", r"\1")}


def lambada_has_two_words(ex: dict) -> tf.Tensor:
  return tf.strings.regex_full_match(tf.strings.strip(ex["passage"]), r"(?s).*\S\s+\S+")


def science_fields(ex: dict) -> dict:
  """UnifiedQA's ``"question \\n (A) x (B) y (C) z (D) w"`` (``\\n`` literal or a newline) ->
  ``question``, ``options`` and ``answer`` (the option the output names, in the option's case)."""
  text = tf.strings.regex_replace(ex["input"], r"\\n", "\n")
  question = tf.strings.strip(tf.strings.regex_replace(text, r"(?s)\s*\(A\).*$", ""))
  choices = tf.strings.regex_replace(text, r"(?s)^.*?\(A\)\s*", "")
  choices = tf.strings.regex_replace(choices, r"\s*\([B-H]\)\s*", pm.OPTION_SEP)
  options = tf.strings.strip(tf.strings.split(choices, pm.OPTION_SEP))
  output = tf.strings.strip(ex["output"])
  same = tf.equal(tf.strings.lower(options), tf.strings.lower(output))
  answer = tf.cond(tf.reduce_any(same), lambda: options[tf.argmax(tf.cast(same, tf.int32))],
                   lambda: output)
  return {"question": question, "options": options, "answer": answer}


def science_is_clean(ex: dict) -> tf.Tensor:
  """Exactly four options, one of them the answer (the reference keeps four-option items)."""
  return tf.logical_and(tf.equal(tf.size(ex["options"]), 4),
                        tf.reduce_any(tf.equal(ex["options"], ex["answer"])))


def _extra(name: str, tfds_name: str, head: tuple, templates: tuple, fields: tuple
           ) -> registry.Flan2022Task:
  source = TfdsSource(tfds_name, {"train": "train"})
  size = sizes.num_examples(tfds_name, "train")
  return registry.Flan2022Task(f"flan2021_{name}", "flan2021", source,
                               (*head, pm.candidates_from_patterns(templates, fields)), size)


LAMBADA = registry.register(_extra(
    "lambada", "lambada:1.0.0",
    (prep.filter_examples(lambada_has_two_words), prep.map_fields(lambada_fields, LAMBADA_FIELDS)),
    LAMBADA_TEMPLATES, LAMBADA_FIELDS))
UNIFIED_QA_SCIENCE = registry.register(_extra(
    "unified_qa_science_inst", "unified_qa/ai2_science_middle:1.0.0",
    (prep.map_fields(science_fields, SCIENCE_FIELDS), prep.filter_examples(science_is_clean)),
    SCIENCE_TEMPLATES, SCIENCE_FIELDS))
