"""The user's own catalog: YAML files that add or override entries of any kind.

Where it is: ``--catalog DIR`` (which sets ``RIGKIT_CATALOG`` for the run), else the
``RIGKIT_CATALOG`` environment variable, else ``~/.config/rigkit/catalog/`` when it exists. Every
``*.yaml`` / ``*.yml`` file there (in name order) is a mapping of kind to a list of entries::

    gpus:
      - id: rtx-3090-evga-ftw3        # a new GPU, or a packaged id to override it whole
        name: ...
        source: ...                   # every entry names its source, as in the packaged files
    gpu_variants:                     # a partner board of a catalog GPU (its own size, plugs)
      - id: rtx-3090-asus-tuf
        gpu: rtx-3090
        name: ASUS TUF Gaming RTX 3090
        source: ASUS TUF-RTX3090-O24G specifications
        slot_width: 2.7
        length_mm: 299.9
    models:                           # and formats:, engines:, cpus:, motherboards:, ...
      - {...}

Entries are validated with the packaged schemas; a bad one is ``FILE:LINE: kind entry 'id':
field: problem`` (exit status 2 from the CLI). A user entry with a packaged id replaces it; a board
variant becomes a GPU entry of its own (``rtx-3090-asus-tuf``) with the base GPU's figures and the
variant's size, power inputs and name, so specs and estimates use it like any GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigkit.errors import CatalogError

#: the kinds a user file may hold besides the parts kinds (rigkit.catalog.loader.KINDS)
LLM_KINDS: Final = ("models", "formats", "engines")
VARIANTS: Final = "gpu_variants"
ENV: Final = "RIGKIT_CATALOG"


class GpuVariant(BaseModel):
    """A partner card of a catalog GPU: the same chip and memory, its own board."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    gpu: str = Field(description="the catalog GPU it is a board of")
    name: str
    source: str = Field(min_length=3, description="the maker's page or datasheet of this board")
    slot_width: float | None = Field(default=None, gt=0)
    length_mm: float | None = Field(default=None, gt=0)
    power_connectors: dict[str, int] | None = None
    tdp_w: float | None = Field(default=None, gt=0, description="the board's own power limit")
    cooling: str | None = None
    price_usd: float | None = Field(default=None, ge=0)
    notes: str | None = None


@dataclass(frozen=True)
class UserEntry:
    """One entry of a user file with where it came from."""

    kind: str
    raw: dict[str, Any]
    file: str
    line: int
    field_lines: dict[str, int]


def user_catalog_dir() -> Path | None:
    """The user catalog directory in force, or None (none configured and no default folder)."""
    explicit = os.environ.get(ENV)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_dir():
            raise CatalogError(
                f"user catalog {p} is not a directory",
                hint="--catalog DIR / RIGKIT_CATALOG name a folder of YAML files",
            )
        return p
    default = Path(os.path.expanduser("~")) / ".config" / "rigkit" / "catalog"
    return default if default.is_dir() else None


def read_user_entries(directory: Path, known_kinds: list[str]) -> list[UserEntry]:
    """Every entry of every YAML file in ``directory``, with its file and line."""
    out: list[UserEntry] = []
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    kinds = [*known_kinds, *LLM_KINDS, VARIANTS]
    for path in files:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except UnicodeDecodeError:
            raise CatalogError(f"{name}:1: not a UTF-8 text file") from None
        except yaml.MarkedYAMLError as e:
            line = e.problem_mark.line + 1 if e.problem_mark is not None else 1
            raise CatalogError(f"{name}:{line}: not valid YAML: {e.problem}") from None
        except yaml.YAMLError as e:
            raise CatalogError(f"{name}:1: not valid YAML: {e}") from None
        if root is None:
            continue
        if not isinstance(root, yaml.MappingNode):
            raise CatalogError(
                f"{name}:{root.start_mark.line + 1}: expected a mapping of kind to entries",
                hint="e.g. gpus: [ {id: ..., name: ..., source: ...} ]",
            )
        for key_node, value_node in root.value:
            kind = str(key_node.value)
            line = key_node.start_mark.line + 1
            if kind not in kinds:
                import difflib

                near = difflib.get_close_matches(kind, kinds, n=3, cutoff=0.0)
                raise CatalogError(
                    f"{name}:{line}: unknown kind {kind!r}", hint="one of: " + ", ".join(near)
                )
            if not isinstance(value_node, yaml.SequenceNode):
                raise CatalogError(f"{name}:{line}: {kind} must be a list of entries")
            for item in value_node.value:
                iline = item.start_mark.line + 1
                if not isinstance(item, yaml.MappingNode):
                    raise CatalogError(f"{name}:{iline}: a {kind} entry must be a mapping")
                raw = yaml.safe_load(yaml.serialize(item))
                fields = {str(k.value): k.start_mark.line + 1 for k, _ in item.value}
                out.append(UserEntry(kind, raw, name, iline, fields))
    return out


def entry_error(e: UserEntry, err: ValidationError) -> CatalogError:
    """``FILE:LINE: kind entry 'id': field: problem`` for the first problem of an entry."""
    first = err.errors()[0]
    loc = [str(x) for x in first["loc"]]
    line = e.field_lines.get(loc[0], e.line) if loc else e.line
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return CatalogError(
        f"{e.file}:{line}: {e.kind} entry {e.raw.get('id', '?')!r}: "
        f"{'.'.join(loc) or '(entry)'}: {first['msg']}{more}"
    )


def validate(e: UserEntry, model: type[BaseModel]) -> Any:
    """The entry validated against ``model``; :class:`CatalogError` with FILE:LINE otherwise."""
    try:
        return model.model_validate(e.raw)
    except ValidationError as err:
        raise entry_error(e, err) from None


def variant_gpu(e: UserEntry, v: GpuVariant, base: Any) -> Any:
    """The GPU entry a board variant makes: the base GPU's figures with the board's own."""
    from rigkit.catalog.parts import Gpu

    data = base.model_dump()
    data.update(id=v.id, name=v.name, source=f"{v.source} (board); chip and memory: {base.source}")
    for key in ("slot_width", "length_mm", "power_connectors", "tdp_w", "cooling", "price_usd"):
        value = getattr(v, key)
        if value is not None:
            data[key] = value
    data["notes"] = v.notes or f"partner board of {base.id}"
    return validate(UserEntry(e.kind, data, e.file, e.line, e.field_lines), Gpu)


def reload() -> None:
    """Forget every cached catalog lookup (after the user catalog or RIGKIT_CATALOG changed)."""
    from rigkit.catalog.llm import load_llm_catalog
    from rigkit.catalog.loader import load_catalog
    from rigkit.estimate import core, memory, resolve

    load_catalog.cache_clear()
    load_llm_catalog.cache_clear()
    resolve.model_nums.cache_clear()
    resolve.gpu_nums.cache_clear()
    resolve.cpu_nums.cache_clear()
    memory.engine_nums.cache_clear()
    core._setup_cached.cache_clear()
