"""Registers the FLAN and offline-suite mixtures (see the package docstring for the names)."""

import seqio

import flan_jax.tasks  # noqa: F401 - the tasks must exist before mixtures name them.
from flan_jax.data import mixing
from flan_jax.data import spec as ds

SUITES = {"flan": "flan", "offline": "demo"}  # suite -> mixture-name prefix
TEMPLATE_ABLATION = (1, 2, 4, 7)  # 10 templates is the default mixture


def _add(name: str, tasks: list) -> None:
  if tasks:
    seqio.MixtureRegistry.add(name, tasks)
    for alias, canonical in ds.SHOT_ALIASES.items():  # ..._five_shot = ..._5_shot
      if name.endswith("_" + canonical):
        seqio.MixtureRegistry.add(name[: -len(canonical)] + alias, tasks)


def _eval_tasks(specs, shot=None, *, no_options=False) -> list[tuple[str, float]]:
  return [(t, 1.0) for s in specs for t in ds.eval_tasks(s, shot, no_options=no_options)]


def _ablation_eval(specs, kind: str) -> list[tuple[str, float]]:
  return [(ds.ablation_task(s.name, kind, scoring=s.is_classification), 1.0) for s in specs]


for suite, prefix in SUITES.items():
  for cluster in mixing.clusters(suite):
    train = mixing.training_specs(suite, cluster)
    heldout = mixing.cluster_specs(suite, cluster)
    stem = f"{prefix}_heldout_{cluster}"

    _add(f"{stem}_train", mixing.weighted((ds.default_train_task(s), s) for s in train))
    for shot in ds.SHOTS:
      _add(f"{stem}_train_{shot}",
           mixing.weighted((ds.default_train_task(s, shot), s) for s in train))
    _add(f"{stem}_eval", _eval_tasks(heldout))
    # The untuned baseline (the paper's LaMDA-PT column): continuation prompts where defined.
    _add(f"{stem}_eval_continuations",
         [(t, 1.0) for s in heldout for t in ds.baseline_eval_tasks(s)])
    _add(f"{stem}_eval_no_options",
         _eval_tasks([s for s in heldout if s.is_classification], no_options=True))
    for shot in ds.SHOTS:
      _add(f"{stem}_eval_{shot}", _eval_tasks(heldout, shot))

    for n in TEMPLATE_ABLATION:
      _add(f"{stem}_{n}templates_train", mixing.weighted(
          (ds.train_task(s.name, min(n, len(s.templates))), s) for s in train))
    for kind in ("no_template", "dataset_name"):
      _add(f"{stem}_{kind}_train",
           mixing.weighted((ds.ablation_task(s.name, kind), s) for s in train))
    _add(f"{stem}_dataset_name_eval", _ablation_eval(heldout, "dataset_name"))

  _add(f"{prefix}_all_train",
       mixing.weighted((ds.default_train_task(s), s) for s in mixing.training_specs(suite, None)))


for _k in range(1, len(mixing.NUM_CLUSTERS_ORDER) + 1):
  _add(f"flan_num_clusters_{_k}_train",
       mixing.weighted((ds.default_train_task(s), s) for s in mixing.num_clusters_specs(_k)))
_add("flan_num_clusters_eval", _eval_tasks(
    [s for c in mixing.NUM_CLUSTERS_HELDOUT for s in mixing.cluster_specs("flan", c)]))
