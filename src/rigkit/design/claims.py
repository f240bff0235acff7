"""Headline figures a spec states for its build (``claims:``), checked against the plan.

A design document's at-a-glance numbers ("330 TFLOPS", "29 GB/s RAID 0", "8-10 min on the UPS")
are easy to get wrong by a factor: sparse tensor throughput quoted as dense, m3/h quoted as CFM,
line items that do not add up to the total. Each claim names a figure; :func:`check_claims`
works the figure out from the build and says whether the claim holds, with the arithmetic.

Performance claims about models (tokens/s, load time of a named model) are ``expectations:`` and
belong to the estimator; these are hardware figures the plan computes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rigkit.design.model import (
    BTU_H_PER_W,
    fans_cfm,
    gpu_link,
    is_geforce,
    memory_config,
    pcie_links,
)

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.design.plan import Summary

#: a claim within this fraction of the worked-out figure holds (rounding in documents)
TOLERANCE = 0.05
#: 1 CFM = 1.699 m3/h
M3H_PER_CFM = 1.699

Verdict = Literal["holds", "does not hold", "inflated", "does not add up"]


@dataclass(frozen=True)
class ClaimCheck:
    """One claim and what the plan makes of it."""

    claim: str
    figure: str
    claimed: str  # as stated, with unit: "2,640 TFLOPS", "8-10 min"
    worked_out: str  # the plan's figure with its arithmetic
    verdict: Verdict
    note: str  # why, in a sentence
    claimed_value: float
    claimed_max: float | None
    value: float | None  # the plan's figure
    source: str | None

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "figure": self.figure,
            "claimed": self.claimed,
            "claimed_value": self.claimed_value,
            "claimed_max": self.claimed_max,
            "value": None if self.value is None else round(self.value, 3),
            "worked_out": self.worked_out,
            "verdict": self.verdict,
            "note": self.note,
            "source": self.source,
        }


def _num(x: float) -> str:
    """A figure as a person writes it: 330.4, 2,642, 0.74."""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _within(claimed: float, claimed_max: float | None, value: float) -> bool:
    lo = claimed * (1 - TOLERANCE)
    hi = (claimed_max if claimed_max is not None else claimed) * (1 + TOLERANCE)
    return lo <= value <= hi


def _sum_text(values: Sequence[float], unit: str) -> str:
    """'4 x 82.6 = 330.4 TFLOPS' for equal terms, '24 + 48 = 72 GB' otherwise."""
    total = sum(values)
    if not values:
        return f"0 {unit}"
    if len(set(values)) == 1 and len(values) > 1:
        return f"{len(values)} x {_num(values[0])} = {_num(total)} {unit}"
    if len(values) == 1:
        return f"{_num(total)} {unit}"
    return " + ".join(_num(v) for v in values) + f" = {_num(total)} {unit}"


@dataclass(frozen=True)
class _Worked:
    value: float | None
    text: str
    verdict: Verdict | None = None  # None: decided by the tolerance test
    note: str = ""


# --- one function per figure ---------------------------------------------------------------------


def _fp32(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    vals = [g.gpu.fp32_tflops for g in b.gpus]
    return _Worked(sum(vals), _sum_text(vals, "TFLOPS") + " (non-tensor FP32)")


def _tensor(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    """Dense FP16 tensor is what FP16/BF16 inference uses; name the variant a larger claim
    matches (sparse, FP8, INT8)."""
    dense = [g.gpu.fp16_tflops for g in b.gpus]
    text = _sum_text(dense, "TFLOPS") + " dense FP16 tensor (FP32 accumulate)"
    claimed = float(c["value"])
    if _within(claimed, c.get("max"), sum(dense)):
        return _Worked(sum(dense), text)
    variants: list[tuple[str, list[float]]] = [
        ("FP16 with FP16 accumulate", [g.gpu.fp16_acc16_tflops or 0.0 for g in b.gpus]),
        ("FP16 with 2:4 sparsity", [2 * g.gpu.fp16_tflops for g in b.gpus]),
        ("dense FP8", [g.gpu.fp8_tflops or 0.0 for g in b.gpus]),
        ("FP8 with 2:4 sparsity", [2 * (g.gpu.fp8_tflops or 0.0) for g in b.gpus]),
        ("dense INT8 (TOPS)", [g.gpu.int8_tops for g in b.gpus]),
        ("INT8 with 2:4 sparsity (TOPS)", [2 * g.gpu.int8_tops for g in b.gpus]),
    ]
    matches = [(n, v) for n, v in variants if sum(v) > 0 and _within(claimed, c.get("max"), sum(v))]
    if matches:
        name, vals = matches[0]
        also = [n for n, _ in matches[1:]]
        note = (
            f"the claim is {name}: {_sum_text(vals, 'TFLOPS')}"
            + (f" (the same number as {', '.join(also)})" if also else "")
            + f"; LLM inference in FP16/BF16 gets the dense figure, {_num(sum(dense))} TFLOPS, "
            f"{claimed / sum(dense):.1f}x less"
        )
        return _Worked(sum(dense), text, "inflated", note)
    return _Worked(sum(dense), text)


def _vram(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    return _Worked(s.total_vram_gb, _sum_text([g.gpu.vram_gb for g in b.gpus], "GB"))


def _gpu_bw(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    vals = [g.gpu.bandwidth_gb_s for g in b.gpus]
    return _Worked(
        sum(vals),
        _sum_text(vals, "GB/s"),
        note="a sum over cards: each GPU reads only its own memory at its own rate",
    )


def _mem_bw(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    m = memory_config(b)
    text = f"{m.channels_used} channels x {m.speed_mts} MT/s x 8 B = {_num(m.bandwidth_gb_s)} GB/s"
    note = ""
    if m.speed_mts < b.memory.speed_mts:
        note = f"the {b.cpu.name} runs the {b.memory.speed_mts} MT/s modules at {m.speed_mts} MT/s"
    if m.fabric_cap_gb_s is not None and m.fabric_cap_gb_s < m.bandwidth_gb_s:
        note += ("; " if note else "") + f"its fabric caps reads near {m.fabric_cap_gb_s:.0f} GB/s"
    return _Worked(m.bandwidth_gb_s, text, note=note)


def _lanes(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    used = sum(link.lanes for link in pcie_links(b) if link.source == "cpu")
    have = b.cpu.pcie_lanes
    return _Worked(
        float(have),
        f"the {b.cpu.name} has {have} lanes; the devices use {used} ({have - used} spare)",
    )


def _psu_capacity(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    return _Worked(s.psu_capacity_w, _sum_text([p.wattage_w for p in b.psus], "W"))


def _psu_loading(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    psus = s.power.psus
    if not psus:
        return _Worked(None, "no PSU in the build")
    parts = [
        f"PSU {p.index} {p.load_w:,.0f} / {p.wattage_w:,.0f} W = {p.loading:.0%}" for p in psus
    ]
    pcts = [p.loading * 100 for p in psus]
    ok = all(_within(float(c["value"]), c.get("max"), x) for x in pcts)
    # where the efficiency curve of each PSU peaks
    peaks = []
    for p, psu in zip(psus, b.psus, strict=True):
        best = max(psu.efficiency_curve, key=lambda pt: pt[1])
        peaks.append(f"PSU {p.index} peaks at {best[0]:.0%} load")
    note = (
        "efficiency curves peak near half load ("
        + "; ".join(peaks)
        + "), not at 80-85%: the zone is headroom, not efficiency"
    )
    worst = max(pcts, key=lambda x: abs(x - float(c["value"])))
    return _Worked(worst, "; ".join(parts), "holds" if ok else "does not hold", note)


def _sustained(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    return _Worked(
        s.sustained_power_w,
        f"{_num(s.sustained_power_w)} W DC ({_num(s.wall_power_w)} W at the wall)",
        note="GPUs at their power limit + CPU TDP + memory, drives, NICs, fans, board",
    )


def _heat(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    """The machine's heat (its wall power), which is what a build's heat figure states; with a UPS
    the room also gets the UPS's losses, said in the note (HVC001 sizes the cooling on both)."""
    note = f"{float(c['value']) / BTU_H_PER_W:,.0f} W would give the claimed figure"
    p = s.power
    if p.ups_efficiency is not None:
        note += (
            f"; the room also gets the UPS's {_num(p.ups_loss_w)} W of losses: "
            f"{_num(p.circuit_w)} W x 3.412 = {_num(p.room_heat_btu_h)} BTU/h"
        )
    return _Worked(
        s.heat_btu_h,
        f"{_num(s.wall_power_w)} W at the wall x 3.412 = {_num(s.heat_btu_h)} BTU/h (the machine)",
        note=note,
    )


def _fans(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    total = fans_cfm(b)
    terms = " + ".join(f"{q} x {_num(f.airflow_cfm)}" for f, q in b.fans) or "no fans"
    text = f"{terms} = {_num(total)} CFM"
    m3h = total * M3H_PER_CFM
    if not _within(float(c["value"]), c.get("max"), total) and _within(
        float(c["value"]), c.get("max"), m3h
    ):
        return _Worked(
            total,
            text,
            "does not hold",
            f"the claim is the m3/h rating: {_num(total)} CFM x 1.699 = {_num(m3h)} m3/h",
        )
    return _Worked(total, text, note="free-air ratings; case restriction lowers them")


def _storage(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    if not s.volumes:
        return _Worked(None, "no drives in the build")
    v = max(s.volumes, key=lambda v: v.read_gb_s)
    text = f"{v.name}: " + _sum_text([d.drive.seq_read_mb_s / 1000 for d in _drives(b, v)], "GB/s")
    if v.read_gb_s < v.rated_read_gb_s - 1e-9:
        text += f", capped by the M.2 links at {_num(v.read_gb_s)} GB/s"
    return _Worked(v.read_gb_s, text, note="rated sequential reads; a file system reads slower")


def _drives(b: Build, v: Any) -> list[Any]:
    key = v.name
    return [
        d for i, d in enumerate(b.drives) if (d.raid_group or f"nvme{i}") == key
    ]  # same grouping as model.volumes


def _load_time(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    """The ideal time: the volume's sequential read, or the GPUs' host links when slower."""
    size = float(c["size_gb"])
    read = s.storage_read_gb_s
    links = [gpu_link(b, g).bandwidth_gb_s for g in b.gpus]
    h2d = sum(links)
    if read <= 0:
        return _Worked(None, "no drives in the build")
    disk_s = size / read
    text = f"{_num(size)} GB / {_num(read)} GB/s = {_num(disk_s)} s from the drives"
    value = disk_s
    if h2d > 0:
        pcie_s = size / h2d
        text += f"; {_num(size)} GB / ({_sum_text(links, 'GB/s')}) = {_num(pcie_s)} s over PCIe"
        value = max(disk_s, pcie_s)
    geforce = any(is_geforce(g.gpu.id, g.gpu.name) for g in b.gpus)
    note = "ideal: the drives' rated sequential read; a file system reads slower"
    if geforce:
        note += (
            "; GeForce has no GPUDirect Storage, so weights pass through host memory and each "
            "GPU's PCIe link (practical copies reach roughly 80% of the link)"
        )
    claimed = float(c["value"])
    hi = float(c.get("max") or claimed)
    verdict: Verdict = "holds" if value <= hi * (1 + TOLERANCE) else "does not hold"
    return _Worked(value, text, verdict, note)


def _ups(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    from rigkit.design.rules.site import ups_runtime_min

    if b.ups is None:
        return _Worked(None, "no UPS in the build")
    wall = s.wall_power_w
    minutes, how = ups_runtime_min(b.ups, wall)
    loading = wall / b.ups.watts
    text = f"~{minutes:.1f} min at {_num(wall)} W ({how})"
    note = f"{loading:.0%} of the UPS's {b.ups.watts:,.0f} W"
    if loading > 1:
        return _Worked(0.0, text, "does not hold", note + ": overloaded, it drops the load")
    if loading > 0.8:
        note += ": above 80% GPU transients can trip its overload protection"
    return _Worked(minutes, text, note=note)


def _cost(b: Build, s: Summary, c: dict[str, Any]) -> _Worked:
    total = s.total_cost_usd
    text = f"${total:,.0f} at the catalog's prices ({len(s.costs)} lines)"
    items = [float(x) for x in c.get("items") or []]
    claimed = float(c["value"])
    if items:
        own = sum(items)
        if abs(own - claimed) > 0.5:
            return _Worked(
                own,
                text,
                "does not add up",
                "the claim's own items add to "
                + " + ".join(f"${x:,.0f}" for x in items)
                + f" = ${own:,.0f}, not ${claimed:,.0f}",
            )
    return _Worked(total, text, note="catalog street prices; includes every part the spec lists")


CHECKS: dict[str, tuple[str, Callable[[Build, Summary, dict[str, Any]], _Worked]]] = {
    "fp32_tflops": ("TFLOPS", _fp32),
    "tensor_tflops": ("TFLOPS", _tensor),
    "vram_gb": ("GB", _vram),
    "gpu_bandwidth_gb_s": ("GB/s", _gpu_bw),
    "memory_bandwidth_gb_s": ("GB/s", _mem_bw),
    "pcie_lanes": ("lanes", _lanes),
    "psu_capacity_w": ("W", _psu_capacity),
    "psu_loading_pct": ("%", _psu_loading),
    "sustained_power_w": ("W", _sustained),
    "heat_btu_h": ("BTU/h", _heat),
    "fans_cfm": ("CFM", _fans),
    "storage_read_gb_s": ("GB/s", _storage),
    "load_time_s": ("s", _load_time),
    "ups_runtime_min": ("min", _ups),
    "total_cost_usd": ("USD", _cost),
}


#: what each figure is checked against (docs/rules.md lists these)
FIGURE_DOCS: dict[str, str] = {
    "fp32_tflops": "sum of the GPUs' non-tensor FP32 TFLOPS",
    "tensor_tflops": "sum of dense FP16 tensor TFLOPS (FP32 accumulate); a larger claim is named "
    "when it matches FP16-accumulate, 2:4 sparse, FP8 or INT8 figures ('inflated')",
    "vram_gb": "sum of the GPUs' memory",
    "gpu_bandwidth_gb_s": "sum of the GPUs' memory bandwidths",
    "memory_bandwidth_gb_s": "channels used x MT/s (min of kit and CPU) x 8 B; notes the fabric cap",
    "pcie_lanes": "the CPU's PCIe lanes, with the lanes the devices use",
    "psu_loading_pct": "every PSU's sustained loading inside value-max percent; notes where each "
    "efficiency curve peaks",
    "psu_capacity_w": "sum of the PSU ratings",
    "sustained_power_w": "sustained DC load (GPUs at their power limit + the rest)",
    "heat_btu_h": "the machine's wall power x 3.412; with a UPS the note adds its losses, which "
    "also heat the room",
    "fans_cfm": "sum of the case fans' CFM; a claim equal to the m3/h figure is named",
    "storage_read_gb_s": "the fastest volume's rated sequential read, capped by its M.2 links",
    "load_time_s": "size_gb over the fastest volume's read, or over the GPUs' PCIe links when "
    "slower; holds when at or under the claim (an ideal figure)",
    "ups_runtime_min": "the UPS001 runtime estimate at the sustained wall load",
    "total_cost_usd": "the claim's own items must add up to it; else the catalog total",
}


def _claimed_text(unit: str, value: float, vmax: float | None) -> str:
    rng = _num(value) if vmax is None else f"{_num(value)}-{_num(vmax)}"
    if unit == "USD":
        return f"${value:,.0f}" if vmax is None else f"${value:,.0f}-${vmax:,.0f}"
    return f"{rng}%" if unit == "%" else f"{rng} {unit}"


def check_claim(build: Build, summary: Summary, claim: dict[str, Any]) -> ClaimCheck:
    figure = str(claim["figure"])
    unit, func = CHECKS[figure]
    w = func(build, summary, claim)
    value, vmax = float(claim["value"]), claim.get("max")
    vmax_f = None if vmax is None else float(vmax)
    verdict = w.verdict
    if verdict is None:
        verdict = (
            "holds"
            if w.value is not None and _within(value, vmax_f, w.value)
            else ("does not hold")
        )
    src = claim.get("source")
    return ClaimCheck(
        claim=str(claim.get("claim", figure)),
        figure=figure,
        claimed=_claimed_text(unit, value, vmax_f),
        worked_out=w.text,
        verdict=verdict,
        note=w.note,
        claimed_value=value,
        claimed_max=vmax_f,
        value=w.value,
        source=None if src is None else str(src),
    )


def check_claims(build: Build, summary: Summary) -> tuple[ClaimCheck, ...]:
    """Every ``claims:`` entry of the spec, in the spec's order."""
    return tuple(check_claim(build, summary, dict(c)) for c in build.claims)
