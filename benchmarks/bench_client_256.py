"""256 concurrent streams from one process against the mock server (TTFT 120 ms, ITL 15 ms).

Target: the client's measured ITL p50 within 1 ms of the injected 15 ms. Also prints TTFT
against the injected 120 ms and the client's own CPU time per streamed token
(``time.process_time()`` of this process / tokens received). The mock server runs in its own
process. Exit status 1 when the target is missed.

    .venv/bin/python benchmarks/bench_client_256.py [--streams 256] [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from rigkit.bench.loadgen import ClientConfig, make_session, run_level
from rigkit.bench.metrics import summarize
from rigkit.bench.mockserver import MockConfig, mock_process
from rigkit.bench.prompts import RandomPrompts

TTFT_MS = 120.0
ITL_MS = 15.0


async def measure(url: str, streams: int, tokens: int) -> tuple[object, float, int]:
    cfg = ClientConfig(url=url, model="mock", gen_tokens=tokens, stall_timeout_s=30)
    async with make_session(cfg) as session:
        # warm the connection pool: one request per stream
        await run_level(
            session, cfg, iter(RandomPrompts(32)), concurrency=streams, num_requests=streams
        )
        cpu0 = time.process_time()
        out = await run_level(
            session, cfg, iter(RandomPrompts(32)), concurrency=streams, num_requests=streams
        )
        cpu = time.process_time() - cpu0
    res = summarize(out.results, issued=out.issued, duration_s=out.wall_s, concurrency=streams)
    events = sum(len(r.token_times) for r in out.results)
    return res, cpu, events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--tolerance-ms", type=float, default=1.0)
    ns = ap.parse_args()
    with mock_process(MockConfig(ttft_ms=TTFT_MS, itl_ms=ITL_MS)) as url:
        res, cpu, events = asyncio.run(measure(url, ns.streams, ns.tokens))
    from rigkit.bench.metrics import RunResult

    assert isinstance(res, RunResult)
    itl50 = res.itl_ms.p50 or float("nan")
    ttft50 = res.ttft_ms.p50 or float("nan")
    per_tok_us = cpu / events * 1e6 if events else float("nan")
    print(
        f"streams {ns.streams}, tokens/stream {ns.tokens}, completed {res.completed}/{res.requests}"
    )
    print(f"token events {events} in {res.duration_s:.2f} s ({events / res.duration_s:,.0f}/s)")
    print(
        f"ITL  p50 {itl50:.2f} ms  p90 {res.itl_ms.p90:.2f}  p99 {res.itl_ms.p99:.2f}  "
        f"mean {res.itl_ms.mean:.2f}   (injected {ITL_MS:.1f} ms)"
    )
    print(
        f"TTFT p50 {ttft50:.1f} ms  p90 {res.ttft_ms.p90:.1f}  p99 {res.ttft_ms.p99:.1f}   "
        f"(injected {TTFT_MS:.0f} ms)"
    )
    print(f"client CPU {cpu:.2f} s = {per_tok_us:.1f} us per streamed token")
    ok = res.completed == ns.streams and abs(itl50 - ITL_MS) <= ns.tolerance_ms
    print(
        "PASS"
        if ok
        else f"FAIL: ITL p50 {itl50:.2f} ms is not within {ns.tolerance_ms} ms of {ITL_MS} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
