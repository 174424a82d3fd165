"""flan_jax as an lm-eval model type: the same results as lm-eval's HFLM on the same HF dir.

An offline YAML multiple-choice task (local JSON data) through ``simple_evaluate`` (HFLM) and
``flan-jax lm-eval`` (the flan_jax backend): same per-item log-likelihoods and decisions;
``loglikelihood_rolling`` and ``generate_until`` against HFLM's on the same requests.
"""

import json
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from tests import lm_eval_fixtures as fx  # noqa: E402

TASK_YAML = """task: flan_jax_tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("hf_llama2"))
  fx.make_llama_dir(path, "llama2")
  return path


def _write_task(tmp_path) -> str:
  docs = [{"question": c.rstrip(), "choices": [o.strip() for o in options], "label": i % 2}
          for i, (c, options) in enumerate(fx.QUESTIONS) if c and i != 5]
  docs.append({"question": "Question: is it?", "choices": ["yes", "no", "café"], "label": 2})
  data = tmp_path / "data.jsonl"
  data.write_text("".join(json.dumps(d) + "\n" for d in docs))
  (tmp_path / "tiny_mc.yaml").write_text(TASK_YAML.format(data=data))
  return str(tmp_path)


def test_yaml_task_same_decisions_as_hflm(hf_dir, tmp_path):
  import lm_eval
  from lm_eval.tasks import TaskManager

  from flan_jax import cli
  include = _write_task(tmp_path)
  want = lm_eval.simple_evaluate(
      model="hf", model_args=f"pretrained={hf_dir},dtype=float32", device="cpu",
      tasks=["flan_jax_tiny_mc"], task_manager=TaskManager(include_path=include),
      log_samples=True)
  out = tmp_path / "results.json"
  cli.main(["lm-eval", "--model_dir", hf_dir, "--tasks", "flan_jax_tiny_mc", "--include_path",
            include, "--output_path", str(out), "--log_samples"])
  got = json.loads(out.read_text())
  want_items = sorted(want["samples"]["flan_jax_tiny_mc"], key=lambda s: s["doc_id"])
  got_items = sorted(got["samples"]["flan_jax_tiny_mc"], key=lambda s: s["doc_id"])
  assert len(got_items) == len(want_items) == 6
  for w, g in zip(want_items, got_items, strict=True):
    np.testing.assert_allclose([r[0] for r in g["filtered_resps"]],
                               [r[0] for r in w["filtered_resps"]], atol=1e-4)
    assert (g["acc"], g["acc_norm"]) == (w["acc"], w["acc_norm"])
  for metric in ("acc,none", "acc_norm,none"):
    assert got["results"]["flan_jax_tiny_mc"][metric] == want["results"]["flan_jax_tiny_mc"][
        metric]


def test_rolling_and_generate_until_match_hflm(hf_dir):
  from lm_eval.api.instance import Instance
  from lm_eval.models.huggingface import HFLM

  from flan_jax.evaluation.lm_eval import FlanJaxLM
  hflm = HFLM(pretrained=hf_dir, device="cpu", batch_size=2, dtype="float32")
  ours = FlanJaxLM(pretrained=hf_dir, batch_size=2)
  texts = [fx.QUESTIONS[5][0] * 2, "Le café est très bon.", "日本語 🙂"]  # The first: 3 windows.
  rolling = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(texts)]
  np.testing.assert_allclose(ours.loglikelihood_rolling(rolling),
                             hflm.loglikelihood_rolling(rolling, disable_tqdm=True), atol=1e-3)
  gen = {"until": ["\n", "."], "max_gen_toks": 8, "do_sample": False}
  prompts = ["Question: is the sky blue?\nAnswer:", "The quick brown fox", "OPTIONS:\n- yes"]
  requests = [Instance("generate_until", {}, (p, dict(gen)), i) for i, p in enumerate(prompts)]
  assert ours.generate_until(requests) == hflm.generate_until(requests, disable_tqdm=True)


def test_backend_needs_one_model_source():
  from flan_jax.evaluation.lm_eval import FlanJaxLM
  with pytest.raises(ValueError, match="exactly one of pretrained"):
    FlanJaxLM()


MESH_SCRIPT = """
import json, sys
import jax
import numpy as np
from lm_eval.api.instance import Instance
from flan_jax.parallel import partitioning
from flan_jax.evaluation.lm_eval import FlanJaxLM
from tests import lm_eval_fixtures as fx
assert jax.device_count() == 4, jax.devices()
lms = {m: FlanJaxLM(pretrained=sys.argv[1], batch_size=3, mesh=m) for m in ("data=-1;model=1",
                                                                           "none")}
sharded = lms["data=-1;model=1"]
assert sharded.mesh.size == 4 and partitioning.params_mesh(sharded.model.params) is not None
assert lms["none"].mesh is None
batch, rows = partitioning.place_batch_like(sharded.model.params, {"x": np.zeros((3, 2))})
assert rows == 3 and batch["x"].shape == (4, 2) and len(batch["x"].sharding.device_set) == 4
reqs = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(fx.requests())]
texts = [fx.QUESTIONS[5][0] * 2, "Le cafe est tres bon."]
rolling = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(texts)]
gen = {"until": ["\\n"], "max_gen_toks": 6, "do_sample": False}
prompts = ["Question: is the sky blue?", "The quick brown fox", "OPTIONS:", "a", "b"]
gens = [Instance("generate_until", {}, (p, dict(gen)), i) for i, p in enumerate(prompts)]
out = {m: {"ll": [list(r) for r in lm.loglikelihood(reqs)],
           "rolling": lm.loglikelihood_rolling(rolling), "gen": lm.generate_until(gens)}
       for m, lm in lms.items()}
print(json.dumps(out))
"""


@pytest.mark.slow  # ~55 s: an 8-device subprocess (make test-all)
def test_mesh_sharded_backend_matches_one_device(hf_dir):
  """4 simulated CPU devices: data-parallel batches give the 1-device results."""
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, "-c", MESH_SCRIPT, hf_dir], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  sharded, single = out["data=-1;model=1"], out["none"]
  assert len(sharded["ll"]) == len(fx.requests()) > 4
  np.testing.assert_allclose([s for s, _ in sharded["ll"]], [s for s, _ in single["ll"]],
                             atol=1e-5, rtol=0)
  assert [g for _, g in sharded["ll"]] == [g for _, g in single["ll"]]
  np.testing.assert_allclose(sharded["rolling"], single["rolling"], atol=1e-5, rtol=0)
  assert sharded["gen"] == single["gen"]
