"""Summarization: AESLC, AG News, CNN/DailyMail, Gigaword, Multi-News, Newsroom, Opinion Abstracts
(iDebate, Rotten Tomatoes), SAMSum, WikiLingua (English) and XSum.

AG News is a classification dataset (topic of a news story); all others are generative and scored
with ROUGE. The target of every normal template is ``{answer}``; turned templates write the source
text from the summary (an email from its subject, an article from its headline, ...).
"""

import tensorflow as tf

from flan_jax.data.preprocessors import join, nonempty, pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "summarization"
SUBCLUSTER = "summarization"


def _sentences(values: tf.Tensor) -> tf.Tensor:
  """Joins a 1-D string tensor of sentences/reviews into one text, ending each with punctuation."""
  values = tf.strings.strip(values)
  values = tf.boolean_mask(values, tf.strings.length(values) > 0)
  values = tf.strings.regex_replace(values, r"([^.!?\"'])$", r"\1.")
  return join(values, " ")


def _both_nonempty(source_key: str, target_key: str):
  """filter_fn: the source text and the target are both non-empty."""
  return lambda ex: tf.logical_and(nonempty(ex[source_key]), nonempty(ex[target_key]))


# ------------------------------------------------------------------------------------- AESLC

AESLC_TEMPLATES = (
    T("{body}\n\nWhat should go in the subject field of this message?"),
    T("Here is the text of an email:\n\n{body}\n\nWhat would be a good subject line for it?"),
    T("Email: {body}\n\nSubject:"),
    T("Suggest a short subject for the following message.\n\n{body}"),
    T("{body}\n\nIn a few words, what is this email about? Answer with a subject line."),
    T("I am about to send this email:\n\n{body}\n\nPropose a concise subject line."),
    T("Read the email below and give it a title.\n\n{body}"),
    T("Title this message in a few words: {body}"),
    turned("Draft a message to send under the heading \"{answer}\".", "{body}"),
    turned("Subject: {answer}\n\nDraft the body of an email that fits this subject.", "{body}"),
)


def _aeslc_fields(ex):
  # As the reference: newlines in the body become spaces, in the subject line they go.
  return {"body": tf.strings.regex_replace(ex["email_body"], "\n", " "),
          "answer": tf.strings.regex_replace(ex["subject_line"], "\n", "")}


register_dataset(DatasetSpec(
    name="aeslc",
    cluster=CLUSTER,
    display_name="AESLC",
    subcluster=SUBCLUSTER,
    source=tfds_source("aeslc:1.0.0", train="train", validation="validation[-200:]", test="test"),
    fields=("body", "answer"),
    preprocess=_aeslc_fields,
    filter_fn=_both_nonempty("email_body", "subject_line"),
    metric="rouge",
    templates=AESLC_TEMPLATES,
))

# ----------------------------------------------------------------------------------- AG News

# TFDS label names: World, Sports, Business, Sci/Tech (in this order).
AG_NEWS_OPTIONS = ("World", "Sports", "Business", "Science/Tech")

AG_NEWS_TEMPLATES = (
    T("{title}\n\n{text}\n\nWhich topic does this article belong to?\n\n{options_}"),
    T("Headline: {title}\nStory: {text}\n\nPick the section of the newspaper where this story "
      "fits.\n\n{options_}"),
    T("What is this news story mainly about?\n\n{title} - {text}\n\n{options_}"),
    T("Classify the topic of the following article.\n\n{title}\n{text}\n\n{options_}"),
    T("{text}\n\nIs this text about world news, sports, business or science and technology?"
      "\n\n{options_}"),
    T("Article: {title}\n{text}\n\nQ: What category best describes this article?\n\n{options_}"),
    T("Read the news item and choose its subject area.\n\n{title}\n{text}\n\n{options_}"),
    T("{title}\n{text}\n\nThe article above is about which of these?\n\n{options_}"),
    turned("Write the headline and the opening of a news story from the {answer} section.",
           "{title}\n\n{text}"),
    turned("{text}\n\nWrite a headline for this news story.", "{title}"),
)


def _ag_news_fields(ex):
  return {"title": ex["title"], "text": ex["description"],
          "answer": pick(AG_NEWS_OPTIONS, ex["label"])}


register_dataset(DatasetSpec(
    name="ag_news_subset",
    cluster=CLUSTER,
    display_name="AG News",
    subcluster=SUBCLUSTER,
    source=tfds_source("ag_news_subset:1.0.0", train="train[:30000]", validation="train[-200:]",
                       test="test"),
    fields=("title", "text", "answer"),
    preprocess=_ag_news_fields,
    filter_fn=lambda ex: nonempty(ex["description"]),
    options=AG_NEWS_OPTIONS,
    metric="accuracy",
    templates=AG_NEWS_TEMPLATES,
))

# ----------------------------------------------------------------------------- CNN/DailyMail

CNN_DAILYMAIL_TEMPLATES = (
    T("{article}\n\nList the key points of this report."),
    T("Article: {article}\n\nWrite the highlights of this article."),
    T("Read the following news story and list its key facts in a few sentences.\n\n{article}"),
    T("{article}\n\nWhat are the key takeaways of this story?"),
    T("Give a brief summary of this news article:\n\n{article}"),
    T("News report: {article}\n\nHighlights:"),
    T("Condense the article below into a handful of short sentences.\n\n{article}"),
    T("Here is a news article:\n{article}\n\nBriefly, what does it report?"),
    turned("Highlights:\n{answer}\n\nWrite a news article that covers these points.", "{article}"),
    turned("Compose a news story based on the following key facts.\n\n{answer}", "{article}"),
)


# A dateline/byline header at the start of an article: "LONDON, England (CNN) -- " or Daily Mail's
# "By . Name . PUBLISHED: . 12:00 EST, 1 May 2013 . | . UPDATED: . ... 2013 . ". The reference
# splits at "2012 . ", "2013 . ", "2014 . " and ") -- " (but keeps the part *before* the first
# split, i.e. the header itself; see tasks/README.md). Here the header is removed, and only when
# it is one: within the first 400 characters, and a date only after PUBLISHED/UPDATED.
_CNN_DATELINE = (r"^[^\n]{0,400}?(?:(?:PUBLISHED:|UPDATED:|[Ll]ast updated at)[^\n]{0,80}?"
                 r"20(?:12|13|14) \. |\) -- )")


def _cnn_dailymail_fields(ex):
  article = ex["article"]
  for _ in range(3):  # PUBLISHED ... | UPDATED ... : up to two dated parts, then the dateline.
    article = tf.strings.regex_replace(article, _CNN_DATELINE, "", replace_global=False)
  return {"article": article, "answer": ex["highlights"]}


register_dataset(DatasetSpec(
    name="cnn_dailymail",
    cluster=CLUSTER,
    display_name="CNN/DailyMail",
    subcluster=SUBCLUSTER,
    # flan.md pins 3.1.0, which TFDS 4.9.10 cannot build; 3.4.0 has the same articles and splits.
    source=tfds_source("cnn_dailymail:3.4.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=("article", "answer"),
    preprocess=_cnn_dailymail_fields,
    filter_fn=_both_nonempty("article", "highlights"),
    metric="rouge",
    templates=CNN_DAILYMAIL_TEMPLATES,
))

# ---------------------------------------------------------------------------------- Gigaword

GIGAWORD_TEMPLATES = (
    T("{document}\n\nWrite a short summary of the sentence above."),
    T("Sentence: {document}\n\nHeadline:"),
    T("Write a headline for this news text: {document}"),
    T("Shorten this sentence into a brief summary.\n\n{document}"),
    T("{document}\n\nGive a one-line summary of this text."),
    T("Here is the first sentence of a news article:\n{document}\n\nWhat would its headline be?"),
    T("Compress the following into a few words: {document}"),
    T("Q: What is a short summary of \"{document}\"?\nA:"),
    turned("Headline: {answer}\n\nWrite the opening sentence of a news story with this headline.",
           "{document}"),
    turned("Expand this headline into a full news sentence: {answer}", "{document}"),
)


def _gigaword_keep(ex):
  """As the reference: drop pairs with an UNK token or a "#" (Gigaword's digit mask) anywhere."""
  text = tf.strings.join([ex["document"], ex["summary"]])
  clean = tf.logical_not(tf.strings.regex_full_match(text, "(?s).*(UNK|#).*"))
  return tf.logical_and(_both_nonempty("document", "summary")(ex), clean)


def _gigaword_fields(ex):
  return {"document": ex["document"], "answer": ex["summary"]}


register_dataset(DatasetSpec(
    name="gigaword",
    cluster=CLUSTER,
    display_name="Gigaword",
    subcluster=SUBCLUSTER,
    source=tfds_source("gigaword:1.2.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=("document", "answer"),
    preprocess=_gigaword_fields,
    filter_fn=_gigaword_keep,
    metric="rouge",
    templates=GIGAWORD_TEMPLATES,
))

# -------------------------------------------------------------------------------- Multi-News

MULTI_NEWS_TEMPLATES = (
    T("{document}\n\nWrite a summary that combines the news reports above."),
    T("Several articles cover the same story:\n\n{document}\n\nSummarize them in one text."),
    T("Sources:\n{document}\n\nSummary:"),
    T("Read these news reports and write a single overview of what they say.\n\n{document}"),
    T("{document}\n\nWhat is the story, in brief?"),
    T("Here are some news articles about one event.\n\n{document}\n\nWrite a short news brief "
      "that draws on all of them."),
    T("Condense the following reports into a summary of a few paragraphs.\n\n{document}"),
    T("Combine the information in these articles into one summary:\n{document}"),
    turned("Summary: {answer}\n\nWrite a news article that this summary could describe.",
           "{document}"),
    turned("Expand the following summary into full news coverage.\n\n{answer}", "{document}"),
)


def _multi_news_fields(ex):
  # The source articles are separated by "|||||"; put a blank line between them instead.
  document = tf.strings.regex_replace(ex["document"], r"\s*\|\|\|\|\|\s*", "\n\n")
  return {"document": tf.strings.strip(document), "answer": ex["summary"]}


register_dataset(DatasetSpec(
    name="multi_news",
    cluster=CLUSTER,
    display_name="Multi-News",
    subcluster=SUBCLUSTER,
    # flan.md pins 1.0.0, which TFDS 4.9.10 cannot build; 2.1.0 is the current release.
    source=tfds_source("multi_news:2.1.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=("document", "answer"),
    preprocess=_multi_news_fields,
    filter_fn=_both_nonempty("document", "summary"),
    metric="rouge",
    templates=MULTI_NEWS_TEMPLATES,
))

# ---------------------------------------------------------------------------------- Newsroom

NEWSROOM_TEMPLATES = (
    T("{title}\n\n{text}\n\nGive the gist of this piece."),
    T("Title: {title}\nArticle: {text}\n\nWrite a one- or two-sentence summary."),
    T("Read the article below and describe what it is about in a few sentences.\n\n{title}\n"
      "{text}"),
    T("{text}\n\nSum the piece up for a reader in a hurry."),
    T("Story headlined \"{title}\":\n\n{text}\n\nIn a nutshell:"),
    T("Give a brief synopsis of this news story.\n\n{title}\n\n{text}"),
    T("{title}: {text}\n\nIn short, what does this article say?"),
    turned("Write a news article titled \"{title}\".", "{text}"),
    turned("Write an article that matches this summary:\n\n{answer}", "{text}"),
    turned("{text}\n\nWhat headline would you print above this?", "{title}"),
)


NEWSROOM_NOTE = ("Manual download: register at https://summari.es/download/ and put train.jsonl, "
                 "dev.jsonl and test.jsonl in <tfds_data_dir>/downloads/manual/.")


def _newsroom_fields(ex):
  return {"title": ex["title"], "text": ex["text"], "answer": ex["summary"]}


register_dataset(DatasetSpec(
    name="newsroom",
    cluster=CLUSTER,
    display_name="Newsroom",
    subcluster=SUBCLUSTER,
    source=tfds_source("newsroom:1.0.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=("title", "text", "answer"),
    preprocess=_newsroom_fields,
    filter_fn=_both_nonempty("text", "summary"),
    metric="rouge",
    templates=NEWSROOM_TEMPLATES,
    note=NEWSROOM_NOTE,
))

# ------------------------------------------------------------------ Opinion Abstracts: iDebate

IDEBATE_TEMPLATES = (
    T("{argument}\n\nWhat claim does this argument support?"),
    T("Debate: {topic}\nArgument: {argument}\n\nState the claim this argument makes, in one "
      "sentence."),
    T("Summarize the following argument in a single sentence.\n\n{argument}"),
    T("Here is an argument from a debate about \"{topic}\":\n{argument}\n\nWhat is its main "
      "point?"),
    T("Read the argument and give the claim it argues for.\n\n{argument}"),
    T("Topic: {topic}\n\n{argument}\n\nClaim:"),
    T("{argument}\n\nIn one sentence, what is the speaker arguing?"),
    turned("Write an argument in support of this claim: {answer}", "{argument}"),
    turned("Debate topic: {topic}\nClaim: {answer}\n\nBack the claim up with an argument.",
           "{argument}"),
    turned("{argument}\n\nWhat debate could this argument come from?", "{topic}"),
)


def _numbered(values: tf.Tensor, limit: int = 10) -> tf.Tensor:
  """As the reference: the first ``limit`` items as a numbered list, "1. a\\n2. b"."""
  values = values[:limit]
  numbers = tf.strings.as_string(tf.range(1, tf.size(values) + 1))
  return tf.strings.reduce_join(tf.strings.join([numbers, values], separator=". "),
                                separator="\n")


def _idebate_fields(ex):
  return {"topic": ex["_debate_name"], "argument": _numbered(ex["_argument_sentences"]["value"]),
          "answer": ex["_claim"]}


register_dataset(DatasetSpec(
    name="opinion_abstracts_idebate",
    cluster=CLUSTER,
    display_name="Opinion Abstracts (iDebate)",
    subcluster=SUBCLUSTER,
    source=tfds_source("opinion_abstracts/idebate:1.0.0", train="train[:-600]",
                       validation="train[-600:-500]", test="train[-500:]"),
    fields=("topic", "argument", "answer"),
    preprocess=_idebate_fields,
    filter_fn=lambda ex: tf.logical_and(
        nonempty(_sentences(ex["_argument_sentences"]["value"])), nonempty(ex["_claim"])),
    metric="rouge",
    templates=IDEBATE_TEMPLATES,
))

# ---------------------------------------------------------- Opinion Abstracts: Rotten Tomatoes

ROTTEN_TOMATOES_TEMPLATES = (
    T("Reviews of {movie}:\n{critics}\n\nWrite a one-sentence critical consensus for the movie."),
    T("{critics}\n\nSummarize what critics think of {movie}."),
    T("Here is what critics said about the film {movie}:\n\n{critics}\n\nWhat is the overall "
      "verdict?"),
    T("Movie: {movie}\nCritic reviews: {critics}\n\nConsensus:"),
    T("Combine these critic reviews of {movie} into one short summary.\n\n{critics}"),
    T("{critics}\n\nHow would you sum up these opinions about {movie}?"),
    T("Read the reviews below and state the critics' general opinion.\n\n{critics}"),
    T("Critics on {movie}: {critics}\n\nGive the gist of their reviews in a sentence."),
    turned("Write some critics' reviews of the film {movie} that agree with this verdict: "
           "{answer}", "{critics}"),
    turned("The critical consensus on {movie} is: \"{answer}\"\n\nWrite the kind of reviews that "
           "would lead to it.", "{critics}"),
)


def _rotten_tomatoes_fields(ex):
  # As the reference: underscores in the movie name become spaces; the reviews are the first ten
  # as a numbered list.
  return {"movie": tf.strings.regex_replace(ex["_movie_name"], "_", " "),
          "critics": _numbered(ex["_critics"]["value"]),
          "answer": ex["_critic_consensus"]}


register_dataset(DatasetSpec(
    name="opinion_abstracts_rotten_tomatoes",
    cluster=CLUSTER,
    display_name="Opinion Abstracts (Rotten Tomatoes)",
    subcluster=SUBCLUSTER,
    source=tfds_source("opinion_abstracts/rotten_tomatoes:1.0.0", train="train[:-600]",
                       validation="train[-600:-500]", test="train[-500:]"),
    fields=("movie", "critics", "answer"),
    preprocess=_rotten_tomatoes_fields,
    filter_fn=lambda ex: tf.logical_and(
        nonempty(_sentences(ex["_critics"]["value"])), nonempty(ex["_critic_consensus"])),
    metric="rouge",
    templates=ROTTEN_TOMATOES_TEMPLATES,
))

# ------------------------------------------------------------------------------------ SAMSum

SAMSUM_TEMPLATES = (
    T("{dialogue}\n\nSummarize this conversation."),
    T("Dialogue:\n{dialogue}\n\nRecap this chat in a line or two."),
    T("Here is a messenger conversation:\n{dialogue}\n\nDescribe what happened in it in a sentence "
      "or two."),
    T("{dialogue}\n\nBriefly, what were they talking about?"),
    T("Read the conversation and give a brief summary of it.\n\n{dialogue}"),
    T("Conversation:\n{dialogue}\n\nSummary:"),
    T("Sum up the following exchange in a few words.\n\n{dialogue}"),
    T("What are the main points of this dialogue?\n\n{dialogue}"),
    turned("Write a short chat conversation that fits this summary: {answer}", "{dialogue}"),
    turned("{answer}\n\nWrite a dialogue in which this happens.", "{dialogue}"),
)


SAMSUM_NOTE = ("Manual download: get https://arxiv.org/src/1911.12237v2/anc/corpus.7z and extract "
               "train.json, val.json and test.json into <tfds_data_dir>/downloads/manual/.")


def _samsum_fields(ex):
  # As the reference: Windows line ends become "\\n" and "<file_photo>"-style markup a space
  # (non-greedy here: the reference's greedy "<.*>" also ate the words between two tags).
  dialogue = tf.strings.regex_replace(ex["dialogue"], "\r\n", "\n")
  dialogue = tf.strings.regex_replace(dialogue, "<[^<>\n]*>", " ")
  return {"dialogue": dialogue, "answer": ex["summary"]}


register_dataset(DatasetSpec(
    name="samsum",
    cluster=CLUSTER,
    display_name="SAMSum",
    subcluster=SUBCLUSTER,
    source=tfds_source("samsum:1.0.0", train="train", validation="validation[:200]", test="test"),
    fields=("dialogue", "answer"),
    preprocess=_samsum_fields,
    filter_fn=_both_nonempty("dialogue", "summary"),
    metric="rouge",
    templates=SAMSUM_TEMPLATES,
    note=SAMSUM_NOTE,
))

# ------------------------------------------------------------------------ WikiLingua (English)

WIKI_LINGUA_TEMPLATES = (
    T("{source}\n\nSummarize the steps described above."),
    T("Article: {source}\n\nWrite a short summary of this how-to article."),
    T("Read these instructions and condense them into a brief summary.\n\n{source}"),
    T("{source}\n\nWhat are the key steps, in short?"),
    T("Shorten this how-to guide to its main steps:\n\n{source}"),
    T("Here is part of a how-to article:\n{source}\n\nSummary:"),
    T("Give a one-paragraph summary of these directions.\n\n{source}"),
    T("{source}\n\nBoil the text above down to its essentials."),
    turned("Expand these step summaries into a full how-to guide:\n\n{answer}", "{source}"),
    turned("Summary: {answer}\n\nExpand this into detailed step-by-step instructions.",
           "{source}"),
)


def _wiki_lingua_fields(ex):
  return {"source": ex["source"], "answer": ex["target"]}


register_dataset(DatasetSpec(
    name="wiki_lingua_english_en",
    cluster=CLUSTER,
    display_name="WikiLingua (English)",
    subcluster=SUBCLUSTER,
    source=tfds_source("gem/wiki_lingua_english_en:1.1.0", train="train[:30000]",
                       validation="validation[:200]", test="test"),
    fields=("source", "answer"),
    preprocess=_wiki_lingua_fields,
    filter_fn=_both_nonempty("source", "target"),
    metric="rouge",
    templates=WIKI_LINGUA_TEMPLATES,
))

# -------------------------------------------------------------------------------------- XSum

XSUM_TEMPLATES = (
    T("{document}\n\nBoil the story above down to a single line."),
    T("Article: {document}\n\nIn brief:"),
    T("What is the main point of the following news story, in a single sentence?\n\n{document}"),
    T("{document}\n\nWrite a one-line summary of this text."),
    T("Read the article and state what it is about in one sentence.\n\n{document}"),
    T("Here is a BBC news article:\n{document}\n\nSum it up in a sentence."),
    T("Give a single-sentence summary of this news report: {document}"),
    T("{document}\n\nIn one sentence, what happened?"),
    turned("Write a news article that could be summarized as: {answer}", "{document}"),
    turned("One-sentence summary: {answer}\n\nWrite the full article.", "{document}"),
)


XSUM_NOTE = ("Manual download: run the EdinburghNLP/XSum download and extraction scripts "
             "(github.com/EdinburghNLP/XSum) and put xsum-extracts-from-downloads.tar.gz in "
             "<tfds_data_dir>/downloads/manual/.")


def _xsum_fields(ex):
  return {"document": ex["document"], "answer": ex["summary"]}


register_dataset(DatasetSpec(
    name="xsum",
    cluster=CLUSTER,
    display_name="XSum",
    subcluster=SUBCLUSTER,
    # flan.md uses `huggingface:xsum`; the TFDS builder xsum:1.1.0 has the same data and splits.
    source=tfds_source("xsum:1.1.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=("document", "answer"),
    preprocess=_xsum_fields,
    filter_fn=_both_nonempty("document", "summary"),
    metric="rouge",
    templates=XSUM_TEMPLATES,
    note=XSUM_NOTE,
))
