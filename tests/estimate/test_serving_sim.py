"""The serving simulator against textbook limits, worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.errors import EstimateError
from rigkit.estimate.serving import StepCost, Workload, policy, simulate, simulate_requests

# 10 ms to stream the weights, 0.1 ms of arithmetic per token: one decode step is bound by the
# weights up to 100 tokens; a 256-token prompt is bound by arithmetic (25.6 ms)
COST = StepCost(weights_s=0.010, token_s=0.0001)


def test_one_request_at_a_time() -> None:
    pol = policy("vllm", step_overhead_s=0.0)
    r = simulate(COST, pol, Workload(256, 128, concurrency=1, requests=5))
    # TTFT = prefill = max(10 ms, 256 x 0.1 ms) = 25.6 ms; TPOT = ITL = one decode step = 10 ms
    assert r.ttft_ms.p50 == pytest.approx(25.6)
    assert r.tpot_ms.p50 == pytest.approx(10.0)
    assert r.itl_ms.p99 == pytest.approx(10.0)
    # E2E = 25.6 + 127 x 10 = 1295.6 ms; 128 tokens per 1.2956 s = 98.80 tok/s
    assert r.e2e_ms.p50 == pytest.approx(1295.6)
    assert r.output_tokens_per_s == pytest.approx(128 / 1.2956)
    assert r.requests_per_s == pytest.approx(1 / 1.2956)


def test_step_overhead_adds_to_every_step() -> None:
    pol = policy("llama.cpp", step_overhead_s=0.002)
    r = simulate(COST, pol, Workload(256, 16, concurrency=1, requests=2))
    # prompt: 256 tokens in micro-batches of 512 (one pass) = 25.6 + 2 ms; decode 10 + 2 ms
    assert r.ttft_ms.p50 == pytest.approx(27.6)
    assert r.tpot_ms.p50 == pytest.approx(12.0)


def test_saturated_throughput_is_batch_over_step_time() -> None:
    # 8 sequences, 1 prompt token each and 2000 output tokens: the prompt steps vanish
    pol = policy("vllm", step_overhead_s=0.001, max_num_seqs=8)
    r = simulate(COST, pol, Workload(1, 2000, concurrency=8, requests=8))
    # step = 1 ms + max(10 ms, 8 x 0.1 ms) = 11 ms; 8 tokens per step = 727.3 tok/s
    assert r.output_tokens_per_s == pytest.approx(8 / 0.011, rel=1e-3)
    assert r.itl_ms.p50 == pytest.approx(11.0)
    # more clients than max_num_seqs: the extra ones queue, throughput stays at the limit
    r64 = simulate(COST, pol, Workload(1, 2000, concurrency=64, requests=64))
    assert r64.output_tokens_per_s == pytest.approx(8 / 0.011, rel=1e-2)
    # the last of 8 waves waits for 7 waves of 2000 steps: 7 x 22 s = 154 s before its turn
    assert r64.ttft_ms.p99 > 150_000


def test_kv_reads_grow_the_step_with_depth() -> None:
    cost = StepCost(weights_s=0.010, token_s=0.0, kv_s=1e-6)
    pol = policy("vllm", step_overhead_s=0.0)
    (req,), _ = simulate_requests(cost, pol, Workload(1000, 3, concurrency=1, requests=1))
    gaps = [b - a for a, b in zip(req.token_times, req.token_times[1:], strict=False)]
    # the prompt step reads its 1000 tokens once: 10 + 1 ms; the decode steps read 1001 then
    # 1002 cached tokens: 10 + 1.001 ms and 10 + 1.002 ms
    assert req.token_times[0] - req.start == pytest.approx(0.011)
    assert gaps == pytest.approx([0.011001, 0.011002])


def test_rate_above_capacity_queue_grows_and_throughput_plateaus() -> None:
    pol = policy("vllm", step_overhead_s=0.0, max_num_seqs=4)
    # capacity: 4 sequences x 100 tokens; one wave = prefill max(10, 4 x 1 x 0.1) = 10 ms plus
    # 99 decode steps of 10 ms = 1 s for 4 requests: 4 requests/s, 400 tok/s
    slow = simulate(COST, pol, Workload(1, 100, concurrency=None, rate=2.0, requests=200, seed=1))
    fast = simulate(COST, pol, Workload(1, 100, concurrency=None, rate=8.0, requests=200, seed=1))
    faster = simulate(COST, pol, Workload(1, 100, concurrency=None, rate=16.0, requests=400))
    assert slow.output_tokens_per_s == pytest.approx(200, rel=0.15)  # below capacity: the rate
    assert fast.output_tokens_per_s == pytest.approx(400, rel=0.05)  # above: the plateau
    assert faster.output_tokens_per_s == pytest.approx(400, rel=0.05)
    # the queue grows without bound: TTFT of the last requests >> the first ones
    reqs, _ = simulate_requests(
        COST, pol, Workload(1, 100, concurrency=None, rate=8.0, requests=200)
    )
    ttfts = [r.token_times[0] - r.start for r in reqs]
    first, last = sum(ttfts[:20]) / 20, sum(ttfts[-20:]) / 20
    # 200 arrivals in ~25 s, served at 4/s in ~50 s: the last wait ~25 s; the first 20 arrive
    # in ~2.5 s and are served in ~5 s, so they wait ~1.2 s on average
    assert first < 2.0 and last > 20.0
    assert slow.ttft_ms.p99 < 1000.0


def test_non_chunked_engine_runs_prompts_alone() -> None:
    pol = policy("exllamav2", step_overhead_s=0.0)
    reqs, _ = simulate_requests(COST, pol, Workload(256, 50, concurrency=2, requests=2))
    # both prompts in one step: 512 x 0.1 ms = 51.2 ms; then decode steps of 10 ms
    assert [r.token_times[0] for r in reqs] == pytest.approx([0.0512, 0.0512])
    assert reqs[0].end == pytest.approx(0.0512 + 49 * 0.010)


def test_slot_context_and_kv_capacity_limits() -> None:
    pol = policy("llama.cpp", max_num_seqs=4, kv_capacity_tokens=1024)
    with pytest.raises(EstimateError, match="each of 4 slots has 256"):
        simulate(COST, pol, Workload(200, 100, concurrency=1))
    # paged KV of 600 tokens: two requests of 300 fit at once, the third waits for a finish
    paged = policy("vllm", step_overhead_s=0.0, kv_capacity_tokens=600)
    reqs, _ = simulate_requests(COST, paged, Workload(200, 100, concurrency=3, requests=3))
    assert reqs[2].token_times[0] >= reqs[0].end


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(EstimateError) as err:
        policy("sglang")
    assert "vllm" in str(err.value.hint)


def test_estimate_serve_cli_prints_bench_serve_runs() -> None:
    import json

    from typer.testing import CliRunner

    from rigkit.cli.main import app
    from rigkit.estimate.serving import cost_from_estimate

    args = ["estimate", "--model", "llama-3.1-8b", "--quant", "f16", "--gpu", "rtx-4090"]
    args += ["--engine", "vllm", "--serve", "--concurrency", "1,8", "--prompt-tokens", "256"]
    args += ["--gen-tokens", "64", "--requests", "16", "--step-overhead-ms", "2", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    one, eight = doc["runs"]
    # the same keys as a measured `bench serve` run
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s", "requests_per_s"):
        assert key in one
    assert doc["meta"]["policy"]["step_overhead_s"] == 0.002
    cost, _ = cost_from_estimate("llama-3.1-8b", "f16", "rtx-4090", engine="vllm")
    # one request at a time: TPOT = fixed + weights + 2 ms overhead + KV/attention at depth ~290
    step_ms = 1000 * (cost.fixed_s + cost.weights_s + 0.002)
    assert one["tpot_ms"]["p50"] == pytest.approx(step_ms, rel=0.02)
    # 8 at once share each weight pass: output throughput well above 4x one stream's
    assert eight["output_tokens_per_s"] > 4 * one["output_tokens_per_s"]


def test_fit_step_overhead_recovers_a_known_overhead() -> None:
    from rigkit.estimate.serving import fit_step_overhead

    true = policy("vllm", step_overhead_s=0.004, max_num_seqs=8)
    wls = [Workload(64, 64, concurrency=c, requests=16) for c in (1, 4, 16)]
    measured = [(wl, simulate(COST, true, wl).tpot_ms.p50 or 0.0) for wl in wls]
    # TPOT = 4 ms + 10 ms weights per step: the fit finds the 4 ms again from overhead 0
    fitted = fit_step_overhead(COST, policy("vllm", step_overhead_s=0.0, max_num_seqs=8), measured)
    assert fitted == pytest.approx(0.004, abs=2e-4)


def test_calibrate_fits_the_step_overhead_from_bench_serve_json(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from rigkit.cli.main import app
    from rigkit.estimate.serving import cost_from_estimate

    # a `bench serve --spec` result made by the simulation with a 5 ms step overhead
    cost, kv = cost_from_estimate("llama-3.1-8b", "f16", "rtx-4090", engine="vllm")
    pol = policy("vllm", step_overhead_s=0.005, max_num_seqs=8, kv_capacity_tokens=kv)
    runs = [
        simulate(cost, pol, Workload(256, 64, concurrency=c, requests=16)).to_dict()
        for c in (1, 4, 8)
    ]
    meta = {"model": "served", "model_id": "llama-3.1-8b", "quant": "f16", "gpu": "rtx-4090"}
    meta |= {"gpus": 1, "engine": "vllm", "prompt_tokens": 256, "gen_tokens": 64}
    f = tmp_path / "serve.json"
    f.write_text(json.dumps({"meta": meta, "runs": runs}))
    prof = tmp_path / "p.yaml"
    r = CliRunner().invoke(app, ["calibrate", str(f), "--out", str(prof)])
    assert r.exit_code == 0, r.output
    assert "step overhead of vllm: 5.00 ms" in r.output
    # estimate --serve --profile takes it: one stream's TPOT = fixed + weights + 5 ms (+ KV)
    args = ["estimate", "--model", "llama-3.1-8b", "--quant", "f16", "--gpu", "rtx-4090"]
    args += ["--engine", "vllm", "--serve", "--concurrency", "1", "--gen-tokens", "64"]
    args += ["--prompt-tokens", "256", "--requests", "4", "--json", "--profile", str(prof)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["meta"]["policy"]["step_overhead_s"] == pytest.approx(0.005, abs=1e-4)
