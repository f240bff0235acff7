"""The tensor rate prompt GEMMs reach on a GPU: whitepaper per-SM rate, kernel cap, power cap.

rate = SMs x boost x FP16 FLOP per SM-cycle of the chip class (x the datasheet's FP32/FP16
accumulate ratio for other modes), capped at SMs x boost x the mma.sync rate for engines without
wgmma, then x the sustained share of the boost clock, min(1, (TDP / need)^(1/3)) with need = SMs
x boost x the energy per SM-cycle of the class's reference card (its TDP / (its SMs x boost)).
Every number below is worked out by hand from the catalog's figures.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from rigkit.catalog import load_catalog
from rigkit.estimate import estimate
from rigkit.estimate.params import EngineParams, packaged_params
from rigkit.estimate.resolve import gpu_nums, gpu_nums_from
from rigkit.estimate.speed import sustained_clock_share, tensor_flops

P = packaged_params()
LLAMA = P.engine("llama.cpp")
VLLM = P.engine("vllm")


def test_chip_classes() -> None:
    # FP16 FLOP per SM-cycle from the datasheet: RTX 4090 330.3e12 / (128 x 2.52e9) = 1024;
    # A100 312e12 / (108 x 1.41e9) = 2049; H100 PCIe 756e12 / (114 x 1.755e9) = 3779
    assert gpu_nums("rtx-4090").chip_class == "ada"
    assert gpu_nums("rtx-a6000").chip_class == "ampere"
    assert gpu_nums("a100-80gb-pcie").chip_class == "ampere-dc"
    assert gpu_nums("h100-pcie").chip_class == "hopper-dc"


def test_rtx_4090_keeps_its_datasheet_rate() -> None:
    g = gpu_nums("rtx-4090")
    # 128 SMs x 2.52 GHz x 1024 = 330.30e12 (datasheet 330.3); 450 W is the ada reference: share 1
    assert sustained_clock_share(g, P) == 1.0
    assert tensor_flops(g, P, LLAMA, g.f16_acc16) == pytest.approx(330.30e12, rel=1e-4)
    # FP32 accumulate at the GeForce half rate: 330.30 x 165.2 / 330.3 = 165.2e12
    assert tensor_flops(g, P, VLLM, g.f16_acc32) == pytest.approx(165.2e12, rel=1e-3)


def test_h100_pcie_without_wgmma_runs_at_the_a100_per_sm_rate() -> None:
    g = gpu_nums("h100-pcie")
    # power: reference H100 SXM 700 W / (132 x 1.98e9) = 2.6783e-9 J per SM-cycle;
    # need = 114 x 1.755e9 x 2.6783e-9 = 535.85 W > 350 W -> (350 / 535.85)^(1/3) = 0.8676
    share = sustained_clock_share(g, P)
    assert share == pytest.approx(0.8676, rel=1e-3)
    # llama.cpp (mma.sync): 114 x 1.755e9 x 2048 = 409.75e12, x 0.8676 = 355.5e12
    assert tensor_flops(g, P, LLAMA, g.f16_acc16) == pytest.approx(355.5e12, rel=2e-3)
    # an engine with wgmma: 114 x 1.755e9 x 4096 = 819.5e12, x 0.8676 = 711.0e12
    assert tensor_flops(g, P, VLLM, g.f16_acc32) == pytest.approx(711.0e12, rel=2e-3)


def test_300_w_ada_board_does_not_hold_boost() -> None:
    g = gpu_nums("rtx-6000-ada")
    # ada reference RTX 4090: 450 W / (128 x 2.52e9) = 1.3951e-9 J per SM-cycle;
    # need = 142 x 2.505e9 x 1.3951e-9 = 496.2 W; (300 / 496.2)^(1/3) = 0.8455
    assert sustained_clock_share(g, P) == pytest.approx(0.8455, rel=1e-3)
    # 142 x 2.505e9 x 1024 = 364.25e12 x 0.8455 = 307.97e12
    assert tensor_flops(g, P, LLAMA, g.f16_acc16) == pytest.approx(307.97e12, rel=2e-3)


def test_datasheet_quoted_below_boost_is_put_on_the_boost_footing() -> None:
    g = gpu_nums("rtx-4000-ada")
    # datasheet 81.9e12 = 48 SMs x 1024 x 1.666 GHz, below the 2175 MHz boost:
    # 48 x 2.175e9 x 1024 = 106.91e12; need = 48 x 2.175e9 x 1.3951e-9 = 145.65 W > 130 W,
    # (130 / 145.65)^(1/3) = 0.9627 -> 102.92e12
    assert tensor_flops(g, P, LLAMA, g.f16_acc16) == pytest.approx(102.92e12, rel=2e-3)


def test_unknown_class_or_missing_figures_keep_the_datasheet() -> None:
    fields = load_catalog().gpu("rtx-6000-ada").model_dump()
    fields.update(sm_count=None, boost_clock_mhz=None)
    g = gpu_nums_from(SimpleNamespace(**fields))
    # no SM figures: the datasheet 364.2e12, no power cap (it needs SMs x clock)
    assert tensor_flops(g, P, LLAMA, g.f16_acc16) == pytest.approx(364.2e12)
    # a class with no table entries: datasheet only
    p = replace(P, tensor_flops_per_sm_clock={}, power_reference_gpu={})
    g2 = gpu_nums("rtx-6000-ada")
    assert tensor_flops(g2, p, EngineParams(), g2.f16_acc16) == pytest.approx(364.2e12)


def test_prefill_follows_the_tensor_rate() -> None:
    # Llama-3-8B F16, 512-token prompt: the A100 SXM (312e12, 400 W = its reference, share 1)
    # and the A100 PCIe (same chip at 300 W: (300 / 400)^(1/3) = 0.9086) differ in the terms that
    # scale with the tensor rate: linear GEMMs and attention, 1 / 0.9086 = 1.1006x longer
    sxm = dict(estimate("llama-3-8b", "f16", "a100-80gb-sxm", prompt=512, gen=0).prefill_terms)
    pcie = dict(estimate("llama-3-8b", "f16", "a100-80gb-pcie", prompt=512, gen=0).prefill_terms)
    assert pcie["linear"] / sxm["linear"] == pytest.approx(1.1006, rel=2e-3)
    assert pcie["fixed_overhead"] == pytest.approx(sxm["fixed_overhead"])


def test_capped_tensor_rate_is_stated_in_the_assumptions() -> None:
    e = estimate("llama-3-8b", "q4_k_m", "h100-pcie", prompt=512, gen=0)
    # 409.75e12 x 0.8676 = 355.5e12 -> "356 TFLOPS", datasheet 756
    assert any("356 TFLOPS" in a and "756" in a and "mma.sync" in a for a in e.assumptions)
    # the RTX 4090 runs at its datasheet rate: no such line
    r = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=512, gen=0)
    assert not any("prompt GEMMs" in a for a in r.assumptions)
