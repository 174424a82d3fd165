"""Train-step throughput of the flan_jax decoder vs. the measured matmul peak and PyTorch.

    .venv/bin/python bench/model_step.py [--steps 3] [--dtype float32|bfloat16]
        [--variants dense,blocked,blocked_ce]   # cudnn (GPU, --dtype bfloat16), pallas (TPU)

Config: a ~30M-matmul-parameter Llama-shaped decoder (d 512, 8 layers, 8 heads of 64, SwiGLU
d_ff 1408, vocab 8192, RoPE, untied), batch 8 x 512, AdamW, causal LM loss through
``flan_jax.training.step.loss_fn`` (the trainer's loss). Torch: ``transformers.LlamaForCausalLM`` +
``torch.optim.AdamW`` on the same shapes (``torch.autocast`` bf16 for ``--dtype bfloat16``).

The parent process records the 1-minute load average before and after, and runs two children:
(1) pinned to one core (``taskset -c <core>``, torch with 1 thread): the headline ratio;
(2) on all cores with torch's ``OMP_WAIT_POLICY=PASSIVE`` (its busy-waiting OpenMP threads
collapse when any other process runs). Each child measures its own matmul peak (best of jax
f32/bf16 2048^3 on the same cores), then interleaves the jax variants and the torch step step
by step, so machine load hits all alike; medians are reported. Variants: ``dense`` (the
default attention), ``blocked`` (causal block skipping, ``attention="blocked"``), ``blocked_ce``
(plus the chunked cross-entropy, ``loss_chunk_size=128``); on top of ``blocked_ce``: ``scan``
(``scan_layers``), ``remat_dots`` / ``remat_full`` (remat policies) and ``no_donate`` (the step
without buffer donation), ``cudnn`` / ``pallas`` (the attention core swapped for cuDNN's fused
attention on a GPU, or jax's Pallas TPU flash attention on a TPU; the model refuses them on any
other backend, with the reason). FLOPs: 6N + 12·L·H·Dh·T halved for
causal masks (PaLM / MaxText convention, N = matmul params incl. the output projection).
A run is ``noisy`` when the load average moved by more than 0.5 or exceeded the cores used.
Last line: ``mfu=<x> torch_ratio=<y> torch_ratio_2core=<z> load=<before>-><after>[ noisy]``
for the best variant (mfu and torch_ratio from the pinned run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH, SEQ = 8, 512
VARIANTS = {
    "dense": {},
    "blocked": {"attention": "blocked", "attention_block_q": 256, "attention_block_k": 512},
    "blocked_ce": {"attention": "blocked", "attention_block_q": 256, "attention_block_k": 512,
                   "loss_chunk_size": 128},
}
_BEST = VARIANTS["blocked_ce"]
VARIANTS |= {  # The rest of the step (issue 15 deliverable 3), each on top of blocked_ce.
    "scan": {**_BEST, "scan_layers": True},
    "remat_dots": {**_BEST, "remat_policy": "dots"},
    "remat_full": {**_BEST, "remat_policy": "full"},
    "no_donate": {**_BEST, "donate": False},
    "cudnn": {**_BEST, "attention": "cudnn"},
    "pallas": {**_BEST, "attention": "pallas"},
}


def _config(dtype: str, donate: bool = True, **changes):
  """The benchmark's config (``donate`` is the step's, not the model's: see ``jax_step``)."""
  del donate
  from flan_jax.models import DecoderConfig
  cfg = DecoderConfig(vocab_size=8192, num_layers=8, d_model=512, num_heads=8, head_dim=64,
                      d_ff=1408, activation="swiglu", position="rope", tie_embeddings=False,
                      scale_tied_logits=False, dtype=dtype, scan_layers=False)
  return cfg.replace(**changes)


def jax_step(cfg, batch: int, seq: int, part: str = "step", donate: bool = True):
  """A runner of the jax train step, or of one of its parts (``PARTS``)."""
  import jax
  import optax

  from flan_jax.models import init_params
  from flan_jax.training import losses
  from flan_jax.training import step as trainer
  tx = optax.adamw(1e-4)
  params = init_params(cfg, jax.random.key(0))
  opt_state = tx.init(params)
  tokens = jax.random.randint(jax.random.key(1), (batch, seq + 1), 1, cfg.vocab_size)
  data = {"decoder_input_tokens": tokens[:, :-1], "decoder_target_tokens": tokens[:, 1:]}

  def loss(p, data):
    weights = losses.batch_weights(data, "NUM_REAL_TARGET_TOKENS")
    return trainer.loss_fn(p, data, weights, None, cfg)

  if part == "forward":
    forward = jax.jit(lambda p, d: loss(p, d)[0])
    return lambda: float(forward(params, data))
  if part == "grad":
    grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
    return lambda: float(jax.block_until_ready(grad(params, data))[0][0])

  def step(p, o, data):
    (value, _), grads = jax.value_and_grad(loss, has_aux=True)(p, data)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, value

  step = jax.jit(step, donate_argnums=(0, 1) if donate else ())
  state = [params, opt_state]

  def run():
    state[0], state[1], value = step(state[0], state[1], data)
    return float(value)

  return run


def torch_step(cfg, batch: int, seq: int, bf16: bool, part: str = "step"):
  import torch
  import transformers
  torch.manual_seed(0)
  hf = transformers.LlamaConfig(
      vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
      num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
      num_key_value_heads=cfg.kv_heads, head_dim=cfg.head_dim, tie_word_embeddings=False,
      max_position_embeddings=seq + 1)
  model = transformers.LlamaForCausalLM(hf).train()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
  tokens = torch.randint(1, cfg.vocab_size, (batch, seq + 1))

  def loss():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
      logits = model(tokens[:, :-1]).logits
    logp = torch.log_softmax(logits.float(), -1)
    return -logp.gather(-1, tokens[:, 1:, None]).mean()

  def run():
    if part == "forward":
      with torch.no_grad():
        return float(loss())
    value = loss()
    opt.zero_grad()
    value.backward()
    if part == "step":
      opt.step()
    return float(value)

  return run


PARTS = ("forward", "grad", "step")  # --breakdown: forward; forward + backward; + AdamW update.


def breakdown(args) -> dict:
  """Times each part of the last variant's step and torch's, interleaved (``--breakdown``)."""
  import torch
  torch.set_num_threads(args.threads)

  peak = _matmul_peak()
  name = args.variants.split(",")[-1]
  cfg = _config(args.dtype, **VARIANTS[name])
  runs = {}
  for part in PARTS:
    runs[f"jax {part}"] = jax_step(cfg, args.batch, args.seq, part)
    runs[f"torch {part}"] = torch_step(_config(args.dtype), args.batch, args.seq,
                                       args.dtype == "bfloat16", part)
  times = _interleaved(runs, args.steps)
  tokens = args.batch * args.seq
  return {"peak": peak, "variant": name, "times": times,
          "flops_per_token": _config(args.dtype).train_flops_per_token(args.seq, causal=True),
          "tokens": tokens}


def _report_breakdown(r: dict) -> None:
  """Prints each side's seconds per part and what the matmul peak allows (1/3 of the train
  FLOPs are the forward's)."""
  med = {k: statistics.median(v) for k, v in r["times"].items()}
  flops = r["flops_per_token"] * r["tokens"]
  at_peak = {"forward": flops / 3 / r["peak"], "backward": 2 * flops / 3 / r["peak"],
             "optimizer": 0.0}
  print(f"[breakdown, 1 core, jax variant {r['variant']}] seconds per step (median); "
        f"matmul peak {r['peak'] / 1e9:.1f} GFLOP/s")
  print("| part | jax s | torch s | jax / torch | model FLOPs at the peak, s |")
  print("|---|---|---|---|---|")
  for side in ("jax", "torch"):
    med[f"{side} backward"] = med[f"{side} grad"] - med[f"{side} forward"]
    med[f"{side} optimizer"] = med[f"{side} step"] - med[f"{side} grad"]
  for part in ("forward", "backward", "optimizer", "step"):
    peak_s = at_peak.get(part, flops / r["peak"])
    print(f"| {part} | {med['jax ' + part]:.2f} | {med['torch ' + part]:.2f} | "
          f"{med['jax ' + part] / med['torch ' + part]:.2f} | {peak_s:.2f} |")


def _timed(fn) -> float:
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def _matmul_peak() -> float:
  """The best of jax's f32 and bf16 2048^3 matmul FLOP/s on this process's cores."""
  from flan_jax.training.perf import measured_matmul_flops
  return max(measured_matmul_flops(d, n=2048, reps=3) for d in ("float32", "bfloat16"))


def _interleaved(runs: dict, steps: int) -> dict[str, list[float]]:
  """Each runner called twice (compile, warm-up), then ``steps`` timed rounds over all of them
  in turn, so machine load hits all alike; {name: seconds per call}."""
  for fn in runs.values():
    fn(), fn()
  times: dict[str, list[float]] = {k: [] for k in runs}
  for _ in range(steps):
    for name, fn in runs.items():
      times[name].append(_timed(fn))
  return times


def child(args) -> None:
  """One measurement on the cores this process may use; prints one JSON line."""
  import torch
  torch.set_num_threads(args.threads)
  import jax

  peak = _matmul_peak()
  runs = {}
  for name in args.variants.split(","):
    cfg = _config(args.dtype, **VARIANTS[name])
    runs[name] = jax_step(cfg, args.batch, args.seq,
                          donate=VARIANTS[name].get("donate", True))
  if not args.no_torch:
    runs["torch"] = torch_step(_config(args.dtype), args.batch, args.seq,
                               args.dtype == "bfloat16")
  times = _interleaved(runs, args.steps)
  cfg = _config(args.dtype)
  tokens = args.batch * args.seq
  flops_per_token = cfg.train_flops_per_token(args.seq, causal=True)
  out = {"peak": peak, "threads": args.threads, "cpus": len(os.sched_getaffinity(0)),
         "jax": jax.__version__, "flops_per_token": flops_per_token, "times": times,
         "tokens_per_s": {k: tokens / statistics.median(v) for k, v in times.items()}}
  print(json.dumps(out))


def _child_run(args, cores: str | None, threads: int, extra: list[str] = ()) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), "--child", *extra, "--threads", str(threads),
         "--steps", str(args.steps), "--dtype", args.dtype, "--variants", args.variants,
         "--batch", str(args.batch), "--seq", str(args.seq)] + (
             ["--no_torch"] if args.no_torch else [])
  env = dict(os.environ)
  if cores is not None:
    cmd = ["taskset", "-c", cores] + cmd
  else:
    env["OMP_WAIT_POLICY"] = "PASSIVE"
  out = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if out.returncode:
    sys.exit(f"the measuring child failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def _report(label: str, r: dict) -> dict[str, tuple[float, float]]:
  """Prints a child's figures; {variant: (mfu, torch_ratio)}."""
  tps = r["tokens_per_s"]
  print(f"[{label}] cpus={r['cpus']} torch_threads={r['threads']} "
        f"matmul peak {r['peak'] / 1e9:.1f} GFLOP/s")
  ratios = {}
  for name, v in tps.items():
    gflops = v * r["flops_per_token"] / 1e9
    extra = ""
    if name != "torch":
      mfu = v * r["flops_per_token"] / r["peak"]
      ratio = v / tps["torch"] if "torch" in tps else float("nan")
      ratios[name] = (mfu, ratio)
      extra = f" mfu {mfu:.3f} torch_ratio {ratio:.3f}"
    print(f"  {name:11s} {v:7.0f} tokens/s {gflops:6.1f} model GFLOP/s{extra}  "
          f"steps {[round(t, 2) for t in r['times'][name]]}")
  return ratios


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--variants", default="dense,blocked,blocked_ce")
  parser.add_argument("--batch", type=int, default=BATCH)
  parser.add_argument("--seq", type=int, default=SEQ)
  parser.add_argument("--core", default="1", help="core of the pinned run (taskset -c)")
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--no_2core", action="store_true")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
  parser.add_argument("--breakdown", action="store_true",
                      help="also time forward / backward / optimizer of the last variant and "
                           "torch on one core")
  args = parser.parse_args(argv)
  unknown = set(args.variants.split(",")) - set(VARIANTS)
  if unknown:
    parser.error(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
  if "cudnn" in args.variants.split(",") and args.dtype != "bfloat16":
    parser.error("variant cudnn needs --dtype bfloat16 (cuDNN attention is 16-bit only)")
  if args.child:
    return print(json.dumps(breakdown(args))) if args.breakdown else child(args)

  ncpu = len(os.sched_getaffinity(0))
  load0 = os.getloadavg()[0]
  print(f"config: {_config(args.dtype)}\nbatch {args.batch} x seq {args.seq}, dtype {args.dtype}"
        f", load average before {load0:.2f} ({ncpu} cores)")
  single = _report("1 core", _child_run(args, args.core, 1))
  dual = {} if args.no_2core else _report(f"{ncpu} cores, torch OMP_WAIT_POLICY=PASSIVE",
                                          _child_run(args, None, ncpu))
  if args.breakdown:
    _report_breakdown(_child_run(args, args.core, 1, ["--breakdown"]))
  load1 = os.getloadavg()[0]
  noisy = abs(load1 - load0) > 0.5 or max(load0, load1) > ncpu
  best = max(single, key=lambda k: single[k][0])
  ratio2 = dual[best][1] if best in dual else float("nan")
  print(f"load average after {load1:.2f}{' -> noisy' if noisy else ''}; best variant {best}")
  print(f"mfu={single[best][0]:.3f} torch_ratio={single[best][1]:.3f} "
        f"torch_ratio_2core={ratio2:.3f} load={load0:.2f}->{load1:.2f}"
        + (" noisy" if noisy else ""))


if __name__ == "__main__":
  main()
