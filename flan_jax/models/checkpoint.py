"""Model directories: layout, configs, verification, fallback, lock, and params io.

Layout (the t5x / orbax ``CheckpointManager`` layout, step prefix ``checkpoint``)::

    MODEL_DIR/
      model_config.json           DecoderConfig as JSON (never replaced by a different config)
      .flan_jax.lock              while a trainer / import-hf / export-hf uses the dir: host, pid
      checkpoint_<step>/state/    orbax PyTree: {"params"} (import-hf) or {step, params, opt_state}
      checkpoint_<step>/data/     JSON: step, model_config, data position, seed (trainer)
      checkpoint_<step>/checksums.json   sizes of the step's files; sha256 of the small ones
      tokenizer.json, tokenizer_config.json   optional: a Hugging Face tokenizer (import-hf)

Integrity costs almost nothing at any scale. Every array chunk carries a checksum that tensorstore
writes and verifies (:func:`state_handler`): zstd's frame checksum on the compressed chunks (the
default), ``crc32c`` on uncompressed ones. Each host checksums the chunks it writes as it writes
them, and tensorstore verifies each chunk a host reads as it reads it (a mismatch is an error, never
a silent load); OCDBT's own B-tree nodes, manifests and shard indices carry crc32c.
``checksums.json`` adds the size of every file (a truncated or missing one) and the sha256 of the
small metadata files (JSON, the OCDBT manifests); the array data files (``d/``) are listed, never
re-read.

Verification cannot be switched off by deleting a file: every checkpoint flan_jax writes records
in orbax's step metadata, committed with the step (:data:`WRITER_METADATA`), that it carries
``checksums.json``; a missing list, an empty one or a file it does not list is damage. A
checkpoint from elsewhere (plain orbax) has no such record and loads with one line saying it is
not verified.

Every restore goes through :func:`problem` (completeness, the ``data`` item, its JSON, sizes and
the small files' digests) and the shapes in the checkpoint's own metadata. Without an explicit step
the newest good checkpoint is used: the trainer moves a bad one aside
(``checkpoint_<step>.bad-<time>``; where it cannot be moved, e.g. a read-only mount, it is skipped
for the run) with one log line naming the reason; eval, infer, export and :func:`flan_jax.load`
(all through :func:`restore_checkpoint`) skip it with the same line, also when its arrays fail on
read, and leave the directory alone. An explicitly requested step that fails a check is an error
naming the reason. When no checkpoint is good, :class:`CheckpointError` lists each one tried with
its reason. A damaged ``model_config.json`` is replaced by the newest good checkpoint's stored
config, with a line (:func:`model_config`).

``flan-jax import-hf`` writes ``checkpoint_0`` with :func:`save_params`; the trainer can start
from such a directory (``INITIAL_CHECKPOINT_PATH``; :func:`restore_params` reads only the
``params`` subtree). Shapes are checked against the config before anything is read; the first
mismatch is named with both shapes. The trainer's own checkpoints (optimizer state, async saves)
are :mod:`flan_jax.training.checkpoints`, built on this module.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from flan_jax.models.config import DecoderConfig
from flan_jax.models.decoder import abstract_params
from flan_jax.storage import fs

CONFIG_FILE = "model_config.json"
CHECKSUM_FILE = "checksums.json"
LOCK_FILE = ".flan_jax.lock"
CONFIG_CHANGES_FILE = "config_changes.jsonl"
STATE, DATA = "state", "data"
METADATA_FILE = "_CHECKPOINT_METADATA"
# Where orbax cannot rename a finished step into place (object stores), it writes the step in place
# and this marker last: a gs:// step without it is incomplete.
COMMIT_FILE = "commit_success.txt"
# What every checkpoint flan_jax writes records in orbax's step metadata (``custom_metadata`` of
# ``_CHECKPOINT_METADATA``, committed with the step): its files are listed in CHECKSUM_FILE, so a
# missing or empty list is damage, never an unverified load.
WRITER_METADATA = {"flan_jax": {"checksums": CHECKSUM_FILE}}
# An unreadable lock younger than this is being taken or is damaged, never stale (fs writes a lock
# whole, so a partly written one is not seen).
LOCK_GRACE_S = 60.0
_STEP_RE = re.compile(r"^checkpoint_(\d+)$")
_CHUNK = 1 << 22

# Fields that change neither the parameters nor the function the model computes.
RUNTIME_FIELDS = ("dropout_rate", "remat_policy", "attention", "attention_block_q",
                  "attention_block_k", "loss_chunk_size")
# Also ignored when a Hugging Face model initialises a run (its dtype/layout is a load choice).
LOAD_FIELDS = ("dtype", "param_dtype", "scan_layers")


class ReportedError(Exception):
  """An error whose message says what was wrong and what to do: command lines print it alone."""


class CheckpointError(ReportedError, ValueError):
  """No usable checkpoint where one is needed; the message lists what was tried and why."""


class ConfigMismatchError(ReportedError, ValueError):
  """A model config differs from the one a MODEL_DIR or checkpoint was written with."""


class CheckpointWriteError(ReportedError, OSError):
  """A checkpoint could not be written (disk full, permissions, ...); the run stops."""


class ModelDirLockedError(ReportedError, RuntimeError):
  """Another live process holds the MODEL_DIR lock."""


class UnreadableCheckpointError(Exception):
  """Reading a checkpoint's arrays failed (a damaged or foreign checkpoint, not a bug)."""


class ModelDirError(ReportedError, OSError):
  """MODEL_DIR is a file, cannot be created or is not writable."""


class BadValueError(ReportedError, ValueError):
  """A configuration value of the wrong type or range (named, with the fix)."""


def warn(message: str) -> None:
  """Logs ``message`` and prints it on process 0 (a line the user should see)."""
  logging.warning(message)
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


# --- paths and configs ------------------------------------------------------------------------


def step_dir(model_dir: str, step: int) -> str:
  return fs.join(model_dir, f"checkpoint_{step}")


def steps(model_dir: str) -> list[int]:
  if not fs.isdir(model_dir):
    return []
  return sorted(int(m.group(1)) for name in fs.listdir(model_dir) if (m := _STEP_RE.match(name)))


def split_step_dir(path: str) -> tuple[str, int | None]:
  """``MODEL_DIR/checkpoint_<step>`` -> (MODEL_DIR, step); a model dir -> (path, None)."""
  path = fs.normpath(path)
  if m := _STEP_RE.match(fs.basename(path)):
    return fs.dirname(path), int(m.group(1))
  return path, None


def config_differences(have: DecoderConfig, want: DecoderConfig,
                       ignore: tuple[str, ...] = RUNTIME_FIELDS) -> dict[str, tuple[Any, Any]]:
  """{field: (have, want)} for the fields that differ (``ignore``d fields aside)."""
  a, b = (dict(c.to_dict(), num_kv_heads=c.kv_heads) for c in (have, want))
  return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}


def describe_differences(diff: Mapping[str, tuple[Any, Any]], have: str, want: str) -> str:
  return ", ".join(f"{k} ({have} {a!r}, {want} {b!r})" for k, (a, b) in diff.items())


def save_config(model_dir: str, config: DecoderConfig, allow_change: bool = False) -> None:
  """Writes ``model_config.json``; one holding a different config is an error (``allow_change``:
  the old file is kept as ``model_config.<time>.json`` and the change logged in
  ``config_changes.jsonl``)."""
  fs.makedirs(model_dir)
  path = fs.join(model_dir, CONFIG_FILE)
  if fs.exists(path):
    old_text = fs.read_text(path)
    try:
      old, intact = DecoderConfig.from_json(old_text), True
    except (ValueError, TypeError):  # Damaged: the newest checkpoint's copy, then rewritten.
      old, intact = model_config(model_dir), False
    diff = config_differences(old, config)
    if diff and not allow_change:
      raise ConfigMismatchError(
          f"{model_dir} holds a model with a different config: "
          f"{describe_differences(diff, 'there', 'now')}. Use another directory, or (for an "
          "intended change) --gin.ALLOW_CONFIG_CHANGE=True")
    if diff:
      stamp = int(time.time())
      fs.write_text(fs.join(model_dir, f"model_config.{stamp}.json"), old_text)
      fs.append_text(fs.join(model_dir, CONFIG_CHANGES_FILE),
                     json.dumps({"time": stamp, "changes": {k: list(v) for k, v in diff.items()}})
                     + "\n")
      warn("model config changed (ALLOW_CONFIG_CHANGE): "
           f"{describe_differences(diff, 'was', 'now')}")
    elif old == config and intact:
      return
  fs.write_text(path, config.to_json())


def model_config(model_dir: str) -> DecoderConfig | None:
  """``model_dir``'s ``model_config.json`` (None without one). A damaged one (bad JSON, an unknown
  field, a bad value) is replaced by the config stored in the newest good checkpoint, with a line;
  with no such copy it is a :class:`CheckpointError` saying how to repair it."""
  path = fs.join(model_dir, CONFIG_FILE)
  if not fs.exists(path):
    return None
  try:
    return DecoderConfig.from_json(fs.read_text(path))
  except (ValueError, TypeError) as e:
    damage = " ".join(str(e).split())[:200]
  for step in reversed(steps(model_dir)):
    with contextlib.suppress(ValueError, OSError):
      if problem(step_dir(model_dir, step)) is None and (
          config := stored_config(step_dir(model_dir, step))) is not None:
        warn(f"{path} is damaged ({damage}); using the model config stored in checkpoint_{step}")
        return config
  raise CheckpointError(f"{path} is damaged ({damage}) and no good checkpoint in {model_dir} "
                        "stores a copy of it: restore the file from a backup")


def stored_config(path: str) -> DecoderConfig | None:
  """The model config a checkpoint (``checkpoint_<step>`` dir) was written with, if recorded."""
  meta = read_data(path)
  return None if "model_config" not in meta else DecoderConfig.from_dict(meta["model_config"])


def load_config(model_dir: str, step: int | None = None) -> DecoderConfig:
  """The config stored in ``checkpoint_<step>`` if given and recorded, else ``model_config.json``,
  else ``MODEL_CONFIG`` from an operative ``config.gin``."""
  if step is not None and fs.isdir(step_dir(model_dir, step)):
    with contextlib.suppress(ValueError, OSError):
      if (config := stored_config(step_dir(model_dir, step))) is not None:
        return config
  if (config := model_config(model_dir)) is not None:
    return config
  gin_path = fs.join(model_dir, "config.gin")
  if fs.exists(gin_path):
    from flan_jax.models.gin_config import config_from_gin
    return config_from_gin([gin_path])
  foreign = foreign_checkpoint(model_dir)
  if foreign:
    raise CheckpointError(foreign)
  raise FileNotFoundError(f"{model_dir} has neither {CONFIG_FILE} nor config.gin: not a flan_jax "
                          "model directory (train into it, or `flan-jax import-hf HF_DIR "
                          f"{model_dir}`)")


def foreign_checkpoint(path: str) -> str | None:
  """A message when ``path`` is a t5x or TensorFlow checkpoint (flan_jax reads neither)."""
  if not fs.isdir(path):
    return None
  names = set(fs.listdir(path))
  step_dirs = [n for n in names if _STEP_RE.match(n)]
  convert = ("flan_jax reads its own (orbax) checkpoints and Hugging Face directories; convert it "
             "to a Hugging Face Llama-style directory (config.json + safetensors) and pass that "
             "directory, or `flan-jax import-hf HF_DIR MODEL_DIR` it first")
  if "checkpoint" in names and any(n.startswith("target.") for n in names):
    return f"{path} is a t5x checkpoint (msgpack `checkpoint` + target.* arrays); {convert}"
  if any(n.endswith(".index") for n in names) and any(".data-" in n for n in names):
    return f"{path} is a TensorFlow checkpoint (*.index + *.data-*); {convert}"
  for name in step_dirs:
    if not fs.isdir(fs.join(path, name)):  # (A file: problem() names it.)
      continue
    inner = set(fs.listdir(fs.join(path, name)))
    if "checkpoint" in inner and STATE not in inner and METADATA_FILE not in inner:
      return f"{path} holds t5x checkpoints ({name}/checkpoint is t5x's msgpack); {convert}"
  return None


# --- verification -----------------------------------------------------------------------------


def is_complete_checkpoint(path: str) -> bool:
  """Orbax finalises a step by renaming its tmp dir; a finalised dir also holds the step
  metadata file and the state's metadata (in an object store: orbax's :data:`COMMIT_FILE`, as
  it cannot rename). Anything else (e.g. a copy cut short) is incomplete."""
  return _incomplete(path) is None


def _incomplete(path: str) -> str | None:
  if fs.is_remote(path) and not fs.isfile(fs.join(path, COMMIT_FILE)):
    return f"incomplete: no {COMMIT_FILE} (a save cut short)"
  if not fs.isfile(fs.join(path, METADATA_FILE)):
    return f"incomplete: no {METADATA_FILE} (a save cut short)"
  if not fs.isfile(fs.join(path, STATE, "_METADATA")):
    return f"incomplete: no {STATE}/_METADATA"
  return None


def _file_sizes(path: str, listing: Mapping[str, int] | None = None) -> dict[str, int]:
  # Orbax rewrites its step metadata (timestamps) when it commits the step, and writes its
  # object-store commit marker after the checksums (problem() checks both on their own).
  listing = fs.file_sizes(path) if listing is None else listing
  return {rel: size for rel, size in listing.items()
          if not rel.startswith(CHECKSUM_FILE) and rel not in (METADATA_FILE, COMMIT_FILE)}


def is_array_data_file(rel: str) -> bool:
  """An OCDBT data file (``state/.../d/<id>``): array chunks (a checksum each) and B-tree nodes
  (crc32c), verified by tensorstore as they are read; :func:`file_checksums` lists its size only."""
  return rel.startswith(STATE + "/") and rel.split("/")[-2:-1] == ["d"]


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with fs.open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      h.update(chunk)
  return h.hexdigest()


def file_checksums(path: str) -> dict[str, list]:
  """{relative file: [size, sha256 or None]} of every file of a checkpoint dir but the checksum
  file and orbax's ``_CHECKPOINT_METADATA`` (its presence is checked on its own). Array data files
  get None: their chunks carry checksums (:func:`state_handler`), so nothing large is read back."""
  return {rel: [size, None if is_array_data_file(rel) else _sha256(fs.join(path, rel))]
          for rel, size in sorted(_file_sizes(path).items())}


def write_checksums(path: str) -> None:
  """Writes ``checksums.json`` into the checkpoint dir ``path`` (atomically; process 0 only)."""
  if jax.process_index() != 0:
    return
  target = fs.join(path, CHECKSUM_FILE)
  sums = {"algorithm": "sha256", "files": file_checksums(path),
          "array_data": "a checksum per chunk (zstd frame or crc32c), verified on read"}
  fs.write_text(target, json.dumps(sums))


def read_data(path: str) -> dict[str, Any]:
  """The ``data`` item of a checkpoint dir ({} when it has none); bad JSON raises ValueError."""
  meta_path = fs.join(path, DATA, "metadata")
  if not fs.isfile(meta_path):
    return {}
  text = fs.read_text(meta_path)
  try:
    return dict(json.loads(text))
  except (json.JSONDecodeError, TypeError, ValueError) as e:
    raise ValueError(f"{DATA}/metadata is not valid JSON ({e})") from e


def _step_metadata(path: str) -> dict[str, Any]:
  """orbax's step metadata (``_CHECKPOINT_METADATA``) of a checkpoint dir; bad JSON: ValueError."""
  text = fs.read_text(fs.join(path, METADATA_FILE))
  try:
    return dict(json.loads(text))
  except (ValueError, TypeError) as e:
    raise ValueError(f"{METADATA_FILE} is not valid JSON ({e})") from e


def written_by_flan_jax(path: str) -> bool:
  """Whether flan_jax wrote the checkpoint dir ``path`` (so it must carry :data:`CHECKSUM_FILE`):
  its step metadata says so (:data:`WRITER_METADATA`), or its ``data`` item holds the model config
  (every flan_jax checkpoint's; the only mark of those written before the step metadata one)."""
  custom = _step_metadata(path).get("custom_metadata")
  return ((isinstance(custom, Mapping) and "flan_jax" in custom)
          or "model_config" in read_data(path))


_UNVERIFIED: set[str] = set()  # Checkpoints from elsewhere, each announced once per process.


def problem(path: str, need_data: bool = False) -> str | None:
  """Why the checkpoint dir ``path`` cannot be used (None: it passes every file-level check).

  A checkpoint flan_jax wrote (:func:`written_by_flan_jax`) must carry a :data:`CHECKSUM_FILE`
  that lists every file; one from elsewhere (plain orbax) has none and passes with one line saying
  it is unverified (its arrays' own checksums, if any, still hold on read).
  """
  if not fs.isdir(path):
    return ("it is a file, not a checkpoint directory" if fs.exists(path)
            else "it does not exist")
  try:
    return _problem(path, need_data)
  except OSError as e:  # Unreadable (permissions, I/O error): not usable, and said so.
    return f"it cannot be read ({e.strerror or type(e).__name__}: {e.filename or path})"


def _problem(path: str, need_data: bool) -> str | None:
  foreign = foreign_checkpoint(fs.dirname(path)) or foreign_checkpoint(path)
  if foreign and not fs.isdir(fs.join(path, STATE)):
    return foreign
  if incomplete := _incomplete(path):
    return incomplete
  if need_data and not fs.isfile(fs.join(path, DATA, "metadata")):
    return f"incomplete: no {DATA}/metadata (data position and seed)"
  sums_path = fs.join(path, CHECKSUM_FILE)
  if not fs.isfile(sums_path):
    try:
      read_data(path)  # (Its own damage named first.)
      flan_jax_wrote = written_by_flan_jax(path)
    except ValueError as e:
      return str(e)
    if flan_jax_wrote:
      return (f"{CHECKSUM_FILE} is missing (flan_jax writes it with every checkpoint; without "
              "it nothing here can be verified)")
    if path not in _UNVERIFIED:
      _UNVERIFIED.add(path)
      warn(f"checkpoint {path} was not written by flan_jax (no {CHECKSUM_FILE}): its files are "
           "not verified")
    return None
  try:
    want = json.loads(fs.read_text(sums_path))["files"]
    want = {str(rel): (int(size), digest) for rel, (size, digest) in dict(want).items()}
  except (ValueError, KeyError, TypeError) as e:
    return f"{CHECKSUM_FILE} is unreadable ({e})"
  if not want:
    return f"{CHECKSUM_FILE} lists no files (it was replaced or damaged)"
  have = fs.file_sizes(path)  # One listing (an object store: not a request per file).
  for rel, (size, digest) in sorted(want.items()):
    if rel not in have:
      return f"file {rel} is missing"
    if have[rel] != size:
      return f"file {rel} is {have[rel]} bytes, {size} were written (truncated?)"
    if digest is not None and _sha256(fs.join(path, rel)) != digest:
      return f"checksum mismatch in {rel} (its content changed after it was written)"
  unlisted = sorted(set(_file_sizes(path, have)) - set(want))
  if unlisted:
    more = f" and {len(unlisted) - 1} more" if len(unlisted) > 1 else ""
    return (f"file {unlisted[0]}{more} is not listed in {CHECKSUM_FILE} (added after the save, "
            f"or {CHECKSUM_FILE} was replaced)")
  try:
    read_data(path)
  except ValueError as e:
    return str(e)
  return None


_DIGEST_MISMATCH = re.compile(r'"([^"]+)" in OCDBT database.*Digest mismatch, stored digest is '
                              r"(\w+) but computed digest is (\w+)")
_ZSTD_DAMAGE = re.compile(r'"([^"]+)" in OCDBT database.*ZSTD_decompressStream\(\) failed: ([^;]+)')
_TENSORSTORE_STATUS = re.compile(r"\b(DATA_LOSS|NOT_FOUND|INVALID_ARGUMENT|FAILED_PRECONDITION|"
                                 r"OUT_OF_RANGE|UNAVAILABLE|PERMISSION_DENIED): ")


_REPR = re.compile(r"<[^<>]*(?:bound method|function|built-in| object at 0x|pybind11)[^<>]*>")


def _without_reprs(text: str) -> str:
  """``text`` without Python object reprs (``<bound method ...>``, ``<X object at 0x...>``): they
  name internals, not the problem."""
  while (shorter := _REPR.sub("...", text)) != text:
    text = shorter
  return text


def error_text(error: BaseException) -> str:
  """One line for an orbax/tensorstore/json exception: a chunk checksum mismatch (crc32c, or a
  zstd frame that fails to decode or to match its checksum) names the array chunk;
  else tensorstore's own status line (orbax wraps it in a message that names no cause)."""
  chain, seen = [], set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    chain.append(error)
    error = error.__cause__ or error.__context__
  texts = [_without_reprs(" ".join(str(e).split())) for e in chain]
  for text in texts:
    if m := _DIGEST_MISMATCH.search(text):
      return (f"checksum mismatch in {STATE}/ array chunk {m.group(1)} (crc32c stored "
              f"{m.group(2)}, read {m.group(3)}: its bytes changed after they were written)")
    if m := _ZSTD_DAMAGE.search(text):
      return (f"checksum mismatch in {STATE}/ array chunk {m.group(1)} (zstd frame: {m.group(2)}: "
              "its bytes changed after they were written)")
  for e, text in zip(chain, texts, strict=True):
    if m := _TENSORSTORE_STATUS.search(text):
      return f"{type(e).__name__}: {text[m.start():m.start() + 300]}"
  return f"{type(chain[0]).__name__}: {texts[0][:300]}"


def set_aside(path: str, reason: str, suffix: str = "bad") -> str | None:
  """Renames a bad checkpoint dir to ``<path>.<suffix>-<time>`` (process 0), logging why. In an
  object store (no rename) it is copied, then deleted commit marker first, so a kill midway
  leaves an incomplete original that the next start sets aside again (fs.move_dir). One that
  cannot be moved is left in place with a line (None is returned); the caller skips it."""
  target = f"{path}.{suffix}-{int(time.time())}"
  if jax.process_index() == 0:
    try:
      fs.move_dir(path, target, delete_first=(COMMIT_FILE, METADATA_FILE))
    except OSError as e:  # A read-only mount (EROFS), a mount point (EBUSY), no permission, ...
      warn(f"checkpoint {path} is unusable ({reason}) and cannot be moved aside "
           f"({e.strerror or e}); skipping it for this run: move or delete it yourself")
      return None
  warn(f"checkpoint {path} is unusable ({reason}); moved to {target}")
  return target


def set_aside_incomplete(model_dir: str) -> list[str]:
  """Moves incomplete ``checkpoint_<step>`` dirs to ``*.incomplete-<time>``."""
  moved = []
  for step in steps(model_dir):
    path = step_dir(model_dir, step)
    if not is_complete_checkpoint(path) and (
        target := set_aside(path, "incomplete", "incomplete")) is not None:
      moved.append(target)
  return moved


def restore_latest(model_dir: str, restore: Callable[[str], Any], *, need_data: bool = False,
                   move_bad: bool = False) -> tuple[int, Any] | None:
  """(step, ``restore(step_dir)``) of the newest checkpoint that passes :func:`problem` and
  restores without error, older ones tried in turn; None when there is no checkpoint at all.

  A bad one is moved aside (``move_bad``, the trainer) or skipped, with one log line each.
  """
  tried = []
  for step in reversed(steps(model_dir)):
    path = step_dir(model_dir, step)
    reason = problem(path, need_data)
    if reason is None:
      try:
        return step, restore(path)
      except UnreadableCheckpointError as e:  # Only reading errors: a bug must not move data.
        reason = str(e)
    tried.append(f"checkpoint_{step}: {reason}")
    if move_bad:
      set_aside(path, reason)
    else:
      warn(f"checkpoint {path} is unusable ({reason}); trying the next older one")
  if tried:
    moved = " (moved aside as checkpoint_<step>.bad-* where possible)" if move_bad else ""
    raise CheckpointError(f"no usable checkpoint in {model_dir}{moved}: " + "; ".join(tried))
  return None


def resolve_step(model_dir: str, step: int | None = None) -> int:
  """The step to read: ``step`` if it passes :func:`problem` (else an error naming the reason),
  or the newest good one (bad ones skipped with a log line)."""
  if step is not None:
    reason = problem(step_dir(model_dir, step))
    if reason:
      available = steps(model_dir)
      raise CheckpointError(f"{step_dir(model_dir, step)} cannot be used: {reason} "
                            f"(checkpoints in {model_dir}: {available or 'none'})")
    return step
  found = restore_latest(model_dir, lambda path: None)
  if found is None:
    foreign = foreign_checkpoint(model_dir)
    raise CheckpointError(foreign or f"no checkpoint_<step> directory in {model_dir}; train "
                          "first or pass a checkpoint_<step> path")
  return found[0]


# --- arrays -----------------------------------------------------------------------------------


def _with_chunk_checksums(build: Callable[..., dict]) -> Callable[..., dict]:
  """Orbax's zarr3 metadata builder, with a checksum of every array chunk that tensorstore writes
  and verifies: zstd's frame checksum where the chunk is compressed (orbax's default; XXH64 of the
  chunk's bytes, checked inside the decompression it does anyway), else the ``crc32c`` codec."""

  @functools.wraps(build)
  def build_with_checksums(*args: Any, **kwargs: Any) -> dict:
    metadata = build(*args, **kwargs)
    codecs = metadata["codecs"]
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
      raise RuntimeError(f"orbax {ocp.__version__} writes zarr3 codecs {codecs}; flan_jax adds "
                         "checksums to sharding_indexed chunks only: use orbax-checkpoint 0.12.x")
    inner = codecs[0]["configuration"]["codecs"]
    zstd = [c for c in inner if c.get("name") == "zstd"]
    if zstd:
      zstd[0].setdefault("configuration", {})["checksum"] = True
    elif {"name": "crc32c"} not in inner:
      inner.append({"name": "crc32c"})
    return metadata

  build_with_checksums.flan_jax_checksums = True
  return build_with_checksums


def state_handler() -> ocp.PyTreeCheckpointHandler:
  """The handler of every ``state`` item flan_jax writes: OCDBT + zarr3 with a checksum per chunk.

  Orbax has no option for chunk codecs, so its zarr3 metadata builder is wrapped (once per
  process; an orbax without that builder is an error here, not checkpoints without checksums).
  Restores need nothing: the codecs are in each array's stored metadata.
  """
  from orbax.checkpoint._src.serialization import tensorstore_utils as ts_utils
  build = getattr(ts_utils, "_build_zarr3_metadata", None)
  if build is None:
    raise RuntimeError(f"orbax-checkpoint {ocp.__version__} has no zarr3 metadata builder to add "
                       "chunk checksums to; install orbax-checkpoint 0.12.x (setup.py pins it)")
  if not getattr(build, "flan_jax_checksums", False):
    ts_utils._build_zarr3_metadata = _with_chunk_checksums(build)
  return ocp.PyTreeCheckpointHandler(use_zarr3=True)


def item_handlers() -> dict[str, Any]:
  """``item_handlers`` of a ``CheckpointManager`` over a MODEL_DIR (``state`` and ``data``)."""
  return {STATE: state_handler(), DATA: ocp.JsonCheckpointHandler()}


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


def state_metadata(path: str) -> dict[str, Any]:
  """The orbax metadata tree of ``path/state`` (shapes and dtypes, nothing read)."""
  # orbax finds a relative directory's item metadata only by its absolute path.
  metadata = ocp.StandardCheckpointer().metadata(fs.resolve(fs.join(path, STATE)))
  tree = getattr(getattr(metadata, "item_metadata", metadata), "tree", metadata)
  if not isinstance(tree, Mapping):
    raise ValueError(f"{STATE}/ holds no orbax PyTree ({type(tree).__name__})")
  return dict(tree)


def restore_tree(path: str, target: Mapping[str, Any], partial: bool = False) -> dict[str, Any]:
  """The subtrees ``target`` names (ShapeDtypeStructs with shardings) of ``path/state``; shapes
  are checked against the checkpoint's metadata first."""
  try:
    tree = state_metadata(path)
    for key, value in target.items():
      if key not in tree:
        raise ValueError(f"{STATE}/ holds no {key!r} subtree (keys: {sorted(tree)})")
      if key == "params":  # (Optimizer states are checked by orbax: their trees differ in form.)
        check_shapes(value, tree[key], source=f"checkpoint {path}")
    restore_args = ocp.checkpoint_utils.construct_restore_args(dict(target))
    return ocp.PyTreeCheckpointer().restore(
        fs.join(fs.resolve(path), STATE),
        args=ocp.args.PyTreeRestore(item=dict(target), restore_args=restore_args,
                                    partial_restore=partial))
  except Exception as e:  # noqa: BLE001 -- orbax/tensorstore/json errors of this checkpoint.
    raise UnreadableCheckpointError(error_text(e)) from e


def checkpoint_path(model_dir: str, step: int | None = None) -> str:
  """``MODEL_DIR/checkpoint_<step>/state`` (the newest good step by default)."""
  model_dir, named = split_step_dir(model_dir)
  return fs.join(step_dir(model_dir, resolve_step(model_dir, named if step is None else step)),
                 STATE)


def checkpoint_step(path: str) -> int:
  """The step of the checkpoint ``path`` names (a model dir: its newest good one)."""
  model_dir, step = split_step_dir(path)
  return resolve_step(model_dir, step)


class Restored(NamedTuple):
  """A checkpoint's parameters, its step and the model config they belong to."""

  step: int
  config: DecoderConfig
  params: Any


def restore_checkpoint(model_dir: str, config: DecoderConfig | None = None,
                       step: int | None = None, shardings: Any = None, dtype: str | None = None,
                       compute_dtype: str | None = None) -> Restored:
  """The parameters of ``checkpoint_<step>``: every reader's (eval, infer, export-hf,
  :func:`flan_jax.load`) restore path, the trainer's fallback without moving anything.

  ``model_dir`` may also be a ``checkpoint_<step>`` dir. Without a step the newest checkpoint that
  passes :func:`problem` and reads without error is used, each bad one skipped with a line; an
  asked-for step must pass every check (else :class:`CheckpointError` naming the reason).
  ``config``: the model the checkpoint must hold (compute-only fields aside; default its stored
  config, else ``model_config.json``); ``shardings`` places the params (a tree, or a function of
  the config); ``dtype`` is the arrays' dtype as read, ``compute_dtype`` replaces the config's.
  """
  model_dir, named = split_step_dir(model_dir)
  if named is not None and step is not None and named != step:
    raise ValueError(f"step={step} contradicts the checkpoint directory "
                     f"{step_dir(model_dir, named)}")
  step = named if step is None else step

  def read(path: str) -> Restored:
    stored = stored_config(path)
    want = config or stored or load_config(model_dir)
    if compute_dtype:
      want = want.replace(dtype=compute_dtype)
    if stored is not None:
      diff = config_differences(stored, want, RUNTIME_FIELDS + ("dtype", "param_dtype"))
      if diff:
        raise ConfigMismatchError(f"{path} was written with a different model config: "
                                  f"{describe_differences(diff, 'checkpoint', 'asked')}")
    expected = abstract_params(want)
    placement = shardings(want) if callable(shardings) else shardings
    if placement is None:
      device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
      placement = jax.tree.map(lambda _: device, expected)
    try:
      stored_dtypes = state_metadata(path).get("params", expected)
      check_shapes(expected, stored_dtypes, source=f"checkpoint {path}")
    except Exception as e:  # noqa: BLE001
      raise UnreadableCheckpointError(error_text(e)) from e
    target = jax.tree.map(
        lambda m, s: jax.ShapeDtypeStruct(m.shape, dtype or m.dtype, sharding=s), stored_dtypes,
        placement)
    params = restore_tree(path, {"params": target}, partial=True)["params"]
    return Restored(split_step_dir(path)[1], want, params)

  if step is not None:  # Asked for: every check must pass, errors name the step.
    path = step_dir(model_dir, resolve_step(model_dir, step))
    try:
      return read(path)
    except UnreadableCheckpointError as e:
      raise CheckpointError(f"{path} cannot be read: {e}") from e
  found = restore_latest(model_dir, read)
  if found is None:
    raise CheckpointError(foreign_checkpoint(model_dir) or f"no checkpoint_<step> directory in "
                          f"{model_dir}; train first or pass a checkpoint_<step> path")
  return found[1]


def restore_params(model_dir: str, config: DecoderConfig | None = None, step: int | None = None,
                   shardings: Any = None, dtype: str | None = None) -> Any:
  """The parameters alone of :func:`restore_checkpoint` (the newest good checkpoint by default)."""
  return restore_checkpoint(model_dir, config, step, shardings, dtype).params


def save_params(model_dir: str, params: Any, config: DecoderConfig, step: int = 0) -> str:
  """Writes ``model_config.json`` and ``checkpoint_<step>`` = state {"params"} + data
  {step, model_config} + checksums."""
  check_shapes(abstract_params(config), params, source="params")
  save_config(model_dir, config)
  options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True)
  meta = {"step": step, "model_config": config.to_dict()}
  with ocp.CheckpointManager(fs.resolve(model_dir), options=options,
                             item_handlers=item_handlers()) as manager:
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeSave({"params": params}), data=ocp.args.JsonSave(meta)),
        custom_metadata=WRITER_METADATA, force=True)
    manager.wait_until_finished()
  write_checksums(step_dir(model_dir, step))
  return step_dir(model_dir, step)


# --- the MODEL_DIR lock -----------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _read_lock(path: str) -> tuple[dict[str, Any], str | None]:
  """(the lock's holder, {} when unreadable; its text, None when it is gone)."""
  try:
    text = fs.read_text(path)
  except OSError:
    return {}, None
  try:
    return dict(json.loads(text)), text
  except (ValueError, TypeError):
    return {}, text


@contextlib.contextmanager
def locked(model_dir: str, purpose: str, lock_file: str = LOCK_FILE,
           what: str = "MODEL_DIR") -> Iterator[None]:
  """Holds ``MODEL_DIR/<lock_file>`` (host, pid, purpose) for the block; process 0 only
  (``what`` names the directory in messages: infer locks each output file of its directory).

  A lock of a dead process on this host (or an unreadable one older than :data:`LOCK_GRACE_S`) is
  stale and taken over; a live holder raises :class:`ModelDirLockedError` naming it. Taking it
  is one exclusive create of the whole file (:func:`fs.create_exclusive`): of racing takers
  exactly one wins, and a fresh lock is never stale.
  """
  if jax.process_index() != 0:
    yield
    return
  check_writable_dir(model_dir, what)
  path = fs.join(model_dir, lock_file)
  me = {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
        "since": time.strftime("%Y-%m-%d %H:%M:%S")}
  for _ in range(3):
    if not fs.create_exclusive(path, json.dumps(me)):
      holder, text = _read_lock(path)
      if text is None:
        continue  # Released meanwhile: try again.
      same_host = holder.get("host") == me["host"]
      pid = holder.get("pid")
      if holder and not (same_host and isinstance(pid, int) and not _pid_alive(pid)):
        if same_host and pid == me["pid"]:
          raise ModelDirLockedError(f"{model_dir} is already in use by this process "
                                    f"({holder.get('purpose')})") from None
        raise ModelDirLockedError(
            f"{model_dir} is in use by {holder.get('purpose')} (pid {pid} on "
            f"{holder.get('host')}, since {holder.get('since')}): wait for it to finish or use "
            f"another {what}; if that process is gone, delete {path}") from None
      if not holder:
        try:
          age = time.time() - fs.getmtime(path)
        except FileNotFoundError:
          continue  # Released meanwhile: try again.
        if age < LOCK_GRACE_S:
          raise ModelDirLockedError(
              f"{model_dir} is being locked by another process ({path} was created {age:.0f} s "
              f"ago and cannot be read yet): wait for it to finish or use another {what}; if no "
              "process uses it, delete that file") from None
      if fs.remove_if_unchanged(path, text):  # (Not a lock another taker has just taken.)
        warn(f"removing the stale lock {path} of a process that is gone "
             f"({holder or 'unreadable'})")
      continue
    break
  else:
    raise ModelDirLockedError(f"could not take the lock {path}")
  try:
    yield
  finally:
    if _read_lock(path)[0].get("pid") == me["pid"]:
      with contextlib.suppress(FileNotFoundError):
        fs.remove(path)


def check_writable_dir(model_dir: str, what: str = "MODEL_DIR") -> None:
  """Creates ``model_dir``; a file there or a directory without write access is a clear error
  (an object store: also an unknown scheme, a missing bucket or missing credentials)."""
  try:
    remote = fs.is_remote(model_dir)
    if remote:
      fs.check_bucket(model_dir)
  except fs.StorageError as e:
    raise ModelDirError(f"{what}: {e}") from None
  if fs.isfile(model_dir):
    raise ModelDirError(f"{what} {model_dir!r} is a file, not a directory; pass a directory "
                             "path (it is created if missing)")
  try:
    fs.makedirs(model_dir)
  except OSError as e:
    raise ModelDirError(f"{what} {model_dir!r} cannot be created ({e.strerror}); pick a "
                        "writable location") from None
  probe = fs.join(model_dir, f".write_test-{os.getpid()}")
  try:
    with fs.open(probe, "w"):
      pass
    fs.remove(probe)
  except OSError as e:
    fix = fs.CREDENTIALS_HELP if remote else "fix its permissions or pick another directory"
    raise ModelDirError(f"{what} {model_dir!r} is not writable "
                        f"({e.strerror or ' '.join(str(e).split())[:300]}); {fix}") from None


_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)
# TensorFlow's and tensorstore's errors are not OSErrors; their text ends "<path>; <strerror>".
_DISK_TEXT = re.compile(r"(?:(\S+); )?(" + "|".join(re.escape(os.strerror(n)) for n in _DISK_ERRNOS)
                        + ")")


def is_disk_error(error: BaseException) -> OSError | None:
  """The OSError (ENOSPC, EDQUOT, EROFS, EACCES, EIO) at the root of ``error``, if any; a
  TensorFlow or tensorstore error naming one (e.g. a summary writer's ``<file>; No space left on
  device``) counts, as an OSError naming that file."""
  seen, chain = set(), []
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    chain.append(error)
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
      return error
    error = error.__cause__ or error.__context__
  for e in chain:
    if not isinstance(e, OSError) and (m := _DISK_TEXT.search(str(e))):
      number = next(n for n in _DISK_ERRNOS if os.strerror(n) == m.group(2))
      return OSError(number, m.group(2), m.group(1))
  return None
