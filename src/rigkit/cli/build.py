"""`rigkit build start / check / status / certificate`: follow a build through its checklist (the
item ids of `rigkit guide`) to a certificate that quotes the `rigkit qa` verdict."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

build_app = typer.Typer(
    name="build",
    help="Track a build in progress: checklist items with serials and readings, and its certificate.",
    no_args_is_help=True,
    add_completion=False,
)

_DB_HELP = "Build database (SQLite); default: $XDG_DATA_HOME/rigkit/build.db."


def register(app: typer.Typer) -> None:
    """Add `rigkit build` and its commands to the root app."""
    app.add_typer(build_app, name="build")


def _db(db: Path | None) -> Path:
    from rigkit.guide.tracker import default_db_path

    return db if db is not None else default_db_path()


def _dump(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@build_app.command("start")
def start_cmd(
    spec: Path = typer.Argument(..., help="Build spec (YAML) of the machine being built."),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    force: bool = typer.Option(
        False,
        "--force",
        help="Start a new build in a database that tracks one (keeps its records).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the checklist as JSON."),
) -> None:
    """Start tracking the build of SPEC: its checklist is the build book's (same item ids)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from rigkit.guide.book import build_book
    from rigkit.guide.tracker import Tracker
    from rigkit.spec import load_build

    book = build_book(load_build(spec), str(spec))  # a bad spec creates no database
    path = _db(db)
    with Tracker(path, create=True) as t:
        t.start(book, force=force)
        items = t.items()
    if as_json:
        _dump({"db": str(path), "name": book.name, "items": [i.to_dict() for i in items]})
    else:
        typer.echo(f"tracking {book.name!r} in {path}: {len(items)} checklist items")


@build_app.command("check")
def check_cmd(
    item: str = typer.Argument(..., help="Checklist item id, as printed in the build book."),
    serial: str | None = typer.Option(None, "--serial", help="Serial number of the part."),
    value: str | None = typer.Option(
        None, "--value", help="The reading (16, x16, Gen4, 71 C): checked against the plan."
    ),
    note: str | None = typer.Option(None, "--note", help="A note (who signed, what was odd)."),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Record ITEM as done, with its serial number or reading.

    Exit status: 0 recorded, 1 recorded but the reading is outside the plan's range, 2 unusable
    input (an unknown item id lists the nearest ones).
    """
    from rigkit.guide.tracker import Tracker

    with Tracker(_db(db)) as t:
        rec = t.check(item, serial=serial, value=value, note=note)
    if as_json:
        _dump(rec.to_dict())
    else:
        line = f"{item}: done {rec.at}"
        if rec.serial:
            line += f", serial {rec.serial}"
        if rec.value is not None:
            line += f", value {rec.value}"
        typer.echo(line)
        if rec.flagged:
            typer.echo(f"FLAGGED: {rec.reason}")
    if rec.flagged:
        raise SystemExit(1)


@build_app.command("status")
def status_cmd(
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    show_all: bool = typer.Option(False, "--all", help="List every item, not only open ones."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Items done per phase, flagged readings, missing serials, and what is left.

    Exit status: 0 complete, 1 items left, readings flagged or serials missing, 2 unusable input.
    """
    from rigkit.guide.tracker import Tracker

    with Tracker(_db(db)) as t:
        st = t.status()
    if as_json:
        _dump(st.to_dict())
    else:
        typer.echo(f"{st.name}: {st.done} of {st.total} items done (started {st.started_at})")
        for phase, done, total in st.phases():
            typer.echo(f"  {phase:8} {done:3}/{total}")
        for x in st.flagged:
            typer.echo(f"FLAGGED {x.item.id}: {x.check.reason if x.check else ''}")
        for x in st.incomplete:
            typer.echo(f"MISSING {x.item.id}: {', '.join(x.missing)}")
        shown = st.items if show_all else st.open_items
        label = "items" if show_all else "open items"
        if shown:
            typer.echo(f"{label}:")
            for x in shown:
                mark = "x" if x.done else " "
                typer.echo(f"  [{mark}] {x.item.id:28} {x.item.action}")
    if not st.complete:
        raise SystemExit(1)


@build_app.command("certificate")
def certificate_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Write certificate.html and .json here."),
    qa: Path | None = typer.Option(
        None, "--qa", help="The rigkit qa result (qa-results.json or `rigkit qa --json`)."
    ),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    force: bool = typer.Option(False, "--force", help="Replace a certificate in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the certificate as JSON."),
) -> None:
    """Join the checklist, the serial numbers, the readings and the qa verdict into a certificate.

    Exit status: 0 certified, 1 written but not certified (the reasons are listed), 2 unusable
    input.
    """
    from rigkit.errors import RigkitError
    from rigkit.guide.certificate import (
        CERT_HTML,
        CERT_JSON,
        make_certificate,
        read_qa,
        write_certificate,
    )
    from rigkit.guide.tracker import Tracker
    from rigkit.outputs import check_out_dir

    check_out_dir(out, [CERT_HTML, CERT_JSON], force=force)
    summary = read_qa(qa) if qa is not None else None
    with Tracker(_db(db)) as t:
        cert = make_certificate(t.status(), summary)
    try:
        paths = write_certificate(cert, out)
    except OSError as err:
        raise RigkitError(f"cannot write the certificate to {out}: {err.strerror or err}") from err
    if as_json:
        _dump({**cert.to_dict(), "files": [str(p) for p in paths]})
    else:
        typer.echo(("CERTIFIED" if cert.certified else "NOT CERTIFIED") + f": {cert.status.name}")
        for r in cert.reasons:
            typer.echo(f"  - {r}")
        for p in paths:
            typer.echo(f"written: {p}")
    if not cert.certified:
        raise SystemExit(1)
