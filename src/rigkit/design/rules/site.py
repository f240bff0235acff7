"""The room: branch circuit, heat, case airflow, room cooling and the UPS."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rigkit.design.model import (
    AIR_DELTA_T_C,
    BTU_H_PER_TON,
    BTU_H_PER_W,
    PSU_POWER_FACTOR,
    UPS_DEPTH_OF_DISCHARGE,
    UPS_INVERTER_EFFICIENCY,
    airflow_needed_cfm,
    circuit_usable_w,
    fans_cfm,
    interpolate,
    power_budget,
)
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.loader import Catalog
    from rigkit.catalog.parts import PlugRating, Ups

log = logging.getLogger(__name__)

#: a UPS should give at least this many minutes at the sustained load for a clean shutdown
UPS_MIN_RUNTIME_MIN = 5.0
#: a UPS loaded above this fraction of its W rating has little room for GPU transients
UPS_WARN_LOADING = 0.8
#: free-air fan ratings drop under case restriction: want this margin over the needed airflow
AIRFLOW_MARGIN = 1.5


def _machine_text(wall_w: float, ups_efficiency: float | None) -> str:
    """'2593 W machine + 166 W UPS losses at 94% efficiency', or '2593 W machine' without a UPS."""
    out = f"{wall_w:.0f} W machine"
    if ups_efficiency is None:
        return out
    loss = wall_w / ups_efficiency - wall_w
    return out + f" + {loss:.0f} W UPS losses at {ups_efficiency:.0%} efficiency"


@rule("CIR001", "Branch circuit capacity", "circuit", Severity.ERROR)
def branch_circuit(build: Build) -> Iterator[Finding]:
    """Sustained load on the circuit plus its other load must stay within 80% of the breaker
    (continuous load, NEC 210.19(A)/210.20): 120 V 15 A -> 1440 W, 20 A -> 1920 W, 230 V 16 A ->
    2944 W. The load is the PSUs' input, or with a UPS the UPS's input: its load over its
    efficiency (the catalog's maker figure, else 0.94 for online and 0.97 for line-interactive
    units), so a double-conversion unit adds about 6% in normal operation.

    Why: a breaker loaded past its continuous rating for hours trips or runs its wiring hot. On a
    shared circuit other outlets add load nobody planned for. After an outage the UPS also
    recharges its battery, drawing more than this for a while (not counted: the catalog has no
    charger figures). Fix: a dedicated circuit big enough (e.g. 240 V 20 A -> 3840 W), lower GPU
    power limits, or split the load over two circuits.
    """
    s = build.site
    budget = power_budget(build)
    wall = budget.wall_w
    usable = circuit_usable_w(s.mains_voltage_v, s.breaker_a)
    load = budget.circuit_w + s.other_load_w
    data: dict[str, Any] = {
        "wall_w": round(wall, 1),
        "ups_loss_w": round(budget.ups_loss_w, 1),
        "ups_efficiency": budget.ups_efficiency,
        "other_load_w": s.other_load_w,
        "load_w": round(load, 1),
        "usable_w": round(usable, 1),
        "voltage_v": s.mains_voltage_v,
        "breaker_a": s.breaker_a,
        "dedicated": s.dedicated_circuit,
    }
    circuit = f"{s.mains_voltage_v:g} V {s.breaker_a:g} A " + (
        "dedicated" if s.dedicated_circuit else "shared"
    )
    machine = _machine_text(wall, budget.ups_efficiency)
    msg = (
        f"sustained wall load {load:.0f} W ({machine} + {s.other_load_w:.0f} W other) on "
        f"a {circuit} circuit: usable continuous {s.mains_voltage_v:g} x {s.breaker_a:g} x 0.8 = "
        f"{usable:.0f} W ({load / usable:.0%})"
    )
    if load > usable:
        # the smallest common circuit that would carry it
        if s.mains_voltage_v < 200:  # North America: 120 V circuits, or a 240 V split-phase one
            options = [(120.0, 20.0), (240.0, 20.0), (240.0, 30.0)]
        else:
            v = s.mains_voltage_v
            options = [(v, 16.0), (v, 20.0), (v, 32.0)]
        fits = [
            f"{v:g} V {a:g} A ({circuit_usable_w(v, a):.0f} W)"
            for v, a in options
            if circuit_usable_w(v, a) >= load
        ]
        cut = load - usable
        fix = f"cut {cut:.0f} W (lower GPU power limits) or run it on a dedicated circuit"
        if fits:
            fix += f" such as {fits[0]}"
        if s.mains_voltage_v < 200 and load > circuit_usable_w(120.0, 20.0):
            fix += (
                f"; a dedicated 120 V 20 A circuit gives 120 x 20 x 0.8 = "
                f"{circuit_usable_w(120.0, 20.0):.0f} W, not enough"
            )
        yield finding("CIR001", msg + " exceeds it", fix, **data)
    elif not s.dedicated_circuit:
        yield finding(
            "CIR001",
            msg + "; other outlets on a shared circuit can push it over",
            "put the machine on a dedicated circuit, or know what else is on this one",
            severity=Severity.WARNING,
            **data,
        )
    else:
        yield finding("CIR001", msg, "none needed", severity=Severity.INFO, **data)


def _room_heat(build: Build) -> tuple[float, str, str]:
    """Heat into the room in W, how it adds up and whose it is: the machine's wall power, plus the
    UPS's losses when there is one (the UPS stands in the same room)."""
    budget = power_budget(build)
    if budget.ups_efficiency is None:
        return budget.wall_w, f"{budget.wall_w:.0f} W at the wall", "the machine"
    heat = budget.circuit_w
    how = f"{budget.wall_w:.0f} W machine + {budget.ups_loss_w:.0f} W UPS losses = {heat:.0f} W"
    return heat, how, "the machine and its UPS"


@rule("THM001", "Heat output", "thermal", Severity.INFO)
def heat_output(build: Build) -> Iterator[Finding]:
    """All wall power ends up as heat in the room: BTU/h = W x 3.412 (12,000 BTU/h = 1 ton). With a
    UPS in the room its losses (its input less its output) are heat there too.

    Why: it sizes the room cooling. Uses sustained wall power, not the DC load.
    """
    budget = power_budget(build)
    heat, how, _ = _room_heat(build)
    btu = heat * BTU_H_PER_W
    arith = f"{how} = {heat:.0f} x 3.412" if budget.ups_efficiency is None else f"{how} x 3.412"
    yield finding(
        "THM001",
        f"{arith} = {btu:,.0f} BTU/h ({btu / BTU_H_PER_TON:.2f} tons of cooling)",
        "none needed",
        wall_w=round(budget.wall_w, 1),
        ups_loss_w=round(budget.ups_loss_w, 1),
        heat_w=round(heat, 1),
        heat_btu_h=round(btu),
        tons=round(btu / BTU_H_PER_TON, 2),
    )


@rule("THM002", "Case airflow vs heat", "thermal", Severity.WARNING)
def case_airflow(build: Build) -> Iterator[Finding]:
    """The case fans must move the air that carries the DC heat out at a 10 C rise:
    CFM = 1.76 x W / delta-T(C) (= 3.16 x W / delta-T(F)).

    Why: free-air fan ratings are upper bounds; filters, grilles and radiators cut them, so a
    margin of 1.5x is wanted. Fix: more or stronger fans, or fewer watts. Check the fan's CFM on
    its data sheet: m3/h figures are 1.7x larger than CFM.
    """
    dc = power_budget(build).sustained_w
    need = airflow_needed_cfm(dc)
    have = fans_cfm(build)
    data: dict[str, Any] = {
        "heat_w": round(dc, 1),
        "delta_t_c": AIR_DELTA_T_C,
        "needed_cfm": round(need),
        "fans_cfm": round(have, 1),
    }
    msg = (
        f"{dc:.0f} W inside the case needs 1.76 x {dc:.0f} / {AIR_DELTA_T_C:g} C = {need:.0f} CFM; "
        f"the case fans are rated {have:.0f} CFM free-air"
    )
    if not build.fans:
        yield finding(
            "THM002",
            f"no case fans in the spec, so airflow is not checked: {dc:.0f} W inside the case needs "
            f"1.76 x {dc:.0f} / {AIR_DELTA_T_C:g} C = {need:.0f} CFM",
            f"list the case fans (aim for {need * AIRFLOW_MARGIN:.0f} CFM free-air)",
            severity=Severity.INFO,
            **data,
        )
    elif have < need:
        yield finding(
            "THM002",
            msg,
            f"add fans for at least {need * AIRFLOW_MARGIN - have:.0f} CFM more, or lower GPU power "
            "limits",
            severity=Severity.ERROR,
            **data,
        )
    elif have < need * AIRFLOW_MARGIN:
        yield finding(
            "THM002",
            msg + f" (less than {AIRFLOW_MARGIN:g}x margin for case restriction)",
            f"aim for {need * AIRFLOW_MARGIN:.0f} CFM free-air",
            **data,
        )
    else:
        yield finding("THM002", msg, "none needed", severity=Severity.INFO, **data)


@rule("HVC001", "Room cooling", "hvac", Severity.ERROR)
def room_cooling(build: Build) -> Iterator[Finding]:
    """The room needs cooling equal to the heat output (site.room_cooling_btu_h): the machine's
    wall power plus, with a UPS in the room, the UPS's losses.

    Why: a closed room with 2 kW of heat warms by several degrees an hour; GPUs then throttle.
    Fix: an air conditioner rated at least the heat output (12,000 BTU/h = 1 ton), or exhaust the
    heat outside.
    """
    heat, how, who = _room_heat(build)
    btu = heat * BTU_H_PER_W
    have = build.site.room_cooling_btu_h
    if have is None:
        yield finding(
            "HVC001",
            f"no room cooling stated: {who} add{'' if ' and ' in who else 's'} {btu:,.0f} BTU/h "
            f"({how}), which needs at least that much extra cooling ({btu / BTU_H_PER_TON:.2f} tons)",
            f"state site.room_cooling_btu_h; a unit of {max(BTU_H_PER_TON, btu):,.0f} BTU/h or more "
            "covers it",
            severity=Severity.WARNING,
            heat_w=round(heat, 1),
            heat_btu_h=round(btu),
            cooling_btu_h=None,
        )
    elif have < btu:
        yield finding(
            "HVC001",
            f"room cooling {have:,.0f} BTU/h is less than the {btu:,.0f} BTU/h of {who} ({how})",
            f"add {btu - have:,.0f} BTU/h of cooling or lower GPU power limits",
            heat_w=round(heat, 1),
            heat_btu_h=round(btu),
            cooling_btu_h=have,
        )
    else:
        yield finding(
            "HVC001",
            f"room cooling {have:,.0f} BTU/h covers the {btu:,.0f} BTU/h of {who} ({how})",
            "none needed",
            severity=Severity.INFO,
            heat_w=round(heat, 1),
            heat_btu_h=round(btu),
            cooling_btu_h=have,
        )


def ups_runtime_min(ups: Ups, load_w: float) -> tuple[float, str]:
    """Runtime in minutes at ``load_w``: the maker's chart when there is one, else battery Wh x
    0.8 depth of discharge x 0.9 inverter efficiency / load."""
    if ups.runtime_chart:
        return interpolate(list(ups.runtime_chart), load_w), "maker's runtime chart"
    wh = ups.battery_wh * UPS_DEPTH_OF_DISCHARGE * UPS_INVERTER_EFFICIENCY
    return wh / load_w * 60.0, f"{ups.battery_wh:g} Wh x 0.8 x 0.9 / load"


@rule("UPS001", "UPS capacity and runtime", "ups", Severity.ERROR)
def ups_capacity(build: Build) -> Iterator[Finding]:
    """The UPS must carry the sustained wall load in both W and VA (PF 0.99 for active-PFC PSUs),
    and give at least 5 minutes for a clean shutdown. The ratings are the UPS's output, so its
    load is the PSUs' input; its own losses come on top at its input (CIR001, THM001).

    Why: an overloaded UPS drops the load on the first outage, which is worse than none. Fix: a
    bigger UPS, or a lower power limit set automatically when on battery.
    """
    wall = power_budget(build).wall_w
    ups = build.ups
    if ups is None:
        yield finding(
            "UPS001",
            f"no UPS: an outage drops {wall:.0f} W of running work at once",
            f"a UPS of at least {wall:.0f} W / {wall / PSU_POWER_FACTOR:.0f} VA (online type for "
            "ATX 3.x PSUs with active PFC)",
            severity=Severity.INFO,
            wall_w=round(wall, 1),
        )
        return
    va = wall / PSU_POWER_FACTOR
    data: dict[str, Any] = {
        "wall_w": round(wall, 1),
        "va": round(va),
        "ups_w": ups.watts,
        "ups_va": ups.va,
    }
    if wall > ups.watts or va > ups.va:
        yield finding(
            "UPS001",
            f"{ups.name} ({ups.watts:.0f} W / {ups.va:.0f} VA) is smaller than the sustained wall "
            f"load {wall:.0f} W / {va:.0f} VA",
            f"choose a UPS of at least {wall * 1.25:.0f} W, or cap GPU power when on battery",
            **data,
        )
        return
    minutes, how = ups_runtime_min(ups, wall)
    data.update(runtime_min=round(minutes, 1), runtime_from=how)
    if wall > UPS_WARN_LOADING * ups.watts:
        yield finding(
            "UPS001",
            f"{ups.name} carries {wall:.0f} W = {wall / ups.watts:.0%} of its {ups.watts:.0f} W for "
            f"~{minutes:.1f} min ({how}); above {UPS_WARN_LOADING:.0%} GPU transients can trip its "
            "overload protection",
            f"a UPS of at least {wall / UPS_WARN_LOADING:.0f} W, or lower GPU power limits",
            severity=Severity.WARNING,
            **data,
        )
    elif minutes < UPS_MIN_RUNTIME_MIN:
        yield finding(
            "UPS001",
            f"{ups.name} carries {wall:.0f} W ({wall / ups.watts:.0%}) but only for ~{minutes:.1f} "
            f"min ({how})",
            "add an external battery pack, or shut down at once on battery",
            severity=Severity.WARNING,
            **data,
        )
    else:
        yield finding(
            "UPS001",
            f"{ups.name} carries {wall:.0f} W ({wall / ups.watts:.0%}) for ~{minutes:.1f} min ({how})",
            "none needed",
            severity=Severity.INFO,
            **data,
        )


#: NEC Table 210.21(B)(3): the circuit ratings (A) on which a receptacle of each rating may sit
NEC_RECEPTACLE_CIRCUITS_A: dict[float, tuple[float, ...]] = {
    15.0: (15.0, 20.0),
    20.0: (20.0,),
    30.0: (30.0,),
}
#: mains below this are the 100-127 V class (North America, Japan); at or above, 200-240 V
LOW_VOLTAGE_CLASS_MAX_V = 160.0


def _voltage_class(v: float) -> str:
    return "100-127 V" if v < LOW_VOLTAGE_CLASS_MAX_V else "200-240 V"


def _label(plug: PlugRating) -> str:
    """``NEMA L5-30P plug``, ``IEC 60320 C20 inlet``, ``CEE 7/7 (Schuko) plug``."""
    return f"{plug.name} plug" if plug.nema else plug.name


def _plug_problem(ups: Ups, plug: PlugRating, volts: float, amps: float) -> tuple[str, str] | None:
    """Why ``ups`` cannot be plugged in at ``volts`` / ``amps`` as ``(kind, reason)``: kind
    ``voltage``, ``current`` (an error) or ``circuit`` (a warning); None when it fits."""
    if volts > plug.voltage_v:
        return "voltage", (
            f"its {_label(plug)} is rated {plug.voltage_v:g} V and the site's mains is {volts:g} V"
        )
    if _voltage_class(volts) != _voltage_class(ups.output_voltage_v):
        return "voltage", (
            f"it is a {ups.output_voltage_v:g} V unit ({_voltage_class(ups.output_voltage_v)} "
            f"input) and the site's mains is {volts:g} V"
        )
    if plug.nema:
        allowed = NEC_RECEPTACLE_CIRCUITS_A.get(plug.current_a, (plug.current_a,))
        circuits = " or ".join(f"{a:g} A" for a in allowed)
        if amps < min(allowed):
            return "current", (
                f"its {_label(plug)} needs a {plug.current_a:g} A {plug.receptacle} receptacle "
                f"on a {circuits} circuit; the site has {amps:g} A at {volts:g} V"
            )
        if amps not in allowed:
            return "circuit", (
                f"its {_label(plug)} needs a {plug.receptacle} receptacle, which NEC Table "
                f"210.21(B)(3) allows only on a {circuits} circuit; the site's circuit is "
                f"{amps:g} A at {volts:g} V, whose receptacles it does not fit"
            )
        return None
    if amps < plug.current_a:
        return "circuit", (
            f"its {_label(plug)} is rated {plug.current_a:g} A, more than the site's {amps:g} A "
            f"circuit: at full load while recharging the unit may draw more than the breaker allows"
        )
    return None


def ups_alternatives(build: Build, wall_w: float, units: Iterable[Ups]) -> list[Ups]:
    """The ``units`` (the catalog's UPSes) whose plug fits the site's circuit and which carry
    ``wall_w`` (W and VA), cheapest first."""
    s = build.site
    current = build.ups.id if build.ups is not None else None
    fits = [
        u
        for u in units
        if u.id != current
        and u.plug is not None
        and _plug_problem(u, u.plug, s.mains_voltage_v, s.breaker_a) is None
        and u.watts >= wall_w
        and u.va >= wall_w / PSU_POWER_FACTOR
    ]
    return sorted(fits, key=lambda u: (u.price_usd is None, u.price_usd or 0.0, u.watts))


@rule("UPS002", "UPS input plug vs the site's circuit", "ups", Severity.ERROR)
def ups_input_plug(build: Build, catalog: Catalog) -> Iterator[Finding]:
    """The UPS's input plug must fit a receptacle the site's circuit may have, at its voltage:
    a NEMA plug needs a receptacle of its own rating, and NEC Table 210.21(B)(3) allows a 15 A
    receptacle only on a 15 or 20 A circuit, a 20 A one only on 20 A, a 30 A one (L5-30R) only on
    30 A. The plug's voltage rating and the unit's input class (100-127 V or 200-240 V) must
    match the mains.

    Why: a 2700 W 120 V UPS draws over 2700 / 120 = 22.5 A at full load, so its maker fits an
    L5-30P that no 15 or 20 A circuit has a socket for; a 120 V unit at 230 V is destroyed, a
    230 V unit at 120 V never leaves battery. A circuit that matches the plug is rated for the unit's full input current;
    CIR001 checks the actual load on it (the UPS's input). Fix: an electrician adds a dedicated circuit
    with the plug's receptacle (e.g. 30 A 120 V with an L5-30R), or a UPS whose plug fits the
    circuit and which still carries the load. Never use plug adapters to bridge the difference.
    """
    ups = build.ups
    if ups is None:
        return
    s = build.site
    volts, amps = s.mains_voltage_v, s.breaker_a
    budget = power_budget(build)
    wall = budget.wall_w
    plug = ups.plug
    alts = ups_alternatives(build, wall, catalog.ups.values())
    data: dict[str, Any] = {
        "ups": ups.id,
        "input_plug": ups.input_plug,
        "plug_a": plug.current_a if plug else None,
        "plug_v": plug.voltage_v if plug else None,
        "ups_voltage_v": ups.output_voltage_v,
        "voltage_v": volts,
        "breaker_a": amps,
        "wall_w": round(wall, 1),
        "alternatives": [u.id for u in alts],
    }
    if plug is None:
        yield finding(
            "UPS002",
            f"{ups.name}: its input plug is not in the catalog, so it is not checked against the "
            f"site's {amps:g} A {volts:g} V circuit",
            "look up the input plug on the maker's sheet and check that the circuit has its "
            "receptacle",
            severity=Severity.INFO,
            **data,
        )
        return
    problem = _plug_problem(ups, plug, volts, amps)
    if problem is None:
        where = (
            f"fits a {plug.receptacle}"
            if not plug.detachable
            else f"takes {plug.receptacle} with the local plug"
        )
        yield finding(
            "UPS002",
            f"{ups.name}: its {_label(plug)} ({plug.current_a:g} A, {plug.voltage_v:g} V) {where} on "
            f"the site's {amps:g} A {volts:g} V circuit",
            "none needed",
            severity=Severity.INFO,
            **data,
        )
        return
    kind, reason = problem
    usable = circuit_usable_w(volts, amps)
    such = " or ".join(f"{u.id} ({u.input_plug}, {u.watts:g} W)" for u in alts[:2])
    none = (
        f"no UPS in the catalog with a plug for a {amps:g} A {volts:g} V circuit carries the "
        f"{wall:.0f} W load"
    )
    if budget.circuit_w + s.other_load_w > usable:
        none += f" (nor does the circuit itself: {usable:.0f} W continuous, see CIR001)"
    if kind == "voltage":
        fix = f"choose a UPS for {volts:g} V mains" + (f", such as {such}" if alts else f"; {none}")
    else:
        need_a = (
            min(NEC_RECEPTACLE_CIRCUITS_A.get(plug.current_a, (plug.current_a,)))
            if plug.nema
            else plug.current_a
        )
        fix = (
            f"have an electrician add a dedicated {need_a:g} A {volts:g} V circuit"
            + (f" with a {plug.receptacle}" if plug.nema else "")
            + f" ({volts:g} x {need_a:g} x 0.8 = {circuit_usable_w(volts, need_a):.0f} W "
            "continuous)"
            + (
                f", or choose a UPS whose plug fits this circuit and carries the {wall:.0f} W "
                f"load, such as {such}"
                if alts
                else f"; {none}"
            )
        )
    yield finding(
        "UPS002",
        f"{ups.name}: {reason}",
        fix,
        severity=Severity.WARNING if kind == "circuit" else Severity.ERROR,
        **data,
    )
