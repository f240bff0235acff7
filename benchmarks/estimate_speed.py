"""Estimator speed: batch mode and the capacity table of `rigkit plan`.

    .venv/bin/python benchmarks/estimate_speed.py [--cases 10000] [--target-s 3.0]

1. 10,000 cases through `rigkit estimate --batch FILE`, process start included (target: 3 s wall
   on a 2-core machine).
2. `plan_capacity` for the reference build, catalogs already loaded as `rigkit plan` has them
   (target: 100 ms).
Prints the measurements and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = [
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-405b",
    "mixtral-8x7b",
    "qwen2.5-32b",
    "gemma-2-27b",
]
QUANTS = ["f16", "q8_0", "q4_k_m"]
GPUS = ["rtx-4090", "rtx-3090"]
COUNTS = [1, 2, 4]
PROMPTS = [128, 512, 2048]
BATCHES = [1, 4, 16]


def cases(n: int) -> list[dict[str, object]]:
    grid = itertools.product(MODELS, QUANTS, GPUS, COUNTS, PROMPTS, BATCHES)
    out = []
    for i, (m, q, g, c, p, b) in enumerate(itertools.cycle(grid)):
        if i >= n:
            break
        out.append(
            {
                "model": m,
                "quant": q,
                "gpu": g,
                "gpus": c,
                "engine": "llama.cpp",
                "prompt": p,
                "gen": 128 + i % 7,
                "batch": b,
                "cpu": "threadripper-pro-7975wx",
                "ram_gb": 512,
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--target-s", type=float, default=3.0)
    args = ap.parse_args()
    # An installed package ships bytecode; an editable checkout may not (PYTHONDONTWRITEBYTECODE).
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "src", quiet=1)
    exe = shutil.which("rigkit", path=str(Path(sys.executable).parent)) or "rigkit"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cases.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for c in cases(args.cases):
                fh.write(json.dumps(c) + "\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run(
            [exe, "estimate", "--batch", path], capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load1 = os.getloadavg()[0]
    lines = res.stdout.splitlines()
    errors = sum(1 for line in lines if line.startswith('{"error"'))
    print(
        f"{args.cases} cases in {wall:.2f} s wall ({args.cases / wall:,.0f} cases/s), "
        f"{cpu:.2f} s CPU (all processes), load average {load1:.1f} on {os.cpu_count()} cores, "
        f"{errors} error lines, exit {res.returncode}"
    )
    if res.returncode != 0 or len(lines) != args.cases:
        print(f"FAILED: exit {res.returncode}, {len(lines)} lines\n{res.stderr[-2000:]}")
        return 1
    if wall > args.target_s:
        print(f"MISSED target {args.target_s:g} s (other load on the machine inflates wall time)")
        return 1
    print(f"target {args.target_s:g} s: met")
    return capacity_speed()


def capacity_speed(target_s: float = 0.1) -> int:
    """Time plan_capacity() on the reference build (catalogs loaded first, as in `rigkit plan`)."""
    from rigkit.catalog import load_catalog
    from rigkit.catalog.llm import load_llm_catalog
    from rigkit.estimate.capacity import plan_capacity
    from rigkit.spec import load_build

    build = load_build(
        Path(__file__).resolve().parent.parent / "examples" / "reference-4x4090.yaml"
    )
    load_catalog()
    load_llm_catalog()
    t0 = time.perf_counter()
    cap = plan_capacity(build)
    dt = time.perf_counter() - t0
    print(
        f"plan_capacity: {len(cap.rows)} rows, {len(cap.expectations)} claims in {dt * 1e3:.0f} ms (target {target_s * 1e3:.0f} ms)"
    )
    return 0 if dt <= target_s else 1


if __name__ == "__main__":
    sys.exit(main())
