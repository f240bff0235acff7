"""`rigkit catalog [KIND]` and `rigkit catalog show ID`: listings, JSON schemas, errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rigkit.catalog import KINDS, load_catalog
from rigkit.cli.catalog import HEADINGS, KEY_FIELDS, cell, register, slot_line
from rigkit.errors import UnknownIdError


def fresh_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root (a group, so `catalog` is a sub-command as in rigkit)."""

    register(app)
    return app


runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(fresh_app(), ["catalog", *args])


def as_json(*args: str) -> dict[str, Any]:
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def test_key_fields_cover_every_kind_with_real_fields() -> None:
    assert list(KEY_FIELDS) == list(KINDS)
    for kind, fields in KEY_FIELDS.items():
        known = set(KINDS[kind].model_fields)
        assert set(fields) <= known, kind
        assert all(f in HEADINGS for f in fields), kind


def test_summary_json_lists_every_id_by_kind() -> None:
    doc = as_json()
    assert list(doc["kinds"]) == list(KINDS)
    gpus = doc["kinds"]["gpus"]
    assert gpus == sorted(gpus) and "rtx-4090" in gpus
    # the WRX90E board, the EVGA 1600 T2 and the APC SRT3000XLA of the reference build are listed
    assert "asus-pro-ws-wrx90e-sage-se" in doc["kinds"]["motherboards"]
    assert "evga-supernova-1600-t2" in doc["kinds"]["psus"]
    assert "apc-srt3000xla" in doc["kinds"]["ups"]


def test_summary_text_counts_entries() -> None:
    res = invoke()
    assert res.exit_code == 0
    assert "rigkit parts catalog" in res.stdout
    # the gpus row carries the number of GPU entries in its own cell
    n = len(load_catalog().gpus)
    assert re.search(rf"│ gpus +│ +{n} │", res.stdout), res.stdout


def test_gpu_listing_json_has_the_key_figures() -> None:
    doc = as_json("gpus")
    assert doc["kind"] == "gpus"
    assert doc["fields"] == list(KEY_FIELDS["gpus"])
    rows = {r["id"]: r for r in doc["entries"]}
    g = rows["rtx-4090"]
    assert g["name"] == "NVIDIA GeForce RTX 4090"
    # 384-bit bus x 21 Gb/s / 8 = 1008 GB/s; 24 GB; 450 W; 3-slot Founders Edition
    assert (g["vram_gb"], g["bandwidth_gb_s"], g["tdp_w"], g["slot_width"]) == (24, 1008, 450, 3)
    # dense FP16 tensor, FP32 accumulate: 128 SMs x 512 FLOP/clock x 2.52 GHz = 165.2 TFLOPS
    assert g["fp16_tflops"] == pytest.approx(128 * 512 * 2.52e9 / 1e12, abs=0.05)
    assert (g["p2p"], g["nvlink"], g["pcie_gen"]) == (False, False, 4)
    # the RTX 3090 pairs over an NVLink bridge
    assert rows["rtx-3090"]["nvlink"] is True


def test_psu_and_fan_listing_json() -> None:
    psus = {r["id"]: r for r in as_json("psus")["entries"]}
    t2 = psus["evga-supernova-1600-t2"]
    # EVGA 1600 T2: ATX 2.x, 8-pin PCIe and EPS only: 9 PCIe + 2 EPS outputs
    assert (t2["wattage_w"], t2["atx_version"]) == (1600, "2.x")
    assert t2["connectors"] == {"pcie_8pin": 9, "eps_8pin": 2}
    fans = {r["id"]: r for r in as_json("fans")["entries"]}
    # 158.5 m3/h x 0.5886 = 93.29 CFM
    assert fans["noctua-nf-a14-ippc-3000"]["airflow_cfm"] == pytest.approx(93.3)


def test_gpu_listing_text() -> None:
    res = invoke("gpus")
    assert res.exit_code == 0
    assert "gpus: " in res.stdout and "rtx-4090" in res.stdout
    assert "1008" in res.stdout  # the RTX 4090's GB/s


def test_board_listing_counts_slots() -> None:
    rows = {r["id"]: r for r in as_json("motherboards")["entries"]}
    board = rows["asus-pro-ws-wrx90e-sage-se"]
    # JSON keeps the slot maps whole: 7 PCIe 5.0 x16 slots, 4 M.2
    assert len(board["pcie_slots"]) == 7 and len(board["m2_slots"]) == 4
    assert board["pcie_slots"][6] == {
        "name": "PCIEX16_7",
        "position": 7,
        "physical_lanes": 16,
        "electrical_lanes": 16,
        "gen": 5,
        "source": "cpu",
        "shares_with": [],
        "shared_lanes": None,
    }


def test_show_json_carries_the_sources() -> None:
    doc = as_json("show", "rtx-4090")
    assert (doc["kind"], doc["id"]) == ("gpus", "rtx-4090")
    entry = doc["entry"]
    assert "Ada GPU Architecture whitepaper" in entry["source"]
    assert "max_power_limit_w" in entry["sources"]
    # Founders Edition power limit range 150-600 W; 600 / 450 = 133% of the default
    assert (entry["min_power_limit_w"], entry["max_power_limit_w"]) == (150, 600)


def test_show_text_prints_fields_and_sources() -> None:
    res = invoke("show", "evga-supernova-1600-t2")
    assert res.exit_code == 0
    out = res.stdout
    assert "psus: evga-supernova-1600-t2" in out
    assert "wattage_w" in out and "1600" in out
    assert "source: EVGA SuperNOVA 1600 T2" in out
    assert "source of price_usd:" in out


def test_show_text_prints_a_board_slot_map() -> None:
    res = invoke("show", "asus-proart-x670e-creator")
    assert res.exit_code == 0
    assert "PCIEX16_2: position 4, x8 (x16 slot) gen 5, cpu" in res.stdout


def test_show_unknown_id_names_the_closest() -> None:
    res = invoke("show", "rtx-4900")
    assert isinstance(res.exception, UnknownIdError)
    assert "no catalog entry has the id 'rtx-4900'" in str(res.exception)
    assert "rtx-4090" in (res.exception.hint or "")


def test_unknown_kind_is_a_usage_error() -> None:
    res = invoke("gpu")
    assert res.exit_code == 2
    assert "No such command 'gpu'" in res.output


def test_registered_in_the_rigkit_app() -> None:
    from rigkit.cli.main import app

    res = runner.invoke(app, ["catalog", "show", "h100-sxm", "--json"])
    assert res.exit_code == 0, res.output
    # H100 SXM: 3350 GB/s, 989 TFLOPS dense BF16
    entry = json.loads(res.stdout)["entry"]
    assert (entry["bandwidth_gb_s"], entry["bf16_tflops"]) == (3350, 989)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "yes"),
        (False, "no"),
        (1008.0, "1008"),
        (93.3, "93.3"),
        ({"12vhpwr": 1}, "12vhpwr x1"),
        ({"pcie_8pin": 9, "eps_8pin": 2}, "pcie_8pin x9, eps_8pin x2"),
        ([10.0, 2.5], "10, 2.5"),
        ([], "-"),
    ],
)
def test_cell(value: object, text: str) -> None:
    assert cell(value) == text


def test_slot_line() -> None:
    board = load_catalog().motherboard("asus-proart-x670e-creator")
    # the CPU x16 drops to x8 when PCIEX16_2 is used
    assert slot_line(board.pcie_slots[0]) == (
        "PCIEX16_1: position 1, x16 gen 5, cpu shares with PCIEX16_2 (x8 when they are used)"
    )
    assert slot_line(board.m2_slots[2]) == "M.2_3: x4 gen 4, chipset"


def test_gpu_listing_never_crops_a_figure() -> None:
    def listing(columns: str) -> str:
        res = runner.invoke(fresh_app(), ["catalog", "gpus"], env={"COLUMNS": columns})
        assert res.exit_code == 0, res.output
        assert "…" not in res.output
        return str(res.output)

    wide, narrow = listing("100"), listing("60")
    # 100 columns is wide enough (the table needs 81): one line per GPU, the price whole
    row = next(ln for ln in wide.splitlines() if ln.startswith("a100-80gb-pcie"))
    assert row.split()[-1] == "15000"
    # 60 columns: columns are left out from the right (the title says how many), and every row
    # still shows its id and its first figures whole: each narrow row is a prefix of its wide row
    assert "more columns when wider, or --json)" in narrow.splitlines()[0]
    wide_rows = {ln.split()[0]: ln.split() for ln in wide.splitlines() if ln[:1].isalnum()}
    narrow_rows = [ln.split() for ln in narrow.splitlines()[1:] if ln[:1].isalnum()][1:]
    assert len(narrow_rows) == 31  # every GPU on one line
    for cells in narrow_rows:
        assert len(cells) >= 4 and wide_rows[cells[0]][: len(cells)] == cells
