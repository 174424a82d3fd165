"""Gin plumbing shared by the entry points (train, eval, infer): parsing, required macros, the
t5x configurable names (:data:`T5X_NAMES`) and the task modules to import."""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import gin

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # flan_jax/
REPO_ROOT = os.path.dirname(_PACKAGE_DIR)
# The directory holding ``gin/``: the checkout (and editable installs), or the installed package
# (a wheel carries gin/ as flan_jax/gin/), so ``--gin_file=gin/runs/demo.gin`` works anywhere.
GIN_ROOT = _PACKAGE_DIR if os.path.isdir(os.path.join(_PACKAGE_DIR, "gin")) else REPO_ROOT


class T5xName(NamedTuple):
  """What a t5x configurable (or macro) is in flan_jax: ``alias`` (a macro or binding the
  setting is rewritten to; None when there is none) and ``hint`` (what to use instead)."""

  alias: str | tuple[str, ...] | None
  hint: str = ""


# t5x gin names -> flan_jax. Aliases are rewritten in --gin bindings (a tuple: the first macro
# that the run's gin files know); the others fail with the hint. Scopes (train/..., infer_eval/...)
# are ignored.
T5X_NAMES: dict[str, T5xName] = {
    "utils.SaveCheckpointConfig.period": T5xName("CHECKPOINT_PERIOD"),
    "utils.SaveCheckpointConfig.keep": T5xName("KEEP_CHECKPOINTS"),
    "utils.SaveCheckpointConfig.dtype": T5xName(
        None, "checkpoints hold the params in MODEL_CONFIG's param_dtype "
        "(--gin.models.DecoderConfig.param_dtype=\"'float32'\")"),
    "utils.SaveCheckpointConfig.save_dataset": T5xName(
        None, "not needed: resume is exact without saving the dataset (flan_jax.training.batches)"),
    "utils.RestoreCheckpointConfig.path": T5xName(("INITIAL_CHECKPOINT_PATH", "CHECKPOINT_PATH")),
    "utils.RestoreCheckpointConfig.mode": T5xName(
        "CHECKPOINT_MODE", "eval's CHECKPOINT_MODE ('latest', 'specific' or 'all')"),
    "utils.RestoreCheckpointConfig.dtype": T5xName(
        None, "eval: --gin.eval_script.evaluate.dtype=\"'bfloat16'\"; train: "
        "models.DecoderConfig.param_dtype"),
    "utils.DatasetConfig.mixture_or_task_name": T5xName("MIXTURE_OR_TASK_NAME"),
    "utils.DatasetConfig.task_feature_lengths": T5xName("TASK_FEATURE_LENGTHS"),
    "utils.DatasetConfig.batch_size": T5xName("BATCH_SIZE"),
    "utils.DatasetConfig.use_cached": T5xName("USE_CACHED_TASKS"),
    "utils.DatasetConfig.seed": T5xName("RANDOM_SEED"),
    "utils.DatasetConfig.module": T5xName("MIXTURE_OR_TASK_MODULE"),
    "utils.DatasetConfig.split": T5xName(
        ("SPLIT", "EVAL_SPLIT"), "eval/infer: SPLIT; in-training eval: EVAL_SPLIT; training "
        "reads 'train'"),
    "utils.DatasetConfig.pack": T5xName(
        None, "training packs (TASK_FEATURE_LENGTHS), evaluation and inference never do"),
    "utils.DatasetConfig.shuffle": T5xName(
        None, "training shuffles (seeded by RANDOM_SEED), evaluation and inference never do"),
    "partitioning.PjitPartitioner.num_partitions": T5xName(
        None, "the mesh: --gin.MESH=\"'data=-1,model=N'\" (training.PartitioningConfig.mesh; "
        "eval: eval_script.evaluate.mesh)"),
    "partitioning.PjitPartitioner.model_parallel_submesh": T5xName(
        None, "the mesh: --gin.MESH=\"'data=-1,model=N'\" (training.PartitioningConfig.mesh)"),
    "partitioning.PjitPartitioner.ici_mesh_shape": T5xName(
        None, "the mesh inside one slice: --gin.MESH=\"'data=4,model=16'\" "
        "(training.PartitioningConfig.mesh; axes by name, not a (replica, data, model) tuple)"),
    "partitioning.PjitPartitioner.dcn_mesh_shape": T5xName(
        None, "the slices per mesh axis: --gin.DCN_MESH=\"'data=2'\" "
        "(training.PartitioningConfig.dcn_mesh; MESH is then one slice's mesh)"),
    "partitioning.PjitPartitioner.logical_axis_rules": T5xName(
        None, "--gin.PARTITIONING_RULES=\"'2d'\" (training.PartitioningConfig.rules: 1d, "
        "2d_params, 2d, fsdp)"),
    "trainer.Trainer.num_microbatches": T5xName("NUM_MICROBATCHES"),
    "utils.create_learning_rate_scheduler.base_learning_rate": T5xName("LEARNING_RATE"),
    "utils.create_learning_rate_scheduler.warmup_steps": T5xName(
        "training.OptimizerConfig.warmup_steps"),
    "utils.create_learning_rate_scheduler.factors": T5xName(
        None, "--gin.training.OptimizerConfig.schedule=\"'constant'\" (constant, "
        "linear_warmup, rsqrt, cosine; see flan_jax.training.optim)"),
    "train.eval_period": T5xName("EVAL_PERIOD"),
    "train.total_steps": T5xName("TRAIN_STEPS"),
    "train.random_seed": T5xName("RANDOM_SEED"),
    "train.use_hardware_rng": T5xName(None, "RANDOM_SEED (flan_jax always uses JAX's PRNG)"),
    "train.stats_period": T5xName("train_script.train.log_period"),
    "adafactor.Adafactor.decay_rate": T5xName(
        None, "flan_jax's Adafactor uses t5x's defaults; pick the optimizer with "
        "training.OptimizerConfig.name"),
    "models.DecoderOnlyModel.inputs_bidirectional_attention": T5xName(
        None, "always on: prefix-LM features attend bidirectionally over the inputs"),
    "network.TransformerConfig.emb_dim": T5xName("models.DecoderConfig.d_model"),
    "network.TransformerConfig.num_heads": T5xName("models.DecoderConfig.num_heads"),
    "network.TransformerConfig.num_layers": T5xName("models.DecoderConfig.num_layers"),
    "network.TransformerConfig.head_dim": T5xName("models.DecoderConfig.head_dim"),
    "network.TransformerConfig.mlp_dim": T5xName("models.DecoderConfig.d_ff"),
    "network.TransformerConfig.vocab_size": T5xName("models.DecoderConfig.vocab_size"),
    "network.TransformerConfig.dropout_rate": T5xName("DROPOUT_RATE"),
    "infer.mode": T5xName(None, "flan-jax infer writes predictions; add scores with "
                          "--gin.INFER_SCORES=True"),
    "infer.checkpoint_period": T5xName("infer_script.infer.chunk_size"),
    # t5x macros that flan_jax spells differently.
    "MODEL": T5xName(
        None, "MODEL_CONFIG: include a model gin, e.g. --gin_file=gin/models/tiny.gin"),
    "EVALUATOR_NUM_EXAMPLES": T5xName("training.EvalConfig.num_examples"),
    "EVAL_STEPS": T5xName(None, "in-training evaluation runs the whole EVAL_SPLIT "
                          "(cap it with training.EvalConfig.num_examples)"),
    "USE_HARDWARE_RNG": T5xName(None, "RANDOM_SEED (flan_jax always uses JAX's PRNG)"),
    "EVALUATOR_USE_MEMORY_CACHE": T5xName(None, "always on (seqio's Evaluator caches in memory)"),
}

# ``train_script.train.<argument>`` before train() took the typed configs of
# flan_jax.training.config (kept for one release): the dataclass field gin binds now. Command-line
# bindings are rewritten (with a warning) and Python keyword arguments folded in
# (flan_jax.training.config.fold_flat_arguments); a gin file naming one fails with the new name.
MOVED_TRAIN_ARGUMENTS: dict[str, str] = {
    "optimizer": "training.OptimizerConfig.name",
    **{name: f"training.OptimizerConfig.{name}" for name in (
        "learning_rate", "schedule", "warmup_steps", "weight_decay", "grad_clip_norm",
        "skip_nonfinite_updates", "num_microbatches", "loss_normalizing_factor",
        "label_smoothing", "z_loss")},
    "checkpoint_period": "training.CheckpointConfig.period",
    "keep_checkpoints": "training.CheckpointConfig.keep",
    "async_checkpointing": "training.CheckpointConfig.async_checkpointing",
    "allow_config_change": "training.CheckpointConfig.allow_config_change",
    **{f"eval_{name}": f"training.EvalConfig.{name}" for name in (
        "period", "mixture_or_task_name", "split", "batch_size", "num_examples")},
    "mesh": "training.PartitioningConfig.mesh",
    "partitioning_rules": "training.PartitioningConfig.rules",
}
_TRAIN = "train_script.train."

_BINDING = re.compile(r"^\s*(?:[A-Za-z_][\w.]*/)*([A-Za-z_][\w.]*)\s*=(.*)$", re.S)


def _known(target: str, known: set[str]) -> bool:
  return "." in target or target in known


def rewrite_t5x_bindings(bindings: Sequence[str], known: set[str]) -> list[str]:
  """Rewrites t5x names in ``bindings`` (``NAME = VALUE``) to their flan_jax aliases; raises
  ValueError naming what to use for t5x names that flan_jax has no alias for."""
  out = []
  for binding in bindings:
    match = _BINDING.match(binding)
    moved = moved_train_argument(match.group(1)) if match else None
    if moved:
      logging.warning("%s is now %s (flan_jax.training.config); rewriting the binding",
                      match.group(1), moved)
      out.append(f"{moved} ={match.group(2)}")
      continue
    entry = T5X_NAMES.get(match.group(1)) if match else None
    if entry is None or (match.group(1) in known and entry.alias is None):
      out.append(binding)
      continue
    name = match.group(1)
    targets = (entry.alias,) if isinstance(entry.alias, str) else entry.alias or ()
    target = next((t for t in targets if _known(t, known)), None)
    if target is None:
      hint = entry.hint or f"use {' or '.join(targets)}"
      raise ValueError(f"unknown gin name {name!r} (a t5x setting): in flan_jax, {hint}")
    logging.info("t5x binding %s -> %s", name, target)
    out.append(f"{target} ={match.group(2)}")
  return out


def moved_train_argument(name: str) -> str | None:
  """The binding that ``train_script.train.<argument>`` moved to (None: not a moved one)."""
  prefix, _, argument = name.rpartition(".")
  return MOVED_TRAIN_ARGUMENTS.get(argument) if f"{prefix}." == _TRAIN else None


_NO_PARAMETER = re.compile(r"'(?:[\w.]*/)*([\w.]+)' doesn't have a parameter named '(\w+)'")


def _t5x_hint(name: str, entry: T5xName) -> str:
  targets = (entry.alias,) if isinstance(entry.alias, str) else entry.alias or ()
  use = entry.hint or f"use {' or '.join(targets)}"
  return f"{name} is a t5x setting; in flan_jax, {use}"


def _parameters(configurable: str) -> list[str]:
  """The parameters gin knows for ``configurable`` ([] when it cannot tell)."""
  try:
    fn = gin.get_configurable(configurable)
    # A class gin wraps: its __init__'s parameters (the class's own signature is *args, **kwargs).
    params = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn).parameters
  except (ValueError, TypeError):
    return []
  return [p for p in params if p != "self"]


def _parameter_hint(configurable: str, parameter: str) -> str:
  """The hint for ``configurable`` having no ``parameter``: a moved ``train_script.train``
  argument, a t5x name, else the closest parameter names (a typo)."""
  name = f"{configurable}.{parameter}"
  if configurable == "train":
    configurable = "train_script.train"
  moved = moved_train_argument(f"{configurable}.{parameter}")
  if moved:
    return (f"train_script.train.{parameter} is now {moved} (the typed configs of "
            "flan_jax.training.config, see gin/runs/finetune.gin)")
  if name in T5X_NAMES:
    return _t5x_hint(name, T5X_NAMES[name])
  close = difflib.get_close_matches(parameter, _parameters(configurable), n=3)
  if close:
    return f"did you mean {' or '.join(f'{configurable}.{c}' for c in close)}?"
  if f"{configurable}." == _TRAIN:
    close = difflib.get_close_matches(parameter, MOVED_TRAIN_ARGUMENTS, n=1)
    if close:
      return f"did you mean {MOVED_TRAIN_ARGUMENTS[close[0]]}?"
  return ""


def explain_t5x_name(text: str) -> str:
  """The hint for a gin error message: the flan_jax spelling of a t5x configurable or moved
  ``train_script.train`` argument it names, or the closest name to a typo ('' for none)."""
  missing = _NO_PARAMETER.search(text)
  if missing:
    return _parameter_hint(*missing.groups())
  for name, entry in T5X_NAMES.items():
    configurable = name.rsplit(".", 1)[0]
    if f"'{name}'" in text or f"'{configurable}'" in text or f"{configurable}." in text:
      return _t5x_hint(name, entry)
  return ""


def macro_value(name: str, default: Any = None) -> Any:
  """The value of gin macro ``name`` (``default`` when it is unset)."""
  try:
    return gin.query_parameter(f"%{name}")
  except ValueError:
    return default


def task_modules() -> list[str]:
  """The modules named by ``MIXTURE_OR_TASK_MODULE`` (a string or a list; t5x's macro)."""
  value = macro_value("MIXTURE_OR_TASK_MODULE")
  if not value:
    return []
  return [value] if isinstance(value, str) else list(value)


_INCLUDE = re.compile(r"""^\s*include\s+['"]([^'"]+)['"]""", re.M)
_MACRO_USE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")
_MACRO_DEF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=", re.M)  # No dot: a macro, any case.


def _resolve(path: str, search_paths: Sequence[str]) -> str | None:
  for root in ["", *search_paths]:
    candidate = os.path.join(root, path)
    if os.path.isfile(candidate):
      return candidate
  return None


def known_macros(gin_files: Sequence[str], search_paths: Sequence[str]) -> set[str]:
  """Macros that the files (and the files they include) define or use."""
  known: set[str] = set()
  pending, seen = list(gin_files), set()
  while pending:
    path = _resolve(pending.pop(), search_paths)
    if path is None or path in seen:
      continue
    seen.add(path)
    with open(path) as f:
      text = f.read()
    known |= set(_MACRO_USE.findall(text)) | set(_MACRO_DEF.findall(text))
    pending.extend(_INCLUDE.findall(text))
  return known


def check_macro_bindings(gin_files: Sequence[str], gin_bindings: Sequence[str],
                         search_paths: Sequence[str]) -> None:
  """A ``--gin.NAME=...`` macro that no file defines or uses would be silently ignored by gin
  (a typo such as ``TRAIN_STEP``): raise naming it and the close matches."""
  known = known_macros(gin_files, search_paths)
  for binding in gin_bindings:
    for name in _MACRO_DEF.findall(binding.strip()):
      if name not in known and known:
        by_case = {k.lower(): k for k in sorted(known)}  # learning_rat -> LEARNING_RATE
        close = [by_case[c] for c in difflib.get_close_matches(name.lower(), by_case, n=3)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        if name in T5X_NAMES:
          hint = "; " + explain_t5x_name(f"'{name}'")
        raise ValueError(f"unknown gin macro {name!r}: none of {list(gin_files)} defines or uses "
                         f"it{hint}")


class _NoMissedSearchPaths(logging.Filter):
  """Drops gin's "Path not found" errors: it logs one per search path a file is not in."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Path not found")


_QUIET_SEARCH = _NoMissedSearchPaths()


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_search_paths: Sequence[str] = (".",)) -> None:
  """Parses files (later ones win) then bindings, searching ``gin_search_paths`` + repo root.

  Unknown configurables/parameters fail in gin; unknown macros fail here (see
  :func:`check_macro_bindings`).
  """
  logging.getLogger().addFilter(_QUIET_SEARCH)  # gin logs to the root logger; idempotent.
  search = [os.path.abspath(p) for p in [*gin_search_paths, GIN_ROOT]]
  for path in search:
    gin.add_config_file_search_path(path)
  gin_bindings = rewrite_t5x_bindings(gin_bindings, known_macros(gin_files, search))
  check_macro_bindings(gin_files, gin_bindings, search)
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings), finalize_config=False)


def macro_is_set(name: str) -> bool:
  try:
    value = gin.query_parameter(f"%{name}")
  except ValueError:
    return False
  return repr(value) != "%gin.REQUIRED"


def check_required_macros(names: Sequence[str]) -> None:
  """Raises ValueError naming every required macro that is unset or ``%gin.REQUIRED``.

  ``TRAIN_STEPS`` may stay unset (it becomes None) when ``TRAIN_STEPS_RELATIVE`` is set.
  """
  relative = macro_is_set("TRAIN_STEPS_RELATIVE") and gin.query_parameter(
      "%TRAIN_STEPS_RELATIVE") is not None
  if relative and "TRAIN_STEPS" in names and not macro_is_set("TRAIN_STEPS"):
    gin.parse_config("TRAIN_STEPS = None")
  missing = [name for name in names if not macro_is_set(name)]
  if missing:
    hints = " ".join(f"--gin.{m}=..." for m in missing)
    raise ValueError(f"required gin macro(s) not set: {', '.join(missing)} (e.g. {hints})")
