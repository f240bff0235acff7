"""Spec values a careless or hostile file may hold, and specs with several mistakes at once.

Before: a spec's problems arrived one per run ("[3 more problems]"): a file with four mistakes
took four runs. Now every problem is its own ``rigkit: error: FILE:LINE: ...`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's type (conftest is not importable by name)
    from conftest import RigkitCli

pytestmark = pytest.mark.timeout(30)

GOOD = """\
name: desk
parts:
  cpu: ryzen-9-9950x
  motherboard: asus-proart-x670e-creator
  memory: {id: ddr5-5600-udimm-48gb, quantity: 2}
  gpus: [{id: rtx-5090, quantity: 1}]
  psus: [corsair-rm1000x-shift]
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_four_schema_mistakes_in_one_run(rigkit: RigkitCli, tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "name: desk\n"
        "parts:\n"
        "  cpu: ryzen-9-9950x\n"
        "  motherbord: asus-proart-x670e-creator\n"  # 4: misspelt key
        "  memory: {id: ddr5-5600-udimm-48gb, quantity: 2}\n"
        "  gpus: [{id: rtx-5090, quantity: 0}]\n"  # 6: no cards
        "  psus: [corsair-rm1000x-shift]\n"
        "site:\n"
        "  hours_per_day: 30\n"  # 9: more hours than a day has
        "  colour: red\n",  # 10: unknown key
    )
    r = rigkit("plan", str(spec))
    r.assert_clean()
    assert r.code == 2
    # unknown keys first (a misspelt key is the likeliest cause of the rest), then by line
    assert r.err.splitlines() == [
        f"rigkit: error: {spec}:4: parts: unknown key 'motherbord' "
        "(hint: did you mean 'motherboard'?)",
        f"rigkit: error: {spec}:10: site: unknown key 'colour' "
        "(hint: valid keys: preset, mains_voltage_v, breaker_a, dedicated_circuit, other_load_w, "
        "room_cooling_btu_h, ambient_c, electricity_usd_per_kwh, hours_per_day, utilization, "
        "idle_power_fraction)",
        f"rigkit: error: {spec}:6: parts.gpus[0].quantity: "
        "input should be greater than or equal to 1 (got 0)",
        f"rigkit: error: {spec}:9: site.hours_per_day: "
        "input should be less than or equal to 24 (got 30)",
    ]


def test_four_unknown_ids_in_one_run(rigkit: RigkitCli, tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        GOOD.replace("ryzen-9-9950x", "ryzen-9-9950")  # line 3
        .replace("rtx-5090, quantity", "rtx-5900, quantity")  # line 6
        .replace("corsair-rm1000x-shift", "corsair-rm1000")  # line 7
        + "compare_cloud: aws-p5\n",  # line 8
    )
    r = rigkit("plan", str(spec))
    r.assert_clean()
    lines = r.err.splitlines()
    assert r.code == 2 and len(lines) == 4, r.err
    for line, (n, field) in zip(
        lines,
        [(3, "parts.cpu"), (6, "parts.gpus[0].id"), (7, "parts.psus[0].id"), (8, "compare_cloud")],
        strict=True,
    ):
        assert line.startswith(f"rigkit: error: {spec}:{n}: {field}: "), line
        assert "(hint: closest" in line or "hint:" in line, line


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        # a quantity past the cap would expand into that many parts while resolving
        ("quantity: 1}", "quantity: 99999999999}", "less than or equal to 1000"),
        ("quantity: 1}", "quantity: -4}", "greater than or equal to 1"),
        ("quantity: 1}", "quantity: 1e400}", "parts.gpus[0].quantity"),
        ("quantity: 1}", "quantity: true}", "valid integer"),
        ("quantity: 1}", "quantity: 1, power_limit_w: .nan}", "finite number"),
        ("quantity: 1}", "quantity: 1, power_limit_w: -450}", "greater than 0"),
        ("name: desk", "name: " + "x" * 200_000, None),  # a very long line is just a long name
    ],
)
def test_hostile_values(
    rigkit: RigkitCli, tmp_path: Path, old: str, new: str, needle: str | None
) -> None:
    spec = _spec(tmp_path, GOOD.replace(old, new))
    r = rigkit("plan", str(spec), "--json")
    r.assert_clean()
    if needle is None:
        assert r.code in (0, 1), r.err
    else:
        r.assert_refused(f"{spec}:6: ", needle)
