"""The printed book: Chromium's PDF, read back with poppler (pdftotext, pdftoppm).

Skipped with the reason where Chromium or poppler-utils is missing (``.ci/run`` installs both).
The reference book is printed once per session (~5 s); the other examples are printed by a test
marked slow.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rigkit.design.model import power_budget
from rigkit.guide import Book, build_book
from rigkit.guide.hardware import bios_settings, gpu_name, riser_gpus
from rigkit.guide.render import find_chromium, write_book
from rigkit.spec import load_build

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"
OTHERS = [p for p in sorted((ROOT / "examples").glob("*.yaml")) if p != REF]

pytestmark = [
    pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed"),
    pytest.mark.skipif(
        shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
        reason="poppler-utils (pdftotext, pdftoppm) is not installed",
    ),
]

#: pdftoppm resolution for the page pictures; at 60 dpi one millimetre is 60 / 25.4 = 2.36 px
DPI = 60
PX_PER_MM = DPI / 25.4


def flat(text: str) -> str:
    """pdftotext's lines joined: a sentence may wrap anywhere on the page."""
    return " ".join(text.split())


def print_book(spec: Path, out: Path) -> tuple[Book, Path]:
    book = build_book(load_build(spec), str(spec))
    _, problem = write_book(book, out, ("pdf",))
    assert problem is None, problem
    return book, out / "build-book.pdf"


def pages_text(pdf: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    return [flat(p) for p in text.split("\f") if p.strip()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Book, Path]:
    return print_book(REF, tmp_path_factory.mktemp("book"))


def check_names_plan(spec: Path, text: str) -> None:
    """The PDF's text names each GPU's slot, the PSU and the leads that feed it, and the board's
    BIOS settings, all as the plan placed and assigned them (not fixed strings)."""
    build = load_build(spec)
    feeds = {gi: p.index for p in power_budget(build).psus for gi in p.gpus}
    risers = riser_gpus(build)
    for g in build.gpus:
        assert g.slot is not None
        name, slot, psu = gpu_name(g), g.slot.name, feeds[g.index]
        if g.index in risers:
            assert f"riser cable into {slot} and route it to the mount for {name}" in text
        else:
            assert f"Seat {name} in {slot}" in text
        n8 = g.gpu.power_connectors.get("pcie_8pin", 0)
        on_psu = [gi for gi, p in feeds.items() if p == psu]
        leads = build.psus[psu].connectors.get("12vhpwr", 0)
        if g.gpu.power_connectors.get("12vhpwr") and leads >= len(on_psu):
            assert f"Connect PSU {psu}'s 12V-2x6 lead to {name}" in text
        elif g.gpu.power_connectors.get("12vhpwr") and leads == 0:
            assert re.search(
                rf"12VHPWR adapter into {re.escape(name)} and connect its (\d) inputs to \1 "
                rf"separate PCIe 8-pin leads from PSU {psu}\.",
                text,
            )
        elif n8:
            assert f"Connect {n8} separate PCIe 8-pin leads from PSU {psu} to {name}" in text
        else:
            assert f"from PSU {psu}" in text
    for s in bios_settings(build):
        assert f"Set {s.name} to {s.value}" in text
        if s.menu:
            assert flat(s.menu) in text


def test_reference_pdf_names_slots_psus_and_bios(reference: tuple[Book, Path]) -> None:
    _, pdf = reference
    check_names_plan(REF, " ".join(pages_text(pdf)))


@pytest.mark.slow
@pytest.mark.parametrize("spec", OTHERS, ids=lambda p: p.stem)
def test_every_example_prints(spec: Path, tmp_path: Path) -> None:
    _, pdf = print_book(spec, tmp_path)
    pages = pages_text(pdf)
    check_names_plan(spec, " ".join(pages))
    # poppler renders every page (20 dpi: enough to show the file is a sound PDF)
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(pdf), str(tmp_path / "p")], check=True)
    assert len(list(tmp_path.glob("p-*.png"))) == len(pages)


def test_no_table_is_cut_across_pages(reference: tuple[Book, Path]) -> None:
    """Each table's caption and its last row are on the same page (the stylesheet keeps tables
    whole with break-inside: avoid)."""
    book, pdf = reference
    pages = pages_text(pdf)
    tables = {
        "Parts: check each on arrival": book.parts[-1].item,
        "Tools for this build": book.tools[-1],
        "Time per phase": "Total",
        "PSU loads from the plan": f"PSU {book.cables.psus[-1].index}: {book.cables.psus[-1].name}",
        "Leads from each PSU": book.cables.leads[-1].to,
        "Settings to change": book.bios[-1].why,
        "Symptoms and what to check": book.trouble[-1].checks[-1],
    }
    for caption, last in tables.items():
        where = [i for i, p in enumerate(pages) if caption in p]
        assert where, caption
        assert flat(last) in pages[where[0]], f"table {caption!r} continues past page {where[0]}"


def test_pages_keep_their_margins(reference: tuple[Book, Path], tmp_path: Path) -> None:
    """Every page picture is blank in the outer 1-10 mm on the right and the outer 1-5 mm at the
    bottom (margins 14 mm and 16 mm; the page number sits 6-10 mm from the bottom edge): no text,
    table or drawing runs off its box. Each page also has content (no blank page), spanning the
    text block (nothing made Chromium shrink the pages to fit)."""
    from PIL import Image

    _, pdf = reference
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == len(pages_text(pdf))
    right = (int(10 * PX_PER_MM), int(1 * PX_PER_MM))  # 23 px to 2 px from the edge
    bottom = (int(5 * PX_PER_MM), int(1 * PX_PER_MM))  # 11 px to 2 px
    for png in pngs:
        img = np.asarray(Image.open(png).convert("L"))
        h, w = img.shape
        ink = img < 230  # text, rules and borders; not the tinted note backgrounds
        assert not ink[:, w - right[0] : w - right[1]].any(), f"{png.name}: ink in the right margin"
        assert not ink[h - bottom[0] : h - bottom[1], :].any(), f"{png.name}: ink at the bottom"
        body = ink[int(15 * PX_PER_MM) : h - int(16 * PX_PER_MM), :]
        assert body.sum() > 500, f"{png.name}: an empty page"
        # Chromium shrinks the whole document when one element is too wide instead of cutting
        # it; then the page's content no longer spans the text block from 14 mm to 196 mm (every
        # page has a full-width rule: chapter headings, step separators, tables)
        cols = np.nonzero(ink.any(axis=0))[0]
        assert cols.min() <= (14 + 1.5) * PX_PER_MM, f"{png.name}: content shrunk"
        assert cols.max() >= (210 - 14 - 1.5) * PX_PER_MM, f"{png.name}: content shrunk"


def test_sign_off_is_not_alone_on_a_page(reference: tuple[Book, Path]) -> None:
    """Each phase's sign-off box prints on the page of the phase's last step."""
    book, pdf = reference
    pages = pages_text(pdf)
    for phase in book.phases:
        where = [i for i, p in enumerate(pages) if phase.signoff_id in p]
        assert len(where) == 1, phase.signoff_id
        assert phase.steps[-1].id in pages[where[0]].split(), phase.signoff_id
