"""The numbers behind the rules, worked out by hand (see rigparts.py for the parts)."""

from __future__ import annotations

import dataclasses

import pytest
import rigparts as rp

from rigkit.build import Site
from rigkit.design import model
from rigkit.design.plan import plan
from rigkit.design.registry import Finding, Severity

CATALOG = rp.catalog(
    gpus=[
        rp.gpu(id="a100-40gb", name="A100 40GB", vram_gb=40),
        rp.gpu(id="l40s", name="L40S", vram_gb=48),
    ],
    cloud=[
        rp.cloud(),
        rp.cloud(id="g96", name="2x L40S", gpu_id="l40s", gpu_count=2, price_per_hour_usd=4.0),
    ],
)


def one(findings: list[Finding], code: str) -> Finding:
    (f,) = [f for f in findings if f.rule == code]
    return f


def test_efficiency_interpolation() -> None:
    p = rp.psu(1000)
    # 900 W = 0.9 load, between (0.5, 0.94) and (1.0, 0.90): 0.94 - 0.04 x 0.4/0.5 = 0.908
    assert model.psu_efficiency(p, 900) == pytest.approx(0.908)
    # below the first point the curve is flat: 50 W = 0.05 -> 0.90
    assert model.psu_efficiency(p, 50) == pytest.approx(0.90)
    # curve given in percent works too: 94 -> 0.94 at 0.5
    pct = rp.psu(1000, efficiency_curve=[(0.2, 92.0), (0.5, 94.0)])
    assert model.psu_efficiency(pct, 500) == pytest.approx(0.94)


def test_power_budget_of_the_reference_like_build() -> None:
    b = model.power_budget(rp.ref())
    # system 350 + 60 + 80 + 30 + 10 + 30 + 10 = 570; GPUs 4 x 450 = 1800
    assert b.sustained_w == pytest.approx(2370)
    # peak: GPUs at 1.5 x 450 = 675 each: 570 + 2700 = 3270
    assert b.peak_w == pytest.approx(3270)
    p0, p1 = b.psus
    # auto split: PSU0 headroom 1600-570 = 1030 vs 1000 -> gpu0; then 1000 vs 580 -> gpu1 on PSU1;
    # 580 vs 550 -> gpu2 on PSU0; gpu3 on PSU1
    assert p0.gpus == (0, 2)
    assert p1.gpus == (1, 3)
    assert p0.load_w == pytest.approx(1470)  # 570 + 900
    assert p1.load_w == pytest.approx(900)  # 90% of 1000 W
    assert p1.loading == pytest.approx(0.9)
    # PSU0 at 1470/1600 = 0.91875: 0.94 - 0.04 x 0.41875/0.5 = 0.9065 -> 1470/0.9065 = 1621.62
    assert p0.efficiency == pytest.approx(0.9065)
    assert p0.wall_w == pytest.approx(1621.62, abs=0.01)
    # PSU1: 900/0.908 = 991.19
    assert p1.wall_w == pytest.approx(991.19, abs=0.01)
    assert b.wall_w == pytest.approx(2612.81, abs=0.02)
    # heat: 2612.81 x 3.412 = 8914.9 BTU/h
    assert b.heat_btu_h == pytest.approx(8914.9, abs=0.5)


def test_manual_psu_split() -> None:
    b = model.power_budget(rp.ref(psu_split="manual", psu_gpu_assignment=(0, 0, 1, 1)))
    # PSU0: 570 + 2 x 450 = 1470, PSU1: 900 (same totals, different GPUs)
    assert b.psus[0].gpus == (0, 1)
    assert b.psus[1].gpus == (2, 3)
    assert b.psus[0].load_w == pytest.approx(1470)


def test_circuit_usable_watts() -> None:
    assert model.circuit_usable_w(120, 15) == pytest.approx(1440)  # 120 x 15 x 0.8
    assert model.circuit_usable_w(120, 20) == pytest.approx(1920)  # 120 x 20 x 0.8
    assert model.circuit_usable_w(230, 16) == pytest.approx(2944)  # 230 x 16 x 0.8


def test_circuit_finding_numbers_with_other_load() -> None:
    site = Site(mains_voltage_v=120, breaker_a=20, dedicated_circuit=True, other_load_w=100)
    f = one(plan(rp.ref(site=site), capacity=False, catalog=CATALOG).findings, "CIR001")
    assert f.severity is Severity.ERROR
    # 2612.8 + 100 = 2712.8 W > 1920 W
    assert f.data["load_w"] == pytest.approx(2712.8, abs=0.1)
    assert f.data["usable_w"] == 1920
    # 120 V 20 A (1920 W) is too small; 240 V 20 A = 240 x 20 x 0.8 = 3840 W is the first that fits
    assert "240 V 20 A (3840 W)" in f.fix
    assert "1920" in f.message


def test_airflow_needed() -> None:
    # 1.76 x 2370 / 10 = 417.1 CFM; in Fahrenheit 3.16 x 2370 / 18 = 416.1 (same within rounding)
    assert model.airflow_needed_cfm(2370) == pytest.approx(417.12)
    assert model.fans_cfm(rp.ref()) == pytest.approx(6 * 93.3)  # 559.8


def test_memory_bandwidth() -> None:
    m = model.memory_config(rp.ref())
    # min(5600 kit, 5200 CPU) = 5200: 8 x 5200 x 8 B = 332.8 GB/s; the seed's 358.4 assumes 5600
    assert m.speed_mts == 5200
    assert m.bandwidth_gb_s == pytest.approx(332.8)
    assert m.effective_gb_s == pytest.approx(250.0)  # fabric cap
    m4 = model.memory_config(rp.ref(memory_modules=4))
    assert m4.bandwidth_gb_s == pytest.approx(166.4)  # 4 x 5200 x 8


def test_raid0_read_and_link_cap() -> None:
    vols = {v.name: v for v in model.volumes(rp.ref())}
    # 2 x 14.5 = 29.0 GB/s; each PCIe 5.0 x4 link = 4 x 3.938 = 15.75 GB/s, so no cap
    assert vols["models"].read_gb_s == pytest.approx(29.0)
    assert vols["models"].link_caps_gb_s[0] == pytest.approx(15.752)
    # in PCIe 4.0 sockets: each capped at 4 x 1.969 = 7.876 -> 15.75 GB/s for the pair
    gen4 = rp.board(m2_slots=[rp.M2Slot(name=f"M2_{i}", gen=4) for i in range(1, 5)])
    m2 = {s.name: s for s in gen4.m2_slots}
    b = rp.ref(
        motherboard=gen4,
        drives=tuple(
            dataclasses.replace(d, m2_slot=m2[d.m2_slot.name] if d.m2_slot else None)
            for d in rp.ref().drives
        ),
    )
    vols4 = {v.name: v for v in model.volumes(b)}
    assert vols4["models"].read_gb_s == pytest.approx(15.752)


def test_nic_link_numbers() -> None:
    f = one(plan(rp.ref(), capacity=False, catalog=CATALOG).findings, "NET001")
    # 2 x 25 Gb/s / 8 = 6.25 GB/s; PCIe 3.0 x8 = 8 x 0.985 = 7.88 GB/s
    assert f.data["ports_gb_s"] == pytest.approx(6.25)
    assert f.data["pcie_gb_s"] == pytest.approx(7.88)


def test_gpu_link_x8() -> None:
    b = rp.ref()
    slots = [rp.slot(f"S{i}", i, electrical_lanes=8 if i == 3 else 16) for i in range(1, 8)]
    board = rp.board(pcie_slots=slots)
    b = rp.placed(dataclasses.replace(b, motherboard=board), ["S1", "S3"])
    f = one(plan(b, capacity=False, catalog=CATALOG).findings, "PCI003")
    # PCIe 4.0 x8 = 8 x 1.969 = 15.75 GB/s vs x16 = 31.5 GB/s
    assert f.data["bandwidth_gb_s"] == pytest.approx(15.75)
    assert f.data["full_bandwidth_gb_s"] == pytest.approx(31.5)


def test_connector_adapters_count() -> None:
    conn = {"pcie_8pin": 8, "eps_8pin": 2}
    b = rp.ref(
        psus=(
            rp.psu(1600, atx_version="2.x", connectors=conn),
            rp.psu(1000, atx_version="2.x", connectors=conn),
        )
    )
    f = one(plan(b, capacity=False, catalog=CATALOG).findings, "PSU001")
    # 4 cards x ceil(600 W max limit / 150 W) = 4 x 4 = 16 8-pin leads, the PSUs have 8 + 8
    assert f.data["adapters"] == 4
    assert f.data["8pin_per_adapter"] == 4
    assert f.data["8pin_needed"] == 16
    assert f.severity is Severity.WARNING


def test_transients_on_atx2() -> None:
    conn = {"pcie_8pin": 8, "eps_8pin": 2}
    b = rp.ref(
        psus=(
            rp.psu(1600, atx_version="2.x", connectors=conn),
            rp.psu(1000, atx_version="2.x", connectors=conn),
        )
    )
    fs = [f for f in plan(b, capacity=False, catalog=CATALOG).findings if f.rule == "PWR002"]
    # PSU0: 570 + 2 x 675 = 1920 > 1600 (no excursion allowance); PSU1: 2 x 675 = 1350 > 1000
    assert [f.data["peak_w"] for f in fs] == [1920, 1350]
    assert all(f.severity is Severity.ERROR for f in fs)


def test_ups_runtime_formula_and_chart() -> None:
    u = rp.ups()
    # 864 Wh x 0.8 x 0.9 = 622.08 Wh; at 2000 W: 622.08 / 2000 x 60 = 18.66 min
    minutes, _ = model_ups(u, 2000)
    assert minutes == pytest.approx(18.66, abs=0.01)
    charted = rp.ups(runtime_chart=[(1000, 20.0), (2000, 8.0), (3000, 4.0)])
    # between (2000, 8) and (3000, 4) at 2500 W: 6.0 min
    assert model_ups(charted, 2500)[0] == pytest.approx(6.0)


def model_ups(ups: object, load: float) -> tuple[float, str]:
    from rigkit.design.rules.site import ups_runtime_min

    return ups_runtime_min(ups, load)  # type: ignore[arg-type]


def test_break_even_against_comparable_instance() -> None:
    r = plan(rp.ref(), capacity=False, catalog=CATALOG)
    f = one(list(r.findings), "CST002")
    total = r.summary.total_cost_usd
    # parts: 4000 + 1300 + 8 x 400 + 4 x 1800 + 2 x 450 + 3 x 300 + 275 + 6 x 30 + 150 + 300 = 18405
    assert total == pytest.approx(18405)
    # own electricity: 2.61281 kW x $0.17 = $0.4442/h; 18405 / (32.77 - 0.4442) = 569.4 h
    assert f.data["break_even_h"] == pytest.approx(569.4, abs=0.1)
    # seed: 17972 / 32.77 = 548.4 h ignores electricity
    assert pytest.approx(548.4, abs=0.1) == 17972 / 32.77
    # not comparable: 8 x 40 = 320 GB vs 96 GB; comparable g96 (2 x 48 = 96 GB at $4/h):
    # 18405 / (4.0 - 0.4442) = 5176.2 h
    assert f.severity is Severity.WARNING
    assert f.data["comparable"] == "g96"
    assert f.data["comparable_break_even_h"] == pytest.approx(5176.2, abs=0.2)


def test_electricity_per_month() -> None:
    # 2.61281 kW x (24 h x 0.6) x 30 days x $0.17 = $191.88
    assert model.electricity_usd_per_month(rp.ref(), 2612.81) == pytest.approx(191.88, abs=0.01)
    # 8 h/day at 60%, idle 16 h at 15%: 2.61281 x (4.8 + 2.4) x 30 x 0.17 = $95.94
    b = rp.ref(site=Site(hours_per_day=8))
    assert model.electricity_usd_per_month(b, 2612.81) == pytest.approx(95.94, abs=0.01)


def test_lane_count() -> None:
    f = one(plan(rp.ref(), capacity=False, catalog=CATALOG).findings, "PCI001")
    assert f.data["used_lanes"] == 84  # 4 x 16 + 8 + 3 x 4


def test_card_overlap_positions() -> None:
    fs = [f for f in plan(rp.ref(), capacity=False, catalog=CATALOG).findings if f.rule == "CLR001"]
    # gpu0 (1-3) blocks gpu1 at 3; gpu1 (3-5) blocks gpu2 at 5; gpu2 (5-7) blocks the NIC at 6 and gpu3 at 7
    assert [(f.data["position"], f.data["blocked_position"]) for f in fs] == [
        (1, 3),
        (3, 5),
        (5, 6),
        (5, 7),
    ]


def test_ups_finding_numbers() -> None:
    b = rp.ref(ups=rp.ups(watts=3300, va=3500))
    f = one(plan(b, capacity=False, catalog=CATALOG).findings, "UPS001")
    # 2612.81 W / 0.99 PF = 2639.2 VA <= 3500; 2612.81 / 3300 = 79% (under the 80% warning)
    assert f.severity is Severity.INFO
    assert f.data["va"] == 2639
    # 864 Wh x 0.8 x 0.9 = 622.08 Wh / 2612.81 W x 60 = 14.29 min
    assert f.data["runtime_min"] == pytest.approx(14.3)


def test_room_cooling_numbers() -> None:
    f = one(plan(rp.ref(), capacity=False, catalog=CATALOG).findings, "HVC001")
    assert f.severity is Severity.WARNING  # not stated
    assert f.data["heat_btu_h"] == 8915  # 2612.81 x 3.412
    assert "12,000 BTU/h" in f.fix  # one ton covers 8,915 BTU/h


def test_slot_sharing_on_x670e_two_rtx_3090() -> None:
    """Real catalog: on the X670E board PCIEX16_1 (x16 gen 5) shares lanes with PCIEX16_2 (x8)."""
    from pathlib import Path

    from rigkit.spec import load_build

    spec = Path(__file__).resolve().parents[1] / "fixtures/specs/rules/x670e-2x3090.yaml"
    build = load_build(spec)
    gpus = [link for link in model.pcie_links(build) if link.kind == "gpu"]
    # both slots used: PCIEX16_1 drops to x8; PCIEX16_2 is x8 wired. Gen = min(card 4, slot 5,
    # CPU 5) = 4, so each card gets 8 x 1.969 = 15.75 GB/s instead of 16 x 1.969 = 31.5 GB/s
    assert [(g.slot, g.lanes, g.gen) for g in gpus] == [("PCIEX16_1", 8, 4), ("PCIEX16_2", 8, 4)]
    assert [g.bandwidth_gb_s for g in gpus] == pytest.approx([15.75, 15.75], abs=0.01)
    findings = plan(build, capacity=False, catalog=CATALOG).findings
    pci005 = one(findings, "PCI005")
    assert pci005.severity is Severity.WARNING
    assert pci005.data["lanes_before"] == 16 and pci005.data["lanes_after"] == 8
    assert pci005.data["shared_with"] == ["PCIEX16_2"]
    assert sum(1 for f in findings if f.rule == "PCI003") == 2  # both cards below x16
    # lanes: 8 + 8 (GPUs) + 4 (CPU M.2_1) = 20 of the 7950X's 24
    assert one(findings, "PCI001").data["used_lanes"] == 20
