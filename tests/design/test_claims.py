"""The spec's `claims:` (headline hardware figures) checked against the plan, numbers by hand.

The fixture is the reference build with the seed summary's figures as claims. Catalog values
used below: RTX 4090 82.6 TFLOPS FP32, 165.2 dense FP16 tensor, 330.3 dense FP8, 660.6 INT8 TOPS,
1008 GB/s; T705 14.5 GB/s read; iPPC-3000 140 mm 93.3 CFM; 7975WX 128 lanes, DDR5-5200.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.design.claims import ClaimCheck
from rigkit.design.plan import PlanResult, plan
from rigkit.errors import SpecError

SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "specs"


@pytest.fixture(scope="module")
def ref() -> PlanResult:
    from rigkit.spec import load_build

    return plan(load_build(SPECS / "rules" / "reference-claims.yaml"), capacity=False)


def by_figure(r: PlanResult, figure: str) -> ClaimCheck:
    (c,) = [c for c in r.claims if c.figure == figure]
    return c


def test_fp32_330_tflops_holds(ref: PlanResult) -> None:
    c = by_figure(ref, "fp32_tflops")
    assert c.value == pytest.approx(330.4)  # 4 x 82.6
    assert c.verdict == "holds"  # 330 within 5% of 330.4


def test_tensor_2640_is_fp8_sparse_not_dense_fp16(ref: PlanResult) -> None:
    c = by_figure(ref, "tensor_tflops")
    assert c.value == pytest.approx(660.8)  # dense FP16: 4 x 165.2
    assert c.verdict == "inflated"
    # FP8 dense 330.3 x 2 (2:4 sparsity) x 4 GPUs = 2642.4, within 5% of 2640
    assert "FP8 with 2:4 sparsity" in c.note and "2,642" in c.note
    assert "4.0x" in c.note  # 2640 / 660.8 = 3.995


def test_vram_bandwidth_4_tb_s_holds(ref: PlanResult) -> None:
    c = by_figure(ref, "gpu_bandwidth_gb_s")
    assert c.value == pytest.approx(4032)  # 4 x 1008
    assert c.verdict == "holds"


def test_memory_358_gb_s_does_not_hold(ref: PlanResult) -> None:
    c = by_figure(ref, "memory_bandwidth_gb_s")
    assert c.value == pytest.approx(332.8)  # 8 x 5200 x 8 B; 358 / 332.8 = 1.076 > 1.05
    assert c.verdict == "does not hold"


def test_128_lanes_holds_and_says_what_is_used(ref: PlanResult) -> None:
    c = by_figure(ref, "pcie_lanes")
    assert c.value == 128
    assert c.verdict == "holds"
    # 4 GPUs x16 + NIC x8 + 3 drives x4 = 64 + 8 + 12 = 84 used, 44 spare
    assert "use 84 (44 spare)" in c.worked_out


def test_psu_80_85_zone_does_not_hold(ref: PlanResult) -> None:
    c = by_figure(ref, "psu_loading_pct")
    assert c.verdict == "does not hold"
    # PSU 0 carries the system and two GPUs: 1453 / 1600 = 91%; PSU 1 900 / 1000 = 90%,
    # both above 85% x 1.05 = 89.25%
    assert "= 91%" in c.worked_out and "= 90%" in c.worked_out
    assert c.value is not None and c.value > 89.25


def test_power_and_heat_claims_are_low(ref: PlanResult) -> None:
    power = by_figure(ref, "sustained_power_w")
    heat = by_figure(ref, "heat_btu_h")
    # GPUs 4 x 450 + CPU 350 = 2150 W before anything else: above 2200 x 1.05 = 2310 once memory,
    # drives, NIC, fans and board are added
    assert power.verdict == "does not hold"
    assert power.value is not None and power.value > 2310
    # 7500 BTU/h / 3.412 = 2198 W at the wall; the plan's wall power is higher
    assert heat.verdict == "does not hold"
    assert "2,198 W" in heat.note
    # the claim is the machine's heat, and so is the figure it is checked against; the UPS's
    # losses (APC SRT3000XLA at 94%: 2593 W / 0.94 - 2593 W = 165.5 W) heat the room besides,
    # 2593 / 0.94 = 2758 W x 3.412 = 9,412 BTU/h
    assert heat.value == pytest.approx(ref.summary.wall_power_w * 3.412)
    assert heat.worked_out.endswith("BTU/h (the machine)")
    assert "UPS's 165.5 W of losses: 2,758 W x 3.412 = 9,412 BTU/h" in heat.note


def test_950_cfm_is_m3_per_hour(ref: PlanResult) -> None:
    c = by_figure(ref, "fans_cfm")
    assert c.value == pytest.approx(559.8)  # 6 x 93.3
    assert c.verdict == "does not hold"
    assert "951.1 m3/h" in c.note  # 559.8 x 1.699 = 951.1


def test_raid_29_gb_s_and_200_gb_in_7_s_hold_as_ideal(ref: PlanResult) -> None:
    assert by_figure(ref, "storage_read_gb_s").value == pytest.approx(29.0)  # 2 x 14.5
    c = by_figure(ref, "load_time_s")
    # 200 / 29 = 6.90 s from the drives; over PCIe 200 / (4 x 16 x 1.969 = 126.0) = 1.59 s,
    # so the drives bound it: 6.9 <= 7 x 1.05
    assert c.value == pytest.approx(200 / 29.0)
    assert c.verdict == "holds"
    assert "GPUDirect Storage" in c.note


def test_ups_8_10_min_from_the_rules_own_estimate(ref: PlanResult) -> None:
    c = by_figure(ref, "ups_runtime_min")
    wall = ref.summary.wall_power_w
    # 480 Wh x 0.8 x 0.9 / wall W x 60 = 20736 / wall: 8.0 min at ~2593 W, the claim's low end
    assert c.value == pytest.approx(480 * 0.8 * 0.9 / wall * 60)
    assert 7.6 < c.value < 8.4  # type: ignore[operator]
    assert c.verdict == "holds"
    assert "96%" in c.note  # 2593 / 2700 W


def test_cost_line_items_do_not_add_up(ref: PlanResult) -> None:
    c = by_figure(ref, "total_cost_usd")
    # 3899 + 7200 + 3200 + 850 + 899 + 1299 + 450 + 275 = 18072, not 17972
    assert c.verdict == "does not add up"
    assert c.value == pytest.approx(18072)
    assert "$18,072, not $17,972" in c.note


def test_counts_and_json(ref: PlanResult) -> None:
    # holds: FP32, VRAM, VRAM bandwidth, lanes, PSU total, RAID read, load time, UPS = 8 of 15
    assert sum(c.holds for c in ref.claims) == 8
    assert len(ref.claims) == 15
    d = ref.to_dict()["claims"]
    assert [x["figure"] for x in d][:2] == ["fp32_tflops", "tensor_tflops"]
    assert d[1]["verdict"] == "inflated"


def test_no_claims_no_section() -> None:
    from rigkit.spec import load_build

    r = plan(load_build(SPECS / "rules" / "ok-2x4090.yaml"), capacity=False)
    assert r.claims == ()
    assert "claims" not in r.to_dict()


def test_claim_validation(tmp_path: Path) -> None:
    from rigkit.spec import load_build

    base = (SPECS / "rules" / "ok-2x4090.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "claims:\n  - {claim: x, figure: load_time_s, value: 7}\n")
    with pytest.raises(SpecError, match="size_gb"):
        load_build(bad)
    bad.write_text(base + "claims:\n  - {claim: x, figure: warp_speed, value: 7}\n")
    with pytest.raises(SpecError):
        load_build(bad)


def test_every_figure_is_checked_and_documented() -> None:
    from typing import get_args

    from rigkit.design.claims import CHECKS, FIGURE_DOCS
    from rigkit.spec import ClaimFigure

    # the spec's list of figures, the checks and the docs name the same 15 figures
    assert set(get_args(ClaimFigure)) == set(CHECKS) == set(FIGURE_DOCS)
    assert len(CHECKS) == 15
