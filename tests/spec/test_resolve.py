"""Resolution of specs to Builds: examples, slot placement, site presets, expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigkit.build import Build, Site
from rigkit.spec import SITE_PRESETS, load_build, load_spec, parse_spec, resolve

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures" / "specs"

HEAD = (
    "name: t\nparts:\n  cpu: threadripper-pro-7975wx\n"
    "  motherboard: asus-pro-ws-wrx90e-sage-se\n"
    "  memory: {id: ddr5-5600-ecc-rdimm-64gb, quantity: 8}\n"
    "  psus: [seasonic-prime-tx-1600, seasonic-prime-tx-1600]\n"
)


def build_of(text: str) -> Build:
    return resolve(parse_spec(HEAD + text, file="t.yaml"))


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "reference-4x4090.yaml",
        "reference-4x4090-20a.yaml",
        "reference-4x4090-eu.yaml",
        "2x3090-desktop.yaml",
        "4x6000ada-wrx90.yaml",
        "1x5090-desktop.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_resolves(path: Path) -> None:
    build = load_build(path)
    assert build.gpu_count >= 1
    assert build.spec_path == str(path)
    json.dumps(build.to_dict())  # JSON-ready


def test_reference_build() -> None:
    b = load_build(ROOT / "examples" / "reference-4x4090.yaml")
    assert [g.gpu.id for g in b.gpus] == ["rtx-4090"] * 4
    assert b.memory_gb == 512  # 8 x 64 GB
    assert [p.wattage_w for p in b.psus] == [1600, 1000]
    assert b.cloud is not None and b.cloud.price_per_hour_usd == 32.77
    assert b.site == Site(mains_voltage_v=120, breaker_a=15, dedicated_circuit=False)
    assert [(d.role, d.raid_group) for d in b.drives] == [
        ("os", None),
        ("models", "models"),
        ("models", "models"),
    ]
    assert [(f.id, n) for f, n in b.fans] == [("noctua-nf-a14-ippc-3000", 6)]
    # seed breakdown: CPU 3899 + GPUs 7200 + RAM 3200 + storage 850 + PSUs 899 + board 1299
    # = 17347; with cooling 6 x 35 + 150 = 360 and network 275 -> 17982, the seed's
    # $17,972 total plus $10 (the seed lists $450 for cooling; its own items sum to $18,072)
    cost = b.cost_breakdown()
    assert cost["gpu"] == 7200
    core = sum(v for k, v in cost.items() if k not in ("case", "ups"))
    assert core == 17982


def test_reference_expectations() -> None:
    b = load_build(ROOT / "examples" / "reference-4x4090.yaml")
    assert len(b.expectations) == 3
    first = b.expectations[0]
    assert (first["model"], first["quant"], first["metric"]) == (
        "llama-3-70b",
        "f16",
        "decode_tokens_per_s",
    )
    assert (first["min"], first["max"]) == (36, 44)
    # gpus defaults to the build's GPU count (4); unset optional keys are present as None
    assert first["gpus"] == 4
    assert first["batch"] is None
    load = b.expectations[2]
    assert (load["metric"], load["min"], load["max"]) == ("load_time_s", None, 5)
    assert b.expectations[1]["quant"] == "q4_k_m"


def test_reference_slot_assignment() -> None:
    """WRX90E-SAGE SE: PCIEX16_1..7 at positions 1..7, all CPU x16; Enthoo Pro 2: 8 slots.

    GPU0 -> position 1 (covers 1-3). GPU1 -> 4 (covers 4-6). GPU2: 7 would cover 7-9, past the
    case's 8 slots, and nothing else is clear, so 7 with a note. GPU3: 2, 3, 5, 6 are all
    covered: the first free slot in order, PCIEX16_2, with an overlap note. The NIC takes the
    lowest free slot, 3 (covered too: noted). Drives: M.2_1 for the OS, M.2_2/M.2_3 for RAID.
    """
    b = load_build(ROOT / "examples" / "reference-4x4090.yaml")
    assert [g.slot.name if g.slot else None for g in b.gpus] == [
        "PCIEX16_1",
        "PCIEX16_4",
        "PCIEX16_7",
        "PCIEX16_2",
    ]
    assert all(g.auto_assigned for g in b.gpus)
    assert [n.slot.name if n.slot else None for n in b.nics] == ["PCIEX16_3"]
    assert [d.m2_slot.name if d.m2_slot else None for d in b.drives] == ["M.2_1", "M.2_2", "M.2_3"]
    assert len(b.notes) == 3
    assert "past the case's 8 slots" in b.notes[0]
    assert "PCIEX16_2" in b.notes[1] and "overlaps" in b.notes[1]


def test_two_slot_cards_pack_without_notes() -> None:
    # 2-slot cards: 1 (1-2), 3 (3-4), 5 (5-6), 7 (7-8); 7-8 fits the Define 7 XL's 9 slots
    b = load_build(ROOT / "examples" / "4x6000ada-wrx90.yaml")
    assert [g.slot.name if g.slot else None for g in b.gpus] == [
        "PCIEX16_1",
        "PCIEX16_3",
        "PCIEX16_5",
        "PCIEX16_7",
    ]
    assert b.notes == ()


def test_desktop_board_prefers_cpu_slots() -> None:
    # ProArt X670E: PCIEX16_1 (CPU x16, pos 1), PCIEX16_2 (CPU x8, pos 4), PCIEX16_3 (chipset x2)
    b = load_build(ROOT / "examples" / "2x3090-desktop.yaml")
    assert [g.slot.name if g.slot else None for g in b.gpus] == ["PCIEX16_1", "PCIEX16_2"]
    assert all(g.nvlink_bridge for g in b.gpus)
    assert b.extra_cost_usd == 90


def test_explicit_slots_are_kept_and_block_auto_ones() -> None:
    b = build_of(
        "  gpus:\n"
        "    - {id: rtx-4090, slots: [PCIEX16_2]}\n"
        "    - {id: rtx-4090}\n"
        "  nics: [intel-x710-da2]\n"
    )
    # the explicit card at 2 covers 2-4; the auto card takes 5 (covers 5-7, clear);
    # the NIC goes to the lowest clear slot: 1
    assert [g.slot.name if g.slot else None for g in b.gpus] == ["PCIEX16_2", "PCIEX16_5"]
    assert [g.auto_assigned for g in b.gpus] == [False, True]
    assert [n.slot.name if n.slot else None for n in b.nics] == ["PCIEX16_1"]
    assert b.notes == ()


def test_adapter_drives_take_no_m2_slot() -> None:
    b = build_of(
        "  gpus: [rtx-4090]\n"
        "  storage:\n"
        "    - {id: samsung-990-pro-2tb, m2_slots: [M.2_4]}\n"
        "    - {id: crucial-t705-4tb, quantity: 3, raid: scratch}\n"
        "    - {id: crucial-t705-4tb, quantity: 2, adapter: true}\n"
    )
    # 1 explicit (M.2_4) + 3 auto (M.2_1..M.2_3) = 4 on board; 2 on the adapter
    assert [d.m2_slot.name if d.m2_slot else None for d in b.drives] == [
        "M.2_4",
        "M.2_1",
        "M.2_2",
        "M.2_3",
        None,
        None,
    ]
    assert [d.on_adapter for d in b.drives] == [False] * 4 + [True] * 2


@pytest.mark.parametrize(
    ("preset", "volts", "amps", "dedicated"),
    [
        ("na-home-office", 120, 15, False),
        ("na-dedicated-20a", 120, 20, True),
        ("eu-230v-16a", 230, 16, False),
        ("na-240v-30a", 240, 30, True),
    ],
)
def test_site_presets(preset: str, volts: float, amps: float, dedicated: bool) -> None:
    b = build_of(f"  gpus: [rtx-4090]\nsite:\n  preset: {preset}\n")
    assert (b.site.mains_voltage_v, b.site.breaker_a, b.site.dedicated_circuit) == (
        volts,
        amps,
        dedicated,
    )
    assert b.site_preset == preset
    assert set(SITE_PRESETS) == {"na-home-office", "na-dedicated-20a", "eu-230v-16a", "na-240v-30a"}


def test_explicit_site_keys_override_the_preset() -> None:
    b = build_of(
        "  gpus: [rtx-4090]\nsite:\n  preset: eu-230v-16a\n  breaker_a: 10\n"
        "  electricity_usd_per_kwh: 0.32\n  room_cooling_btu_h: 12000\n"
    )
    assert (b.site.mains_voltage_v, b.site.breaker_a) == (230, 10)
    assert b.site.electricity_usd_per_kwh == 0.32
    assert b.site.room_cooling_btu_h == 12000
    assert b.site.hours_per_day == 24  # untouched default


def test_default_site_is_home_office() -> None:
    b = build_of("  gpus: [rtx-4090]\n")
    assert b.site_preset == "na-home-office"
    assert b.site == Site()


def test_power_limit_and_manual_psu_split() -> None:
    b = build_of(
        "  gpus:\n    - {id: rtx-4090, quantity: 2, power_limit_w: 300}\n  psu_assignment: [0, 1]\n"
    )
    assert [g.power_limit_w for g in b.gpus] == [300, 300]
    assert (b.psu_split, b.psu_gpu_assignment) == ("manual", (0, 1))


def test_psu_assignment_index_checked() -> None:
    from rigkit.errors import SpecError

    with pytest.raises(SpecError) as info:
        build_of("  gpus: [rtx-4090]\n  psu_assignment: [2]\n")
    # HEAD has 6 lines; gpus is line 7, psu_assignment line 8; two PSUs: indices 0 and 1
    assert info.value.line == 8
    assert "PSU index 2 but the build has 2 PSU(s)" in info.value.message


def test_sxm_gpu_rejected() -> None:
    from rigkit.errors import SpecError

    with pytest.raises(SpecError) as info:
        build_of("  gpus: [rtx-4090, h100-sxm]\n")
    # line 7 holds both entries; the second is the SXM module
    assert (info.value.line, info.value.field) == (7, "parts.gpus[1].id")
    assert "SXM module" in info.value.message


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        (650, "650 W is above the highest limit the NVIDIA GeForce RTX 4090 accepts (600 W)"),
        (100, "100 W is below the lowest limit the NVIDIA GeForce RTX 4090 accepts (150 W)"),
    ],
)
def test_power_limit_outside_the_cards_range(limit: int, words: str) -> None:
    from rigkit.errors import SpecError

    # RTX 4090 Founders Edition: settable 150-600 W
    with pytest.raises(SpecError) as info:
        build_of(f"  gpus:\n    - {{id: rtx-4090, power_limit_w: {limit}}}\n")
    assert (info.value.line, info.value.field) == (8, "parts.gpus[0].power_limit_w")
    assert words in info.value.message


def test_spec_round_trip() -> None:
    spec = load_spec(FIXTURES / "minimal.yaml")
    assert spec.parts.gpus[0].id == "rtx-4090" and spec.parts.gpus[0].quantity == 1
    assert spec.to_dict()["parts"]["memory"] == {"id": "ddr5-5600-ecc-rdimm-64gb", "quantity": 8}
    assert spec.line_of(("parts", "memory", "quantity")) == 5


def test_full_fixture() -> None:
    b = load_build(FIXTURES / "full.yaml")
    # explicit: 6000 Ada at 1 (covers 1-2) and 4 (covers 4-5), NIC at 3; the 4090 (3 slots)
    # needs a clear run: 6 would cover 6-8 and fits the Define 7 XL's 9 slots -> PCIEX16_6
    assert [g.slot.name if g.slot else None for g in b.gpus] == [
        "PCIEX16_1",
        "PCIEX16_4",
        "PCIEX16_6",
    ]
    assert [g.auto_assigned for g in b.gpus] == [False, False, True]
    assert [g.power_limit_w for g in b.gpus] == [250, 250, 350]
    assert [n.slot.name if n.slot else None for n in b.nics] == ["PCIEX16_3"]
    # the 990 PRO is pinned to M.2_2; the T705s take M.2_1 and M.2_3; the U.2 drive is on an adapter
    assert [d.m2_slot.name if d.m2_slot else None for d in b.drives] == [
        "M.2_2",
        "M.2_1",
        "M.2_3",
        None,
    ]
    assert b.psu_gpu_assignment == (0, 0, 1) and b.psu_split == "manual"
    assert len(b.psus) == 2
    assert b.memory_gb == 256  # 8 x 32 GB
    assert [(f.id, n) for f, n in b.fans] == [
        ("noctua-nf-a14-ippc-3000", 3),
        ("noctua-nf-f12-ippc-3000", 2),
    ]
    assert b.site == Site(
        mains_voltage_v=120,
        breaker_a=20,
        dedicated_circuit=True,
        other_load_w=150,
        room_cooling_btu_h=12000,
        ambient_c=28,
        electricity_usd_per_kwh=0.21,
        hours_per_day=12,
        utilization=0.5,
        idle_power_fraction=0.1,
    )
    (e,) = b.expectations
    assert (e["gpus"], e["prompt"], e["gen"], e["batch"], e["min"], e["max"]) == (
        1,
        512,
        128,
        1,
        100,
        None,
    )
    assert b.extra_cost_usd == 120
    assert b.notes == ()
