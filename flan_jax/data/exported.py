"""Training from ``export-data`` files: a mixture's export as one seqio task, one live pipeline.

A mixture trains through one input pipeline per sub-task; ``flan2022_submix``'s ~1,940 need
~47 GB of host memory (BENCHMARKS.md). Its export (``flan-jax export-data flan2022_submix -n N
--shard i/K -o part-i.jsonl``, K processes) already holds each task's share of the rates, so
training from the parts needs a single pipeline::

    # my_tasks.py, imported with --gin.MIXTURE_OR_TASK_MODULE="'my_tasks'" (or --module_import)
    from flan_jax.data import exported
    exported.register_exported("flan2022_exported", "/data/flan2022/part-*.jsonl")

A line ``{"inputs": "Q?", "targets": "A", "task": "t", "_task_source": "T0", ...}`` becomes
``{"inputs": [ids of "Q?", EOS], "targets": [ids of "A", EOS], "inputs_pretokenized": "Q?", ...,
"_task_name": "t"}`` (``_task_name`` falls back to ``task``). Each data shard reads whole files
(seqio's FileDataSource: at least as many files as shards), and lines are shuffled in a buffer of
``shuffle_buffer_size``. A mixture's parts hold whole tasks each, so export a multiple of the
number of data shards: each shard then reads its own parts and the global batch holds them all.
Before its first example a shard checks every line of its parts (:mod:`flan_jax.data.bad_data`):
a cut, torn, non-UTF-8 or incomplete line fails the run at start-up, named by file and line, or
is skipped with a logged line within a ``skip_bad_lines`` budget.
"""

from __future__ import annotations

import functools

import seqio
import tensorflow as tf

from flan_jax.data import bad_data
from flan_jax.data import preprocessors as prep
from flan_jax.data import vocab as vocab_lib
from flan_jax.storage import fs

TEXT_KEYS = ("inputs", "targets", "_task_name", "_template_type", "_task_source")
SHUFFLE_BUFFER = 10_000


def _parse(line: bytes, skip_bad: bool) -> tuple:
  """A line's text fields, ``_template_idx`` and whether it is good (a bad one: empty fields,
  False, where skipping is allowed; checked before training, so otherwise not reached)."""
  try:
    row = bad_data.parse_json_line(line)
  except bad_data.LineError as e:
    if not skip_bad:
      raise bad_data.BadDataError(f"export-data line {line[:200]!r}: {e}") from None
    return (*[b""] * len(TEXT_KEYS), -1, False)
  row.setdefault("_task_name", row.get("task", ""))
  texts = [str(row.get(k, "")).encode() for k in TEXT_KEYS]
  return (*texts, int(row.get("_template_idx", row.get("template_idx", -1))), True)


def parse_lines(ds: tf.data.Dataset, skip_bad: bool = False) -> tf.data.Dataset:
  """``export-data`` JSON lines -> their text fields and ``_template_idx``; ``skip_bad``: bad
  lines (within the budget :class:`ExportedSource` checked) are dropped."""
  # JSON has no TensorFlow parser: Python's json module, through numpy_function.
  def parse(line: tf.Tensor) -> dict[str, tf.Tensor] | tuple[dict[str, tf.Tensor], tf.Tensor]:
    values = tf.numpy_function(functools.partial(_parse, skip_bad=skip_bad), [line],
                               [tf.string] * len(TEXT_KEYS) + [tf.int64, tf.bool],
                               stateful=False)
    out = {k: tf.ensure_shape(v, []) for k, v in zip(TEXT_KEYS, values, strict=False)}
    out["_template_idx"] = tf.cast(tf.ensure_shape(values[-2], []), tf.int32)
    return (out, tf.ensure_shape(values[-1], [])) if skip_bad else out

  ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
  if skip_bad:  # (Only then a filter and a map that drops the flag: none on the default path.)
    ds = ds.filter(lambda ex, good: good).map(lambda ex, good: ex)
  return ds


class ExportedSource(seqio.TextLineDataSource):
  """The parts as lines; before a data shard reads its parts, every line of them is checked
  (:func:`flan_jax.data.bad_data.check_jsonl_files`), once per process and file."""

  def __init__(self, train_files: str | list[str], num_examples: int | None,
               skip_bad_lines: int, name: str):
    super().__init__({"train": train_files},
                     num_input_examples=None if num_examples is None else {"train": num_examples})
    self.skip_bad_lines = skip_bad_lines
    self.task_name = name
    self._checked: set[tuple[str, ...]] = set()

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, **kwargs) -> tf.data.Dataset:
    files = list(self.list_shards(split))
    if shard_info and len(files) >= shard_info.num_shards:  # seqio's file sharding.
      files = files[shard_info.index::shard_info.num_shards]
    if tuple(files) not in self._checked:
      shard = f" (data shard {shard_info.index} of {shard_info.num_shards})" if shard_info else ""
      bad_data.check_jsonl_files(files, self.skip_bad_lines, f"task {self.task_name!r}{shard}")
      self._checked.add(tuple(files))
    return super().get_dataset(split, shuffle, seed, shard_info, **kwargs)


def register_exported(name: str, train_files: str | list[str], *,
                      shuffle_buffer_size: int = SHUFFLE_BUFFER,
                      num_examples: int | None = None, skip_bad_lines: int = 0) -> seqio.Task:
  """Registers ``name``: a seqio task whose ``train`` split reads the JSONL files
  (glob pattern or list) written by ``export-data``; ``num_examples`` their line count, if known.
  The files may be local or ``gs://`` (an unknown scheme fails here); tf.data reads them, a
  ``gs://`` one through TensorFlow's own GCS client (its credentials: docs/storage.md).

  Each data shard checks every line of its parts before its first example (UTF-8, one JSON
  object, ``inputs`` and ``targets`` strings): a bad line fails there, named by file and line,
  unless at most ``skip_bad_lines`` of them (per data shard) are found: those are skipped, each
  with a line on stderr.
  """
  if not isinstance(skip_bad_lines, int) or skip_bad_lines < 0:
    raise ValueError(f"register_exported({name!r}): skip_bad_lines must be a count >= 0, got "
                     f"{skip_bad_lines!r}")
  for pattern in [train_files] if isinstance(train_files, str) else train_files:
    fs.check(pattern)
  source = ExportedSource(train_files, num_examples, skip_bad_lines, name)
  return seqio.TaskRegistry.add(
      name, source=source,
      preprocessors=[functools.partial(parse_lines, skip_bad=skip_bad_lines > 0),
                     *prep.tokenize_chain()],
      output_features=vocab_lib.output_features(), metric_fns=[],
      shuffle_buffer_size=shuffle_buffer_size)
