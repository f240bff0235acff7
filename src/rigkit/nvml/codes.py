"""What NVML's numbers mean: XID classes and clock-event (throttle) reasons.

One table (``data/codes.yaml``, with its sources) for every part that reads them: the monitor's alert
rules, the store and exporter (reason names), and the qa soak check. It needs no driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml

XidClass = Literal["critical", "application", "other"]


@dataclass(frozen=True)
class ClockEventReason:
    """One ``nvmlClocksEventReason*`` bit."""

    bit: int
    name: str
    hardware: bool  # a hardware slowdown: heat, or the power-brake signal
    meaning: str


def _load() -> dict[str, Any]:
    text = resources.files("rigkit.nvml").joinpath("data", "codes.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


_DATA = _load()

#: XID -> what it means, for the XIDs of each class.
XID_MEANINGS: dict[int, str] = {
    int(code): str(text)
    for cls in ("critical", "application")
    for code, text in _DATA["xid"][cls]["codes"].items()
}
#: XIDs that point at hardware, driver or bus trouble: raise at once.
CRITICAL_XIDS: tuple[int, ...] = tuple(int(c) for c in _DATA["xid"]["critical"]["codes"])
#: XIDs caused by applications (bad memory access, exceptions): log only, never alert.
APPLICATION_XIDS: tuple[int, ...] = tuple(int(c) for c in _DATA["xid"]["application"]["codes"])

#: Every clock-event reason rigkit names, in bit order.
CLOCK_EVENT_REASONS: tuple[ClockEventReason, ...] = tuple(
    ClockEventReason(int(r["bit"]), str(r["name"]), bool(r["hardware"]), str(r["meaning"]))
    for r in _DATA["clock_event_reasons"]["reasons"]
)
#: Reason names in bit order (bit 0 first): the monitor's ``throttle_reasons`` vocabulary.
THROTTLE_REASONS: tuple[str, ...] = tuple(r.name for r in CLOCK_EVENT_REASONS)
#: The hardware slowdowns (heat or the power-brake signal).
HW_SLOWDOWN_REASONS: tuple[str, ...] = tuple(r.name for r in CLOCK_EVENT_REASONS if r.hardware)


def xid_class(code: int) -> XidClass:
    """``critical`` (hardware, driver, bus), ``application`` (the program) or ``other``."""
    if code in CRITICAL_XIDS:
        return "critical"
    if code in APPLICATION_XIDS:
        return "application"
    return "other"


def reason_names(mask: int) -> tuple[str, ...]:
    """The reason names whose bits are set in an NVML clock-event mask, in bit order."""
    return tuple(r.name for r in CLOCK_EVENT_REASONS if mask & r.bit)


def reason_mask(names: tuple[str, ...] | list[str]) -> int:
    """The NVML clock-event mask of reason names (unknown names add nothing)."""
    return sum(r.bit for r in CLOCK_EVENT_REASONS if r.name in names)
