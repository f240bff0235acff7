"""Timing accuracy: the client's own overhead must not distort the figures.

The mock server runs in its own process with injected delays (TTFT 120 ms, ITL 15 ms); at
concurrency 64 the client must measure ITL within 1 ms and TTFT within 5% of them.
"""

from __future__ import annotations

import asyncio

import pytest

from rigkit.bench.loadgen import ClientConfig, make_session, run_level
from rigkit.bench.metrics import RunResult, summarize
from rigkit.bench.mockserver import MockConfig, mock_process
from rigkit.bench.prompts import RandomPrompts

TTFT_MS = 120.0
ITL_MS = 15.0
STREAMS = 64


async def _measure(url: str) -> RunResult:
    cfg = ClientConfig(url=url, model="mock", gen_tokens=40, stall_timeout_s=30)
    async with make_session(cfg) as session:
        prompts = iter(RandomPrompts(32))
        # first pass opens the 64 connections; the second is measured
        await run_level(session, cfg, prompts, concurrency=STREAMS, num_requests=STREAMS)
        out = await run_level(session, cfg, prompts, concurrency=STREAMS, num_requests=2 * STREAMS)
    return summarize(out.results, issued=out.issued, duration_s=out.wall_s, concurrency=STREAMS)


@pytest.mark.slow
def test_itl_and_ttft_accuracy_at_concurrency_64() -> None:
    with mock_process(MockConfig(ttft_ms=TTFT_MS, itl_ms=ITL_MS)) as url:
        res = asyncio.run(_measure(url))
    assert res.completed == 2 * STREAMS
    assert res.failures == {}
    # 128 requests x 40 tokens = 5120 tokens; 39 gaps per request = 4992 ITL samples
    assert res.output_tokens == 5120
    assert res.itl_ms.count == 128 * 39
    assert res.itl_ms.mean == pytest.approx(ITL_MS, abs=1.0)
    assert res.itl_ms.p50 == pytest.approx(ITL_MS, abs=1.0)
    # TTFT within 5%: 120 ms +- 6 ms
    assert res.ttft_ms.p50 == pytest.approx(TTFT_MS, rel=0.05)
    # TPOT = (e2e - TTFT) / 39 gaps should also come out at the injected 15 ms
    assert res.tpot_ms.mean == pytest.approx(ITL_MS, abs=1.0)
