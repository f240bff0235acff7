"""`rigkit monitor` commands end to end on replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rigkit.cli.main import app
from rigkit.cli.monitor import parse_since
from rigkit.errors import MonitorError

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
T0 = 1767225600.0  # first t of the packaged replays
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout


@pytest.fixture(scope="module")
def idle_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("idle") / "m.db"
    code, out = _run(
        "monitor",
        "run",
        "--source",
        "replay:idle-4x4090",
        "--speed",
        "0",
        "--db",
        str(db),
        "--json",
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["samples"] == 240 and summary["stopped_by"] == "end of source"
    return db


def test_status_json_after_an_idle_replay(idle_db: Path) -> None:
    code, out = _run("monitor", "status", "--db", str(idle_db), "--json")
    assert code == 0  # idle box: no active alert
    doc = json.loads(out)
    assert doc["samples"] == 240
    assert doc["latest"]["t"] == T0 + 239  # 240 samples at 1 Hz
    assert [g["index"] for g in doc["latest"]["gpus"]] == [0, 1, 2, 3]
    assert doc["active_alerts"] == []


def test_status_table(idle_db: Path) -> None:
    code, out = _run("monitor", "status", "--db", str(idle_db))
    assert code == 0
    assert "NVIDIA GeForce RTX 4090" in out and "no active alerts" in out


def test_history_json_and_plot(idle_db: Path, tmp_path: Path) -> None:
    png = tmp_path / "t.png"
    code, out = _run(
        "monitor",
        "history",
        "--db",
        str(idle_db),
        "--metric",
        "power_w",
        "--gpu",
        "2",
        "--since",
        "60s",
        "--json",
        "--plot",
        str(png),
    )
    assert code == 0
    points = json.loads(out)
    # --since 60s back from the last sample (T0 + 239): t >= T0 + 179 -> 61 samples of GPU 2
    assert len(points) == 61
    assert {p["gpu"] for p in points} == {2}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out = _run("monitor", "history", "--db", str(idle_db), "--metric", "cpu_temp_c")
    assert code == 0 and out.startswith("host: 240 points")


def test_events_json_lists_raised_resolved_and_actions(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, _ = _run(
        "monitor",
        "run",
        "--source",
        f"replay:{SCENARIOS / 'runaway.jsonl'}",
        "--speed",
        "0",
        "--db",
        str(db),
    )
    assert code == 0
    code, out = _run("monitor", "events", "--db", str(db), "--json")
    assert code == 0
    events = json.loads(out)
    assert events, "the runaway replay raises alerts and decides actions"
    for e in events:
        assert {"t", "kind", "rule", "severity", "gpu", "message"} <= set(e)
    actions = [e for e in events if e["kind"] == "action"]
    assert actions and all(a["dry_run"] is True and a["tier"] in (1, 2, 3) for a in actions)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    code, out = _run("monitor", "events", "--db", str(db), "--kind", "action", "--json")
    assert len(json.loads(out)) == len(actions)
    code, _ = _run("monitor", "status", "--db", str(db))
    assert code == 1  # critical alerts still active at the end of the runaway


def test_record_then_replay_the_recording(tmp_path: Path) -> None:
    out_file = tmp_path / "rec.jsonl"
    code, out = _run(
        "monitor",
        "record",
        "--source",
        "replay:loaded-4x4090",
        "--count",
        "5",
        "--out",
        str(out_file),
    )
    assert code == 0 and "5 samples" in out
    lines = out_file.read_text().splitlines()
    assert lines[0].startswith("# recorded by rigkit monitor record")
    assert len(lines) == 6  # header + 5 samples
    db = tmp_path / "m.db"
    code, out = _run(
        "monitor",
        "run",
        "--source",
        f"replay:{out_file}",
        "--speed",
        "0",
        "--db",
        str(db),
        "--json",
    )
    assert json.loads(out)["samples"] == 5


def test_unusable_input_is_a_monitor_error(tmp_path: Path) -> None:
    with pytest.raises(MonitorError):
        _run("monitor", "status", "--db", str(tmp_path / "none.db"))
    with pytest.raises(MonitorError):
        _run("monitor", "run", "--source", "replay:nope", "--db", str(tmp_path / "x.db"))


def test_parse_since() -> None:
    assert parse_since("30m", 10_000.0) == 10_000.0 - 1800
    assert parse_since("2h", 10_000.0) == 10_000.0 - 7200
    assert parse_since("1767225600", None) == 1767225600.0
    assert parse_since("2026-01-01T00:00:00", None) == 1767225600.0  # UTC
    assert parse_since(None, 5.0) is None
    with pytest.raises(MonitorError):
        parse_since("yesterday", None)


def test_run_with_a_spec_and_a_notify_target_that_is_down(tmp_path: Path) -> None:
    import socket

    from rigkit.monitor.notify import Notifier

    spec = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"
    with socket.socket() as s:  # nothing listens on this port
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    db = tmp_path / "m.db"
    code, out = _run(
        "monitor",
        "run",
        "--spec",
        str(spec),
        "--source",
        f"replay:{SCENARIOS / 'xid79.jsonl'}",
        "--speed",
        "0",
        "--db",
        str(db),
        "--notify",
        url,
        "--json",
    )
    assert code == 0
    # xid79.jsonl: one XID 79 alert raised and resolved after the quiet period
    assert (json.loads(out)["raised"], json.loads(out)["resolved"]) == (1, 1)
    with Notifier(db, [url]) as n:
        assert n.pending() == 2  # raised + resolved wait in the outbox for the endpoint


def test_enforce_is_refused_for_a_replay(tmp_path: Path) -> None:
    # a recording is not this machine: acting on it could shut down a healthy box
    with pytest.raises(MonitorError) as err:
        _run(
            "monitor",
            "run",
            "--source",
            "replay:runaway",
            "--enforce",
            "--db",
            str(tmp_path / "x.db"),
        )
    assert "--enforce" in str(err.value)
    assert not (tmp_path / "x.db").exists()
