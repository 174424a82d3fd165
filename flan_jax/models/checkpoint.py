"""Model directories: the config plus an orbax checkpoint of the parameters.

The implementation lives in :mod:`flan_jax.training.checkpoints` (one restore path for train, eval,
infer, export and :func:`flan_jax.load`); this module keeps the names other modules import.
``flan-jax import-hf`` writes ``checkpoint_0``; the trainer can restore such a directory as
``INITIAL_CHECKPOINT_PATH`` (``restore_params`` reads only the ``params`` subtree). Shapes are
checked against the config before anything is read; the first mismatch is named with both shapes.
"""

from __future__ import annotations

from flan_jax.training.checkpoints import (  # noqa: F401  (re-exported)
  CONFIG_FILE,
  check_shapes,
  checkpoint_path,
  checkpoint_step,
  load_config,
  restore_params,
  save_config,
  save_params,
  split_step_dir,
  steps,
)
