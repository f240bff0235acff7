"""UPS002: the UPS's input plug against the site's branch circuit, and the plug data behind it."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pydantic
import pytest
import rigparts as rp
import yaml

from rigkit.build import Build, Site
from rigkit.catalog import load_catalog
from rigkit.catalog.loader import Catalog
from rigkit.catalog.parts import INPUT_PLUGS, InputPlug, Ups
from rigkit.design.registry import Finding, Severity
from rigkit.design.rules import site as site_rules
from rigkit.spec import load_build

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"
EU = ROOT / "examples" / "reference-4x4090-eu.yaml"
DESKTOP = ROOT / "examples" / "2x3090-desktop.yaml"

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def ups002(build: Build, catalog: Catalog | None = None) -> Finding:
    """UPS002's one finding; the alternatives from ``catalog`` (default: the packaged one)."""
    (f,) = list(site_rules.ups_input_plug(build, catalog or load_catalog()))
    return f


def ref_at(preset: str, tmp_path: Path, ups: str | None = None) -> Build:
    """The reference example with ``site: {preset: ...}`` (and optionally another UPS id)."""
    doc = yaml.safe_load(REF.read_text(encoding="utf-8"))
    doc["site"] = {"preset": preset}
    if ups is not None:
        doc["parts"]["ups"] = ups
    path = tmp_path / f"ref-{preset}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_build(path)


# --- the plug table and the catalog -----------------------------------------------------------


def test_every_plug_id_has_a_rating() -> None:
    assert set(INPUT_PLUGS) == set(get_args(InputPlug))
    # NEMA WD 6: L5-30P 30 A 125 V, 5-15P 15 A 125 V, L6-30P 30 A 250 V
    assert (INPUT_PLUGS["L5-30P"].current_a, INPUT_PLUGS["L5-30P"].voltage_v) == (30, 125)
    assert (INPUT_PLUGS["5-15P"].current_a, INPUT_PLUGS["5-15P"].voltage_v) == (15, 125)
    assert (INPUT_PLUGS["L6-30P"].current_a, INPUT_PLUGS["L6-30P"].voltage_v) == (30, 250)
    # IEC 60320: C14 10 A, C20 16 A, both 250 V and detachable; CEE 7/7 16 A 250 V
    assert (INPUT_PLUGS["IEC-60320-C14"].current_a, INPUT_PLUGS["IEC-60320-C20"].current_a) == (
        10,
        16,
    )
    assert INPUT_PLUGS["IEC-60320-C20"].detachable and not INPUT_PLUGS["IEC-60320-C20"].nema
    assert (INPUT_PLUGS["CEE-7/7"].current_a, INPUT_PLUGS["CEE-7/7"].voltage_v) == (16, 250)
    for plug in INPUT_PLUGS.values():
        assert plug.source, plug.name


def test_catalog_ups_plugs_from_the_makers_sheets() -> None:
    ups = load_catalog().ups
    assert ups["apc-srt3000xla"].input_plug == "L5-30P"
    assert ups["apc-smt1500"].input_plug == "5-15P"
    assert ups["apc-srt3000xli"].input_plug == "IEC-60320-C20"
    for u in ups.values():
        assert u.input_plug is not None, u.id
        assert "input_plug" in u.sources, u.id  # the maker's document that states it
        plug = u.plug
        assert plug is not None
        # a plug carries its unit's full rating: W / V <= plug amps (2700 / 120 = 22.5 <= 30;
        # 1500 / 120 = 12.5 <= 15; 2700 / 230 = 11.7 <= 16)
        assert u.watts / u.output_voltage_v <= plug.current_a, u.id


def test_unknown_plug_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="input_plug"):
        Ups(
            id="x",
            name="x",
            source="test",
            va=1000,
            watts=900,
            battery_wh=100,
            topology="online",
            input_plug="L5-31P",
        )


# --- the reference example at the site presets ------------------------------------------------


def test_reference_at_the_default_site_cannot_be_plugged_in() -> None:
    f = ups002(load_build(REF))  # na-home-office: 120 V 15 A shared
    assert f.severity is E
    assert "L5-30P plug needs a 30 A NEMA L5-30R receptacle on a 30 A circuit" in f.message
    assert "the site has 15 A at 120 V" in f.message
    assert (f.data["plug_a"], f.data["breaker_a"], f.data["voltage_v"]) == (30, 15, 120)
    # a dedicated 30 A 120 V circuit: 120 x 30 x 0.8 = 2880 W continuous
    assert "dedicated 30 A 120 V circuit with a NEMA L5-30R (120 x 30 x 0.8 = 2880 W" in f.fix
    # 4 x 450 W of GPUs alone are 1800 W; the only 15 A-plug units in the catalog give 1000 W
    # (SMT1500) and 1500 W (PR1500LCD): none carries the load, and the circuit's
    # 120 x 15 x 0.8 = 1440 W cannot either
    assert f.data["wall_w"] > 1800
    assert f.data["alternatives"] == []
    assert "1440 W continuous, see CIR001" in f.fix


def test_reference_on_the_seeds_20a_remedy_still_cannot(tmp_path: Path) -> None:
    f = ups002(ref_at("na-dedicated-20a", tmp_path))
    assert f.severity is E
    assert "the site has 20 A at 120 V" in f.message
    assert "1920 W continuous" in f.fix  # 120 x 20 x 0.8


def test_reference_120v_ups_at_240v_and_230v(tmp_path: Path) -> None:
    for preset, volts in (("na-240v-30a", 240), ("eu-230v-16a", 230)):
        f = ups002(ref_at(preset, tmp_path))
        assert f.severity is E, preset
        # the L5-30P is a 125 V plug: 240 (or 230) > 125
        assert f"rated 125 V and the site's mains is {volts} V" in f.message
        # the SRT3000XLI carries it: 2700 W >= ~2600 W, 3000 VA >= 2600 / 0.99 ~ 2630 VA, C20 16 A
        # fits a 16 or 30 A circuit, 230 V class = 240 V class
        assert f.data["alternatives"] == ["apc-srt3000xli"], preset
        assert f.fix == (
            f"choose a UPS for {volts} V mains, such as apc-srt3000xli (IEC-60320-C20, 2700 W)"
        )


def test_reference_with_matching_plugs(tmp_path: Path) -> None:
    # the EU example: C20 inlet, 16 A 250 V, on a 16 A 230 V circuit: 16 <= 16, 250 >= 230
    f = ups002(load_build(EU))
    assert f.severity is INFO
    assert "IEC 60320 C20 inlet (16 A, 250 V)" in f.message
    # the 230 V unit on the 240 V 30 A preset: the 200-240 V class
    assert ups002(ref_at("na-240v-30a", tmp_path, ups="apc-srt3000xli")).severity is INFO
    # the 2x3090 desktop: PR1500LCD's 5-15P on the default 15 A 120 V circuit
    f = ups002(load_build(DESKTOP))
    assert f.severity is INFO
    assert "NEMA 5-15P plug (15 A, 125 V) fits a NEMA 5-15R" in f.message


def test_230v_unit_at_a_120v_site(tmp_path: Path) -> None:
    f = ups002(ref_at("na-home-office", tmp_path, ups="apc-srt3000xli"))
    assert f.severity is E
    assert "230 V unit (200-240 V input) and the site's mains is 120 V" in f.message


# --- NEC Table 210.21(B)(3) and the alternatives, on the hand-written parts -------------------

#: rp.ref's sustained wall power (rigparts.py: 2612.8 W), so a UPS must give 2612.8 W and
#: 2612.8 / 0.99 = 2639.2 VA
ALTS = [
    rp.ups(id="a", name="A", input_plug="5-20P", price_usd=900),  # 2700 W / 3000 VA: fits
    rp.ups(id="b", name="B", input_plug="5-20P", va=2600, price_usd=500),  # 2600 < 2639 VA
    rp.ups(id="c", name="C", input_plug="5-15P", watts=3000, va=3300, price_usd=800),  # fits
    rp.ups(id="d", name="D", input_plug="L5-30P", price_usd=100),  # no 30 A circuit here
    rp.ups(id="e", name="E", input_plug="5-20P", watts=2000, price_usd=300),  # 2000 < 2612.8 W
]


ALTS_CATALOG = rp.catalog(ups=ALTS)


def on(plug: InputPlug | None, volts: float = 120.0, amps: float = 15.0, **kw: object) -> Build:
    return rp.ref(
        ups=rp.ups(input_plug=plug, **kw), site=Site(mains_voltage_v=volts, breaker_a=amps)
    )


def test_alternatives_cheapest_first_that_fit_plug_and_load() -> None:
    f = ups002(on("L5-30P", amps=20.0), ALTS_CATALOG)
    assert f.severity is E
    # a 20 A circuit takes 15 and 20 A receptacles: C ($800, 5-15P) then A ($900, 5-20P);
    # B is short of VA, E of watts, D needs 30 A
    assert f.data["alternatives"] == ["c", "a"]
    assert f.fix.endswith(
        "or choose a UPS whose plug fits this circuit and carries the 2613 W load, "
        "such as c (5-15P, 3000 W) or a (5-20P, 2700 W)"
    )


@pytest.mark.parametrize(
    ("plug", "volts", "amps", "expected"),
    [
        ("5-15P", 120.0, 15.0, INFO),  # 15 A receptacle on a 15 A circuit
        ("5-15P", 120.0, 20.0, INFO),  # 15 A receptacles are allowed on 20 A circuits
        ("5-15P", 120.0, 30.0, W),  # a 30 A circuit may only have 30 A receptacles
        ("5-20P", 120.0, 15.0, E),  # 20 > 15 A
        ("5-20P", 120.0, 20.0, INFO),
        ("L5-30P", 120.0, 20.0, E),  # 30 > 20 A
        ("L5-30P", 120.0, 30.0, INFO),
        ("L6-30P", 240.0, 30.0, INFO),  # 250 V plug at 240 V; the unit must be a 240 V one
        ("IEC-60320-C20", 230.0, 16.0, INFO),  # 16 A inlet, 16 A circuit
        ("IEC-60320-C20", 230.0, 10.0, W),  # 16 A inlet, 10 A circuit
        ("CEE-7/7", 230.0, 16.0, INFO),
        (None, 120.0, 15.0, INFO),  # not stated: not checked
    ],
)
def test_nec_receptacle_table(
    plug: InputPlug | None, volts: float, amps: float, expected: Severity
) -> None:
    f = ups002(
        on(plug, volts, amps, output_voltage_v=120.0 if volts < 160 else volts), ALTS_CATALOG
    )
    assert f.severity is expected, f.message


def test_5_15p_on_a_30a_circuit_explains_the_table() -> None:
    f = ups002(on("5-15P", amps=30.0), ALTS_CATALOG)
    assert "allows only on a 15 A or 20 A circuit" in f.message
    # 120 x 15 x 0.8 = 1440 W continuous
    assert "dedicated 15 A 120 V circuit with a NEMA 5-15R (120 x 15 x 0.8 = 1440 W" in f.fix


def test_no_ups_no_finding() -> None:
    assert list(site_rules.ups_input_plug(rp.ref(), ALTS_CATALOG)) == []
