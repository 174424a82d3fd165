"""A held-out FLAN cluster evaluated end to end on mock TFDS data, with its report."""

import json
import os

import jax
import pytest
import tensorflow_datasets as tfds

from flan_jax import eval as eval_lib
from flan_jax.data import registry
from flan_jax.models import DecoderConfig, init_params
from flan_jax.models import checkpoint as model_checkpoint

CFG = DecoderConfig(vocab_size=512, num_layers=1, d_model=32, num_heads=2, head_dim=16, d_ff=64,
                    dtype="float32")
MIXTURE = "flan_heldout_sentiment_eval"


@pytest.mark.slow  # ~90 s: every template of 4 FLAN datasets; the offline cluster's report runs in
# make test (tests/test_eval.py, the demo's eval) and this one in make test-all.
def test_flan_cluster_mock_eval_report(tmp_path):
  registry.ensure_registered()
  model = os.path.join(tmp_path, "model")
  model_checkpoint.save_params(model, init_params(CFG, jax.random.key(0)), CFG, step=1)
  base = os.path.join(tmp_path, "base")
  model_checkpoint.save_params(base, init_params(CFG, jax.random.key(1)), CFG, step=0)
  out_dir = os.path.join(tmp_path, "eval")
  with tfds.testing.mock_data(num_examples=4, num_sub_examples=2, max_value=2):
    out = eval_lib.evaluate(MIXTURE, model, out_dir, baselines={"untuned": base},
                            max_decode_length=4, batch_size=8, progress=False)
  tasks = registry.get(MIXTURE).tasks
  results = out["results"]["model"]["test"]
  assert set(results) == {t.name for t in tasks}
  scoring = [t for t in results if t.endswith("_scoring_eval")]
  assert len(scoring) == len(tasks)  # Classification clusters are ranked, template by template.
  assert all(0 <= results[t]["accuracy"] <= 100 for t in scoring)
  with open(out["paths"]["report_json"]) as f:
    report = json.load(f)
  text = json.dumps(report)
  for dataset in ("imdb", "sst2", "yelp_polarity_reviews", "sentiment140"):
    assert dataset in text
  with open(out["paths"]["report_md"]) as f:
    md = f.read()
  assert "Sentiment" in md and "untuned" in md and "Best-dev" in md
  with open(out["paths"]["report_png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert set(out["chance"]) == set(scoring)


def test_missing_tfds_data_names_the_build_command(tmp_path):
  model = os.path.join(tmp_path, "model")
  model_checkpoint.save_params(model, init_params(CFG, jax.random.key(0)), CFG)
  with pytest.raises(Exception, match="tfds build"):
    eval_lib.evaluate("imdb_reviews_type_0_scoring_eval", model, str(tmp_path / "e"),
                      dev_split=None, progress=False)
