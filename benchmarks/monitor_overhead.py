"""The monitor agent's own cost: CPU time per sample with 8 replayed GPUs must stay under 1 % of
one core at 1 Hz, i.e. under 10 ms of CPU per sample.

Replays 2000 samples of a synthetic loaded 8-GPU box at --speed 0 through the whole agent loop
(replay parsing, SQLite store, default alert rules, dry-run thermal responder, exporter cache
rendering for a scrape every 15 samples) and divides the process CPU time (time.process_time) by the number of samples.
Prints the measurement; exits 1 if the target is missed.

``--size`` also measures the bytes per row of each store table (used by
rigkit.monitor.store.storage_estimate and docs/monitor.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rigkit.monitor.agent import Agent, make_engine, make_responder
from rigkit.monitor.exporter import ExporterCache
from rigkit.monitor.record import Recorder, synthetic_samples
from rigkit.monitor.sources.base import SourceExhausted
from rigkit.monitor.sources.replay import ReplaySource
from rigkit.monitor.store import Store, storage_estimate

TARGET_MS = 10.0  # 1 % of one core at one sample per second
SAMPLES = 2000
GPUS = 8
SCRAPE_EVERY = 15  # samples between /metrics scrapes (a 15 s scrape interval at 1 Hz)


def overhead(tmp: Path, samples: int) -> float:
    replay = tmp / "loaded-8gpu.jsonl"
    with Recorder(replay) as rec:
        for s in synthetic_samples("loaded", gpus=GPUS, seconds=samples):
            rec.write(s)
    store = Store(tmp / "bench.db")
    agent = Agent(
        ReplaySource(replay, speed=0),
        store,
        engine=make_engine(None, None),
        responder=make_responder(None, None, enforce=False),
        cache=ExporterCache(),
    )
    cache = agent.cache
    assert cache is not None
    n = 0
    cpu0 = time.process_time()
    while True:
        try:
            agent.step()
        except SourceExhausted:
            break
        n += 1
        if n % SCRAPE_EVERY == 0:
            cache.render()  # what a Prometheus scrape every 15 s costs the process
    cpu = time.process_time() - cpu0
    store.close()
    assert n == samples, n
    return 1000.0 * cpu / samples


def sizes(tmp: Path) -> None:
    store = Store(tmp / "size.db")
    n = 3600
    for s in synthetic_samples("loaded", gpus=GPUS, seconds=n):
        store.write_sample(s)
    db = store._db
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_bytes() -> dict[str, int]:
        return {
            str(k): int(v)
            for k, v in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        }

    t = table_bytes()
    print(f"bytes per samples row (with index): {(t['samples'] + t['samples_t']) / n:.1f}")
    print(f"bytes per gpu_samples row: {t['gpu_samples'] / (GPUS * n):.1f}")
    print(f"bytes per disk_samples row: {t['disk_samples'] / (2 * n):.1f}")
    store.compact(1767225600.0 + n + 7 * 86400 + 120)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    t = table_bytes()
    rows = store.count_agg(60)
    print(f"bytes per agg row: {t['agg'] / rows:.1f} ({rows} rows)")
    e = storage_estimate(gpus=GPUS, disks=2)
    print(
        f"one year of 1 Hz samples of {GPUS} GPUs, default retention: {e.bytes_total / 1e6:.0f} MB ({e.to_dict()})"
    )
    store.close()


def python_speed_us() -> float:
    """Machine calibration printed with the result: best time of a fixed pure-Python loop."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=SAMPLES)
    ap.add_argument("--size", action="store_true", help="also measure bytes per row")
    args = ap.parse_args()
    print(f"calibration: sum(range(1000)) takes {python_speed_us():.1f} us on this machine")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ms = overhead(tmp, args.samples)
        pct = ms / 1000.0 * 100.0
        print(
            f"monitor agent: {ms:.2f} ms CPU per sample with {GPUS} GPUs"
            f" = {pct:.2f} % of one core at 1 Hz (target < {TARGET_MS:g} ms = 1 %)"
        )
        if args.size:
            sizes(tmp)
    if ms >= TARGET_MS:
        print("FAIL: over target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
