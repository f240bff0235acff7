"""YAML features a spec (or a profile) may use against its reader: refused with one FILE:LINE line.

Before the shared checked loader: a recursive alias raised RecursionError, a tag or a list as a
key a ConstructorError traceback, and the 342-byte alias bomb below ran 87 s to 6 GB.
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

# nine levels of nine aliases: 9**9 = 387,420,489 strings from 342 bytes
BOMB = "".join(
    f"{k}: &{k} [" + ",".join([f"*{p}"] * 9 if p else ['"lol"'] * 9) + "]\n"
    for p, k in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def test_the_bomb_is_the_one_reported() -> None:
    assert len(BOMB) == 342


@pytest.mark.parametrize(
    ("extra", "line", "needle"),
    [
        # a list that holds itself: line 8 is the first line after GOOD's seven
        ("x: &a [*a]\n", 8, "a cycle"),
        ("x: &a {b: *a}\n", 8, "a cycle"),
        ("description: !foo bar\n", 8, "tag '!foo' is not allowed"),
        (
            "description: !!python/object/apply:os.system ['touch pwned']\n",
            8,
            "python/object/apply:os.system' is not allowed",
        ),
        ("description: !!binary aGVsbG8=\n", 8, "binary' is not allowed"),
        ("? [a, b]\n: 1\n", 8, "a mapping key must be plain text"),
        # 5,000 digits: Python's int() refuses 4,300 and more (ValueError before the check)
        ("description: " + "9" * 5000 + "\n", 8, "an integer of 5000 characters"),
        # the bomb's expansion, reported at the document's first line: level a is a sequence of
        # 9 strings (10 nodes), each next level 1 + 9 x the one before: 10, 91, 820, 7381, 66430,
        # 597871, 5380840, 48427561, 435848050, in all 490,329,054; with its 9 keys and GOOD's
        # 25 nodes (root 1, name 2, parts 2, cpu 2, motherboard 2, memory 6, gpus 7, psus 3)
        # 490,329,054 + 9 + 25 = 490,329,088, from 52 nodes in the text
        (BOMB, 1, "aliases expand this document to 490,329,088 nodes from 52 "),
    ],
)
def test_plan_refuses_yaml_features(
    rigkit: RigkitCli, tmp_path: Path, extra: str, line: int, needle: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD + extra, encoding="utf-8")
    r = rigkit("plan", str(spec))
    r.assert_refused(f"{spec}:{line}: refused YAML: ", needle)
    assert not (tmp_path / "pwned").exists()


def test_aliases_within_the_bound_still_work(rigkit: RigkitCli, tmp_path: Path) -> None:
    # an anchor used twice (and a merge key) is ordinary YAML: the plan runs
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        GOOD.replace("[{id: rtx-5090, quantity: 1}]", "[&card {id: rtx-5090, quantity: 1}]")
        + "site: {<<: {preset: eu-230v-16a}, ambient_c: 25}\n",
        encoding="utf-8",
    )
    r = rigkit("plan", str(spec), "--json")
    r.assert_clean()
    assert r.code in (0, 1), r.err


def test_deep_nesting_is_a_yaml_error(rigkit: RigkitCli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: [" + "[" * 100_000 + "\n", encoding="utf-8")
    rigkit("plan", str(spec)).assert_refused(f"{spec}:1: not valid YAML: ", "nesting depth")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("fitted: &a [*a]\n", "a cycle"),
        ("fitted: !!python/name:os.system {}\n", "is not allowed"),
        ("fitted:\n  ? [a]\n  : 1\n", "a mapping key must be plain text"),
    ],
)
def test_profile_refuses_yaml_features(
    rigkit: RigkitCli, tmp_path: Path, text: str, needle: str
) -> None:
    prof = tmp_path / "profile.yaml"
    prof.write_text(text, encoding="utf-8")
    r = rigkit(
        "estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090",
        "--profile", str(prof),
    )  # fmt: skip
    r.assert_refused(f"profile {prof}:", "refused YAML", needle)
