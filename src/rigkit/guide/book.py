"""``build_book(build) -> Book``: the build book's phases and steps for one resolved build.

Each step is one action, specific to the parts (the card in this slot, the lead from that PSU),
with the reason where it matters and its warnings printed before it. Nothing is added that this
build does not need: no adapter steps with native 12V-2x6 leads, no torque sequence on a socket
without one, no riser steps when every card sits in its slot.

Minutes per step are rough workshop figures (a person doing it for the first time, with the
manual open), so the phase times add up to the 6-8 hours a four-GPU workstation takes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from rigkit.design.model import gpu_link, memory_config, slots_covered
from rigkit.guide.hardware import (
    LEAD_NAMES,
    bios_settings,
    cable_map,
    gpu_name,
    riser_gpus,
    slot_map,
)
from rigkit.guide.model import (
    Book,
    Lead,
    PartLine,
    Phase,
    Reading,
    Step,
    Trouble,
    slug,
    socket_slug,
)

if TYPE_CHECKING:
    from rigkit.build import Build

#: minutes per kind of step (see the module docstring)
MIN_QUICK = 1.0
MIN_STEP = 3.0
MIN_CARD = 8.0
MIN_CPU = 10.0
MIN_COOLER = 15.0
MIN_OS = 45.0
MIN_QA = 60.0

#: a card longer than this sags in its slot without a support bracket (mm)
SAG_LENGTH_MM = 300.0

#: 12VHPWR/12V-2x6 plugs need a straight run before any bend (PCI-SIG CEM 5.0 guidance, makers'
#: connector notes); melted plugs on 450 W cards were partly seated or bent at the plug
BEND_STRAIGHT_MM = 35


@functools.cache
def socket_procedures() -> dict[str, dict[str, Any]]:
    """The CPU installation procedure per socket (``guide/data/sockets.yaml``)."""
    text = resources.files("rigkit.guide").joinpath("data/sockets.yaml").read_text("utf-8")
    entries: list[dict[str, Any]] = yaml.safe_load(text)
    return {e["socket"]: e for e in entries}


def _unique(steps: list[Step]) -> tuple[Step, ...]:
    seen: set[str] = set()
    for s in steps:
        if s.id in seen:  # pragma: no cover - a programming error in this module
            raise AssertionError(f"duplicate step id {s.id}")
        seen.add(s.id)
    return tuple(steps)


# --- phases -------------------------------------------------------------------------------------


def _prep(build: Build) -> Iterator[Step]:
    yield Step(
        "bench-esd",
        "Lay an ESD mat on a clear table and clip your wrist strap to it.",
        "static from a carpet or sleeve kills a board or card without a mark on it",
        minutes=MIN_STEP,
    )
    yield Step(
        "cpu-unbox",
        f"Unbox the {build.cpu.name} and write down its serial number.",
        serial="CPU",
        minutes=MIN_QUICK,
    )
    yield Step(
        "board-unbox",
        f"Unbox the {build.motherboard.name}, check its socket pins under a light and write down "
        "its serial number.",
        "bent socket pins are the board maker's return; after a CPU went in they are yours",
        serial="motherboard",
        minutes=MIN_STEP,
    )
    for g in build.gpus:
        yield Step(
            slug(f"gpu{g.index}", "unbox"),
            f"Unbox {gpu_name(g)} and tag it 'GPU {g.index}'.",
            "the tag ties the card to its slot and PSU in the cable map; its serial is written "
            "down when it goes into its slot",
            minutes=MIN_QUICK,
        )
    for i, p in enumerate(build.psus):
        yield Step(
            slug(f"psu{i}", "unbox"),
            f"Unbox PSU {i} ({p.name}), tag it 'PSU {i}' and write down its serial number.",
            serial=f"PSU {i} ({p.name})",
            minutes=MIN_QUICK,
        )


def _board(build: Build) -> Iterator[Step]:
    socket = build.cpu.socket
    proc = socket_procedures().get(socket)
    yield Step(
        "board-on-box",
        f"Lay the {build.motherboard.name} on its box on the mat.",
        "the board gets its CPU, cooler, memory and drives outside the case, where you can see "
        "and reach every socket",
        minutes=MIN_QUICK,
    )
    if proc is None:
        yield Step(
            "cpu-install",
            f"Install the {build.cpu.name} in the {socket} socket as the board's manual shows.",
            minutes=MIN_CPU,
        )
    else:
        for k, st in enumerate(proc["steps"], start=1):
            yield Step(
                slug("cpu", socket, k),
                st["action"],
                st.get("why"),
                warnings=(st["warning"],) if st.get("warning") else (),
                minutes=MIN_CPU / len(proc["steps"]),
            )
    cooler = build.cooler
    if cooler is not None:
        warn: tuple[str, ...] = ()
        if socket not in cooler.sockets:
            warn = (
                f"The {cooler.name} is listed for {', '.join(cooler.sockets)}, not {socket}: "
                "check its mounting kit before you start.",
            )
        yield Step(
            "cooler-paste",
            "Check the cooler's base for pre-applied paste; if it has none, spread a thin layer "
            "over the CPU's heat spreader.",
            minutes=MIN_STEP,
        )
        yield Step(
            "cooler-mount",
            f"Mount the {cooler.name} and tighten its screws a few turns at a time, crosswise.",
            f"even pressure; it must carry the CPU's {build.cpu.tdp_w:g} W "
            f"(rated {cooler.tdp_rating_w:g} W)",
            warnings=warn,
            minutes=MIN_COOLER,
        )
        yield Step(
            "cooler-fan-header",
            "Plug the cooler's fan (or pump) lead into the board's CPU_FAN header.",
            "the board refuses to boot or throttles the CPU when CPU_FAN reads no speed",
            minutes=MIN_QUICK,
        )
    else:
        yield Step("cooler-mount", "Mount the CPU cooler as its manual shows.", minutes=MIN_COOLER)
    slots = build.motherboard.dimm_population.get(build.memory_modules)
    mem = build.memory
    kind = "RDIMM" if mem.registered else "UDIMM"
    first = (
        f"{kind}s are keyed: turn the module so its notch meets the slot's key; never force it.",
    )
    if slots:
        for k, name in enumerate(slots):
            yield Step(
                socket_slug("dimm", name),
                f"Press a {mem.module_gb} GB module into {name} until both latches click.",
                "the board manual's population order for "
                f"{build.memory_modules} modules: one per channel before any channel gets two"
                if k == 0
                else None,
                warnings=first if k == 0 else (),
                minutes=MIN_QUICK,
            )
    else:
        yield Step(
            "dimm-install",
            f"Install the {build.memory_modules} {mem.module_gb} GB modules in the slots the "
            f"board's manual lists for {build.memory_modules} modules.",
            "the catalog has no population table for this board; the manual's order fills every "
            "channel once before any twice",
            warnings=first,
            minutes=MIN_QUICK * build.memory_modules,
        )
    used_pcie = {g.slot.name for g in build.gpus if g.slot is not None}
    for i, d in enumerate(build.drives):
        if d.on_adapter or d.m2_slot is None:
            continue
        m2 = d.m2_slot
        lanes = f"{m2.source.upper()} lanes, PCIe {m2.gen}.0 x{m2.lanes}"
        why = f"{d.role} drive on {lanes}"
        if d.raid_group:
            why += f"; RAID 0 volume '{d.raid_group}'"
        shared = sorted(set(m2.shares_with) & used_pcie)
        warn = (
            (f"{m2.name} shares lanes with {', '.join(shared)}, which holds a GPU.",)
            if shared
            else ()
        )
        yield Step(
            socket_slug("m2", m2.name),
            f"Fit the {d.drive.name} (drive {i}) in {m2.name} under its heatsink; peel the "
            "pad's film first.",
            why,
            warnings=warn,
            serial=f"drive {i} ({d.drive.name})",
            minutes=MIN_STEP,
        )


def _case(build: Build) -> Iterator[Step]:
    case = build.case
    name = case.name if case is not None else "the case"
    yield Step(
        "case-standoffs",
        f"Match {name}'s standoffs to the board's {build.motherboard.form_factor.upper()} holes "
        "and remove any standoff without a hole above it.",
        "a standoff under a bare spot shorts the board's back side",
        minutes=MIN_STEP,
    )
    yield Step(
        "board-into-case",
        "Lower the board onto the standoffs and fasten every screw.",
        minutes=MIN_STEP * 2,
    )
    yield Step(
        "front-panel",
        "Connect the case's power switch, reset and LED leads to the front-panel header.",
        minutes=MIN_STEP,
    )
    for fan, n in build.fans:
        yield Step(
            slug("fans", fan.id),
            f"Mount the {n} {fan.name} fans: front and bottom as intake, rear and top as exhaust.",
            f"{n} x {fan.airflow_cfm:g} CFM carry the cards' heat out of the case",
            minutes=MIN_STEP * max(1, n // 2),
        )
        yield Step(
            slug("fans", fan.id, "headers"),
            f"Plug the {n} {fan.name} leads into the board's chassis fan headers (or a hub on "
            "one header).",
            minutes=MIN_STEP,
        )


def _power(build: Build, leads: list[Lead]) -> Iterator[Step]:
    for i, p in enumerate(build.psus):
        role = "primary" if i == 0 else "secondary"
        yield Step(
            slug(f"psu{i}", "mount"),
            f"Mount PSU {i} ({p.name}, {role}) in its bay, fan facing the filtered intake.",
            minutes=MIN_STEP * 2,
        )
    if len(build.psus) > 1:
        yield Step(
            "psu-sync",
            "Connect the secondary PSU's 24-pin lead to the dual-PSU sync adapter, and the adapter "
            "to the primary's 24-pin lead.",
            "both PSUs must switch on and off together: a card fed by one PSU while its slot is "
            "powered by the other, or not at all, back-feeds current through the slot",
            warnings=("Plug both PSUs into the same UPS or circuit: one ground, one shutdown.",),
            minutes=MIN_STEP,
        )
    where = {
        "atx-24pin": "the board's 24-pin ATX input",
        "eps-8pin": "the board's CPU power inputs (EPS)",
        "pcie-8pin": "the board's PCIe slot power inputs",
    }
    for x in leads:
        if x.to.startswith("board"):
            what = (
                f"{x.count} {LEAD_NAMES[x.kind]} lead{'s' if x.count > 1 else ''}"
                if x.kind != "atx-24pin"
                else "the 24-pin ATX lead"
            )
            why = {
                "atx-24pin": "the primary PSU powers the board, so it starts first",
                "pcie-8pin": f"extra slot power for {build.gpu_count} cards drawing up to 75 W "
                "each from their slots",
            }.get(x.kind)
            yield Step(
                slug("board-power", x.kind),
                f"Connect {what} from PSU {x.psu} to {where[x.kind]}.",
                why,
                warnings=(
                    "EPS (CPU) and PCIe 8-pin plugs look alike and are keyed differently: "
                    "never force one into the other.",
                )
                if x.kind == "eps-8pin"
                else (),
                minutes=MIN_QUICK * max(1, x.count),
            )


def _gpus(build: Build, leads: list[Lead]) -> Iterator[Step]:
    risers = riser_gpus(build)
    order = sorted(
        (g for g in build.gpus if g.slot is not None),
        key=lambda g: g.slot.position if g.slot else 0,
    )
    warned_12v = False
    for g in order:
        assert g.slot is not None
        label = gpu_name(g)
        link = gpu_link(build, g)
        slot = g.slot
        span = slots_covered(slot.position, g.gpu.slot_width)
        n = f"gpu{g.index}"
        if g.index in risers:
            yield Step(
                slug(n, "riser"),
                f"Plug a PCIe {link.gen}.0 x16 riser cable into {slot.name} and route it to the "
                f"mount for {label}.",
                f"{risers[g.index]}, so the card cannot sit in its slot",
                warnings=(
                    f"Use a riser rated for PCIe {link.gen}.0 or later: a slower riser trains "
                    "the link lower or drops it under load.",
                ),
                minutes=MIN_CARD,
            )
            yield Step(
                slug(n, "seat"),
                f"Seat {label} in the riser's slot and screw its bracket to the mount.",
                f"{slot.name} gives it x{link.lanes} PCIe {link.gen}.0 through the riser",
                serial=label,
                minutes=MIN_CARD,
            )
        else:
            yield Step(
                slug(n, "covers"),
                f"Remove the case's slot covers at positions {span.start}-{span.stop - 1}."
                if len(span) > 1
                else f"Remove the case's slot cover at position {span.start}.",
                minutes=MIN_QUICK,
            )
            warn: tuple[str, ...] = ()
            if g.gpu.length_mm is not None and g.gpu.length_mm > SAG_LENGTH_MM:
                warn = (
                    f"The card is {g.gpu.length_mm:g} mm long: fit its support bracket so it "
                    "does not hang on the slot.",
                )
            yield Step(
                slug(n, "seat"),
                f"Seat {label} in {slot.name} (position {slot.position}) until the slot latch "
                "clicks.",
                f"the plan's slot: x{link.lanes} PCIe {link.gen}.0 from the {slot.source.upper()}",
                warnings=warn,
                serial=label,
                minutes=MIN_CARD,
            )
            yield Step(
                slug(n, "bracket"),
                f"Screw {label}'s bracket to the case.",
                minutes=MIN_QUICK,
            )
        for x in leads:
            if x.to != label:
                continue
            if x.kind == "12v-2x6" and not x.adapter:
                first_warn: tuple[str, ...] = ()
                if not warned_12v:
                    first_warn = (
                        "12V-2x6/12VHPWR plugs carry up to 600 W on small pins: a plug not fully "
                        "home or bent at the socket melts. Push until the latch clicks.",
                    )
                    warned_12v = True
                yield Step(
                    slug(n, "power", "12v2x6"),
                    f"Connect PSU {x.psu}'s 12V-2x6 lead to {label}.",
                    "a native lead: one cable, sense pins tell the card how much it may draw",
                    warnings=first_warn,
                    minutes=MIN_STEP,
                )
                yield from _seat_checks(n, label)
            elif x.adapter:
                yield Step(
                    slug(n, "power", "adapter"),
                    f"Plug the 12VHPWR adapter into {label} and connect its {x.count} inputs to "
                    f"{x.count} separate PCIe 8-pin leads from PSU {x.psu}.",
                    f"PSU {x.psu} has no native 12V-2x6 lead left; {x.count} x 150 W covers the "
                    f"most the card may draw",
                    warnings=(
                        "One separate lead per adapter input: a daisy-chained lead carries two "
                        "inputs' current on one cable.",
                        "12VHPWR plugs carry up to 600 W on small pins: a plug not fully home or "
                        "bent at the socket melts. Push until the latch clicks.",
                    ),
                    minutes=MIN_STEP * 2,
                )
                yield from _seat_checks(n, label)
            elif x.kind == "pcie-8pin":
                yield Step(
                    slug(n, "power", "8pin"),
                    f"Connect {x.count} separate PCIe 8-pin lead{'s' if x.count > 1 else ''} "
                    f"from PSU {x.psu} to {label}.",
                    "one lead per input: a daisy-chained pigtail puts two inputs' current on one "
                    "cable"
                    if x.count > 1
                    else None,
                    minutes=MIN_STEP,
                )
            elif x.kind == "eps-8pin":
                yield Step(
                    slug(n, "power", "eps"),
                    f"Connect {x.count} EPS 8-pin (CPU) lead{'s' if x.count > 1 else ''} from "
                    f"PSU {x.psu} to {label}.",
                    "datacenter cards take an EPS 8-pin input, not a PCIe 8-pin",
                    warnings=(
                        "A PCIe 8-pin plug fits the card's EPS socket only by force: use "
                        "the EPS lead.",
                    ),
                    minutes=MIN_STEP,
                )
    bridged = [g for g in order if g.nvlink_bridge]
    for a, b in zip(bridged[::2], bridged[1::2], strict=False):
        assert a.slot is not None and b.slot is not None
        gap = abs(b.slot.position - a.slot.position)
        yield Step(
            slug("nvlink", a.index, b.index),
            f"Fit the {gap}-slot NVLink bridge across {gpu_name(a)} and {gpu_name(b)}.",
            f"the cards sit {gap} slot positions apart; a bridge of another width does not reach",
            minutes=MIN_STEP,
        )


def _seat_checks(n: str, label: str) -> Iterator[Step]:
    yield Step(
        slug(n, "check", "seated"),
        f"Check {label}'s power plug: no gap between plug and socket, latch engaged.",
        minutes=MIN_QUICK,
    )
    yield Step(
        slug(n, "check", "bend"),
        f"Check {label}'s power lead runs straight for {BEND_STRAIGHT_MM} mm from the plug "
        "before it bends.",
        "a bend at the plug pulls the pins sideways and loads one side of the contacts",
        minutes=MIN_QUICK,
    )


def _cards(build: Build) -> Iterator[Step]:
    for i, nic in enumerate(build.nics):
        if nic.slot is None:
            continue
        yield Step(
            slug(f"nic{i}", "seat"),
            f"Seat NIC {i} ({nic.part.name}) in {nic.slot.name} and screw its bracket down.",
            f"{nic.part.ports} x {nic.part.speed_gbe:g} GbE needs PCIe {nic.part.pcie_gen}.0 "
            f"x{nic.part.lanes}",
            serial=f"NIC {i} ({nic.part.name})",
            minutes=MIN_CARD,
        )
    adapters = [d for d in build.drives if d.on_adapter]
    for i, d in enumerate(build.drives):
        if d.on_adapter:
            yield Step(
                slug(f"drive{i}", "adapter"),
                f"Fit the {d.drive.name} (drive {i}) on the M.2 adapter card.",
                serial=f"drive {i} ({d.drive.name})",
                minutes=MIN_STEP,
            )
    if adapters:
        yield Step(
            "m2-adapter-seat",
            "Seat the M.2 adapter card in a free x16 slot and screw its bracket down.",
            "the BIOS splits that slot's lanes x4x4x4x4 for it (see the BIOS settings)",
            minutes=MIN_CARD,
        )


def _bios(build: Build) -> Iterator[Step]:
    board = build.motherboard
    debug = board.bios.debug if board.bios is not None else "none"
    yield Step(
        "power-recheck",
        "Check every lead against the cable map before the first power-on.",
        "a lead left off a card or the board is the commonest no-POST",
        minutes=MIN_STEP * 2,
    )
    g0 = min(build.gpus, key=lambda g: g.slot.position if g.slot else 99, default=None)
    if g0 is not None:
        yield Step(
            "display",
            f"Connect the monitor to {gpu_name(g0)}'s display output.",
            minutes=MIN_QUICK,
        )
    for i in range(len(build.psus)):
        yield Step(slug(f"psu{i}", "switch-on"), f"Switch PSU {i} on at its rocker.", minutes=0.5)
    if debug == "qcode":
        expect = "the Q-code display counts through memory training and settles on A0 or AA"
    elif debug == "qled":
        expect = "the Q-LEDs (CPU, DRAM, VGA, BOOT) light in turn and go out"
    else:
        expect = "the fans spin and the screen shows the board's logo"
    train = ""
    if build.memory.registered and build.memory_gb >= 256:
        train = (
            f" The first boot trains {build.memory_gb} GB of RDIMMs for several minutes: wait, "
            "do not switch off."
        )
    yield Step(
        "first-post",
        "Press the power button and watch the board's debug display.",
        expect,
        warnings=(train.strip(),) if train else (),
        minutes=MIN_STEP * 3,
    )
    yield Step("setup-enter", "Press Del to enter the setup program.", minutes=MIN_QUICK)
    yield Step(
        "setup-memory",
        "Read the installed memory on setup's main page and write it down.",
        f"{build.memory_modules} x {build.memory.module_gb} GB; less means a module or a socket "
        "contact is not seen",
        reading=Reading("memory seen", "GB", float(build.memory_gb), float(build.memory_gb)),
        minutes=MIN_QUICK,
    )
    for s in bios_settings(build):
        where = f" ({s.menu})" if s.menu else ""
        yield Step(
            slug("bios", s.key.replace(":", "-")),
            f"Set {s.name} to {s.value}{where}.",
            s.why,
            minutes=MIN_QUICK,
        )
    yield Step("setup-save", "Save and exit setup (F10).", minutes=MIN_QUICK)


def _load_temp_limit(build: Build) -> tuple[float | None, str]:
    """The temperature at which the monitor's default ``gpu_temp_high`` alert warns: the GPUs'
    slowdown point (catalog, or the monitor's fallback) plus the rule's offset (-5 C)."""
    from rigkit.monitor.alerts import default_rules, gpu_temp_limits

    slowdown, _ = gpu_temp_limits(build)
    rule = next((r for r in default_rules(build) if r.name == "gpu_temp_high"), None)
    if rule is None or rule.threshold is None or rule.relative_to != "slowdown_temp_c":
        return None, ""
    return slowdown + rule.threshold, f"slowdown {slowdown:g} °C {rule.threshold:+g}"


def _accept(build: Build, spec_arg: str) -> Iterator[Step]:
    hot, hot_why = _load_temp_limit(build)
    yield Step(
        "os-install",
        "Install the operating system and the NVIDIA driver.",
        "the acceptance checks read the cards through the driver (NVML)",
        minutes=MIN_OS,
    )
    for g in build.gpus:
        if g.slot is None:
            continue
        link = gpu_link(build, g)
        n = f"gpu{g.index}"
        label = gpu_name(g)
        yield Step(
            slug(n, "link-width"),
            f"Read {label}'s PCIe link width under load "
            "(nvidia-smi -q -d PCI, Link Width Current) and write it down.",
            f"the plan gives {g.slot.name} x{link.lanes}; idle cards drop their link to save power",
            reading=Reading("link width", "lanes", float(link.lanes), float(link.lanes)),
            minutes=MIN_QUICK,
        )
        yield Step(
            slug(n, "link-gen"),
            f"Read {label}'s PCIe generation under load and write it down.",
            f"min(card Gen{g.gpu.pcie_gen}, slot Gen{g.slot.gen}, CPU Gen{build.cpu.pcie_gen})",
            reading=Reading("PCIe generation", "", float(link.gen), float(link.gen)),
            minutes=MIN_QUICK,
        )
        yield Step(
            slug(n, "temp-idle"),
            f"Read {label}'s idle temperature and write it down.",
            reading=Reading("idle temperature", "°C"),
            minutes=MIN_QUICK,
        )
        yield Step(
            slug(n, "temp-load"),
            f"Read {label}'s temperature after 10 minutes under load and write it down.",
            f"the monitor warns at {hot:g} °C ({hot_why})" if hot is not None else None,
            reading=Reading("load temperature", "°C", None, hot),
            minutes=MIN_QUICK,
        )
    yield Step(
        "qa-run",
        f"Run `rigkit qa --spec {spec_arg} --out qa/` and keep qa/qa-results.json.",
        "the acceptance checks measure links, compute, memory, storage, network and a soak "
        "against this spec; the certificate quotes their verdict",
        minutes=MIN_QA,
    )


# --- the rest of the book -----------------------------------------------------------------------


def _parts(build: Build) -> list[PartLine]:
    out = [
        PartLine(build.cpu.name, 1, "sealed box; no bent pads on the carrier"),
        PartLine(build.motherboard.name, 1, "socket pins straight, socket cover on"),
        PartLine(build.memory.name, build.memory_modules, "same part number on every module"),
    ]
    counts: dict[str, int] = {}
    for g in build.gpus:
        counts[g.gpu.name] = counts.get(g.gpu.name, 0) + 1
    for name, n in counts.items():
        out.append(PartLine(name, n, "power socket pins straight; no rattle"))
    psu_counts: dict[str, int] = {}
    for p in build.psus:
        psu_counts[p.name] = psu_counts.get(p.name, 0) + 1
    for name, n in psu_counts.items():
        out.append(
            PartLine(name, n, "every modular lead in the box (count them against the cable map)")
        )
    drives: dict[str, int] = {}
    for d in build.drives:
        drives[d.drive.name] = drives.get(d.drive.name, 0) + 1
    for name, n in drives.items():
        out.append(PartLine(name, n, "model and capacity on the label"))
    for nic in build.nics:
        out.append(PartLine(nic.part.name, 1, "full-height bracket for the case"))
    for fan, n in build.fans:
        out.append(PartLine(fan.name, n, "PWM (4-pin) leads"))
    if build.cooler is not None:
        out.append(PartLine(build.cooler.name, 1, f"mounting kit for {build.cpu.socket}"))
    if build.case is not None:
        out.append(PartLine(build.case.name, 1, "standoffs and screw bag"))
    if build.ups is not None:
        out.append(PartLine(build.ups.name, 1, "battery connected, charged 8 h before use"))
    if len(build.psus) > 1:
        out.append(PartLine("dual-PSU sync adapter (24-pin)", 1, "fits both PSUs' 24-pin leads"))
    risers = riser_gpus(build)
    if risers:
        gen = max(gpu_link(build, g).gen for g in build.gpus if g.index in risers)
        out.append(
            PartLine(
                f"PCIe {gen}.0 x16 riser cable and mount", len(risers), "rated PCIe generation"
            )
        )
    cm = cable_map(build)
    n_adapters = sum(1 for x in cm.leads if x.adapter)
    if n_adapters:
        out.append(
            PartLine("12VHPWR adapter (from the GPU box)", n_adapters, "inputs: one per 150 W")
        )
    if any(g.nvlink_bridge for g in build.gpus):
        out.append(
            PartLine(
                "NVLink bridge",
                sum(g.nvlink_bridge for g in build.gpus) // 2,
                "width matches the slot spacing",
            )
        )
    return out


def _tools(build: Build) -> list[str]:
    out = ["Phillips #2 screwdriver (magnetic tip)", "ESD mat and wrist strap", "a torch"]
    proc = socket_procedures().get(build.cpu.socket)
    if proc is not None and proc.get("torque"):
        out.insert(0, str(proc["torque"]))
    if build.cooler is not None:
        out.append("thermal paste (if the cooler has none applied)")
    out.append("cable ties or hook-and-loop straps")
    return out


def _trouble(build: Build) -> list[Trouble]:
    out = [
        Trouble(
            "No POST: fans spin, no picture",
            (
                "24-pin and every EPS lead fully seated (cable map)",
                "memory in the population order above; try one module in the first slot",
                "monitor on the first card's output, not the board's",
            )
            + (
                ("wait out RDIMM training (several minutes on the first boot)",)
                if build.memory.registered
                else ()
            ),
        ),
        Trouble(
            "A card is missing in setup or nvidia-smi",
            (
                "its power leads (cable map) and its slot latch",
                "Above 4G Decoding enabled, CSM disabled",
                "move it to another slot to tell the card from the slot",
            ),
        ),
    ]
    links = [gpu_link(build, g) for g in build.gpus if g.slot is not None]
    if links:
        expect = ", ".join(f"{x.slot} x{x.lanes} Gen{x.gen}" for x in links)
        out.append(
            Trouble(
                f"A link trains below plan (plan: {expect})",
                (
                    "read it under load: idle cards drop the link",
                    "reseat the card; check the slot for dust",
                )
                + (
                    ("on a riser: set the slot's speed one generation lower",)
                    if riser_gpus(build)
                    else ()
                ),
            )
        )
    cm = cable_map(build)
    if any(p.atx_version.startswith("2") for p in build.psus) or any(x.adapter for x in cm.leads):
        out.append(
            Trouble(
                "The machine switches off under load",
                (
                    "GPU transients trip an ATX 2.x PSU's protection: lower power limits "
                    "(nvidia-smi -pl)",
                    "adapter inputs on separate leads, not daisy-chained",
                )
                + (
                    ("the secondary PSU starts with the primary (sync adapter)",)
                    if len(build.psus) > 1
                    else ()
                ),
            )
        )
    elif len(build.psus) > 1:
        out.append(
            Trouble(
                "Cards on the secondary PSU are missing",
                ("the sync adapter starts the secondary with the primary", "its rocker switch on"),
            )
        )
    return out


def _post(build: Build) -> list[str]:
    board = build.motherboard
    debug = board.bios.debug if board.bios is not None else "none"
    out: list[str] = []
    if debug == "qcode":
        out.append("The Q-code display counts up through memory training; A0 or AA means booted.")
    elif debug == "qled":
        out.append("Q-LEDs: CPU, DRAM, VGA, BOOT light in turn; one that stays lit names the part.")
    else:
        out.append("The board has no debug display in the catalog: watch the screen and fans.")
    mc = memory_config(build)
    out.append(
        f"Memory: {build.memory_gb} GB in {mc.channels_used} of {mc.channels} channels at "
        f"DDR5-{mc.speed_mts}."
    )
    if build.memory.registered and build.memory_gb >= 256:
        out.append("The first boot trains the RDIMMs for several minutes with a dark screen.")
    for g in build.gpus:
        if g.slot is not None:
            link = gpu_link(build, g)
            out.append(f"{gpu_name(g)} in {g.slot.name}: x{link.lanes} PCIe {link.gen}.0.")
    return out


def _qa_meaning(build: Build) -> list[str]:
    out = [
        f"inventory: {build.gpu_count} GPU(s), {build.memory_gb} GB memory, the drives of the spec",
    ]
    links = [(g, gpu_link(build, g)) for g in build.gpus if g.slot is not None]
    if links:
        out.append(
            "PCIe under load: "
            + ", ".join(f"GPU {g.index} x{x.lanes} Gen{x.gen}" for g, x in links)
        )
    out.append("GPU compute and memory bandwidth near the catalog's figures")
    out.append("a soak without throttling, XID errors or temperatures over the alert thresholds")
    out.append("verdict pass (or warn with reasons you accept); fail blocks the certificate")
    return out


def build_book(build: Build, spec_arg: str | None = None) -> Book:
    """The build book for ``build``. ``spec_arg`` is the spec path as the user gave it (quoted
    in the qa command)."""
    from rigkit.catalog import load_catalog
    from rigkit.design.registry import Severity, run_rules

    spec = spec_arg or build.spec_path or "SPEC"
    cm = cable_map(build)
    leads = list(cm.leads)
    phases = [
        Phase(
            "prep",
            "Before you start",
            "Unbox and record every serial number before anything is installed.",
            _unique(list(_prep(build))),
        ),
        Phase(
            "board",
            "The board outside the case",
            "CPU, cooler, memory and M.2 drives go on the board while it lies on its box.",
            _unique(list(_board(build))),
        ),
        Phase(
            "case",
            "Board into the case",
            "Standoffs, board, front panel and fans.",
            _unique(list(_case(build))),
        ),
        Phase(
            "power",
            "Power supplies",
            "PSUs in, board power connected; GPU leads come with the cards.",
            _unique(list(_power(build, leads))),
        ),
        Phase(
            "gpus",
            "Graphics cards",
            "Top slot first, each card with its leads from the PSU the plan assigned it to.",
            _unique(list(_gpus(build, leads))),
        ),
    ]
    cards = list(_cards(build))
    if cards:
        phases.append(Phase("cards", "Add-in cards", "Network and adapter cards.", _unique(cards)))
    phases.append(
        Phase(
            "bios",
            "First power-on and BIOS",
            "First POST without an OS, then the settings this build needs.",
            _unique(list(_bios(build))),
        )
    )
    phases.append(
        Phase(
            "accept",
            "Acceptance",
            "Readings against the plan, then the acceptance run.",
            _unique(list(_accept(build, spec))),
        )
    )
    all_ids = [s.id for p in phases for s in p.steps] + [p.signoff_id for p in phases]
    if len(set(all_ids)) != len(all_ids):  # pragma: no cover - a programming error
        raise AssertionError("duplicate item ids across phases")
    notes = list(build.notes) + [
        f"{f.rule}: {f.message}"
        for f in run_rules(build, load_catalog())
        if f.severity is Severity.ERROR and f.category in ("clearance", "psu", "power", "pcie")
    ]
    notes += [f"cable map: {s}" for s in cm.notes]
    risers = riser_gpus(build)
    if risers:
        names = ", ".join(f"GPU {i}" for i in sorted(risers))
        notes.append(
            f"this book mounts {names} on riser cables from their planned slots so that every "
            "card fits (see the slot map); change the spec's slots to avoid them"
        )
    return Book(
        name=build.name,
        spec_path=build.spec_path,
        board=build.motherboard.name,
        socket=build.cpu.socket,
        parts=tuple(_parts(build)),
        tools=tuple(_tools(build)),
        phases=tuple(phases),
        cables=cm,
        bios=tuple(bios_settings(build)),
        slots=tuple(slot_map(build)),
        post=tuple(_post(build)),
        trouble=tuple(_trouble(build)),
        qa_command=f"rigkit qa --spec {spec} --out qa/",
        qa_meaning=tuple(_qa_meaning(build)),
        plan_notes=tuple(notes),
    )
