"""/metrics scrape latency: p99 under 10 ms with 100 scrapes in parallel.

Starts the exporter in a separate process, as the agent runs it (the asyncio server thread over
the cache, the cache updated from an 8-GPU synthetic sample once per second), then measures from
one client process (plain non-blocking sockets, so that the client's own cost stays small):

* keep-alive (the target): 100 scrapers, each with its own persistent connection as Prometheus
  keeps one, send GET /metrics at once; 20 rounds; latency from each request to its last byte;
* fresh connections (reported, not gated): the same with a new TCP connection per scrape, the
  worst case (connect + request + close).

Requests ask for gzip, as Prometheus does. Also prints the exporter process's CPU time per scrape
(from /proc), which bounds the p99 from below: 100 simultaneous scrapes need 100 x that on one
core. Prints the measurements; exits 1 if the keep-alive p99 is not under 10 ms.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
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

# What Prometheus sends (it asks for gzip).
REQUEST = (
    b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: text/plain;version=0.0.4\r\n"
    b"Accept-Encoding: gzip\r\n\r\n"
)
REQUEST_CLOSE = REQUEST[:-2] + b"Connection: close\r\n\r\n"


def _complete(buf: bytes) -> bool:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Encoding: gzip" in head, head[:80]
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return len(body) >= length


def _round(socks: list[socket.socket], request: bytes, connect_to: int | None) -> list[float]:
    """Send one request on each socket (connecting first when ``connect_to`` is a port), then
    collect the responses; latency per socket from its send (or connect) to its last byte."""
    sel = selectors.DefaultSelector()
    t0: dict[socket.socket, float] = {}
    bufs: dict[socket.socket, bytes] = {}
    for sock in socks:
        t0[sock] = time.perf_counter()
        if connect_to is not None:
            sock.connect(("127.0.0.1", connect_to))
        sock.sendall(request)
        bufs[sock] = b""
        sel.register(sock, selectors.EVENT_READ)
    lat: list[float] = []
    while bufs:
        for key, _ in sel.select(timeout=10):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(262144)
            bufs[sock] += data
            if _complete(bufs[sock]):
                lat.append(time.perf_counter() - t0[sock])
                sel.unregister(sock)
                del bufs[sock]
            elif not data:
                raise RuntimeError("connection closed before the response was complete")
    sel.close()
    return lat


def keep_alive(port: int, parallel: int, rounds: int) -> list[float]:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(parallel)]
    _round(socks, REQUEST, None)  # warm-up: first render
    lat: list[float] = []
    for _ in range(rounds):
        lat += _round(socks, REQUEST, None)
        time.sleep(0.05)
    for sock in socks:
        sock.close()
    return lat


def fresh(port: int, parallel: int, rounds: int) -> list[float]:
    lat: list[float] = []
    for _ in range(rounds):
        socks = [socket.socket() for _ in range(parallel)]
        lat += _round(socks, REQUEST_CLOSE, port)
        for sock in socks:
            sock.close()
        time.sleep(0.05)
    return lat


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), NaN elsewhere."""
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


def _report(label: str, lat: list[float], cpu_s: float) -> float:
    ms = sorted(x * 1000 for x in lat)
    p99 = ms[max(0, int(len(ms) * 0.99) - 1)]
    cpu = f", exporter CPU {1000 * cpu_s / len(ms):.3f} ms per scrape" if cpu_s == cpu_s else ""
    print(
        f"{label}: {len(ms)} scrapes: p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms,"
        f" max {ms[-1]:.2f} ms{cpu}"
    )
    return p99


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
            c0 = _cpu_s(proc.pid)
            ka = keep_alive(port, args.parallel, args.rounds)
            c1 = _cpu_s(proc.pid)
            fr = fresh(port, args.parallel, args.rounds)
            c2 = _cpu_s(proc.pid)
        finally:
            proc.kill()
            proc.wait()
    p99 = _report(f"keep-alive, {args.parallel} in parallel", ka, c1 - c0)
    _report(f"fresh connections, {args.parallel} in parallel (not gated)", fr, c2 - c1)
    print(f"target: keep-alive p99 < {TARGET_P99_MS:g} ms")
    if p99 >= TARGET_P99_MS:
        print("FAIL: over target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
