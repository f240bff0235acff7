"""The build book's types: steps with stable ids, phases, the cable map, BIOS settings.

Everything here is frozen data computed from a :class:`~rigkit.build.Build`; the templates only
lay it out. An item id is made from what the step is about (``gpu2-power-12v2x6``,
``dimm-DIMM_A1``), never from a counter, so the same spec always gives the same ids and a
printed checklist and the tracker agree.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(*parts: object) -> str:
    """A lowercase id from its parts: ``slug("gpu0", "power", "12V-2x6")`` -> ``gpu0-power-12v-2x6``."""
    text = "-".join(str(p) for p in parts if str(p))
    return _SLUG.sub("-", text.lower()).strip("-")


def socket_slug(kind: str, name: str) -> str:
    """An id for a board socket without the name's repeated prefix: ``("dimm", "DIMM_A1")`` ->
    ``dimm-a1``, ``("m2", "M.2_1")`` -> ``m2-1``, ``("m2", "M2A_CPU")`` -> ``m2-a-cpu``."""
    prefix = {"dimm": r"^dimm[-_ ]?", "m2": r"^m\.?2[-_ ]?"}.get(kind)
    short = re.sub(prefix, "", name.lower()) if prefix else name
    return slug(kind, short or name)


@dataclass(frozen=True)
class Reading:
    """A value the builder writes down on the checklist, and the range the plan expects."""

    label: str  # "link width under load"
    unit: str = ""  # "lanes", "°C", "GB"
    min: float | None = None
    max: float | None = None

    def expected(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            if self.min == self.max:
                return f"{self.min:g}{u}"
            return f"{self.min:g}-{self.max:g}{u}"
        if self.max is not None:
            return f"at most {self.max:g}{u}"
        if self.min is not None:
            return f"at least {self.min:g}{u}"
        return ""

    def in_range(self, value: float) -> bool:
        return not (
            (self.min is not None and value < self.min)
            or (self.max is not None and value > self.max)
        )


@dataclass(frozen=True)
class Step:
    """One action. ``warnings`` are printed before it; ``serial``/``reading`` are blanks to fill."""

    id: str
    action: str
    why: str | None = None
    warnings: tuple[str, ...] = ()
    serial: str | None = None  # what the serial number belongs to ("GPU 0 (RTX 4090)")
    reading: Reading | None = None
    minutes: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        if self.reading is not None:
            d["reading"]["expected"] = self.reading.expected()
        return d


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    intro: str
    steps: tuple[Step, ...]

    @property
    def minutes(self) -> float:
        return sum(s.minutes for s in self.steps)

    @property
    def signoff_id(self) -> str:
        return slug(self.key, "signoff")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "intro": self.intro,
            "minutes": round(self.minutes),
            "signoff_id": self.signoff_id,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class Lead:
    """One cable from a PSU: ``kind`` 12v-2x6, pcie-8pin, eps-8pin, atx-24pin, or an adapter."""

    psu: int  # index of the PSU in the build
    kind: str
    count: int  # leads of that kind (an adapter counts its 8-pin inputs)
    to: str  # "GPU 0 (RTX 4090)", "board EPS", ...
    adapter: bool = False  # a 12VHPWR adapter fed by ``count`` separate 8-pin leads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PsuRow:
    index: int
    name: str
    role: str  # "primary" or "secondary"
    wattage_w: float
    atx_version: str
    load_w: float
    loading: float
    feeds: tuple[str, ...]
    leads_used: dict[str, int]
    leads_have: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["load_w"] = round(self.load_w, 1)
        d["loading"] = round(self.loading, 4)
        d["feeds"] = list(self.feeds)
        return d


@dataclass(frozen=True)
class CableMap:
    leads: tuple[Lead, ...]
    psus: tuple[PsuRow, ...]
    notes: tuple[str, ...]  # leads a PSU does not have; adapters a native lead could replace

    def for_gpu(self, label: str) -> list[Lead]:
        return [x for x in self.leads if x.to == label]

    def to_dict(self) -> dict[str, Any]:
        return {
            "leads": [x.to_dict() for x in self.leads],
            "psus": [p.to_dict() for p in self.psus],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BiosSetting:
    key: str  # BiosKey (or "pcie_speed:<slot>")
    name: str
    value: str
    why: str
    menu: str | None  # None: the catalog has no menu path for this board

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SlotRow:
    """One expansion-slot position for the slot map drawing."""

    position: int
    slot: str | None  # slot name, or None for a position without a slot
    lanes: str  # "x16 Gen5 CPU"
    card: str | None  # "GPU 0 (RTX 4090)" when a card sits (or is covered) here
    covered_by: str | None  # the card above that covers this position
    riser: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trouble:
    symptom: str
    checks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"symptom": self.symptom, "checks": list(self.checks)}


@dataclass(frozen=True)
class PartLine:
    item: str
    quantity: int
    check: str  # what to check on arrival

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Book:
    name: str
    spec_path: str | None
    board: str
    socket: str
    parts: tuple[PartLine, ...]
    tools: tuple[str, ...]
    phases: tuple[Phase, ...]
    cables: CableMap
    bios: tuple[BiosSetting, ...]
    slots: tuple[SlotRow, ...]
    post: tuple[str, ...]  # what to expect at first power-on
    trouble: tuple[Trouble, ...]
    qa_command: str
    qa_meaning: tuple[str, ...]
    plan_notes: tuple[str, ...] = field(default=())  # placement notes and error findings

    @property
    def minutes(self) -> float:
        return sum(p.minutes for p in self.phases)

    def items(self) -> list[tuple[Phase, Step]]:
        return [(p, s) for p in self.phases for s in p.steps]

    def item_ids(self) -> list[str]:
        """Every checklist id: the steps, then each phase's sign-off."""
        return [s.id for _, s in self.items()] + [p.signoff_id for p in self.phases]

    def step(self, item_id: str) -> Step | None:
        return next((s for _, s in self.items() if s.id == item_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec_path": self.spec_path,
            "board": self.board,
            "socket": self.socket,
            "minutes": round(self.minutes),
            "parts": [p.to_dict() for p in self.parts],
            "tools": list(self.tools),
            "phases": [p.to_dict() for p in self.phases],
            "cables": self.cables.to_dict(),
            "bios": [b.to_dict() for b in self.bios],
            "slots": [s.to_dict() for s in self.slots],
            "post": list(self.post),
            "trouble": [t.to_dict() for t in self.trouble],
            "qa_command": self.qa_command,
            "qa_meaning": list(self.qa_meaning),
            "plan_notes": list(self.plan_notes),
            "item_ids": self.item_ids(),
        }
