"""`rigkit guide SPEC --out DIR`: the build book (assembly sequence, cable map, BIOS settings,
printable checklist) for one build, as HTML, PDF and Markdown."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer


def _formats(text: str) -> tuple[str, ...]:
    from rigkit.errors import RigkitError
    from rigkit.guide.render import FORMATS

    out: list[str] = []
    for f in (x.strip().lower() for x in text.split(",")):
        if f == "markdown":
            f = "md"
        if f not in FORMATS:
            raise RigkitError(
                f"--format: unknown format {f!r}", hint=f"choose from {', '.join(FORMATS)}"
            )
        if f not in out:
            out.append(f)
    return tuple(out)


def guide_cmd(
    spec: Path = typer.Argument(
        ..., help="Build spec (YAML), e.g. examples/reference-4x4090.yaml."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write build-book.html/.pdf/.md and build-book.json here."
    ),
    fmt: str = typer.Option(
        "html,pdf", "--format", "-f", help="Comma list of html, pdf, md.", metavar="LIST"
    ),
    force: bool = typer.Option(False, "--force", help="Replace book files already in --out."),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Write the one-page quick reference (quick-reference.html/.pdf) instead of the book.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the book (steps, ids) as JSON."),
) -> None:
    """Write the build book for a build: assembly steps, cable map, BIOS settings, checklist.

    Parts and tools, assembly phases with one action per step, slot and cable maps, BIOS
    settings, POST troubleshooting, acceptance, and a printable checklist whose item ids
    `rigkit build` records; --quick writes the one-page quick reference instead.

    Exit status: 0 written, 1 the PDF could not be printed (the HTML is written), 2 unusable input.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from rigkit.errors import RigkitError
    from rigkit.guide.book import build_book
    from rigkit.guide.render import book_file_names, write_book
    from rigkit.spec import load_build

    formats = _formats(fmt)
    if quick:
        _quick(spec, out, formats, force=force, as_json=as_json)
        return
    if out is not None:
        from rigkit.outputs import check_out_dir

        check_out_dir(out, book_file_names(formats), force=force)
    book = build_book(load_build(spec), str(spec))
    problem: str | None = None
    paths: list[Path] = []
    if out is not None:
        try:
            paths, problem = write_book(book, out, formats)
        except OSError as err:
            raise RigkitError(f"cannot write the book to {out}: {err.strerror or err}") from err
    _report(
        book.to_dict(),
        f"{book.name}: {len(book.phases)} phases, {len(book.item_ids())} checklist items, "
        f"about {book.minutes / 60:.1f} h",
        paths,
        problem,
        out,
        as_json,
    )


def _report(
    doc: dict[str, object],
    title: str,
    paths: list[Path],
    problem: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Print what was written (or the document as JSON); a PDF that could not be printed is
    said on stderr and is exit status 1."""
    if as_json:
        doc = {**doc, "files": [str(p) for p in paths], "pdf_problem": problem}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        typer.echo(title)
        for p in paths:
            typer.echo(f"written: {p}")
        if out is None:
            typer.echo("(give --out DIR to write the files)")
    if problem is not None:
        typer.echo(f"rigkit: PDF not written: {problem}", err=True)
        raise SystemExit(1)


def _quick(
    spec: Path, out: Path | None, formats: tuple[str, ...], *, force: bool, as_json: bool
) -> None:
    from rigkit.errors import RigkitError
    from rigkit.guide.quick import quick_reference
    from rigkit.guide.render import quick_file_names, write_quick
    from rigkit.spec import load_build

    if "md" in formats:
        raise RigkitError("--quick writes html and pdf only", hint="--format html,pdf")
    if out is not None:
        from rigkit.outputs import check_out_dir

        check_out_dir(out, quick_file_names(formats), force=force)
    ref = quick_reference(load_build(spec))
    paths: list[Path] = []
    problem: str | None = None
    if out is not None:
        try:
            paths, problem = write_quick(ref, out, formats)
        except OSError as err:
            raise RigkitError(f"cannot write to {out}: {err.strerror or err}") from err
    _report(ref.to_dict(), f"{ref.name}: quick reference", paths, problem, out, as_json)


def register(app: typer.Typer) -> None:
    app.command("guide")(guide_cmd)
