"""Train-step throughput of the flan_jax decoder vs. attainable matmul FLOP/s and PyTorch.

    .venv/bin/python bench/model_step.py [--steps 4] [--dtype float32]

(a) attainable FLOP/s: best of jax f32/bf16 2048^3 matmuls on this machine;
(b) model FLOP/s of a jit'ed AdamW train step of a ~30M-parameter Llama-shaped config, counted with
    the PaLM formula 6N + attention, attention halved for causal masks (MaxText's convention;
    N = matmul parameters incl. the output projection, not the embedding gather);
(c) the same config and batch as ``transformers.LlamaForCausalLM`` + ``torch.optim.AdamW`` (f32).
jax and torch steps are interleaved so machine load hits both alike; medians are reported.
Last line: ``mfu=<b/a> torch_ratio=<flan_jax tokens/s ÷ torch tokens/s>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flan_jax.model_info import measured_matmul_flops
from flan_jax.models import Decoder, DecoderConfig, init_params

BATCH, SEQ = 8, 512
CONFIG = DecoderConfig(vocab_size=8192, num_layers=8, d_model=512, num_heads=8, head_dim=64,
                       d_ff=1408, activation="swiglu", position="rope", tie_embeddings=False,
                       scale_tied_logits=False, dtype="float32", scan_layers=False)


def jax_step(cfg: DecoderConfig):
  model = Decoder(cfg)
  tx = optax.adamw(1e-4)
  params = init_params(cfg, jax.random.key(0))
  opt_state = tx.init(params)

  def loss_fn(p, tokens):
    logits = model.apply({"params": p}, tokens[:, :-1])
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1))

  @jax.jit
  def step(p, o, tokens):
    loss, grads = jax.value_and_grad(loss_fn)(p, tokens)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  tokens = jax.random.randint(jax.random.key(1), (BATCH, SEQ + 1), 0, cfg.vocab_size)
  state = [params, opt_state]

  def run():
    state[0], state[1], loss = step(state[0], state[1], tokens)
    loss.block_until_ready()

  return run


def torch_step(cfg: DecoderConfig):
  import torch
  import transformers
  torch.manual_seed(0)
  hf = transformers.LlamaConfig(
      vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
      num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
      num_key_value_heads=cfg.kv_heads, head_dim=cfg.head_dim, tie_word_embeddings=False,
      max_position_embeddings=SEQ + 1)
  model = transformers.LlamaForCausalLM(hf).train()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
  tokens = torch.randint(0, cfg.vocab_size, (BATCH, SEQ + 1))

  def run():
    out = model(tokens[:, :-1], labels=None)
    logp = torch.log_softmax(out.logits, -1)
    loss = -logp.gather(-1, tokens[:, 1:, None]).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

  return run


def timed(fn) -> float:
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--steps", type=int, default=4)
  parser.add_argument("--dtype", default="float32", help="flan_jax compute dtype")
  parser.add_argument("--no_torch", action="store_true")
  args = parser.parse_args(argv)
  cfg = CONFIG.replace(dtype=args.dtype)

  peaks = {d: measured_matmul_flops(d, n=2048, reps=5) for d in ("float32", "bfloat16")}
  peak = max(peaks.values())
  flops_per_token = cfg.train_flops_per_token(SEQ, causal=True)
  n = cfg.num_layers * cfg.matmul_params_per_layer() + cfg.vocab_size * cfg.d_model
  print(f"jax {jax.__version__} devices={jax.devices()}")
  print(f"matmul 2048^3: f32 {peaks['float32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peaks['bfloat16'] / 1e9:.1f} GFLOP/s -> attainable {peak / 1e9:.1f} GFLOP/s")
  print(f"config: {cfg}")
  print(f"matmul params N={n / 1e6:.1f}M, train FLOPs/token={flops_per_token / 1e6:.1f}M "
        f"(6N + 6*L*H*Dh*T causal-halved), batch {BATCH} x seq {SEQ}")

  run_jax = jax_step(cfg)
  run_jax()  # Compile.
  run_jax()
  run_torch = None if args.no_torch else torch_step(cfg)
  if run_torch:
    import torch
    torch.set_num_threads(max(1, len(jax.devices()) and __import__("os").cpu_count()))
    run_torch()
  jax_t, torch_t = [], []
  for _ in range(args.steps):
    jax_t.append(timed(run_jax))
    if run_torch:
      torch_t.append(timed(run_torch))
  tokens = BATCH * SEQ
  jax_tps = tokens / statistics.median(jax_t)
  model_flops = jax_tps * flops_per_token
  mfu = model_flops / peak
  print(f"flan_jax step: median {statistics.median(jax_t):.2f}s ({jax_t}) -> "
        f"{jax_tps:.0f} tokens/s, {model_flops / 1e9:.1f} model GFLOP/s")
  ratio = float("nan")
  if run_torch:
    torch_tps = tokens / statistics.median(torch_t)
    ratio = jax_tps / torch_tps
    print(f"torch step: median {statistics.median(torch_t):.2f}s ({torch_t}) -> "
          f"{torch_tps:.0f} tokens/s, {torch_tps * flops_per_token / 1e9:.1f} model GFLOP/s")
  print(f"mfu={mfu:.3f} torch_ratio={ratio:.3f}")


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
