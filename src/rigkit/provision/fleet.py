"""A fleet file: hosts and the spec each one runs.

::

    hosts:
      - host: gpu1.lan
        spec: reference-4x4090.yaml        # relative to the fleet file
        serve: {model: llama-3-70b, quant: awq-int4, engine: vllm}
      - host: gpu2.lan
        spec: reference-4x4090.yaml
        serve: {model: llama-3-70b, quant: awq-int4, engine: vllm}
      - host: desk.lan
        spec: 2x3090-desktop.yaml

Hosts that share a spec form one inventory group; they must serve the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigkit.provision.plan import ProvisionError
from rigkit.provision.serving import ServeRequest
from rigkit.yamlerrors import yaml_problem

__all__ = ["FleetEntry", "load_fleet"]


class _Serve(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    quant: str
    engine: str = "vllm"
    context: int | None = Field(default=None, ge=2)


class _Host(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str
    spec: str
    serve: _Serve | None = None


class _Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hosts: list[_Host] = Field(min_length=1)


@dataclass(frozen=True)
class FleetEntry:
    spec: Path
    hosts: tuple[str, ...]
    serve: ServeRequest | None


def load_fleet(path: str | Path) -> list[FleetEntry]:
    """The fleet file's hosts grouped by spec, in the order the specs first appear."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProvisionError(f"{p}: cannot read the fleet file: {err}") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        line, problem = yaml_problem(err)
        raise ProvisionError(f"{p}:{line}: {problem}") from None
    try:
        fleet = _Fleet.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise ProvisionError(f"{p}: {where}: {e['msg']}", hint="see docs/provision.md") from None
    groups: dict[Path, tuple[list[str], ServeRequest | None]] = {}
    for k, h in enumerate(fleet.hosts):
        spec = (p.parent / h.spec).resolve() if not Path(h.spec).is_absolute() else Path(h.spec)
        serve = ServeRequest(**h.serve.model_dump()) if h.serve is not None else None
        if spec in groups:
            hosts, first = groups[spec]
            if first != serve:
                raise ProvisionError(
                    f"{p}: hosts[{k}] ({h.host}): hosts of {h.spec} serve different things",
                    hint="give each a spec file of its own (copy it) to serve something else",
                )
            hosts.append(h.host)
        else:
            groups[spec] = ([h.host], serve)
    return [FleetEntry(spec, tuple(hosts), serve) for spec, (hosts, serve) in groups.items()]
