"""T0-SF: the P3 training datasets not already in Flan 2021, rendered at run time with every
template promptsource ships for the dataset (``promptsource``'s YAML, read with jinja2)."""

from flan_jax.data import local_sources as sources
from flan_jax.tasks.flan2022 import registry, sizes

DATASETS = tuple(sizes.T0)


def task_name(dataset: str) -> str:
  return "t0_" + dataset.replace("/", "_").lower()


for _dataset in DATASETS:
  registry.register(registry.Flan2022Task(
      task_name(_dataset), "t0", sources.t0_source(_dataset, sizes.T0[_dataset]), (),
      sizes.T0[_dataset]))
