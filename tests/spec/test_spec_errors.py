"""Every kind of bad input gives one SpecError line naming file:line and the field.

Line numbers are read off the fixture files in tests/fixtures/specs/bad/ by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.errors import SpecError
from rigkit.spec import load_build, parse_spec

BAD = Path(__file__).parent.parent / "fixtures" / "specs" / "bad"

# (fixture, line, field, words in the message, words in the hint)
CASES: list[tuple[str, int, str | None, str, str | None]] = [
    # line 4 opens "{id: ..., quantity: 8" and never closes it; the parser fails on line 5 at
    # "gpus: [" where it wants "," or "}"
    ("malformed.yaml", 5, None, "flow mapping that starts on line 4", None),
    # line 8: "      quantity: four"
    ("wrong-type.yaml", 8, "parts.gpus[0].quantity", "valid integer", None),
    # line 8: "      quantitty: 2" inside gpus[0]
    ("unknown-key.yaml", 8, "parts.gpus[0]", "unknown key 'quantitty'", "'quantity'"),
    # line 8: "stie:" at the top level
    ("unknown-top-key.yaml", 8, "(top level)", "unknown key 'stie'", "'site'"),
    # line 3: "  cpu: threadripper-pro-7957wx"
    ("unknown-id.yaml", 3, "parts.cpu", "unknown cpu id", "threadripper-pro-7975wx"),
    # line 8: "    - rtx-4900" (second GPU entry, a bare id)
    ("unknown-gpu-id.yaml", 8, "parts.gpus[1].id", "unknown gpu id 'rtx-4900'", "rtx-4090"),
    # line 7: "    - {id: rtx-4090, quantity: 0}"
    ("zero-quantity.yaml", 7, "parts.gpus[0].quantity", "greater than or equal to 1", None),
    # line 7: "  gpus:"; 8 cards for the 7 slots of the WRX90E-SAGE SE
    ("too-many-gpus.yaml", 7, "parts.gpus", "8 PCIe cards (8 GPUs + 0 NICs)", None),
    # line 8: "  storage:"; 1 + 4 = 5 drives for the board's 4 M.2 slots
    ("too-many-drives.yaml", 8, "parts.storage", "5 drives for 4 M.2 slots", "adapter: true"),
    # line 7: "    quantity: 16"; the board has 8 DIMM slots
    ("too-much-memory.yaml", 7, "parts.memory.quantity", "16 memory modules", None),
    # line 2: "parts:" (the mapping that lacks motherboard)
    ("missing-part.yaml", 2, "parts", "missing required key 'motherboard'", None),
    # a comment only: nothing to read, reported at line 1
    ("empty.yaml", 1, None, "the spec is empty", "examples"),
    # line 9: "      slots: [PCIEX16_1, PCIEX16_9]"; the board has PCIEX16_1..7
    ("unknown-slot.yaml", 9, "parts.gpus[0].slots[1]", "no PCIe slot 'PCIEX16_9'", "PCIEX16_1"),
    # line 9: the NIC's "slots: [PCIEX16_1]", already given to the GPU on line 7
    ("slot-twice.yaml", 9, "parts.nics[0].slots[0]", "given to two devices", None),
    # line 8: the second "cpu:" key; the first is on line 3
    ("duplicate-key.yaml", 8, "parts.cpu", "duplicate key 'cpu' (first on line 3)", None),
    # line 9: "  - claim: backwards" starts the expectation whose min 44 > max 36
    ("expectation-bounds.yaml", 9, "expectations[0]", "min 44 is above max 36", None),
    # line 10 is `model: llama-3.1-450b`; the closest catalog id is the 405B
    (
        "expectation-unknown-model.yaml",
        10,
        "expectations[0].model",
        "unknown model id 'llama-3.1-450b'",
        "llama-3.1-405b",
    ),
    # line 9: "  preset: eu-230-16a"
    ("bad-preset.yaml", 9, "site.preset", "unknown site preset 'eu-230-16a'", "eu-230v-16a"),
    # line 7: "    - {id: rtx-4090, power_limit_w: -300}"
    ("negative-power.yaml", 7, "parts.gpus[0].power_limit_w", "greater than 0 (got -300)", None),
    # line 1: a YAML list where a mapping should be
    ("not-a-mapping.yaml", 1, None, "must be a mapping", None),
    # line 7: "    - {id: rtx-4090, quantity: true}"; YAML's true is not the count 1
    ("bool-quantity.yaml", 7, "parts.gpus[0].quantity", "valid integer (got True)", None),
    # line 14: "    max: .nan"; every comparison with NaN is false, so no figure could miss it
    ("nan-bound.yaml", 14, "expectations[0].max", "finite number (got nan)", None),
]


@pytest.mark.parametrize(
    ("fixture", "line", "field", "words", "hint"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_spec(fixture: str, line: int, field: str | None, words: str, hint: str | None) -> None:
    path = BAD / fixture
    with pytest.raises(SpecError) as info:
        load_build(path)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert err.file == str(path)
    assert err.line == line
    assert text.startswith(f"{path}:{line}: ")
    assert err.field == field
    if field is not None:
        assert f":{line}: {field}: " in text
    assert words in err.message
    if hint is None:
        assert err.hint is None
    else:
        assert err.hint is not None and hint in err.hint


def test_unknown_key_hint_lists_keys_when_nothing_is_close() -> None:
    text = "name: x\nparts:\n  cpu: a\n  zzzz: 1\n"  # also lacks motherboard, memory, ...
    with pytest.raises(SpecError) as info:
        parse_spec(text, file="t.yaml")
    # line 4: "  zzzz: 1"; reported before the missing keys; nothing is close, so the hint lists
    # the keys of parts
    assert info.value.line == 4
    assert info.value.hint is not None and info.value.hint.startswith(
        "valid keys: cpu, motherboard"
    )


def test_every_problem_is_reported() -> None:
    text = "name: x\nparts:\n  cpu: 1x\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, file="t.yaml")
    # parts (line 2) lacks motherboard, memory, gpus and psus: four lines, one per key
    assert str(info.value).splitlines() == [
        f"t.yaml:2: parts: missing required key {key!r}"
        for key in ("motherboard", "memory", "gpus", "psus")
    ]
    assert info.value.line == 2 and len(info.value.problems) == 4


def test_memory_needs_a_quantity() -> None:
    text = "name: x\nparts:\n  cpu: a\n  motherboard: b\n  memory: ddr5-5600-ecc-rdimm-64gb\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, file="t.yaml")
    assert info.value.line == 5  # "  memory: ddr5-..."
    assert "give the module count" in info.value.message


def test_missing_file() -> None:
    with pytest.raises(SpecError, match=r"no-such\.yaml: no such file"):
        load_build(BAD / "no-such.yaml")


def test_explicit_slot_count_must_match_quantity() -> None:
    text = (
        "name: x\nparts:\n  cpu: threadripper-pro-7975wx\n"
        "  motherboard: asus-pro-ws-wrx90e-sage-se\n"
        "  memory: {id: ddr5-5600-ecc-rdimm-64gb, quantity: 8}\n"
        "  gpus:\n    - {id: rtx-4090, quantity: 2, slots: [PCIEX16_1]}\n"
        "  psus: [seasonic-prime-tx-1600]\n"
    )
    from rigkit.spec import resolve

    with pytest.raises(SpecError) as info:
        resolve(parse_spec(text, file="t.yaml"))
    # line 7 holds the GPU entry with 1 slot name for 2 cards
    assert (info.value.line, info.value.field) == (7, "parts.gpus[0].slots")
    assert "1 slot name(s) for quantity 2" in info.value.message
