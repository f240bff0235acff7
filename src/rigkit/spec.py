"""The YAML build spec: its schema, validation with file:line errors, and resolution to a Build.

A spec names parts by catalog id (see docs/spec.md)::

    name: Reference 4x RTX 4090 workstation
    parts:
      cpu: threadripper-pro-7975wx
      motherboard: asus-pro-ws-wrx90e-sage-se
      memory: {id: ddr5-5600-ecc-rdimm-64gb, quantity: 8}
      gpus: [{id: rtx-4090, quantity: 4}]
      psus: [evga-supernova-1600-t2, evga-supernova-1000-t2]

:func:`load_spec` / :func:`parse_spec` validate the text (every mapping forbids unknown keys) and
:func:`resolve` looks the ids up in the catalog, assigns PCIe and M.2 slots and fills in the site.
Every problem is a :class:`~rigkit.errors.SpecError` of one line naming the file, the line and
the field, with a hint where one helps.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from rigkit.build import Build, PlacedDevice, PlacedDrive, PlacedGpu, Site
from rigkit.catalog import load_catalog
from rigkit.catalog.loader import Catalog, closest_ids
from rigkit.catalog.parts import (
    Case,
    CloudInstance,
    Cooler,
    Cpu,
    Fan,
    Gpu,
    M2Slot,
    MemoryKit,
    Motherboard,
    Nic,
    Nvme,
    PcieSlot,
    Psu,
    Ups,
)
from rigkit.errors import SpecError, UnknownIdError
from rigkit.inputs import UnreadableInput, read_text_file
from rigkit.yamlerrors import compose_checked, yaml_problem

__all__ = [
    "SITE_PRESETS",
    "DriveRef",
    "Expectation",
    "GpuRef",
    "MemoryRef",
    "NicRef",
    "PartRef",
    "Parts",
    "SiteSpec",
    "Spec",
    "load_build",
    "load_spec",
    "parse_spec",
    "resolve",
]

Loc = tuple[str | int, ...]

#: named sites; explicit ``site:`` keys override the preset's values
SITE_PRESETS: Final[dict[str, dict[str, Any]]] = {
    "na-home-office": {"mains_voltage_v": 120.0, "breaker_a": 15.0, "dedicated_circuit": False},
    "na-dedicated-20a": {"mains_voltage_v": 120.0, "breaker_a": 20.0, "dedicated_circuit": True},
    "eu-230v-16a": {"mains_voltage_v": 230.0, "breaker_a": 16.0, "dedicated_circuit": False},
    "na-240v-30a": {"mains_voltage_v": 240.0, "breaker_a": 30.0, "dedicated_circuit": True},
}
DEFAULT_SITE_PRESET: Final = "na-home-office"

Metric = Literal["decode_tokens_per_s", "prefill_tokens_per_s", "load_time_s", "ttft_s"]
#: headline hardware figures a `claims:` entry can state (checked by rigkit.design.claims)
ClaimFigure = Literal[
    "fp32_tflops",
    "tensor_tflops",
    "vram_gb",
    "gpu_bandwidth_gb_s",
    "memory_bandwidth_gb_s",
    "pcie_lanes",
    "psu_capacity_w",
    "psu_loading_pct",
    "sustained_power_w",
    "heat_btu_h",
    "fans_cfm",
    "storage_read_gb_s",
    "load_time_s",
    "ups_runtime_min",
    "total_cost_usd",
]


# --- schema -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    # allow_inf_nan=False: `.nan` and `.inf` are valid YAML floats but never a usable figure
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _id_shorthand(value: Any) -> Any:
    """Let a bare id stand for ``{id: <id>}``."""
    return {"id": value} if isinstance(value, str) else value


#: far above any workstation's part count; a typo (99999999 GPUs) fails here instead of
#: expanding into that many parts while the build is resolved
MAX_QUANTITY = 1000


class PartRef(_Strict):
    """A catalog id and how many."""

    id: str
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY, strict=True)  # strict: `true` is not 1

    @_model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _id_shorthand(value)


class MemoryRef(_Strict):
    """One module type and the number of modules (required: no sensible default)."""

    id: str
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True)

    @_model_validator(mode="before")
    @classmethod
    def _need_quantity(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"give the module count: {{id: {value}, quantity: N}}")
        return value


class GpuRef(PartRef):
    power_limit_w: float | None = Field(default=None, gt=0, description="override board power")
    slots: list[str] | None = Field(default=None, description="PCIe slot names, one per card")
    nvlink_bridge: bool = Field(default=False, description="cards are paired by NVLink bridges")
    riser: bool = Field(
        default=False,
        description="the cards sit on PCIe riser cables, mounted away from their slots (an open "
        "frame, a vertical bracket): each takes one slot's connector and covers no other slot",
    )
    slot_width: float | None = Field(default=None, gt=0, description="this card's own width")
    length_mm: float | None = Field(default=None, gt=0, description="this card's own length")
    size_source: str | None = Field(
        default=None, min_length=3, description="where slot_width / length_mm come from"
    )

    @_model_validator(mode="after")
    def _sized_with_source(self) -> GpuRef:
        if (self.slot_width is not None or self.length_mm is not None) and not self.size_source:
            raise ValueError(
                "slot_width / length_mm need size_source (the maker's page of your card)"
            )
        return self


class DriveRef(PartRef):
    role: str = "data"
    raid: str | None = Field(default=None, description="drives with the same name form RAID 0")
    m2_slots: list[str] | None = Field(default=None, description="M.2 slot names, one per drive")
    adapter: bool = Field(default=False, description="on an add-in adapter card, not M.2 slots")


class NicRef(PartRef):
    slots: list[str] | None = Field(default=None, description="PCIe slot names, one per card")


class Parts(_Strict):
    cpu: str
    motherboard: str
    memory: MemoryRef
    gpus: list[GpuRef] = Field(min_length=1)
    psus: list[PartRef] = Field(min_length=1)
    storage: list[DriveRef] = Field(default_factory=list)
    nics: list[NicRef] = Field(default_factory=list)
    fans: list[PartRef] = Field(default_factory=list)
    cooler: str | None = None
    case: str | None = None
    ups: str | None = None
    extra_cost_usd: float = Field(default=0.0, ge=0)
    psu_assignment: list[int] | None = Field(
        default=None, description="PSU index per GPU (manual split); default: automatic"
    )

    @field_validator("gpus", "psus", "storage", "nics", "fans", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            return [value]
        return value


class SiteSpec(_Strict):
    """Where the machine runs. Unset keys come from ``preset`` (default ``na-home-office``)."""

    preset: str | None = None
    mains_voltage_v: float | None = Field(default=None, gt=0)
    breaker_a: float | None = Field(default=None, gt=0)
    dedicated_circuit: bool | None = None
    other_load_w: float | None = Field(default=None, ge=0)
    room_cooling_btu_h: float | None = Field(default=None, ge=0)
    ambient_c: float | None = None
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0)
    hours_per_day: float | None = Field(default=None, ge=0, le=24)
    utilization: float | None = Field(default=None, ge=0, le=1)
    idle_power_fraction: float | None = Field(default=None, ge=0, le=1)


class Expectation(_Strict):
    """A performance claim to check against the estimator."""

    claim: str
    model: str
    quant: str
    engine: str
    split: str | None = None
    gpus: int | None = Field(default=None, ge=1)
    prompt: int | None = Field(default=None, ge=1)
    gen: int | None = Field(default=None, ge=1)
    batch: int | None = Field(default=None, ge=1)
    metric: Metric
    min: float | None = None
    max: float | None = None
    source: str | None = None

    @_model_validator(mode="after")
    def _bounds(self) -> Expectation:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class Claim(_Strict):
    """A headline hardware figure stated for the build (e.g. in its design document), checked
    against what the plan works out. ``max`` makes a range ("8-10 min"); ``items`` are the claim's
    own terms when it is a total; ``size_gb`` is the file a ``load_time_s`` claim loads."""

    claim: str
    figure: ClaimFigure
    value: float = Field(ge=0)
    max: float | None = Field(default=None, ge=0)
    size_gb: float | None = Field(default=None, gt=0)
    items: list[float] = Field(default_factory=list)
    source: str | None = None

    @_model_validator(mode="after")
    def _claim_bounds(self) -> Claim:
        if self.max is not None and self.max < self.value:
            raise ValueError(f"max {self.max:g} is below value {self.value:g}")
        if self.figure == "load_time_s" and self.size_gb is None:
            raise ValueError("a load_time_s claim needs size_gb (the file it loads)")
        return self


class Spec(_Strict):
    """A validated spec. ``file`` and the YAML line map travel with it for later errors."""

    name: str
    description: str | None = None
    parts: Parts
    site: SiteSpec = Field(default_factory=SiteSpec)
    compare_cloud: str | None = None
    expectations: list[Expectation] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)

    _file: str | None = PrivateAttr(default=None)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @property
    def file(self) -> str | None:
        return self._file

    def line_of(self, loc: Loc) -> int | None:
        """Line of the YAML node at ``loc`` (or of its nearest ancestor that exists)."""
        return _nearest_line(self._lines, loc)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- YAML -> (data, line map) -----------------------------------------------------------------


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int], file: str) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            line = key.start_mark.line + 1
            if k in seen:
                raise SpecError(
                    f"duplicate key {k!r} (first on line {seen[k]})",
                    file=file,
                    line=line,
                    field=_fmt_loc((*loc, k)) if loc else k,
                )
            seen[k] = line
            out[(*loc, k)] = line
            _node_lines(value, (*loc, k), out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*loc, i), out, file)


def _nearest_line(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _fmt_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema class that the mapping at ``loc`` is validated against."""
    current: Any = Spec
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            if typing.get_origin(current) is not list or not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


#: order of the reported problems: unknown keys first (a misspelt key is the likeliest cause of
#: the rest), missing keys last (they are reported at their parent's line, not where they belong)
_RANK: Final = {"extra_forbidden": 0, "missing": 2}


def _validation_error(err: ValidationError, lines: Mapping[Loc, int], file: str) -> SpecError:
    """Every problem pydantic found, each with its line, in :data:`_RANK` order, then by line."""
    errors = err.errors()
    # a misspelt key shows up twice: unknown (with its "did you mean") and the real one missing;
    # the unknown key is the better message, so its missing twin is left out
    meant: set[Loc] = set()
    for e in errors:
        if e["type"] == "extra_forbidden":
            parent: Loc = tuple(e["loc"][:-1])
            near = _near_key(str(e["loc"][-1]), parent)
            if near is not None:
                meant.add((*parent, near))
    found = sorted(
        ((_RANK.get(e["type"], 1), _one_problem(e, lines, file)) for e in errors
         if not (e["type"] == "missing" and tuple(e["loc"]) in meant)),
        key=lambda x: (x[0], x[1].line or 0),
    )  # fmt: skip
    return SpecError.all_of([problem for _, problem in found])


def _near_key(key: str, parent: Loc) -> str | None:
    model = _model_at(parent)
    if model is None:
        return None
    import difflib

    near = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.5)
    return near[0] if near else None


def _one_problem(e: Any, lines: Mapping[Loc, int], file: str) -> SpecError:
    loc: Loc = tuple(e["loc"])
    kind = e["type"]
    hint: str | None = None
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = loc[:-1]
        model = _model_at(parent)
        if model is not None:
            near = _near_key(key, parent)
            valid = ", ".join(model.model_fields)
            hint = f"did you mean {near!r}?" if near else f"valid keys: {valid}"
        return SpecError(
            f"unknown key {key!r}",
            file=file,
            line=_nearest_line(lines, loc),
            field=_fmt_loc(parent) or "(top level)",
            hint=hint,
        )
    if kind == "missing":
        key = str(loc[-1])
        parent = loc[:-1]
        return SpecError(
            f"missing required key {key!r}",
            file=file,
            line=_nearest_line(lines, parent),
            field=_fmt_loc(parent) or "(top level)",
        )
    msg = str(e["msg"])
    msg = msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    if kind not in ("value_error", "assertion_error") and "input" in e:
        got = e["input"]
        if not isinstance(got, dict | list):
            msg += f" (got {got!r})"
    return SpecError(
        msg,
        file=file,
        line=_nearest_line(lines, loc),
        field=_fmt_loc(loc) or "(top level)",
    )


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    """Validate spec text. ``file`` is used in error messages."""
    try:
        root, data = compose_checked(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise SpecError(problem, file=file, line=line) from None
    if root is None:
        raise SpecError("the spec is empty", file=file, line=1, hint="see examples/*.yaml")
    if not isinstance(root, yaml.MappingNode):
        raise SpecError(
            "the spec must be a mapping with name: and parts:",
            file=file,
            line=root.start_mark.line + 1,
        )
    lines: dict[Loc, int] = {}
    _node_lines(root, (), lines, file)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise _validation_error(err, lines, file) from None
    spec._file = file
    spec._lines = lines
    return spec


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file."""
    p = Path(path)
    try:
        text = read_text_file(p)
    except UnreadableInput as exc:  # missing, a directory or device, too big, not UTF-8 text
        raise SpecError(exc.reason, file=exc.path, hint=exc.hint or "a spec is YAML text") from None
    return parse_spec(text, file=str(p))


def load_build(path: str | Path) -> Build:
    """Read, validate and resolve a spec file."""
    return resolve(load_spec(path))


# --- resolution -------------------------------------------------------------------------------


@dataclass
class _Ctx:
    spec: Spec
    cat: Catalog
    notes: list[str]

    def error(self, message: str, loc: Loc, hint: str | None = None) -> SpecError:
        return SpecError(
            message,
            file=self.spec.file,
            line=self.spec.line_of(loc),
            field=_fmt_loc(loc),
            hint=hint,
        )

    def lookup(self, kind: str, part_id: str, loc: Loc) -> Any:
        try:
            return self.cat.get(kind, part_id)
        except UnknownIdError as exc:
            raise self.error(exc.message, loc, hint=exc.hint) from None


def _check_expectation_ids(ctx: _Ctx) -> list[SpecError]:
    """The model, format and engine of every expectation must be in the LLM catalog."""
    if not ctx.spec.expectations:
        return []
    from rigkit.catalog.llm import load_llm_catalog

    llm = load_llm_catalog()
    found: list[SpecError] = []
    for k, e in enumerate(ctx.spec.expectations):
        for key, find in (("model", llm.model), ("quant", llm.format), ("engine", llm.engine)):
            try:
                find(getattr(e, key))
            except UnknownIdError as exc:
                found.append(ctx.error(exc.message, ("expectations", k, key), hint=exc.hint))
    return found


def _check_ids(ctx: _Ctx) -> None:
    """Every catalog id in the spec, looked up before anything is resolved, so that all the
    unknown ones are reported in one run (each with its line and closest ids)."""
    parts, spec = ctx.spec.parts, ctx.spec
    P: Loc = ("parts",)
    wanted: list[tuple[str, str, Loc]] = [
        ("cpus", parts.cpu, (*P, "cpu")),
        ("motherboards", parts.motherboard, (*P, "motherboard")),
        ("memory", parts.memory.id, (*P, "memory", "id")),
    ]
    for kind, key, refs in (
        ("gpus", "gpus", parts.gpus),
        ("psus", "psus", parts.psus),
        ("nvme", "storage", parts.storage),
        ("nics", "nics", parts.nics),
        ("fans", "fans", parts.fans),
    ):
        wanted += [(kind, ref.id, _id_loc((*P, key, i))) for i, ref in enumerate(refs)]
    for kind, key, value in (("cases", "case", parts.case), ("coolers", "cooler", parts.cooler)):
        if value:
            wanted.append((kind, value, (*P, key)))
    if parts.ups:
        wanted.append(("ups", parts.ups, (*P, "ups")))
    if spec.compare_cloud:
        wanted.append(("cloud", spec.compare_cloud, ("compare_cloud",)))
    found: list[SpecError] = []
    for kind, part_id, loc in wanted:
        try:
            ctx.cat.get(kind, part_id)
        except UnknownIdError as exc:
            found.append(ctx.error(exc.message, loc, hint=exc.hint))
    found += _check_expectation_ids(ctx)
    if found:
        raise SpecError.all_of(found)


def _id_loc(base: Loc) -> Loc:
    """Where the id of a PartRef sits (a bare id maps to ``base`` through the nearest-line rule)."""
    return (*base, "id")


def _span(position: int, width: float) -> range:
    return range(position, position + max(1, math.ceil(width)))


@dataclass
class _Card:
    kind: Literal["gpu", "nic"]
    label: str
    lanes: int
    width: float
    explicit: PcieSlot | None
    slot: PcieSlot | None = None
    auto: bool = True


def _assign_pcie(
    cards: list[_Card], board: Motherboard, case: Case | None, notes: list[str]
) -> None:
    """Place cards in slots; explicit slots first, then GPUs, then the others (see docs/spec.md)."""
    used: set[str] = set()
    covered: set[int] = set()

    def place(card: _Card, slot: PcieSlot, auto: bool) -> None:
        card.slot, card.auto = slot, auto
        used.add(slot.name)
        covered.update(_span(slot.position, card.width))

    for card in cards:
        if card.explicit is not None:
            place(card, card.explicit, auto=False)

    limit = case.expansion_slots if case is not None and not case.open_frame else None

    def clean(card: _Card, slot: PcieSlot, fit_case: bool) -> bool:
        span = _span(slot.position, card.width)
        if any(p in covered for p in span):
            return False
        if slot.physical_lanes < card.lanes and card.kind == "gpu":
            return False
        return not (fit_case and limit is not None and span[-1] > limit)

    gpu_order = sorted(
        board.pcie_slots, key=lambda s: (s.source != "cpu", -s.electrical_lanes, s.position)
    )
    other_order = sorted(board.pcie_slots, key=lambda s: (s.source != "cpu", s.position))
    for kind in ("gpu", "nic"):
        order = gpu_order if kind == "gpu" else other_order
        for card in cards:
            if card.kind != kind or card.slot is not None:
                continue
            free = [s for s in order if s.name not in used]
            if card.kind == "nic":
                wide_enough = [s for s in free if s.electrical_lanes >= card.lanes]
                free = wide_enough + [s for s in free if s not in wide_enough]
            choice = next((s for s in free if clean(card, s, fit_case=True)), None)
            if choice is None:
                choice = next((s for s in free if clean(card, s, fit_case=False)), None)
                if choice is not None and limit is not None:
                    notes.append(
                        f"{card.label}: placed in {choice.name} (position {choice.position});"
                        f" a {card.width:g}-slot card there reaches past the case's {limit} slots"
                    )
            if choice is None and free:
                choice = free[0]
                notes.append(
                    f"{card.label}: no slot left that is clear of other cards; placed in"
                    f" {choice.name} (position {choice.position}), where it overlaps another card"
                )
            if choice is None:
                notes.append(f"{card.label}: no PCIe slot left on {board.name}")
                continue
            place(card, choice, auto=True)


def _slot_by_name(
    ctx: _Ctx, board: Motherboard, name: str, loc: Loc, m2: bool = False
) -> PcieSlot | M2Slot:
    slots: Sequence[PcieSlot | M2Slot] = board.m2_slots if m2 else board.pcie_slots
    for s in slots:
        if s.name == name:
            return s
    names = [s.name for s in slots]
    near = closest_ids(name, names)
    what = "M.2 slot" if m2 else "PCIe slot"
    raise ctx.error(
        f"{board.name} has no {what} {name!r}",
        loc,
        hint=f"closest: {', '.join(near)}; all: {', '.join(names)}" if names else None,
    )


def _explicit_slots(
    ctx: _Ctx, board: Motherboard, names: list[str] | None, quantity: int, loc: Loc, m2: bool
) -> list[Any]:
    if names is None:
        return [None] * quantity
    key = "m2_slots" if m2 else "slots"
    if len(names) != quantity:
        raise ctx.error(
            f"{len(names)} slot name(s) for quantity {quantity}",
            (*loc, key),
            hint="give one slot name per device",
        )
    return [_slot_by_name(ctx, board, n, (*loc, key, i), m2=m2) for i, n in enumerate(names)]


def _check_unique(ctx: _Ctx, taken: list[tuple[str, Loc]]) -> None:
    first: dict[str, Loc] = {}
    for name, loc in taken:
        if name in first:
            raise ctx.error(
                f"slot {name} is given to two devices (also {_fmt_loc(first[name])})", loc
            )
        first[name] = loc


def _check_power_limit(ctx: _Ctx, gpu: Gpu, limit: float | None, loc: Loc) -> None:
    """A power limit the card accepts (nvidia-smi's Min/Max Power Limit, from the catalog); where
    the catalog has no range the limit cannot be checked (design rule PWR004 says so)."""
    if limit is None:
        return
    low, high = gpu.min_power_limit_w, gpu.max_power_limit_w
    span = f"{low:g} to {high:g} W" if low is not None and high is not None else None
    hint = f"nvidia-smi -pl takes {span} on this card" if span else None
    if high is not None and limit > high:
        raise ctx.error(
            f"{limit:g} W is above the highest limit the {gpu.name} accepts ({high:g} W)",
            loc,
            hint=hint,
        )
    if low is not None and limit < low:
        raise ctx.error(
            f"{limit:g} W is below the lowest limit the {gpu.name} accepts ({low:g} W)",
            loc,
            hint=hint,
        )
    # where the catalog has no range, design rule PWR004 says the limit could not be checked


def _build_site(ctx: _Ctx) -> tuple[Site, str]:
    site_spec = ctx.spec.site
    preset = site_spec.preset or DEFAULT_SITE_PRESET
    if preset not in SITE_PRESETS:
        near = closest_ids(preset, list(SITE_PRESETS))
        raise ctx.error(
            f"unknown site preset {preset!r}",
            ("site", "preset"),
            hint="closest: " + ", ".join(near),
        )
    values: dict[str, Any] = dict(SITE_PRESETS[preset])
    for key in site_spec.model_fields_set - {"preset"}:
        value = getattr(site_spec, key)
        if value is None and key != "room_cooling_btu_h":
            continue
        values[key] = value
    return Site(**values), preset


def resolve(spec: Spec, catalog: Catalog | None = None) -> Build:
    """Look the spec's ids up in the catalog, place cards and drives, and return the Build."""
    ctx = _Ctx(spec=spec, cat=catalog or load_catalog(), notes=[])
    parts = spec.parts
    P: Loc = ("parts",)
    _check_ids(ctx)

    cpu: Cpu = ctx.lookup("cpus", parts.cpu, (*P, "cpu"))
    board: Motherboard = ctx.lookup("motherboards", parts.motherboard, (*P, "motherboard"))
    memory: MemoryKit = ctx.lookup("memory", parts.memory.id, (*P, "memory", "id"))
    if parts.memory.quantity > board.dimm_slots:
        raise ctx.error(
            f"{parts.memory.quantity} memory modules but {board.name} has {board.dimm_slots}"
            " DIMM slots",
            (*P, "memory", "quantity"),
        )
    case: Case | None = ctx.lookup("cases", parts.case, (*P, "case")) if parts.case else None
    cooler: Cooler | None = (
        ctx.lookup("coolers", parts.cooler, (*P, "cooler")) if parts.cooler else None
    )
    ups: Ups | None = ctx.lookup("ups", parts.ups, (*P, "ups")) if parts.ups else None
    cloud: CloudInstance | None = (
        ctx.lookup("cloud", spec.compare_cloud, ("compare_cloud",)) if spec.compare_cloud else None
    )
    psus: list[Psu] = []
    for i, ref in enumerate(parts.psus):
        psu: Psu = ctx.lookup("psus", ref.id, _id_loc((*P, "psus", i)))
        psus.extend([psu] * ref.quantity)
    fans: list[tuple[Fan, int]] = [
        (ctx.lookup("fans", ref.id, _id_loc((*P, "fans", i))), ref.quantity)
        for i, ref in enumerate(parts.fans)
    ]

    # PCIe cards: GPUs and NICs, with explicit slots validated first
    cards: list[_Card] = []
    gpu_info: list[tuple[Gpu, GpuRef]] = []
    nic_parts: list[Nic] = []
    taken: list[tuple[str, Loc]] = []
    for i, gref in enumerate(parts.gpus):
        loc = (*P, "gpus", i)
        gpu: Gpu = ctx.lookup("gpus", gref.id, _id_loc(loc))
        if gpu.form_factor == "sxm":
            raise ctx.error(
                f"{gpu.name} is an SXM module and cannot go in a PCIe slot",
                _id_loc(loc),
                hint="use a PCIe card (e.g. a100-80gb-pcie, h100-pcie)",
            )
        _check_power_limit(ctx, gpu, gref.power_limit_w, (*loc, "power_limit_w"))
        if gref.slot_width is not None or gref.length_mm is not None:
            # a partner card's own size, with where it comes from
            sized: dict[str, object] = {"sources": {**gpu.sources}}
            for key in ("slot_width", "length_mm"):
                value = getattr(gref, key)
                if value is not None:
                    sized[key] = value
                    sized["sources"][key] = f"spec: {gref.size_source}"  # type: ignore[index]
            gpu = gpu.model_copy(update=sized)
        width = 1.0 if gref.riser else gpu.slot_width
        explicit = _explicit_slots(ctx, board, gref.slots, gref.quantity, loc, m2=False)
        for k, slot in enumerate(explicit):
            n = len(gpu_info)
            if slot is not None:
                taken.append((slot.name, (*loc, "slots", k)))
            cards.append(_Card("gpu", f"GPU {n} ({gpu.id})", gpu.pcie_lanes, width, slot))
            gpu_info.append((gpu, gref))
    for i, nref in enumerate(parts.nics):
        loc = (*P, "nics", i)
        nic: Nic = ctx.lookup("nics", nref.id, _id_loc(loc))
        explicit = _explicit_slots(ctx, board, nref.slots, nref.quantity, loc, m2=False)
        for k, slot in enumerate(explicit):
            if slot is not None:
                taken.append((slot.name, (*loc, "slots", k)))
            cards.append(_Card("nic", f"NIC {len(nic_parts)} ({nic.id})", nic.lanes, 1.0, slot))
            nic_parts.append(nic)
    _check_unique(ctx, taken)
    n_pcie = len(cards)
    if n_pcie > len(board.pcie_slots):
        raise ctx.error(
            f"{n_pcie} PCIe cards ({len(gpu_info)} GPUs + {len(nic_parts)} NICs) but"
            f" {board.name} has {len(board.pcie_slots)} PCIe slots",
            (*P, "gpus"),
        )
    _assign_pcie(cards, board, case, ctx.notes)

    placed_gpus: list[PlacedGpu] = []
    for n, (card, (gpu, gref)) in enumerate(zip(cards, gpu_info, strict=False)):
        placed_gpus.append(
            PlacedGpu(
                gpu=gpu,
                index=n,
                slot=card.slot,
                power_limit_w=gref.power_limit_w if gref.power_limit_w is not None else gpu.tdp_w,
                auto_assigned=card.auto,
                nvlink_bridge=gref.nvlink_bridge,
                riser=gref.riser,
            )
        )
    nic_cards = cards[len(gpu_info) :]
    placed_nics = [
        PlacedDevice(part=nic, slot=card.slot, auto_assigned=card.auto)
        for nic, card in zip(nic_parts, nic_cards, strict=True)
    ]

    drives = _place_drives(ctx, board, {c.slot.name for c in cards if c.slot is not None})

    psu_assignment: tuple[int, ...] | None = None
    if parts.psu_assignment is not None:
        loc = (*P, "psu_assignment")
        if len(parts.psu_assignment) != len(placed_gpus):
            raise ctx.error(
                f"{len(parts.psu_assignment)} entries for {len(placed_gpus)} GPUs",
                loc,
                hint="give the PSU index (0-based) of each GPU",
            )
        for k, idx in enumerate(parts.psu_assignment):
            if not 0 <= idx < len(psus):
                raise ctx.error(
                    f"PSU index {idx} but the build has {len(psus)} PSU(s) (0-based)", (*loc, k)
                )
        psu_assignment = tuple(parts.psu_assignment)

    site, preset = _build_site(ctx)
    expectations = tuple(
        {**e.model_dump(), "gpus": e.gpus if e.gpus is not None else len(placed_gpus)}
        for e in spec.expectations
    )
    return Build(
        name=spec.name,
        spec_path=spec.file,
        cpu=cpu,
        motherboard=board,
        memory=memory,
        memory_modules=parts.memory.quantity,
        gpus=tuple(placed_gpus),
        psus=tuple(psus),
        drives=tuple(drives),
        nics=tuple(placed_nics),
        fans=tuple(fans),
        cooler=cooler,
        case=case,
        ups=ups,
        site=site,
        cloud=cloud,
        extra_cost_usd=parts.extra_cost_usd,
        expectations=expectations,
        claims=tuple(c.model_dump() for c in spec.claims),
        psu_split="manual" if psu_assignment is not None else "auto",
        psu_gpu_assignment=psu_assignment,
        site_preset=preset,
        notes=tuple(ctx.notes),
    )


def _place_drives(ctx: _Ctx, board: Motherboard, used_pcie: set[str]) -> list[PlacedDrive]:
    P: Loc = ("parts", "storage")
    wanted: list[tuple[Nvme, DriveRef, M2Slot | None, Loc]] = []
    taken: list[tuple[str, Loc]] = []
    for i, ref in enumerate(ctx.spec.parts.storage):
        loc = (*P, i)
        drive: Nvme = ctx.lookup("nvme", ref.id, _id_loc(loc))
        if ref.adapter and ref.m2_slots is not None:
            raise ctx.error("a drive on an adapter takes no M.2 slot", (*loc, "m2_slots"))
        explicit = _explicit_slots(ctx, board, ref.m2_slots, ref.quantity, loc, m2=True)
        for k, slot in enumerate(explicit):
            if slot is not None:
                taken.append((slot.name, (*loc, "m2_slots", k)))
            wanted.append((drive, ref, slot, loc))
    _check_unique(ctx, taken)
    on_board = [w for w in wanted if not w[1].adapter]
    if len(on_board) > len(board.m2_slots):
        raise ctx.error(
            f"{len(on_board)} drives for {len(board.m2_slots)} M.2 slots on {board.name}",
            P,
            hint="put the others on an adapter card: add 'adapter: true' to their entry",
        )
    used = {name for name, _ in taken}

    def preference(s: M2Slot) -> tuple[bool, bool]:
        # CPU-attached first; avoid M.2 slots whose use takes lanes from an occupied PCIe slot
        conflicts = any(other in used_pcie for other in s.shares_with)
        return (s.source != "cpu", conflicts)

    order = sorted(board.m2_slots, key=preference)  # stable: keeps board order within a class
    out: list[PlacedDrive] = []
    for drive, ref, slot, _loc in wanted:
        if ref.adapter:
            out.append(PlacedDrive(drive, None, ref.role, ref.raid, on_adapter=True))
            continue
        if slot is None:
            slot = next(s for s in order if s.name not in used)
            used.add(slot.name)
        out.append(PlacedDrive(drive, slot, ref.role, ref.raid))
    return out
