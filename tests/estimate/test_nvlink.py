"""NVLink is used where it is there: SXM modules always, PCIe cards only with a bridge."""

from __future__ import annotations

import pytest

from rigkit.errors import EstimateError
from rigkit.estimate import estimate
from rigkit.estimate.resolve import gpu_nums

# llama.cpp row split of Llama-3-70B over 2 RTX 3090, per decode token: 7 split matmuls per layer
# (q, k, v, o + gate, up, down) each gathered on the main GPU; result bytes per layer
# 4 B x (2 x 8192 + 2 x 8 x 128 + 2 x 28672) = 303,104 B, half of them cross the link.
RESULT_BYTES = 4 * (2 * 8192 + 2 * 8 * 128 + 2 * 28672)


def _interconnect_ms(**kw: object) -> float:
    e = estimate("llama-3-70b", "q4_k_m", "rtx-3090", gpus=2, split="row", gen=128, **kw)
    return dict(e.decode_terms)["interconnect"]


def test_pcie_cards_are_taken_unbridged_by_default() -> None:
    g = gpu_nums("rtx-3090")
    assert g.nvlink_capable and not g.nvlink
    # no P2P on GeForce: latency max(host all-reduce 30 us, row sync 20 us) = 30 us per matmul;
    # bandwidth PCIe 4.0 x16 1.969 x 16 x 0.8 / 2 (through host memory) = 12.6 GB/s
    per_layer_s = 7 * 30e-6 + 0.5 * RESULT_BYTES / (1.969e9 * 16 * 0.8 / 2)
    assert _interconnect_ms() == pytest.approx(80 * per_layer_s * 1e3, rel=1e-6)  # 17.8 ms


def test_a_bridge_gives_nvlink_latency_and_bandwidth() -> None:
    # NVLink: 5 us per gather, half of the 3090's 112.5 GB/s bridge per direction
    per_layer_s = 7 * 5e-6 + 0.5 * RESULT_BYTES / (112.5e9 / 2)
    assert _interconnect_ms(nvlink=True) == pytest.approx(80 * per_layer_s * 1e3, rel=1e-6)
    e = estimate("llama-3-70b", "q4_k_m", "rtx-3090", gpus=2, split="row", nvlink=True)
    assert not any("no NVLink bridge assumed" in a for a in e.assumptions)
    e = estimate("llama-3-70b", "q4_k_m", "rtx-3090", gpus=2, split="row")
    assert any("no NVLink bridge assumed" in a for a in e.assumptions)


def test_sxm_modules_use_nvlink_unless_told_not_to() -> None:
    assert gpu_nums("h100-sxm").nvlink
    on = estimate("llama-3-70b", "f16", "h100-sxm", gpus=4, engine="vllm", split="tensor")
    off = estimate(
        "llama-3-70b", "f16", "h100-sxm", gpus=4, engine="vllm", split="tensor", nvlink=False
    )
    assert dict(on.decode_terms)["interconnect"] < dict(off.decode_terms)["interconnect"]


def test_nvlink_on_a_card_without_it_is_an_error() -> None:
    with pytest.raises(EstimateError, match="rtx-4090 has no NVLink"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", gpus=2, nvlink=True)
    with pytest.raises(EstimateError, match="nvlink must be true or false"):
        estimate("llama-3-8b", "q4_k_m", "rtx-3090", gpus=2, nvlink="yes")  # type: ignore[arg-type]


def test_plan_capacity_follows_the_specs_bridges() -> None:
    from pathlib import Path

    from rigkit.estimate.capacity import bridged
    from rigkit.spec import load_build

    root = Path(__file__).resolve().parents[2] / "examples"
    # 2x3090-desktop declares nvlink_bridge: true; the 4x RTX 4090 reference has no NVLink
    assert bridged(load_build(root / "2x3090-desktop.yaml")) is True
    assert bridged(load_build(root / "reference-4x4090.yaml")) is None
