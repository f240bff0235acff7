"""Hostile replay files and the monitor's outputs: each bad file is refused with one ``FILE:LINE``
line and exit status 2, without a traceback, and nothing already stored is lost.

Every replay case runs into a database that already holds the 240 samples of ``good.jsonl``
(t = 2026-01-01 00:00:00 UTC + 0, 2, ..., 478 s), then plays a file whose first line is a good
sample (t = +500 s) and whose next line is the hostile one: afterwards the database holds
240 + 1 = 241 samples and the first 240 times are those of ``good.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rigkit.cli import entry

T0 = 1767225600.0  # 2026-01-01T00:00:00Z
GOOD_TIMES = [T0 + 2 * i for i in range(240)]


def line(t: float, **gpu: object) -> str:
    return json.dumps({"t": t, "gpus": [{"index": 0, "temperature_c": 60.0, **gpu}]})


def rigkit(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    try:
        entry.run()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def replay_into(db: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    argv = ["monitor", "run", "--source", f"replay:{path}", "--speed", "0", "--db", str(db)]
    return rigkit([*argv, "--listen", "off", "--log-level", "warning"], monkeypatch)


def times(db: Path) -> list[float]:
    with sqlite3.connect(db) as c:
        return [float(r[0]) for r in c.execute("SELECT t FROM samples ORDER BY id")]


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with the 240 samples of good.jsonl."""
    good = tmp_path / "good.jsonl"
    good.write_text("".join(line(t) + "\n" for t in GOOD_TIMES), encoding="utf-8")
    db = tmp_path / "m.db"
    assert replay_into(db, good, monkeypatch) == 0
    assert times(db) == GOOD_TIMES
    return db


DEEP = "[" * 100_000
HOSTILE: list[tuple[str, bytes, str]] = [
    # (case, the second line, the error after "FILE:2: ")
    ("deep nesting", DEEP.encode(), "nested too deeply to be a sample"),
    (
        "temperature 1e308",
        line(T0 + 502, temperature_c=1e308).encode(),
        "gpus[0].temperature_c: 1e+308 is out of range (a reading is at most 1e+15)",
    ),
    (
        "GPU index 1e30",
        b'{"t": %d, "gpus": [{"index": 1000000000000000000000000000000}]}' % (T0 + 502),
        "gpus[0].index: an integer of about 31 digits is not a GPU index (0 to 4095)",
    ),
    (
        "GPU index 1e30 as a float",
        b'{"t": %d, "gpus": [{"index": 1e30}]}' % (T0 + 502),
        "gpus[0]: 'index' must be an integer, got 1e+30",
    ),
    (
        "an integer of 5,000 digits",
        b'{"t": %d, "gpus": [{"index": 0, "fan_pct": %s}]}' % (T0 + 502, b"9" * 5000),
        "not a usable number",
    ),
    (
        "invalid UTF-8",
        b'{"t": %d, "gpus": [], "note": "\xff\xfe"}' % (T0 + 502),
        # '{"t": ' (6 bytes) + 10 digits + ', "gpus": [], "note": "' (23) = 39 bytes before it
        "not UTF-8 text (byte 40 of the line)",
    ),
    (
        "duplicate GPU index",
        json.dumps(
            {"t": T0 + 502, "gpus": [{"index": 0, "temperature_c": 50}, {"index": 0}]}
        ).encode(),
        "gpus[1].index: GPU 0 is already gpus[0]",
    ),
    (
        "a sample dated 2100",
        line(4102444800.0).encode(),
        "t 4102444800 is 2100-01-01 00:00 UTC, in the future",
    ),
    ("XID out of range", line(T0 + 502, xid=[2**40]).encode(), "gpus[0].xid: expected a list"),
]


@pytest.mark.parametrize(("case", "bad", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_line_stops_the_replay_and_keeps_the_history(
    case: str,
    bad: bytes,
    message: str,
    stored: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f = tmp_path / "hostile.jsonl"
    f.write_bytes(line(T0 + 500).encode() + b"\n" + bad + b"\n" + line(T0 + 504).encode() + b"\n")
    capsys.readouterr()
    t0 = time.monotonic()
    code = replay_into(stored, f, monkeypatch)
    assert time.monotonic() - t0 < 20
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith(f"rigkit: error: {f}:2: {message}"), err
    # the 240 samples stored before, and the good line before the bad one, are all there
    assert times(stored) == [*GOOD_TIMES, T0 + 500]
    with sqlite3.connect(stored) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(("case", "bad", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_first_line_creates_no_database(
    case: str,
    bad: bytes,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f = tmp_path / "hostile.jsonl"
    f.write_bytes(bad + b"\n")
    db = tmp_path / "new.db"
    code = replay_into(db, f, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"rigkit: error: {f}:1: {message}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.jsonl"]


def test_a_future_time_from_a_live_clock_does_not_age_out_the_history(tmp_path: Path) -> None:
    # A source whose clock jumps to 2100 (not a replay: nothing refuses it). The agent compacts
    # once an hour of sample time has passed, measuring retention back from now at the latest:
    # the 240 samples of 2026-01-01 are within the 5-year hourly retention of the wall clock and
    # are folded into 1-minute buckets (raw is kept 7 days), not dropped. Before, retention was
    # measured from 2100 and every bucket was older than 5 years: all history deleted.
    from rigkit.monitor.agent import Agent
    from rigkit.monitor.sample import GpuSample, Sample
    from rigkit.monitor.sources.base import SourceExhausted
    from rigkit.monitor.store import Store

    samples = [Sample(t=t, gpus=(GpuSample(index=0, temperature_c=60.0),)) for t in GOOD_TIMES]
    samples.append(Sample(t=4102444800.0, gpus=(GpuSample(index=0, temperature_c=60.0),)))

    class ListSource:
        name = "list"

        def read(self) -> Sample:
            if not samples:
                raise SourceExhausted("end")
            return samples.pop(0)

        def close(self) -> None:
            pass

    store = Store(tmp_path / "m.db")
    Agent(ListSource(), store, interval_s=1.0, sleep=lambda s: None).run()
    with sqlite3.connect(tmp_path / "m.db") as c:
        rows = c.execute(
            "SELECT SUM(a.n) FROM agg a JOIN series s ON s.id = a.series"
            " WHERE s.name = 'gpu0.temperature_c'"
        ).fetchone()[0]
    # 240 samples at 2 s = 8 complete minutes of 30 samples each, folded into 1-minute rows
    assert rows == 240
    assert store.count_samples() == 1  # the 2100 sample itself is still raw
    store.close()


def test_a_killed_recording_leaves_no_temporary_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "rec.jsonl"
    out.write_text("# the recording to replace\n", encoding="utf-8")
    # a real recording, killed with SIGKILL while it writes its temporary file
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rigkit.cli.entry import run; run()", "monitor", "record", "--source",
         "replay:idle-4x4090", "--speed", "1", "--out", str(out), "--force"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(tmp_path.glob(".rec.jsonl.*.tmp")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    left = list(tmp_path.glob(".rec.jsonl.*.tmp"))
    assert len(left) == 1  # what kill -9 leaves
    assert out.read_text(encoding="utf-8") == "# the recording to replace\n"
    # one of a recording that is still running (this process) is not touched
    mine = tmp_path / f".rec.jsonl.{os.getpid()}.7.tmp"
    mine.write_text("", encoding="utf-8")
    argv = ["monitor", "record", "--source", "replay:idle-4x4090", "--speed", "0", "--count", "2"]
    assert rigkit([*argv, "--out", str(out), "--force"], monkeypatch) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "rec.jsonl"]
    assert len(out.read_text(encoding="utf-8").splitlines()) >= 2


def test_history_plot_refuses_an_existing_file_without_force(
    stored: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plot = tmp_path / "t.png"
    plot.write_bytes(b"last month's plot")
    argv = ["monitor", "history", "--db", str(stored), "--metric", "temperature_c"]
    capsys.readouterr()
    assert rigkit([*argv, "--plot", str(plot)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rigkit: error: --plot {plot} already exists"
        " (hint: pass --force to replace it, or choose another --plot)\n"
    )
    assert plot.read_bytes() == b"last month's plot"
    assert rigkit([*argv, "--plot", str(plot), "--force"], monkeypatch) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_history_plot_with_force_replaces_a_symlink_never_writes_through_it(
    stored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "precious.txt"
    victim.write_text("keep me", encoding="utf-8")
    plots = tmp_path / "plots"
    plots.mkdir()
    link = plots / "t.png"
    link.symlink_to(victim)
    argv = ["monitor", "history", "--db", str(stored), "--metric", "temperature_c"]
    assert rigkit([*argv, "--plot", str(link), "--force"], monkeypatch) == 0
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in plots.iterdir()) == ["t.png"]  # no temporary file left
