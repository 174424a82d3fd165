"""``make demo``: the main job on the embedded offline suite.

1. The data: the leave-one-cluster-out mixture for a held-out cluster (its tasks and capped
   rates), rendered training examples, the held-out evaluation tasks, a JSONL export of both.
2. Instruction tuning: the tiny preset finetuned on that mixture (``gin/runs/demo.gin``), with
   the loss printed at the start and the end. Held-out evaluation comes with the eval issue.

    python -m flan_jax.demo [--heldout nli] [--output_dir demo_out] [--train_steps 300]
"""

from __future__ import annotations

import argparse
import json
import os

import seqio

from flan_jax import export_data, registry


def _print_examples(name: str, split: str, n: int) -> None:
  rows, _ = export_data.records(name, split, seed=0, num_examples=n)
  for row in rows:
    print(f"--- {row['task']} (template {row['template_idx']})")
    print(row["inputs"])
    print(f">>> {row['targets']}")


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--heldout", default="nli", help="offline cluster to hold out")
  parser.add_argument("--output_dir", default="demo_out")
  parser.add_argument("--train_steps", type=int, default=300, help="0 skips the finetuning")
  args = parser.parse_args(argv)

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
  if args.train_steps:
    _finetune(train_name, os.path.join(args.output_dir, "model"), args.train_steps)


def _finetune(mixture: str, model_dir: str, steps: int) -> None:
  from flan_jax import train  # Heavy (JAX, orbax): only when training.
  print(f"\n== finetuning gin/runs/demo.gin on {mixture} for {steps} steps -> {model_dir}")
  try:
    train.main(["--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{model_dir}'",
                f"--gin.MIXTURE_OR_TASK_NAME='{mixture}'", f"--gin.TRAIN_STEPS={steps}"])
  except SystemExit as e:  # absl's app.run exits when training is done
    if e.code not in (0, None):
      raise
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
