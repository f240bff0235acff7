"""Figures for the plan report as PNG bytes (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from rigkit.errors import RigkitError
from rigkit.estimate.capacity import GEN, PROMPT, Capacity, bridged, power_limit
from rigkit.estimate.core import estimate
from rigkit.estimate.resolve import gpu_nums, model_nums

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.design.plan import PlanResult, Summary

_COLORS = {"gpu": "#4c78a8", "nic": "#f58518", "nvme": "#54a24b"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def pcie_png(summary: Summary, cpu_lanes: int) -> bytes:
    """Horizontal bar per device: lanes used (solid) vs lanes the card has (outline), with GB/s."""
    plt = _pyplot()
    links = list(summary.pcie)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(links), 1) + 1.4))
    labels = []
    for i, link in enumerate(links):
        where = link.slot or "no slot"
        device = link.device if len(link.device) <= 40 else link.device[:39] + "…"
        labels.append(f"{device} [{where}]")
        ax.barh(i, link.device_lanes, color="none", edgecolor="#999999", hatch="//")
        ax.barh(i, link.lanes, color=_COLORS.get(link.kind, "#888888"))
        ax.text(
            max(link.device_lanes, link.lanes) + 0.3,
            i,
            f"Gen{link.gen} x{link.lanes}  {link.bandwidth_gb_s:.1f} GB/s",
            va="center",
            fontsize=8,
        )
    used = sum(link.lanes for link in links if link.source == "cpu")
    ax.set_yticks(range(len(links)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 26)
    ax.set_xticks([0, 1, 2, 4, 8, 16])
    ax.set_xlabel("PCIe lanes (hatched: the card's full width)")
    ax.set_title(f"PCIe allocation: {used} of {cpu_lanes} CPU lanes used")
    return _png(fig)


def power_png(summary: Summary, gpu_watts: dict[int, float]) -> bytes:
    """Stacked bar per PSU: sustained load by part, peak marker, 80% and 100% lines."""
    plt = _pyplot()
    psus = list(summary.power.psus)
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.9 * max(len(psus), 1)))
    names = [f"PSU {p.index}: {p.name}" for p in psus] or ["no PSU"]
    right = max((max(p.wattage_w, p.peak_w) for p in psus), default=1.0)
    for i, p in enumerate(psus):
        gpus_w = sum(gpu_watts.get(j, 0.0) for j in p.gpus)
        system = p.load_w - gpus_w
        left = 0.0
        if system > 0:
            ax.barh(
                i, system, color="#9ecae9", label="CPU, board, drives, fans" if i == 0 else None
            )
            left = system
        for k, j in enumerate(p.gpus):
            w = gpu_watts.get(j, 0.0)
            ax.barh(
                i,
                w,
                left=left,
                color="#4c78a8",
                edgecolor="white",
                label="GPUs" if i == 0 and k == 0 else None,
            )
            ax.text(left + w / 2, i, f"gpu{j}", ha="center", va="center", color="white", fontsize=8)
            left += w
        first = i == 0
        ax.plot(
            [p.peak_w] * 2,
            [i - 0.4, i + 0.4],
            color="#e45756",
            lw=2,
            label="transient peak" if first else None,
        )
        ax.plot(
            [0.8 * p.wattage_w] * 2,
            [i - 0.45, i + 0.45],
            color="#f58518",
            ls="--",
            label="80% of rating" if first else None,
        )
        ax.plot(
            [p.wattage_w] * 2,
            [i - 0.45, i + 0.45],
            color="black",
            label="rating" if first else None,
        )
        ax.text(
            max(p.wattage_w, p.peak_w) + right * 0.015,
            i,
            f"{p.load_w:,.0f} / {p.wattage_w:,.0f} W ({p.loading:.0%})\npeak {p.peak_w:,.0f} W",
            fontsize=8,
            va="center",
        )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, right * 1.3)
    ax.set_xlabel("W (DC)")
    ax.set_title(
        f"Power: {summary.sustained_power_w:,.0f} W sustained DC, "
        f"{summary.wall_power_w:,.0f} W at the wall"
    )
    if psus:
        ax.legend(
            fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, frameon=False
        )
    return _png(fig)


def cost_png(summary: Summary) -> bytes:
    """Cost by category (horizontal bars with $ labels)."""
    plt = _pyplot()
    by_cat: dict[str, float] = {}
    for c in summary.costs:
        by_cat[c.category] = by_cat.get(c.category, 0.0) + c.total_usd
    items = sorted(by_cat.items(), key=lambda kv: kv[1], reverse=True)
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(items), 1) + 1.2))
    total = sum(v for _, v in items) or 1.0
    for i, (_cat, usd) in enumerate(items):
        ax.barh(i, usd, color="#72b7b2")
        ax.text(usd, i, f" ${usd:,.0f} ({usd / total:.0%})", va="center", fontsize=8)
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max((v for _, v in items), default=1.0) * 1.3)
    ax.set_xlabel("USD")
    ax.set_title(f"Cost: ${summary.total_cost_usd:,.0f}")
    return _png(fig)


def slots_png(result: PlanResult) -> bytes:
    """Physical slot map: each card drawn over the slot positions it covers; overlaps in red."""
    from rigkit.design.model import slots_covered

    plt = _pyplot()
    build = result.build
    cards: list[tuple[str, int, float]] = [
        (f"gpu{g.index}", g.slot.position, g.gpu.slot_width) for g in build.gpus if g.slot
    ]
    cards += [(f"nic{i}", n.slot.position, 1.0) for i, n in enumerate(build.nics) if n.slot]
    positions = [s.position for s in build.motherboard.pcie_slots]
    last = max([*positions, *(slots_covered(p, w).stop - 1 for _, p, w in cards)], default=1)
    case_slots = build.case.expansion_slots if build.case is not None else None
    if case_slots is not None:
        last = max(last, case_slots)
    fig, ax = plt.subplots(figsize=(6, 0.45 * last + 1.2))
    by_pos = {s.position: s for s in build.motherboard.pcie_slots}
    for pos in range(1, last + 1):
        slot = by_pos.get(pos)
        label = f"{pos}: {slot.name} x{slot.electrical_lanes}" if slot else f"{pos}: -"
        ax.text(-0.1, pos, label, ha="right", va="center", fontsize=8)
        ax.plot([0, 4], [pos - 0.5, pos - 0.5], color="#dddddd", lw=0.8)
    covered: dict[int, int] = {}
    for _, p, w in cards:
        for q in slots_covered(p, w):
            covered[q] = covered.get(q, 0) + 1
    for col, (name, p, w) in enumerate(sorted(cards, key=lambda c: c[1])):
        span = slots_covered(p, w)
        clash = any(covered[q] > 1 for q in span) or (
            case_slots is not None and span.stop - 1 > case_slots
        )
        x = 0.2 + (col % 2) * 1.9
        ax.add_patch(
            plt.Rectangle(
                (x, span.start - 0.45),
                1.7,
                len(span) - 0.1,
                color="#e45756" if clash else "#4c78a8",
                alpha=0.75,
            )
        )
        ax.text(
            x + 0.85,
            span.start + (len(span) - 1) / 2,
            f"{name} in {p}\n{w:g} slot{'s' if w != 1 else ''}",
            ha="center",
            va="center",
            color="white",
            fontsize=8,
        )
    if case_slots is not None:
        ax.plot([0, 4], [case_slots + 0.5] * 2, color="black", ls="--")
        ax.text(
            4, case_slots + 0.5, f"case: {case_slots} slots", ha="right", va="bottom", fontsize=8
        )
    ax.set_xlim(-2.2, 4.1)
    ax.set_ylim(last + 0.8, 0.4)
    ax.axis("off")
    ax.set_title("Slot map (red: cards that collide or overhang the case)")
    return _png(fig)


def _roofline_model(cap: Capacity) -> tuple[str, str]:
    for r in cap.rows:
        if r.model == "llama-3-70b" and r.quant == "q4_k_m" and r.fits:
            return r.model, r.quant
    fitting = [r for r in cap.rows if r.fits and r.engine == "llama.cpp"]
    if fitting:
        best = max(fitting, key=lambda r: r.weights_gb)
        return best.model, best.quant
    return "llama-3-8b", "q4_k_m"


def roofline_png(
    build: Build, cap: Capacity, model: str | None = None, quant: str | None = None
) -> bytes:
    """Roofline figure (PNG): attainable throughput vs arithmetic intensity for one model.

    Roofs: the GPUs' combined peak bandwidth x intensity and their tensor FLOPS. Points: decode
    at batch 1..256 (weights read once per step, KV per sequence) and prefill of a 512-token
    micro-batch, each at its intensity and the throughput the estimator predicts.
    """
    plt = _pyplot()

    if model is None or quant is None:
        model, quant = _roofline_model(cap)
    m = model_nums(model, quant)
    g = gpu_nums(build.gpus[0].gpu.id)
    n = max(1, build.gpu_count)
    bw = g.bw * n
    peak = g.f16_acc16 * n
    weights = m.n_layers * m.layer_bytes + m.out_bytes
    flops_tok = m.n_layers * m.flops_layer + m.flops_out
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs = [0.1 * 1.2**i for i in range(80)]
    ax.plot(
        xs,
        [min(bw * x, peak) / 1e12 for x in xs],
        color="black",
        lw=1.5,
        label=f"roof: {n} GPUs at once (tensor split)",
    )
    if n > 1:
        ax.plot(
            xs,
            [min(g.bw * x, g.f16_acc16) / 1e12 for x in xs],
            color="gray",
            lw=1.2,
            ls="--",
            label="roof: one GPU at a time (layer split)",
        )
    dec_x, dec_y, labels = [], [], []
    common: dict[str, Any] = {
        "cpu": build.cpu.id,
        "ram_gb": float(build.memory_gb),
        "nvlink": bridged(build),
        "power_limit_w": power_limit(build),
    }
    for b in (1, 4, 16, 64, 256):
        ctx = PROMPT + GEN
        ai = b * flops_tok / (weights + b * m.kv_token_bytes(ctx))
        try:
            e = estimate(
                model, quant, g.id, gpus=n, prompt=PROMPT, gen=GEN, batch=b, ctx=ctx, **common
            )
        except RigkitError:
            continue
        if e.aggregate_tokens_per_s is None or not e.fits:
            continue
        dec_x.append(ai)
        dec_y.append(e.aggregate_tokens_per_s * flops_tok / 1e12)
        labels.append(f"decode b={b}")
    ax.scatter(dec_x, dec_y, color="tab:blue", zorder=3, label="decode (estimate)")
    for x, y, lab in zip(dec_x, dec_y, labels, strict=True):
        ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    try:
        e = estimate(model, quant, g.id, gpus=n, prompt=PROMPT, gen=1, **common)
        if e.prefill_tokens_per_s:
            ai = PROMPT * flops_tok / weights
            ax.scatter(
                [ai],
                [e.prefill_tokens_per_s * flops_tok / 1e12],
                color="tab:red",
                zorder=3,
                label="prefill 512 (estimate)",
            )
    except RigkitError:
        pass
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of weights + KV read)")
    ax.set_ylabel("TFLOP/s (all GPUs)")
    ax.set_title(f"Roofline: {model} {quant} on {n}x {g.id}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)
