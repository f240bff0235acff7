"""Power limits, MoE expert offload, llama.cpp's layer assignment and its pipelined prompt
processing over a layer split."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.errors import EstimateError
from rigkit.estimate import estimate
from rigkit.estimate.memory import llama_cpp_layers
from rigkit.estimate.parallel import node_hop_s, pipelined_prefill_s
from rigkit.estimate.params import packaged_params
from rigkit.estimate.resolve import gpu_nums
from rigkit.estimate.speed import decode_clock_share, sustained_clock_share

# --- power limits ---------------------------------------------------------------------------------


def test_rtx_4090_at_300_w_keeps_decode_and_loses_prefill_with_the_clock() -> None:
    p = packaged_params()
    g = gpu_nums("rtx-4090").with_power_limit(300)
    # prompt GEMMs: the RTX 4090 is its class's power reference (450 W at 2.52 GHz boost), so at
    # 300 W it holds (300 / 450)^(1/3) = 0.8736 of the clock
    assert sustained_clock_share(g, p) == pytest.approx((300 / 450) ** (1 / 3))
    # decode draws 0.8 x 450 = 360 W at boost, 0.35 x 450 = 157.5 W of it memory and static:
    # ((300 - 157.5) / (360 - 157.5))^(1/3) = (142.5 / 202.5)^(1/3) = 0.8894
    assert decode_clock_share(g, p) == pytest.approx((142.5 / 202.5) ** (1 / 3))
    stock = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=512, gen=128)
    capped = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=512, gen=128, power_limit_w=300)
    # the SMs still issue 128 x 2.52 GHz x 0.889 x ~6.3 B = ~1.8 TB/s, far above the 1 TB/s the
    # memory streams: decode within a few percent of stock (it is within 0.5%)
    assert capped.decode_tokens_per_s == pytest.approx(stock.decode_tokens_per_s, rel=0.03)
    # the GEMM term grows by 1 / 0.8736 = 1.145; prefill as a whole drops by less (dequant
    # passes and launch overheads do not follow the core clock), but by more than 5%
    lin_stock = dict(stock.prefill_terms)["linear"]
    lin_capped = dict(capped.prefill_terms)["linear"]
    # (within 0.2%: the last token's pass through the LM head reads memory, not the clock)
    assert lin_capped / lin_stock == pytest.approx((450 / 300) ** (1 / 3), rel=2e-3)
    assert stock.prefill_tokens_per_s is not None and capped.prefill_tokens_per_s is not None
    drop = capped.prefill_tokens_per_s / stock.prefill_tokens_per_s
    assert 0.8736 < drop < 0.95
    assert capped.power_limit_w == 300
    assert any(a.startswith("power limit 300 W") for a in capped.assumptions)


def test_rtx_3090_decode_collapses_only_far_below_its_board_power() -> None:
    # reference/facts.md: 280 W loses under 1% of decode; below 200 W speed collapses
    stock = estimate("llama-3-8b", "q4_k_m", "rtx-3090", gen=128, prompt=0)
    at_280 = estimate("llama-3-8b", "q4_k_m", "rtx-3090", gen=128, prompt=0, power_limit_w=280)
    at_150 = estimate("llama-3-8b", "q4_k_m", "rtx-3090", gen=128, prompt=0, power_limit_w=150)
    assert stock.decode_tokens_per_s is not None
    # 280 W is above decode's 0.8 x 350 = 280 W at boost: no change at all
    assert at_280.decode_tokens_per_s == pytest.approx(stock.decode_tokens_per_s, rel=1e-9)
    # 150 W: ((150 - 122.5) / (280 - 122.5))^(1/3) = 0.559 of the clock; the 3090's SMs were
    # already co-limiting (82 x 1.695 GHz), so decode falls by more than a quarter
    assert at_150.decode_tokens_per_s is not None
    assert at_150.decode_tokens_per_s < 0.75 * stock.decode_tokens_per_s


def test_a_limit_outside_the_cards_range_is_refused() -> None:
    # the RTX 5060 Ti 16 GB cannot go below 150 W (catalog min_power_limit_w)
    with pytest.raises(EstimateError, match="lowest limit is 150 W"):
        estimate("llama-3-8b", "q4_k_m", "rtx-5060-ti-16gb", power_limit_w=120)
    with pytest.raises(EstimateError, match="power_limit_w"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", power_limit_w=-5)


# --- MoE expert offload ---------------------------------------------------------------------------


def test_gpt_oss_120b_on_one_4090_offloads_experts_and_is_bound_by_cpu_ram() -> None:
    e = estimate(
        "gpt-oss-120b", "mxfp4", "rtx-4090", gpus=1, cpu="threadripper-pro-7975wx", ram_gb=128
    )
    assert not e.fits and e.offload and e.runnable
    assert e.bound == "cpu-ram"
    # per layer: dense (attention 26.5 M x 8.5 bits, F32 router/biases/norms) ~0.034 GB and the
    # routed experts 3,185,049,600 x 4.25 / 8 = 1.692 GB; 24 GiB less 0.2 GB context and the
    # compute buffer holds the 36 dense parts, the head (0.615 GB) and 13 layers of experts:
    # the smallest N is 23 (llama.cpp -ngl 99 --n-cpu-moe 23)
    assert e.cpu_moe_layers == 23
    assert e.memory_gb_per_gpu <= e.vram_gb_per_gpu
    # system RAM: 23 x 1.692 GB of experts + the 0.615 GB embedding = 39.5 GB
    assert e.cpu_ram_gb == pytest.approx(23 * 1.6922 + 0.6153, rel=0.01)
    assert any("--n-cpu-moe 23" in a for a in e.assumptions)
    # each token reads 4 of 128 experts in 23 layers from RAM: 23 x 1.692 GB x 4/128 = 1.22 GB
    cpu_ms = dict(e.decode_terms)["cpu_layers"]
    # at the 7975WX's 250 GB/s fabric cap x 0.7 = 175 GB/s: 6.95 ms, + 23 x 40 us hand-overs
    assert cpu_ms == pytest.approx(1.2162 / 175 * 1e3 + 23 * 0.040, rel=0.02)


def test_gpt_oss_120b_on_four_4090s_fits_on_the_gpus() -> None:
    e = estimate("gpt-oss-120b", "mxfp4", "rtx-4090", gpus=4)
    # 63.4 GB over 4 GPUs (~16 GB each) with room for the KV cache
    assert e.fits and not e.offload and e.cpu_moe_layers is None


# --- llama.cpp's layer split ----------------------------------------------------------------------


def test_llama_cpp_counts_the_head_as_a_layer_slot() -> None:
    # 81 slots over 6 GPUs: layer i goes to GPU floor(i x 6 / 81): 0-13, 14-26, 27-40, 41-53,
    # 54-67, 68-79 (+ the head)
    assert llama_cpp_layers(80, 6) == [14, 13, 14, 13, 14, 12]
    # 33 slots over 8: i x 8 / 33 -> 5, 4, 4, 4, 4, 4, 4, 3
    assert llama_cpp_layers(32, 8) == [5, 4, 4, 4, 4, 4, 4, 3]
    assert llama_cpp_layers(32, 1) == [32]


def test_70b_f16_fits_on_six_3090s_as_it_ran() -> None:
    # the calibration set's 6x RTX 3090 Llama-3-70B F16 run (pp8192, tg8192): the first GPU
    # holds 14 layers x 1.7113 GB = 23.958 GB, KV 14/80 x 8192 x 327,680 B = 0.470 GB, the
    # compute buffer 0.05 + 512 x 8192 x 64 x 4 B = 1.124 GB and the 0.2 GB CUDA context:
    # 25.752 GB of 25.770 GB
    e = estimate("llama-3-70b", "f16", "rtx-3090", gpus=6, prompt=8192, gen=0)
    assert e.fits
    assert e.memory_gb_per_gpu == pytest.approx(25.752, abs=0.002)


def test_pipelined_prefill_arithmetic() -> None:
    # 4 GPUs, stages of 10 ms, hops of 1 ms: one call of 4 micro-batches takes the first
    # micro-batch's trip (4 x 11 = 44 ms) + 3 x the slowest stage (11 ms) = 77 ms
    assert pipelined_prefill_s([0.01] * 4, 4, 4, 0.001) == pytest.approx(0.077)
    # 8 micro-batches in calls of 4: the pipeline drains between calls: 2 x 77 ms
    assert pipelined_prefill_s([0.01] * 4, 8, 4, 0.001) == pytest.approx(0.154)
    # one micro-batch cannot overlap: the sum of the stages
    assert pipelined_prefill_s([0.02, 0.01], 1, 4, 0.0) == pytest.approx(0.03)


def test_more_gpus_speed_up_long_prompts_not_short_ones() -> None:
    one = estimate("llama-3-8b", "f16", "rtx-4090", prompt=4096, gen=0)
    four = estimate("llama-3-8b", "f16", "rtx-4090", gpus=4, prompt=4096, gen=0)
    short1 = estimate("llama-3-8b", "f16", "rtx-4090", prompt=512, gen=0)
    short4 = estimate("llama-3-8b", "f16", "rtx-4090", gpus=4, prompt=512, gen=0)
    assert one.prefill_tokens_per_s and four.prefill_tokens_per_s
    assert short1.prefill_tokens_per_s and short4.prefill_tokens_per_s
    # measured (calibration set): 6,531 -> 15,144 tok/s at pp4096; 9,382 -> 8,751 at pp512
    assert four.prefill_tokens_per_s > 1.8 * one.prefill_tokens_per_s
    assert short4.prefill_tokens_per_s < short1.prefill_tokens_per_s


def test_node_hop_arithmetic() -> None:
    # 25GbE: 25 / 8 x 0.9 = 2.8125 GB/s; 16 KB of hidden state + 60 us of TCP latency
    assert node_hop_s(25, 60, 16384) == pytest.approx(60e-6 + 16384 / 2.8125e9)


def test_plan_capacity_uses_the_specs_power_limit(tmp_path: Path) -> None:
    from rigkit.estimate.capacity import Capacity, CapacityRow, plan_capacity
    from rigkit.spec import load_spec, resolve

    example = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"
    text = example.read_text(encoding="utf-8")
    assert "{id: rtx-4090, quantity: 4}" in text
    capped = tmp_path / "capped.yaml"
    capped.write_text(
        text.replace(
            "{id: rtx-4090, quantity: 4}", "{id: rtx-4090, quantity: 4, power_limit_w: 300}"
        ),
        encoding="utf-8",
    )
    stock = plan_capacity(resolve(load_spec(example)))
    at_300 = plan_capacity(resolve(load_spec(capped)))
    assert any("300 W power limit" in a for a in at_300.assumptions)

    def row(cap: Capacity) -> CapacityRow:
        return next(
            r
            for r in cap.rows
            if (r.model, r.quant, r.engine) == ("llama-3-70b", "q4_k_m", "llama.cpp")
        )

    a, b = row(stock), row(at_300)
    assert a.decode_tokens_per_s and b.decode_tokens_per_s
    assert a.prefill_tokens_per_s and b.prefill_tokens_per_s
    # decode within a few percent; prefill lower with the clock (87% at 300 W of 450)
    assert b.decode_tokens_per_s == pytest.approx(a.decode_tokens_per_s, rel=0.03)
    assert b.prefill_tokens_per_s < 0.95 * a.prefill_tokens_per_s


def test_two_machines_join_their_memory_over_the_network() -> None:
    one = estimate("llama-3.1-405b", "q4_k_m", "rtx-4090", gpus=8)
    two = estimate("llama-3.1-405b", "q4_k_m", "rtx-4090", gpus=8, nodes=2)
    # ~243 GB of weights: not on 8 x 24 GB (206 GB), on 16 x 24 GB in two machines
    assert not one.fits and two.fits and (two.gpus, two.nodes) == (16, 2)
    # 15 boundaries between the 16 GPUs: 14 inside the machines over PCIe through host memory
    # (104.6 us fitted + 2 x 65,536 B / 25.2 GB/s = 5.2 us) and 1 over 25GbE TCP (60 us +
    # 65,536 B / 2.8125 GB/s = 23.3 us): 14 x 109.8 + 83.3 = 1,620 us per token
    assert dict(two.decode_terms)["interconnect"] == pytest.approx(1.6205, rel=0.005)
    assert any("2 machines of 8 GPUs" in a and "RPC" in a for a in two.assumptions)
    with pytest.raises(EstimateError, match=r"layer \(llama.cpp RPC\) or pipeline"):
        estimate(
            "llama-3-70b", "awq-int4", "rtx-4090", gpus=4, nodes=2, engine="vllm", split="tensor"
        )


# --- risers, open frames and a card's own size -----------------------------------------------------


def _four_3090s(tmp_path: Path, gpu_line: str) -> list[str]:
    """CLR findings of the reference 4-GPU build with four RTX 3090s as ``gpu_line`` says."""
    from rigkit.catalog import load_catalog
    from rigkit.design.registry import run_rules
    from rigkit.spec import load_spec, resolve

    example = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"
    text = example.read_text(encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace("{id: rtx-4090, quantity: 4}", gpu_line), encoding="utf-8")
    build = resolve(load_spec(spec))
    return [f.rule for f in run_rules(build, load_catalog()) if f.rule.startswith("CLR")]


def test_four_3090s_on_risers_no_longer_fail_clearance(tmp_path: Path) -> None:
    # the RTX 3090 Founders Edition is 3 slots wide: four in a row overlap (CLR001)
    in_slots = _four_3090s(tmp_path, "{id: rtx-3090, quantity: 4}")
    assert "CLR001" in in_slots
    # on riser cables each card takes one slot's connector and covers nothing else
    on_risers = _four_3090s(tmp_path, "{id: rtx-3090, quantity: 4, riser: true}")
    assert "CLR001" not in on_risers and "CLR003" not in on_risers


def test_a_spec_gives_a_cards_own_size_with_its_source(tmp_path: Path) -> None:
    from rigkit.errors import SpecError
    from rigkit.spec import load_spec, resolve

    example = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"
    text = example.read_text(encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        text.replace(
            "{id: rtx-4090, quantity: 4}",
            "{id: rtx-4090, quantity: 4, slot_width: 2, length_mm: 280, size_source: "
            "'a 2-slot water-cooled partner card, maker page'}",
        ),
        encoding="utf-8",
    )
    build = resolve(load_spec(spec))
    g = build.gpus[0].gpu
    assert (g.slot_width, g.length_mm) == (2, 280)
    assert g.sources["slot_width"].startswith("spec: a 2-slot water-cooled")
    spec.write_text(
        text.replace("{id: rtx-4090, quantity: 4}", "{id: rtx-4090, quantity: 4, slot_width: 2}"),
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="size_source"):
        resolve(load_spec(spec))
