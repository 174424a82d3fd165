"""Chain-of-thought: the nine CoT datasets (TSV: question, answer, rationale) with our own CoT
templates, plus their input-inversion tasks (``cot_{d}_ii``: write the question that a
rationale and answer respond to)."""

import tensorflow as tf

from flan_jax.data import local_sources as sources
from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data.templates import T
from flan_jax.tasks.flan2022 import registry, sizes

FIELDS = sources.COT_COLUMNS
DATASETS = tuple(sizes.COT)

TEMPLATES = (
    T("{question}\nReason it out step by step, then answer.",
      "{rationale}\nSo the answer is: {answer}"),
    T("Question: {question}\nLet's work through it before giving the answer.",
      "{rationale} Hence the answer: {answer}."),
    T("{question}\n\nExplain your reasoning first, then state the answer.",
      "Reasoning: {rationale}\nAnswer: {answer}"),
    T("Think carefully about this one. {question}",
      "{rationale}\nFinal answer: {answer}"),
)
INVERSION_TEMPLATES = (
    T("Reasoning: {rationale}\nAnswer: {answer}\n\nWhat question is this reasoning an answer to?",
      "{question}"),
    T("Here is a solution and its result.\n{rationale}\nResult: {answer}\n\nWrite the question "
      "it solves.", "{question}"),
)


def cot_fields(row: dict) -> dict:
  """A TSV row's fields; the two characters ``\\n`` in question and rationale become a newline,
  as the reference's CoT reader does (aqua, creak, ecqa, qasc and sensemaking questions and most
  aqua rationales write their line breaks that way)."""
  out = dict(row)
  for key in ("question", "rationale"):
    out[key] = tf.strings.regex_replace(row[key], r"\\n", "\n")
  return out


for _name in DATASETS:
  _source = sources.cot_source(_name, sizes.COT.get(_name))
  _map = prep.map_fields(cot_fields, FIELDS)
  registry.register(registry.Flan2022Task(
      f"cot_{_name}", "cot", _source, (_map, pm.candidates_from_patterns(TEMPLATES, FIELDS)),
      sizes.COT.get(_name)))
  registry.register(registry.Flan2022Task(
      f"cot_{_name}_ii", "cot", _source,
      (_map, pm.candidates_from_patterns(INVERSION_TEMPLATES, FIELDS)), sizes.COT.get(_name),
      inversion_of=f"cot_{_name}"))
