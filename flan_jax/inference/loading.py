"""One loader for every kind of model directory: a flan_jax model directory (``model_config.json``
+ ``checkpoint_<step>/``), one of its ``checkpoint_<step>`` directories, an ``import-hf`` output
(a flan_jax directory that remembers its Hugging Face source) or a Hugging Face directory
(``config.json`` + safetensors, imported in memory).

``flan-jax eval``/``infer`` (sharded on a mesh), :func:`flan_jax.load` and the lm-eval backend all
call :func:`load_model`; training's ``INITIAL_CHECKPOINT_PATH`` restores params through the same
checkpoint functions (:mod:`flan_jax.training.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import jax

from flan_jax.interop import hf as hf_interop
from flan_jax.models import DecoderConfig
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.training import checkpoints


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


def load_model(path: str, *, dtype: str | None = None, step: int | None = None,
               shardings: Callable[[DecoderConfig], Any] | None = None,
               what: str = "CHECKPOINT_PATH") -> LoadedModel:
  """Loads ``path`` (any directory kind above); ``step`` picks a checkpoint (default: the newest
  complete one), ``shardings(config)`` places the params, ``what`` names the path in errors.
  Hugging Face directories default to float32."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{what} {path} is not a directory; pass a flan_jax model directory, "
                            "a checkpoint_<step> directory or a Hugging Face model directory")
  if hf_interop.is_hf_model_dir(path):
    config, params = hf_interop.load_hf(path, dtype=dtype or "float32")
    with open(os.path.join(path, "config.json")) as f:
      hf_config = json.load(f)
    if shardings is not None:
      params = jax.device_put(params, shardings(config))
    return LoadedModel(config, params, 0, path, hf_config)
  model_dir, step_in_path = model_checkpoint.split_step_dir(path)
  if step_in_path is not None:
    if step is not None and step != step_in_path:
      raise ValueError(f"step={step} contradicts the checkpoint directory {path}")
    step = step_in_path
  foreign = checkpoints.foreign_checkpoint(model_dir)
  if foreign:
    raise checkpoints.CheckpointError(f"{what}: {foreign}")
  # The shared restore path: an explicit step must pass every check; else the newest good one.
  step = checkpoints.resolve_step(model_dir, step)
  config = model_checkpoint.load_config(model_dir, step)
  if dtype:
    config = config.replace(dtype=dtype)
  params = model_checkpoint.restore_params(
      model_dir, config, step=step, shardings=None if shardings is None else shardings(config))
  return LoadedModel(config, params, step, model_dir, hf_interop.source_config(model_dir))
