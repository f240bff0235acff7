"""The client against the mock server: every fault mode gives counted failures with reasons,
and every run ends within its time bound. Mock and client share one event loop here (timing
accuracy is tested separately, with the mock in its own process)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rigkit.bench import mockserver
from rigkit.bench.loadgen import ClientConfig, LevelOutcome, make_session, run_level
from rigkit.bench.metrics import RunResult, summarize
from rigkit.bench.prompts import RandomPrompts
from rigkit.errors import BenchError


def _run(mock: mockserver.MockConfig, **kw: Any) -> tuple[RunResult, LevelOutcome, float]:
    client_kw = {k: kw.pop(k) for k in list(kw) if k in ClientConfig.__dataclass_fields__}

    async def go() -> tuple[LevelOutcome, float]:
        runner, url, _ = await mockserver.start(mock)
        try:
            cfg = ClientConfig(url=url, model="m", **{"gen_tokens": 8, **client_kw})
            t0 = time.perf_counter()
            async with make_session(cfg) as s:
                out = await run_level(s, cfg, iter(RandomPrompts(16)), **kw)
            return out, time.perf_counter() - t0
        finally:
            await runner.cleanup()

    out, wall = asyncio.run(go())
    res = summarize(out.results, issued=out.issued, duration_s=out.wall_s, concurrency=4)
    return res, out, wall


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop", "connection_dropped"),
        ("http500", "http_500"),
        ("http429", "http_429"),
        ("stall", "stalled"),
        ("malformed", "malformed_sse"),
    ],
)
def test_fault_counted_with_reason(fault: str, reason: str) -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=1, fault=fault, fault_rate=0.5)  # type: ignore[arg-type]
    res, _, wall = _run(mock, concurrency=4, num_requests=8, duration_s=10, stall_timeout_s=0.5)
    # fault_rate 0.5 hits requests 1, 3, 5, 7 of 0..7: 4 failures, 4 successes
    assert res.failures == {reason: 4}
    assert (res.completed, res.failed, res.cancelled) == (4, 4, 0)
    assert res.failure_examples[reason]
    assert res.output_tokens == 4 * 8  # 4 good requests x 8 tokens, from usage
    assert wall < 5.0  # the stall ends at the 0.5 s stall timeout, far from the 10 s bound


def test_http429_message_has_retry_after() -> None:
    mock = mockserver.MockConfig(fault="http429", retry_after_s=7)
    res, _, _ = _run(mock, concurrency=1, num_requests=1)
    assert "Retry-After: 7" in res.failure_examples["http_429"]


def test_no_usage_is_completed_without_token_counts() -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=1, fault="no_usage", fault_rate=0.5)
    res, _, _ = _run(mock, concurrency=4, num_requests=8)
    assert (res.completed, res.failed) == (8, 0)
    assert res.missing_token_counts == 4  # requests 1, 3, 5, 7 came without counts
    assert res.output_tokens == 32  # only the 4 counted requests x 8 tokens
    assert res.tpot_ms.count == 4


@pytest.mark.parametrize("style", ["timings", "ollama"])
def test_counts_from_timings_and_eval_count(style: str) -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=1, usage=style)  # type: ignore[arg-type]
    res, out, _ = _run(mock, concurrency=2, num_requests=2, gen_tokens=5)
    assert res.output_tokens == 10  # 2 requests x 5 tokens
    assert {r.token_source for r in out.results} == {
        "timings" if style == "timings" else "eval_count"
    }
    # 16-token prompt -> 12 words at 0.75 words/token; the mock counts 12 / 0.75 = 16 tokens
    assert res.input_tokens == 32


def test_stall_is_cut_at_the_time_bound() -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=1, fault="stall", stall_s=60)
    res, _, wall = _run(mock, concurrency=4, num_requests=100, duration_s=1.0, stall_timeout_s=30)
    # every request stalls after 2 tokens; at 1 s the 4 in flight are cut
    assert res.requests == 4
    assert res.cancelled == 4
    assert res.completed == 0
    assert wall < 3.0


def test_request_timeout() -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=100)
    res, _, wall = _run(mock, concurrency=2, num_requests=2, gen_tokens=50, request_timeout_s=0.3)
    # 50 tokens x 100 ms = 5 s per request, far past the 0.3 s request timeout
    assert res.failures == {"timeout": 2}
    assert wall < 2.0


def test_empty_response_and_refused_connection() -> None:
    res, _, _ = _run(mockserver.MockConfig(tokens=0), concurrency=1, num_requests=1)
    assert res.failures == {"empty_response": 1}

    async def refused() -> str | None:
        cfg = ClientConfig(url="http://127.0.0.1:9", model="m", connect_timeout_s=2)
        async with make_session(cfg) as s:
            out = await run_level(s, cfg, iter(RandomPrompts(4)), concurrency=1, num_requests=1)
        return out.results[0].error

    assert asyncio.run(refused()) == "connection_refused"


def test_chat_endpoint() -> None:
    mock = mockserver.MockConfig(ttft_ms=5, itl_ms=1)
    res, out, _ = _run(mock, concurrency=2, num_requests=4, endpoint="chat", gen_tokens=6)
    assert res.completed == 4
    assert res.output_tokens == 24  # 4 x 6
    assert all(len(r.token_times) == 6 for r in out.results)


def test_rate_mode_with_and_without_cap() -> None:
    mock = mockserver.MockConfig(ttft_ms=200, itl_ms=0, tokens=1)
    # 6 requests arriving at ~1000/s, each taking 200 ms; a cap of 2 serves them in 3 rounds
    res, out, _ = _run(mock, concurrency=2, rate=1000.0, num_requests=6)
    assert res.completed == 6
    assert out.wall_s >= 0.6  # 3 rounds x 200 ms
    res, out, _ = _run(mock, concurrency=None, rate=1000.0, num_requests=6)
    assert res.completed == 6
    assert out.wall_s < 0.55  # one round of 200 ms plus arrivals and overhead; 3 rounds is 0.6


def test_run_level_needs_a_bound() -> None:
    with pytest.raises(BenchError):
        _run(mockserver.MockConfig(), concurrency=1)


def test_request_url_forms() -> None:
    c = ClientConfig(url="http://h:1/", model="m")
    assert c.request_url == "http://h:1/v1/completions"
    c = ClientConfig(url="http://h:1/v1", model="m", endpoint="chat")
    assert c.request_url == "http://h:1/v1/chat/completions"
    c = ClientConfig(url="http://h:1/v1/chat/completions", model="m", endpoint="chat")
    assert c.request_url == "http://h:1/v1/chat/completions"
