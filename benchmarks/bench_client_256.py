"""256 concurrent streams from one process against the mock server (TTFT 120 ms, ITL 15 ms).

Target: the client's measured ITL p50 within 1 ms of the injected 15 ms and TTFT p50 within 5%
of the injected 120 ms while 256 streams are in flight (``--streams 64 --tokens 40`` is the
concurrency-64 check of ``tests/bench/serve/test_serve_timing.py``). Also prints ITL mean/p90/p99, TTFT against the injected 120 ms, the peak number of
streams in flight, and the client's own CPU time per streamed token (``time.process_time()`` of
this process / token events received). The mock server runs in its own process.

Requests arrive as a Poisson stream capped at 256 in flight (the rate is set so the cap binds),
so the ramp does not send 256 requests in the same millisecond, which would measure the mock
server's request handling rather than the client. Exit status 1 when the target is missed.

    .venv/bin/python benchmarks/bench_client_256.py [--streams 256] [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp

from rigkit.bench.loadgen import ClientConfig, LevelOutcome, make_session, run_level
from rigkit.bench.metrics import summarize
from rigkit.bench.mockserver import MockConfig, mock_process
from rigkit.bench.prompts import RandomPrompts

TTFT_MS = 120.0
ITL_MS = 15.0


async def measure(url: str, streams: int, tokens: int, requests: int) -> tuple[LevelOutcome, float]:
    cfg = ClientConfig(url=url, model="mock", gen_tokens=tokens, stall_timeout_s=30)
    # one request lasts TTFT + (tokens - 1) x ITL; 10% more arrivals than that keeps the cap busy
    seconds = (TTFT_MS + (tokens - 1) * ITL_MS) / 1000.0
    rate = 1.1 * streams / seconds
    async with make_session(cfg) as session:
        prompts = iter(RandomPrompts(32))
        await run_level(session, cfg, prompts, concurrency=streams, rate=rate, num_requests=streams)
        cpu0 = time.process_time()
        out = await run_level(
            session, cfg, prompts, concurrency=streams, rate=rate, num_requests=requests
        )
        cpu = time.process_time() - cpu0
    return out, cpu


def peak_in_flight(out: LevelOutcome) -> int:
    events = sorted([(r.start, 1) for r in out.results] + [(r.end, -1) for r in out.results])
    cur = peak = 0
    for _, step in events:
        cur += step
        peak = max(peak, cur)
    return peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--requests", type=int, default=None, help="default: 3 x streams")
    ap.add_argument("--tolerance-ms", type=float, default=1.0, help="ITL p50 tolerance")
    ap.add_argument("--ttft-tolerance", type=float, default=0.05, help="TTFT p50, relative")
    ns = ap.parse_args()
    requests = ns.requests or 3 * ns.streams
    with mock_process(MockConfig(ttft_ms=TTFT_MS, itl_ms=ITL_MS)) as url:
        out, cpu = asyncio.run(measure(url, ns.streams, ns.tokens, requests))
    res = summarize(out.results, issued=out.issued, duration_s=out.wall_s, concurrency=ns.streams)
    events = sum(len(r.token_times) for r in out.results)
    nan = float("nan")

    def f(v: float | None) -> float:
        return nan if v is None else v

    itl50 = f(res.itl_ms.p50)
    peak = peak_in_flight(out)
    print(
        f"streams {ns.streams} (peak in flight {peak}), {ns.tokens} tokens each, "
        f"completed {res.completed}/{res.requests}, failures {res.failures or 'none'}"
    )
    print(f"token events {events} in {res.duration_s:.2f} s ({events / res.duration_s:,.0f}/s)")
    print(
        f"ITL  p50 {itl50:.2f} ms  mean {f(res.itl_ms.mean):.2f}  p90 {f(res.itl_ms.p90):.2f}  "
        f"p99 {f(res.itl_ms.p99):.2f}   (injected {ITL_MS:.1f} ms)"
    )
    print(
        f"TTFT p50 {f(res.ttft_ms.p50):.1f} ms  p90 {f(res.ttft_ms.p90):.1f}  "
        f"p99 {f(res.ttft_ms.p99):.1f}   (injected {TTFT_MS:.0f} ms)"
    )
    per_tok_us = cpu / events * 1e6 if events else nan
    print(
        f"client CPU {cpu:.2f} s over {res.duration_s:.2f} s "
        f"({100 * cpu / res.duration_s:.0f}% of one core) = {per_tok_us:.1f} us per streamed token"
    )
    ttft50 = f(res.ttft_ms.p50)
    ok_itl = abs(itl50 - ITL_MS) <= ns.tolerance_ms
    ok_ttft = abs(ttft50 - TTFT_MS) <= ns.ttft_tolerance * TTFT_MS
    ok = res.completed == requests and peak >= ns.streams and ok_itl and ok_ttft
    print(f"aiohttp {aiohttp.__version__}, body read with StreamReader.iter_any()")
    if ok:
        print("PASS")
    else:
        print(
            f"FAIL: ITL p50 {itl50:.2f} ms vs {ITL_MS} +- {ns.tolerance_ms} ms, TTFT p50 "
            f"{ttft50:.1f} ms vs {TTFT_MS:.0f} +- {100 * ns.ttft_tolerance:.0f}%, peak {peak}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
