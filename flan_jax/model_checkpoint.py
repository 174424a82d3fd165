"""Model directories: the config plus an orbax checkpoint of the parameters.

Layout (the t5x / orbax ``CheckpointManager`` layout, step prefix ``checkpoint``)::

    MODEL_DIR/
      model_config.json           DecoderConfig as JSON (``DecoderConfig.from_json``)
      checkpoint_<step>/state/    orbax PyTree {"params": {...}} (arrays stored float32 or bf16)
      tokenizer.json, tokenizer_config.json   optional: a Hugging Face tokenizer (import-hf)

``flan-jax import-hf`` writes ``checkpoint_0``. The trainer can restore from such a directory as
``INITIAL_CHECKPOINT_PATH``: ``restore_params(path, config)`` reads only the ``params`` subtree, so
a checkpoint that also holds an optimizer state and step restores the same way. Shapes are checked
against the config before anything is read; the first mismatch is named with both shapes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from flan_jax.models import DecoderConfig, abstract_params

CONFIG_FILE = "model_config.json"
_STEP_RE = re.compile(r"^checkpoint_(\d+)$")


def save_config(model_dir: str, config: DecoderConfig) -> None:
  os.makedirs(model_dir, exist_ok=True)
  with open(os.path.join(model_dir, CONFIG_FILE), "w") as f:
    f.write(config.to_json())


def load_config(model_dir: str) -> DecoderConfig:
  """``model_config.json``, else ``MODEL_CONFIG`` from an operative ``config.gin``."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if os.path.exists(path):
    with open(path) as f:
      return DecoderConfig.from_json(f.read())
  gin_path = os.path.join(model_dir, "config.gin")
  if os.path.exists(gin_path):
    from flan_jax.models.gin_config import config_from_gin
    return config_from_gin([gin_path])
  raise FileNotFoundError(f"{model_dir} has neither {CONFIG_FILE} nor config.gin")


def steps(model_dir: str) -> list[int]:
  if not os.path.isdir(model_dir):
    return []
  return sorted(int(m.group(1)) for name in os.listdir(model_dir) if (m := _STEP_RE.match(name)))


def checkpoint_path(model_dir: str, step: int | None = None) -> str:
  """``MODEL_DIR/checkpoint_<step>/state`` (latest step by default)."""
  if _STEP_RE.match(os.path.basename(os.path.normpath(model_dir))):
    return os.path.join(model_dir, "state")
  available = steps(model_dir)
  if not available:
    raise FileNotFoundError(f"no checkpoint_<step> directory in {model_dir}")
  step = available[-1] if step is None else step
  return os.path.join(model_dir, f"checkpoint_{step}", "state")


def split_step_dir(path: str) -> tuple[str, int | None]:
  """``MODEL_DIR/checkpoint_<step>`` -> (MODEL_DIR, step); a model dir -> (path, None)."""
  path = os.path.normpath(path)
  if m := _STEP_RE.match(os.path.basename(path)):
    return os.path.dirname(path), int(m.group(1))
  return path, None


def checkpoint_step(path: str) -> int:
  """The step of the checkpoint ``path`` names (a model dir: its latest ``checkpoint_<step>``)."""
  step_dir = os.path.basename(os.path.dirname(os.path.normpath(checkpoint_path(path))))
  return int(_STEP_RE.match(step_dir).group(1))


def save_params(model_dir: str, params: Any, config: DecoderConfig, step: int = 0) -> str:
  """Writes ``model_config.json`` and ``checkpoint_<step>/state`` = {"params": params}."""
  check_shapes(abstract_params(config), params, source="params")
  save_config(model_dir, config)
  options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True)
  with ocp.CheckpointManager(os.path.abspath(model_dir), options=options,
                             item_names=("state",)) as manager:
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params})),
                 force=True)
    manager.wait_until_finished()
  return os.path.join(model_dir, f"checkpoint_{step}")


def check_shapes(expected: Any, actual: Any, source: str = "checkpoint") -> None:
  """Raises ValueError naming the first parameter whose shape (or presence) differs."""
  want = {jax.tree_util.keystr(p): tuple(x.shape)
          for p, x in jax.tree_util.tree_flatten_with_path(expected)[0]}
  have = {jax.tree_util.keystr(p): tuple(np.shape(x))
          for p, x in jax.tree_util.tree_flatten_with_path(actual)[0]}
  for name, shape in want.items():
    if name not in have:
      raise ValueError(f"parameter {name} (shape {shape}) is missing from the {source}")
    if have[name] != shape:
      raise ValueError(f"parameter {name}: {source} shape {have[name]} does not match the "
                       f"model config's shape {shape}")
  extra = sorted(set(have) - set(want))
  if extra:
    raise ValueError(f"the {source} has parameters the model does not: {extra[:5]}")


def restore_params(model_dir: str, config: DecoderConfig | None = None, step: int | None = None,
                   shardings: Any = None, dtype: str | None = None) -> Any:
  """Parameters from ``checkpoint_<step>/state`` (sharded if ``shardings`` is given)."""
  config = config or load_config(model_dir)
  path = os.path.abspath(checkpoint_path(model_dir, step))
  checkpointer = ocp.StandardCheckpointer()
  metadata = checkpointer.metadata(path)
  tree = getattr(getattr(metadata, "item_metadata", metadata), "tree", metadata)
  if "params" not in tree:
    raise ValueError(f"{path} holds no 'params' subtree (keys: {sorted(tree)})")
  expected = abstract_params(config)
  check_shapes(expected, tree["params"])
  if shardings is None:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shardings = jax.tree.map(lambda _: device, expected)
  target = jax.tree.map(
      lambda m, s: jax.ShapeDtypeStruct(m.shape, dtype or m.dtype, sharding=s), tree["params"],
      shardings)
  restore_args = ocp.checkpoint_utils.construct_restore_args({"params": target})
  restored = ocp.PyTreeCheckpointer().restore(
      path, args=ocp.args.PyTreeRestore(item={"params": target}, restore_args=restore_args,
                                        partial_restore=True))
  return restored["params"]
