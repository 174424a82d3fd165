"""The trainer's checkpoints of a MODEL_DIR: the TrainState (step, params, optimizer state) saved
asynchronously with checksums, restore of a run, the resume config check, and the params a run
starts from (``INITIAL_CHECKPOINT_PATH``, through :func:`flan_jax.interop.loading.load_model`).

The model-directory io under it (layout, configs, verification, fallback, lock, params) is
:mod:`flan_jax.models.checkpoint`; its names are re-exported here.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from flan_jax.interop import hf as hf_interop
from flan_jax.interop import loading
from flan_jax.models import DecoderConfig, abstract_params
from flan_jax.models import checkpoint as model_checkpoint
from flan_jax.models.checkpoint import (  # noqa: F401  (re-exported: the trainer's callers use them)
  CHECKSUM_FILE,
  CONFIG_CHANGES_FILE,
  CONFIG_FILE,
  DATA,
  LOAD_FIELDS,
  LOCK_FILE,
  METADATA_FILE,
  RUNTIME_FIELDS,
  STATE,
  BadValueError,
  CheckpointError,
  CheckpointWriteError,
  ConfigMismatchError,
  ModelDirError,
  ModelDirLockedError,
  ReportedError,
  UnreadableCheckpointError,
  check_shapes,
  check_writable_dir,
  checkpoint_path,
  checkpoint_step,
  config_differences,
  describe_differences,
  error_text,
  file_checksums,
  foreign_checkpoint,
  is_complete_checkpoint,
  is_disk_error,
  load_config,
  locked,
  problem,
  read_data,
  resolve_step,
  restore_latest,
  restore_params,
  restore_tree,
  save_config,
  save_params,
  set_aside,
  set_aside_incomplete,
  split_step_dir,
  state_metadata,
  step_dir,
  steps,
  stored_config,
  warn,
  write_checksums,
)
from flan_jax.storage import fs

# --- the trainer's checkpoints ----------------------------------------------------------------


def state_tree(state: Any) -> dict[str, Any]:
  """The orbax tree of a ``partitioning.TrainState``."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


def abstract_train_state(config: DecoderConfig, tx: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of the TrainState, to restore into."""
  from flan_jax.parallel import partitioning
  shapes = jax.eval_shape(lambda p: partitioning.TrainState.create(p, tx), abstract_params(config))
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, shardings)


def restore_train_state(path: str, abstract: Any) -> Any:
  """The TrainState of the checkpoint dir ``path`` (into ``abstract``'s shardings)."""
  try:
    tree = state_metadata(path)
  except Exception as e:  # noqa: BLE001
    raise UnreadableCheckpointError(error_text(e)) from e
  if "opt_state" not in tree or "step" not in tree:
    raise CheckpointError(
        f"{path} holds parameters only (an import-hf or exported model, not a training run); "
        "pass it as INITIAL_CHECKPOINT_PATH and train into a new MODEL_DIR")
  restored = restore_tree(path, state_tree(abstract))
  return abstract.replace(step=restored["step"], params=restored["params"],
                          opt_state=restored["opt_state"])


def latest_good_step(model_dir: str) -> int | None:
  """The newest complete ``checkpoint_<step>`` on disk (with checksums when it has them)."""
  for step in reversed(steps(model_dir)):
    if problem(step_dir(model_dir, step)) is None:
      return step
  return None


def _root_cause(error: BaseException) -> str:
  """``No space left on device`` for an ENOSPC, also when tensorstore wraps it in a ValueError
  (``... [os_error_code='28']``); else the error's first 300 characters."""
  disk = is_disk_error(error)
  if disk is not None:
    return disk.strerror or str(disk)
  chain, seen = [], set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    chain.append(error)
    error = error.__cause__ or error.__context__
  for item in chain:
    if m := re.search(r"os_error_code='?(\d+)", str(item)):
      return os.strerror(int(m.group(1)))
  return error_text(chain[0])


class TrainCheckpoints:
  """The trainer's ``CheckpointManager``: arrays with a checksum per chunk
  (:func:`flan_jax.models.checkpoint.state_handler`); each save gets ``checksums.json`` (sizes,
  the small files' sha256: a listing, no large read) before orbax makes it visible (async: in the
  finalisation thread; sync: right after the save), and a failed save (ENOSPC and the like) is
  raised as :class:`CheckpointWriteError` at the next :meth:`check`."""

  def __init__(self, model_dir: str, keep: int | None, async_checkpointing: bool = True):
    self.model_dir = fs.resolve(model_dir)
    _mute_followups()
    self._async = async_checkpointing
    self._saving: int | None = None
    async_options = (ocp.AsyncOptions(post_finalization_callback=self._finalized)
                     if async_checkpointing else None)
    options = ocp.CheckpointManagerOptions(
        step_prefix="checkpoint", max_to_keep=keep, create=True, cleanup_tmp_directories=True,
        enable_async_checkpointing=async_checkpointing, async_options=async_options)
    self.manager = ocp.CheckpointManager(self.model_dir, options=options,
                                         item_handlers=model_checkpoint.item_handlers())

  def _finalized(self) -> None:
    """Orbax calls this when the step's files are written, before the tmp dir is renamed."""
    step = self._saving
    if step is None or jax.process_index() != 0:
      return
    final = step_dir(self.model_dir, step)
    prefix = fs.basename(final) + ".orbax-checkpoint-tmp"  # (None in object stores: no rename.)
    tmp = [fs.join(self.model_dir, n) for n in fs.listdir(self.model_dir)
           if n.startswith(prefix)]
    write_checksums(max(tmp, key=fs.getmtime) if tmp else final)

  def _failed(self, step: int | None, error: BaseException) -> CheckpointWriteError:
    _mute_followups()
    good = latest_good_step(self.model_dir)
    name = "a checkpoint" if step is None else f"checkpoint_{step}"
    latest = ("no checkpoint was written before it" if good is None
              else f"checkpoint_{good} is the latest good one")
    return CheckpointWriteError(f"{name} could not be written: {_root_cause(error)}; {latest} "
                                f"(in {self.model_dir})")

  def check(self) -> None:
    """Raises :class:`CheckpointWriteError` if a background save failed."""
    try:
      self.manager.check_for_errors()
    except Exception as e:  # noqa: BLE001 -- whatever orbax's thread raised.
      raise self._failed(self._saving, e) from e

  def save(self, state: Any, meta: Mapping[str, Any]) -> None:
    """Saves ``checkpoint_<step>``: the state and the JSON ``meta``."""
    step = int(meta["step"])
    self.finish()  # Orbax waits for the previous save anyway; its callback needs _saving.
    if fs.exists(step_dir(self.model_dir, step)):  # (Orbax would refuse it, unexplained.)
      good = latest_good_step(self.model_dir)
      raise CheckpointWriteError(
          f"checkpoint_{step} cannot be written: {step_dir(self.model_dir, step)} is in the way "
          "(a damaged checkpoint that could not be moved aside at the start); move or delete it "
          f"and rerun (checkpoint_{good} is the latest good one)")
    self._saving = step
    try:
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.PyTreeSave(state_tree(state)), data=ocp.args.JsonSave(dict(meta))),
          custom_metadata=model_checkpoint.WRITER_METADATA, force=True)
    except Exception as e:  # noqa: BLE001
      raise self._failed(step, e) from e
    if not self._async:
      write_checksums(step_dir(self.model_dir, step))

  def finish(self) -> None:
    """Waits for the last save; raises if it failed."""
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001
      raise self._failed(self._saving, e) from e
    self.check()

  def close(self) -> None:
    """Closes the manager, never raising a second error over the one that stopped the run."""
    try:
      self.manager.close()
    except Exception as e:  # noqa: BLE001
      logging.warning("closing the checkpoint manager: %s", error_text(e))


def check_resume_config(model_dir: str, path: str | None, config: DecoderConfig,
                        allow_change: bool = False) -> bool:
  """Compares ``config`` with the one the checkpoint dir ``path`` (else ``model_config.json``)
  was written with; a difference raises :class:`ConfigMismatchError` naming each field, unless
  ``allow_change`` (then True is returned and the change is logged)."""
  stored = stored_config(path) if path else None
  source = path
  if stored is None:
    stored, source = model_checkpoint.model_config(model_dir), fs.join(model_dir, CONFIG_FILE)
  if stored is None:
    return False
  diff = config_differences(stored, config)
  if not diff:
    return False
  fields = describe_differences(diff, "checkpoint", "MODEL_CONFIG")
  if not allow_change:
    raise ConfigMismatchError(
        f"MODEL_CONFIG differs from the config {source} was trained with: {fields}. Fix "
        "MODEL_CONFIG (gin files / --gin bindings), train into a new MODEL_DIR, or for an "
        "intended change pass --gin.ALLOW_CONFIG_CHANGE=True (recorded in "
        f"{CONFIG_CHANGES_FILE})")
  warn(f"ALLOW_CONFIG_CHANGE: resuming {source} with a changed config: {fields}")
  return True


class _OneLine(logging.Filter):
  """While training: orbax's background threads log a failed save with tracebacks (and asyncio
  "Event loop is closed" ones as they shut down); keep one line each -- the cause and what to do
  are in the :class:`CheckpointWriteError` that stops the run."""

  def filter(self, record: logging.LogRecord) -> bool:
    text = record.getMessage()
    if record.name == "asyncio" and "Event loop is closed" in f"{text}{record.exc_info}":
      return False
    if "orbax" in record.pathname and (record.exc_info or "\n" in text):
      record.msg, record.args = " ".join(text.split())[:300], None
      record.exc_info = record.exc_text = None
    return True


def _closed_loop_callback(error: BaseException | None) -> bool:
  """A callback of tensorstore's (a failed save's chunk writes finishing) that reached asyncio's
  loop after orbax closed it: reported by the C++ thread as unraisable (``sys.unraisablehook``,
  one traceback each) or through ``sys.excepthook``."""
  return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _mute_followups() -> None:
  for name in ("absl", "asyncio"):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _OneLine) for f in logger.filters):
      logger.addFilter(_OneLine())
  hook = sys.excepthook
  if not getattr(hook, "flan_jax_mutes_closed_loops", False):
    def excepthook(kind: type, error: BaseException, tb: Any) -> None:
      if not _closed_loop_callback(error):
        hook(kind, error, tb)
    excepthook.flan_jax_mutes_closed_loops = True
    sys.excepthook = excepthook
  unraisable = sys.unraisablehook
  if not getattr(unraisable, "flan_jax_mutes_closed_loops", False):
    def unraisablehook(report: Any) -> None:
      if not _closed_loop_callback(report.exc_value):
        unraisable(report)
    unraisablehook.flan_jax_mutes_closed_loops = True
    sys.unraisablehook = unraisablehook


def initial_step(path: str | None) -> int:
  """The step an initial checkpoint continues from (0 for none or a Hugging Face directory)."""
  if not path or hf_interop.is_hf_model_dir(path):
    return 0
  return checkpoint_step(path)


def restore_initial_params(path: str, config: DecoderConfig, shardings: Any) -> Any:
  """Params of ``INITIAL_CHECKPOINT_PATH`` (any directory kind the one loader reads), checked
  against ``config`` and placed with ``shardings``."""
  return loading.load_model(path, expect=config, shardings=lambda _: shardings,
                            what="INITIAL_CHECKPOINT_PATH").params
