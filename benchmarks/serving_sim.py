"""Speed of the serving simulator: 1,000-request runs (target: well under a second each).

Runs a closed loop at concurrency 1, 16 and 256 and an open loop at 2x capacity, 256 prompt and
128 output tokens, with vLLM's default policy and a 7B-in-FP16-like step cost (14 GB over
1 TB/s = 14 ms per step; 14 GFLOP per token at 150 TFLOPS). Exit status 1 when any run takes
0.5 s or more.

    .venv/bin/python benchmarks/serving_sim.py
"""

from __future__ import annotations

import sys
import time

from rigkit.estimate.serving import StepCost, Workload, policy, simulate

TARGET_S = 0.5


def main() -> int:
    cost = StepCost.from_rates(
        weight_bytes=14e9,
        flops_per_token=14e9,
        kv_bytes_per_token=131072,
        attn_flops_per_position=4 * 32 * 4096,
        bandwidth_bytes_s=1e12,
        flops_s=150e12,
    )
    pol = policy("vllm")
    worst = 0.0
    cases = [Workload(256, 128, concurrency=c, requests=1000) for c in (1, 16, 256)]
    cases.append(Workload(256, 128, concurrency=None, rate=200.0, requests=1000))
    for wl in cases:
        t0 = time.perf_counter()
        r = simulate(cost, pol, wl)
        dt = time.perf_counter() - t0
        worst = max(worst, dt)
        what = f"rate {wl.rate:g}/s" if wl.rate else f"concurrency {wl.concurrency}"
        print(
            f"{what:>16}: {dt * 1000:7.1f} ms for {r.completed} requests "
            f"({r.output_tokens:,} tokens); predicts {r.output_tokens_per_s:,.0f} tok/s, "
            f"TTFT p50 {r.ttft_ms.p50:,.1f} ms, TPOT p50 {r.tpot_ms.p50:.2f} ms"
        )
    ok = worst < TARGET_S
    print(
        ("PASS" if ok else "FAIL") + f": slowest run {worst * 1000:.1f} ms (target < {TARGET_S} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
