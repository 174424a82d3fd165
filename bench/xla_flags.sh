#!/usr/bin/env bash
# XLA:CPU flags, one child of bench/model_step.py each (pinned to core 1, blocked_ce + torch
# interleaved); prints: flags, jax tokens/s, torch tokens/s, torch_ratio, jax step seconds.
# Usage: bash bench/xla_flags.sh   (from the repo root)
for f in "" --xla_cpu_enable_fast_math=true --xla_cpu_use_thunk_runtime=false --xla_cpu_use_xnnpack=true --xla_cpu_use_onednn=true --xla_cpu_enable_concurrency_optimized_scheduler=true; do
  XLA_FLAGS="$f" timeout 600 taskset -c 1 .venv/bin/python bench/model_step.py --child --threads 1 --steps 3 --variants blocked_ce --batch 4 --seq 512 2>/dev/null | tail -1 | python3 -c "
import json,sys; r=json.load(sys.stdin); t=r['tokens_per_s']; print(repr('$f' or 'none'), round(t['blocked_ce']), round(t['torch']), round(t['blocked_ce']/t['torch'],3), [round(x,2) for x in r['times']['blocked_ce']])" || echo "failed $f"
done
