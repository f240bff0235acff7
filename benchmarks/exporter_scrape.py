"""/metrics scrape latency: p99 under 10 ms with 100 scrapes in parallel.

Starts the exporter in a separate process (as the agent runs it: a threaded HTTP server over the
cache, with the cache updated from an 8-GPU synthetic sample once per second), then fires rounds of
100 simultaneous GET /metrics from one asyncio client (a fresh connection per request, as 100
Prometheus servers would; latency from connect to the last byte) and reports the latency percentiles over all requests.
Prints the measurement; exits 1 if p99 >= 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

TARGET_P99_MS = 10.0
PARALLEL = 100
ROUNDS = 20

SERVER = r"""
import sys, time
from rigkit.monitor.exporter import ExporterCache, ExporterServer
from rigkit.monitor.record import synthetic_samples

samples = list(synthetic_samples("loaded", gpus=8, seconds=60))
cache = ExporterCache()
cache.update(samples[0])
server = ExporterServer(cache, "127.0.0.1:0")
print(server.port, flush=True)
k = 0
while True:  # the agent's 1 Hz updates; the parent kills this process when done
    time.sleep(1.0)
    k += 1
    cache.update(samples[k % len(samples)])
"""


# What Prometheus sends (it asks for gzip), on a fresh connection.
REQUEST = (
    b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: text/plain;version=0.0.4\r\n"
    b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
)


async def one(port: int) -> float:
    """One scrape on a fresh connection: connect, request, read to the end."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    body = await reader.read()
    writer.close()
    elapsed = time.perf_counter() - t0
    assert body.startswith(b"HTTP/1.1 200") and b"Content-Encoding: gzip" in body
    return elapsed


async def measure(port: int, parallel: int, rounds: int) -> list[float]:
    lat: list[float] = []
    await asyncio.gather(*(one(port) for _ in range(5)))  # warm-up
    for _ in range(rounds):
        lat += await asyncio.gather(*(one(port) for _ in range(parallel)))
        await asyncio.sleep(0.05)
    return lat


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), NaN elsewhere."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_speed_us() -> float:
    """Machine calibration printed with the result: best time of a fixed pure-Python loop."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", type=int, default=PARALLEL)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    args = ap.parse_args()
    print(f"calibration: sum(range(1000)) takes {python_speed_us():.1f} us on this machine")
    with subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            cpu0 = _cpu_s(proc.pid)
            lat = asyncio.run(measure(port, args.parallel, args.rounds))
            server_cpu = _cpu_s(proc.pid) - cpu0
        finally:
            proc.kill()
            proc.wait()
    ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(ms)
    p99 = ms[max(0, int(len(ms) * 0.99) - 1)]
    if server_cpu == server_cpu:  # not NaN: /proc is readable
        print(f"exporter CPU per scrape: {1000 * server_cpu / (len(ms) + 5):.3f} ms")
    print(
        f"/metrics: {len(ms)} scrapes in rounds of {args.parallel} parallel: p50 {p50:.2f} ms,"
        f" p99 {p99:.2f} ms, max {ms[-1]:.2f} ms (target p99 < {TARGET_P99_MS:g} ms)"
    )
    if p99 >= TARGET_P99_MS:
        print("FAIL: over target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
