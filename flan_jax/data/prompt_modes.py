"""Flan 2022 prompt modes: zero-/few-shot x with/without options, randomized option formats.

Every Flan 2022 task reaches this module as *candidates*: per raw example, the input and target
rendered with each of its templates (options left out), and the options each template shows, in
the keys of :data:`CANDIDATE_KEYS`. :func:`render_mode` then picks one template per example,
formats the options (header, itemization and ending drawn per example from our own lists) in the
``opt`` modes, and for the ``fs`` modes prepends exemplars from the same task, pruned to
:data:`FEW_SHOT_MAX_LEN` tokens. Dialog tasks (``dialog=True``) write their conversations with
the turn markers of :data:`DIALOG_MARKERS`; each example then draws a speaker pair and a turn
style from our own lists (:func:`dialog_format`), the same way it draws its option format.

Every draw is a hash of the example's content and the pipeline seed (one seed from seqio's seed
stream per pipeline, not one per position), so ``get_dataset(seed=S)`` reproduces the prompts, a
different seed changes them, and an example renders the same in any shard of the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import seqio
import tensorflow as tf

from flan_jax.data import vocab as vocab_lib

Example = dict[str, tf.Tensor]

MODES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
FEW_SHOT_MAX_LEN = 1920  # tokens of a few-shot prompt (Flan 2022's budget)
MAX_SHOTS = 5
FEWSHOT_POOL_SIZE = 64   # exemplars held in memory per task and pipeline
MAX_OPTIONS = 64
OPTION_SEP = "\x1e"      # joins a template's options inside one string

# Candidate keys produced by each source's templating step.
CAND_INPUTS = "_cand_inputs"    # [n] inputs, one per template, without an options block
CAND_TARGETS = "_cand_targets"  # [n]
CAND_OPTIONS = "_cand_options"  # [n] options joined by OPTION_SEP ("" = the template shows none)
UID = "_uid"                    # scalar: the raw example's content (identity for exemplars)
CANDIDATE_KEYS = (CAND_INPUTS, CAND_TARGETS, CAND_OPTIONS, UID)

# Metadata carried through to export-data (the reference's passthrough features).
META_KEYS = ("_task_name", "_template_idx", "_template_type", "_task_source")

# Our own option headers, itemization styles and endings; "" = no header / no ending.
OPTION_HEADERS = (
    "OPTIONS:", "", "Answer choices:", "Pick one:", "Candidates:", "Select one of these:",
    "The choices are:", "Alternatives:", "Which one is it?", "Possible replies:",
    "Choose the best option:", "Available answers:",
)
OPTION_ENDINGS = ("", "", "\nAnswer:", "\nYour pick:", "\nPick the right one.")


def _letters(i: int, upper: bool) -> str:
  a = "A" if upper else "a"
  return chr(ord(a) + i) if i < 26 else chr(ord(a) + i // 26 - 1) + chr(ord(a) + i % 26)


def _roman(i: int) -> str:
  n, out = i + 1, ""
  for value, digits in ((50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
    while n >= value:
      out, n = out + digits, n - value
  return out


ITEM_STYLES: tuple[Callable[[int], str], ...] = (
    lambda i: "- ",
    lambda i: "* ",
    lambda i: "+ ",
    lambda i: f"{i + 1}. ",
    lambda i: f"{i + 1}) ",
    lambda i: f"({i + 1}) ",
    lambda i: f"[{i + 1}] ",
    lambda i: f"{_letters(i, True)}. ",
    lambda i: f"({_letters(i, True)}) ",
    lambda i: f"{_letters(i, False)}) ",
    lambda i: f"[{_letters(i, False)}] ",
    lambda i: f"{_roman(i)}. ",
    lambda i: f"({_roman(i)}) ",
    lambda i: f"{_roman(i).upper()}: ",
)

# Our own few-shot separators: (between an exemplar's input and target, after each exemplar).
FEWSHOT_SEPARATORS = (
    ("\n\n", "\n\n\n"),
    ("\n", "\n\n"),
    ("\n\n", "\n\n----\n\n"),
    ("\n\n", "\n\n###\n\n"),
    ("\n", "\n\n\n"),
)


# Dialog turns: a dialog task's fields carry these markers; :func:`dialog_format` replaces them
# per example with a speaker pair and a turn style drawn from our own lists.
USER_TURN = "\x02user-turn\x03"    # starts a user turn (then the turn's text)
AGENT_TURN = "\x02agent-turn\x03"  # starts an agent turn
TURN_SEP = "\x02turn-sep\x03"      # between two turns
USER_NAME = "\x02user\x03"         # the user's label inside a template's own text
AGENT_NAME = "\x02agent\x03"       # the agent's label inside a template's own text
DIALOG_MARKERS = (USER_TURN, AGENT_TURN, TURN_SEP, USER_NAME, AGENT_NAME)

# Our own (user, agent) labels and turn styles: (label pattern, separator between turns).
DIALOG_SPEAKERS = (
    ("User", "Assistant"), ("Person A", "Person B"), ("Human", "AI"), ("Speaker 1", "Speaker 2"),
    ("Visitor", "Guide"), ("Student", "Tutor"), ("Q", "A"), ("Customer", "Agent"),
    ("Me", "You"), ("Reader", "Expert"),
)
DIALOG_TURN_STYLES = (
    ("{}: ", "\n"), ("{}: ", "\n\n"), ("[{}] ", "\n"), ("{} says: ", "\n"), ("<{}> ", "\n"),
    ("- {}: ", "\n"), ("{}:\n", "\n\n"), ("{} -- ", "\n"),
)


def _bucket(key: tf.Tensor, salt: str, n: int) -> tf.Tensor:
  return tf.cast(tf.strings.to_hash_bucket_fast(tf.strings.join([key, salt], "\x1f"), n), tf.int32)


# Every style's markers for MAX_OPTIONS options, computed once (plain Python, not traced).
_MARKERS = [[style(i) for i in range(MAX_OPTIONS)] for style in ITEM_STYLES]
# The same for the dialog markers: marker -> replacement per (speakers x style) draw.
_DIALOG_TABLE: dict[str, list[str]] = {m: [] for m in DIALOG_MARKERS}
for _user, _agent in DIALOG_SPEAKERS:
  for _pattern, _sep in DIALOG_TURN_STYLES:
    for _marker, _value in zip(DIALOG_MARKERS, (_pattern.format(_user), _pattern.format(_agent),
                                                _sep, _user, _agent), strict=True):
      _DIALOG_TABLE[_marker].append(_value)

# The map functions below use tf.cond, never Python control flow on tensors: tracing them without
# autograph's conversion cut a 40-task NIv2 mixture's build from 162 s to 113 s (1 loaded core;
# it adds up over the ~1,900 tasks of flan2022_submix).
_no_autograph = tf.autograph.experimental.do_not_convert


def _marker_table() -> tf.Tensor:
  return tf.constant(_MARKERS)


def option_block(options: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
  """The options block of one example: a header, the options itemized in one style, an ending,
  each drawn from our lists by hashing ``key`` (scalar string)."""
  header = tf.gather(tf.constant(OPTION_HEADERS), _bucket(key, "header", len(OPTION_HEADERS)))
  style = _bucket(key, "style", len(ITEM_STYLES))
  ending = tf.gather(tf.constant(OPTION_ENDINGS), _bucket(key, "ending", len(OPTION_ENDINGS)))
  n = tf.minimum(tf.size(options), MAX_OPTIONS)
  markers = tf.gather(_marker_table(), style)[:n]
  items = tf.strings.reduce_join(markers + options[:n], separator="\n")
  head = tf.where(tf.strings.length(header) > 0, header + "\n", "")
  return head + items + ending


def dialog_format(text: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
  """``text`` with its dialog markers replaced by one speaker pair and turn style, drawn from our
  lists by hashing ``key`` (scalar string); text without markers is unchanged."""
  speakers = _bucket(key, "speakers", len(DIALOG_SPEAKERS))
  style = _bucket(key, "turn_style", len(DIALOG_TURN_STYLES))
  index = speakers * len(DIALOG_TURN_STYLES) + style
  for marker, values in _DIALOG_TABLE.items():
    # Rewrite strings are literal: escape the backslashes RE2 would read as group references.
    rewrite = tf.gather(tf.constant([v.replace("\\", "\\\\") for v in values]), index)
    text = tf.strings.regex_replace(text, re.escape(marker), rewrite)
  return text


def split_options(joined: tf.Tensor) -> tf.Tensor:
  """A template's options from their joined string ("" -> no options)."""
  parts = tf.strings.split(joined, OPTION_SEP)
  return tf.cond(tf.strings.length(joined) > 0, lambda: parts, lambda: parts[:0])


def render_one(ex: Example, key: tf.Tensor, with_options: bool, dialog: bool = False
               ) -> tuple[tf.Tensor, ...]:
  """(inputs, targets, options, template_idx) of one candidates example for a draw ``key``;
  ``dialog``: its turn markers get a drawn format (:func:`dialog_format`)."""
  n = tf.size(ex[CAND_INPUTS])
  draw = tf.strings.to_hash_bucket_fast(tf.strings.join([key, "template"], "\x1f"), 1 << 40)
  idx = tf.cast(draw % tf.cast(n, tf.int64), tf.int32)
  inputs = ex[CAND_INPUTS][idx]
  options = split_options(ex[CAND_OPTIONS][idx])
  if with_options:
    inputs = tf.cond(tf.size(options) > 0,
                     lambda: inputs + "\n\n" + option_block(options, key), lambda: inputs)
  targets = ex[CAND_TARGETS][idx]
  if dialog:
    inputs, targets = dialog_format(inputs, key), dialog_format(targets, key)
  return inputs, targets, options, idx


@seqio.map_over_dataset(num_seeds=1)
def _draw_seed(ex: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  del ex
  return seed


def pipeline_seed() -> tf.Tensor:
  """One seed pair from seqio's seed stream (deterministic under ``get_dataset(seed=S)``)."""
  return _draw_seed(tf.data.Dataset.from_tensors(0)).get_single_element()


def _key(seed: tf.Tensor, uid: tf.Tensor, salt: str) -> tf.Tensor:
  return tf.strings.join([tf.strings.as_string(seed[0]), tf.strings.as_string(seed[1]), salt, uid],
                         "\x1f")


def render_mode(mode: str, task_name: str, task_source: str,
                pool_fn: Callable[[], tf.data.Dataset] | None = None,
                vocabulary: seqio.Vocabulary | None = None,
                max_len: int = FEW_SHOT_MAX_LEN, max_shots: int = MAX_SHOTS,
                dialog: bool = False) -> Callable:
  """The preprocessor that turns candidates into ``inputs``/``targets`` in ``mode``.

  ``dialog``: the candidates carry :data:`DIALOG_MARKERS`, formatted per example (exemplars
  included, each with its own draw).

  ``pool_fn`` (few-shot modes) yields the same task's candidates from its train split; the first
  :data:`FEWSHOT_POOL_SIZE` are held in memory and each query draws up to ``max_shots`` of them
  (never itself), keeping the longest prefix whose tokenized prompt fits ``max_len``.
  """
  if mode not in MODES:
    raise ValueError(f"Unknown prompt mode {mode!r}; use one of {MODES}.")
  with_options = mode.endswith("_opt")
  few_shot = mode.startswith("fs")
  if few_shot and (pool_fn is None or vocabulary is None):
    raise ValueError(f"mode {mode} needs pool_fn and vocabulary")

  def _preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
    seed = pipeline_seed()

    @_no_autograph
    def _render(ex: Example, pool: Example | None = None) -> Example:
      key = _key(seed, ex[UID], "query")
      inputs, targets, options, idx = render_one(ex, key, with_options, dialog)
      out = {"inputs": inputs, "targets": targets, "options": options,
             "template_idx": idx, "_template_idx": idx,
             "_task_name": tf.constant(task_name), "_template_type": tf.constant(mode),
             "_task_source": tf.constant(task_source)}
      if pool is not None:
        out["inputs"], out["num_shots"] = _with_exemplars(inputs, ex[UID], key, pool, vocabulary,
                                                          max_len, max_shots)
      return out

    if not few_shot:
      return dataset.map(_render, num_parallel_calls=tf.data.AUTOTUNE)
    # The same in-memory pool (read lazily, once) accompanies every example: no position effects.
    pool = _pool(pool_fn, seed, with_options, dialog).cache().repeat()
    return tf.data.Dataset.zip((dataset, pool)).map(_render, num_parallel_calls=tf.data.AUTOTUNE)

  return _preprocess


def _pool(pool_fn: Callable[[], tf.data.Dataset], seed: tf.Tensor, with_options: bool,
          dialog: bool = False) -> tf.data.Dataset:
  """One element: the first exemplars of the task's train split, each rendered with its own
  draw, as ``[n]`` vectors."""

  @_no_autograph
  def _render(ex: Example) -> Example:
    inputs, targets, _, _ = render_one(ex, _key(seed, ex[UID], "exemplar"), with_options, dialog)
    return {"inputs": inputs, "targets": targets, UID: ex[UID]}

  return pool_fn().take(FEWSHOT_POOL_SIZE).map(_render).batch(FEWSHOT_POOL_SIZE)


def _with_exemplars(query: tf.Tensor, uid: tf.Tensor, key: tf.Tensor, pool: dict[str, tf.Tensor],
                    vocabulary: seqio.Vocabulary, max_len: int, max_shots: int
                    ) -> tuple[tf.Tensor, tf.Tensor]:
  """The query preceded by the longest fitting prefix of its drawn exemplars, and their count."""
  size = tf.shape(pool[UID])[0]
  # Draw max_shots + 1 distinct pool rows (a hash-ranked permutation), drop the query itself.
  ranks = tf.strings.to_hash_bucket_fast(
      tf.strings.join([key, tf.strings.as_string(tf.range(size))], "\x1f"), 1 << 40)
  order = tf.argsort(ranks)
  chosen = tf.gather(order, tf.range(tf.minimum(size, max_shots + 1)))
  not_query = tf.not_equal(tf.gather(pool[UID], chosen), uid)
  chosen = tf.boolean_mask(chosen, not_query)
  k = 1 + _bucket(key, "shots", max_shots)  # 1..max_shots exemplars wanted
  chosen = chosen[:k]
  sep = _bucket(key, "separator", len(FEWSHOT_SEPARATORS))
  in_sep = tf.gather(tf.constant([s[0] for s in FEWSHOT_SEPARATORS]), sep)
  ex_sep = tf.gather(tf.constant([s[1] for s in FEWSHOT_SEPARATORS]), sep)
  blocks = (tf.gather(pool["inputs"], chosen) + in_sep + tf.gather(pool["targets"], chosen)
            + ex_sep)
  prefixes = tf.concat([[""], _cumulative_join(blocks)], axis=0)
  candidates = prefixes + query
  lengths = vocab_lib.token_lengths(vocabulary, candidates)
  fits = tf.cast(lengths <= max_len, tf.int32)
  n_keep = tf.maximum(tf.reduce_sum(tf.math.cumprod(fits)) - 1, 0)
  return candidates[n_keep], tf.cast(n_keep, tf.int32)


def _cumulative_join(blocks: tf.Tensor) -> tf.Tensor:
  """["a", "b", "c"] -> ["a", "ab", "abc"]."""
  n = tf.size(blocks)
  mask = tf.sequence_mask(tf.range(1, n + 1), n)
  ragged = tf.ragged.boolean_mask(tf.tile(blocks[None, :], [n, 1]), mask)
  return tf.strings.reduce_join(ragged, axis=-1)


def candidates_from_patterns(templates: Sequence, fields: Sequence[str]) -> Callable:
  """Candidates step for pattern templates (:class:`flan_jax.templates.Template`): each template
  rendered without its ``{options_}`` block; templates that had one show ``options``."""
  from flan_jax.data import templates as tmpl
  stripped = [t.without_options() for t in templates]
  shows = [t.has_options for t in templates]
  content = sorted(fields)

  @seqio.map_over_dataset
  @_no_autograph
  def _candidates(ex: Example) -> Example:
    options = ex.get("options", tf.constant([], tf.string))
    joined = tf.strings.reduce_join(options, separator=OPTION_SEP)
    return {
        CAND_INPUTS: tf.stack([tmpl.render_tf(t.inputs, ex) for t in stripped]),
        CAND_TARGETS: tf.stack([tmpl.render_tf(t.targets, ex) for t in stripped]),
        CAND_OPTIONS: tf.stack([joined if s else tf.constant("") for s in shows]),
        UID: tf.strings.join([ex[k] for k in content], "\x1f"),
    }

  return _candidates
