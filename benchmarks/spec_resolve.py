"""Time loading the catalog and resolving the reference spec in a fresh process.

Target: catalog load + validation + resolve of examples/reference-4x4090.yaml under 0.25 s,
and the whole process (interpreter start + imports + resolve) under 1.0 s, so that `rigkit plan`
can stay under a second. Prints the measurements; exits 1 if a target is missed.

    python benchmarks/spec_resolve.py [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "reference-4x4090.yaml"
INNER_TARGET_S = 0.25
PROCESS_TARGET_S = 1.0

CHILD = """
import sys, time
t0 = time.perf_counter()
from rigkit.catalog import load_catalog
from rigkit.spec import load_build
t1 = time.perf_counter()
load_catalog()
build = load_build(sys.argv[1])
t2 = time.perf_counter()
print(f"{t1 - t0:.4f} {t2 - t1:.4f}")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    imports: list[float] = []
    inner: list[float] = []
    whole: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(SPEC)], check=True, capture_output=True, text=True
        ).stdout.split()
        whole.append(time.perf_counter() - start)
        imports.append(float(out[0]))
        inner.append(float(out[1]))
    best_import, best_inner, best_whole = min(imports), min(inner), min(whole)
    print(f"imports           best {best_import * 1000:7.1f} ms")
    print(
        f"catalog + resolve best {best_inner * 1000:7.1f} ms (target {INNER_TARGET_S * 1000:.0f})"
    )
    print(
        f"whole process     best {best_whole * 1000:7.1f} ms (target {PROCESS_TARGET_S * 1000:.0f})"
    )
    ok = best_inner < INNER_TARGET_S and best_whole < PROCESS_TARGET_S
    print("ok" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
