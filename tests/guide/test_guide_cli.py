"""`rigkit guide`: files, JSON, refusing to replace files, unusable input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rigkit.design.model import power_budget
from rigkit.guide.hardware import gpu_name
from rigkit.spec import load_build

#: the `cli` fixture (conftest.py): argv -> (exit status, stdout, stderr)
RunCli = Callable[[list[str]], tuple[int, str, str]]

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"


def test_html_and_markdown_name_slots_psus_and_bios(tmp_path: Path, cli: RunCli) -> None:
    code, out, err = cli(
        ["guide", str(REF), "--out", str(tmp_path), "--format", "html,md", "--json"],
    )
    assert code == 0, err
    doc = json.loads(out)
    assert {Path(f).name for f in doc["files"]} == {
        "build-book.html",
        "build-book.md",
        "build-book.json",
    }
    html = (tmp_path / "build-book.html").read_text(encoding="utf-8")
    md = (tmp_path / "build-book.md").read_text(encoding="utf-8")
    build = load_build(REF)
    feeds = {gi: p.index for p in power_budget(build).psus for gi in p.gpus}
    for g in build.gpus:
        assert g.slot is not None
        # the seat step names the card and its slot; the power step the PSU that feeds it
        assert f"Seat {gpu_name(g)}" in md and g.slot.name in md
        assert f"from PSU {feeds[g.index]}." in md
    for text in (html, md):
        assert "Above 4G Decoding" in text and "Re-Size BAR Support" in text
    for item in doc["item_ids"]:
        assert f'id="{item}"' in html or item.endswith("signoff")
        assert f"`{item}`" in md
    saved = json.loads((tmp_path / "build-book.json").read_text(encoding="utf-8"))
    assert saved["item_ids"] == doc["item_ids"]


def test_refuses_to_replace_a_book_without_force(tmp_path: Path, cli: RunCli) -> None:
    argv = ["guide", str(REF), "--out", str(tmp_path), "--format", "md"]
    assert cli(argv)[0] == 0
    code, _, err = cli(argv)
    assert code == 2 and "already has build-book.md" in err and "--force" in err
    assert cli([*argv, "--force"])[0] == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["guide", str(REF), "--format", "docx"], "unknown format 'docx'"),
        (["guide", "no-such.yaml"], "no-such.yaml: no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str],
    needle: str,
    cli: RunCli,
) -> None:
    code, _, err = cli(argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rigkit: error: ") and needle in lines[0]


def test_missing_pdf_engine_still_writes_html(
    tmp_path: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIGKIT_CHROMIUM", str(tmp_path / "no-chromium"))
    code, _, err = cli(["guide", str(REF), "--out", str(tmp_path / "b")])
    assert code == 1
    assert "PDF not written: no PDF engine" in err
    assert (tmp_path / "b" / "build-book.html").is_file()
    assert not (tmp_path / "b" / "build-book.pdf").exists()
