"""Power: PSU loading, transients, wall draw and efficiency, dual-PSU split, connectors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rigkit.design.model import ATX3_TRANSIENT_LIMIT, PCIE_8PIN_W, power_budget
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build

#: sustained loading above this fraction of the PSU rating is a warning
PSU_WARN_LOADING = 0.8


def _gpu_names(ids: tuple[int, ...]) -> str:
    return ", ".join(f"gpu{i}" for i in ids) if ids else "no GPUs"


@rule("PWR001", "PSU sustained loading", "power", Severity.ERROR)
def psu_loading(build: Build) -> Iterator[Finding]:
    """Each PSU's sustained DC load (GPUs at their power limit + CPU TDP + memory, drives, NICs,
    fans, cooler, board) must stay within its rating, preferably at or below 80%.

    Why: a PSU run at its limit for hours runs hot, loses efficiency and trips its protection.
    The split follows the spec (or: the first PSU feeds CPU and board, each GPU goes to the PSU with
    most headroom). Fix: lower GPU power limits, a bigger PSU, or move a GPU to the other PSU.
    """
    budget = power_budget(build)
    if not budget.psus:
        yield finding(
            "PWR001",
            f"no PSU in the build for a sustained load of {budget.sustained_w:.0f} W",
            "add a PSU rated at least 25% above the sustained load",
            sustained_w=round(budget.sustained_w, 1),
        )
        return
    for p in budget.psus:
        feeds = ("CPU, board and " if p.carries_system else "") + _gpu_names(p.gpus)
        pct = p.loading * 100
        msg = (
            f"PSU {p.index} ({p.name}, {p.wattage_w:.0f} W) feeds {feeds}: {p.load_w:.0f} W "
            f"sustained = {pct:.0f}% of its rating"
        )
        data: dict[str, Any] = {
            "psu": p.index,
            "load_w": round(p.load_w, 1),
            "wattage_w": p.wattage_w,
            "loading_pct": round(pct, 1),
            "gpus": list(p.gpus),
        }
        if p.loading > 1.0:
            yield finding(
                "PWR001",
                msg,
                f"cut {p.load_w - p.wattage_w:.0f} W: lower GPU power limits (nvidia-smi -pl), "
                "move a GPU to another PSU, or use a bigger PSU",
                **data,
            )
        elif p.loading > PSU_WARN_LOADING:
            yield finding(
                "PWR001",
                msg + f" (above {PSU_WARN_LOADING:.0%})",
                f"keep it under {PSU_WARN_LOADING * p.wattage_w:.0f} W: lower GPU power limits by "
                f"{(p.load_w - PSU_WARN_LOADING * p.wattage_w) / max(len(p.gpus), 1):.0f} W each "
                "or use a bigger PSU",
                severity=Severity.WARNING,
                **data,
            )
        else:
            yield finding("PWR001", msg, "none needed", severity=Severity.INFO, **data)


@rule("PWR002", "GPU transients vs PSU excursion allowance", "power", Severity.ERROR)
def psu_transients(build: Build) -> Iterator[Finding]:
    """GPU power spikes (the card's transient_peak_ratio x power limit, ~1-10 ms) must fit the
    PSU's excursion allowance.

    Why: ATX 3.x PSUs must carry 160% of rating for 10 ms (200% for 100 us, 180% for 1 ms, 120%
    for 100 ms; Intel ATX 3.0 design guide). ATX 2.x units promise nothing above their rating, so
    their over-current protection may trip on spikes: the classic 'shuts off under load'. Fix: ATX
    3.x PSUs, more PSU headroom, or lower GPU power limits.
    """
    budget = power_budget(build)
    for p in budget.psus:
        if not p.gpus:
            continue
        allowed = p.wattage_w * (ATX3_TRANSIENT_LIMIT if p.atx3 else 1.0)
        data: dict[str, Any] = {
            "psu": p.index,
            "peak_w": round(p.peak_w, 1),
            "allowed_w": round(allowed, 1),
            "atx_version": p.atx_version,
            "ratios_known": budget.transient_ratios_known,
        }
        msg = (
            f"PSU {p.index} ({p.name}, ATX {p.atx_version}) sees ~{p.peak_w:.0f} W during GPU "
            f"transients ({p.peak_loading:.0%} of {p.wattage_w:.0f} W); "
        )
        if p.atx3:
            msg += f"ATX 3.x allows {ATX3_TRANSIENT_LIMIT:.0%} = {allowed:.0f} W for 10 ms"
        else:
            msg += "an ATX 2.x unit has no excursion guarantee above its rating"
        if not budget.transient_ratios_known:
            msg += " (some GPUs have no measured transient ratio: counted at 1x)"
        if p.peak_w > allowed:
            yield finding(
                "PWR002",
                msg,
                "use an ATX 3.x PSU with more headroom, or lower the GPU power limits",
                **data,
            )
        elif not p.atx3:
            yield finding(
                "PWR002",
                msg,
                "prefer an ATX 3.x PSU for GPUs with large transients",
                severity=Severity.WARNING,
                **data,
            )
        else:
            yield finding("PWR002", msg, "none needed", severity=Severity.INFO, **data)


@rule("PWR003", "Wall power and PSU efficiency", "power", Severity.INFO)
def wall_power(build: Build) -> Iterator[Finding]:
    """Wall draw = each PSU's DC load / its efficiency at that load (from the 80 PLUS curve).

    Why: the wall figure, not the DC load, sizes the circuit, the UPS and the room cooling.
    """
    budget = power_budget(build)
    parts = "; ".join(
        f"PSU {p.index}: {p.load_w:.0f} W / {p.efficiency:.1%} = {p.wall_w:.0f} W"
        for p in budget.psus
    )
    loss = budget.wall_w - budget.sustained_w
    yield finding(
        "PWR003",
        f"sustained {budget.sustained_w:.0f} W DC -> {budget.wall_w:.0f} W at the wall ({parts}); "
        f"{loss:.0f} W lost in the PSUs",
        "none needed",
        sustained_w=round(budget.sustained_w, 1),
        wall_w=round(budget.wall_w, 1),
        psu_loss_w=round(loss, 1),
        efficiencies=[round(p.efficiency, 4) for p in budget.psus],
    )


@rule("PWR004", "GPU power limit the catalog cannot check", "power", Severity.WARNING)
def power_limit_unchecked(build: Build) -> Iterator[Finding]:
    """A spec's ``power_limit_w`` on a card whose catalog entry has no Min/Max Power Limit.

    Why: a limit outside the card's range is refused when the spec is read, but only where the
    catalog knows the range (nvidia-smi -q "Min/Max Power Limit"); elsewhere ``nvidia-smi -pl``
    may refuse or clamp the value and every power figure of the plan would be off. Fix: check the
    range with ``nvidia-smi -q -d POWER`` on the card, or add it to the catalog entry.
    """
    for g in build.gpus:
        low, high = g.gpu.min_power_limit_w, g.gpu.max_power_limit_w
        if g.power_limit_w == g.gpu.tdp_w or (low is not None and high is not None):
            continue
        missing = "range" if low is None and high is None else ("min" if low is None else "max")
        yield finding(
            "PWR004",
            f"gpu{g.index} ({g.gpu.name}): power limit {g.power_limit_w:g} W could not be "
            f"checked: the catalog has no {'power limit range' if missing == 'range' else missing + ' power limit'} for this card",
            "read the range with nvidia-smi -q -d POWER (Min/Max Power Limit) before relying on it",
            gpu=g.index,
            power_limit_w=g.power_limit_w,
            min_power_limit_w=low,
            max_power_limit_w=high,
        )


@rule("PSU001", "PSU connectors for the GPUs", "psu", Severity.ERROR)
def connectors(build: Build) -> Iterator[Finding]:
    """The PSUs must have a native 12VHPWR/12V-2x6 lead per card that needs one, or enough 8-pin
    PCIe leads for adapters, plus the 8-pin leads of 8-pin cards, and the board's and datacenter
    GPUs' 8-pin EPS inputs.

    Why: a 12VHPWR card on an ATX 2.x PSU needs an adapter with one 8-pin (150 W) per input: 4 for
    a card that may draw 600 W. Daisy-chained or too few leads melt connectors. Fix: an ATX 3.x PSU
    with native 12V-2x6 leads, or enough separate 8-pin leads; seat every plug fully.
    """
    need_eps = build.motherboard.eps_8pin + sum(
        g.gpu.power_connectors.get("eps_8pin", 0) for g in build.gpus
    )
    have_eps = sum(p.connectors.get("eps_8pin", 0) for p in build.psus)
    if need_eps > have_eps:
        yield finding(
            "PSU001",
            f"the board and GPUs need {need_eps} 8-pin EPS (CPU) leads; the PSUs have {have_eps}",
            "use PSUs with enough EPS leads (datacenter GPUs take an EPS input, not PCIe 8-pin)",
            eps_needed=need_eps,
            eps_available=have_eps,
        )
    need_hp = sum(g.gpu.power_connectors.get("12vhpwr", 0) for g in build.gpus)
    need_8 = sum(g.gpu.power_connectors.get("pcie_8pin", 0) for g in build.gpus)
    have_hp = sum(p.connectors.get("12vhpwr", 0) for p in build.psus)
    have_8 = sum(p.connectors.get("pcie_8pin", 0) for p in build.psus)
    adapters = max(0, need_hp - have_hp)
    per_adapter = 0
    if adapters:
        hp_cards = [g for g in build.gpus if g.gpu.power_connectors.get("12vhpwr", 0)]
        per_adapter = max(
            math.ceil(max(g.power_limit_w, g.gpu.max_power_limit_w or 0.0) / PCIE_8PIN_W)
            for g in hp_cards
        )
    need_total_8 = need_8 + adapters * per_adapter
    data: dict[str, Any] = {
        "12vhpwr_needed": need_hp,
        "12vhpwr_available": have_hp,
        "adapters": adapters,
        "8pin_per_adapter": per_adapter,
        "8pin_needed": need_total_8,
        "8pin_available": have_8,
    }
    if need_total_8 > have_8:
        yield finding(
            "PSU001",
            f"GPUs need {need_hp} 12VHPWR leads, the PSUs have {have_hp}: {adapters} adapters x "
            f"{per_adapter} 8-pin + {need_8} for 8-pin cards = {need_total_8} 8-pin leads, the PSUs "
            f"have {have_8}",
            "use ATX 3.x PSUs with a native 12V-2x6 lead per card",
            **data,
        )
    elif adapters:
        yield finding(
            "PSU001",
            f"{adapters} GPUs use 12VHPWR adapters ({per_adapter} x 8-pin each, {need_total_8} of "
            f"{have_8} 8-pin leads)",
            "prefer native 12V-2x6 leads; with adapters use one separate lead per input and seat "
            "the plug fully",
            severity=Severity.WARNING,
            **data,
        )
    else:
        yield finding(
            "PSU001",
            f"the GPUs need {need_hp} 12VHPWR and {need_8} 8-pin leads; the PSUs have {have_hp} "
            f"and {have_8}",
            "seat every 12VHPWR plug fully; no tight bend within 35 mm of the plug",
            severity=Severity.INFO,
            **data,
        )
