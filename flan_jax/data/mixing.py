"""Which datasets a held-out mixture may train on, and at what rate.

FLAN's protocol (paper §2.2): a dataset counts as unseen only if no dataset of its cluster was
seen; paraphrase and NLI are also dropped for each other, and reading comprehension and
commonsense are dropped together with reading comprehension with commonsense. Rates are
examples-proportional with each dataset capped at 3,000 (``min(train size, 3000)``), computed from
sizes known without downloading (:mod:`flan_jax.data.sizes`).
"""

from __future__ import annotations

from collections.abc import Iterable

from flan_jax.data.spec import DATASETS, DatasetSpec

MIXING_CAP = 3000

# Held-out cluster -> clusters dropped from training in addition to itself.
PARTNER_EXCLUSIONS: dict[str, frozenset[str]] = {
    "nli": frozenset({"paraphrase"}),
    "paraphrase": frozenset({"nli"}),
    "reading_comprehension": frozenset({"read_comp_commonsense"}),
    "commonsense": frozenset({"read_comp_commonsense"}),
    "read_comp_commonsense": frozenset({"reading_comprehension", "commonsense"}),
}

# The number-of-clusters ablation (paper Fig. 6): clusters added in this order; entries are
# (cluster, subcluster or None for the whole cluster).
NUM_CLUSTERS_ORDER: tuple[tuple[str, str | None], ...] = (
    ("summarization", None),
    ("translation", None),
    ("reading_comprehension", None),
    ("sentiment", None),
    ("struct_to_text", None),
    ("coreference", None),
    ("misc", "conversational_qa"),
)
NUM_CLUSTERS_HELDOUT = ("nli", "closed_book_qa", "commonsense")


def suite_specs(suite: str) -> list[DatasetSpec]:
  return [s for s in DATASETS.values() if s.suite == suite]


def clusters(suite: str) -> list[str]:
  """The clusters of a suite, in first-registration order."""
  return list(dict.fromkeys(s.cluster for s in suite_specs(suite)))


def excluded_clusters(heldout: str) -> frozenset[str]:
  return frozenset({heldout}) | PARTNER_EXCLUSIONS.get(heldout, frozenset())


def training_specs(suite: str, heldout: str | None) -> list[DatasetSpec]:
  """Datasets a model held out on ``heldout`` may train on (None: every trainable dataset)."""
  excluded = excluded_clusters(heldout) if heldout else frozenset()
  return [s for s in suite_specs(suite) if not s.eval_only and s.cluster not in excluded]


def cluster_specs(suite: str, cluster: str) -> list[DatasetSpec]:
  return [s for s in suite_specs(suite) if s.cluster == cluster]


def rate(spec: DatasetSpec, cap: int | None = MIXING_CAP) -> float:
  """``min(train size, cap)``; raises if the size is unknown (add it to flan_jax.data.sizes)."""
  if spec.num_train_examples is None:
    raise ValueError(
        f"No static train size for {spec.name!r}: add its TFDS split size to "
        "flan_jax/data/sizes.py SPLIT_SIZES (or pass num_train_examples in its DatasetSpec).")
  n = spec.num_train_examples
  return float(n if cap is None else min(n, cap))


def weighted(tasks_and_specs: Iterable[tuple[str, DatasetSpec]], cap: int | None = MIXING_CAP
             ) -> list[tuple[str, float]]:
  return [(task, rate(spec, cap)) for task, spec in tasks_and_specs]


def num_clusters_specs(k: int) -> list[DatasetSpec]:
  """Training datasets of the first ``k`` clusters of :data:`NUM_CLUSTERS_ORDER`."""
  chosen = NUM_CLUSTERS_ORDER[:k]
  return [s for s in suite_specs("flan") if not s.eval_only and any(
      s.cluster == c and (sub is None or s.subcluster == sub) for c, sub in chosen)]
