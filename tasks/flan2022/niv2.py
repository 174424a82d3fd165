"""Super-NaturalInstructions: the English training tasks of the release's default split, each
from its task JSON (definition, first positive example, instances), with our own templates.
Few-shot exemplars are other instances of the same task file."""

import os

from flan_jax.data import local_sources as sources
from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data.templates import T
from flan_jax.tasks.flan2022 import registry, sizes

FIELDS = ("definition", "input", "output", "pos_input", "pos_output")
TEMPLATES = (
    T("{definition}\n\n{input}", "{output}"),
    T("Task: {definition}\n\nInput: {input}\nOutput:", "{output}"),
    T("{definition}\n\nFor example, given\n{pos_input}\nthe answer is\n{pos_output}\n\nNow solve "
      "this one:\n{input}", "{output}"),
    T("Follow these instructions.\n{definition}\n\n{input}\n\nResponse:", "{output}"),
)
TASK_LIST = os.path.join(os.path.dirname(__file__), "niv2_train_tasks.txt")


def train_tasks() -> list[str]:
  """The default split's training tasks (English), as shipped with the release."""
  with open(TASK_LIST, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


for _task in train_tasks():
  registry.register(registry.Flan2022Task(
      f"niv2_{_task.replace('-', '_')}", "niv2", sources.niv2_source(_task, sizes.NIV2.get(_task)),
      (prep.map_fields(dict, FIELDS), pm.candidates_from_patterns(TEMPLATES, FIELDS)),
      sizes.NIV2.get(_task)))
