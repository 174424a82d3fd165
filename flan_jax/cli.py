"""The ``flan-jax`` command.

    flan-jax list-tasks [FILTER]        registered tasks (glob like 'rte_*' or a regex)
    flan-jax list-mixtures [FILTER]     registered mixtures
    flan-jax show NAME [-n 3]           a few rendered examples of a task or mixture
    flan-jax export-data NAME ...       a split as JSONL (see flan_jax.export_data)
    flan-jax datasets [--cluster C]     the dataset table: cluster, TFDS source, size, rate
    flan-jax check-sizes --tfds_data_dir DIR   static sizes vs prepared TFDS metadata
    flan-jax check-real DIR             the tasks on real rows of original releases vs the reference
    flan-jax train --gin_file=gin/runs/demo.gin --gin.MODEL_DIR="'DIR'"   finetune (t5x flags)
    flan-jax eval --gin_file=gin/runs/eval.gin --gin.CHECKPOINT_PATH=...   evaluate (t5x flags)
    flan-jax infer --gin_file=gin/runs/infer.gin --gin.CHECKPOINT_PATH=...   predictions to JSONL
    flan-jax cache-tasks --tasks=T --output_cache_dir=DIR   seqio's offline cache (needs
        `pip install flan_jax[cache]`: apache-beam)
    flan-jax model-info --gin_file=gin/models/tiny.gin   parameters and per-device bytes
    flan-jax plan --gin_file=... --devices 128 --target tpu_v4   compile-time fit/FLOPs plan
    flan-jax import-hf HF_DIR OUT_DIR / export-hf MODEL_DIR HF_DIR   Hugging Face interop
    flan-jax lm-eval --model_dir DIR --tasks T   lm-evaluation-harness tasks (flan_jax backend)

Data commands take ``--module_import=my_team.tasks`` (repeatable) to register your own tasks.
Imports are lazy, so ``flan-jax --help`` answers at once; logs are quiet unless ``--verbosity``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def _prepare(args: argparse.Namespace) -> None:
  """Quiet logs, TFDS dir, the project's and the user's task modules."""
  from absl import logging as absl_logging

  from flan_jax.data import registry
  if args.verbosity is None:
    absl_logging.set_verbosity(absl_logging.ERROR)
  else:
    absl_logging.set_verbosity(args.verbosity)
  if getattr(args, "tfds_data_dir", None):
    import seqio
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  registry.ensure_registered()
  registry.import_modules(getattr(args, "module_import", None))


def _list(args: argparse.Namespace) -> None:
  from flan_jax.data import registry
  names = (registry.list_tasks if args.command == "list-tasks" else registry.list_mixtures)(
      args.filter)
  for name in names:
    print(name)
  print(f"{len(names)} {'tasks' if args.command == 'list-tasks' else 'mixtures'}",
        file=sys.stderr)


def _show(args: argparse.Namespace) -> None:
  from flan_jax import export_data
  rows, _ = export_data.records(args.name, args.split, seed=args.seed, num_examples=args.num)
  for i, row in enumerate(rows):
    meta = f"task={row['task']} template={row['template_idx']}"
    if "idx" in row:
      meta += f" idx={row['idx']} is_correct={row['is_correct']}"
    print(f"===== example {i} ({meta})")
    print(row["inputs"])
    print(f"----- target\n{row['targets']}")
    if "options" in row and "idx" not in row:
      print(f"----- options: {row['options']}")


def _datasets(args: argparse.Namespace) -> None:
  from flan_jax.data import mixing
  from flan_jax.data import spec as dataset_spec
  rows = []
  for spec in dataset_spec.DATASETS.values():
    if args.cluster and spec.cluster != args.cluster:
      continue
    if spec.suite != args.suite:
      continue
    source = getattr(spec.source, "tfds_dataset", None)
    rows.append((spec.cluster, spec.name, source.name if source else "(generated)",
                 "cls" if spec.is_classification else "gen", spec.metric,
                 spec.num_train_examples,
                 "eval-only" if spec.eval_only else f"{mixing.rate(spec):.0f}"))
  header = ("cluster", "dataset", "source", "type", "metric", "train", "rate")
  widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
  for row in [header, *rows]:
    print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def _check_sizes(args: argparse.Namespace) -> None:
  from flan_jax.data import sizes
  from flan_jax.data import spec as dataset_spec
  bad = 0
  if args.flan2022:  # the Flan 2022 size table against local files and TFDS metadata
    from flan_jax.tasks.flan2022 import registry as f22
    for source, path in (item.split("=", 1) for item in args.data_dir):
      from flan_jax.data import local_sources as sources
      sources.set_data_dir(source, path)
    only = None if args.flan2022 == "all" else args.flan2022.split(",")
    for name, expected, actual in f22.check_sizes(args.tfds_data_dir, only):
      status = ("not prepared" if actual is None else "ok" if actual == expected else
                "not in the table" if expected is None else "MISMATCH")
      bad += status == "MISMATCH"
      print(f"{name:60s} table={expected} data={actual} {status}")
    sys.exit(1 if bad else 0)
  for spec in dataset_spec.DATASETS.values():
    source = spec.source
    if not isinstance(source, dataset_spec.TfdsSource) or not spec.has_train_split:
      continue  # an eval-only dataset without a train split (wsc273) has no rate to check
    split = source.split_map["train"]
    actual = sizes.verify(source.tfds_dataset.name, split, args.tfds_data_dir)
    expected = sizes.full_size(source.tfds_dataset.name, split)
    status = "not prepared" if actual is None else ("ok" if actual == expected else "MISMATCH")
    bad += status == "MISMATCH"
    print(f"{spec.name:40s} table={expected} data={actual} {status}")
  sys.exit(1 if bad else 0)


# Subcommands that own their flags: `flan-jax CMD ...` runs `module.function(argv)`.
DELEGATED = {
    "train": ("flan_jax.train", "main"),
    "eval": ("flan_jax.eval", "main"),
    "infer": ("flan_jax.infer", "main"),
    "cache-tasks": ("flan_jax.training.batches", "cache_tasks_main"),
    "export-data": ("flan_jax.export_data", "main"),
    "plot": ("flan_jax.evaluation.plot", "main"),
    "model-info": ("flan_jax.model_info", "main"),
    "plan": ("flan_jax.plan", "cli_main"),
    "import-hf": ("flan_jax.interop.hf", "main_import"),
    "export-hf": ("flan_jax.interop.hf", "main_export"),
    "lm-eval": ("flan_jax.evaluation.lm_eval", "main"),
    "check-real": ("flan_jax.check_real", "main"),
}


def _data_command(sub: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
  p = sub.add_parser(name, **kwargs)
  p.add_argument("--module_import", action="append", default=[], metavar="MODULE",
                 help="import a module that registers tasks/mixtures (repeatable)")
  p.add_argument("--verbosity", type=int, default=None, help="absl log level (default: errors)")
  return p


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="flan-jax", description="FLAN instruction tuning in JAX.")
  sub = parser.add_subparsers(dest="command", required=True)
  for name in DELEGATED:
    sub.add_parser(name, help=f"see `flan-jax {name} --help`", add_help=False)
  for name in ("list-tasks", "list-mixtures"):
    p = _data_command(sub, name, help=f"{name.replace('-', ' ')} (optionally filtered)")
    p.add_argument("filter", nargs="?", default=None, help="glob ('rte_*') or regex")
    p.set_defaults(fn=_list)
  p = _data_command(sub, "show", help="print rendered examples of a task or mixture")
  p.add_argument("name")
  p.add_argument("--split", default="validation")
  p.add_argument("-n", "--num", type=int, default=3)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--tfds_data_dir", default=None)
  p.set_defaults(fn=_show)
  p = _data_command(sub, "datasets", help="table of registered datasets")
  p.add_argument("--cluster", default=None)
  p.add_argument("--suite", default="flan", choices=("flan", "offline"))
  p.set_defaults(fn=_datasets)
  p = _data_command(sub, "check-sizes", help="compare static split sizes with prepared TFDS data")
  p.add_argument("--tfds_data_dir", default=None)
  p.add_argument("--flan2022", nargs="?", const="all", default=None, metavar="SOURCES",
                 help="check the Flan 2022 size table (optionally of some sources: cot,niv2)")
  p.add_argument("--data_dir", action="append", default=[], metavar="SOURCE=DIR",
                 help="with --flan2022: a local source's files (niv2=, cot=, t0= or p3=DIR)")
  p.set_defaults(fn=_check_sizes)
  return parser


def main(argv: list[str] | None = None) -> None:
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv and argv[0] in DELEGATED:
    import importlib
    module, function = DELEGATED[argv[0]]
    run = getattr(importlib.import_module(module), function)
    code = _reporting_errors(lambda: run(argv[1:]))
    if type(code) is int and code:  # main_export / lm-eval return their exit status.
      sys.exit(code)
    return
  args = build_parser().parse_args(argv)
  _reporting_errors(lambda: (_prepare(args), args.fn(args)))


def _reporting_errors(fn: Callable[[], Any]) -> Any:
  """Runs ``fn``; an unknown name exits 2 and a self-explaining error exits 1, no traceback."""
  from flan_jax.data import registry
  try:
    return fn()
  except registry.UnknownNameError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except (Exception, KeyboardInterrupt) as e:
    _exit_if_reported(e)
    raise


def stop_message(error: BaseException) -> str | None:
  """One line for a Ctrl-C or a full (or unwritable) disk, which need no traceback; else None.
  Every writer writes under a temporary name and renames when done, so either way no partial
  file is left under a final name."""
  if isinstance(error, KeyboardInterrupt):
    return ("interrupted (Ctrl-C); files being written were discarded (finished ones are "
            "kept): rerun to go on")
  from flan_jax.models.checkpoint import is_disk_error  # After a failure only: loads jax.
  disk = is_disk_error(error)
  if disk is None:
    return None
  where = f" writing {disk.filename}" if disk.filename else ""
  return (f"error: {disk.strerror or disk}{where}; nothing partial was left under a final file "
          "name: free space (or fix the permissions) and rerun")


def _exit_if_reported(error: BaseException) -> None:
  """Errors whose message says it all (missing TFDS data, checkpoint and MODEL_DIR problems, a
  full disk, Ctrl-C) are printed alone, without a traceback (exit code 1; Ctrl-C 130)."""
  text = stop_message(error)
  if text is not None:
    print(text, file=sys.stderr)
    sys.exit(130 if isinstance(error, KeyboardInterrupt) else 1)
  kinds = []
  for module, name in (("flan_jax.data.spec", "MissingDataError"),
                       ("flan_jax.training.checkpoints", "ReportedError")):
    if module in sys.modules:  # Such an error can only exist once its module is imported.
      kinds.append(getattr(sys.modules[module], name))
  if kinds and isinstance(error, tuple(kinds)):
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  main()
