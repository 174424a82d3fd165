"""Translation: ParaCrawl En-Es, WMT'14 En-Fr and the six WMT'16 X-En pairs (cs/de/fi/ro/ru/tr).

Every dataset produces the same fields: ``sent1`` in ``lang1`` and ``sent2`` in ``lang2`` (also the
``answer``). As in the reference, ``lang1`` is English for every pair: ParaCrawl and WMT'14 normal
templates translate English into Spanish / French and the turned-around ones back into English.

WMT'16 (the six ``wmt16_translate_{cs,de,fi,ro,ru,tr}en`` pairs) follows the reference's template
mix, index by index: templates 0 and 4-7 translate English into X, 1-3 (turned around) translate X
into English, 8 asks for a sentence written in X (target ``sent2``) and 9 asks which language an X
sentence is in (target ``lang2``). So ``wmt16_translate_deen_type_0`` translates English into
German, although the TFDS name reads "de-en".
"""

from collections.abc import Callable

import tensorflow as tf

from flan_jax.data.preprocessors import nonempty
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "translation"
SUBCLUSTER = "translation"
METRIC = "bleu"
FIELDS = ("sent1", "lang1", "sent2", "lang2", "answer")

LANGUAGES = {
    "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fi": "Finnish",
    "fr": "French", "ro": "Romanian", "ru": "Russian", "tr": "Turkish",
}


def _translation_fields(src: str, tgt: str) -> Callable[[dict], dict]:
  """Field function for a TFDS ``Translation`` example, translating ``src`` -> ``tgt``."""

  def fields(ex):
    return {"sent1": ex[src], "lang1": tf.constant(LANGUAGES[src]),
            "sent2": ex[tgt], "lang2": tf.constant(LANGUAGES[tgt]),
            "answer": ex[tgt]}

  return fields


# GPT-3-style prompts for the untuned baseline: both directions, no instruction.
CONTINUATIONS = (T("{lang1}: {sent1}\n{lang2}:", "{sent2}"),
                 T("{lang2}: {sent2}\n{lang1}:", "{sent1}"))


def _both_sides(src: str, tgt: str) -> Callable[[dict], tf.Tensor]:
  """Keeps sentence pairs with text on both sides."""
  return lambda ex: tf.logical_and(nonempty(ex[src]), nonempty(ex[tgt]))


# ------------------------------------------------------------------------- ParaCrawl En-Es

PARA_CRAWL_TEMPLATES = (
    T("{sent1}\n\nTranslate the text above from {lang1} to {lang2}."),
    T("Into {lang2}, please:\n\n{sent1}"),
    T("What would \"{sent1}\" be in {lang2}?"),
    T("Source ({lang1}): {sent1}\nTarget ({lang2}):"),
    T("Convert this {lang1} passage into {lang2}.\n\n{sent1}"),
    T("I need this in {lang2}, please: {sent1}"),
    T("{sent1}\n\nCan you put that into {lang2}?"),
    turned("Rewrite this {lang2} passage in {lang1}:\n\n{sent2}", "{sent1}"),
    turned("Someone wrote \"{sent2}\". Put it in {lang1} for me.", "{sent1}"),
    turned("{sent2}\n\nThe sentence above is in {lang2}. Write it in {lang1}.", "{sent1}"),
)

register_dataset(DatasetSpec(
    name="para_crawl_enes",
    cluster=CLUSTER,
    display_name="ParaCrawl En-Es",
    subcluster=SUBCLUSTER,
    source=tfds_source("para_crawl/enes:1.2.0", train="train[:30000]",
                       validation="train[-1200:-1000]", test="train[-1000:]"),
    fields=FIELDS,
    preprocess=_translation_fields("en", "es"),
    filter_fn=_both_sides("en", "es"),
    metric=METRIC,
    continuations=CONTINUATIONS,
    templates=PARA_CRAWL_TEMPLATES,
))

# ---------------------------------------------------------------------------- WMT'14 En-Fr

WMT14_TEMPLATES = (
    T("Turn this {lang1} sentence into {lang2}.\n\n{sent1}"),
    T("{sent1}\n\nWhat is this in {lang2}?"),
    T("{lang1} text: {sent1}\n\n{lang2} translation:"),
    T("Write the following in {lang2}:\n{sent1}"),
    T("Provide the {lang2} translation of the sentence below.\n\n{sent1}"),
    T("Sentence: {sent1}\n\nTranslate this sentence into {lang2}."),
    T("Someone said this in {lang1}: \"{sent1}\"\nHow would it be said in {lang2}?"),
    turned("Turn this {lang2} sentence into {lang1}.\n\n{sent2}", "{sent1}"),
    turned("{lang2} text: {sent2}\n\n{lang1} translation:", "{sent1}"),
    turned("{sent2}\n\nWhat does this {lang2} sentence say in {lang1}?", "{sent1}"),
)

register_dataset(DatasetSpec(
    name="wmt14_enfr",
    cluster=CLUSTER,
    display_name="WMT'14 En-Fr",
    subcluster=SUBCLUSTER,
    source=tfds_source("wmt14_translate/fr-en:1.0.0", train="train[:30000]",
                       validation="validation[:200]", test="test"),
    fields=FIELDS,
    preprocess=_translation_fields("en", "fr"),
    filter_fn=_both_sides("en", "fr"),
    metric=METRIC,
    continuations=CONTINUATIONS,
    templates=WMT14_TEMPLATES,
))

# ------------------------------------------------------------------- WMT'16 X-En (six pairs)

# One template list for all six pairs (the reference repository's shared key). lang1 = English.
WMT16_TEMPLATES = (
    T("{sent1}\n\nPut this into {lang2}."),                                     # en -> X
    turned("{sent2}\n\nGive me this in {lang1}.", "{sent1}"),                   # X -> en
    turned("Here is some {lang2} text:\n{sent2}\n\nWhat does it say in {lang1}?", "{sent1}"),
    turned("{lang2}: {sent2}\n{lang1}:", "{sent1}"),                             # X -> en
    T("Render this in {lang2}.\n\n{sent1}"),                                    # en -> X
    T("I have some {lang1} text that needs to be in {lang2}:\n{sent1}"),    # en -> X
    T("Q: Someone wrote \"{sent1}\". How would a {lang2} speaker put it?\nA:"),  # en -> X
    T("{lang1}: {sent1}\n{lang2}:"),                                             # en -> X
    T("Compose one sentence in {lang2}.", "{sent2}"),                            # write in X
    T("{sent2}\n\nName the language of the text above.", "{lang2}"),            # identify X
)

# Source language code -> note for data TFDS cannot download itself.
WMT16_PAIRS = {
    "cs": ("The cs-en training data includes CzEng 1.6pre: download "
           "czeng16pre.deduped-ignoring-sections.txt.gz from "
           "http://ufal.mff.cuni.cz/czeng/czeng16pre and place it in "
           "<tfds_data_dir>/downloads/manual/."),
    "de": "",
    "fi": "",
    "ro": "",
    "ru": "",
    "tr": "",
}

for _src, _note in WMT16_PAIRS.items():
  register_dataset(DatasetSpec(
      name=f"wmt16_translate_{_src}en",
      cluster=CLUSTER,
      display_name=f"WMT'16 {_src.capitalize()}-En",
      subcluster=SUBCLUSTER,
      source=tfds_source(f"wmt16_translate/{_src}-en:1.0.0", train="train[:30000]",
                         validation="validation[:200]", test="test"),
      fields=FIELDS,
      preprocess=_translation_fields("en", _src),
      filter_fn=_both_sides("en", _src),
      metric=METRIC,
      continuations=CONTINUATIONS,
      templates=WMT16_TEMPLATES,
      note=_note,
  ))
