"""Physical fit: card width vs slot spacing, card length and slot count vs the case."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.model import slots_covered
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build


def _cards(build: Build) -> list[tuple[str, int, float, str]]:
    """(label, slot position, width in slots, cooling) of every card that has a slot."""
    out: list[tuple[str, int, float, str]] = []
    for g in build.gpus:
        if g.slot is not None:
            # a card on a riser cable takes its slot's connector only; it hangs elsewhere
            width = 1.0 if g.riser else g.gpu.slot_width
            cooling = "riser" if g.riser else g.gpu.cooling
            out.append((f"gpu{g.index}: {g.gpu.name}", g.slot.position, width, cooling))
    for i, n in enumerate(build.nics):
        if n.slot is not None:
            out.append((f"nic{i}: {n.part.name}", n.slot.position, 1.0, "passive"))
    return sorted(out, key=lambda c: c[1])


@rule("CLR001", "Cards overlap: card width vs slot spacing", "clearance", Severity.ERROR)
def card_overlap(build: Build) -> Iterator[Finding]:
    """A card W slots wide in position p covers positions p..p+W-1; no other card may sit there.

    Why: a 3-slot GPU in slot 1 blocks slots 2 and 3, so a card planned for slot 3 does not fit.
    Fix: cards no wider than the slot spacing (2-slot blowers, water blocks), riser cables to a
    second row, or fewer GPUs.
    """
    cards = _cards(build)
    for label, pos, width, _ in cards:
        covered = slots_covered(pos, width)
        for other, opos, _, _ in cards:
            if other != label and opos in covered and opos > pos:
                yield finding(
                    "CLR001",
                    f"{label} is {width:g} slots wide in position {pos} (covers {covered.start}-"
                    f"{covered.stop - 1}), so {other} in position {opos} cannot be installed",
                    "use cards no wider than the slot spacing (2-slot blower or water-cooled), "
                    "risers to move cards, or fewer cards",
                    device=label,
                    position=pos,
                    width_slots=width,
                    covers=[covered.start, covered.stop - 1],
                    blocked=other,
                    blocked_position=opos,
                )


@rule("CLR002", "GPU length vs case", "clearance", Severity.ERROR)
def gpu_length(build: Build) -> Iterator[Finding]:
    """Every GPU must be no longer than the case's maximum GPU length.

    Fix: a bigger case or shorter cards (check the maker's length, which includes the bracket).
    """
    if build.case is None or build.case.open_frame:
        return
    for g in build.gpus:
        length = g.gpu.length_mm
        if length is not None and length > build.case.max_gpu_length_mm:
            yield finding(
                "CLR002",
                f"gpu{g.index}: {g.gpu.name} is {length:g} mm long; {build.case.name} takes "
                f"{build.case.max_gpu_length_mm:g} mm",
                "choose a case with more GPU length or a shorter card",
                device=f"gpu{g.index}",
                length_mm=length,
                case_max_mm=build.case.max_gpu_length_mm,
            )


@rule("CLR003", "Case expansion slots", "clearance", Severity.ERROR)
def case_slots(build: Build) -> Iterator[Finding]:
    """The last slot a card covers must exist in the case (its expansion-slot count).

    Why: a wide card in the bottom slot of a 7-slot case hangs past the last bracket. Fix: a case
    with 8+ expansion slots or move the card up.
    """
    if build.case is None or build.case.open_frame:
        return
    for label, pos, width, _ in _cards(build):
        last = slots_covered(pos, width).stop - 1
        if last > build.case.expansion_slots:
            yield finding(
                "CLR003",
                f"{label} in position {pos} is {width:g} slots wide and needs slot {last}; "
                f"{build.case.name} has {build.case.expansion_slots} expansion slots",
                "use a case with more expansion slots, or a narrower card in that position",
                device=label,
                last_slot=last,
                case_slots=build.case.expansion_slots,
            )


@rule("CLR004", "Open-air GPUs without a gap", "clearance", Severity.WARNING)
def airflow_gap(build: Build) -> Iterator[Finding]:
    """Open-air GPU coolers draw air from the side facing the next slot down; a card right below
    starves them.

    Why: an open-air card directly above another card draws the lower card's heat and throttles.
    Fix: leave a free slot between cards, blower cards for dense stacks, or water cooling.
    """
    cards = _cards(build)
    for (label, pos, width, cooling), (nlabel, npos, _, _) in itertools.pairwise(cards):
        end = slots_covered(pos, width).stop - 1
        if cooling == "open-air" and npos == end + 1:
            yield finding(
                "CLR004",
                f"{label} ends at slot {end} and {nlabel} starts at slot {npos}: no gap for "
                "open-air coolers",
                "leave one free slot between open-air cards, or use blower/water-cooled cards",
                device=label,
                next_device=nlabel,
            )
