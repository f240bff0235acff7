"""Closed loop on a real server: `estimate --serve`'s simulation against `bench serve` on
llama.cpp's llama-server (CPU) with 2 and 4 slots at concurrency 1, 2, 4 and 8.

The model is the random-weight llama of test_serve_e2e_llama.py (8 layers, 512 wide, FFN 1536,
204-token vocabulary, F32), so its sizes are known exactly:

    weights per step = 8 x (4 x 512^2 + 3 x 512 x 1536) x 4 B + 204 x 512 x 4 B
                     = 8 x 3,407,872 x 4 + 417,792 = 109,469,696 B
    FLOP per token   = 2 x (8 x 3,407,872 + 204 x 512) = 54,734,848
    KV per token     = 8 layers x (K + V: 2 x 512) x 2 B (f16) = 16,384 B
    attention FLOP per cached position = 8 x 4 x 512 = 16,384

The CPU is a device measured by the probe (bandwidth, FLOP rate). Calibrated from one run (2
slots, concurrency 1), and only these: the per-step overhead (TPOT there minus the probe's
weight-streaming time) and the arithmetic rate (TTFT there: a 64-token prompt is bound by
arithmetic). Then every other point is predicted, with these tolerances:

    output tokens/s within 20%, TTFT p50 within 30%

The comparison needs the CPU to itself, so it runs only when asked (RIGKIT_SERVE_PREDICT_E2E=1)
and is skipped, with the reason, on a machine whose 1-minute load average is above its core
count. On the shared 2-vCPU development machine (load average 5-25 from other jobs) it has not
been seen on an idle CPU: there, repeated `bench serve` sweeps of this model differed by 2-6x
from run to run, so the tolerances below are the target, not yet a verified result. The one
run at a lower load (average 2.7, skip check bypassed) gave measured / predicted output tok/s
0.83, 0.87, 0.98, 1.01 at 2 slots (concurrency 1, 2, 4, 8) and 0.21, 1.28, 0.85, 0.07 at 4
slots (the 0.21 and 0.07 runs stalled on other jobs), TTFT p50 0.99, 0.77, 0.59, 0.94 and
0.87, 0.64, 0.64, 6.9: throughput holds at 2 slots; TTFT with queued requests does not yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_serve_e2e_llama import CTX_PER_SLOT, _server_binary, _start_server, _stop

from rigkit.bench.loadgen import ClientConfig
from rigkit.bench.metrics import RunResult
from rigkit.bench.serve import ServeConfig, run_serve
from rigkit.estimate.cpu_probe import probe
from rigkit.estimate.serving import StepCost, Workload, policy, simulate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEIGHT_BYTES = 109_469_696
FLOP_PER_TOKEN = 54_734_848
KV_BYTES_PER_TOKEN = 16_384
ATTN_FLOP_PER_POSITION = 16_384
PROMPT, GEN, REQUESTS = 64, 32, 8
LEVELS = (1, 2, 4, 8)
TOL_THROUGHPUT, TOL_TTFT = 0.20, 0.30


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.environ.get("RIGKIT_SERVE_PREDICT_E2E") != "1":
        pytest.skip("set RIGKIT_SERVE_PREDICT_E2E=1 on an otherwise idle machine to run it")
    _server_binary()
    pytest.importorskip("gguf")
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > cores:
        pytest.skip(
            f"1-minute load average {load:.1f} is above the {cores} cores: timings would be noise"
        )
    from tinygguf import write_tiny_llama

    d = tmp_path_factory.mktemp("tiny-predict")
    yield write_tiny_llama(d / "tiny.gguf", n_embd=512, n_layer=8, n_ff=1536)


def _sweep(model: Path, slots: int, log: Path) -> list[RunResult]:
    proc, url = _start_server(model, log, slots)
    try:
        client = ClientConfig(url=url, model="tiny", gen_tokens=GEN, stall_timeout_s=30)
        cfg = ServeConfig(
            client=client, concurrencies=LEVELS, requests=REQUESTS, prompt_tokens=PROMPT, warmup=2
        )
        return list(run_serve(cfg).runs)
    finally:
        _stop(proc)


def test_estimate_serve_matches_llama_server(tiny_model: Path, tmp_path: Path) -> None:
    rates = probe()
    measured = {s: _sweep(tiny_model, s, tmp_path / f"np{s}.log") for s in (2, 4)}
    base = measured[2][0]  # 2 slots, concurrency 1: the calibration run
    assert base.completed == REQUESTS
    prompt = round(base.input_tokens / base.completed)
    weights_s = WEIGHT_BYTES / rates.bandwidth_bytes_s
    # TPOT at concurrency 1 = overhead + weights (one token's arithmetic is below the weights)
    overhead_s = max(0.0, base.tpot_ms.p50 / 1000 - weights_s)
    # TTFT at concurrency 1 = overhead + the prompt's arithmetic
    token_s = max(weights_s / prompt, (base.ttft_ms.p50 / 1000 - overhead_s) / prompt)
    cost = StepCost(
        weights_s=weights_s,
        token_s=token_s,
        kv_s=KV_BYTES_PER_TOKEN / rates.bandwidth_bytes_s,
        attn_s=ATTN_FLOP_PER_POSITION * token_s / FLOP_PER_TOKEN,
    )
    rows = []
    misses = []
    for slots, runs in measured.items():
        pol = policy("llama.cpp", max_num_seqs=slots, step_overhead_s=overhead_s,
                     kv_capacity_tokens=slots * CTX_PER_SLOT)  # fmt: skip
        for run in runs:
            assert run.completed == REQUESTS, run.failures
            p_tok = round(run.input_tokens / run.completed)
            sim = simulate(
                cost, pol, Workload(p_tok, GEN, concurrency=run.concurrency, requests=REQUESTS)
            )
            q_tp = run.output_tokens_per_s / sim.output_tokens_per_s
            q_ttft = run.ttft_ms.p50 / sim.ttft_ms.p50
            rows.append(f"np {slots} c {run.concurrency}: out tok/s {run.output_tokens_per_s:.1f} vs "
                        f"{sim.output_tokens_per_s:.1f} ({q_tp:.2f}), TTFT p50 {run.ttft_ms.p50:.0f} "
                        f"vs {sim.ttft_ms.p50:.0f} ms ({q_ttft:.2f})")  # fmt: skip
            if abs(q_tp - 1) > TOL_THROUGHPUT or abs(q_ttft - 1) > TOL_TTFT:
                misses.append(rows[-1])
    print("\n".join(rows))
    assert not misses, "\n".join(misses) + "\nall:\n" + "\n".join(rows)
