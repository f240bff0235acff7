"""The book's pages: HTML (packaged Jinja templates), Markdown, and PDF printed from the HTML by
headless Chromium. Python computes the drawings' geometry; the templates lay out and quote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigkit.errors import RigkitError
from rigkit.guide.hardware import LEAD_NAMES
from rigkit.guide.model import Book
from rigkit.guide.quick import QuickRef

BOOK_HTML = "build-book.html"
BOOK_PDF = "build-book.pdf"
BOOK_MD = "build-book.md"
BOOK_JSON = "build-book.json"
QUICK_HTML = "quick-reference.html"
QUICK_PDF = "quick-reference.pdf"
FORMATS = ("html", "pdf", "md")

#: PSU colours in the drawings (cycled)
PSU_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def quick_file_names(formats: tuple[str, ...]) -> list[str]:
    """Every file :func:`write_quick` may write for ``formats`` (html, pdf)."""
    return [QUICK_HTML] + ([QUICK_PDF] if "pdf" in formats else [])


def book_file_names(formats: tuple[str, ...] = FORMATS) -> list[str]:
    """Every file :func:`write_book` may write for ``formats``."""
    names = {"html": BOOK_HTML, "pdf": BOOK_PDF, "md": BOOK_MD}
    out = [names[f] for f in formats]
    if "pdf" in formats and BOOK_HTML not in out:
        out.append(BOOK_HTML)
    return [*out, BOOK_JSON]


# --- drawings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    label: str
    sub: str = ""
    colour: str = "#888"


@dataclass(frozen=True)
class Wire:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    colour: str


def _psu_colour(i: int) -> str:
    return PSU_COLOURS[i % len(PSU_COLOURS)]


def _short(name: str) -> tuple[str, str]:
    """``GPU 0 (NVIDIA GeForce RTX 4090)`` -> (``GPU 0``, ``NVIDIA GeForce RTX 4090``)."""
    head, _, rest = name.partition(" (")
    return head, rest[:-1] if rest.endswith(")") else rest


def slot_drawing(book: Book) -> dict[str, Any]:
    """Slot positions top to bottom (left column), cards as boxes over the positions they cover
    (middle), cards on risers beside them (right)."""
    row_h, top = 26.0, 10.0
    rows: list[dict[str, Any]] = []
    cards: list[Box] = []
    feeder = {x.to: x.psu for x in book.cables.leads if not x.to.startswith("board")}
    spans: dict[str, list[int]] = {}
    for r in book.slots:
        rows.append(
            {
                "y": top + (r.position - 1) * row_h,
                "position": r.position,
                "slot": r.slot or "",
                "lanes": r.lanes,
            }
        )
        owner = r.card if r.card and not r.riser else r.covered_by
        if owner:
            spans.setdefault(owner, []).append(r.position)
    for name, pos in spans.items():
        psu = feeder.get(name)
        head, model = _short(name)
        h = len(pos) * row_h - 4
        tall = h >= 30
        sub = model + (f" \u00b7 PSU {psu}" if psu is not None else "") if tall else ""
        cards.append(
            Box(
                250,
                top + (min(pos) - 1) * row_h + 2,
                220,
                h,
                head + (f" \u00b7 PSU {psu}" if psu is not None and not tall else ""),
                sub[:40],
                _psu_colour(psu) if psu is not None else "#777",
            )
        )
    for r in book.slots:
        if r.riser and r.card:
            psu = feeder.get(r.card)
            head, _model = _short(r.card)
            cards.append(
                Box(
                    490,
                    top + (r.position - 1) * row_h + 2,
                    226,
                    row_h - 4,
                    f"{head} on a riser" + (f" \u00b7 PSU {psu}" if psu is not None else ""),
                    "",
                    _psu_colour(psu) if psu is not None else "#777",
                )
            )
    height = top * 2 + len(book.slots) * row_h
    return {"rows": rows, "cards": cards, "height": height, "row_h": row_h}


def cable_drawing(book: Book) -> dict[str, Any]:
    """PSUs on the left, everything they feed on the right, one wire per lead group."""
    targets: list[str] = []
    for x in book.cables.leads:
        if x.to not in targets:
            targets.append(x.to)
    gap = 40.0
    height = max(len(targets), 2 * len(book.cables.psus)) * gap + 20
    psu_h = (height - 20) / max(1, len(book.cables.psus))
    psus = [
        Box(
            10,
            10 + i * psu_h + 4,
            170,
            psu_h - 8,
            f"PSU {p.index} ({p.role})",
            f"{p.load_w:.0f} W of {p.wattage_w:.0f} W ({p.loading:.0%})",
            _psu_colour(p.index),
        )
        for i, p in enumerate(book.cables.psus)
    ]
    boxes = {t: Box(470, 14 + k * gap, 240, gap - 16, t) for k, t in enumerate(targets)}
    wires: list[Wire] = []
    per_target: dict[str, int] = {}
    for x in book.cables.leads:
        b = boxes[x.to]
        src = psus[x.psu] if x.psu < len(psus) else None
        if src is None:
            continue
        k = per_target.get(x.to, 0)
        per_target[x.to] = k + 1
        kind = "adapter" if x.adapter else LEAD_NAMES.get(x.kind, x.kind)
        wires.append(
            Wire(
                src.x + src.w,
                src.y + src.h / 2,
                b.x,
                b.y + b.h / 2 + k * 6 - 3,
                f"{x.count}x {kind}" if x.count > 1 else kind,
                src.colour,
            )
        )
    return {"psus": psus, "targets": list(boxes.values()), "wires": wires, "height": height}


# --- HTML / Markdown ----------------------------------------------------------------------------


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rigkit.guide", "templates"),
        # HTML is escaped; Markdown is not (its cells go through the `md` filter)
        autoescape=jinja2.select_autoescape(["html.j2"], default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["minutes"] = fmt_minutes
    env.filters["lead"] = lambda k: LEAD_NAMES.get(k, k)
    env.filters["md"] = _md_cell
    env.filters["sentence"] = _sentence
    return env


def fmt_minutes(m: float) -> str:
    m = round(m / 5) * 5 if m >= 10 else round(m)
    h, mm = divmod(int(m), 60)
    if h and mm:
        return f"{h} h {mm:02d} min"
    return f"{h} h" if h else f"{mm} min"


def _md_cell(text: object) -> str:
    """Text for a Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _sentence(text: object) -> str:
    """End a text with one full stop (the reasons are written without one)."""
    t = str(text).rstrip()
    return t if t.endswith((".", "!", "?", ":")) else t + "."


#: rows a table may have and still be kept on one page (A4, 9 pt); a longer one may break
#: between rows, with its header repeated, rather than be cut by the page edge
ONE_PAGE_ROWS = {"parts": 30, "leads": 30, "bios": 11}


def _context(book: Book) -> dict[str, Any]:
    rows = {"parts": len(book.parts), "leads": len(book.cables.leads), "bios": len(book.bios)}
    return {
        "long": {k: n > ONE_PAGE_ROWS[k] for k, n in rows.items()},
        "book": book,
        "slots": slot_drawing(book),
        "cables": cable_drawing(book),
        "gpu_leads": [x for x in book.cables.leads if not x.to.startswith("board")],
        "board_leads": [x for x in book.cables.leads if x.to.startswith("board")],
    }


def render_html(book: Book) -> str:
    return str(_env().get_template("book.html.j2").render(**_context(book)))


def render_markdown(book: Book) -> str:
    return str(_env().get_template("book.md.j2").render(**_context(book)))


# --- PDF ----------------------------------------------------------------------------------------

#: binaries tried for printing, first found wins (RIGKIT_CHROMIUM overrides)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("RIGKIT_CHROMIUM")
    if env:
        return env if shutil.which(env) or Path(env).is_file() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 120.0) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (no network: the page is
    self-contained). The PDF appears only when complete (written beside it, then renamed)."""
    exe = find_chromium()
    if exe is None:
        raise RigkitError(
            "no PDF engine: headless Chromium was not found",
            hint="install chromium (Debian: apt-get install chromium) or set RIGKIT_CHROMIUM",
        )
    tmp = pdf_path.with_name(f".{pdf_path.name}.part")
    with tempfile.TemporaryDirectory(prefix="rigkit-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp}",
            html_path.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise RigkitError(
                f"Chromium did not print {html_path} within {timeout_s:g} s"
            ) from None
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RigkitError(
            f"Chromium could not print {html_path}: "
            + (err[-1] if err else f"exit {proc.returncode}")
        )
    tmp.replace(pdf_path)


def write_book(
    book: Book, out_dir: Path, formats: tuple[str, ...]
) -> tuple[list[Path], str | None]:
    """Write the book in ``formats`` (and build-book.json, the checklist ids for `rigkit build`).
    Returns the paths written and, when the PDF could not be printed, why (the HTML is still
    written)."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    html_path = out_dir / BOOK_HTML
    if "html" in formats or "pdf" in formats:
        html_path.write_text(render_html(book), encoding="utf-8")
        written.append(html_path)
    if "md" in formats:
        md = out_dir / BOOK_MD
        md.write_text(render_markdown(book), encoding="utf-8")
        written.append(md)
    js = out_dir / BOOK_JSON
    js.write_text(json.dumps(book.to_dict(), indent=2) + "\n", encoding="utf-8")
    written.append(js)
    problem: str | None = None
    if "pdf" in formats:
        pdf = out_dir / BOOK_PDF
        try:
            print_pdf(html_path, pdf)
            written.append(pdf)
        except RigkitError as err:
            problem = str(err)
    return written, problem


def render_quick_html(quick: QuickRef) -> str:
    return str(_env().get_template("quick.html.j2").render(q=quick))


def write_quick(
    quick: QuickRef, out_dir: Path, formats: tuple[str, ...]
) -> tuple[list[Path], str | None]:
    """Write the one-page quick reference (HTML, and the PDF printed from it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / QUICK_HTML
    html.write_text(render_quick_html(quick), encoding="utf-8")
    written = [html]
    problem: str | None = None
    if "pdf" in formats:
        try:
            print_pdf(html, out_dir / QUICK_PDF)
            written.append(out_dir / QUICK_PDF)
        except RigkitError as err:
            problem = str(err)
    return written, problem
