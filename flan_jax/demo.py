"""``make demo``: the main job on the embedded offline suite.

Until the trainer lands this shows the data side end to end: the leave-one-cluster-out mixture
for a held-out cluster (its tasks and capped rates), rendered training examples, the held-out
evaluation tasks, and a JSONL export of both, all offline.

    python -m flan_jax.demo [--heldout nli] [--output_dir demo_out]
"""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
  main()
