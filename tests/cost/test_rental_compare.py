"""Owning against renting, like for like (rigkit.cost) on the reference build at the 20 A site.

Figures worked out by hand from the catalog: hardware $20,352 (cost lines of
examples/reference-4x4090-20a.yaml), sustained wall power 2,592.9 W machine / 0.94 UPS efficiency
= 2,758.4 W at the outlet, electricity $0.17/kWh -> own $/h = 2.7584 x 0.17 = $0.46893/h.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rigkit.catalog import load_catalog
from rigkit.cost import compare_costs
from rigkit.cost.rental import period_end, price_age_days
from rigkit.design.plan import PlanResult, plan
from rigkit.spec import load_build

ROOT = Path(__file__).resolve().parents[2]
REF_20A = ROOT / "examples" / "reference-4x4090-20a.yaml"
TODAY = date(2026, 12, 2)
OWN_H = 2.7584182518 * 0.17  # $0.468931/h


@pytest.fixture(scope="module")
def ref() -> PlanResult:
    return plan(load_build(REF_20A), capacity=False, today=TODAY)


def test_price_dates_and_ages() -> None:
    # a year means its last day: "2024" -> 2024-12-31; 2025-12-31 is 365 days on, and
    # 2026-12-02 is day 336 of 2026: 365 + 336 = 701 days
    assert period_end("2024") == date(2024, 12, 31)
    assert period_end("2024-02") == date(2024, 2, 29)  # a leap year
    assert price_age_days("2024", TODAY) == 701
    assert price_age_days("2026-11-15", TODAY) == 17
    assert price_age_days("2027", TODAY) == 0  # not past yet


def test_break_even_against_four_rented_4090s(ref: PlanResult) -> None:
    assert ref.cost is not None
    same = ref.cost.like_for_like
    assert same is not None and same.rental.basis == "same card"
    (piece,) = same.rental.pieces
    # RunPod rents the RTX 4090 one card at a time: 4 x $0.69 = $2.76/h, priced as of 2024
    assert (piece.instance_id, piece.count, piece.price_as_of) == ("runpod-1x-rtx-4090", 4, "2024")
    assert same.rental.usd_per_hour == pytest.approx(2.76)
    # 20,352 / (2.76 - 0.468931) = 20,352 / 2.291069 = 8,883.2 h (370 days of 24/7 use)
    assert same.break_even_h == pytest.approx(8883.2, abs=0.5)
    # 701 days > 365: the price says it is old
    assert piece.age_days == 701 and piece.stale and same.rental.stale


def test_break_even_against_the_seeds_p4d(ref: PlanResult) -> None:
    assert ref.cost is not None
    p4d = ref.cost.named
    assert p4d is not None and p4d.rental.instance_ids == ("aws-p4d-24xlarge",)
    # 20,352 / (32.77 - 0.468931) = 20,352 / 32.301069 = 630.07 h
    assert p4d.break_even_h == pytest.approx(630.07, abs=0.05)
    # 8 x 40 GB = 320 GB against 4 x 24 GB = 96 GB: 3.33x; 8 x 1,555 = 12,440 GB/s against
    # 4 x 1,008 = 4,032 GB/s: 3.09x -> not like for like
    assert p4d.rental.vram_ratio == pytest.approx(320 / 96)
    assert p4d.rental.bandwidth_ratio == pytest.approx(12440 / 4032)
    assert not p4d.rental.like_for_like
    assert p4d.rental.pieces[0].price_as_of == "2024" and p4d.rental.stale


def test_three_year_cost_of_ownership(ref: PlanResult) -> None:
    assert ref.cost is not None
    own = ref.cost.ownership
    assert own.horizon_years == 3 and own.hardware_usd == pytest.approx(20352)
    gpu = next(x for x in own.lines if x.category == "gpu")
    # 4 x $1,800 = $7,200 keeps 0.84 a year: 7,200 x 0.84^3 = 7,200 x 0.592704 = $4,267.47
    assert gpu.resale_usd == pytest.approx(4267.47, abs=0.01)
    # electricity: 2.7584 kW x (24 h x 0.6) x 30 days x $0.17 = $202.58/month; over 3 years of
    # 365.25 days: 202.58 / 30 x 365.25 x 3 = $7,399.2
    assert own.electricity_usd_month == pytest.approx(202.58, abs=0.01)
    assert own.electricity_usd == pytest.approx(7399.2, abs=0.1)
    assert own.tco_usd == pytest.approx(own.hardware_usd - own.resale_usd + own.electricity_usd)
    # renting 4 x 4090 for the same 24 h x 365.25 x 3 = 26,298 h: 2.76 x 26,298 = $72,582.48
    same = ref.cost.like_for_like
    assert same is not None and same.rent_usd == pytest.approx(72582.48, abs=0.01)
    # net of resale: (20,352 - resale) / 2.291069
    assert same.break_even_net_h == pytest.approx(
        (20352 - own.resale_usd) / (2.76 - OWN_H), abs=0.5
    )


def test_nearest_instance_when_the_card_is_not_rented() -> None:
    cat = load_catalog()
    assert not any(i.gpu_id == "rtx-5090" for i in cat.cloud.values())
    from rigkit.spec import load_spec, resolve

    spec = load_spec(REF_20A)
    gpus = [g.model_copy(update={"id": "rtx-5090"}) for g in spec.parts.gpus]
    spec = spec.model_copy(update={"parts": spec.parts.model_copy(update={"gpus": gpus})})
    c = compare_costs(resolve(spec), cat, today=TODAY)
    lfl = c.like_for_like
    assert lfl is not None and lfl.rental.basis == "nearest"
    # 4 x RTX 5090 = 128 GB, 4 x 1,792 = 7,168 GB/s. Six rented RTX 4090s (144 GB, 6,048 GB/s):
    # |ln(144/128)| + |ln(6048/7168)| = 0.118 + 0.170 = 0.288; the next, 4 x A100 40GB on
    # Lambda (160 GB, 6,220 GB/s): 0.223 + 0.142 = 0.365
    assert lfl.rental.instance_ids == ("runpod-1x-rtx-4090",)
    assert lfl.rental.pieces[0].count == 6
    assert lfl.rental.usd_per_hour == pytest.approx(6 * 0.69)


def test_plan_json_and_text_show_the_comparison() -> None:
    from typer.testing import CliRunner

    from rigkit.cli.main import app

    res = CliRunner().invoke(app, ["plan", str(REF_20A), "--json"])
    assert res.exit_code == 1  # the reference still has error findings
    doc = json.loads(res.stdout)
    rentals = {r["basis"]: r for r in doc["cost"]["rentals"]}
    assert rentals["same card"]["break_even_h"] == pytest.approx(8883.2, abs=0.5)
    assert rentals["named"]["break_even_h"] == pytest.approx(630.1, abs=0.05)
    assert rentals["named"]["pieces"][0]["price_as_of"] == "2024"
    assert doc["cost"]["ownership"]["horizon_years"] == 3
    res = CliRunner().invoke(app, ["plan", str(REF_20A)], env={"COLUMNS": "140"})
    assert "Break-even vs renting" in res.stdout and "8,883 h" in res.stdout
    assert "630 h against AWS EC2 p4d.24xlarge" in res.stdout
    assert "as of 2024" in res.stdout
