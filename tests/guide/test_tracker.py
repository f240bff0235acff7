"""`rigkit build`: a whole checklist with serials and readings, flagged readings, unknown ids,
a kill -9 in the middle of writing, and the certificate with the qa verdict."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rigkit.errors import RigkitError
from rigkit.guide import build_book
from rigkit.guide.tracker import Item, Tracker
from rigkit.spec import load_build

#: the `cli` fixture (conftest.py): argv -> (exit status, stdout, stderr)
RunCli = Callable[[list[str]], tuple[int, str, str]]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "1x5090-desktop.yaml"
QA_WARN = ROOT / "tests" / "fixtures" / "qa" / "qa-results-warn.json"
QA_FAIL = ROOT / "tests" / "fixtures" / "qa" / "qa-results-fail.json"


def good_value(item: Item) -> str | None:
    """A reading inside the plan's range (a plausible temperature where the plan gives none)."""
    if item.reading is None:
        return None
    r = item.reading
    if r.min is not None:
        return f"{r.min:g}"
    if r.max is not None:
        return f"{r.max - 10:g}"
    return "41"


def check_everything(db: Path, cli: RunCli) -> int:
    with Tracker(db) as t:
        items = t.items()
    for k, item in enumerate(items):
        argv = ["build", "check", item.id, "--db", str(db)]
        if item.serial:
            argv += ["--serial", f"SN-{k:03d}"]
        value = good_value(item)
        if value is not None:
            argv += ["--value", value]
        code, _, err = cli(argv)
        assert code == 0, err
    return len(items)


def test_whole_checklist_to_a_certificate(tmp_path: Path, cli: RunCli) -> None:
    db = tmp_path / "build.db"
    code, out, err = cli(["build", "start", str(SPEC), "--db", str(db), "--json"])
    assert code == 0, err
    started = json.loads(out)
    book = build_book(load_build(SPEC), str(SPEC))
    # the tracker's checklist is the printed book's, id for id
    assert [i["id"] for i in started["items"]] == book.item_ids()
    n = check_everything(db, cli)
    code, out, _ = cli(["build", "status", "--db", str(db), "--json"])
    status = json.loads(out)
    assert code == 0 and status["complete"] and status["done"] == status["total"] == n
    code, out, err = cli(
        [
            "build",
            "certificate",
            "--db",
            str(db),
            "--qa",
            str(QA_WARN),
            "--out",
            str(tmp_path / "c"),
            "--json",
        ],
    )
    assert code == 0, err
    cert = json.loads(out)
    assert cert["certified"] and cert["reasons"] == []
    assert cert["qa"]["verdict"] == "warn"
    assert cert["qa"]["problems"] == [
        {"check": "gpu-compute.gpu0", "reason": "bf16 matmul 0.86 of the catalog peak"}
    ]
    # every serial blank of the book is filled with what was recorded
    serial_items = [s for _, s in book.items() if s.serial]
    assert len(cert["serials"]) == len(serial_items)
    assert cert["serials"]["GPU 0 (NVIDIA GeForce RTX 5090)"].startswith("SN-")
    html = (tmp_path / "c" / "certificate.html").read_text(encoding="utf-8")
    assert "CERTIFIED" in html and "WARN" in html and "NOT CERTIFIED" not in html

    # the same build with a failed qa run is not certified, and says why
    code, out, _ = cli(
        [
            "build",
            "certificate",
            "--db",
            str(db),
            "--qa",
            str(QA_FAIL),
            "--out",
            str(tmp_path / "f"),
            "--json",
        ],
    )
    cert = json.loads(out)
    assert code == 1 and not cert["certified"]
    assert cert["reasons"] == ["rigkit qa verdict: fail (1 failed)"]


def test_reading_outside_the_plan_is_flagged(tmp_path: Path) -> None:
    """RTX 5090 (PCIe 5.0 x16) in PCIEX16_1 of the ProArt X670E (x16 Gen5, nothing in PCIEX16_2):
    the plan expects x16; a card that trained at x8 is recorded and flagged."""
    db = tmp_path / "b.db"
    with Tracker(db, create=True) as t:
        t.start(build_book(load_build(SPEC)))
        rec = t.check("gpu0-link-width", value="x8")
        assert rec.flagged and rec.number == 8
        assert rec.reason == "link width 8 lanes, the plan expects 16 lanes"
        st = t.status()
        assert [x.item.id for x in st.flagged] == ["gpu0-link-width"]
        # reseated: the later reading counts
        assert not t.check("gpu0-link-width", value="16").flagged
        assert t.status().flagged == []
        with pytest.raises(RigkitError, match="has no number"):
            t.check("gpu0-link-width", value="wide")


def test_unknown_item_lists_the_nearest(tmp_path: Path, cli: RunCli) -> None:
    db = tmp_path / "b.db"
    assert cli(["build", "start", str(SPEC), "--db", str(db)])[0] == 0
    code, _, err = cli(["build", "check", "gpu0-link-widht", "--db", str(db)])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "unknown checklist item 'gpu0-link-widht'" in lines[0]
    assert "closest: gpu0-link-width" in lines[0]
    with Tracker(db) as t:
        assert t.status().done == 0  # nothing was recorded


def test_start_refuses_a_second_build_without_force(tmp_path: Path, cli: RunCli) -> None:
    db = tmp_path / "b.db"
    argv = ["build", "start", str(SPEC), "--db", str(db)]
    assert cli(argv)[0] == 0
    code, _, err = cli(argv)
    assert code == 2 and "already tracks the build" in err and "--force" in err
    assert cli([*argv, "--force"])[0] == 0


def test_not_a_database_is_one_line(tmp_path: Path, cli: RunCli) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("not sqlite\n", encoding="utf-8")
    code, _, err = cli(["build", "status", "--db", str(f)])
    assert code == 2 and "is not a rigkit build database" in err
    assert f.read_text(encoding="utf-8") == "not sqlite\n"  # left as it was
    code, _, err = cli(["build", "status", "--db", str(tmp_path / "none.db")])
    assert code == 2 and "no build database" in err


WRITER = """
import sys
from rigkit.guide.tracker import Tracker
t = Tracker(sys.argv[1])
ids = [i.id for i in t.items()]
n = 0
while True:
    item = ids[n % len(ids)]
    t.check(item, serial=f"SN-{n}", value=f"{n}", note="x" * 2000)
    n += 1
    print(n, flush=True)
"""


def test_survives_kill_9_in_the_middle_of_writing(tmp_path: Path) -> None:
    """A writer checking items in a loop (one transaction each, fsync on commit) is killed with
    SIGKILL; the file is intact, every acknowledged record is there, and no record is half
    written."""
    db = tmp_path / "b.db"
    with Tracker(db, create=True) as t:
        t.start(build_book(load_build(SPEC)))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = 0
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while acknowledged < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert acknowledged >= 40
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = con.execute("SELECT serial, value, number, note FROM checks ORDER BY id").fetchall()
    con.close()
    # at least what the writer saw committed; at most one more (committed, not yet printed)
    assert acknowledged <= len(rows) <= acknowledged + 1
    for k, (serial, value, _number, note) in enumerate(rows):
        assert serial == f"SN-{k}" and value == f"{k}" and note == "x" * 2000
    with Tracker(db) as t:  # and the build goes on
        t.check("bench-esd")
        assert t.status().done >= 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not JSON"),
        ('{"verdict": "pass"}', "not a rigkit qa result"),
        ('{"results": [{"name": "x", "status": "maybe"}]}', "unknown status 'maybe'"),
    ],
)
def test_certificate_refuses_an_unusable_qa_file(
    tmp_path: Path, cli: RunCli, content: str, needle: str
) -> None:
    db = tmp_path / "b.db"
    assert cli(["build", "start", str(SPEC), "--db", str(db)])[0] == 0
    qa = tmp_path / "qa.json"
    qa.write_text(content, encoding="utf-8")
    out = tmp_path / "cert"
    code, _, err = cli(
        ["build", "certificate", "--db", str(db), "--qa", str(qa), "--out", str(out)]
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not out.exists()  # nothing written for unusable input


def test_status_text_names_what_is_left(tmp_path: Path, cli: RunCli) -> None:
    db = tmp_path / "b.db"
    assert cli(["build", "start", str(SPEC), "--db", str(db)])[0] == 0
    assert cli(["build", "check", "gpu0-seat", "--db", str(db)])[0] == 0  # no serial given
    assert cli(["build", "check", "gpu0-link-gen", "--value", "Gen4", "--db", str(db)])[0] == 1
    code, out, _ = cli(["build", "status", "--db", str(db)])
    assert code == 1
    # RTX 5090 (PCIe 5.0) in a Gen5 slot of a Gen5 CPU: the plan expects Gen5
    assert "FLAGGED gpu0-link-gen: PCIe generation 4, the plan expects 5" in out
    assert "MISSING gpu0-seat: serial of GPU 0 (NVIDIA GeForce RTX 5090)" in out
    assert "[ ] bench-esd" in out and "gpu0-seat " not in out.split("open items:")[1]
