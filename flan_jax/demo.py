"""``make demo``: FLAN in miniature on the embedded offline suite, end to end.

1. The data: the leave-one-cluster-out mixture for a held-out cluster (its tasks and capped
   rates), rendered training examples, the held-out evaluation tasks, a JSONL export of both.
2. Pretraining (the paper starts from a pretrained LM): the tiny preset as a plain LM on the
   offline world's corpus (``flan_jax.train`` with ``gin/runs/demo_pretrain.gin``).
3. Instruction tuning: that model finetuned on the mixture (``gin/runs/demo.gin``).
4. Zero-shot evaluation of the held-out cluster by rank classification (``flan_jax.eval``'s
   report, every template), against the untuned (pretrained) model on the GPT-3-style
   continuation prompts as in the paper, and chance; table and plot in ``OUTPUT_DIR/eval``.
5. The 3-seed experiment of :mod:`flan_jax.demo_experiment` (pretrain, tune and evaluate per
   seed on the library's pieces; the same prompts for tuned and untuned; bootstrap 95 %
   intervals over seeds and examples). ``--seeds 0`` skips it; ``--experiment``
   (``make demo-experiment``) runs it instead of 2-4; ``--ablations``: ``make demo-ablations``.

    python -m flan_jax.demo [--heldout nli] [--output_dir demo_out] [--pretrain_steps 300]
                            [--train_steps 300] [--experiment [--seeds 3] [--ablations]]
"""

from __future__ import annotations

import argparse
import json
import os

import seqio

from flan_jax import export_data
from flan_jax.data import registry


def _print_examples(name: str, split: str, n: int) -> None:
  rows, _ = export_data.records(name, split, seed=0, num_examples=n)
  for row in rows:
    print(f"--- {row['task']} (template {row['template_idx']})")
    print(row["inputs"])
    print(f">>> {row['targets']}")


def _parser() -> argparse.ArgumentParser:
  """``flan-jax demo``'s flags."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--heldout", default="nli", help="offline cluster to hold out")
  parser.add_argument("--output_dir", default="demo_out")
  parser.add_argument("--pretrain_steps", type=int, default=300,
                      help="plain-LM steps before instruction tuning (0: start from random init)")
  parser.add_argument("--train_steps", type=int, default=300,
                      help="instruction-tuning steps (0 stops after showing the data)")
  parser.add_argument("--experiment", action="store_true",
                      help="instead of the gin/seqio job: the 3-seed experiment with intervals")
  parser.add_argument("--seeds", type=int, default=3,
                      help="experiment seeds (after the gin job, or alone with --experiment; "
                           "0: no experiment)")
  parser.add_argument("--preset", default="demo", help="experiment budget (demo_experiment)")
  parser.add_argument("--ablations", action="store_true", help="also the experiment's ablations")
  return parser


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)

  registry.ensure_registered()
  train_name = f"demo_heldout_{args.heldout}_train"
  eval_name = f"demo_heldout_{args.heldout}_eval"
  train = registry.get(train_name)
  evaluation = registry.get(eval_name)

  print(f"== {train_name}: {len(train.tasks)} training tasks (examples-proportional, cap 3000)")
  for task in train.tasks:
    print(f"   {task.name:45s} rate {train.get_rate(task):.0f}")
  print(f"== {eval_name}: {len(evaluation.tasks)} held-out eval tasks")
  for task in evaluation.tasks:
    print(f"   {task.name}")

  print(f"\n== 3 training examples from {train_name}")
  _print_examples(train_name, "train", 3)
  print(f"\n== 2 rank-classification rows from {evaluation.tasks[0].name}")
  _print_examples(evaluation.tasks[0].name, "test", 2)

  os.makedirs(args.output_dir, exist_ok=True)
  for name, split, n in ((train_name, "train", 2000), (eval_name, "test", None)):
    path = os.path.join(args.output_dir, f"{name}.{split}.jsonl")
    count = export_data.export(name, split, path, num_examples=n)
    print(f"wrote {count} examples to {path}")
  vocab = train.tasks[0].output_features["targets"].vocabulary
  print(f"vocabulary: {type(getattr(vocab, 'delegate', vocab)).__name__}, "
        f"{vocab.vocab_size} ids; seqio {seqio.__version__}")
  if not args.train_steps:
    return
  if args.experiment:
    _experiment(args)
    return
  pretrained = os.path.join(args.output_dir, "pretrained")
  model = os.path.join(args.output_dir, "model")
  if args.pretrain_steps:
    print(f"\n== pretraining gin/runs/demo_pretrain.gin (plain LM on offline_world_lm) for "
          f"{args.pretrain_steps} steps -> {pretrained}")
    _train("gin/runs/demo_pretrain.gin", [f"MODEL_DIR = '{pretrained}'",
                                          f"TRAIN_STEPS = {args.pretrain_steps}"], pretrained)
    start = [f"INITIAL_CHECKPOINT_PATH = '{pretrained}/checkpoint_{args.pretrain_steps}'",
             f"TRAIN_STEPS_RELATIVE = {args.train_steps}"]
  else:
    start = [f"TRAIN_STEPS = {args.train_steps}"]
    _save_initial(pretrained)
  print(f"\n== instruction tuning gin/runs/demo.gin on {train_name} for {args.train_steps} steps "
        f"-> {model}")
  _train("gin/runs/demo.gin", [f"MODEL_DIR = '{model}'",
                               f"MIXTURE_OR_TASK_NAME = '{train_name}'", *start], model)
  _evaluate(eval_name, model, pretrained, os.path.join(args.output_dir, "eval"))
  if args.seeds:
    print(f"\n== the experiment over {args.seeds} seeds (flan_jax.demo_experiment): tuned vs "
          "untuned on the same prompts, bootstrap 95 % intervals")
    _experiment(args)


def _experiment(args: argparse.Namespace) -> None:
  from flan_jax import demo_experiment
  demo_experiment.main(["--heldout", args.heldout, "--seeds", str(args.seeds), "--preset",
                        args.preset, "--output_dir", os.path.join(args.output_dir, "experiment")]
                       + (["--ablations"] if args.ablations else []))


def _save_initial(out_dir: str) -> None:
  """Without pretraining the untuned baseline is the random init of the finetuning run."""
  import jax

  from flan_jax.models import checkpoint as model_checkpoint
  from flan_jax.models import init_params
  from flan_jax.models.gin_config import config_from_gin
  config = config_from_gin(["gin/runs/demo.gin"])
  seed = 0  # demo.gin's RANDOM_SEED; train() draws the init from split(key(seed))[0].
  params = init_params(config, jax.random.split(jax.random.key(seed))[0])
  model_checkpoint.save_params(out_dir, params, config, step=0)


def _evaluate(eval_name: str, model: str, baseline: str, out_dir: str) -> None:
  """The tuned model on the instruction templates; the untuned one, as in the paper, on the
  GPT-3-style continuation prompts where the datasets define them (same examples)."""
  from flan_jax import eval as eval_lib
  baseline_name = f"{eval_name}_continuations"
  print(f"\n== zero-shot evaluation of the held-out cluster: {eval_name} (rank classification; "
        f"test split, best template chosen on validation) -> {out_dir}; the untuned model on "
        f"the continuation prompts of {baseline_name}")
  tuned = eval_lib.evaluate(eval_name, model, os.path.join(out_dir, "tuned"), report=False)
  untuned = eval_lib.evaluate(baseline_name, baseline, os.path.join(out_dir, "untuned"),
                              dev_split=None, report=False)
  results = {"model": tuned["results"]["model"], "untuned": untuned["results"]["model"]}
  out = {"paths": eval_lib.write_report(results, tuned["chance"], "test", "validation", out_dir)}
  with open(out["paths"]["report_md"]) as f:
    report = f.read()
  print(report.split("\n## ", 1)[1] if "\n## " in report else report)
  for name in ("report_md", "report_json", "report_png"):
    print(f"wrote {out['paths'][name]}")


def _train(gin_file: str, bindings: list[str], model_dir: str) -> None:
  """``python -m flan_jax.train --gin_file=... --gin.NAME=VALUE ...``, in this process."""
  import gin
  from absl import logging as absl_logging

  from flan_jax import train  # Heavy (JAX, orbax): only when training.
  absl_logging.set_verbosity(absl_logging.WARNING)
  gin.clear_config()
  # A rerun of the demo keeps its finished models (their checkpoints already at TRAIN_STEPS).
  train.parse_gin([gin_file], [*bindings, "ALLOW_NOTHING_TO_DO = True"])
  train.check_required_macros()
  gin.get_configurable(train.train)()
  with open(os.path.join(model_dir, train.METRICS_FILE)) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  losses = [(r["step"], r["loss"]) for r in rows if "loss" in r]
  if losses:
    head, tail = losses[: max(1, len(losses) // 10)], losses[-max(1, len(losses) // 10):]
    first = sum(v for _, v in head) / len(head)
    last = sum(v for _, v in tail) / len(tail)
    print(f"loss: {first:.3f} (steps {head[0][0]}-{head[-1][0]}) -> {last:.3f} "
          f"(steps {tail[0][0]}-{tail[-1][0]}){'  falling' if last < first else ''}")


if __name__ == "__main__":
  main()
