"""Dialog: TFDS ``wiki_dialog``, continuing a conversation grounded in a Wikipedia passage, and
TFDS ``q_re_cc`` (QReCC), open-domain conversational QA, each with its input inversion
(``dialog_wiki_dialog_ii``, ``dialog_qrecc_ii``: write the user turn that a reply answers).

Conversations and the templates' own mentions of the speakers are written with the turn markers
of :mod:`flan_jax.data.prompt_modes`; each example draws its speaker labels and turn style when
its prompt is rendered (``User: ...`` in one example, ``[Student] ...`` in the next)."""

import tensorflow as tf

from flan_jax.data import preprocessors as prep
from flan_jax.data import prompt_modes as pm
from flan_jax.data import sizes
from flan_jax.data.spec import TfdsSource
from flan_jax.data.templates import T
from flan_jax.tasks.flan2022 import registry

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
_size = sizes.num_examples("wiki_dialog/OQ", "train")
_head = (prep.filter_examples(_has_turns), prep.map_fields(_fields, FIELDS))
registry.register(registry.Flan2022Task(
    "dialog_wiki_dialog", "dialog", _source,
    (*_head, pm.candidates_from_patterns(TEMPLATES, FIELDS)), _size))
registry.register(registry.Flan2022Task(
    "dialog_wiki_dialog_ii", "dialog", _source,
    (*_head, pm.candidates_from_patterns(INVERSION_TEMPLATES, FIELDS)),
    _size, inversion_of="dialog_wiki_dialog"))


# ----------------------------------------------------------------------------- QReCC

QRECC_FIELDS = ("history", "question", "answer", "earlier")


def _has_answer(ex: dict) -> tf.Tensor:
  return tf.strings.length(tf.strings.strip(ex["answer"])) > 0


def _qrecc_fields(ex: dict) -> dict:
  context = tf.strings.strip(ex["context"])
  question, answer = tf.strings.strip(ex["question"]), tf.strings.strip(ex["answer"])
  n = tf.size(context)
  # The earlier turns alternate question (user) / answer (agent), a question first.
  earlier = tf.where(tf.range(n) % 2 == 0, pm.USER_TURN, pm.AGENT_TURN) + context
  earlier = tf.strings.reduce_join(earlier, separator=pm.TURN_SEP)
  last = pm.USER_TURN + question
  history = tf.cond(n > 0, lambda: earlier + pm.TURN_SEP + last, lambda: last)
  return {"history": history, "question": question, "answer": answer,
          "earlier": tf.cond(n > 0, lambda: earlier, lambda: tf.constant("(none yet)"))}


QRECC_TEMPLATES = (
    T(f"{{history}}\n\nAnswer {USER}'s last question as {AGENT}.", "{answer}"),
    T(f"Here is a conversation.\n{{history}}{pm.TURN_SEP}{pm.AGENT_TURN}", "{answer}"),
    T(f"{{history}}\n\nWhat would {AGENT} reply?", "{answer}"),
)
QRECC_INVERSION_TEMPLATES = (
    T(f"Conversation so far:\n{{earlier}}\n\n{AGENT} then answered: \"{{answer}}\"\n\nWhat "
      f"question did {USER} ask?", "{question}"),
    T(f"{{earlier}}\n\nNext, {USER} asked something and {AGENT} replied \"{{answer}}\". Write "
      f"{USER}'s question.", "{question}"),
)

# Every turn with an answer is an example: its earlier turns and its question, then its answer
# (turns whose answer is empty are skipped). The reference keeps turns past the sixth and takes a
# random earlier answer of their context as the target; we use each turn's own question and answer.
_qrecc = TfdsSource("q_re_cc:1.0.0", {"train": "train", "test": "test"})
_qrecc_size = sizes.num_examples("q_re_cc", "train")  # an upper bound: empty answers are skipped
_qrecc_head = (prep.filter_examples(_has_answer), prep.map_fields(_qrecc_fields, QRECC_FIELDS))
registry.register(registry.Flan2022Task(
    "dialog_qrecc", "dialog", _qrecc,
    (*_qrecc_head, pm.candidates_from_patterns(QRECC_TEMPLATES, QRECC_FIELDS)),
    _qrecc_size))
registry.register(registry.Flan2022Task(
    "dialog_qrecc_ii", "dialog", _qrecc,
    (*_qrecc_head, pm.candidates_from_patterns(QRECC_INVERSION_TEMPLATES, QRECC_FIELDS)),
    _qrecc_size, inversion_of="dialog_qrecc"))
