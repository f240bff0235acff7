"""Load and validate the packaged parts catalog (``catalog/data/*.yaml``).

Each data file holds a YAML list of entries of one part kind. :func:`load_catalog` reads every file
once per process (cached), validates each entry against its schema in :mod:`rigkit.catalog.parts`
and returns a :class:`Catalog`. Invalid data raises :class:`~rigkit.errors.CatalogError` naming the
file and the entry; an id that is not there raises :class:`~rigkit.errors.UnknownIdError` with the
closest ids as a hint.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import ValidationError

from rigkit.catalog.parts import (
    Case,
    CloudInstance,
    Cooler,
    Cpu,
    Fan,
    Gpu,
    MemoryKit,
    Motherboard,
    Nic,
    Nvme,
    Part,
    Psu,
    Ups,
)
from rigkit.catalog.yamlcache import load_yaml
from rigkit.errors import CatalogError, UnknownIdError
from rigkit.inputs import UnreadableInput, read_text_file
from rigkit.yamlerrors import yaml_error_text

#: catalog attribute (and data file stem) -> schema of its entries
KINDS: Final[dict[str, type[Part]]] = {
    "gpus": Gpu,
    "cpus": Cpu,
    "motherboards": Motherboard,
    "memory": MemoryKit,
    "psus": Psu,
    "ups": Ups,
    "nvme": Nvme,
    "nics": Nic,
    "fans": Fan,
    "coolers": Cooler,
    "cases": Case,
    "cloud": CloudInstance,
}

P = TypeVar("P", bound=Part)

#: the packaged data files (package data, installed with the code)
DATA_DIR: Final = Path(__file__).resolve().parent / "data"


def closest_ids(wanted: str, known: list[str], n: int = 3) -> list[str]:
    """The ``n`` known ids most like ``wanted`` (difflib ratio), best first."""
    import difflib  # only needed on the error path

    found = difflib.get_close_matches(wanted, known, n=n, cutoff=0.0)
    return found[:n]


@dataclass(frozen=True)
class Catalog:
    """Every packaged part, by kind and id. Build it with :func:`load_catalog`."""

    gpus: Mapping[str, Gpu]
    cpus: Mapping[str, Cpu]
    motherboards: Mapping[str, Motherboard]
    memory: Mapping[str, MemoryKit]
    psus: Mapping[str, Psu]
    ups: Mapping[str, Ups]
    nvme: Mapping[str, Nvme]
    nics: Mapping[str, Nic]
    fans: Mapping[str, Fan]
    coolers: Mapping[str, Cooler]
    cases: Mapping[str, Case]
    cloud: Mapping[str, CloudInstance]

    def kind(self, kind: str) -> Mapping[str, Part]:
        """The entries of one kind (``"gpus"``, ``"cpus"``, ...)."""
        if kind not in KINDS:
            hint = ", ".join(closest_ids(kind, list(KINDS)))
            raise CatalogError(f"unknown catalog kind {kind!r}", hint=f"did you mean {hint}?")
        entries: Mapping[str, Part] = getattr(self, kind)
        return entries

    def get(self, kind: str, id: str) -> Part:
        """The entry ``id`` of ``kind``; :class:`UnknownIdError` with the 3 closest ids if absent."""
        entries = self.kind(kind)
        try:
            return entries[id]
        except KeyError:
            near = closest_ids(id, list(entries))
            label = kind[:-1] if kind.endswith("s") else kind
            raise UnknownIdError(
                f"unknown {label} id {id!r}",
                hint="closest: " + ", ".join(near) if near else None,
            ) from None

    def find(self, id: str) -> tuple[str, Part]:
        """The kind and entry of ``id``, searching every kind (ids are unique across kinds).

        :class:`UnknownIdError` with the 3 closest ids of any kind if no kind has it.
        """
        for kind in KINDS:
            entries = self.kind(kind)
            if id in entries:
                return kind, entries[id]
        everything = [i for k in KINDS for i in self.kind(k)]
        near = closest_ids(id, everything)
        raise UnknownIdError(
            f"no catalog entry has the id {id!r}",
            hint="closest: " + ", ".join(near) if near else None,
        )

    def get_typed(self, kind: str, id: str, model: type[P]) -> P:
        """Like :meth:`get`, typed as ``model`` (for callers that want a precise type)."""
        part = self.get(kind, id)
        if not isinstance(part, model):  # pragma: no cover - KINDS guarantees it
            raise CatalogError(f"{kind} entry {id!r} is not a {model.__name__}")
        return part

    def gpu(self, id: str) -> Gpu:
        return self.get_typed("gpus", id, Gpu)

    def cpu(self, id: str) -> Cpu:
        return self.get_typed("cpus", id, Cpu)

    def motherboard(self, id: str) -> Motherboard:
        return self.get_typed("motherboards", id, Motherboard)

    def all_ids(self) -> dict[str, list[str]]:
        """Kind -> sorted ids, for listings."""
        return {k: sorted(self.kind(k)) for k in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {k: {i: p.model_dump(mode="json") for i, p in self.kind(k).items()} for k in KINDS}


def _describe_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(entry)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_kind(kind: str, text: str, file: str) -> dict[str, Part]:
    """Validate the YAML text of one data file; :class:`CatalogError` names file and entry."""
    model = KINDS[kind]
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise CatalogError(yaml_error_text(file, exc)) from None
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise CatalogError(f"{file}: expected a list of entries, got {type(raw).__name__}")
    out: dict[str, Part] = {}
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise CatalogError(f"{file}: entry #{n} is not a mapping")
        label = f"entry #{n} ({item.get('id', 'no id')})"
        try:
            part = model.model_validate(item)
        except ValidationError as exc:
            raise CatalogError(f"{file}: {label}: {_describe_error(exc)}") from None
        if part.id in out:
            raise CatalogError(f"{file}: {label}: duplicate id {part.id!r}")
        out[part.id] = part
    return out


def _check_references(entries: dict[str, dict[str, Part]]) -> None:
    seen: dict[str, str] = {}
    for kind, parts in entries.items():
        for part_id in parts:
            if part_id in seen:
                raise CatalogError(
                    f"{kind}.yaml: id {part_id!r} is also used in {seen[part_id]}.yaml",
                    hint="ids are unique across every kind, so `rigkit catalog show ID` finds one",
                )
            seen[part_id] = kind
    gpus = entries["gpus"]
    for inst in entries["cloud"].values():
        assert isinstance(inst, CloudInstance)
        if inst.gpu_id not in gpus:
            near = ", ".join(closest_ids(inst.gpu_id, list(gpus)))
            raise CatalogError(
                f"cloud.yaml: entry {inst.id!r}: gpu_id {inst.gpu_id!r} is not in gpus.yaml",
                hint=f"closest: {near}",
            )


def load_catalog_from(directory: Path) -> Catalog:
    """Load a catalog from a directory of ``<kind>.yaml`` files (missing files: no entries)."""
    entries: dict[str, dict[str, Part]] = {}
    for kind in KINDS:
        path = directory / f"{kind}.yaml"
        try:
            text = read_text_file(path) if os.path.lexists(path) else ""
        except UnreadableInput as exc:  # a directory or device, too big, not UTF-8 text
            raise CatalogError(str(exc)) from None
        entries[kind] = parse_kind(kind, text, path.name)
    _check_references(entries)
    return Catalog(**entries)  # type: ignore[arg-type]


@functools.cache
def load_catalog() -> Catalog:
    """The packaged catalog with the user catalog's entries over it (rigkit.catalog.user),
    loaded and validated once per process (``rigkit.catalog.user.reload()`` forgets it)."""
    from rigkit.catalog.user import (
        VARIANTS,
        GpuVariant,
        read_user_entries,
        user_catalog_dir,
        validate,
        variant_gpu,
    )

    packaged = load_catalog_from(DATA_DIR)
    folder = user_catalog_dir()
    if folder is None:
        return packaged
    entries: dict[str, dict[str, Part]] = {k: dict(packaged.kind(k)) for k in KINDS}
    user = read_user_entries(folder, list(KINDS))
    for e in user:
        if e.kind in KINDS:
            part = validate(e, KINDS[e.kind])
            entries[e.kind][part.id] = part
    for e in user:
        if e.kind == VARIANTS:
            v = validate(e, GpuVariant)
            base = entries["gpus"].get(v.gpu)
            if base is None:
                near = ", ".join(closest_ids(v.gpu, list(entries["gpus"])))
                raise CatalogError(
                    f"{e.file}:{e.field_lines.get('gpu', e.line)}: gpu_variants entry {v.id!r}: "
                    f"gpu {v.gpu!r} is not a catalog GPU",
                    hint=f"closest: {near}",
                )
            entries["gpus"][v.id] = variant_gpu(e, v, base)
    _check_references(entries)
    return Catalog(**entries)  # type: ignore[arg-type]
