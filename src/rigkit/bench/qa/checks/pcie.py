"""PCIe link of each GPU, read under load, against the slot the spec puts it in.

Source: ``/sys/bus/pci/devices/*`` (vendor 0x10de, display class) under ``ctx.sys_root``; GPUs drop
to a slower link at idle, so the links are read while PyTorch keeps the GPUs busy. Without PyTorch
the reading is taken at rest and a slower link is only a warning.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from rigkit.bench.qa.gpu import GpuLoad, load_torch
from rigkit.bench.qa.result import CheckResult, QaContext, Status, Value, ratio_of

CATEGORY = "pcie"
NVIDIA_VENDOR = "0x10de"

# GT/s per lane -> generation.
_GEN_BY_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}
# Usable GB/s per lane and direction after line coding (8b/10b for gen 1-2, 128b/130b after).
LANE_GB_S = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


@dataclass(frozen=True)
class PcieLink:
    address: str
    gen: int | None
    width: int | None
    max_gen: int | None
    max_width: int | None


def gen_from_speed(text: str | None) -> int | None:
    """``"16.0 GT/s PCIe"`` -> 4; None when unreadable ("Unknown")."""
    if not text:
        return None
    m = re.match(r"\s*([\d.]+)\s*GT/s", text)
    if not m:
        return None
    return _GEN_BY_GTS.get(float(m.group(1)))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def nvidia_links(sys_root: Path) -> list[PcieLink]:
    """NVIDIA display/3D controllers on the PCI bus, in bus order (NVML's default order)."""
    base = sys_root / "bus" / "pci" / "devices"
    if not base.is_dir():
        return []
    links = []
    for dev in sorted(base.iterdir()):
        if _read(dev / "vendor") != NVIDIA_VENDOR:
            continue
        if not (_read(dev / "class") or "").startswith("0x03"):
            continue  # audio function and others
        links.append(
            PcieLink(
                address=dev.name,
                gen=gen_from_speed(_read(dev / "current_link_speed")),
                width=_int(_read(dev / "current_link_width")),
                max_gen=gen_from_speed(_read(dev / "max_link_speed")),
                max_width=_int(_read(dev / "max_link_width")),
            )
        )
    return links


def link_gb_s(gen: int | None, width: int | None) -> float | None:
    if gen is None or width is None or gen not in LANE_GB_S:
        return None
    return LANE_GB_S[gen] * width


def expected_link(ctx: QaContext, index: int) -> tuple[int | None, int | None, str]:
    """(gen, width, slot name) the spec's slot and GPU should negotiate for GPU ``index``."""
    if ctx.build is None or index >= len(ctx.build.gpus):
        return None, None, ""
    placed = ctx.build.gpus[index]
    gpu = placed.gpu
    if placed.slot is None:
        return gpu.pcie_gen, gpu.pcie_lanes, "no slot"
    gen = min(placed.slot.gen, gpu.pcie_gen)
    if placed.slot.source == "cpu":
        gen = min(gen, ctx.build.cpu.pcie_gen)
    width = min(placed.slot.electrical_lanes, gpu.pcie_lanes)
    return gen, width, placed.slot.name


def check_links(
    links: list[PcieLink], ctx: QaContext, loaded: bool, why_idle: str
) -> list[CheckResult]:
    results = []
    wants = [expected_link(ctx, i) for i in range(len(links))]
    order = list(range(len(links)))
    if len({(g, w) for g, w, _ in wants}) > 1:
        # Slots differ (x16 and x8): the bus order need not follow the spec's GPU order, so pair
        # the widest links with the widest slots.
        def capability(i: int) -> float:
            link = links[i]
            return link_gb_s(link.max_gen, link.max_width) or 0.0

        def slot_bw(i: int) -> float:
            return link_gb_s(wants[i][0], wants[i][1]) or 0.0

        by_link = sorted(range(len(links)), key=capability, reverse=True)
        by_slot = sorted(range(len(links)), key=slot_bw, reverse=True)
        paired = dict(zip(by_link, by_slot, strict=True))
        order = [paired[i] for i in range(len(links))]
    for i, link in enumerate(links):
        want_gen, want_width, slot = wants[order[i]]
        measured: dict[str, Value] = {
            "address": link.address,
            "gen": link.gen,
            "width": link.width,
            "max_gen": link.max_gen,
            "max_width": link.max_width,
            "under_load": loaded,
            "link_gb_s": _round(link_gb_s(link.gen, link.width)),
        }
        name = f"pcie-gpu{i}"
        if want_gen is None or want_width is None:
            results.append(CheckResult(name, CATEGORY, "pass", "no spec to compare with", measured))
            continue
        expected: dict[str, Value] = {"gen": want_gen, "width": want_width, "slot": slot}
        want_bw = link_gb_s(want_gen, want_width)
        ratio = ratio_of(link_gb_s(link.gen, link.width), want_bw)
        predicted: dict[str, Value] = {"link_gb_s": _round(want_bw)}
        got = f"Gen{link.gen} x{link.width}"
        want = f"Gen{want_gen} x{want_width}"
        status: Status
        short = (link.gen or 0) < want_gen or (link.width or 0) < want_width
        if not short:
            status, reason = "pass", f"{got} as expected in {slot}"
        elif loaded:
            status, reason = (
                "fail",
                f"{got} under load, {slot} should give {want}: reseat the card or check the riser and BIOS link settings",
            )
        elif (link.max_gen or 0) < want_gen or (link.max_width or 0) < want_width:
            status = "fail"
            reason = f"link capability Gen{link.max_gen} x{link.max_width} is below {want} ({slot})"
        else:
            status = "warn"
            reason = f"{got} at rest, {want} expected; not read under load ({why_idle})"
        results.append(
            CheckResult(
                name,
                CATEGORY,
                status,
                reason,
                measured,
                expected,
                predicted,
                ratio,
                "link_gb_s",
                ("link_gb_s",) if loaded else (),
            )
        )
    return results


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def run(ctx: QaContext) -> list[CheckResult]:
    links = nvidia_links(ctx.sys_root)
    if not links:
        if ctx.build is not None and ctx.build.gpus:
            return [
                CheckResult(
                    "pcie",
                    CATEGORY,
                    "skip",
                    f"no NVIDIA GPU on the PCI bus ({ctx.sys_root}/bus/pci); "
                    "see the gpu-inventory check",
                )
            ]
        return [CheckResult("pcie", CATEGORY, "skip", "no NVIDIA GPU on the PCI bus")]
    torch, why = load_torch()
    if torch is None:
        return check_links(links, ctx, loaded=False, why_idle=why)
    with GpuLoad(torch):
        time.sleep(min(ctx.load_seconds, 3.0))
        links = nvidia_links(ctx.sys_root)
    return check_links(links, ctx, loaded=True, why_idle="")
