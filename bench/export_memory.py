"""Peak memory of exporting flan2022_submix's every-10th sample (194 tasks, 3,000 lines) with at
most LIVE task pipelines at once, on the tests' offline data (as bench/mixture_throughput.py).

    .venv/bin/python bench/export_memory.py 64       # grouped: export-data's default
    .venv/bin/python bench/export_memory.py 100000   # every task live at once (the old export)

Run each in a fresh process: ``ru_maxrss`` is the process's peak.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))


def main(live: int) -> None:
  import mixture_throughput as mt
  import tensorflow_datasets as tfds

  from flan_jax import export_data
  from flan_jax.data import registry
  registry.ensure_registered()
  realistic = mt._realistic_where_needed(tfds.core.dataset_builder.FileReaderBuilder._as_dataset)
  with tempfile.TemporaryDirectory() as tmp, tfds.testing.mock_data(
      num_examples=6, num_sub_examples=4, max_value=3), tfds.testing.mock_data(
          as_dataset_fn=realistic):
    registry.get("flan2022_submix")
    mt.prepare_fixtures(tmp)
    name = mt.every_kth("flan2022_submix", 10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.time()
    rows, total = export_data.records(name, num_examples=3000, live=live)
    n = sum(1 for _ in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"live={live}: {n} rows of {total}, {time.time() - start:.0f} s, peak RSS {peak:.0f} MB "
          f"(before {before:.0f} MB)", flush=True)


if __name__ == "__main__":
  main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
