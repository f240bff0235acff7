"""The CPU probe measures plausible rates, and a CPU step cost follows from them."""

from __future__ import annotations

import pytest

from rigkit.estimate.cpu_probe import probe
from rigkit.estimate.serving import StepCost


def test_probe_rates_are_plausible() -> None:
    r = probe(passes=2, array_mib=64, matrix=256)
    # any CPU this runs on reads memory at 1-2,000 GB/s and multiplies at 0.1-100,000 GFLOPS
    assert 1e9 < r.bandwidth_bytes_s < 2e12
    assert 1e8 < r.flops_s < 1e14
    assert r.to_dict()["source"] == "probe"


def test_cpu_step_cost_from_rates() -> None:
    # 109,469,696 weight bytes at 20 GB/s = 5.473 ms per step; 54.7 MFLOP per token at
    # 20 GFLOPS = 2.737 ms per token; 16 KiB of KV per cached token at 20 GB/s = 0.8192 us
    c = StepCost.from_rates(
        weight_bytes=109_469_696,
        flops_per_token=54_734_848,
        kv_bytes_per_token=16_384,
        attn_flops_per_position=16_384,
        bandwidth_bytes_s=20e9,
        flops_s=20e9,
    )
    assert c.weights_s == pytest.approx(5.4735e-3, rel=1e-4)
    assert c.token_s == pytest.approx(2.7367e-3, rel=1e-4)
    assert c.kv_s == pytest.approx(0.8192e-6)
    # one decode token is below the weights (5.47 ms); 2 are above it: 2 x 2.737 = 5.47 ms,
    # 4 tokens: 10.95 ms (arithmetic-bound, the CPU's usual regime)
    assert c.linear(1, 512) == pytest.approx(5.4735e-3, rel=1e-4)
    assert c.linear(4, 512) == pytest.approx(4 * 2.7367e-3, rel=1e-4)
