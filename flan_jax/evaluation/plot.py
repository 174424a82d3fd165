"""Plots the training curves of a run from its ``train_metrics.jsonl``.

    python -m flan_jax.evaluation.plot MODEL_DIR [--output DIR]

Writes ``loss.png``, ``learning_rate.png`` and ``throughput.png`` (tokens per second) into
``MODEL_DIR`` or ``--output``. Rows without a metric (throughput is logged once per log period)
are skipped for that plot.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence

from flan_jax.storage import fs

METRICS_FILE = "train_metrics.jsonl"  # As flan_jax.train.METRICS_FILE (not imported: no JAX/TF).
PLOTS = (("loss.png", "loss", "loss"),
         ("learning_rate.png", "learning_rate", "learning rate"),
         ("throughput.png", "tokens_per_second", "tokens / second"))


def read_metrics(path: str) -> list[dict]:
  """The JSON rows of a metrics file (blank lines skipped)."""
  return [json.loads(line) for line in fs.read_text(path).split("\n") if line.strip()]


def plot_metrics(rows: Sequence[dict], output_dir: str, title: str = "") -> list[str]:
  """Writes one PNG per entry of ``PLOTS`` into ``output_dir``; returns their paths."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fs.makedirs(output_dir)
  paths = []
  for filename, key, label in PLOTS:
    points = [(r["step"], r[key]) for r in rows if r.get(key) is not None and "step" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if points:
      steps, values = zip(*points, strict=True)
      ax.plot(steps, values, marker="." if len(points) < 50 else None)
    else:
      ax.text(0.5, 0.5, f"no '{key}' values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.set_title(f"{title} {label}".strip())
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = fs.join(output_dir, filename)
    png = io.BytesIO()
    fig.savefig(png, dpi=100, format="png")
    plt.close(fig)
    fs.write_bytes(path, png.getvalue())
    paths.append(path)
  return paths


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="flan-jax plot", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("model_dir", help=f"a training run's directory (holding {METRICS_FILE})")
  parser.add_argument("--output", default=None, help="where to write the PNGs (default: MODEL_DIR)")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  path = fs.join(args.model_dir, METRICS_FILE)
  if not fs.isfile(path):
    parser.error(f"no metrics file {path} (is {args.model_dir} a flan_jax.train MODEL_DIR?)")
  rows = read_metrics(path)
  if not rows:
    parser.error(f"{path} holds no metrics rows")
  name = fs.basename(fs.normpath(args.model_dir))
  for written in plot_metrics(rows, args.output or args.model_dir, title=name):
    print(written)
  return 0


if __name__ == "__main__":
  sys.exit(main())
