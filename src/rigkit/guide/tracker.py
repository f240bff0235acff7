"""The build tracker: a build in progress, item by item, in one SQLite file.

``rigkit build start SPEC`` stores the build book's checklist (ids, serial blanks, readings with the
plan's expected ranges) with the build, so later checks need no spec. Each ``check`` is one row in
one transaction: WAL with ``synchronous=FULL``, so once :meth:`Tracker.check` returns the record is
on disk, and a process killed in the middle of a write leaves the file as it was before that write
(SQLite's journal rolls the unfinished transaction back at the next open). A checked item can be
checked again (a reseated card's new link width); the latest record counts.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rigkit.errors import RigkitError
from rigkit.guide.model import Book, Reading

SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    spec_path TEXT,
    started_at TEXT NOT NULL,
    book TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY,
    build_id INTEGER NOT NULL REFERENCES builds(id),
    item_id TEXT NOT NULL,
    at TEXT NOT NULL,
    serial TEXT,
    value TEXT,
    number REAL,
    note TEXT,
    flagged INTEGER NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS checks_item ON checks(build_id, item_id, id);
"""

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/rigkit/build.db`` (``~/.local/share/rigkit/build.db`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rigkit" / "build.db"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Item:
    """One checklist line as stored with the build."""

    id: str
    phase: str
    action: str
    serial: str | None = None
    reading: Reading | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.reading is not None:
            d["reading"]["expected"] = self.reading.expected()
        return d


@dataclass(frozen=True)
class CheckRecord:
    item_id: str
    at: str
    serial: str | None
    value: str | None
    number: float | None
    note: str | None
    flagged: bool
    reason: str | None  # why a reading is flagged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ItemState:
    item: Item
    check: CheckRecord | None

    @property
    def done(self) -> bool:
        return self.check is not None

    @property
    def missing(self) -> list[str]:
        """What a checked item still lacks: its serial number or its reading."""
        if self.check is None:
            return []
        out = []
        if self.item.serial and not self.check.serial:
            out.append(f"serial of {self.item.serial}")
        if self.item.reading and self.check.number is None:
            out.append(self.item.reading.label)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item.to_dict(),
            "done": self.done,
            "check": self.check.to_dict() if self.check else None,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class BuildStatus:
    name: str
    spec_path: str | None
    started_at: str
    items: tuple[ItemState, ...]

    @property
    def done(self) -> int:
        return sum(1 for s in self.items if s.done)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def flagged(self) -> list[ItemState]:
        return [s for s in self.items if s.check is not None and s.check.flagged]

    @property
    def incomplete(self) -> list[ItemState]:
        return [s for s in self.items if s.done and s.missing]

    @property
    def open_items(self) -> list[ItemState]:
        return [s for s in self.items if not s.done]

    @property
    def complete(self) -> bool:
        return not self.open_items and not self.flagged and not self.incomplete

    def phases(self) -> list[tuple[str, int, int]]:
        """(phase, done, total) in book order."""
        out: dict[str, list[int]] = {}
        for s in self.items:
            d = out.setdefault(s.item.phase, [0, 0])
            d[0] += int(s.done)
            d[1] += 1
        return [(k, v[0], v[1]) for k, v in out.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec_path": self.spec_path,
            "started_at": self.started_at,
            "done": self.done,
            "total": self.total,
            "complete": self.complete,
            "phases": [{"phase": p, "done": d, "total": t} for p, d, t in self.phases()],
            "flagged": [s.item.id for s in self.flagged],
            "incomplete": {s.item.id: s.missing for s in self.incomplete},
            "items": [s.to_dict() for s in self.items],
        }


def items_of(book: dict[str, Any]) -> list[Item]:
    """The checklist of a stored book (``Book.to_dict()``): every step, then each sign-off."""
    out: list[Item] = []
    for phase in book["phases"]:
        for s in phase["steps"]:
            r = s.get("reading")
            reading = (
                Reading(r["label"], r.get("unit", ""), r.get("min"), r.get("max")) if r else None
            )
            out.append(Item(s["id"], phase["key"], s["action"], s.get("serial"), reading))
    for phase in book["phases"]:
        out.append(Item(phase["signoff_id"], phase["key"], f"{phase['title']}: done (sign-off)"))
    return out


def parse_reading(reading: Reading, value: str) -> float:
    """The number in a reading as written on the checklist: ``16``, ``x16``, ``Gen4``, ``71 C``."""
    m = _NUMBER.search(value)
    if m is None:
        unit = f", {reading.unit}" if reading.unit else ""
        raise RigkitError(
            f"--value {value!r} has no number (reading: {reading.label}{unit})",
            hint=f"the plan expects {reading.expected() or 'a number'}",
        )
    return float(m.group())


class Tracker:
    """The build database. ``create=False`` opens an existing file only."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path).expanduser()
        if not create and not self.path.is_file():
            raise RigkitError(
                f"no build database at {self.path}",
                hint="run `rigkit build start SPEC` first, or pass the right --db",
            )
        if self.path.exists():
            if self.path.is_dir():
                raise RigkitError(f"--db {self.path} is a directory", hint="give a file path")
            try:
                with self.path.open("rb") as f:
                    magic = f.read(len(_SQLITE_MAGIC))
            except OSError as err:
                raise RigkitError(f"cannot open {self.path}: {err.strerror or err}") from err
            if magic and magic != _SQLITE_MAGIC:
                raise RigkitError(f"{self.path} is not a rigkit build database")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise RigkitError(
                    f"cannot create the directory of {self.path}: {err.strerror or err}"
                ) from err
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA busy_timeout = 10000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RigkitError(f"{self.path}: cannot switch the database to WAL mode")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            if create:
                with self._tx():
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            row = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='checks'"
            ).fetchone()
            if row is None:
                raise RigkitError(f"{self.path} is not a rigkit build database")
        except sqlite3.DatabaseError as err:
            raise RigkitError(f"cannot open build database {self.path}: {err}") from err

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- builds ---------------------------------------------------------------------------------

    def _current(self) -> tuple[int, str, str | None, str, dict[str, Any]]:
        row = self._db.execute(
            "SELECT id, name, spec_path, started_at, book FROM builds ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise RigkitError(
                f"no build started in {self.path}", hint="run `rigkit build start SPEC` first"
            )
        return int(row[0]), str(row[1]), row[2], str(row[3]), json.loads(row[4])

    def current_name(self) -> str | None:
        row = self._db.execute("SELECT name FROM builds ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def start(self, book: Book, *, force: bool = False) -> int:
        """Start tracking ``book``'s build. A database that already tracks a build is refused
        unless ``force``: then a new build starts and the old one's records stay in the file."""
        existing = self.current_name()
        if existing is not None and not force:
            raise RigkitError(
                f"{self.path} already tracks the build {existing!r}",
                hint="pass --force to start a new build (earlier records are kept), or use "
                "another --db",
            )
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO builds(name, spec_path, started_at, book) VALUES (?, ?, ?, ?)",
                (book.name, book.spec_path, _now(), json.dumps(book.to_dict())),
            )
        return int(cur.lastrowid or 0)

    def items(self) -> list[Item]:
        return items_of(self._current()[4])

    def check(
        self,
        item_id: str,
        *,
        serial: str | None = None,
        value: str | None = None,
        note: str | None = None,
        at: str | None = None,
    ) -> CheckRecord:
        """Record ``item_id`` as done. Unknown ids are refused with the nearest ones; a reading
        outside the plan's range is recorded and flagged."""
        build_id, *_ = self._current()
        items = {i.id: i for i in self.items()}
        item = items.get(item_id)
        if item is None:
            near = difflib.get_close_matches(item_id, list(items), n=5, cutoff=0.5)
            raise RigkitError(
                f"unknown checklist item {item_id!r}",
                hint=("closest: " + ", ".join(near))
                if near
                else "`rigkit build status --all` lists every item",
            )
        number: float | None = None
        flagged = False
        reason: str | None = None
        if value is not None and item.reading is not None:
            number = parse_reading(item.reading, value)
            if not item.reading.in_range(number):
                flagged = True
                unit = f" {item.reading.unit}" if item.reading.unit else ""
                reason = (
                    f"{item.reading.label} {number:g}{unit}, the plan expects "
                    f"{item.reading.expected()}"
                )
        rec = CheckRecord(item_id, at or _now(), serial, value, number, note, flagged, reason)
        with self._tx():
            self._db.execute(
                "INSERT INTO checks(build_id, item_id, at, serial, value, number, note, flagged,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (build_id, item_id, rec.at, serial, value, number, note, int(flagged), reason),
            )
        return rec

    def status(self) -> BuildStatus:
        build_id, name, spec, started, book = self._current()
        latest: dict[str, CheckRecord] = {}
        for row in self._db.execute(
            "SELECT item_id, at, serial, value, number, note, flagged, reason FROM checks "
            "WHERE build_id = ? ORDER BY id",
            (build_id,),
        ):
            prev = latest.get(row[0])
            # a later check without a serial keeps the serial written before
            serial = row[2] if row[2] is not None else (prev.serial if prev else None)
            latest[row[0]] = CheckRecord(
                row[0], row[1], serial, row[3], row[4], row[5], bool(row[6]), row[7]
            )
        states = tuple(ItemState(i, latest.get(i.id)) for i in items_of(book))
        return BuildStatus(name, spec, started, states)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
