"""Dialog: TFDS ``wiki_dialog`` (the reference's QReCC has no TFDS builder), continuing a
conversation grounded in a Wikipedia passage, and its input inversion (``dialog_wiki_dialog_ii``:
write the user turn that a reply answers).

Conversations and the templates' own mentions of the speakers are written with the turn markers
of :mod:`flan_jax.data.prompt_modes`; each example draws its speaker labels and turn style when
its prompt is rendered (``User: ...`` in one example, ``[Student] ...`` in the next)."""

import tensorflow as tf

from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data.spec import TfdsSource
from flan_jax.data.templates import T
from flan_jax.tasks.flan2022 import registry, sizes

FIELDS = ("title", "passage", "history", "reply", "last_user", "history_before_user")
USER, AGENT = pm.USER_NAME, pm.AGENT_NAME  # the speakers' labels inside a template's text


def _fields(ex: dict) -> dict:
  turns = ex["utterances"]
  n = tf.size(turns)
  # Turns alternate user / agent from the first; the last turn is the agent's reply.
  markers = tf.where(tf.range(n) % 2 == (n - 1) % 2, pm.AGENT_TURN, pm.USER_TURN)
  lines = markers + turns
  pad = tf.concat([turns, ["", ""]], axis=0)
  last = tf.maximum(n - 1, 0)
  return {
      "title": ex["title"], "passage": ex["passage"],
      "history": tf.strings.reduce_join(lines[:last], separator=pm.TURN_SEP),
      "reply": pad[last],
      "last_user": pad[tf.maximum(n - 2, 0)],
      "history_before_user": tf.strings.reduce_join(lines[:tf.maximum(n - 2, 0)],
                                                    separator=pm.TURN_SEP),
  }


def _has_turns(ex: dict) -> tf.Tensor:
  return tf.size(ex["utterances"]) >= 2


TEMPLATES = (
    T(f"Background ({{title}}): {{passage}}\n\n{{history}}\n\nWrite {AGENT}'s next reply.",
      "{reply}"),
    T(f"{{history}}\n\nContinue the conversation as {AGENT}, using this article about "
      "{title}:\n{passage}", "{reply}"),
    T(f"Conversation about {{title}}:\n{{history}}{pm.TURN_SEP}{pm.AGENT_TURN}", "{reply}"),
)
INVERSION_TEMPLATES = (
    T(f"Article about {{title}}: {{passage}}\n\n{{history_before_user}}\n\n{AGENT} then said: "
      f"\"{{reply}}\"\n\nWhat did {USER} say just before that?", "{last_user}"),
)

_source = TfdsSource("wiki_dialog/OQ:1.0.0", {"train": "train", "validation": "validation"})
_head = (prep.filter_examples(_has_turns), prep.map_fields(_fields, FIELDS))
registry.register(registry.Flan2022Task(
    "dialog_wiki_dialog", "dialog", _source,
    (*_head, pm.candidates_from_patterns(TEMPLATES, FIELDS)), sizes.DIALOG["wiki_dialog"]))
registry.register(registry.Flan2022Task(
    "dialog_wiki_dialog_ii", "dialog", _source,
    (*_head, pm.candidates_from_patterns(INVERSION_TEMPLATES, FIELDS)),
    sizes.DIALOG["wiki_dialog"], inversion_of="dialog_wiki_dialog"))
