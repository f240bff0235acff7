"""Metric arithmetic: percentiles, TTFT/ITL/TPOT per request, run summaries, goodput."""

from __future__ import annotations

import pytest

from rigkit.bench.metrics import (
    RequestResult,
    Stats,
    meets_slos,
    parse_slos,
    percentile,
    summarize,
)
from rigkit.bench.sse import ServerTimings
from rigkit.errors import BenchError


def test_percentile_linear_interpolation() -> None:
    v = [10.0, 20.0, 30.0, 40.0]
    # rank = p/100 * (n-1) = 0.5 * 3 = 1.5 -> halfway between 20 and 30 = 25
    assert percentile(v, 50) == pytest.approx(25.0)
    # rank = 0.9 * 3 = 2.7 -> 30 + 0.7 * (40 - 30) = 37
    assert percentile(v, 90) == pytest.approx(37.0)
    # rank = 0.99 * 3 = 2.97 -> 30 + 0.97 * 10 = 39.7
    assert percentile(v, 99) == pytest.approx(39.7)
    assert percentile(v, 0) == 10.0
    assert percentile(v, 100) == 40.0
    assert percentile([7.0], 99) == 7.0  # one value: every percentile is that value


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_stats_converts_seconds_to_ms() -> None:
    s = Stats.of([0.010, 0.030, 0.020])  # seconds, unsorted
    # ms sorted: 10, 20, 30; mean = 60/3 = 20; p50 rank 1 -> 20; p90 rank 1.8 -> 20 + 0.8*10 = 28
    assert s.count == 3
    assert s.mean == pytest.approx(20.0)
    assert s.p50 == pytest.approx(20.0)
    assert s.p90 == pytest.approx(28.0)
    # p99 rank 1.98 -> 20 + 0.98 * 10 = 29.8
    assert s.p99 == pytest.approx(29.8)
    assert Stats.of([]).to_dict() == {"mean": None, "p50": None, "p90": None, "p99": None}


def _req(start: float, tokens: list[float], end: float, out: int | None = None) -> RequestResult:
    r = RequestResult(start=start, end=end, token_times=list(tokens))
    r.output_tokens = out if out is not None else len(tokens)
    r.prompt_tokens = 100
    r.token_source = "usage"
    return r


def test_request_ttft_itl_tpot() -> None:
    # start 10.0, tokens at 10.2, 10.25, 10.35, 10.40, end 10.45
    r = _req(10.0, [10.2, 10.25, 10.35, 10.40], 10.45, out=4)
    assert r.ttft == pytest.approx(0.2)  # 10.2 - 10.0
    assert r.itls == pytest.approx([0.05, 0.10, 0.05])  # gaps between token events
    # TPOT = (latency - TTFT) / (out - 1) = (0.45 - 0.2) / 3 = 0.083333
    assert r.tpot == pytest.approx(0.25 / 3)
    # mean ITL = (10.40 - 10.2) / 3 = 0.066667
    assert r.mean_itl == pytest.approx(0.2 / 3)
    assert r.latency == pytest.approx(0.45)


def test_tpot_uses_server_token_count_not_events() -> None:
    # 2 events that carried 6 tokens (e.g. batched chunks): TPOT divides by 6 - 1 = 5
    r = _req(0.0, [0.1, 0.6], 0.6, out=6)
    assert r.tpot == pytest.approx((0.6 - 0.1) / 5)  # 0.1 s
    r.output_tokens = None  # no server count: no TPOT rather than a guess from chunks
    assert r.tpot is None
    r.output_tokens = 1
    assert r.tpot is None  # one token: TPOT undefined


def test_summarize_two_requests_and_a_failure() -> None:
    a = _req(0.0, [0.1, 0.2, 0.3], 0.3, out=3)  # ttft 0.1, itls 0.1 0.1, tpot (0.3-0.1)/2 = 0.1
    b = _req(0.0, [0.3, 0.35, 0.4], 0.5, out=3)  # ttft 0.3, itls .05 .05, tpot (0.5-0.3)/2 = 0.1
    bad = RequestResult(start=0.0, end=0.1, error="http_500", message="HTTP 500")
    run = summarize([a, b, bad], issued=4, duration_s=2.0, concurrency=2, slos={"ttft": 200})
    assert (run.requests, run.completed, run.failed, run.cancelled) == (4, 2, 1, 1)
    assert run.failures == {"http_500": 1}
    assert run.failure_examples == {"http_500": "HTTP 500"}
    assert run.ttft_ms.mean == pytest.approx(200.0)  # (100 + 300) / 2 ms
    # pooled ITLs 100, 100, 50, 50 ms -> mean 75, p50 rank 1.5 between 50 and 100 = 75
    assert run.itl_ms.mean == pytest.approx(75.0)
    assert run.itl_ms.p50 == pytest.approx(75.0)
    assert run.tpot_ms.mean == pytest.approx(100.0)
    assert run.e2e_ms.mean == pytest.approx(400.0)  # (300 + 500) / 2
    assert run.output_tokens == 6
    assert run.output_tokens_per_s == pytest.approx(3.0)  # 6 tokens / 2 s
    assert run.total_tokens_per_s == pytest.approx(103.0)  # (6 + 2*100) / 2 s
    assert run.requests_per_s == pytest.approx(1.0)  # 2 ok / 2 s
    # only a meets ttft <= 200 ms (b has 300 ms): 1 / 2 s
    assert run.goodput_requests_per_s == pytest.approx(0.5)


def test_summarize_without_slos_and_missing_counts() -> None:
    a = _req(0.0, [0.1, 0.2], 0.2)
    a.output_tokens = None
    run = summarize([a], issued=1, duration_s=1.0, concurrency=1)
    assert run.goodput_requests_per_s is None
    assert run.missing_token_counts == 1
    assert run.output_tokens == 0
    assert run.tpot_ms.count == 0
    assert run.ttft_ms.mean == pytest.approx(100.0)  # TTFT still measured


def test_summarize_server_timings_mean() -> None:
    a = _req(0.0, [0.1, 0.2], 0.2)
    a.timings = ServerTimings(prompt_n=10, prompt_ms=20.0, predicted_n=4, predicted_ms=40.0)
    b = _req(0.0, [0.1, 0.2], 0.2)
    b.timings = ServerTimings(prompt_n=10, prompt_ms=40.0, predicted_n=5, predicted_ms=100.0)
    run = summarize([a, b], issued=2, duration_s=1.0, concurrency=2)
    assert run.server is not None
    # per-token: 40/4 = 10 ms and 100/5 = 20 ms -> mean 15 ms; prompt (20 + 40) / 2 = 30 ms
    assert run.server.predicted_per_token_ms == pytest.approx(15.0)
    # server-side TPOT: 40/(4-1) = 13.333 and 100/(5-1) = 25 -> mean 19.1667 ms
    assert run.server.tpot_ms == pytest.approx((40 / 3 + 25) / 2)
    assert run.server.prompt_ms == pytest.approx(30.0)
    assert run.server.predicted_tokens == 9


def test_slos() -> None:
    assert parse_slos(["ttft:500", "TPOT:50.5"]) == {"ttft": 500.0, "tpot": 50.5}
    for bad in ("ttft", "speed:5", "ttft:fast", "ttft:0"):
        with pytest.raises(BenchError):
            parse_slos([bad])
    r = _req(0.0, [0.1, 0.15, 0.2], 0.2, out=3)  # ttft 100 ms, tpot (0.2-0.1)/2 = 50 ms
    assert meets_slos(r, {"ttft": 100, "tpot": 50})
    assert not meets_slos(r, {"tpot": 49})
    assert not meets_slos(r, {"e2e": 199})  # e2e is 200 ms
    r.error = "stalled"
    assert not meets_slos(r, {})
