"""Sentiment: IMDB, Sentiment140, SST-2 and Yelp polarity reviews.

Cleaning as the reference: IMDB's ``<br />`` tags become newlines; Yelp's escaped quotes (``\\""``)
become ``"`` and its literal ``\\n`` a space.

Sentiment140 follows the reference: polarity 3 or 4 is "positive", anything else "negative", and
no example is filtered. The train split has only polarities 0 and 4, but the test split also has
neutral tweets (polarity 2): they are scored, counted as "negative", exactly as in the paper's
numbers. To drop them instead, register :func:`sentiment140_spec` with ``drop_neutral=True``::

    register_dataset(sentiment140_spec("sentiment140_no_neutral", drop_neutral=True,
                                       suite="custom"))
"""

import tensorflow as tf

from flan_jax.data.preprocessors import pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "sentiment"
SUBCLUSTER = "sentiment"
NEG_POS = ("negative", "positive")  # label 0 = negative, 1 = positive in every dataset here.


def _imdb_fields(ex):
  return {"text": tf.strings.regex_replace(ex["text"], "<br />", "\n"),
          "answer": pick(NEG_POS, ex["label"])}


def _yelp_fields(ex):
  """The review text and its binary label (Yelp's class names "1"/"2")."""
  text = tf.strings.regex_replace(ex["text"], r'\\""', '"')
  text = tf.strings.regex_replace(text, r"\\n", " ")
  return {"text": text, "answer": pick(NEG_POS, ex["label"])}


# --------------------------------------------------------------------------------------- IMDB

IMDB_TEMPLATES = (
    T("{text}\n\nIs the sentiment of this movie review negative or positive?\n\n{options_}"),
    T("Movie review: {text}\n\nHow does the reviewer feel about the film?\n\n{options_}"),
    T("Read this review and tell me whether it is positive or negative.\n\n{text}\n\n{options_}"),
    T("What sentiment does the following movie review express?\n\n{text}\n\n{options_}"),
    T("Review:\n{text}\n\nWould you call this review positive or negative?\n\n{options_}"),
    T("Here is what someone wrote about a movie: {text}\n\nIs their opinion of it positive or "
      "negative?\n\n{options_}"),
    T("Classify the sentiment of this IMDb review.\n\n{text}\n\n{options_}"),
    turned("Write a {answer} review of a movie.", "{text}"),
    turned("Compose a film review that readers would describe as {answer}.", "{text}"),
    turned("You just watched a movie and your impression was {answer}. Write what you would post "
           "about it on a movie website.", "{text}"),
)

register_dataset(DatasetSpec(
    name="imdb_reviews",
    cluster=CLUSTER,
    display_name="IMDB",
    subcluster=SUBCLUSTER,
    source=tfds_source("imdb_reviews/plain_text:1.0.0", train="train[:-200]",
                       validation="train[-200:]", test="test"),
    fields=("text", "answer"),
    preprocess=_imdb_fields,
    options=NEG_POS,
    metric="accuracy",
    templates=IMDB_TEMPLATES,
))

# --------------------------------------------------------------------------------------- Sent140

SENT140_TEMPLATES = (
    T("{text}\n\nIs the person who tweeted this upbeat or down?\n\n{options_}"),
    T("Tweet: {text}\n\nIs the author of this tweet feeling negative or positive?\n\n{options_}"),
    T("Classify the following tweet as negative or positive.\n\n{text}\n\n{options_}"),
    T("Here is a tweet: \"{text}\"\nHow would you describe its mood?\n\n{options_}"),
    T("Someone posted this on Twitter: {text}\n\nDoes the post sound negative or positive?\n\n"
      "{options_}"),
    T("What tone does this tweet have?\n{text}\n\n{options_}"),
    T("Read the tweet below and judge its sentiment.\n\n{text}\n\n{options_}"),
    turned("Post something on Twitter whose mood is {answer}.", "{text}"),
    turned("Compose a short social media post that sounds {answer}.", "{text}"),
    turned("Give an example of a tweet with a {answer} sentiment.", "{text}"),
)


NEUTRAL_POLARITY = 2


def _sent140_fields(ex):
  # polarity: 0 = negative, 2 = neutral (test split only), 4 = positive. As the reference: 3 or 4
  # is positive, everything else (neutral included) negative.
  positive = tf.logical_or(tf.equal(ex["polarity"], 3), tf.equal(ex["polarity"], 4))
  return {"text": ex["text"], "answer": pick(NEG_POS, positive)}


def sentiment140_spec(name: str = "sentiment140", *, drop_neutral: bool = False,
                      suite: str = "flan") -> DatasetSpec:
  """The Sentiment140 spec; ``drop_neutral=True`` filters out neutral tweets (polarity 2)."""
  keep = (lambda ex: tf.not_equal(ex["polarity"], NEUTRAL_POLARITY)) if drop_neutral else None
  return DatasetSpec(
      name=name,
      cluster=CLUSTER,
      display_name="Sent140" + (" (no neutral)" if drop_neutral else ""),
      subcluster=SUBCLUSTER,
      source=tfds_source("sentiment140:1.0.0", train="train[:30000]", validation="train[-200:]",
                         test="test"),
      fields=("text", "answer"),
      preprocess=_sent140_fields,
      options=NEG_POS,
      metric="accuracy",
      filter_fn=keep,
      templates=SENT140_TEMPLATES,
      suite=suite,
  )


register_dataset(sentiment140_spec())

# --------------------------------------------------------------------------------------- SST-2

SST2_TEMPLATES = (
    T("{sentence}\n\nIs the sentiment of this sentence negative or positive?\n\n{options_}"),
    T("A sentence from a movie review: \"{sentence}\"\n\nWhat sentiment does it express?\n\n"
      "{options_}"),
    T("Does the following phrase from a film review sound negative or positive?\n\n{sentence}\n\n"
      "{options_}"),
    T("Review excerpt: {sentence}\n\nHow does the critic feel about the movie here?\n\n"
      "{options_}"),
    T("Classify the sentiment of this snippet.\n\n{sentence}\n\n{options_}"),
    T("\"{sentence}\"\n\nWould a reader take this remark about a movie as negative or "
      "positive?\n\n{options_}"),
    T("Decide whether this sentence from a movie review is positive or negative: {sentence}\n\n"
      "{options_}"),
    T("Critic snippet:\n{sentence}\n\nThumbs up or thumbs down?\n\n{options_}"),
    turned("Write a short {answer} sentence about a movie.", "{sentence}"),
    turned("Give an example of a {answer} line from a film review.", "{sentence}"),
)


def _sst2_fields(ex):
  return {"sentence": ex["sentence"], "answer": pick(NEG_POS, ex["label"])}


register_dataset(DatasetSpec(
    name="sst2",
    cluster=CLUSTER,
    display_name="SST-2",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/sst2:2.0.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("sentence", "answer"),
    preprocess=_sst2_fields,
    options=NEG_POS,
    metric="accuracy",
    templates=SST2_TEMPLATES,
))

# --------------------------------------------------------------------------------------- Yelp

YELP_TEMPLATES = (
    T("{text}\n\nDid this customer leave happy or unhappy?\n\n{options_}"),
    T("Yelp review: {text}\n\nWas the writer pleased or displeased?\n\n{options_}"),
    T("Read the following review of a business. How did the customer feel about their "
      "visit?\n\n{text}\n\n{options_}"),
    T("Here is a customer's review:\n{text}\n\nDoes it express a negative or a positive "
      "opinion?\n\n{options_}"),
    T("Classify this restaurant or business review by its sentiment.\n\n{text}\n\n{options_}"),
    T("{text}\n\nBased on this review, was the customer's experience negative or positive?\n\n"
      "{options_}"),
    T("What tone does the following Yelp review take?\n\n{text}\n\n{options_}"),
    turned("Compose a Yelp post about a shop or restaurant; its tone should be {answer}.",
           "{text}"),
    turned("Compose a {answer} review of a local restaurant or shop.", "{text}"),
    turned("Imagine you just visited a business and had a {answer} experience. Write a review of "
           "it.", "{text}"),
)

register_dataset(DatasetSpec(
    name="yelp_polarity_reviews",
    cluster=CLUSTER,
    display_name="Yelp",
    subcluster=SUBCLUSTER,
    # ClassLabel names "1" (negative) and "2" (positive): label 0 = negative, 1 = positive.
    source=tfds_source("yelp_polarity_reviews:0.2.0", train="train[:30000]",
                       validation="train[-200:]", test="test"),
    fields=("text", "answer"),
    preprocess=_yelp_fields,
    options=NEG_POS,
    metric="accuracy",
    templates=YELP_TEMPLATES,
))
