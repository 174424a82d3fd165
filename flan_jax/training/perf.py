"""Peak and measured FLOP/s: the accelerator table (``flan-jax plan --target``, model-info) and
the trainer's MFU denominator."""

from __future__ import annotations

import dataclasses
import time

import jax


def measured_matmul_flops(dtype: str = "float32", n: int = 1024, reps: int = 3) -> float:
  """Attainable FLOP/s of the first device: the best of ``reps`` jitted ``dtype`` n³ matmuls
  (CPUs have no datasheet peak; MFU on CPU is measured against this)."""
  a = jax.numpy.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    start = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n ** 3 / best


@dataclasses.dataclass(frozen=True)
class Accelerator:
  """One JAX device of an accelerator: HBM bytes, dense bf16 peak FLOP/s and the lower-case
  substrings of ``jax.Device.device_kind`` that name it."""

  name: str
  hbm_bytes: int
  peak_flops: float
  device_kinds: tuple[str, ...]
  note: str = ""


# The one table of accelerators (``flan-jax plan --target``, the trainer's MFU by device kind).
# Sources: Google Cloud TPU system-architecture pages (v3: 123 TFLOP/s and 32 GiB per 2-core chip,
# and JAX has one device per core; v4 275 / 32 GiB, v5e 197 / 16 GiB, v5p 459 / 95 GiB, v6e 918 /
# 32 GiB per chip, one device per chip), NVIDIA datasheets (dense bf16, i.e. half the "with
# sparsity" figure: A100 312, H100/H200 SXM 989.4, H100 PCIe 756; HBM 80 GB, 80 GB, 141 GB).
ACCELERATORS: dict[str, Accelerator] = {a.name: a for a in (
    Accelerator("tpu_v3", 16 * 2**30, 61.5e12, ("tpu v3",), "per core (2 per chip)"),
    Accelerator("tpu_v4", 32 * 2**30, 275e12, ("tpu v4",)),
    Accelerator("tpu_v5e", 16 * 2**30, 197e12, ("v5 lite", "v5e")),
    Accelerator("tpu_v5p", 95 * 2**30, 459e12, ("v5p", "tpu v5")),
    Accelerator("tpu_v6e", 32 * 2**30, 918e12, ("v6 lite", "v6e")),
    Accelerator("a100_80g", 80 * 10**9, 312e12, ("a100",)),
    Accelerator("h100_pcie", 80 * 10**9, 756e12, ("h100 pcie",)),
    Accelerator("h100", 80 * 10**9, 989e12, ("h100",)),
    Accelerator("h200", 141 * 10**9, 989e12, ("h200", "gh200")),
)}
# (device-kind substring, peak) pairs, first match wins (``h100 pcie`` before ``h100``, ``v5
# lite`` before ``tpu v5``).
PEAK_FLOPS_BY_DEVICE_KIND = tuple(
    (kind, a.peak_flops) for a in sorted(ACCELERATORS.values(), key=lambda a: a.name != "h100_pcie")
    for kind in a.device_kinds)


def accelerator(name: str) -> Accelerator:
  """The :data:`ACCELERATORS` entry ``name`` (e.g. ``tpu_v4``, ``h100``)."""
  if name not in ACCELERATORS:
    raise ValueError(f"unknown target {name!r}; use one of {', '.join(ACCELERATORS)}")
  return ACCELERATORS[name]


def default_peak_flops_per_device(device_kind: str | None = None) -> float | None:
  """Peak bf16 FLOP/s of ``device_kind`` (default: the first device's), None when unknown/CPU."""
  kind = (jax.devices()[0].device_kind if device_kind is None else device_kind).lower()
  for key, flops in PEAK_FLOPS_BY_DEVICE_KIND:
    if key in kind:
      return flops
  return None


def total_peak_flops(peak_flops_per_device: float | None = None) -> float:
  """Peak FLOP/s of all devices together, the MFU denominator (0.0: unknown). ``None`` looks
  the peak up by device kind; simulated CPU devices share the host's cores, so on CPU without a
  peak it is the host's measured f32 matmul FLOP/s for all of them."""
  if peak_flops_per_device is None:
    peak_flops_per_device = default_peak_flops_per_device()
  peak = (peak_flops_per_device or 0.0) * jax.device_count()
  if not peak and jax.devices()[0].platform == "cpu":
    peak = measured_matmul_flops()
  return peak
