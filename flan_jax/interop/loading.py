"""One loader for every kind of model directory: a flan_jax model directory (``model_config.json``
+ ``checkpoint_<step>/``), one of its ``checkpoint_<step>`` directories, an ``import-hf`` output
(a flan_jax directory that remembers its Hugging Face source) or a Hugging Face directory
(``config.json`` + safetensors, imported in memory).

``flan-jax eval``/``infer`` (sharded on a mesh), :func:`flan_jax.load`, the lm-eval backend and
the trainer's ``INITIAL_CHECKPOINT_PATH`` (``expect=MODEL_CONFIG``) all call :func:`load_model`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from flan_jax.interop import hf as hf_interop
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.storage import fs


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A model read from a directory.

  Attributes:
    config: its DecoderConfig (``dtype`` overridden when asked).
    params: the parameters (placed with the given shardings, else on the default device).
    step: the checkpoint's step (0 for a Hugging Face directory).
    model_dir: the directory holding ``model_config.json`` (or ``config.json`` for HF).
    hf_config: the Hugging Face ``config.json`` of a HF directory or an ``import-hf`` output
        (a causal LM); None for a flan_jax-trained prefix LM.
  """

  config: DecoderConfig
  params: Any
  step: int
  model_dir: str
  hf_config: dict | None

  @property
  def prefix_lm(self) -> bool:
    """flan_jax-trained models attend bidirectionally over the inputs; HF models are causal."""
    return self.hf_config is None


Shardings = Callable[[DecoderConfig], Any]


def load_model(path: str, *, dtype: str | None = None, step: int | None = None,
               shardings: Shardings | None = None, what: str = "CHECKPOINT_PATH",
               expect: DecoderConfig | None = None) -> LoadedModel:
  """Loads ``path`` (any directory kind above); ``step`` picks a checkpoint (default: the newest
  complete one), ``shardings(config)`` places the params, ``what`` names the path in errors.
  Hugging Face directories default to float32.

  ``expect`` (the trainer's MODEL_CONFIG): the directory's model must be this one (compute-only
  and load-choice fields aside, else :class:`~flan_jax.models.checkpoint.ConfigMismatchError`);
  a Hugging Face model is then read in its layout, dtype and parameter dtype.
  """
  if not fs.isdir(path):
    raise FileNotFoundError(f"{what} {path} is not a directory{fs.unseen_hint(path)}; pass a "
                            "flan_jax model directory, a checkpoint_<step> directory or a Hugging "
                            "Face model directory")
  if fs.is_remote(path) and fs.isfile(fs.join(path, "config.json")):
    raise ValueError(f"{what} {path} is a Hugging Face model directory in an object store; "
                     "flan_jax reads those from local disk only: copy it (gcloud storage cp -r "
                     f"{path} .) or import it (flan-jax import-hf) into a flan_jax model "
                     "directory, which may be a gs:// path")
  if hf_interop.is_hf_model_dir(path):
    return _load_hf_dir(path, dtype, shardings, expect)
  model_dir, step_in_path = model_checkpoint.split_step_dir(path)
  if step_in_path is not None:
    if step is not None and step != step_in_path:
      raise ValueError(f"step={step} contradicts the checkpoint directory {path}")
    step = step_in_path
  foreign = model_checkpoint.foreign_checkpoint(model_dir)
  if foreign:
    raise model_checkpoint.CheckpointError(f"{what}: {foreign}")
  # The shared restore path: an explicit step must pass every check; else the newest good one
  # (bad ones skipped with a line each).
  restored = model_checkpoint.restore_checkpoint(model_dir, expect, step, shardings=shardings,
                                                 compute_dtype=dtype)
  return LoadedModel(restored.config, restored.params, restored.step, model_dir,
                     hf_interop.source_config(model_dir))


def _load_hf_dir(path: str, dtype: str | None, shardings: Shardings | None,
                 expect: DecoderConfig | None) -> LoadedModel:
  """A Hugging Face directory, imported in memory (checked against ``expect`` when given)."""
  model_checkpoint.warn(f"{path} is a Hugging Face model directory: its files carry no checksums "
                        "flan_jax can check, so they are not verified")
  hf_config = json.loads(fs.read_text(fs.join(path, "config.json")))
  if expect is None:
    config, params = hf_interop.load_hf(path, dtype=dtype or "float32")
  else:
    have = hf_interop.decoder_config_from_hf(hf_config, dtype=expect.dtype,
                                             scan_layers=expect.scan_layers)
    diff = model_checkpoint.config_differences(
        have, expect, model_checkpoint.RUNTIME_FIELDS + model_checkpoint.LOAD_FIELDS)
    if diff:
      raise model_checkpoint.ConfigMismatchError(
          f"the Hugging Face model in {path} does not match MODEL_CONFIG: "
          f"{model_checkpoint.describe_differences(diff, 'checkpoint', 'MODEL_CONFIG')}")
    config, params = hf_interop.load_hf(path, dtype=expect.dtype, scan_layers=expect.scan_layers)
    params = jax.tree.map(lambda x: np.asarray(x, expect.param_dtype), params)
  if shardings is not None:
    params = jax.device_put(params, shardings(config))
  return LoadedModel(config, params, 0, path, hf_config)
