"""The rows every renderer shows, as plain strings: one place decides wording and rounding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rigkit.design.registry import Finding, Severity
from rigkit.report.words import plural

if TYPE_CHECKING:
    from rigkit.design.plan import PlanResult

SEVERITY_TITLES = {
    Severity.ERROR: "Errors",
    Severity.WARNING: "Warnings",
    Severity.INFO: "Information",
}


def glance_rows(result: PlanResult) -> list[tuple[str, str]]:
    """(label, value) pairs for 'the build at a glance'."""
    b, s = result.build, result.summary
    gpus = ", ".join(sorted({f"{s.gpu_names.count(n)}x {n}" for n in s.gpu_names})) or "none"
    rows = [
        ("CPU", f"{b.cpu.name} ({b.cpu.cores} cores, {b.cpu.pcie_lanes} PCIe lanes)"),
        ("Board", b.motherboard.name),
        ("GPUs", gpus),
        ("GPU memory", f"{s.total_vram_gb:g} GB"),
        ("FP16 / BF16 tensor (dense)", f"{s.fp16_tflops:,.0f} / {s.bf16_tflops:,.0f} TFLOPS"),
        ("GPU memory bandwidth (sum)", f"{s.gpu_bandwidth_gb_s:,.0f} GB/s"),
        (
            "System memory",
            f"{s.system_memory_gb} GB, {s.memory.channels_used}/{s.memory.channels} channels at "
            f"{s.memory.speed_mts} MT/s = {s.memory.bandwidth_gb_s:.1f} GB/s"
            + (
                f" (fabric cap ~{s.memory.fabric_cap_gb_s:.0f} GB/s)"
                if s.memory.fabric_cap_gb_s is not None
                and s.memory.fabric_cap_gb_s < s.memory.bandwidth_gb_s
                else ""
            ),
        ),
        ("PSUs", " + ".join(f"{p.wattage_w:.0f} W" for p in s.power.psus) or "none"),
        ("Sustained DC load", f"{s.sustained_power_w:,.0f} W"),
        ("Peak with GPU transients", peak_text(result)),
        ("Wall power", wall_text(result)),
        ("Heat", heat_text(result)),
        ("Storage read (fastest volume)", f"{s.storage_read_gb_s:.1f} GB/s"),
        ("Total cost", f"${s.total_cost_usd:,.0f}"),
        ("Electricity", f"${s.electricity_usd_month:,.0f}/month"),
    ]
    if result.cost is not None and result.cost.rentals:
        for r in result.cost.rentals:
            be = f"{r.break_even_h:,.0f} h" if r.break_even_h is not None else "never"
            label = (
                "Break-even vs the spec's cloud"
                if r.rental.basis == "named"
                else ("Break-even vs renting")
            )
            dates = ", ".join(sorted({p.price_as_of for p in r.rental.pieces}))
            rows.append(
                (
                    label,
                    f"{be} against {r.rental.label} (${r.rental.usd_per_hour:,.2f}/h as of "
                    f"{dates}{', old' if r.rental.stale else ''}"
                    f"{'' if r.rental.like_for_like else '; not like for like'})",
                )
            )
    elif b.cloud is not None:
        be = f"{s.break_even_h:,.0f} h" if s.break_even_h is not None else "never"
        rows.append(("Break-even vs cloud", f"{be} against {b.cloud.name}"))
    return rows


def peak_text(result: PlanResult) -> str:
    """'2,840 W', or with the GPUs whose spikes the catalog has not measured named: their peak is
    only their sustained power, so the figure is a floor, and the reader must see that."""
    unknown = sorted({g.gpu.name for g in result.build.gpus if g.gpu.transient_peak_ratio is None})
    text = f"{result.summary.peak_power_w:,.0f} W"
    if unknown:
        text += (
            f" (at least: no measured transient ratio for {', '.join(unknown)}, "
            "counted at its sustained power)"
        )
    return text


def wall_text(result: PlanResult) -> str:
    """'2,593 W' or, with a UPS, what the outlet supplies: '2,593 W machine + 166 W UPS losses =
    2,758 W'."""
    p = result.summary.power
    if p.ups_efficiency is None:
        return f"{p.wall_w:,.0f} W"
    return f"{p.wall_w:,.0f} W machine + {p.ups_loss_w:,.0f} W UPS losses = {p.circuit_w:,.0f} W"


def heat_text(result: PlanResult) -> str:
    """The machine's heat and, with a UPS, the room's: '8,847 BTU/h machine; 9,412 BTU/h with the
    UPS'."""
    s = result.summary
    out = f"{s.heat_btu_h:,.0f} BTU/h"
    if s.power.ups_efficiency is None:
        return out
    return f"{out} machine; {s.power.room_heat_btu_h:,.0f} BTU/h with the UPS"


def grouped(result: PlanResult) -> list[tuple[Severity, list[Finding]]]:
    out = []
    for sev in (Severity.ERROR, Severity.WARNING, Severity.INFO):
        fs = [f for f in result.findings if f.severity is sev]
        if fs:
            out.append((sev, fs))
    return out


def status_line(result: PlanResult) -> str:
    c = result.counts()
    verdict = "problems found" if c["error"] else "no errors"
    counts = (
        plural(c["error"], "error"),
        plural(c["warning"], "warning"),
        plural(c["info"], "note"),
    )
    return f"{verdict}: {', '.join(counts)}"


def pcie_rows(result: PlanResult) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for link in result.summary.pcie:
        full = f"Gen{link.device_gen} x{link.device_lanes}"
        got = f"Gen{link.gen} x{link.lanes}" if link.slot else "none"
        rows.append(
            (
                link.device,
                link.slot or "-",
                link.source or "-",
                f"{got} (card {full})",
                f"{link.bandwidth_gb_s:.1f}",
            )
        )
    return rows


def power_rows(result: PlanResult) -> list[tuple[str, str, str]]:
    return [(t.name, f"{t.watts:,.0f}", f"{t.peak_watts:,.0f}") for t in result.summary.power.terms]


def psu_rows(result: PlanResult) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for p in result.summary.power.psus:
        feeds = ("system + " if p.carries_system else "") + (
            ", ".join(f"gpu{i}" for i in p.gpus) or "-"
        )
        rows.append(
            (
                f"{p.index}: {p.name} (ATX {p.atx_version})",
                feeds,
                f"{p.load_w:,.0f} / {p.wattage_w:,.0f} W ({p.loading:.0%})",
                f"{p.peak_w:,.0f} W",
                f"{p.efficiency:.1%}",
                f"{p.wall_w:,.0f} W",
            )
        )
    return rows


def cost_rows(result: PlanResult) -> list[tuple[str, str, str, str]]:
    return [
        (
            c.category,
            c.item,
            str(c.quantity),
            f"${c.total_usd:,.0f}" if c.unit_usd is not None else "no price",
        )
        for c in result.summary.costs
    ]


def volume_rows(result: PlanResult) -> list[tuple[str, str, str, str]]:
    return [
        (v.name, ", ".join(v.drives), f"{v.capacity_tb:g} TB", f"{v.read_gb_s:.1f} GB/s")
        for v in result.summary.volumes
    ]


VERDICT_STYLES = {
    "holds": "info",
    "does not hold": "warning",
    "inflated": "warning",
    "does not add up": "warning",
}


def claim_rows(result: PlanResult) -> list[tuple[str, str, str, str, str]]:
    """(claim, stated, the plan's figure, verdict, note) for each of the spec's claims."""
    return [(c.claim, c.claimed, c.worked_out, c.verdict, c.note) for c in result.claims]


def claims_line(result: PlanResult) -> str:
    n = len(result.claims)
    held = sum(1 for c in result.claims if c.holds)
    return f"{held} of {n} stated figures hold"
