"""The CPU as an estimable device: its sustained memory bandwidth and arithmetic rate, measured
by a short probe (numpy; about half a second) or given.

Bandwidth: the best of several passes summing a 256 MiB float32 array (every byte read once,
the way a decode step streams weights). Arithmetic: the best of several float32 matrix products
of 512 x 512 (2 x 512^3 FLOP each). Both use the cores numpy's BLAS uses; an inference engine
runs its own kernels, so ``rigkit calibrate``-style scaling of these rates is expected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class CpuRates:
    """Sustained rates of this CPU as the probe measured them (or as given)."""

    bandwidth_bytes_s: float
    flops_s: float
    source: str = "probe"

    def to_dict(self) -> dict[str, float | str]:
        return {
            "bandwidth_gb_s": self.bandwidth_bytes_s / 1e9,
            "gflops": self.flops_s / 1e9,
            "source": self.source,
        }


def probe(passes: int = 5, array_mib: int = 256, matrix: int = 512) -> CpuRates:
    """Measure the CPU: best-of-``passes`` read bandwidth and float32 GEMM rate."""
    a = np.ones(array_mib * 1024 * 1024 // 4, dtype=np.float32)
    best_bw = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        a.sum()
        dt = time.perf_counter() - t0
        best_bw = max(best_bw, a.nbytes / dt)
    del a
    rng = np.random.default_rng(0)
    x = rng.standard_normal((matrix, matrix), dtype=np.float32)
    y = rng.standard_normal((matrix, matrix), dtype=np.float32)
    best_fl = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        x @ y
        dt = time.perf_counter() - t0
        best_fl = max(best_fl, 2.0 * matrix**3 / dt)
    return CpuRates(bandwidth_bytes_s=best_bw, flops_s=best_fl)
