"""`rigkit plan examples/reference-4x4090.yaml --format json` must finish in under 1 s.

Runs the command as a subprocess seven times (after one warm-up run that fills the OS file cache
and the parsed-YAML cache) and prints the median and maximum wall time, and the CPU time of each
run (user + system, less sensitive to other load on the machine than wall time). Exits 1 when the
median wall time is above the target.

    python benchmarks/plan_speed.py             # as a user runs it
    python benchmarks/plan_speed.py --no-cache  # with RIGKIT_NO_CACHE=1 (parse the YAML each run)
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "reference-4x4090.yaml"
TARGET_S = 1.0
RUNS = 7


def command() -> list[str]:
    exe = shutil.which("rigkit", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "from rigkit.cli.main import run; run()"]


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cache", action="store_true", help="set RIGKIT_NO_CACHE=1")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    # An installed package ships bytecode; an editable checkout may not (PYTHONDONTWRITEBYTECODE).
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "src", quiet=1)
    env = dict(os.environ)
    if args.no_cache:
        env["RIGKIT_NO_CACHE"] = "1"
    cmd = [*command(), "plan", str(SPEC), "--format", "json"]
    subprocess.run(cmd, capture_output=True, check=False, env=env)  # warm-up
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(args.runs):
        c0 = children_cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False, env=env)
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu_s() - c0)
        if proc.returncode not in (0, 1):
            print(f"plan failed with status {proc.returncode}: {proc.stderr.decode()}")
            return 1
    median = statistics.median(walls)
    print(
        f"rigkit plan --format json{' (no cache)' if args.no_cache else ''}: wall median "
        f"{median:.3f} s, max {max(walls):.3f} s, min {min(walls):.3f} s over {args.runs} runs; "
        f"CPU median {statistics.median(cpus):.3f} s; target: median < {TARGET_S:.1f} s"
    )
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
