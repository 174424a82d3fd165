"""Best-fit packing of prefix-LM examples into fixed-length rows (fewer padding slots than seqio).

seqio's ``DecoderFeatureConverter(pack=True)`` packs greedily and against the inputs and targets
lengths separately, so a row closes as soon as either budget is spent (29 % padding at the demo's
128 / 32, 4.5 % at 1024 / 256 on the offline suite; ``bench/packing.py``). :func:`best_fit_pack`
takes the converter's *unpacked* rows (``pack=False``: one example per row, padded) and places
each example in the open row with the least room that still fits it (best fit over a window of
``window`` open rows); when no open row fits and the window is full, the fullest open row is
emitted. A packed row's segment is exactly the example's unpacked features; segment ids count
from 1 and positions restart at 0 per segment, as in seqio's packed output.

Deterministic and resumable: the output is a pure function of the input order, so a resumed run
rebuilds the same input stream and drops the rows already consumed (``skip_rows``), as
:class:`flan_jax.training.batches.TrainIterator` does with batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

# Features of DecoderFeatureConverter rows that are concatenated per segment.
PACKED_FEATURES = ("decoder_target_tokens", "decoder_input_tokens", "decoder_loss_weights",
           "decoder_causal_attention")


def example_length(row: Mapping[str, np.ndarray]) -> int:
  """Tokens of an unpacked row: up to its last non-padding target slot."""
  nonzero = np.flatnonzero(np.asarray(row["decoder_target_tokens"]))
  return int(nonzero[-1]) + 1 if nonzero.size else 0


def _emit(parts: list[dict[str, np.ndarray]], length: int) -> dict[str, np.ndarray]:
  keys = [k for k in PACKED_FEATURES if k in parts[0]]
  out = {}
  for k in keys:
    row = np.zeros(length, parts[0][k].dtype)
    row[:sum(len(p[k]) for p in parts)] = np.concatenate([p[k] for p in parts])
    out[k] = row
  seg = np.zeros(length, np.int32)
  pos = np.zeros(length, np.int32)
  start = 0
  for i, p in enumerate(parts):
    n = len(p[keys[0]])
    seg[start:start + n] = i + 1
    pos[start:start + n] = np.arange(n)
    start += n
  out["decoder_segment_ids"], out["decoder_positions"] = seg, pos
  return out


def best_fit_pack(rows: Iterable[Mapping[str, np.ndarray]], length: int, window: int = 32,
                  skip_rows: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Packed rows of ``length`` slots from unpacked converter rows (see the module docstring).

  Args:
    rows: unpacked ``DecoderFeatureConverter`` rows (numpy), in stream order.
    length: packed row length (inputs + targets feature lengths).
    window: how many rows may be open at once (1 = first-fit greedy).
    skip_rows: rows to drop from the start (resume).
  """
  if window < 1 or length < 1:
    raise ValueError(f"window and length must be >= 1, got {window} and {length}")
  open_rows: list[tuple[int, list[dict[str, np.ndarray]]]] = []  # (used, parts)
  emitted = 0

  def emit(parts):
    nonlocal emitted
    emitted += 1
    return None if emitted <= skip_rows else _emit(parts, length)

  for row in rows:
    n = example_length(row)
    if n == 0:
      continue
    if n > length:
      raise ValueError(f"an example of {n} tokens does not fit packed rows of {length}")
    part = {k: np.asarray(row[k])[:n] for k in PACKED_FEATURES if k in row}
    fits = [i for i, (used, _) in enumerate(open_rows) if used + n <= length]
    if fits:
      i = min(fits, key=lambda j: (length - open_rows[j][0] - n, j))
      used, parts = open_rows[i]
      open_rows[i] = (used + n, parts + [part])
      continue
    if len(open_rows) >= window:
      i = max(range(len(open_rows)), key=lambda j: (open_rows[j][0], -j))
      out = emit(open_rows.pop(i)[1])
      if out is not None:
        yield out
    open_rows.append((n, [part]))
  for _, parts in open_rows:
    out = emit(parts)
    if out is not None:
      yield out


def non_padding_fraction(rows: Iterable[Mapping[str, np.ndarray]]) -> float:
  """Share of slots with a segment id > 0."""
  filled = total = 0
  for row in rows:
    seg = np.asarray(row["decoder_segment_ids"])
    filled += int((seg > 0).sum())
    total += seg.size
  return filled / max(total, 1)
