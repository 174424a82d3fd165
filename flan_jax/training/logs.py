"""The run's console lines and its ``train_metrics.jsonl`` (one fsynced JSON row per step)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax

from flan_jax.parallel import console

METRICS_FILE = "train_metrics.jsonl"
announce = console.announce  # The run's console lines (logged everywhere, printed on process 0).


def json_value(value: Any) -> Any:
  """Non-finite floats as JSON null (``NaN`` is not JSON)."""
  return value if not isinstance(value, float) or math.isfinite(value) else None


def write_metrics(path: str, rows: list[dict]) -> None:
  """Appends one JSON line per row, flushed and fsynced (a kill never tears an earlier row)."""
  with open(path, "a") as f:
    for row in rows:
      f.write(json.dumps({k: json_value(v) for k, v in row.items()}, allow_nan=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def truncate_metrics(path: str, last_step: int) -> None:
  """Drops rows logged after ``last_step`` by a run that died before its next checkpoint, and a
  torn (cut short) line, naming it in the log; the file is replaced atomically."""
  if jax.process_index() != 0 or not os.path.exists(path):
    return
  kept, torn = [], []
  with open(path) as f:
    for number, line in enumerate(f, 1):
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
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.writelines(kept)
  os.replace(tmp, path)
