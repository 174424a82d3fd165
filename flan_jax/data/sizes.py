"""Split sizes known without downloading, for examples-proportional mixing.

TFDS builders report no split sizes until the data is prepared, yet mixing rates must be known when
a mixture is registered. This table holds the full TFDS split sizes (from the datasets' TFDS
catalog pages); :func:`sliced_size` applies a split slice such as ``train[:-200]``, and
:func:`verify` cross-checks the table against a builder's metadata when the data is present.
"""

from __future__ import annotations

import logging
import types

import tensorflow_datasets as tfds

# "tfds_name/split" (no version) -> number of examples in the full TFDS split.
SPLIT_SIZES: dict[str, int] = {
    "anli/r1/train": 16_946,
    "anli/r2/train": 45_460,
    "anli/r3/train": 100_459,
    "super_glue/cb/train": 250,
    "glue/mnli/train": 392_702,
    "glue/qnli/train": 104_743,
    "super_glue/rte/train": 2_490,
    "snli/train": 550_152,
    "glue/wnli/train": 635,
    "bool_q/train": 9_427,
    "drop/train": 77_409,
    "super_glue/multirc/train": 27_243,
    "openbookqa/train": 4_957,
    "squad/v1.1/train": 87_599,
    "squad/v2.0/train": 130_319,
    "ai2_arc/ARC-Challenge/train": 1_119,
    "ai2_arc/ARC-Easy/train": 2_251,
    "natural_questions_open/train": 87_925,
    "trivia_qa/rc/train": 138_384,
    "super_glue/copa/train": 400,
    "hellaswag/train": 39_905,
    "piqa/train": 16_113,
    "story_cloze/2016/validation": 1_871,
    "definite_pronoun_resolution/train": 1_322,
    "winogrande/train_xl": 40_398,
    "super_glue/wsc/train": 554,
    "wsc273/test": 273,
    "cosmos_qa/train": 25_262,
    "super_glue/record/train": 100_730,
    "imdb_reviews/plain_text/train": 25_000,
    "sentiment140/train": 1_600_000,
    "glue/sst2/train": 67_349,
    "yelp_polarity_reviews/train": 560_000,
    "glue/mrpc/train": 3_668,
    "glue/qqp/train": 363_846,
    "paws_wiki/train": 49_401,
    "glue/stsb/train": 5_749,
    "gem/common_gen/train": 67_389,
    "gem/dart/train": 62_659,
    "gem/e2e_nlg/train": 33_525,
    "gem/web_nlg_en/train": 35_426,
    "para_crawl/enes/train": 21_987_267,
    "wmt14_translate/fr-en/train": 40_836_715,
    "wmt16_translate/cs-en/train": 997_240,
    "wmt16_translate/de-en/train": 4_548_885,
    "wmt16_translate/fi-en/train": 2_073_394,
    "wmt16_translate/ro-en/train": 610_320,
    "wmt16_translate/ru-en/train": 1_516_162,
    "wmt16_translate/tr-en/train": 205_756,
    "aeslc/train": 14_436,
    "ag_news_subset/train": 120_000,
    "cnn_dailymail/train": 287_113,
    "gigaword/train": 3_803_957,
    "multi_news/train": 44_972,
    "newsroom/train": 995_041,
    "opinion_abstracts/idebate/train": 2_259,
    "opinion_abstracts/rotten_tomatoes/train": 3_731,
    "samsum/train": 14_732,
    "gem/wiki_lingua_english_en/train": 99_020,
    "xsum/train": 203_577,
    "coqa/train": 7_199,
    "quac/train": 83_568,
    "super_glue/wic/train": 5_428,
    "math_dataset/algebra__linear_1d/train": 1_999_998,
    "para_crawl/enda/train": 3_022_806,
    "trec/train": 5_452,
    "glue/cola/train": 8_551,
    # Flan 2022's two additions to the 2021 configs.
    # lambada: its TFDS train split is the release's development file
    # (lambada_development_plain_text.txt, one passage a line): 4,869 passages, the size the
    # Hugging Face copy (cimec/lambada) reports for the same file as its validation split.
    "lambada/train": 4_869,
    # unified_qa/ai2_science_middle: the UnifiedQA paper's dataset table (Khashabi et al. 2020)
    # gives AI2 Science Middle 605 / 125 / 679 train / dev / test, together the 1,409 questions of
    # AI2 Science Questions v2 "Middle School Without Diagrams"; its elementary row (623 / 123 /
    # 542) is what the TFDS catalog lists for ai2_science_elementary. Not yet checked against
    # prepared TFDS metadata: `flan-jax check-sizes --flan2022 flan2021` compares it.
    "unified_qa/ai2_science_middle/train": 605,
    # Flan 2022's dialog datasets. wiki_dialog/OQ: its TFDS train split. q_re_cc (QReCC): the
    # TFDS catalog's split table gives train 63,501 and test 16,451 (of the release's 81K turns).
    "wiki_dialog/OQ/train": 11_264_129,
    "q_re_cc/train": 63_501,
}


def _unversioned(tfds_name: str) -> str:
  return tfds_name.split(":")[0]


def split_name(split_spec: str) -> str:
  """``"train[:-200]"`` -> ``"train"``."""
  return split_spec.split("[")[0]


def full_size(tfds_name: str, split_spec: str) -> int | None:
  """Size of the whole TFDS split named in ``split_spec`` from the static table, or None."""
  return SPLIT_SIZES.get(f"{_unversioned(tfds_name)}/{split_name(split_spec)}")


def split_ranges(split_spec: str, full: int) -> list[range]:
  """The example indices a TFDS split spec (e.g. ``train[:30000]``) selects from a split of
  ``full`` examples, as TFDS resolves them (``ReadInstruction.to_absolute``)."""
  instruction = tfds.core.ReadInstruction.from_spec(split_spec)
  split_info = types.SimpleNamespace(num_examples=full)  # what to_absolute reads
  return [range(a.from_ or 0, full if a.to is None else a.to)
          for a in instruction.to_absolute({split_name(split_spec): split_info})]


def sliced_size(split_spec: str, full: int) -> int:
  """Number of examples a TFDS split spec (e.g. ``train[:30000]``) selects from ``full``."""
  return sum(len(r) for r in split_ranges(split_spec, full))


def num_examples(tfds_name: str, split_spec: str) -> int | None:
  """Examples in ``split_spec`` of ``tfds_name`` from the static table, or None if unknown."""
  full = full_size(tfds_name, split_spec)
  return None if full is None else sliced_size(split_spec, full)


def verify(tfds_name: str, split_spec: str, data_dir: str | None = None) -> int | None:
  """Cross-checks the static size against prepared TFDS metadata; returns the metadata size.

  Returns None when the data is not prepared locally (nothing to compare). Logs a warning when the
  table and the metadata disagree.
  """
  try:
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    splits = builder.info.splits
    name = split_name(split_spec)
    if name not in splits:
      return None
    actual = splits[name].num_examples
  except Exception:  # noqa: BLE001 - metadata unavailable means nothing to cross-check.
    return None
  expected = full_size(tfds_name, split_spec)
  if expected is not None and expected != actual:
    logging.warning("Static size of %s/%s is %d but the prepared data has %d; using the data's.",
                    tfds_name, name, expected, actual)
  return actual
