"""Input data that cannot be read, named by file and line (or record offset) and what is wrong.

Two readers use it: :mod:`flan_jax.data.exported` checks every line of the ``export-data`` parts
a data shard reads before the first batch (:func:`check_jsonl_files`: one bad line fails the run
at start-up, not hours in, unless the ``skip_bad_lines`` budget allows it), and the trainer turns
tf.data's bare ``DataLossError: corrupted record at 11092`` of a damaged TFDS file into the
dataset, split and file (:func:`explain_record_error`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Sequence

from flan_jax.storage import fs

REQUIRED = ("inputs", "targets")
SHOWN = 5  # Bad lines listed in one error.


class BadDataError(ValueError):
  """Input data that cannot be read as it is; the message names the file, the line or record,
  what is wrong and what to do."""


class LineError(ValueError):
  """What is wrong with one ``export-data`` line (the message, without file and line)."""


def parse_json_line(line: bytes) -> dict:
  """One ``export-data`` line -> its JSON object; :class:`LineError` says what is wrong (not
  UTF-8, empty, cut or torn JSON, not an object, ``inputs``/``targets`` missing or not text)."""
  try:
    text = line.decode("utf-8")
  except UnicodeDecodeError as e:
    raise LineError(f"not UTF-8 (byte {line[e.start:e.start + 1]!r} at byte {e.start + 1})"
                    ) from None
  if not text.strip():
    raise LineError("empty line")
  try:
    row = json.loads(text)
  except json.JSONDecodeError as e:
    if e.msg == "Extra data":
      hint = "; two lines run together, or torn?"
    else:
      hint = "" if text.rstrip().endswith("}") else "; cut short?"
    raise LineError(f"not one JSON object ({e.msg} [column {e.colno}]{hint}) in "
                    f"{_excerpt(text, e.pos)}") from None
  if not isinstance(row, dict):
    raise LineError(f"a JSON {type(row).__name__}, not an object with "
                    f"{' and '.join(map(repr, REQUIRED))}")
  for key in REQUIRED:
    if key not in row:
      raise LineError(f"no {key!r} field (it has {sorted(row) or 'none'})")
    if not isinstance(row[key], str):
      raise LineError(f"{key!r} is a JSON {type(row[key]).__name__}, not a string")
  return row


def _excerpt(text: str, pos: int, width: int = 40) -> str:
  lo = max(0, pos - width)
  return f"{'...' if lo else ''}{text[lo:pos + width]!r}{'...' if pos + width < len(text) else ''}"


def scan_jsonl(path: str) -> Iterator[tuple[int, str]]:
  """``(line number, what is wrong)`` for each bad line of ``path`` (lines split as
  ``tf.data.TextLineDataset`` splits them: on ``\\n``, a trailing ``\\r`` dropped)."""
  with fs.open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      try:
        parse_json_line(line.rstrip(b"\n").removesuffix(b"\r"))
      except LineError as e:
        yield number, str(e)


def check_jsonl_files(files: Sequence[str], skip_bad_lines: int = 0, what: str = "") -> int:
  """Checks every line of ``files`` (:func:`parse_json_line`); the number of bad lines, each
  logged as skipped, when there are at most ``skip_bad_lines``; else :class:`BadDataError`
  naming the first few (file, line, what is wrong). ``what``: the reader, for the messages."""
  bad = [(path, number, problem) for path in files for number, problem in scan_jsonl(path)]
  if len(bad) > skip_bad_lines:
    shown = "\n".join(f"  {path} line {number}: {problem}" for path, number, problem
                      in bad[:SHOWN])
    more = f"\n  ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    budget = (f"more than skip_bad_lines={skip_bad_lines} allows; " if skip_bad_lines else "")
    raise BadDataError(
        f"{what or 'export-data files'}: {len(bad)} bad line(s) in the {len(files)} file(s) "
        f"read, found before training:\n{shown}{more}\n{budget}fix or delete those lines, "
        "re-export the parts (flan-jax export-data), or skip up to N bad lines with "
        "register_exported(..., skip_bad_lines=N)")
  for k, (path, number, problem) in enumerate(bad, 1):
    message = (f"flan_jax: skipping {path} line {number}: {problem} (bad line {k} of at most "
               f"skip_bad_lines={skip_bad_lines})")
    logging.warning(message)
    print(message, file=sys.stderr, flush=True)
  return len(bad)


# --- TFRecord files (TFDS) ----------------------------------------------------------------------

_RECORD_ERROR = re.compile(r"(?:corrupted|truncated) record at (\d+)")


def _read_record(reader, at: int) -> tuple[int | None, int | None]:
  """(the next record's offset, None) after reading the record at ``at``; (None, the offset
  TensorFlow names) when it cannot be read; (None, None) past the end."""
  import tensorflow as tf
  try:
    return reader.read(at)[1], None
  except tf.errors.DataLossError as e:
    found = _RECORD_ERROR.search(str(e))
    return None, int(found.group(1)) if found else at
  except (tf.errors.OutOfRangeError, IndexError):
    return None, None


def find_corrupted_record(files: Sequence[str], offset: int) -> str | None:
  """The file among ``files`` whose TFRecord framing fails at byte ``offset`` (what tf.data
  reported, without the file), checked with TensorFlow's own record reader: first the one
  record whose data would start there (its CRC failed), then each file's records in order up to
  ``offset`` (a damaged header or a cut file). None: no file fails there."""
  from tensorflow.python.lib.io import tf_record  # TF's CRC-checking reader at an offset.
  sizes = {}
  for path in files:
    try:
      sizes[path] = fs.getsize(path)
    except OSError:
      continue
  candidates = [p for p in files if sizes.get(p, -1) >= offset]
  if offset >= 12:
    for path in candidates:
      if _read_record(tf_record.tf_record_random_reader(path), offset - 12)[1] == offset:
        return path
  for path in candidates:
    reader, at = tf_record.tf_record_random_reader(path), 0
    while at is not None and at <= offset:
      at, failed = _read_record(reader, at)
      if failed == offset:
        return path
  return None


def explain_record_error(mixture_or_task_name: str, split: str, error: Exception) -> str | None:
  """What tf.data's ``corrupted record at N`` (``error``) means for the training data of
  ``mixture_or_task_name``'s ``split``: the TFDS dataset, split and file that hold it, and what to
  do; None when ``error`` is not such an error."""
  found = _RECORD_ERROR.search(str(error))
  if found is None:
    return None
  import seqio
  offset = int(found.group(1))
  item = seqio.get_mixture_or_task(mixture_or_task_name)
  tasks = seqio.get_subtasks(item) if isinstance(item, seqio.Mixture) else [item]
  sources = [t.source for t in tasks if isinstance(t.source, seqio.TfdsDataSource)
             and split in t.source.splits]
  searched = 0
  for source in sources:
    files = list(source.list_shards(split))
    searched += len(files)
    path = find_corrupted_record(files, offset)
    if path is not None:
      name = source.tfds_dataset.name
      mapped = source.splits.get(split) if isinstance(source.splits, dict) else None
      shown = f"split {split!r}" + (f" ({mapped!r})" if isinstance(mapped, str) else "")
      data_dir = source.tfds_dataset.data_dir or "~/tensorflow_datasets"
      return (f"TFDS dataset {name}, {shown}: file {path} has a corrupted record at byte "
              f"{offset} (tf.data: {found.group(0)}); the prepared data is damaged: prepare it "
              f"again (delete its directory under {data_dir}, then `tfds build "
              f"{name.split(':')[0]} --data_dir={data_dir}`) or restore the file from a copy")
  names = sorted({s.tfds_dataset.name for s in sources}) or ["(no TFDS source)"]
  return (f"{mixture_or_task_name!r} split {split!r}: tf.data reports a {found.group(0)} but "
          f"no file of its TFDS datasets ({', '.join(names)}; {searched} files checked) fails "
          "there; check the files of its sources (TFRecord data damaged or changed while "
          "reading)")
