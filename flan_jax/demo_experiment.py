"""The demo's experiment: FLAN in miniature on the embedded offline world, over seeds, with CIs.

For each seed: pretrain the model as a plain (causal) LM on the world's corpus, instruction-tune
it on every training cluster of the leave-one-cluster-out split, then score the held-out cluster
zero-shot by rank classification (every non-turned template, the test split). The untuned
baseline is the same seed's pretrained model on **exactly the same prompts**. Accuracy per example
is the mean over templates; a dataset's accuracy the mean over its examples; the cluster's the mean
over its datasets. 95 % intervals come from a two-level bootstrap (seeds, then examples within each
dataset; paired for the tuned - untuned difference).

It runs in one process on the library's pieces (:mod:`flan_jax.models`, the Adafactor of
:mod:`flan_jax.training.optim`, prefix-shared scoring of :mod:`flan_jax.inference.scoring`, the
offline suite's :class:`~flan_jax.data.spec.DatasetSpec` templates) rather than through
``flan_jax.train``'s gin/seqio/orbax job, so 3 seeds fit in minutes on 2 CPU cores.

Ablations (``--ablations``): the number of training clusters (1, 2, 4, all) and the instruction
format of the training data (instructions / no template / dataset name; the paper's Figure 7: the
no-template model is evaluated with the instructions, the dataset-name model with the name prefix).

    python -m flan_jax.demo_experiment [--heldout nli] [--seeds 3] [--preset demo] [--ablations]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import time
from collections.abc import Sequence

import numpy as np

from flan_jax.data import mixing, registry
from flan_jax.data import spec as ds
from flan_jax.data import templates as tmpl
from flan_jax.data.offline import world

SUITE = "offline"
KINDS = ("instructions", "no_template", "dataset_name")


@dataclasses.dataclass(frozen=True)
class Budget:
  """Model size and token budget of one seed's pretrain + tune + eval."""

  d_model: int = 64
  num_layers: int = 2
  pretrain_steps: int = 300
  pretrain_batch: int = 16
  pretrain_length: int = 128
  tune_steps: int = 300
  tune_batch: int = 16
  tune_length: int = 192
  learning_rate: float = 0.01
  eval_examples: int = 100  # test examples per held-out dataset
  train_examples: int = 1000  # training examples per training dataset
  # Mixing weights: (cluster or dataset name, multiplier of train_examples); a dataset's weight is
  # the product of its cluster's and its own (default 1). Equal weights are FLAN's
  # examples-proportional mixing with the cap at train_examples (every world dataset has more).
  weights: tuple[tuple[str, float], ...] = ()

  def weight(self, spec: ds.DatasetSpec) -> float:
    w = dict(self.weights)
    return w.get(spec.cluster, 1.0) * w.get(spec.name, 1.0)


PRESETS = {
    # Measured: ~4 min per seed (115 s CPU) on one CPU core shared with other jobs (README, E9).
    "demo": Budget(),
    # make test's smoke run: the whole procedure, seconds.
    "smoke": Budget(d_model=32, num_layers=1, pretrain_steps=4, pretrain_batch=4, tune_steps=4,
                    tune_batch=4, tune_length=128, eval_examples=8, train_examples=20),
}


# ----------------------------------------------------------------------------- data


def _fields(example: dict, options: Sequence[str] | None) -> dict[str, str]:
  fields = {k: v for k, v in example.items() if isinstance(v, str)}
  if options is not None:
    fields[tmpl.OPTIONS_FIELD] = tmpl.format_options_py(options)
  return fields


def _options(spec: ds.DatasetSpec, example: dict) -> list[str] | None:
  if spec.per_example_options:
    return list(example["options"])
  return list(spec.options) if spec.options else None


def train_templates(spec: ds.DatasetSpec, kind: str) -> list[tmpl.Template]:
  """The templates a training dataset is rendered with under an instruction ``kind``."""
  if kind == "instructions":
    return list(spec.templates)
  if kind == "no_template":
    return [ds.no_template(spec)]
  if kind == "dataset_name":
    return [ds.dataset_name_template(spec)]
  raise ValueError(f"unknown instruction kind {kind!r}; use one of {KINDS}")


def eval_templates(spec: ds.DatasetSpec, kind: str) -> list[tmpl.Template]:
  """Held-out templates: the instructions (also for the no-template model, as in the paper) or
  the dataset-name prefix for the dataset-name model."""
  if kind == "dataset_name":
    return [ds.dataset_name_template(spec)]
  return [t for t in spec.templates if not t.turned]


def training_pairs(specs: Sequence[ds.DatasetSpec], kind: str, n: int, rng: random.Random,
                   weights: dict[str, float] | None = None) -> list[tuple[str, str]]:
  """(inputs, targets) strings: ``n`` train examples of each dataset (``n * weights[name]`` where
  given, cycling through the train split), a random template each."""
  pairs = []
  for spec in specs:
    choices = train_templates(spec, kind)
    split = world.examples(spec.name, "train")
    count = round(n * (weights or {}).get(spec.name, 1.0))
    for i in range(count):
      example = split[i % len(split)]
      t = rng.choice(choices)
      fields = _fields(example, None if t.turned else _options(spec, example))
      pairs.append((t.inputs.format(**fields), t.targets.format(**fields)))
  return pairs


@dataclasses.dataclass
class EvalSet:
  """One held-out dataset: per template, the (context, options, answer index) of every example."""

  name: str
  rows: list[list[tuple[str, list[str], int]]]  # [template][example]

  @property
  def chance(self) -> float:
    return float(np.mean([1.0 / len(o) for _, o, _ in self.rows[0]]))


def eval_sets(heldout: str, kind: str = "instructions", n: int = 100, split: str = "test"
              ) -> list[EvalSet]:
  """The held-out cluster's classification datasets, rendered for rank classification."""
  out = []
  for spec in mixing.cluster_specs(SUITE, heldout):
    if not spec.is_classification:
      continue
    examples = world.examples(spec.name, split)[:n]
    rows = []
    for t in eval_templates(spec, kind):
      per = []
      for example in examples:
        options = _options(spec, example)
        per.append((t.inputs.format(**_fields(example, options)), options,
                    options.index(example["answer"])))
      rows.append(per)
    out.append(EvalSet(spec.name, rows))
  if not out:
    raise ValueError(f"held-out cluster {heldout!r} has no classification dataset to "
                     f"rank-classify; choose one of {mixing.clusters(SUITE)}")
  return out


# Answer formats any cluster may train (the skill the held-out cluster is meant to reuse): yes/no
# and the world's attribute values as option texts. Every other option string of a held-out
# dataset is its own target vocabulary and must not be a training target.
SHARED_ANSWERS = frozenset(world.YES_NO) | frozenset(v for vs in world.VALUES.values() for v in vs)
GENERIC_FIELDS = frozenset({"answer", "options", tmpl.OPTIONS_FIELD})


def _skeleton(pattern: str) -> str:
  """A template's text with every placeholder replaced by ``{}`` (field names do not matter)."""
  import string
  return "".join(lit + ("{}" if field is not None else "")
                 for lit, field, _, _ in string.Formatter().parse(pattern))


def honesty_violations(heldout: str, train_specs: Sequence[ds.DatasetSpec] | None = None,
                       num_examples: int = 300) -> list[str]:
  """The honesty rules of the demo, checked mechanically; [] when every rule holds.

  Against every training dataset of the held-out mixture (``train_specs``, default
  :func:`mixing.training_specs`): (1) no held-out field name (premise, hypothesis, ...) is a
  training field or a word of a training template; (2) no held-out template text (placeholders
  ignored) is a training template; (3) no held-out option outside :data:`SHARED_ANSWERS` is a
  training target or option, checked on the rendered training data.
  """
  import re
  registry.ensure_registered()
  heldout_specs = mixing.cluster_specs(SUITE, heldout)
  if train_specs is None:
    train_specs = mixing.training_specs(SUITE, heldout)
  out = []
  fields = {f for s in heldout_specs for f in s.fields} - GENERIC_FIELDS
  skeletons = {_skeleton(t.inputs) for s in heldout_specs for t in s.templates}
  vocab = {o for s in heldout_specs for o in (s.options or ())} | {
      o for s in heldout_specs if s.per_example_options
      for ex in world.examples(s.name, "test") for o in ex["options"]}
  unique = vocab - SHARED_ANSWERS
  for spec in train_specs:
    if spec.cluster == heldout:
      out.append(f"{spec.name}: a dataset of the held-out cluster {heldout!r} is trained on")
    if shared := sorted(fields & set(spec.fields)):
      out.append(f"{spec.name}: has held-out field(s) {shared}")
    for i, t in enumerate(spec.templates):
      words = set(re.findall(r"[a-z]+", (t.inputs + " " + t.targets).lower()))
      if hit := sorted(words & fields):
        out.append(f"{spec.name} template {i}: names held-out field(s) {hit}")
      if _skeleton(t.inputs) in skeletons:
        out.append(f"{spec.name} template {i}: is a held-out template {t.inputs!r}")
    for ex in world.examples(spec.name, "train")[:num_examples]:
      for t in spec.templates:
        fields_ = _fields(ex, _options(spec, ex))
        target = t.targets.format(**fields_)
        options = set(_options(spec, ex) or ())
        if hit := sorted(({target} | options) & unique):
          out.append(f"{spec.name}: trains the held-out target vocabulary {hit}")
          break
      else:
        continue
      break
  return out


def training_clusters(heldout: str) -> list[str]:
  return list(dict.fromkeys(s.cluster for s in mixing.training_specs(SUITE, heldout)))


# ----------------------------------------------------------------------------- model


def model_config(budget: Budget):
  from flan_jax.data.vocab import DEFAULT_VOCABULARY
  from flan_jax.models import DecoderConfig
  heads = 4
  return DecoderConfig(vocab_size=DEFAULT_VOCABULARY.vocab_size, num_layers=budget.num_layers,
                       d_model=budget.d_model, num_heads=heads, head_dim=budget.d_model // heads,
                       d_ff=2 * budget.d_model, activation="gated_gelu", position="relative",
                       tie_embeddings=True, scan_layers=True)


def _encode(text: str) -> list[int]:
  from flan_jax.data.vocab import DEFAULT_VOCABULARY
  return list(DEFAULT_VOCABULARY.encode(text))


def _pack(seqs: list[tuple[list[int], list[float]]], length: int, rng: random.Random
          ) -> dict[str, np.ndarray]:
  """Shuffled (tokens, loss weights) sequences packed into rows of ``length`` by the library's
  packer (:func:`flan_jax.data.packing.best_fit_pack`, ``window=1``: next-fit, as seqio packs)."""
  from flan_jax.data import packing
  seqs = list(seqs)
  rng.shuffle(seqs)

  def rows():  # unpacked DecoderFeatureConverter rows: inputs are the targets shifted right.
    for tokens, weights in seqs:
      tokens, weights = tokens[:length], weights[:length]
      yield {"decoder_target_tokens": np.asarray(tokens, np.int32),
             "decoder_input_tokens": np.asarray([0] + tokens[:-1], np.int32),
             "decoder_loss_weights": np.asarray(weights, np.float32)}

  packed = list(packing.best_fit_pack(rows(), length, window=1))
  return {k: np.stack([r[k] for r in packed]) for k in packed[0]}


def _train(config, params, data: dict[str, np.ndarray], steps: int, batch: int, lr: float,
           seed: int, desc: str, progress: bool):
  """The library's train step (:func:`flan_jax.training.step.make_train_step`: its loss,
  normalisation and Adafactor) over shuffled epochs of the packed rows; no gin/seqio/orbax."""
  import jax
  import tqdm

  from flan_jax.parallel import partitioning
  from flan_jax.training import optim
  from flan_jax.training import step as train_step
  state = partitioning.TrainState.create(params, optim.make_optimizer("adafactor", lr))
  step = jax.jit(train_step.make_train_step(config))
  dropout_rng = jax.random.key(seed)
  order_rng = np.random.default_rng(seed)
  n = len(data["decoder_target_tokens"])
  order = np.array([], np.int64)
  losses = []
  bar = tqdm.trange(steps, desc=desc, leave=False, disable=not progress)
  for i in bar:
    if len(order) < batch:
      order = np.concatenate([order, order_rng.permutation(n)])
    idx, order = order[:batch], order[batch:]
    state, metrics = step(state, {k: v[idx] for k, v in data.items()}, dropout_rng)
    if i % 25 == 0 or i == steps - 1:
      losses.append(float(metrics["loss"]))
      bar.set_postfix(loss=f"{losses[-1]:.3f}")
  return state.params, losses


def pretrain(config, budget: Budget, seed: int, progress: bool = False):
  """Plain causal LM on :func:`world.corpus` (documents joined by EOS, cut into rows)."""
  import jax

  from flan_jax.models import init_params
  stream: list[int] = []
  for doc in world.corpus():
    stream += _encode(doc) + [1]
  n = budget.pretrain_length
  seqs = [(stream[i:i + n], [1.0] * len(stream[i:i + n])) for i in range(0, len(stream), n)]
  data = _pack(seqs, n, random.Random(seed))
  params = init_params(config, jax.random.key(seed))
  return _train(config, params, data, budget.pretrain_steps, budget.pretrain_batch,
                budget.learning_rate, seed, f"pretrain s{seed}", progress)


def tune(config, params, pairs: list[tuple[str, str]], budget: Budget, seed: int,
         progress: bool = False):
  """Instruction tuning: loss on the target tokens (and EOS) only."""
  seqs = []
  for inputs, targets in pairs:
    x, y = _encode(inputs), _encode(targets) + [1]
    seqs.append((x + y, [0.0] * len(x) + [1.0] * len(y)))
  data = _pack(seqs, budget.tune_length, random.Random(seed + 1))
  return _train(config, params, data, budget.tune_steps, budget.tune_batch,
                budget.learning_rate, seed + 1, f"tune s{seed}", progress)


def correct(config, params, evalset: EvalSet) -> np.ndarray:
  """Per example, the fraction of templates whose rank classification picks the answer."""
  from flan_jax.inference import scoring
  hits = []
  for rows in evalset.rows:
    items = [scoring.Item(np.array([0] + _encode(c), np.int32),
                          [np.array(_encode(o) + [1], np.int32) for o in options])
             for c, options, _ in rows]
    scores = scoring.score_items(config, params, items, batch_size=64,
                                 bidirectional_context=False)
    hits.append([float(np.argmax(s) == a) for s, (_, _, a) in zip(scores, rows, strict=True)])
  return np.mean(np.array(hits), axis=0)


# ----------------------------------------------------------------------------- statistics


def cluster_mean(per_dataset: Sequence[np.ndarray]) -> float:
  return float(np.mean([np.mean(x) for x in per_dataset]))


def bootstrap(runs: Sequence[Sequence[np.ndarray]], num_samples: int = 2000, seed: int = 0,
              baseline: Sequence[Sequence[np.ndarray]] | None = None
              ) -> tuple[float, float, float]:
  """(mean, low, high) of the cluster accuracy, 95 % percentile interval.

  ``runs[s][d]``: per-example scores of seed ``s`` on dataset ``d``. Each bootstrap sample draws
  seeds with replacement, then examples with replacement within each dataset of each drawn seed;
  with ``baseline`` (same shapes) the statistic is the paired difference runs - baseline (the
  same draws for both).
  """
  rng = np.random.default_rng(seed)
  point = float(np.mean([cluster_mean(r) for r in runs]))
  if baseline is not None:
    point -= float(np.mean([cluster_mean(r) for r in baseline]))
  stats = np.empty(num_samples)
  for i in range(num_samples):
    total = 0.0
    drawn = rng.integers(len(runs), size=len(runs))
    for s in drawn:
      parts = []
      for d, x in enumerate(runs[s]):
        idx = rng.integers(len(x), size=len(x))
        value = np.mean(x[idx])
        if baseline is not None:
          value -= np.mean(baseline[s][d][idx])
        parts.append(value)
      total += np.mean(parts)
    stats[i] = total / len(drawn)
  low, high = np.percentile(stats, [2.5, 97.5])
  return point, float(low), float(high)


# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Result:
  """One configuration over seeds: per-seed per-dataset per-example scores."""

  label: str
  heldout: str
  datasets: list[str]
  chance: float
  tuned: list[list[np.ndarray]]
  untuned: list[list[np.ndarray]]
  seeds: list[int]
  seconds: float

  def summary(self, num_samples: int = 2000) -> dict:
    t = bootstrap(self.tuned, num_samples)
    u = bootstrap(self.untuned, num_samples)
    d = bootstrap(self.tuned, num_samples, baseline=self.untuned)
    return {
        "label": self.label, "heldout": self.heldout, "datasets": self.datasets,
        "chance": 100 * self.chance, "seeds": self.seeds, "seconds": round(self.seconds, 1),
        "tuned": [100 * v for v in t], "untuned": [100 * v for v in u],
        "difference": [100 * v for v in d],
        "tuned_per_seed": [100 * cluster_mean(r) for r in self.tuned],
        "untuned_per_seed": [100 * cluster_mean(r) for r in self.untuned],
        "per_dataset": {name: {"tuned": 100 * float(np.mean([r[i].mean() for r in self.tuned])),
                               "untuned": 100 * float(np.mean([r[i].mean()
                                                               for r in self.untuned]))}
                        for i, name in enumerate(self.datasets)},
    }


class Pretrained:
  """Pretrained parameters per seed, computed once and shared by every configuration."""

  def __init__(self, budget: Budget, progress: bool):
    self.budget, self.progress, self.cache = budget, progress, {}
    self.config = model_config(budget)

  def __call__(self, seed: int):
    if seed not in self.cache:
      self.cache[seed], _ = pretrain(self.config, self.budget, seed, self.progress)
    return self.cache[seed]


def run(heldout: str, seeds: Sequence[int], budget: Budget, *, kind: str = "instructions",
        clusters: Sequence[str] | None = None, label: str | None = None,
        pretrained: Pretrained | None = None, progress: bool = False,
        log=print) -> Result:
  """Pretrain -> tune (training ``clusters``, default every training cluster) -> eval, per seed."""
  registry.ensure_registered()
  start = time.time()
  pretrained = pretrained or Pretrained(budget, progress)
  config = pretrained.config
  allowed = training_clusters(heldout)
  clusters = list(clusters or allowed)
  if bad := [c for c in clusters if c not in allowed]:
    raise ValueError(f"clusters {bad} may not train a model held out on {heldout!r}; "
                     f"allowed: {allowed}")
  specs = [s for s in mixing.training_specs(SUITE, heldout) if s.cluster in clusters]
  names = {s.name for s in mixing.training_specs(SUITE, heldout)} | set(allowed)
  if bad := [n for n, _ in budget.weights if n not in names]:
    raise ValueError(f"mixing weights name {bad}, which are not training clusters or datasets "
                     f"of held-out {heldout!r}; use some of {sorted(names)}")
  if violations := honesty_violations(heldout, specs):
    raise ValueError(f"held-out {heldout!r} breaks the demo's honesty rules: {violations}")
  sets = eval_sets(heldout, kind, budget.eval_examples)
  tuned_runs, untuned_runs = [], []
  for seed in seeds:
    base = pretrained(seed)
    pairs = training_pairs(specs, kind, budget.train_examples, random.Random(seed),
                           {s.name: budget.weight(s) for s in specs})
    tuned, losses = tune(config, base, pairs, budget, seed, progress)
    tuned_runs.append([correct(config, tuned, e) for e in sets])
    untuned_runs.append([correct(config, base, e) for e in sets])
    log(f"  [{label or kind}] seed {seed}: tuning loss {losses[0]:.2f} -> {losses[-1]:.3f}; "
        f"held-out {100 * cluster_mean(tuned_runs[-1]):.1f} tuned vs "
        f"{100 * cluster_mean(untuned_runs[-1]):.1f} untuned")
  return Result(label or kind, heldout, [e.name for e in sets],
                float(np.mean([e.chance for e in sets])), tuned_runs, untuned_runs, list(seeds),
                time.time() - start)


# ----------------------------------------------------------------------------- report


def _ci(v: Sequence[float]) -> str:
  return f"{v[0]:.1f} [{v[1]:.1f}, {v[2]:.1f}]"


def table(summaries: Sequence[dict]) -> str:
  """Markdown: mean [95 % CI] of tuned, untuned and the difference, per-seed values, chance."""
  lines = ["| Run | Tuned | Untuned | Tuned - untuned | Chance | Tuned per seed | "
           "Untuned per seed |", "|---|---|---|---|---|---|---|"]
  for s in summaries:
    lines.append(f"| {s['label']} | {_ci(s['tuned'])} | {_ci(s['untuned'])} | "
                 f"{_ci(s['difference'])} | {s['chance']:.1f} | "
                 f"{', '.join(f'{v:.1f}' for v in s['tuned_per_seed'])} | "
                 f"{', '.join(f'{v:.1f}' for v in s['untuned_per_seed'])} |")
  return "\n".join(lines)


def plot(summaries: Sequence[dict], path: str, title: str, xlabel: str = "") -> str:
  """Tuned and untuned mean ± 95 % CI per run, per-seed dots, the chance line."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(max(4.8, 1.8 + 1.4 * len(summaries)), 3.8))
  xs = np.arange(len(summaries))
  for key, dx, color, marker, label in (
      ("tuned", -0.06, "C0", "o", "instruction-tuned"),
      ("untuned", 0.06, "C1", "s", "untuned (same prompts)")):
    v = np.array([s[key] for s in summaries])
    ax.errorbar(xs + dx, v[:, 0], yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], fmt=marker + "-",
                color=color, capsize=4, label=f"{label}: mean, 95% CI")
    for x, s in zip(xs, summaries, strict=True):
      seeds = s[f"{key}_per_seed"]
      ax.scatter([x + 3 * dx] * len(seeds), seeds, s=10, color=color, alpha=0.5)
  ax.axhline(summaries[0]["chance"], color="gray", ls=":", label="chance")
  ax.set_xticks(xs, [s["label"] for s in summaries], fontsize=8)
  ax.set_xlim(-0.5, len(summaries) - 0.5)
  ax.set_ylabel(f"held-out {summaries[0]['heldout']} accuracy (%)")
  ax.set_xlabel(xlabel)
  import textwrap
  ax.set_title("\n".join(textwrap.wrap(title + " (dots: seeds)", 60)), fontsize=9)
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def write(summaries: Sequence[dict], out_dir: str, stem: str, title: str, xlabel: str = ""
          ) -> dict[str, str]:
  os.makedirs(out_dir, exist_ok=True)
  paths = {"md": os.path.join(out_dir, f"{stem}.md"), "json": os.path.join(out_dir, f"{stem}.json"),
           "png": os.path.join(out_dir, f"{stem}.png")}
  with open(paths["md"], "w") as f:
    f.write(f"# {title}\n\n{table(summaries)}\n")
  with open(paths["json"], "w") as f:
    json.dump(list(summaries), f, indent=1)
  plot(summaries, paths["png"], title, xlabel)
  return paths


def cluster_counts(heldout: str) -> list[int]:
  n = len(training_clusters(heldout))
  return sorted({k for k in (1, 2, 4) if k < n} | {n})


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
  """``'a=3,b=0.5'`` -> ``(("a", 3.0), ("b", 0.5))``; names are checked when the run starts."""
  out = []
  for item in filter(None, (x.strip() for x in text.split(","))):
    name, sep, value = item.partition("=")
    try:
      out.append((name.strip(), float(value)))
    except ValueError:
      sep = ""
    if not sep or not name.strip():
      raise ValueError(f"bad mixing weight {item!r}: write name=multiplier, e.g. "
                       "reading_comprehension=3")
  return tuple(out)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--heldout", default="nli")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
  parser.add_argument("--output_dir", default="demo_out/experiment")
  parser.add_argument("--ablations", action="store_true",
                      help="also the cluster-count and instruction-format ablations")
  parser.add_argument("--clusters", default=None,
                      help="comma-separated training clusters of the main run (default: all)")
  for field in dataclasses.fields(Budget):
    if field.type in ("int", "float"):
      parser.add_argument(f"--{field.name}", type={"int": int, "float": float}[field.type],
                          default=None, help="overrides the preset")
  parser.add_argument("--weights", default=None,
                      help="mixing weights overriding the preset's, e.g. "
                           "'reading_comprehension=3,world_passage_yesno=2' (name=multiplier of "
                           "train_examples; a cluster's and a dataset's weights multiply)")
  parser.add_argument("--no_progress", action="store_true")
  return parser


def _budget(args: argparse.Namespace) -> Budget:
  """The preset's budget with the command line's overrides."""
  overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Budget)
               if f.type in ("int", "float") and getattr(args, f.name) is not None}
  if args.weights is not None:
    overrides["weights"] = parse_weights(args.weights)
  return dataclasses.replace(PRESETS[args.preset], **overrides)


def _ablations(args: argparse.Namespace, seeds: list[int], budget: Budget, pre: Pretrained,
               main_run: dict, progress: bool) -> dict:
  """The cluster-count and instruction-format ablations; {name: written paths}."""
  out = {}
  clusters = training_clusters(args.heldout)
  counts = []
  for k in cluster_counts(args.heldout):
    label = f"{k}" if k < len(clusters) else f"{k} (all)"
    counts.append(main_run if k == len(clusters) else run(
        args.heldout, seeds, budget, clusters=clusters[:k], label=label, pretrained=pre,
        progress=progress).summary())
    counts[-1] = dict(counts[-1], label=label)
  out["clusters"] = write(counts, args.output_dir, "ablation_clusters",
                          f"Held-out {args.heldout} vs number of training clusters "
                          f"({' + '.join(clusters)})", "training clusters")
  print(table(counts))
  formats = [dict(main_run, label="instructions")]
  for kind in KINDS[1:]:
    formats.append(run(args.heldout, seeds, budget, kind=kind, label=kind.replace("_", " "),
                       pretrained=pre, progress=progress).summary())
  out["formats"] = write(formats, args.output_dir, "ablation_formats",
                         f"Held-out {args.heldout}: instruction format of the training data",
                         "finetuning format")
  print(table(formats))
  return out


def main(argv: list[str] | None = None) -> dict:
  args = _parser().parse_args(argv)
  registry.ensure_registered()
  budget = _budget(args)
  chosen = args.clusters.split(",") if args.clusters else None
  if args.ablations and chosen:
    raise ValueError("--ablations runs from every training cluster; drop --clusters")
  seeds = list(range(args.seeds))
  progress = not args.no_progress
  pre = Pretrained(budget, progress)
  print(f"== FLAN in miniature: held-out cluster {args.heldout!r}, {len(seeds)} seeds, "
        f"{args.preset} budget {budget}")
  print(f"   training clusters: {training_clusters(args.heldout)}")
  main_run = run(args.heldout, seeds, budget, clusters=chosen,
                 label=" + ".join(chosen) if chosen else "all clusters", pretrained=pre,
                 progress=progress).summary()
  out = {"main": write([main_run], args.output_dir, "demo",
                       f"Held-out {args.heldout}: instruction tuning vs untuned, "
                       f"{len(seeds)} seeds")}
  print(table([main_run]))
  if args.ablations:
    out |= _ablations(args, seeds, budget, pre, main_run, progress)
  for paths in out.values():
    print("wrote " + ", ".join(paths.values()))
  return out


if __name__ == "__main__":
  main()
