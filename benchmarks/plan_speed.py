"""`rigkit plan examples/reference-4x4090.yaml --format json` must finish in under 1 s.

Runs the command as a subprocess five times (after one warm-up run that fills the OS file cache)
and compares the median wall time with the target. Prints the measurement; exits 1 if missed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "reference-4x4090.yaml"
TARGET_S = 1.0
RUNS = 5


def command() -> list[str]:
    exe = shutil.which("rigkit", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "from rigkit.cli.main import run; run()"]


def main() -> int:
    cmd = [*command(), "plan", str(SPEC), "--format", "json"]
    subprocess.run(cmd, capture_output=True, check=False)  # warm-up
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            print(f"plan failed with status {proc.returncode}: {proc.stderr.decode()}")
            return 1
    median = statistics.median(times)
    print(
        f"rigkit plan --format json: median {median:.3f} s over {RUNS} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}); target < {TARGET_S:.1f} s"
    )
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
