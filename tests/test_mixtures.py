"""Held-out mixtures: exclusions, capped examples-proportional rates, ablations."""

import pytest
import seqio

from flan_jax.data import mixing, registry, sizes
from flan_jax.data import spec as ds

registry.ensure_registered()
FLAN_CLUSTERS = list(ds.CLUSTERS)


def _datasets_of(mixture_name: str) -> set[str]:
  return {ds.TASK_TO_DATASET[t.name] for t in seqio.get_mixture_or_task(mixture_name).tasks}


def test_twelve_paper_clusters_registered():
  assert set(mixing.clusters("flan")) == set(FLAN_CLUSTERS)


@pytest.mark.parametrize("cluster", FLAN_CLUSTERS)
def test_heldout_train_excludes_cluster_and_partners(cluster):
  train = _datasets_of(f"flan_heldout_{cluster}_train")
  excluded = {cluster} | set(mixing.PARTNER_EXCLUSIONS.get(cluster, ()))
  for name in train:
    assert ds.DATASETS[name].cluster not in excluded, (cluster, name)
    assert not ds.DATASETS[name].eval_only
  # Everything else that can train is in.
  expected = {s.name for s in mixing.suite_specs("flan")
              if s.cluster not in excluded and not s.eval_only}
  assert train == expected
  assert _datasets_of(f"flan_heldout_{cluster}_eval") == {
      s.name for s in mixing.cluster_specs("flan", cluster)}


def test_partner_rules_are_the_papers():
  assert "paraphrase" in mixing.excluded_clusters("nli")
  assert "nli" in mixing.excluded_clusters("paraphrase")
  assert "read_comp_commonsense" in mixing.excluded_clusters("reading_comprehension")
  assert "read_comp_commonsense" in mixing.excluded_clusters("commonsense")
  assert {"reading_comprehension", "commonsense"} <= mixing.excluded_clusters(
      "read_comp_commonsense")
  assert mixing.excluded_clusters("sentiment") == {"sentiment"}


def test_rates_are_capped_static_train_sizes():
  mixture = seqio.get_mixture_or_task("flan_heldout_nli_train")
  checked = 0
  for task in mixture.tasks:
    spec = ds.DATASETS[ds.TASK_TO_DATASET[task.name]]
    source = spec.source
    static = sizes.num_examples(source.tfds_dataset.name, source.split_map["train"])
    assert static is not None, spec.name
    assert mixture.get_rate(task) == min(static, 3000)
    checked += 1
  assert checked > 30


@pytest.mark.parametrize("name,split,size,expected", [
    ("super_glue/rte:1.0.2", "train[:-200]", 2_490, 2_290),
    ("glue/mnli:2.0.0", "train[:30000]", 392_702, 30_000),
    ("super_glue/cb:1.0.2", "train[:-50]", 250, 200),
    ("para_crawl/enda:1.2.0", "train[30200:60200]", 3_022_806, 30_000),
])
def test_sliced_sizes(name, split, size, expected):
  assert sizes.sliced_size(split, size) == expected
  assert sizes.num_examples(name, split) == expected


def test_small_datasets_get_their_size_and_large_ones_the_cap():
  rates = {ds.TASK_TO_DATASET[t.name]: r for t, r in (
      (t, seqio.get_mixture_or_task("flan_heldout_summarization_train").get_rate(t))
      for t in seqio.get_mixture_or_task("flan_heldout_summarization_train").tasks)}
  assert rates["rte"] == 2_290
  assert rates["cb"] == 200
  assert rates["glue_qqp"] == 3_000


def test_verify_without_prepared_data_returns_none(tmp_path):
  assert sizes.verify("super_glue/rte:1.0.2", "train[:-200]", str(tmp_path)) is None


def test_sharded_read_of_unprepared_tfds_data_says_how_to_prepare(tmp_path):
  """seqio lists a TFDS split's files before sharding (``--shard i/N``, one host of several);
  unprepared data has none, and the read then says how to prepare it (not TFDS's KeyError)."""
  task = registry.get("rte_7templates")
  seqio.set_tfds_data_dir_override(str(tmp_path))
  try:
    assert task.source.list_shards("train") == []
    with pytest.raises(ds.MissingDataError, match="tfds build super_glue/rte"):
      task.get_dataset(None, split="train", shard_info=seqio.ShardInfo(0, 2))
  finally:
    seqio.set_tfds_data_dir_override(None)


def test_template_and_instruction_ablations():
  for n in (1, 2, 4, 7):
    mixture = seqio.get_mixture_or_task(f"flan_heldout_nli_{n}templates_train")
    assert all(t.name.endswith(f"_{n}templates") for t in mixture.tasks)
    assert _datasets_of(f"flan_heldout_nli_{n}templates_train") == _datasets_of(
        "flan_heldout_nli_train")
  for kind in ("no_template", "dataset_name"):
    assert _datasets_of(f"flan_heldout_nli_{kind}_train") == _datasets_of(
        "flan_heldout_nli_train")


def test_num_clusters_ablation_grows_in_papers_order():
  previous: set[str] = set()
  for k in range(1, 8):
    current = _datasets_of(f"flan_num_clusters_{k}_train")
    assert previous < current
    cluster, sub = mixing.NUM_CLUSTERS_ORDER[k - 1]
    added = {ds.DATASETS[n].cluster for n in current - previous}
    assert added == {cluster}
    previous = current
  assert not {ds.DATASETS[n].cluster for n in previous} & set(mixing.NUM_CLUSTERS_HELDOUT)
  assert len(_datasets_of("flan_num_clusters_1_train")) == 11  # the 11 summarization datasets
