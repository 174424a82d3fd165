"""Struct to text: CommonGen, DART, E2E NLG and WebNLG (English), all from TFDS's GEM builder.

Each dataset verbalizes a structure (a concept set, triples, a restaurant meaning representation)
as text; ``answer`` is the example's ``target`` (one reference: the training target; for the
evaluation splits GEM puts the first reference there). As the reference, ``answers`` holds every
reference plus the target, and ROUGE takes the best of them per prediction (GEM's validation
splits of CommonGen, DART and WebNLG have up to dozens of references per example). Turned-around
templates recover the structure from the text.
"""

import tensorflow as tf

from flan_jax.data.preprocessors import join, nonempty
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "struct_to_text"
SUBCLUSTER = "structure_to_text"
METRIC = "rouge"
TRIPLE_SEPARATOR = "; "


def _gem_source(config: str):
  return tfds_source(f"gem/{config}:1.1.0", train="train[:30000]", validation="train[-200:]",
                     test="validation")


def _has_target(ex):
  return nonempty(ex["target"])


def _references(ex) -> tf.Tensor:
  """Every reference of a GEM example followed by its target (the reference's ``answers``)."""
  return tf.concat([ex["references"], [ex["target"]]], axis=0)


# -------------------------------------------------------------------------------- CommonGen

COMMON_GEN_TEMPLATES = (
    T("Concepts: {concepts}\n\nWrite a sentence that uses all of these concepts."),
    T("Make a sentence using these words: {concepts}"),
    T("Here are some keywords: {concepts}. Put them together in one natural sentence."),
    T("Create a short sentence containing the following words.\n\n{concepts}"),
    T("Words: {concepts}\nSentence:"),
    T("How could you use {concepts} in a single sentence?"),
    T("Describe an everyday scene that involves {concepts}."),
    turned("{answer}\n\nWhat are the key concepts in this sentence?", "{concepts}"),
    turned("Pick out the keywords of this sentence: {answer}", "{concepts}"),
    turned("Sentence: {answer}\n\nList the main nouns and verbs it contains.", "{concepts}"),
)


def _common_gen_fields(ex):
  return {"concepts": join(ex["concepts"], ", "), "answer": ex["target"],
          "answers": _references(ex)}


register_dataset(DatasetSpec(
    name="common_gen",
    cluster=CLUSTER,
    display_name="CommonGen",
    subcluster=SUBCLUSTER,
    source=_gem_source("common_gen"),
    fields=("concepts", "answer"),
    preprocess=_common_gen_fields,
    filter_fn=lambda ex: _has_target(ex) & nonempty(join(ex["concepts"], "")),
    metric=METRIC,
    continuations=(T("Words: {concepts}\nA sentence that uses them all:"),),
    templates=COMMON_GEN_TEMPLATES,
))

# ------------------------------------------------------------------------------------- DART

DART_TEMPLATES = (
    T("Triples: {tripleset}\n\nWrite a sentence that expresses all of this information."),
    T("Here is some data: {tripleset}.\n\nGenerate a sentence about it."),
    T("{tripleset}\n\nTurn the facts above into a fluent sentence."),
    T("Data: {tripleset}\nSentence describing the data:"),
    T("Write a short description using the following facts: {tripleset}"),
    T("Given the structured data below, produce one natural English sentence.\n\n{tripleset}"),
    T("Put these facts into one fluent sentence:\n{tripleset}"),
    T("Facts: {tripleset}\n\nDescribe these facts in plain English."),
    turned("Sentence: {answer}\n\nExtract the subject-relation-object triples stated in the "
           "sentence.", "{tripleset}"),
    turned("{answer}\n\nWhat structured data does this sentence describe?", "{tripleset}"),
)


# DART's WikiTableQuestions-derived triples carry table markers ("[TABLECONTEXT]", "[TITLE]"); the
# reference deletes every bracketed span (shortest match) from the joined triples, spaces kept.
DART_MARKER = r"\[(.*?)\]"


def _dart_fields(ex):
  # TFDS flattens each triple to "subject predicate object"; triples are joined with "; ".
  tripleset = tf.strings.regex_replace(join(ex["tripleset"], TRIPLE_SEPARATOR), DART_MARKER, "")
  return {"tripleset": tripleset, "answer": ex["target"], "answers": _references(ex)}


register_dataset(DatasetSpec(
    name="dart",
    cluster=CLUSTER,
    display_name="DART",
    subcluster=SUBCLUSTER,
    source=_gem_source("dart"),
    fields=("tripleset", "answer"),
    preprocess=_dart_fields,
    filter_fn=lambda ex: _has_target(ex) & nonempty(join(ex["tripleset"], "")),
    metric=METRIC,
    continuations=(T("Facts: {tripleset}\nThe same facts in a sentence:"),),
    templates=DART_TEMPLATES,
))

# ---------------------------------------------------------------------------------- E2E NLG

E2E_TEMPLATES = (
    T("Attributes: {mr}\n\nWrite a sentence about this restaurant that mentions all of these "
      "attributes."),
    T("Restaurant data: {mr}\n\nDescribe the restaurant in a sentence or two."),
    T("Here are some facts about a restaurant: {mr}. Write a short description of it."),
    T("{mr}\n\nGenerate a natural-language description of the restaurant above."),
    T("Meaning representation: {mr}\nText:"),
    T("Turn this structured restaurant information into a fluent sentence: {mr}"),
    T("What could a restaurant guide say about a place with these attributes?\n\n{mr}"),
    T("Data: {mr}\n\nWrite a sentence that expresses this data."),
    T("Write a sentence about a restaurant using the following key-value pairs.\n\n{mr}"),
    T("{mr}\n\nHow would you describe this restaurant to a friend?"),
)


def e2e_meaning_representation(mr: tf.Tensor) -> tf.Tensor:
  """``name[The Eagle], eatType[coffee shop]`` -> ``name = The Eagle, eatType = coffee shop`` (the
  reference's formatting: each ``[`` becomes `` = `` and each ``]`` is dropped)."""
  return tf.strings.regex_replace(tf.strings.regex_replace(mr, r"\[", " = "), r"\]", "")


def _e2e_fields(ex):
  return {"mr": e2e_meaning_representation(ex["meaning_representation"]),
          "answer": ex["target"], "answers": _references(ex)}


register_dataset(DatasetSpec(
    name="e2e_nlg",
    cluster=CLUSTER,
    display_name="E2E NLG",
    subcluster=SUBCLUSTER,
    source=_gem_source("e2e_nlg"),
    fields=("mr", "answer"),
    preprocess=_e2e_fields,
    filter_fn=lambda ex: _has_target(ex) & nonempty(ex["meaning_representation"]),
    metric=METRIC,
    continuations=(T("Restaurant facts: {mr}\nThe same facts in a sentence:"),),
    templates=E2E_TEMPLATES,
))

# ----------------------------------------------------------------------------------- WebNLG

WEB_NLG_TEMPLATES = (
    T("{triples}\n\nWrite a sentence that states the facts above."),
    T("Knowledge graph triples: {triples}\n\nExpress them as natural text."),
    T("Produce a short paragraph from this data: {triples}"),
    T("Input: {triples}\nText:"),
    T("The following triples have the form subject | relation | object: {triples}\n\n"
      "Describe them in a sentence or two."),
    T("Describe the following facts in one or two sentences: {triples}"),
    T("Generate text from the RDF triples below.\n\n{triples}"),
    T("Here is some information: {triples}\n\nHow could this be stated in English?"),
    turned("Text: {answer}\n\nConvert this text into subject | relation | object triples.",
           "{triples}"),
    turned("{answer}\n\nList the facts in the text above as triples.", "{triples}"),
)


def _web_nlg_fields(ex):
  # Each input is already "subject | property | object"; triples are joined with "; ". DBpedia's
  # underscores become spaces as in the reference (which also writes " | " as ", ": we keep the
  # bars that our templates name; see tasks/README.md).
  triples = tf.strings.regex_replace(join(ex["input"], TRIPLE_SEPARATOR), "_", " ")
  return {"triples": triples, "answer": ex["target"],
          "answers": _references(ex)}


register_dataset(DatasetSpec(
    name="web_nlg_en",
    cluster=CLUSTER,
    display_name="WebNLG",
    subcluster=SUBCLUSTER,
    source=_gem_source("web_nlg_en"),
    fields=("triples", "answer"),
    preprocess=_web_nlg_fields,
    filter_fn=lambda ex: _has_target(ex) & nonempty(join(ex["input"], "")),
    metric=METRIC,
    continuations=(T("Facts: {triples}\nThe same facts in a sentence:"),),
    templates=WEB_NLG_TEMPLATES,
))
