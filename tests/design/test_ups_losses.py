"""The UPS's own losses: the circuit feeds the UPS, which draws its load over its efficiency.

The build is rigparts' reference-like build (2612.81 W at the PSUs' input, worked out in
test_design_numbers.py) with rigparts' 2700 W online UPS. The reference example uses the catalog's
APC SRT3000XLA (94% in online mode, from APC's sheet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rigparts as rp

from rigkit.build import Site
from rigkit.design import model
from rigkit.design.plan import PlanResult, plan
from rigkit.design.registry import Finding, Severity

WALL = 2612.81  # rp.ref(): PSU0 1621.62 + PSU1 991.19 W at the PSUs' input


CATALOG = rp.catalog(
    gpus=[rp.gpu(id="a100-40gb", name="A100 40GB", vram_gb=40)], cloud=[rp.cloud()]
)


def one(r: PlanResult, code: str) -> Finding:
    (f,) = [f for f in r.findings if f.rule == code]
    return f


def test_efficiency_from_the_maker_or_the_topology_default() -> None:
    assert model.ups_efficiency(rp.ups()) == (0.94, "default for online units")
    li = rp.ups(topology="line-interactive")
    assert model.ups_efficiency(li) == (0.97, "default for line-interactive units")
    assert model.ups_efficiency(rp.ups(efficiency_full_load=0.95)) == (0.95, "maker's sheet")


def test_no_ups_no_losses() -> None:
    b = model.power_budget(rp.ref())
    assert b.ups_efficiency is None
    assert b.ups_loss_w == 0
    assert b.circuit_w == pytest.approx(WALL, abs=0.02)
    assert b.room_heat_btu_h == pytest.approx(b.heat_btu_h)  # 2612.81 x 3.412 = 8914.9


def test_online_ups_budget() -> None:
    b = model.power_budget(rp.ref(ups=rp.ups()))
    assert b.wall_w == pytest.approx(WALL, abs=0.02)  # the UPS's load: unchanged
    # 2612.81 / 0.94 = 2779.59 W at the UPS's input; 2779.59 - 2612.81 = 166.78 W of losses
    assert b.circuit_w == pytest.approx(2779.59, abs=0.02)
    assert b.ups_loss_w == pytest.approx(166.78, abs=0.02)
    # machine 2612.81 x 3.412 = 8914.9 BTU/h; room 2779.59 x 3.412 = 9483.9 BTU/h
    assert b.heat_btu_h == pytest.approx(8914.9, abs=0.5)
    assert b.room_heat_btu_h == pytest.approx(9483.9, abs=0.5)
    d = b.to_dict()
    assert d["circuit_w"] == pytest.approx(2779.6)
    assert d["ups_loss_w"] == pytest.approx(166.8)
    assert d["room_heat_btu_h"] == 9484
    assert d["ups_efficiency_from"] == "default for online units"


def test_line_interactive_and_maker_figures() -> None:
    li = model.power_budget(rp.ref(ups=rp.ups(topology="line-interactive")))
    # 2612.81 / 0.97 = 2693.62 W; losses 80.81 W
    assert li.circuit_w == pytest.approx(2693.62, abs=0.02)
    assert li.ups_loss_w == pytest.approx(80.81, abs=0.02)
    maker = model.power_budget(rp.ref(ups=rp.ups(efficiency_full_load=0.95)))
    # 2612.81 / 0.95 = 2750.33 W; losses 137.52 W
    assert maker.circuit_w == pytest.approx(2750.33, abs=0.02)
    assert maker.ups_loss_w == pytest.approx(137.52, abs=0.02)


def test_circuit_carries_the_ups_input() -> None:
    site = Site(mains_voltage_v=120, breaker_a=30, dedicated_circuit=True, other_load_w=50)
    f = one(plan(rp.ref(ups=rp.ups(), site=site), capacity=False, catalog=CATALOG), "CIR001")
    # 2779.59 + 50 = 2829.59 W <= 120 x 30 x 0.8 = 2880 W
    assert f.severity is Severity.INFO
    assert f.data["load_w"] == pytest.approx(2829.6, abs=0.1)
    assert f.data["usable_w"] == 2880
    assert f.data["wall_w"] == pytest.approx(2612.8, abs=0.1)
    assert f.data["ups_loss_w"] == pytest.approx(166.8, abs=0.1)
    assert "2613 W machine + 167 W UPS losses at 94% efficiency + 50 W other" in f.message
    # 150 W other: 2779.59 + 150 = 2929.59 W > 2880 W, where the machine alone (2762.81) fits
    site2 = Site(mains_voltage_v=120, breaker_a=30, dedicated_circuit=True, other_load_w=150)
    f2 = one(plan(rp.ref(ups=rp.ups(), site=site2), capacity=False, catalog=CATALOG), "CIR001")
    assert f2.severity is Severity.ERROR
    assert f2.data["load_w"] == pytest.approx(2929.6, abs=0.1)


def test_heat_in_the_room_counts_the_ups() -> None:
    r = plan(
        rp.ref(ups=rp.ups(), site=Site(room_cooling_btu_h=9200.0)), capacity=False, catalog=CATALOG
    )
    thm = one(r, "THM001")
    # (2612.81 + 166.78) x 3.412 = 2779.59 x 3.412 = 9483.9 BTU/h = 0.79 tons
    assert thm.data["heat_btu_h"] == 9484
    assert thm.data["tons"] == pytest.approx(0.79)
    assert "2613 W machine + 167 W UPS losses = 2780 W x 3.412 = 9,484 BTU/h" in thm.message
    # 9200 BTU/h would cover the machine alone (8915) but not the room with the UPS (9484)
    hvc = one(r, "HVC001")
    assert hvc.severity is Severity.ERROR
    assert hvc.data["heat_btu_h"] == 9484
    assert "the machine and its UPS" in hvc.message
    assert "284 BTU/h" in hvc.fix  # 9484 - 9200 = 284 (9483.9 - 9200 = 283.9)


def test_ups_sizing_still_uses_its_output_load() -> None:
    f = one(plan(rp.ref(ups=rp.ups()), capacity=False, catalog=CATALOG), "UPS001")
    # the UPS carries the PSUs' input, not its own: 2612.81 / 2700 = 96.8% (> 80%: warning)
    assert f.data["wall_w"] == pytest.approx(2612.8, abs=0.1)
    assert f.data["va"] == 2639  # 2612.81 / 0.99
    assert f.severity is Severity.WARNING


def test_electricity_and_break_even_pay_for_the_losses() -> None:
    b = rp.ref(ups=rp.ups())
    # 2.77959 kW x (24 h x 0.6) x 30 days x $0.17 = 2.77959 x 14.4 x 5.1 = $204.13
    assert model.electricity_usd_per_month(b, WALL) == pytest.approx(204.13, abs=0.01)
    # per hour: 2.77959 x 0.17 = $0.4725
    assert model.electricity_usd_per_hour(b, WALL) == pytest.approx(0.4725, abs=0.0001)
    r = plan(b, capacity=False, catalog=CATALOG)
    assert r.summary.electricity_usd_month == pytest.approx(204.13, abs=0.01)
    cst = one(r, "CST001")
    assert cst.data["energy_w"] == pytest.approx(2779.6, abs=0.1)
    assert "2780 W with 167 W of UPS losses" in cst.message
    be = one(r, "CST002")
    # parts 18405 + UPS 2200 = 20605; 20605 / (32.77 - 0.4725) = 20605 / 32.2975 = 637.98 h
    assert be.data["total_usd"] == 20605
    assert be.data["break_even_h"] == pytest.approx(637.98, abs=0.05)
    assert r.summary.break_even_h == pytest.approx(637.98, abs=0.05)


def test_summary_heat_is_the_machines_room_heat_is_beside_it() -> None:
    s = plan(rp.ref(ups=rp.ups()), capacity=False, catalog=CATALOG).summary
    assert s.heat_btu_h == pytest.approx(8914.9, abs=0.5)  # 2612.81 x 3.412, the machine
    d = s.to_dict()
    assert d["heat_btu_h"] == 8915
    assert d["power"]["room_heat_btu_h"] == 9484  # 2779.59 x 3.412


def test_catalog_srt3000xla_is_94_percent_online() -> None:
    from rigkit.catalog import load_catalog

    cat = load_catalog()
    srt = cat.ups["apc-srt3000xla"]
    assert srt.efficiency_full_load == 0.94
    assert "94%" in srt.sources["efficiency_full_load"]
    for u in cat.ups.values():  # every unit has a figure: its own or its topology's default
        eff, how = model.ups_efficiency(u)
        assert 0.9 <= eff <= 0.99, u.id
        if u.efficiency_full_load is None:
            assert eff == model.UPS_DEFAULT_EFFICIENCY[u.topology], u.id
            assert how == f"default for {u.topology} units", u.id
        else:
            assert (eff, how) == (u.efficiency_full_load, "maker's sheet"), u.id


def test_reference_example_figures() -> None:
    from rigkit.spec import load_build

    spec = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"
    if not spec.exists():
        pytest.skip("reference example not present")
    p = plan(load_build(spec), capacity=False, catalog=CATALOG).summary.power
    # the reference's SRT3000XLA (94%): wall / 0.94 on the circuit, the rest is UPS losses;
    # its wall power is ~2593 W: 2593 / 0.94 = 2758.5 W, 165.5 W of losses, 2758.5 x 3.412 =
    # 9412 BTU/h in the room against 2593 x 3.412 = 8847 BTU/h from the machine
    assert p.ups_efficiency == 0.94
    assert p.wall_w == pytest.approx(2593, abs=1)
    assert p.circuit_w == pytest.approx(2758.5, abs=1.1)
    assert p.ups_loss_w == pytest.approx(165.5, abs=0.1)
    assert p.room_heat_btu_h == pytest.approx(9412, abs=4)
    assert p.circuit_w == pytest.approx(p.wall_w / 0.94)
    assert p.ups_loss_w == pytest.approx(p.wall_w * (1 / 0.94 - 1))  # 6.38% of the load
    assert p.room_heat_btu_h == pytest.approx(p.wall_w / 0.94 * 3.412)
