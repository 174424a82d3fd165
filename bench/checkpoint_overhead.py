"""What checkpoint integrity costs: save and restore of a sharded state on 8 simulated devices.

    .venv/bin/python bench/checkpoint_overhead.py [--gb 2] [--repeats 3] [--dir DIR]

Four modes, run interleaved (each repeat runs all four, in an order that rotates, so machine
load and the memory left by the one before hit them alike):

* ``off``: the trainer's format (OCDBT + zarr3, zstd) with no checksum of any kind;
* ``on``: what flan_jax does now -- a checksum per array chunk, computed by tensorstore as each
  host writes it and checked as each host reads it: zstd's frame checksum, verified inside the
  decompression (:func:`flan_jax.models.checkpoint.state_handler`), plus ``checksums.json`` (every
  file's size, sha256 of the small metadata files) written after the save and checked before the
  restore;
* ``crc32c``: as ``on`` with tensorstore's ``crc32c`` codec after zstd instead (the first
  per-chunk scheme: a second pass over each chunk's bytes on read);
* ``old``: the previous scheme -- no chunk checksums; process 0 sha256-hashes every file of the
  step after the save, and every restore re-hashes every file first.

A save is timed from ``CheckpointManager.save`` to the step being final with its checksums (the
trainer's async saves do the same work in the background, and the next save waits for it); a
restore from the file-level check to the last array on its devices. ``--dir /dev/shm`` (tmpfs)
keeps disk latency out (the virtual disk here varies by 2-3x between identical saves); in memory the
reads and writes are cheap, so the checksums' share is *larger* than on a pod's network storage.
Prints a table, then the last line ``save_overhead=<on/off> restore_overhead=<on/off>
crc32c_save_overhead=... crc32c_restore_overhead=... old_save_overhead=<old/off>
old_restore_overhead=<old/off>`` (medians of the per-repeat ratios).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
from orbax.checkpoint._src.serialization import tensorstore_utils as ts_utils  # noqa: E402

from flan_jax.models import checkpoint  # noqa: E402

MODES = ("off", "on", "crc32c", "old")


def make_state(gb: float) -> dict[str, jax.Array]:
  """f32 arrays of 8192 x 8192 (256 MiB) sharded (data=2, model=4) over the 8 devices."""
  mesh = jax.make_mesh((2, 4), ("data", "model"))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data", "model"))
  count = max(1, round(gb * 1024 / 256))
  make = jax.jit(lambda key: jax.random.normal(key, (8192, 8192), np.float32),
                 out_shardings=sharding)
  state = {f"layer_{i}": make(jax.random.key(i)) for i in range(count)}
  jax.block_until_ready(state)
  return state


def _with_crc32c(build: Any) -> Any:
  def build_with_crc32c(*args: Any, **kwargs: Any) -> dict:
    metadata = build(*args, **kwargs)
    metadata["codecs"][0]["configuration"]["codecs"].append({"name": "crc32c"})
    return metadata
  return build_with_crc32c


@contextlib.contextmanager
def chunk_checksums(mode: str) -> Iterator[None]:
  """The flan_jax handler with its chunk checksums (on), crc32c after zstd (crc32c), or none."""
  checkpoint.state_handler()  # Installs the codec wrapper; undo it for the modes without.
  build = ts_utils._build_zarr3_metadata
  plain = getattr(build, "__wrapped__", build)
  use = {"on": build, "crc32c": _with_crc32c(plain)}.get(mode, plain)
  with mock.patch.object(ts_utils, "_build_zarr3_metadata", use):
    yield


def sha256_all(step_dir: str) -> dict[str, str]:
  """The old scheme: every file of the step read back and hashed (process 0)."""
  sums = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      if name == checkpoint.METADATA_FILE:  # Orbax rewrites it (timestamps) at the commit.
        continue
      h = hashlib.sha256()
      with open(os.path.join(root, name), "rb") as f:
        while block := f.read(1 << 22):
          h.update(block)
      sums[os.path.relpath(os.path.join(root, name), step_dir)] = h.hexdigest()
  return sums


def save(mode: str, model_dir: str, state: dict[str, jax.Array]) -> float:
  options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True)
  handlers = checkpoint.item_handlers()  # (Before the codec is switched off for off/old.)
  start = time.perf_counter()
  with chunk_checksums(mode), ocp.CheckpointManager(
      model_dir, options=options, item_handlers=handlers) as manager:
    manager.save(1, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state),
                                            data=ocp.args.JsonSave({"step": 1})))
    manager.wait_until_finished()
  step_dir = checkpoint.step_dir(model_dir, 1)
  if mode in ("on", "crc32c"):
    checkpoint.write_checksums(step_dir)
  elif mode == "old":
    sums = sha256_all(step_dir)
    with open(os.path.join(step_dir, "old_checksums.json"), "w") as f:
      json.dump(sums, f)
  return time.perf_counter() - start


def restore(mode: str, model_dir: str, state: dict[str, jax.Array]) -> float:
  step_dir = checkpoint.step_dir(model_dir, 1)
  target = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding)
            for k, v in state.items()}
  start = time.perf_counter()
  if mode in ("on", "crc32c"):
    assert checkpoint.problem(step_dir, need_data=True) is None
  elif mode == "old":
    with open(os.path.join(step_dir, "old_checksums.json")) as f:
      want = json.load(f)
    have = sha256_all(step_dir)
    assert all(have[k] == v for k, v in want.items())
  restored = checkpoint.restore_tree(step_dir, target)
  jax.block_until_ready(restored)
  seconds = time.perf_counter() - start
  for k, v in restored.items():  # Outside the timing: the restore is exact.
    assert np.array_equal(np.asarray(v.addressable_shards[0].data),
                          np.asarray(state[k].addressable_shards[0].data)), k
  return seconds


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--gb", type=float, default=2.0, help="state size (256 MiB arrays)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
  args = parser.parse_args(argv)
  state = make_state(args.gb)
  nbytes = sum(v.nbytes for v in state.values())
  work = tempfile.mkdtemp(prefix="ckpt_overhead-", dir=args.dir)
  times = {m: {"save": [], "restore": []} for m in MODES}
  print(f"state: {len(state)} arrays, {nbytes / 2**30:.2f} GiB, sharded over "
        f"{jax.device_count()} devices; writing under {work}", flush=True)
  try:
    for mode in MODES:  # Warm-up (first-call costs: tensorstore contexts, transfers), untimed.
      warm = {"layer_0": state["layer_0"]}
      save(mode, os.path.join(work, f"warm_{mode}"), warm)
      restore(mode, os.path.join(work, f"warm_{mode}"), warm)
      shutil.rmtree(os.path.join(work, f"warm_{mode}"))
    for r in range(args.repeats):
      n = r % len(MODES)
      for mode in MODES[n:] + MODES[:n]:  # Each mode first, second, ... in turn.
        model_dir = os.path.join(work, f"{mode}_{r}")
        times[mode]["save"].append(save(mode, model_dir, state))
        times[mode]["restore"].append(restore(mode, model_dir, state))
        print(f"repeat {r} {mode:>6}: save {times[mode]['save'][-1]:6.2f} s  restore "
              f"{times[mode]['restore'][-1]:6.2f} s", flush=True)
        shutil.rmtree(model_dir)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  ratio = {(m, op): statistics.median(a / b for a, b in zip(times[m][op], times["off"][op],
                                                            strict=True))
           for m in MODES[1:] for op in ("save", "restore")}
  print("\n| mode | save s (median) | restore s (median) | save / off | restore / off |")
  print("|---|---|---|---|---|")
  for m in MODES:
    s, r = (statistics.median(times[m][op]) for op in ("save", "restore"))
    rs, rr = ((1.0, 1.0) if m == "off" else (ratio[(m, "save")], ratio[(m, "restore")]))
    print(f"| {m} | {s:.2f} | {r:.2f} | {rs:.3f} | {rr:.3f} |")
  print(" ".join(f"{'' if m == 'on' else m + '_'}{op}_overhead={ratio[(m, op)]:.3f}"
                 for m in MODES[1:] for op in ("save", "restore")))
  return 0


if __name__ == "__main__":
  sys.exit(main())
