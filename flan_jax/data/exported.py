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
"""

from __future__ import annotations

import json

import seqio
import tensorflow as tf

from flan_jax.data import preprocessors as prep
from flan_jax.data import vocab as vocab_lib
from flan_jax.storage import fs

TEXT_KEYS = ("inputs", "targets", "_task_name", "_template_type", "_task_source")
SHUFFLE_BUFFER = 10_000


def _parse(line: bytes) -> tuple:
  row = json.loads(line)
  if "targets" not in row:
    raise ValueError(f"export-data line without 'targets': {line[:200]!r}")
  row.setdefault("_task_name", row.get("task", ""))
  texts = [str(row.get(k, "")).encode() for k in TEXT_KEYS]
  return (*texts, int(row.get("_template_idx", row.get("template_idx", -1))))


@seqio.map_over_dataset
def parse_lines(line: tf.Tensor) -> dict[str, tf.Tensor]:
  """One ``export-data`` JSON line -> its text fields and ``_template_idx``."""
  # JSON has no TensorFlow parser: Python's json module, through numpy_function.
  values = tf.numpy_function(_parse, [line], [tf.string] * len(TEXT_KEYS) + [tf.int64],
                             stateful=False)
  out = {k: tf.ensure_shape(v, []) for k, v in zip(TEXT_KEYS, values, strict=False)}
  out["_template_idx"] = tf.cast(tf.ensure_shape(values[-1], []), tf.int32)
  return out


def register_exported(name: str, train_files: str | list[str], *,
                      shuffle_buffer_size: int = SHUFFLE_BUFFER,
                      num_examples: int | None = None) -> seqio.Task:
  """Registers ``name``: a seqio task whose ``train`` split reads the JSONL files
  (glob pattern or list) written by ``export-data``; ``num_examples`` their line count, if known.
  The files may be local or ``gs://`` (an unknown scheme fails here); tf.data reads them, a
  ``gs://`` one through TensorFlow's own GCS client (its credentials: docs/storage.md).
  """
  for pattern in [train_files] if isinstance(train_files, str) else train_files:
    fs.check(pattern)
  source = seqio.TextLineDataSource(
      {"train": train_files},
      num_input_examples=None if num_examples is None else {"train": num_examples})
  return seqio.TaskRegistry.add(
      name, source=source, preprocessors=[parse_lines, *prep.tokenize_chain()],
      output_features=vocab_lib.output_features(), metric_fns=[],
      shuffle_buffer_size=shuffle_buffer_size)
