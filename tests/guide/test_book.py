"""The build book's content follows the resolved build: slots, PSU leads, sockets, BIOS."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rigkit.design.model import power_budget
from rigkit.guide import build_book
from rigkit.guide.hardware import cable_map, riser_gpus
from rigkit.spec import load_build, parse_spec, resolve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
REF = ROOT / "examples" / "reference-4x4090.yaml"
AM5 = ROOT / "examples" / "1x5090-desktop.yaml"
ADA = ROOT / "examples" / "4x6000ada-wrx90.yaml"
NATIVE = ROOT / "tests" / "fixtures" / "specs" / "guide" / "native-4x6000ada.yaml"
NVLINK = ROOT / "examples" / "2x3090-desktop.yaml"


def ids(path: Path) -> list[str]:
    return build_book(load_build(path)).item_ids()


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_item_ids_are_unique_and_stable_across_runs(spec: Path) -> None:
    first = ids(spec)
    assert len(first) == len(set(first))
    assert ids(spec) == first  # a fresh resolve of the same spec gives the same ids


def test_item_ids_come_from_content_not_position() -> None:
    """Dropping the NIC from the reference removes only the NIC's items (and the add-in phase);
    every other id stays, so ids are not counters over the steps."""
    text = REF.read_text(encoding="utf-8")
    no_nic = text.replace("  nics:\n    - {id: mellanox-connectx-4-lx-25g-2p}\n", "")
    assert no_nic != text
    with_nic = set(ids(REF))
    without = set(build_book(resolve(parse_spec(no_nic, "no-nic.yaml"))).item_ids())
    assert with_nic - without == {"nic0-seat", "cards-signoff"}
    assert without <= with_nic


def test_every_gpu_step_names_the_plan_slot_and_psu() -> None:
    build = load_build(REF)
    book = build_book(build)
    budget = power_budget(build)
    feeds = {gi: p.index for p in budget.psus for gi in p.gpus}
    steps = {s.id: s for _, s in book.items()}
    for g in build.gpus:
        assert g.slot is not None
        seat = steps[f"gpu{g.index}-seat"]
        assert g.slot.name in seat.action or g.slot.name in (seat.why or "")
        power = [s for k, s in steps.items() if k.startswith(f"gpu{g.index}-power")]
        assert power and all(f"PSU {feeds[g.index]}" in s.action for s in power)


def test_atx2_psus_need_adapters_with_four_8pin_inputs() -> None:
    """The reference's EVGA T2 units (ATX 2.x) have no 12V-2x6 lead: each RTX 4090 takes an adapter
    with ceil(600 W max power limit / 150 W) = 4 separate 8-pin leads from its PSU."""
    book = build_book(load_build(REF))
    adapters = [x for x in book.cables.leads if x.adapter]
    assert len(adapters) == 4 and all(x.count == 4 for x in adapters)
    step_ids = {s.id for _, s in book.items()}
    for i in range(4):
        assert f"gpu{i}-power-adapter" in step_ids
        assert f"gpu{i}-power-12v2x6" not in step_ids
        assert {f"gpu{i}-check-seated", f"gpu{i}-check-bend"} <= step_ids
    # PSU 0: 2 board aux + 2 cards x 4 = 10 8-pin leads of 9; PSU 1: 2 x 4 = 8 of 6
    assert any("needs 10 PCIe 8-pin leads and has 9" in n for n in book.cables.notes)
    assert any("needs 8 PCIe 8-pin leads and has 6" in n for n in book.cables.notes)


def test_native_12v2x6_build_has_no_adapter_steps() -> None:
    book = build_book(load_build(NATIVE))
    text = " ".join(s.action + " " + " ".join(s.warnings) for _, s in book.items())
    assert "12VHPWR adapter" not in text
    assert not any("adapter" in s.id for _, s in book.items())
    assert not any(x.adapter for x in book.cables.leads)
    native = [x for x in book.cables.leads if x.kind == "12v-2x6"]
    assert sorted((x.psu, x.to[:5]) for x in native) == [
        (0, "GPU 0"),
        (0, "GPU 1"),
        (1, "GPU 2"),
        (1, "GPU 3"),
    ]
    step_ids = {s.id for _, s in book.items()}
    assert {f"gpu{i}-power-12v2x6" for i in range(4)} <= step_ids


def test_automatic_split_that_overloads_native_leads_says_so() -> None:
    """4x6000ada: the automatic split puts three cards on PSU 1 (two native leads), so one card
    takes an adapter while PSU 0 still has a native lead free; the book says how to fix it."""
    book = build_book(load_build(ADA))
    adapters = [x for x in book.cables.leads if x.adapter]
    assert [(x.psu, x.count) for x in adapters] == [(1, 2)]  # 300 W card: ceil(300/150) = 2
    assert any("psu_assignment" in n for n in book.cables.notes)


def test_risers_only_where_cards_cannot_sit_in_their_slots() -> None:
    """Reference: GPU 0 (position 1, 3 wide) would cover GPU 3's slot 2; GPU 3 (2, 3 wide) would
    cover the NIC in 3 and GPU 1 in 4; GPU 2 in 7 needs slot 9 of an 8-slot case. GPU 1 in 4
    covers 4-6, where nothing else sits."""
    build = load_build(REF)
    assert sorted(riser_gpus(build)) == [0, 2, 3]
    step_ids = {s.id for _, s in build_book(build).items()}
    assert {"gpu0-riser", "gpu2-riser", "gpu3-riser"} <= step_ids
    assert "gpu1-riser" not in step_ids
    # two-slot cards in positions 1, 3, 5, 7: nothing on a riser, no riser step or part
    ada = build_book(load_build(ADA))
    assert not any("riser" in s.id for _, s in ada.items())
    assert not any("riser" in p.item for p in ada.parts)


def test_am5_build_has_no_torque_sequence() -> None:
    am5 = build_book(load_build(AM5))
    assert am5.socket == "AM5"
    assert not any("torque" in t.lower() for t in am5.tools)
    text = " ".join(s.action for _, s in am5.items()).lower()
    assert "torque" not in text and "3, 2, 1" not in text
    ref = build_book(load_build(REF))
    assert any("torque" in t.lower() for t in ref.tools)
    assert [s.id for _, s in ref.items() if s.id.startswith("cpu-str5")] == [
        "cpu-str5-1",
        "cpu-str5-2",
        "cpu-str5-3",
    ]


def test_dimm_population_from_the_board_manual() -> None:
    am5 = build_book(load_build(AM5))  # 2 modules on the ProArt X670E: A2 and B2
    assert [s.id for _, s in am5.items() if s.id.startswith("dimm-")] == ["dimm-a2", "dimm-b2"]
    ref = build_book(load_build(REF))  # 8 modules, one per channel
    assert len([s for _, s in ref.items() if s.id.startswith("dimm-")]) == 8


def test_bios_settings_follow_cpu_memory_and_board() -> None:
    ref = {b.key: b for b in build_book(load_build(REF)).bios}
    assert {"above_4g", "rebar", "csm", "ecc", "nps", "ac_power_loss"} <= set(ref)
    assert ref["nps"].menu is not None and "NUMA" in ref["nps"].menu
    # GeForce cards have no peer-to-peer: no IOMMU advice; RTX 6000 Ada has it
    assert "iommu" not in ref
    assert "iommu" in {b.key for b in build_book(load_build(ADA)).bios}
    am5 = {b.key: b for b in build_book(load_build(AM5)).bios}
    assert "nps" not in am5 and "ecc" not in am5
    # the riser slots get a fixed link speed: GPUs 0, 2, 3 in PCIEX16_1, _7, _2
    assert {k for k in ref if k.startswith("pcie_speed:")} == {
        "pcie_speed:PCIEX16_1",
        "pcie_speed:PCIEX16_7",
        "pcie_speed:PCIEX16_2",
    }


def test_nvlink_bridge_width_from_the_slot_spacing() -> None:
    book = build_book(load_build(NVLINK))  # cards in positions 1 and 4
    bridge = [s for _, s in book.items() if s.id == "nvlink-0-1"]
    assert bridge and "3-slot NVLink bridge" in bridge[0].action


def test_psu_loads_in_the_cable_map_are_the_plan_s() -> None:
    build = load_build(REF)
    cm = cable_map(build)
    budget = power_budget(build)
    for row, p in zip(cm.psus, budget.psus, strict=True):
        assert math.isclose(row.load_w, p.load_w)


def test_readings_carry_the_plan_s_link() -> None:
    """RTX 4090 (PCIe 4.0 x16) in a Gen5 x16 slot of a Gen5 CPU: x16 at Gen4."""
    book = build_book(load_build(REF))
    width = book.step("gpu0-link-width")
    gen = book.step("gpu0-link-gen")
    assert width is not None and width.reading is not None
    assert (width.reading.min, width.reading.max) == (16, 16)
    assert gen is not None and gen.reading is not None and gen.reading.min == 4
    assert not width.reading.in_range(8) and width.reading.in_range(16)


def test_a_long_settings_table_may_break_between_rows() -> None:
    """Seven 3-slot cards on seven single-pitch slots: the cards in positions 1-6 would each cover
    the slot below, so six go on risers, each with a link-speed setting: 3 + 6 + memory, ECC, NPS,
    AC loss, fans = 14 settings, more than fit a page; the reference's 11 stay one block."""
    from rigkit.guide.render import render_html

    seven = build_book(
        load_build(ROOT / "tests" / "fixtures" / "specs" / "guide" / "seven-4090.yaml")
    )
    assert sorted(s.position for s in seven.slots if s.riser) == [1, 2, 3, 4, 5, 6]
    assert len(seven.bios) == 14
    assert [b.key for b in seven.bios if b.key.startswith("pcie_speed:")] == [
        f"pcie_speed:PCIEX16_{n}" for n in range(1, 7)
    ]
    assert '<table class="fixed long">' in render_html(seven)
    ref = build_book(load_build(REF))
    assert len(ref.bios) == 11 and '<table class="fixed">' in render_html(ref)


def test_every_catalog_socket_has_an_installation_procedure() -> None:
    from rigkit.catalog import load_catalog
    from rigkit.guide.book import socket_procedures

    sockets = {c.socket for c in load_catalog().cpus.values()}
    procs = socket_procedures()
    assert sockets <= set(procs)
    for name, proc in procs.items():
        assert proc["source"] and len(proc["steps"]) >= 2, name
