"""The paper's per-cluster run files parse and name the right mixture and settings."""

import gin
import pytest

from flan_jax import dataset_spec as ds
from flan_jax import registry, train

registry.ensure_registered()


@pytest.mark.parametrize("cluster", list(ds.CLUSTERS))
def test_paper_run_files(cluster):
  try:
    train.parse_gin([f"gin/flan/flan_heldout_{cluster}.gin"], ["MODEL_DIR = '/tmp/x'"], ["."])
    train.check_required_macros()
    assert gin.query_parameter("%MIXTURE_OR_TASK_NAME") == f"flan_heldout_{cluster}_train"
    registry.get(gin.query_parameter("%MIXTURE_OR_TASK_NAME"))
    lengths = gin.query_parameter("%TASK_FEATURE_LENGTHS")
    assert lengths == {"inputs": 1024, "targets": 256}
    assert gin.query_parameter("%TRAIN_STEPS_RELATIVE") == 30000
    assert gin.query_parameter("%LEARNING_RATE") == 3e-5
    tokens = gin.query_parameter("%BATCH_SIZE") * (lengths["inputs"] + lengths["targets"])
    assert 7000 <= tokens <= 9000  # ~8k tokens per batch, as in the paper
    config = gin.query_parameter("%MODEL_CONFIG")
    assert config is not None
  finally:
    gin.clear_config()
