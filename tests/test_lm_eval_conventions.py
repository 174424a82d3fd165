"""flan_jax.load() scores causal models exactly as lm-evaluation-harness's HFLM does.

Random tiny Llamas with three offline-trained tokenizers (adds BOS / adds none / Llama-2
Metaspace), contexts ending in spaces and newlines, empty contexts, non-ASCII options and a
request longer than max_position_embeddings (64).
"""

import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

import flan_jax  # noqa: E402
from flan_jax.interop import hf as hf_interop  # noqa: E402
from tests import lm_eval_fixtures as fx  # noqa: E402


def _hflm_loglikelihoods(path, reqs):
  from lm_eval.api.instance import Instance
  from lm_eval.models.huggingface import HFLM
  lm = HFLM(pretrained=path, device="cpu", batch_size=4, dtype="float32")
  out = lm.loglikelihood([Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)],
                         disable_tqdm=True)
  return np.array([x[0] for x in out]), [x[1] for x in out]


@pytest.fixture(scope="module", params=fx.STYLES)
def source(request, tmp_path_factory):
  path = str(tmp_path_factory.mktemp(f"hf_{request.param}"))
  fx.make_llama_dir(path, request.param)
  reqs = fx.requests()
  return request.param, path, reqs, *_hflm_loglikelihoods(path, reqs)


def _check_against_hflm(model, reqs, want, want_greedy):
  got = model.loglikelihood(reqs)
  np.testing.assert_allclose([x[0] for x in got], want, atol=1e-4)
  assert [x[1] for x in got] == want_greedy
  start = 0
  for context, options in fx.QUESTIONS:  # acc / acc_norm / acc_bytes decisions as lm-eval.
    lls = want[start:start + len(options)]
    start += len(options)
    ranking = model.rank(context, options)
    np.testing.assert_allclose(ranking.scores, lls, atol=1e-4)
    choices = [o.lstrip() for o in options]  # lm-eval's choice without the target delimiter.
    assert ranking.best == int(np.argmax(lls))
    assert ranking.best_per_char == int(np.argmax(lls / np.array([len(c) for c in choices])))
    assert ranking.best_per_byte == int(np.argmax(
        lls / np.array([len(c.encode("utf-8")) for c in choices])))


def test_hf_dir_loglikelihoods_equal_hflm(source):
  style, path, reqs, want, want_greedy = source
  model = flan_jax.load(path)
  assert not model.prefix_lm and model.max_length == 64
  # The tokenizer decides BOS (config.json says bos_token_id=1 for every style).
  assert model.prefix_token_id == (2 if style == "none" else 1)
  pairs = [model.encode_pair(c, o) for c, o in reqs]
  assert any(len(c) + len(x) > 65 for c, x in pairs)  # Truncated from the left.
  _check_against_hflm(model, reqs, want, want_greedy)


def test_import_hf_output_behaves_like_source(source, tmp_path):
  style, path, reqs, want, want_greedy = source
  if style == "bos":
    pytest.skip("one tokenizer style is enough for the import path")
  out = str(tmp_path / "imported")
  assert hf_interop.main_import([path, out]) == 0  # --dtype defaults to the source's float32.
  model = flan_jax.load(out)
  assert model.config.dtype == "float32" and not model.prefix_lm
  assert model.eos_id == 2 and model.max_length == 64
  _check_against_hflm(model, reqs, want, want_greedy)
  # The same model through a checkpoint_<step> path.
  step_model = flan_jax.load(os.path.join(out, "checkpoint_0"))
  np.testing.assert_allclose(step_model.score(*reqs[0]), want[0], atol=1e-4)
