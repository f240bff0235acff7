"""`rigkit guide`: files, JSON, refusing to replace files, unusable input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rigkit.cli import entry
from rigkit.design.model import power_budget
from rigkit.guide.hardware import gpu_name
from rigkit.spec import load_build

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"


def run_cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    code: object = 0
    try:
        entry.run()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return (code if isinstance(code, int) else 0), out.out, out.err


def test_html_and_markdown_name_slots_psus_and_bios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["guide", str(REF), "--out", str(tmp_path), "--format", "html,md", "--json"],
        monkeypatch,
        capsys,
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


def test_refuses_to_replace_a_book_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["guide", str(REF), "--out", str(tmp_path), "--format", "md"]
    assert run_cli(argv, monkeypatch, capsys)[0] == 0
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert code == 2 and "already has build-book.md" in err and "--force" in err
    assert run_cli([*argv, "--force"], monkeypatch, capsys)[0] == 0


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
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rigkit: error: ") and needle in lines[0]


def test_missing_pdf_engine_still_writes_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIGKIT_CHROMIUM", str(tmp_path / "no-chromium"))
    code, _, err = run_cli(["guide", str(REF), "--out", str(tmp_path / "b")], monkeypatch, capsys)
    assert code == 1
    assert "PDF not written: no PDF engine" in err
    assert (tmp_path / "b" / "build-book.html").is_file()
    assert not (tmp_path / "b" / "build-book.pdf").exists()
