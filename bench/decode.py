"""Greedy decoding with the KV cache (flan_jax.inference.decoding) vs. recomputing the prefix every
token.

    .venv/bin/python bench/decode.py [--new_tokens 64] [--prompt 128] [--batch 4] [--repeats 3]

(a) ``decoding.decode``: one prefill call, then one cached step per token inside a jit'ed
    ``lax.while_loop``;
(b) recompute: a jit'ed full forward pass over the whole padded sequence (prompt + new_tokens
    slots, so it compiles once; slots past the current length are padding) for every new token,
    argmax at the current position, driven from Python.
Both decode a prefix-LM prompt of random tokens with a ~29M-matmul-parameter Llama-shaped model in
float32; EOS is made unreachable so both generate every token. Both are compiled before timing and
must produce identical tokens. Last line: ``speedup=<(b) seconds / (a) seconds>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.inference import decoding
from flan_jax.models import Decoder, DecoderConfig, init_params

CONFIG = DecoderConfig(vocab_size=32000, num_layers=4, d_model=512, num_heads=8, head_dim=64,
                       d_ff=1408, activation="swiglu", position="rope", tie_embeddings=False,
                       scale_tied_logits=False, dtype="float32", scan_layers=False)


def cached(cfg: DecoderConfig, params, prompts: jax.Array, new_tokens: int):
  lengths = jnp.full((prompts.shape[0],), prompts.shape[1], jnp.int32)

  def run():
    out = decoding.decode(cfg, params, prompts, lengths, max_new_tokens=new_tokens,
                          eos_id=cfg.vocab_size)  # Unreachable: every row decodes all tokens.
    return np.asarray(out["tokens"])

  return run


def recompute(cfg: DecoderConfig, params, prompts: jax.Array, new_tokens: int):
  b, p = prompts.shape
  slots = jnp.arange(p + new_tokens)

  @jax.jit
  def step(buf, length):
    """Full forward over all P + N slots (padding past ``length``); argmax at ``length - 1``."""
    logits = Decoder(cfg).apply(
        {"params": params}, buf, decoder_segment_ids=jnp.broadcast_to(slots < length, buf.shape),
        decoder_causal_attention=jnp.broadcast_to(slots < p, buf.shape))
    token = jnp.argmax(logits[:, length - 1], axis=-1).astype(jnp.int32)
    return jax.lax.dynamic_update_slice(buf, token[:, None], (0, length)), token

  def run():
    buf = jnp.pad(prompts, ((0, 0), (0, new_tokens)))
    out = []
    for i in range(new_tokens):
      buf, token = step(buf, jnp.int32(p + i))
      out.append(token)
    return np.asarray(jnp.stack(out, axis=1))

  return run, lambda: step(jnp.pad(prompts, ((0, 0), (0, new_tokens))), jnp.int32(p))


def timed(fn) -> tuple[float, np.ndarray]:
  t = time.perf_counter()
  out = fn()
  return time.perf_counter() - t, out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--new_tokens", type=int, default=64)
  parser.add_argument("--prompt", type=int, default=128)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=3, help="timed runs of the cached decode")
  args = parser.parse_args(argv)
  cfg = CONFIG
  n = cfg.num_layers * cfg.matmul_params_per_layer() + cfg.vocab_size * cfg.d_model
  print(f"jax {jax.__version__} devices={jax.devices()}")
  print(f"config: {cfg}")
  print(f"matmul params N={n / 1e6:.1f}M; batch {args.batch}, prompt {args.prompt} tokens, "
        f"{args.new_tokens} new tokens (greedy)")

  params = jax.jit(init_params, static_argnums=0)(cfg, jax.random.key(0))
  prompts = jax.random.randint(jax.random.key(1), (args.batch, args.prompt), 2, cfg.vocab_size)
  prompts = prompts.at[:, 0].set(0)  # seqio's BOS slot.
  run_cached = cached(cfg, params, prompts, args.new_tokens)
  run_recompute, compile_recompute = recompute(cfg, params, prompts, args.new_tokens)

  compile_s = [timed(run_cached)[0], timed(lambda: jax.block_until_ready(compile_recompute()))[0]]
  cache_t, recompute_t = [], []
  for i in range(args.repeats):  # The slow baseline runs once, in the middle of the cached runs.
    t, cache_tokens = timed(run_cached)
    cache_t.append(t)
    if i == args.repeats // 2:
      t, recompute_tokens = timed(run_recompute)
      recompute_t.append(t)
  np.testing.assert_array_equal(cache_tokens, recompute_tokens)
  tokens = args.batch * args.new_tokens
  rows = [("kv-cache decode", cache_t, compile_s[0]), ("full recompute", recompute_t, compile_s[1])]
  print(f"{'method':<16} {'median s':>9} {'ms/step':>8} {'tokens/s':>9} {'warm-up s':>10}  runs")
  for name, ts, warm in rows:
    med = statistics.median(ts)
    print(f"{name:<16} {med:>9.2f} {1e3 * med / args.new_tokens:>8.1f} {tokens / med:>9.1f} "
          f"{warm:>10.1f}  {[round(t, 2) for t in ts]}")
  print("tokens identical: True")
  print(f"speedup={statistics.median(recompute_t) / statistics.median(cache_t):.1f}")


if __name__ == "__main__":
  main()
