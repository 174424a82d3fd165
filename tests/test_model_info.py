"""Presets and ``model-info``: parameter counts from jax.eval_shape, nothing allocated."""

import glob
import os
import resource

import jax
import pytest

from flan_jax import model_info
from flan_jax.models.gin_config import REPO_ROOT, config_from_gin

PRESETS = sorted(glob.glob(os.path.join(REPO_ROOT, "gin", "models", "*.gin")))


def test_all_presets_present():
  names = {os.path.basename(p)[:-4] for p in PRESETS}
  assert {"tiny", "small", "base", "lamda_422m", "lamda_2b", "lamda_8b", "lamda_68b",
          "lamda_137b"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: os.path.basename(p))
def test_model_info_allocates_nothing(path, capsys):
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux.
  live_before = sum(x.nbytes for x in jax.live_arrays())
  assert model_info.main([f"--gin_file={path}", "--mesh=data=4,model=16"]) == 0
  out = capsys.readouterr().out
  count = int(out.strip().splitlines()[-1].split("parameters: ")[1])
  cfg = config_from_gin([path])
  assert count == cfg.num_params()
  assert sum(x.nbytes for x in jax.live_arrays()) - live_before < 1 << 20
  assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 1 << 20  # < 1 GiB.
  if path.endswith("lamda_137b.gin"):
    assert abs(count - 137.4e9) / 137.4e9 < 0.005
    assert cfg.num_layers == 64 and cfg.d_model == 8192 and cfg.num_heads == 128
    assert cfg.head_dim == 128 and cfg.d_ff == 65536 and cfg.activation == "gated_gelu"
    assert cfg.vocab_size == 32000 and cfg.position == "relative"
    assert "parameter bytes per device" in out
