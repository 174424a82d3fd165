"""lm-eval multiple choice: lm-eval's own ``HFLM`` vs the flan_jax backend, same HF Llama dir.

    .venv/bin/python bench/lm_eval_backend.py [--docs 24] [--batch 16] [--reps 3]

A random LlamaForCausalLM (d_model 256, 4 layers, 8 x 32 heads, vocab 8,000, float32) with a
Llama-2-style tokenizer trained offline is saved as a Hugging Face directory. An lm-eval YAML task
(local JSON, 4 choices, ~200-token contexts) is built by lm-eval's TaskManager; its
``loglikelihood`` instances go through ``HFLM(pretrained=DIR)`` and
``flan_jax.evaluation.lm_eval.FlanJaxLM(pretrained=DIR)`` (prefix-shared scoring), one thread each,
both
warmed up (compiled) first, then interleaved ``--reps`` times; medians reported. Decisions are
acc (argmax log-likelihood) and acc_norm (per character) per document.
Last line: ``speedup=<hflm/flan_jax> max_abs_diff=<max |ll diff|> same_decisions=<n>/<N>``.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import lm_eval_fixtures as fx  # noqa: E402

YAML = """task: bench_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def build(root: str, docs: int) -> tuple[str, str]:
  """(HF model dir, task include dir)."""
  import torch
  import transformers
  model_dir = os.path.join(root, "hf")
  fx.make_tokenizer("llama2", model_dir)
  torch.manual_seed(0)
  config = transformers.LlamaConfig(
      vocab_size=8000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
      num_attention_heads=8, num_key_value_heads=8, head_dim=32, max_position_embeddings=2048,
      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
  model = transformers.LlamaForCausalLM(config).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" not in name:
        p.mul_(8.0)
  model.save_pretrained(model_dir)
  rng = np.random.default_rng(0)
  words = " ".join(fx.CORPUS[:4]).split()
  rows = []
  for i in range(docs):
    body = " ".join(rng.choice(words, int(rng.integers(45, 60))))
    choices = [" ".join(rng.choice(words, int(rng.integers(1, 3)))) for _ in range(4)]
    rows.append({"question": f"Question {i}: {body}\nAnswer:", "choices": choices,
                 "label": int(rng.integers(4))})
  data = os.path.join(root, "data.jsonl")
  with open(data, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  with open(os.path.join(root, "bench_mc.yaml"), "w") as f:
    f.write(YAML.format(data=data))
  return model_dir, root


def instances(include: str):
  from lm_eval.tasks import TaskManager, get_task_dict
  task = get_task_dict(["bench_mc"], TaskManager(include_path=include))["bench_mc"]
  task.build_all_requests(limit=None, rank=0, world_size=1)
  return task.instances


def decisions(insts, results) -> list[tuple[int, int]]:
  """(acc, acc_norm) argmax per document, as lm-eval's process_results."""
  per_doc: dict[int, list] = {}
  for inst, (ll, _) in zip(insts, results, strict=True):
    per_doc.setdefault(inst.doc_id, []).append((inst.idx, ll, inst.arguments[1]))
  out = []
  for doc in sorted(per_doc):
    rows = sorted(per_doc[doc])
    lls = np.array([r[1] for r in rows])
    lens = np.array([len(r[2].lstrip(" ")) for r in rows])  # Choice without the delimiter.
    out.append((int(np.argmax(lls)), int(np.argmax(lls / lens))))
  return out


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--docs", type=int, default=24)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--reps", type=int, default=3)
  args = parser.parse_args()
  import torch
  torch.set_num_threads(1)
  from lm_eval.models.huggingface import HFLM

  from flan_jax.evaluation.lm_eval import FlanJaxLM
  with tempfile.TemporaryDirectory() as root:
    model_dir, include = build(root, args.docs)
    insts = instances(include)
    n_tokens = []
    backends = {"hflm": HFLM(pretrained=model_dir, device="cpu", batch_size=args.batch,
                             dtype="float32"),
                "flan_jax": FlanJaxLM(pretrained=model_dir, batch_size=args.batch)}
    ctx, _ = backends["flan_jax"].model.encode_pair(*insts[0].arguments)
    n_tokens.append(len(ctx))
    results, times = {}, {name: [] for name in backends}
    for name, lm in backends.items():  # Warm-up (flan_jax compiles here).
      results[name] = lm.loglikelihood(insts, disable_tqdm=True)
    for _ in range(args.reps):
      for name, lm in backends.items():
        start = time.perf_counter()
        results[name] = lm.loglikelihood(insts, disable_tqdm=True)
        times[name].append(time.perf_counter() - start)
  hf_t, ours_t = statistics.median(times["hflm"]), statistics.median(times["flan_jax"])
  diff = max(abs(a[0] - b[0]) for a, b in zip(results["hflm"], results["flan_jax"], strict=True))
  want, got = decisions(insts, results["hflm"]), decisions(insts, results["flan_jax"])
  same = sum(w == g for w, g in zip(want, got, strict=True))
  print(f"{len(want)} docs x 4 choices = {len(insts)} requests; first context {n_tokens[0]} "
        f"tokens; batch {args.batch}; 1 thread each")
  print(f"hflm      median {hf_t:.3f} s  ({', '.join(f'{t:.3f}' for t in times['hflm'])})")
  print(f"flan_jax  median {ours_t:.3f} s  ({', '.join(f'{t:.3f}' for t in times['flan_jax'])})")
  print(f"speedup={hf_t / ours_t:.2f} max_abs_diff={diff:.2e} same_decisions={same}/{len(want)}")


if __name__ == "__main__":
  main()
