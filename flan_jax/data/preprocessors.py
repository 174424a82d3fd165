"""tf.data preprocessors that turn a dataset's fields into FLAN examples.

Data flow of every FLAN task (see :mod:`flan_jax.data.spec`)::

    source -> filter -> fields (per-dataset map) -> add_options -> template -> [few-shot]
           -> [rank classification expansion] -> tokenize -> cache placeholder -> append EOS

Each function here does one of those steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf

from flan_jax.data import templates as tmpl
from flan_jax.data import vocab as vocab_lib

Example = dict[str, tf.Tensor]

# Keys that are not template fields but carry the label space.
OPTIONS_KEY = "options"     # 1-D string tensor, in rendering order.
ANSWERS_KEY = "answers"     # optional 1-D string tensor: every correct option / reference.
GROUP_KEY = "group"         # optional scalar string: groups rows for a metric (MultiRC question).
LABEL_KEYS = (OPTIONS_KEY, ANSWERS_KEY, GROUP_KEY)  # carried through templating, not templated.
TEMPLATE_IDX_KEY = "template_idx"

FEWSHOT_INPUT_SEP = "\n\n"      # between an exemplar's input and its target
FEWSHOT_EXAMPLE_SEP = "\n\n\n"  # between exemplars (Flan 2022's defaults)


def map_fields(fn: Callable[[Example], Example], fields: Sequence[str]) -> Callable:
  """Applies a dataset's field function and keeps only the declared fields + label keys."""
  keep = set(fields) | set(LABEL_KEYS)

  @seqio.map_over_dataset
  def _map(ex: Example) -> Example:
    out = fn(ex)
    missing = sorted(set(fields) - set(out))
    if missing:
      raise KeyError(f"preprocessor did not produce declared field(s) {missing}; got {sorted(out)}")
    return {k: v for k, v in out.items() if k in keep}

  return _map


def add_options(options: Sequence[str] | None) -> Callable:
  """Adds the options vector (fixed, or the example's own) and the ``options_`` block."""

  @seqio.map_over_dataset
  def _add(ex: Example) -> Example:
    ex = dict(ex)
    if options is not None:
      ex[OPTIONS_KEY] = tf.constant(list(options), dtype=tf.string)
    if OPTIONS_KEY in ex:
      ex[tmpl.OPTIONS_FIELD] = tmpl.format_options_tf(ex[OPTIONS_KEY])
    return ex

  return _add


def _render_all(ex: Example, templates: Sequence[tmpl.Template]) -> tuple[tf.Tensor, tf.Tensor]:
  inputs = tf.stack([tmpl.render_tf(t.inputs, ex) for t in templates])
  targets = tf.stack([tmpl.render_tf(t.targets, ex) for t in templates])
  return inputs, targets


def _labels(ex: Example) -> Example:
  return {k: ex[k] for k in LABEL_KEYS if k in ex}


def apply_template(template: tmpl.Template, template_idx: int = 0) -> Callable:
  """Renders one fixed template: ``{inputs, targets, template_idx}`` plus label keys (less
  ``answers`` for a turned-around template: they are not its target's references)."""

  @seqio.map_over_dataset
  def _apply(ex: Example) -> Example:
    labels = _labels(ex)
    if template.turned:
      labels.pop(ANSWERS_KEY, None)
    return {
        "inputs": tmpl.render_tf(template.inputs, ex),
        "targets": tmpl.render_tf(template.targets, ex),
        TEMPLATE_IDX_KEY: tf.constant(template_idx, tf.int32),
        **labels,
    }

  return _apply


def assign_template(templates: Sequence[tmpl.Template], fields: Sequence[str]) -> Callable:
  """Renders each example with one of ``templates``, chosen from a seed and the example.

  The index is a hash of the example's field values and a per-example seed from seqio's seed
  stream, so ``get_dataset(seed=S)`` reproduces the assignment and another seed changes it.
  """
  n = len(templates)
  content_keys = sorted(fields)

  @seqio.map_over_dataset(num_seeds=1)
  def _assign(ex: Example, seed: tf.Tensor) -> Example:
    key = tf.strings.join(
        [tf.strings.as_string(seed[0]), tf.strings.as_string(seed[1])]
        + [ex[k] for k in content_keys], separator="\x1f")
    idx = tf.cast(tf.strings.to_hash_bucket_fast(key, n), tf.int32)
    inputs, targets = _render_all(ex, templates)
    return {"inputs": inputs[idx], "targets": targets[idx], TEMPLATE_IDX_KEY: idx, **_labels(ex)}

  return _assign


def relabel_options(options: Sequence[str], words: Sequence[str]) -> Callable:
  """Rewrites a fixed-option example's options, ``answer`` and ``answers`` as other words (the
  continuation prompts' "true"/"false" for "yes"/"no"), position by position."""
  options, words = list(options), list(words)  # Made tensors when traced, not at registration.

  def _map(values: tf.Tensor) -> tf.Tensor:
    old, new = tf.constant(options), tf.constant(words)
    hits = tf.cast(tf.equal(values[..., None], old), tf.int32)
    return tf.gather(new, tf.argmax(hits, axis=-1))

  @seqio.map_over_dataset
  def _relabel(ex: Example) -> Example:
    ex = dict(ex)
    ex[OPTIONS_KEY] = tf.constant(words)
    ex["answer"] = _map(ex["answer"])
    if ANSWERS_KEY in ex:
      ex[ANSWERS_KEY] = _map(ex[ANSWERS_KEY])
    return ex

  return _relabel


def rank_classification(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Expands each templated example into one example per option (t5's rank classification).

  Each row carries ``idx = [example_index, option_index]`` and ``is_correct`` (the option is in
  ``answers`` when given, else equals ``targets``). ``targets`` becomes the option text.
  """

  def _expand(example_idx: tf.Tensor, ex: Example) -> tf.data.Dataset:
    options = ex[OPTIONS_KEY]
    n = tf.shape(options)[0]
    correct = ex[ANSWERS_KEY] if ANSWERS_KEY in ex else tf.reshape(ex["targets"], [1])
    is_correct = tf.reduce_any(tf.equal(options[:, None], correct[None, :]), axis=1)
    example_idx = tf.cast(example_idx, tf.int32)
    rows = {
        "idx": tf.stack([tf.fill([n], example_idx), tf.range(n, dtype=tf.int32)], axis=1),
        "inputs": tf.fill([n], ex["inputs"]),
        "targets": options,
        "is_correct": is_correct,
        TEMPLATE_IDX_KEY: tf.fill([n], ex[TEMPLATE_IDX_KEY]),
    }
    return tf.data.Dataset.from_tensor_slices(rows)

  return dataset.enumerate().flat_map(_expand)


def fewshot(
    pool_fn: Callable[[], tf.data.Dataset],
    num_shots: int,
    vocabulary: seqio.Vocabulary,
    max_input_tokens: int = 960,
    seed: int = 0,
    *,
    mixed_templates: bool = False,
) -> Callable:
  """Prepends up to ``num_shots`` exemplars from ``pool_fn()`` to each (templated) example.

  ``pool_fn`` yields exemplars already rendered with *all* the task's templates as vectors
  ``inputs_all`` / ``targets_all``; the query's ``template_idx`` picks which rendering to use, so
  exemplars share the query's template; with ``mixed_templates`` each exemplar instead uses a
  template picked by a hash of its own content (the reference's few-shot training, where every
  example is templated independently). An exemplar identical to the query is never used. The
  prompt keeps the longest prefix of exemplars whose tokenized prompt fits ``max_input_tokens``
  (greedy: exemplars are added in order until the next one would not fit).
  """

  def _preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
    pool = pool_fn().shuffle(1000, seed=seed).repeat().batch(num_shots + 1, drop_remainder=True)

    def _join(ex: Example, shots: Example) -> Example:
      if mixed_templates:
        n = tf.shape(shots["inputs_all"], out_type=tf.int64)[1]
        own = tf.strings.to_hash_bucket_fast(shots["inputs_all"][:, 0], 1 << 30) % n
        shot_inputs = tf.gather(shots["inputs_all"], own, axis=1, batch_dims=1)
        shot_targets = tf.gather(shots["targets_all"], own, axis=1, batch_dims=1)
      else:
        idx = ex[TEMPLATE_IDX_KEY]
        shot_inputs = tf.gather(shots["inputs_all"], idx, axis=1)
        shot_targets = tf.gather(shots["targets_all"], idx, axis=1)
      not_query = tf.logical_not(tf.logical_and(tf.equal(shot_inputs, ex["inputs"]),
                                                tf.equal(shot_targets, ex["targets"])))
      shot_inputs = tf.boolean_mask(shot_inputs, not_query)[:num_shots]
      shot_targets = tf.boolean_mask(shot_targets, not_query)[:num_shots]
      blocks = shot_inputs + FEWSHOT_INPUT_SEP + shot_targets + FEWSHOT_EXAMPLE_SEP
      # Candidate prompts with 0..k exemplars; keep the longest that fits the budget.
      prefixes = tf.concat([[""], _cumulative_join(blocks)], axis=0)
      candidates = prefixes + ex["inputs"]
      lengths = vocab_lib.token_lengths(vocabulary, candidates)
      fits = tf.cast(lengths <= max_input_tokens, tf.int32)
      # Longest prefix that fits (0 exemplars always kept, even if the query alone is too long).
      n_keep = tf.maximum(tf.reduce_sum(tf.math.cumprod(fits)) - 1, 0)
      out = dict(ex)
      out["inputs"] = candidates[n_keep]
      out["num_shots"] = tf.cast(n_keep, tf.int32)
      return out

    return tf.data.Dataset.zip((dataset, pool)).map(_join, num_parallel_calls=tf.data.AUTOTUNE)

  return _preprocess


def _cumulative_join(blocks: tf.Tensor) -> tf.Tensor:
  """["a", "b", "c"] -> ["a", "ab", "abc"]."""
  n = tf.size(blocks)
  mask = tf.sequence_mask(tf.range(1, n + 1), n)  # [n, n] lower-triangular
  ragged = tf.ragged.boolean_mask(tf.tile(blocks[None, :], [n, 1]), mask)
  return tf.strings.reduce_join(ragged, axis=-1)


def render_pool(
    head: Sequence[Callable], templates: Sequence[tmpl.Template]
) -> Callable[[tf.data.Dataset], tf.data.Dataset]:
  """Turns a raw source split into few-shot exemplars rendered with every template."""

  def _pool(ds: tf.data.Dataset) -> tf.data.Dataset:
    for step in head:
      ds = step(ds)

    def _render(ex: Example) -> Example:
      inputs, targets = _render_all(ex, templates)
      return {"inputs_all": inputs, "targets_all": targets}

    return ds.map(_render, num_parallel_calls=tf.data.AUTOTUNE)

  return _pool


def tokenize_chain() -> list:
  """FLAN's tokenization steps: tokenize, cache placeholder, EOS after trimming."""
  return [
      seqio.preprocessors.tokenize,
      seqio.CacheDatasetPlaceholder(),
      append_eos_after_trim,
  ]


# The truncation counters of the training pipelines being built, innermost last:
# flan_jax.training.batches.get_dataset pushes its TruncationCounter (anything with
# ``wrap(dataset, output_features)``) while seqio builds the pipeline; empty elsewhere.
TRUNCATION_COUNTERS: list = []


def append_eos_after_trim(dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature],
                          sequence_length: Mapping[str, int] | None = None) -> tf.data.Dataset:
  """seqio's ``append_eos_after_trim``; in a training pipeline being built, its counter first
  counts the examples the feature lengths truncate (see :data:`TRUNCATION_COUNTERS`)."""
  counter = TRUNCATION_COUNTERS[-1] if TRUNCATION_COUNTERS else None
  if counter is not None:
    dataset = counter.wrap(dataset, output_features)
  return seqio.preprocessors.append_eos_after_trim(dataset, output_features, sequence_length)


def filter_examples(predicate: Callable[[Example], tf.Tensor]) -> Callable:
  """Keeps the raw examples for which ``predicate`` is true (per-dataset cleaning)."""

  def _filter(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return dataset.filter(predicate)

  return _filter


def pick(options: Sequence[str], label: tf.Tensor) -> tf.Tensor:
  """The option at integer ``label`` (helper for field functions)."""
  return tf.gather(tf.constant(list(options)), tf.cast(label, tf.int32))


def constant_fields(values: Mapping[str, str]) -> Example:
  return {k: tf.constant(v) for k, v in values.items()}


def first_or_empty(values: tf.Tensor) -> tf.Tensor:
  """First element of a 1-D string tensor, or "" when it is empty (mock data can be empty)."""
  return tf.concat([values, tf.constant([""])], axis=0)[0]


def join(values: tf.Tensor, separator: str = ", ") -> tf.Tensor:
  """Joins a 1-D string tensor into one string."""
  return tf.strings.reduce_join(values, separator=separator)


def nonempty(value: tf.Tensor) -> tf.Tensor:
  """True where a scalar string is not empty or whitespace (for ``filter_fn``)."""
  return tf.strings.length(tf.strings.strip(value)) > 0
