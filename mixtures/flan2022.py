"""Flan 2022 mixtures (the Flan Collection's ``flan2022_submix`` and its parts).

Importing this module registers the Flan 2022 tasks (:mod:`flan_jax.tasks.flan2022`) and:

* ``flan2022_{source}_{mode}``: every task of a source in one prompt mode, each at
  ``min(cap, train size)`` from the static size table (input inversions x0.3);
* ``flan2022_{source}_submix``: the source's modes, 25% each for flan2021 and t0 (zs_opt,
  fs_opt, zs_noopt, fs_noopt), 50/50 zs_opt/fs_opt for niv2, cot and dialog;
* ``flan2022_submix``: the sources at 0.40 (flan2021), 0.32 (t0), 0.20 (niv2), 0.05 (cot) and
  0.03 (dialog), as the reference's run_example.py.

Caps: flan2021 30,000, t0 20,000, niv2 5,000, cot 100,000, dialog 200,000.
"""

from __future__ import annotations

import seqio

from flan_jax.tasks.flan2022 import registry as f22

SOURCE_WEIGHTS: dict[str, float] = {"flan2021": 0.40, "t0": 0.32, "niv2": 0.20, "cot": 0.05,
                                    "dialog": 0.03}
SUBMIX = "flan2022_submix"


def mode_mixture(source: str, mode: str) -> str:
  return f"{f22.PREFIX}{source}_{mode}"


def source_submix(source: str) -> str:
  return f"{f22.PREFIX}{source}_submix"


def mode_weights(source: str) -> dict[str, float]:
  """How a source's rate splits across its modes (equal shares)."""
  modes = f22.SOURCES[source][2]
  return {m: 1.0 / len(modes) for m in modes}


def _register() -> None:
  for source in SOURCE_WEIGHTS:
    parts = []
    for mode, weight in mode_weights(source).items():
      tasks = f22.of_source(source, [mode])
      if not tasks:
        continue
      seqio.MixtureRegistry.add(mode_mixture(source, mode), tasks)
      parts.append((mode_mixture(source, mode), weight))
    seqio.MixtureRegistry.add(source_submix(source), parts)
  seqio.MixtureRegistry.add(SUBMIX, [(source_submix(s), w) for s, w in SOURCE_WEIGHTS.items()])


if SUBMIX not in seqio.MixtureRegistry.names():
  _register()
