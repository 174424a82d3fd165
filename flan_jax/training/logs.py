"""The run's console lines and its ``train_metrics.jsonl`` (one fsynced JSON row per step)."""

from __future__ import annotations

import io
import json
import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import jax
from clu import metric_writers

from flan_jax.parallel import console
from flan_jax.storage import fs

METRICS_FILE = "train_metrics.jsonl"
announce = console.announce  # The run's console lines (logged everywhere, printed on process 0).


def json_value(value: Any) -> Any:
  """Non-finite floats as JSON null (``NaN`` is not JSON)."""
  return value if not isinstance(value, float) or math.isfinite(value) else None


def write_metrics(path: str, rows: list[dict]) -> None:
  """Appends one JSON line per row, flushed and fsynced (a kill never tears an earlier row; an
  object store's file is rewritten whole, :func:`flan_jax.storage.fs.append_text`)."""
  fs.append_text(path, "".join(
      json.dumps({k: json_value(v) for k, v in row.items()}, allow_nan=False) + "\n"
      for row in rows))


def truncate_metrics(path: str, last_step: int) -> None:
  """Drops rows logged after ``last_step`` by a run that died before its next checkpoint, and a
  torn (cut short) line, naming it in the log; the file is replaced atomically."""
  if jax.process_index() != 0 or not fs.exists(path):
    return
  kept, torn = [], []
  for number, line in enumerate(fs.read_text(path).split("\n"), 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      torn.append(number)
      continue
    if row.get("step", 0) <= last_step:
      kept.append(json.dumps({k: json_value(v) for k, v in row.items()}) + "\n")
  if torn:
    announce(f"repaired {path}: dropped {len(torn)} torn line(s) (line {torn[0]}"
             f"{'' if len(torn) == 1 else ', ...'}) left by a run that was killed")
  fs.write_text(path, "".join(kept))


def summary_writer(log_dir: str, just_logging: bool) -> metric_writers.MetricWriter:
  """clu's default writer (log lines + TensorBoard events in ``log_dir``); for an object-store
  ``log_dir`` its TensorBoard part is :class:`ObjectEventsWriter` (TensorFlow's summary writer
  reaches ``gs://`` only through its own GCS client, outside flan_jax's path layer)."""
  if just_logging or not fs.is_remote(log_dir):
    return metric_writers.create_default_writer(log_dir, just_logging=just_logging)
  return metric_writers.AsyncMultiWriter([metric_writers.LoggingWriter(),
                                          ObjectEventsWriter(log_dir)])


class ObjectEventsWriter(metric_writers.MetricWriter):
  """TensorBoard scalars in an object store: objects cannot be appended to, so the run's event
  file is held in memory and uploaded whole at each :meth:`flush` (one atomic upload; a kill
  loses the rows since the last flush, as :func:`write_metrics` does)."""

  def __init__(self, log_dir: str):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    self.path = fs.join(log_dir, f"events.out.tfevents.{time.time():.0f}."
                                 f"{socket.gethostname()}.{os.getpid()}.flan_jax")
    self._buffer = io.BytesIO()
    self._records = RecordWriter(self._buffer)
    self._add(self._event(wall_time=time.time(), file_version="brain.Event:2"))

  def _add(self, event: Any) -> None:
    self._records.write(event.SerializeToString())
    self._dirty = True

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    values = [self._summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._add(self._event(wall_time=time.time(), step=int(step),
                          summary=self._summary(value=values)))

  def flush(self) -> None:
    if self._dirty:
      fs.write_bytes(self.path, self._buffer.getvalue())
      self._dirty = False

  def close(self) -> None:
    self.flush()

  def _only_scalars(self, *args: Any, **kwargs: Any) -> None:
    raise NotImplementedError(f"{type(self).__name__} writes scalars only (flan_jax's training "
                              "logs); write other summaries to a local MODEL_DIR")

  write_summaries = write_images = write_videos = write_audios = _only_scalars
  write_texts = write_histograms = write_hparams = _only_scalars
