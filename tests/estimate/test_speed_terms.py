"""The decode rate terms that carry the estimator to GPUs it was not fitted on.

Weight streaming = smooth minimum (exponent q) of the DRAM rate (peak x e_bw x e_quant) and the SM
issue rate (SMs x boost clock x bytes per SM-cycle of the kernel class); the per-layer overhead is
the same on every GPU. The numbers below are worked out by hand from the catalog figures.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from rigkit.catalog import load_catalog
from rigkit.estimate import estimate
from rigkit.estimate.params import EngineParams, Params, packaged_params
from rigkit.estimate.resolve import gpu_nums, gpu_nums_from
from rigkit.estimate.speed import gpu_rates


def _params() -> Params:
    """Round numbers instead of the fitted ones, so the arithmetic can be done by hand."""
    return replace(
        packaged_params(),
        bandwidth_efficiency={"default": 0.9},
        quant_decode_efficiency={"gguf": 0.9},
        issue_bytes_per_sm_clock={"dense": 6.0, "gguf": 5.0},
        layer_overhead_us=70.0,
        issue_smoothness=8.0,
    )


LLAMA = EngineParams()


def test_sm_figures_reach_the_physics_model() -> None:
    # RTX 4090: 128 SMs x 2520 MHz = 322.56e9 SM-cycles/s; A100: 108 x 1410 MHz = 152.28e9
    assert gpu_nums("rtx-4090").sm_hz == pytest.approx(322.56e9)
    assert gpu_nums("a100-80gb-sxm").sm_hz == pytest.approx(152.28e9)
    # H100 PCIe: 114 x 1755 MHz = 200.07e9
    assert gpu_nums("h100-pcie").sm_hz == pytest.approx(200.07e9)


def test_every_nvidia_gpu_has_sm_count_and_l2_and_the_rest_say_why_not() -> None:
    for g in load_catalog().gpus.values():
        if g.vendor != "nvidia":  # AMD CUs are not SMs: the SM issue model is not applied
            assert g.sm_count is None and "No SM figures" in (g.notes or ""), g.id
            continue
        assert g.sm_count is not None and g.l2_cache_mb is not None, g.id
        assert "sm_count" in g.sources, g.id  # the whitepaper / datasheet they come from
        # a boost clock the maker does not publish is left empty, and the entry says so
        assert g.boost_clock_mhz is not None or "not published" in (g.notes or ""), g.id


def test_a100_f16_decode_is_issue_bound() -> None:
    bw, wbw, fix = gpu_rates(gpu_nums("a100-80gb-sxm"), _params(), LLAMA, "dense")
    # DRAM: 2039 GB/s x 0.9 = 1835.1 GB/s; issue: 6 B x 108 SMs x 1.41 GHz = 913.68 GB/s
    assert bw == pytest.approx(1835.1e9)
    # smooth minimum: 913.68 x (1 + (913.68 / 1835.1)^8)^(-1/8); 0.49789^8 = 0.0037761,
    # 1.0037761^(-1/8) = 0.999529 -> 913.25 GB/s: the SMs, not the HBM, set the rate
    assert wbw == pytest.approx(913.25e9, rel=1e-4)
    # 70 us per layer on every GPU
    assert fix == pytest.approx(70e-6)


def test_rtx_4090_f16_decode_is_dram_bound() -> None:
    _, wbw, _ = gpu_rates(gpu_nums("rtx-4090"), _params(), LLAMA, "dense")
    # DRAM: 1008 x 0.9 = 907.2 GB/s; issue: 6 x 128 x 2.52 = 1935.36 GB/s; ratio 0.46875,
    # 0.46875^8 = 0.0023309, 1.0023309^(-1/8) = 0.999709 -> 906.94 GB/s
    assert wbw == pytest.approx(906.94e9, rel=1e-4)


def test_k_quant_rate_uses_its_own_efficiency_and_issue_rate() -> None:
    _, wbw, _ = gpu_rates(gpu_nums("a100-80gb-sxm"), _params(), LLAMA, "gguf")
    # DRAM: 2039 x 0.9 x 0.9 = 1651.59 GB/s; issue: 5 x 152.28 = 761.4 GB/s; ratio 0.46101,
    # 0.46101^8 = 0.0020530, 1.0020530^(-1/8) = 0.999744 -> 761.21 GB/s
    assert wbw == pytest.approx(761.21e9, rel=1e-4)


def test_engines_without_issue_limit_and_gpus_without_sm_figures() -> None:
    p = _params()
    # vLLM's decode kernels are DRAM-bound: 1835.1 GB/s on the A100 SXM (no SM term)
    vllm = replace(LLAMA, issue_limited=False)
    _, wbw, _ = gpu_rates(gpu_nums("a100-80gb-sxm"), p, vllm, "dense")
    assert wbw == pytest.approx(1835.1e9)
    assert packaged_params().engine("vllm").issue_limited is False
    assert packaged_params().engine("llama.cpp").issue_limited is True
    # a GPU whose SM count is not known: DRAM only, 1008 x 0.9 = 907.2 GB/s
    fields = load_catalog().gpu("rtx-4090").model_dump()
    fields.update(sm_count=None, boost_clock_mhz=None)
    g = gpu_nums_from(SimpleNamespace(**fields))
    assert g.sm_hz is None
    _, wbw, _ = gpu_rates(g, p, LLAMA, "dense")
    assert wbw == pytest.approx(907.2e9)


def test_a100_sxm_and_pcie_decode_alike_despite_more_bandwidth() -> None:
    # both have 108 SMs at 1410 MHz; the SXM's 2039 GB/s vs the PCIe card's 1935 GB/s (+5.4%)
    # does not show in llama.cpp F16 decode, which the SMs limit (both ~6 B x 152 ~ 0.9-1 TB/s)
    sxm = estimate("llama-3-8b", "f16", "a100-80gb-sxm", prompt=0, gen=128)
    pcie = estimate("llama-3-8b", "f16", "a100-80gb-pcie", prompt=0, gen=128)
    assert sxm.decode_tokens_per_s is not None and pcie.decode_tokens_per_s is not None
    assert sxm.decode_tokens_per_s / pcie.decode_tokens_per_s == pytest.approx(1.0, abs=0.01)
    # a bandwidth roofline would make the A100 SXM 2039 / 1008 = 2.02x faster than an RTX 4090;
    # issue-bound (~6.3 B x 152 = 0.96 TB/s vs the 4090's ~0.92 x 1008 = 0.93 TB/s) it is ~1.03x
    r4090 = estimate("llama-3-8b", "f16", "rtx-4090", prompt=0, gen=128)
    assert r4090.decode_tokens_per_s is not None
    assert 1.0 < sxm.decode_tokens_per_s / r4090.decode_tokens_per_s < 1.1


def test_decode_step_time_by_hand() -> None:
    # Llama-3-8B F16 on one A100 SXM, llama.cpp, one token at depth 0 with the round parameters:
    # weights 32 layers + LM head read at 913.25 GB/s, plus 32 x 70 us of fixed overhead
    p = _params()
    e = estimate("llama-3-8b", "f16", "a100-80gb-sxm", prompt=0, gen=1, params=p)
    terms = dict(e.decode_terms)
    # layer params (q, o 4096x4096; k, v 1024x4096;
    # gate, up, down 14336x4096) = 218,103,808 params x 2 B = 436.2 MB, x 32 = 13.958 GB; LM head
    # 128256 x 4096 x 2 B = 1.0507 GB; norms 2 x 4096 x 4 B x 32 (F32) = 1.05 MB -> 15.009 GB
    assert terms["weights"] == pytest.approx(15.009e9 / 913.25e9 * 1e3, rel=2e-3)
    # 32 x 70 us = 2.24 ms
    assert terms["fixed_overhead"] == pytest.approx(2.24)


def test_issue_bound_decode_reports_compute_and_says_why() -> None:
    a100 = estimate("llama-3-8b", "f16", "a100-80gb-sxm", prompt=0, gen=16, params=_params())
    # 913 GB/s from the SMs < 1835 GB/s from HBM: the SMs bound decode, reported as compute
    assert a100.bound == "compute"
    # 108 x 1.41 GHz = 152 G SM-cycles/s x 6 B = 914 GB/s (913.7), below 2039 x 0.9 = 1835 GB/s
    assert any("152 G SM-cycles/s x 6 B = 914 GB/s, below 1835 GB/s" in a for a in a100.assumptions)
    r4090 = estimate("llama-3-8b", "f16", "rtx-4090", prompt=0, gen=16, params=_params())
    # 1935 GB/s of issue > 907 GB/s of DRAM: bandwidth-bound, no such note
    assert r4090.bound == "memory-bandwidth"
    assert not any("SM-cycles" in a for a in r4090.assumptions)


def test_flash_decoding_engines_use_their_attention_prior() -> None:
    from rigkit.estimate import estimate

    # decode attention arithmetic, Llama-3-8B at batch 256, depth 512 + 256 / 2 = 640:
    # 256 seq x 32 layers x (4 x 32 heads x 128) FLOP x 640 positions = 8.59e10 FLOP
    flop = 256 * 32 * (4 * 32 * 128) * 640
    e = estimate("llama-3-8b", "fp8", "h100-sxm", engine="vllm", prompt=512, gen=256, batch=256)
    # vLLM's flash-decoding kernels at 25% of the H100 SXM's 67 TFLOPS FP32: 5.13 ms
    assert abs(dict(e.decode_terms)["attention"] - flop / (67e12 * 0.25) * 1e3) < 0.01
    ll = estimate("llama-3-8b", "q8_0", "h100-sxm", prompt=512, gen=256, batch=256)
    # llama.cpp keeps the fitted non-flash efficiency (~2.9%): about 8.6 times slower attention
    ratio = dict(ll.decode_terms)["attention"] / dict(e.decode_terms)["attention"]
    assert abs(ratio - 0.25 / _params().attn_decode_fp32_efficiency) < 0.05


def test_gpu_counts_beyond_one_machine_or_the_layers_are_refused() -> None:
    import pytest

    from rigkit.errors import EstimateError
    from rigkit.estimate import estimate

    # Llama-3-8B has 32 layers: a layer split over 33 GPUs leaves one without a layer
    with pytest.raises(EstimateError, match="32 layers over 33 GPUs"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", gpus=33)
    estimate("llama-3-8b", "q4_k_m", "rtx-4090", gpus=32)  # one layer each: allowed
    with pytest.raises(EstimateError, match="at most 64 GPUs"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", gpus=1_000_000, split="row")


def test_accuracy_line_says_what_the_speeds_rest_on() -> None:
    from rigkit.estimate import estimate

    def acc(*args: str, **kw: object) -> str:
        e = estimate(*args, **kw)  # type: ignore[arg-type]
        return next(a for a in e.assumptions if a.startswith("accuracy:"))

    # the calibration rows are llama.cpp on the RTX 3090 and RTX 4090
    assert "fitted on this GPU" in acc("llama-3-8b", "q4_k_m", "rtx-4090")
    assert "not in the calibration set" in acc("llama-3-8b", "q4_k_m", "l40s")
    assert "datacenter chip" in acc("llama-3-70b", "q4_k_m", "a100-80gb-sxm")
    assert "multi-GPU terms" in acc("llama-3-70b", "q4_k_m", "rtx-3090", gpus=2)
    assert "priors" in acc("llama-3-8b", "f16", "rtx-4090", engine="vllm")
    assert "CPU part" in acc("llama-3-70b", "f16", "rtx-4090")  # 141 GB: offloads
