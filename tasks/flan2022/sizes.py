"""Train-split sizes of the Flan 2022 tasks, known without their data (for the mixing rates).

Each mode of a task sees the same examples, so one size serves all its modes. ``None``: not in
the table; the mixture then gives the task its source's cap and :func:`unknown` lists it.
``flan-jax check-sizes --flan2022`` compares the table with the data you have prepared.
"""

from __future__ import annotations

# CoT: rows of the reference's own TSVs (google-research/FLAN flan/v2/cot_data/{name}_train.tsv at
# commit e9e4ec6), which hold a subset of each source dataset's train split (aqua: 2,728 of AQuA's
# 97,467). Seven were counted on the files in ../shared/realdata/cot (tests/test_real_row_fixes.py
# recounts them); esnli and qed are not kept there: their figures are issue 27's counts of the
# same commit's files (with them the CoT submix gives aqua 3.6 % and gsm8k 10.0 % of the base
# tasks' rate, the shares the reference's mixture has).
COT: dict[str, int] = {
    "aqua": 2_728, "creak": 6_915, "ecqa": 7_112, "esnli": 36_174, "gsm8k": 7_473,
    "qasc": 1_084, "qed": 5_154, "sensemaking": 6_070, "strategyqa": 2_061,
}

# T0-SF: the Hugging Face train split of each dataset (promptsource directory name).
T0: dict[str, int] = {
    "commonsense_qa": 9_741, "dream": 6_116, "quail": 10_246, "quartz": 2_696,
    "social_i_qa": 33_410, "wiqa": 29_808, "qasc": 8_134, "quarel": 1_941, "sciq": 11_679,
    "wiki_hop/original": 43_738, "adversarial_qa/dbidaf": 10_000, "adversarial_qa/dbert": 10_000,
    "adversarial_qa/droberta": 10_000, "quoref": 19_399, "duorc/SelfRC": 60_721,
    "duorc/ParaphraseRC": 69_524, "ropes": 10_924, "hotpot_qa/distractor": 90_447,
    "wiki_qa": 20_360, "amazon_polarity": 3_600_000, "app_reviews": 288_065,
    "rotten_tomatoes": 8_530, "wiki_bio": 582_659, "dbpedia_14": 560_000, "trec": 5_452,
}

# NIv2: instances per task file; tasks not listed here get the NIv2 cap.
NIV2: dict[str, int] = {}
