"""`rigkit catalog [KIND]` (list the parts catalog) and `rigkit catalog show ID` (one entry).

JSON schemas (``--json``):

- ``rigkit catalog --json``: ``{"kinds": {KIND: [id, ...]}}``, ids sorted, kinds in catalog order.
- ``rigkit catalog KIND --json``: ``{"kind": KIND, "fields": [field, ...], "entries": [{"id",
  "name", <each key field>: value}]}``; values are the catalog's own (units in the field names).
- ``rigkit catalog show ID --json``: ``{"kind": KIND, "id": ID, "entry": {every field, with
  "source" and "sources"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import typer

if TYPE_CHECKING:
    from rigkit.catalog.parts import Part

# The catalog (pydantic, PyYAML) is imported inside the commands so that `rigkit` starts fast.

#: the figures listed per kind (field names of the kind's schema), besides id and name; the keys
#: are the catalog's kinds in the order of ``rigkit.catalog.KINDS`` (a test keeps them equal)
KEY_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "gpus": (
        "vram_gb",
        "bandwidth_gb_s",
        "fp16_tflops",
        "tdp_w",
        "slot_width",
        "pcie_gen",
        "p2p",
        "nvlink",
        "price_usd",
    ),
    "cpus": (
        "cores",
        "pcie_lanes",
        "memory_channels",
        "memory_speed_mts",
        "ccd_count",
        "fabric_bandwidth_gb_s",
        "tdp_w",
        "price_usd",
    ),
    "motherboards": (
        "socket",
        "form_factor",
        "pcie_slots",
        "m2_slots",
        "dimm_slots",
        "max_memory_gb",
        "price_usd",
    ),
    "memory": ("memory_type", "module_gb", "speed_mts", "ecc", "registered", "price_usd"),
    "psus": ("wattage_w", "efficiency_rating", "atx_version", "connectors", "price_usd"),
    "ups": ("va", "watts", "battery_wh", "topology", "output_voltage_v", "price_usd"),
    "nvme": (
        "capacity_tb",
        "pcie_gen",
        "seq_read_mb_s",
        "seq_write_mb_s",
        "endurance_tbw",
        "price_usd",
    ),
    "nics": ("ports", "speed_gbe", "pcie_gen", "lanes", "rdma", "price_usd"),
    "fans": ("size_mm", "airflow_cfm", "max_rpm", "power_w", "price_usd"),
    "coolers": ("kind", "sockets", "tdp_rating_w", "price_usd"),
    "cases": ("expansion_slots", "max_gpu_length_mm", "psu_bays", "fan_mounts", "price_usd"),
    "cloud": ("provider", "gpu_id", "gpu_count", "price_per_hour_usd"),
}

#: column headings of the listing tables (short, with units), by field name
HEADINGS: Final[dict[str, str]] = {
    "vram_gb": "GB",
    "bandwidth_gb_s": "GB/s",
    "fp16_tflops": "FP16 TFLOPS",
    "tdp_w": "W",
    "slot_width": "slots",
    "pcie_gen": "PCIe gen",
    "p2p": "P2P",
    "nvlink": "NVLink",
    "price_usd": "USD",
    "cores": "cores",
    "pcie_lanes": "lanes",
    "memory_channels": "channels",
    "memory_speed_mts": "MT/s",
    "ccd_count": "CCDs",
    "fabric_bandwidth_gb_s": "fabric GB/s",
    "socket": "socket",
    "form_factor": "form",
    "pcie_slots": "PCIe slots",
    "m2_slots": "M.2",
    "dimm_slots": "DIMMs",
    "max_memory_gb": "max GB",
    "memory_type": "type",
    "module_gb": "GB",
    "speed_mts": "MT/s",
    "ecc": "ECC",
    "registered": "RDIMM",
    "wattage_w": "W",
    "efficiency_rating": "80 PLUS",
    "atx_version": "ATX",
    "connectors": "connectors",
    "va": "VA",
    "watts": "W",
    "battery_wh": "battery Wh",
    "topology": "topology",
    "output_voltage_v": "V",
    "capacity_tb": "TB",
    "seq_read_mb_s": "read MB/s",
    "seq_write_mb_s": "write MB/s",
    "endurance_tbw": "TBW",
    "ports": "ports",
    "speed_gbe": "Gb/s",
    "lanes": "lanes",
    "rdma": "RDMA",
    "size_mm": "mm",
    "airflow_cfm": "CFM",
    "max_rpm": "rpm",
    "power_w": "W",
    "kind": "kind",
    "sockets": "sockets",
    "tdp_rating_w": "rated W",
    "expansion_slots": "slots",
    "max_gpu_length_mm": "GPU mm",
    "psu_bays": "PSU bays",
    "fan_mounts": "fan mounts",
    "provider": "provider",
    "gpu_id": "GPU",
    "gpu_count": "GPUs",
    "price_per_hour_usd": "USD/h",
}

#: one line of help per kind (the sub-command's help)
KIND_HELP: Final[dict[str, str]] = {
    "gpus": "GPUs: memory, bandwidth, dense FP16 tensor TFLOPS, board power, slots.",
    "cpus": "CPUs: cores, PCIe lanes, memory channels and speed, CCDs.",
    "motherboards": "Motherboards: socket, PCIe and M.2 slot counts, DIMM slots.",
    "memory": "Memory modules: type, size, speed, ECC.",
    "psus": "Power supplies: wattage, 80 PLUS level, ATX version, connectors.",
    "ups": "UPS units: VA, watts, battery energy, topology.",
    "nvme": "NVMe drives: capacity, PCIe generation, sequential read/write, endurance.",
    "nics": "Network adapters: ports, speed, PCIe generation and lanes.",
    "fans": "Case fans: size, airflow (CFM), speed, power.",
    "coolers": "CPU coolers: kind, sockets, rated heat load.",
    "cases": "Cases: expansion slots, GPU length clearance, PSU bays.",
    "cloud": "Cloud GPU instances: provider, GPUs, on-demand price per hour.",
}


def cell(value: Any) -> str:
    """A catalog value as table text: ``-`` for unknown, yes/no, ``g`` numbers, counts of slots."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} x{v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        if value and hasattr(value[0], "model_dump"):
            return str(len(value))
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def slot_line(slot: Any) -> str:
    """One PCIe or M.2 slot of a board map on one line (``PCIEX16_1: position 1, x16 gen 5, cpu``)."""
    lanes = getattr(slot, "electrical_lanes", None) or getattr(slot, "lanes", 0)
    text = f"{slot.name}:"
    position = getattr(slot, "position", None)
    if position is not None:
        text += f" position {position},"
    text += f" x{lanes}"
    physical = getattr(slot, "physical_lanes", lanes)
    if physical != lanes:
        text += f" (x{physical} slot)"
    text += f" gen {slot.gen}, {slot.source}"
    if slot.shares_with:
        text += " shares with " + ", ".join(slot.shares_with)
        shared = getattr(slot, "shared_lanes", None)
        if shared is not None:
            text += f" (x{shared} when they are used)"
    return text


def listing(kind: str) -> dict[str, Any]:
    """The JSON document of ``rigkit catalog KIND``."""
    from rigkit.catalog import load_catalog

    entries = load_catalog().kind(kind)
    fields = KEY_FIELDS[kind]
    rows = []
    for part_id in sorted(entries):
        dumped = entries[part_id].model_dump(mode="json")
        rows.append({"id": part_id, "name": dumped["name"], **{f: dumped[f] for f in fields}})
    return {"kind": kind, "fields": list(fields), "entries": rows}


def _print_listing(kind: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from rigkit.catalog import load_catalog
    from rigkit.report.words import plural

    entries = load_catalog().kind(kind)
    fields = KEY_FIELDS[kind]
    rows = [(pid, [cell(getattr(entries[pid], f)) for f in fields]) for pid in sorted(entries)]
    heads = [HEADINGS.get(f, f) for f in fields]

    def build(shown: int) -> Table:
        hidden = len(heads) - shown
        table = Table(
            title=f"{kind}: {len(entries)} entries"
            + (f" ({plural(hidden, 'more column')} when wider, or --json)" if hidden else ""),
            title_justify="left",
            box=box.SIMPLE_HEAD,  # no vertical rules or edges: the figures get the width
            pad_edge=False,
            show_edge=False,
        )
        # an id is what the user copies into a spec, a figure is read whole: neither breaks
        # across lines (a folded 15000 reads as 150 and 00); headings break at spaces
        table.add_column("id", no_wrap=True)
        for head in heads[:shown]:
            table.add_column(head.replace(" ", "\n"), justify="right", no_wrap=True)
        for part_id, cells in rows:
            table.add_row(part_id, *cells[:shown])
        return table

    # on a terminal narrower than the table, columns are left out from the right (and said so)
    console = Console()
    wide = console.options.update_width(10_000)
    shown = len(heads)
    table = build(shown)
    while shown > 1 and Measurement.get(console, wide, table).maximum > console.width:
        shown -= 1
        table = build(shown)
    console.print(table)
    console.print("`rigkit catalog show ID` prints one entry with its sources.", markup=False)


def _kind_command(kind: str) -> Callable[..., None]:
    def command(
        json_flag: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        if json_flag:
            typer.echo(json.dumps(listing(kind), indent=2))
        else:
            _print_listing(kind)

    command.__doc__ = KIND_HELP[kind]
    return command


def show_document(part_id: str) -> dict[str, Any]:
    """The JSON document of ``rigkit catalog show ID``."""
    from rigkit.catalog import load_catalog

    kind, part = load_catalog().find(part_id)
    return {"kind": kind, "id": part.id, "entry": part.model_dump(mode="json")}


def _print_entry(kind: str, part: Part) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{part.name} ({kind}: {part.id})", title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    skip = {"id", "name", "source", "sources", "notes"}
    for name in type(part).model_fields:
        if name in skip:
            continue
        value = getattr(part, name)
        if isinstance(value, list) and value and hasattr(value[0], "model_dump"):
            # slot maps: one line per slot
            text = "\n".join(slot_line(item) for item in value)
        else:
            text = cell(value)
        table.add_row(name, text)
    console.print(table)
    if part.notes:
        console.print(f"notes: {part.notes}", markup=False, highlight=False)
    console.print(f"source: {part.source}", markup=False, highlight=False)
    for field, src in part.sources.items():
        console.print(f"source of {field}: {src}", markup=False, highlight=False)


def show_cmd(
    part_id: str = typer.Argument(..., metavar="ID", help="Catalog id, e.g. rtx-4090."),
    json_flag: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print one catalog entry, every field, with its sources."""
    doc = show_document(part_id)
    if json_flag:
        typer.echo(json.dumps(doc, indent=2))
        return
    from rigkit.catalog import load_catalog

    _print_entry(doc["kind"], load_catalog().get(doc["kind"], part_id))


def summary_document() -> dict[str, Any]:
    """The JSON document of ``rigkit catalog`` (no kind): every id, by kind."""
    from rigkit.catalog import load_catalog

    return {"kinds": load_catalog().all_ids()}


def _catalog_root(
    ctx: typer.Context,
    json_flag: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the parts catalog: `rigkit catalog KIND` for one kind's figures, `show ID` for one entry.

    Without a KIND, prints how many entries each kind has and their ids.
    """
    if ctx.invoked_subcommand is not None:
        return
    doc = summary_document()
    if json_flag:
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rigkit parts catalog", title_justify="left", show_lines=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("entries", justify="right")
    table.add_column("ids")
    for kind, ids in doc["kinds"].items():
        table.add_row(kind, str(len(ids)), ", ".join(ids))
    console = Console()
    console.print(table)
    console.print(
        "`rigkit catalog KIND` lists key figures; `rigkit catalog show ID` prints one entry.",
        markup=False,
    )


#: the figures listed by `rigkit catalog models` / `formats` (the LLM catalog's fields)
LLM_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "models": ("family", "params_b", "active_params_b", "n_layers", "max_context"),
    "formats": ("bits_per_weight", "containers", "kernel", "engines"),
}


def llm_listing(kind: str) -> dict[str, Any]:
    """The JSON document of ``rigkit catalog models`` / ``formats``."""
    from rigkit.catalog.llm import load_llm_catalog

    llm = load_llm_catalog()
    table: Mapping[str, Any] = llm.models if kind == "models" else llm.formats
    fields = LLM_FIELDS[kind]
    rows = []
    for item_id in sorted(table):
        d = table[item_id].model_dump(mode="json")
        rows.append({"id": item_id, "name": d["name"], **{f: d[f] for f in fields}})
    return {"kind": kind, "fields": list(fields), "entries": rows}


def _llm_command(kind: str) -> Callable[..., None]:
    def command(
        json_flag: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        doc = llm_listing(kind)
        if json_flag:
            typer.echo(json.dumps(doc, indent=2))
            return
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"{kind}: {len(doc['entries'])} entries",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("id", no_wrap=True)
        for f in doc["fields"]:
            table.add_column(f.replace("_", " "), justify="right")
        for row in doc["entries"]:
            table.add_row(row["id"], *(cell(row[f]) for f in doc["fields"]))
        Console().print(table)

    command.__doc__ = (
        "List the model architectures (parameters from each model card and config.json)."
        if kind == "models"
        else "List the weight formats (bits per weight, containers, the engines that load them)."
    )
    return command


def register(app: typer.Typer) -> None:
    """Add `catalog` (with one sub-command per kind, and `show`) to the root app."""
    sub = typer.Typer(
        name="catalog",
        help="List the parts catalog: GPUs, CPUs, boards, PSUs, UPS, ... with their sources.",
        invoke_without_command=True,
        no_args_is_help=False,
    )
    sub.callback()(_catalog_root)
    for kind in KEY_FIELDS:
        sub.command(kind, help=KIND_HELP[kind])(_kind_command(kind))
    for kind in LLM_FIELDS:
        sub.command(kind)(_llm_command(kind))
    sub.command("show")(show_cmd)
    app.add_typer(sub, name="catalog")
