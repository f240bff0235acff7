"""`rigkit monitor run` / `record` on unusable input: one line, exit status 2, nothing left behind.

Every case runs the console-script entry point in-process, as a user would, and then lists the
test's directory: a refused run must not have created a database (or its -wal/-shm files), an
output file or a temporary file, and a file that was there before must be byte-for-byte unchanged.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from rigkit.cli import entry
from rigkit.errors import MonitorError
from rigkit.monitor.agent import NewDbGuard
from rigkit.monitor.record import record
from rigkit.monitor.sample import Sample
from rigkit.monitor.sources.base import SourceExhausted
from rigkit.monitor.sources.replay import ReplaySource
from rigkit.monitor.store import Store

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
GOOD = '{"t": 0, "gpus": [{"index": 0, "temperature_c": 40}]}'


def run_cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `rigkit ARGV`."""
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    code: int | str | None = 0
    try:
        entry.run()
    except SystemExit as exc:
        code = exc.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(code: int, err: str) -> str:
    """The one line of a refused command (exit status 2, no traceback)."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rigkit: error: ")
    return lines[0]


def listing(root: Path) -> list[str]:
    """Every file and directory under ``root`` (relative, sorted), hidden ones included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def replay(tmp_path: Path, *lines: str, name: str = "in.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return p


# -- monitor run -----------------------------------------------------------------------------


def _run_argv(src: str, db: Path, *extra: str) -> list[str]:
    return ["monitor", "run", "--source", src, "--speed", "0", "--db", str(db), *extra]


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        # line 1 is a comment, line 2 is blank: the bad JSON is on line 3
        (["# header", "", "{not json"], "in.jsonl:3: not valid JSON"),
        (['{"t": 0, "gpus": [{"index": 0, "fan_pct": "high"}]}'], "in.jsonl:1: gpus[0].fan_pct"),
        (['{"t": 0, "age_s": -3}'], "in.jsonl:1: age_s must be a number of seconds >= 0"),
        (["# only a comment", ""], "in.jsonl has no samples"),
    ],
)
def test_run_bad_replay_before_the_first_sample_creates_no_db(
    lines: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = replay(tmp_path, *lines)
    db = tmp_path / "new" / "m.db"
    code, _, err = run_cli(_run_argv(f"replay:{src}", db), monkeypatch, capsys)
    assert needle in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]  # no db, no -wal/-shm, no "new" directory


def test_run_replay_not_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xff\xfe\x00bin\n")
    db = tmp_path / "m.db"
    code, _, err = run_cli(_run_argv(f"replay:{src}", db), monkeypatch, capsys)
    assert "in.jsonl:1: not UTF-8 text (byte 1 of the line)" in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_run_replay_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = replay(tmp_path, GOOD)
    src.chmod(0)
    db = tmp_path / "m.db"
    try:
        code, _, err = run_cli(_run_argv(f"replay:{src}", db), monkeypatch, capsys)
    finally:
        src.chmod(0o644)
    assert f"cannot read replay file {src}: Permission denied" in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


@pytest.mark.parametrize(
    ("source", "extra", "needle"),
    [
        ("replay:{tmp}/missing.jsonl", [], "replay file not found: {tmp}/missing.jsonl"),
        ("prometheus", [], "unknown source 'prometheus'"),
        ("replay:{good}", ["--speed", "-1"], "--speed must be 0 (as fast as possible) or more"),
        # NaN passes a `< 0` test: every comparison with NaN is false
        ("replay:{good}", ["--speed", "nan"], "--speed must be 0 (as fast as possible) or more"),
        ("replay:{good}", ["--interval", "0"], "--interval must be a number of seconds above 0"),
        ("replay:{good}", ["--duration", "nan"], "--duration must be a number of seconds above 0"),
        ("replay:{good}", ["--count", "0"], "--count must be 1 or more, got 0"),
        ("replay:{good}", ["--rules", "{tmp}/nope.yaml"], "nope.yaml: no such file"),
        ("replay:{good}", ["--notify", "ftp://example.org"], "notify target 'ftp://example.org'"),
        ("replay:{good}", ["--listen", "localhost"], "--listen: expected HOST:PORT"),
        ("replay:{good}", ["--listen", "127.0.0.1:99999"], "--listen: port out of range: 99999"),
    ],
)
def test_run_refuses_before_creating_the_db(
    source: str,
    extra: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = replay(tmp_path, GOOD)
    db = tmp_path / "m.db"
    fill = {"tmp": str(tmp_path), "good": str(good)}
    argv = _run_argv(source.format(**fill), db, *(e.format(**fill) for e in extra))
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert needle.format(**fill) in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


def test_run_bad_rules_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    rules = tmp_path / "rules.yaml"
    rules.write_text("# overrides\nrules:\n  gpu_temp_high: [unclosed\n", encoding="utf-8")
    db = tmp_path / "m.db"
    code, _, err = run_cli(
        _run_argv(f"replay:{good}", db, "--rules", str(rules)), monkeypatch, capsys
    )
    line = error_line(code, err)
    # the parser stops at the end of the text (line 4) inside the list opened on line 3
    # (libyaml, which every YAML reader uses, says "did not find expected ',' or ']'")
    assert line.startswith(f"rigkit: error: {rules}:4: not valid YAML: ")
    assert "expected ',' or ']'" in line
    assert line.endswith("(while parsing a flow sequence that starts on line 3)")
    assert listing(tmp_path) == ["in.jsonl", "rules.yaml"]


def test_run_listen_port_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    db = tmp_path / "m.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        argv = _run_argv(f"replay:{good}", db, "--listen", address)
        code, _, err = run_cli(argv, monkeypatch, capsys)
    assert f"cannot listen on {address}" in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


def test_run_db_is_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    (tmp_path / "d").mkdir()
    code, _, err = run_cli(_run_argv(f"replay:{good}", tmp_path / "d"), monkeypatch, capsys)
    assert f"--db {tmp_path / 'd'} is a directory" in error_line(code, err)
    assert listing(tmp_path) == ["d", "in.jsonl"]


def test_run_db_directory_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    (tmp_path / "a-file").write_text("x\n", encoding="utf-8")
    db = tmp_path / "a-file" / "sub" / "m.db"  # its parent would be a directory inside a file
    code, _, err = run_cli(_run_argv(f"replay:{good}", db), monkeypatch, capsys)
    assert f"cannot create monitor database {db}" in error_line(code, err)
    assert listing(tmp_path) == ["a-file", "in.jsonl"]


def _fail_before_the_first_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: object, **kwargs: object) -> None:
        raise MonitorError("the source failed before its first sample")

    monkeypatch.setattr("rigkit.monitor.agent.Agent.run", fail)


def test_run_failing_before_the_first_sample_removes_the_db_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    db = tmp_path / "new" / "deeper" / "m.db"
    _fail_before_the_first_sample(monkeypatch)
    code, _, err = run_cli(_run_argv(f"replay:{good}", db), monkeypatch, capsys)
    assert "failed before its first sample" in error_line(code, err)
    # the db, its -wal/-shm and the two directories made for it are gone
    assert listing(tmp_path) == ["in.jsonl"]


def test_run_failing_never_removes_a_db_that_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    db = tmp_path / "m.db"
    with Store(db):  # an existing, empty monitor database
        pass
    before = db.read_bytes()
    _fail_before_the_first_sample(monkeypatch)
    code, _, err = run_cli(_run_argv(f"replay:{good}", db), monkeypatch, capsys)
    error_line(code, err)
    assert db.read_bytes() == before
    assert listing(tmp_path) == ["in.jsonl", "m.db"]


def test_run_existing_file_that_is_not_a_db_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    db = tmp_path / "notes.txt"
    db.write_text("not a database, but someone's notes\n" * 100, encoding="utf-8")
    before = db.read_bytes()
    code, _, err = run_cli(_run_argv(f"replay:{good}", db), monkeypatch, capsys)
    assert f"cannot open monitor database {db}" in error_line(code, err)
    assert db.read_bytes() == before
    assert listing(tmp_path) == ["in.jsonl", "notes.txt"]


def test_run_bad_line_after_samples_keeps_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a bad line deep in a long file is found when reached: the samples before it are kept
    src = replay(tmp_path, '{"t": 0}', '{"t": 1}', "{broken")
    db = tmp_path / "m.db"
    code, _, err = run_cli(_run_argv(f"replay:{src}", db, "--no-rules"), monkeypatch, capsys)
    assert f"{src}:3: not valid JSON" in error_line(code, err)
    with Store(db, create=False) as store:
        assert store.count_samples() == 2  # lines 1 and 2
        assert store.integrity_check() == "ok"


# -- monitor record --------------------------------------------------------------------------


def _record_argv(src: str, out: Path, *extra: str) -> list[str]:
    return ["monitor", "record", "--source", src, "--out", str(out), *extra]


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (["{not json"], "in.jsonl:1: not valid JSON"),
        # two good samples are read and written to the temporary file before line 3 fails
        ([GOOD, GOOD, '{"t": 2, "gpus": "none"}'], "in.jsonl:3: gpus"),
        (["# only a comment"], "in.jsonl has no samples"),
    ],
)
def test_record_bad_replay_writes_nothing(
    lines: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = replay(tmp_path, *lines)
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(_record_argv(f"replay:{src}", out), monkeypatch, capsys)
    assert needle in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]  # no output and no temporary file


@pytest.mark.parametrize(
    ("source", "extra", "needle"),
    [
        ("replay:{tmp}/missing.jsonl", [], "replay file not found: {tmp}/missing.jsonl"),
        ("prometheus", ["--count", "1"], "unknown source 'prometheus'"),
        ("replay:{good}", ["--speed", "-2"], "--speed must be 0 (as fast as possible) or more"),
        ("replay:{good}", ["--speed", "nan"], "--speed must be 0 (as fast as possible) or more"),
        ("replay:{good}", ["--count", "0"], "--count must be 1 or more, got 0"),
        ("replay:{good}", ["--duration", "inf"], "--duration must be a number of seconds above 0"),
    ],
)
def test_record_refuses_before_writing(
    source: str,
    extra: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = replay(tmp_path, GOOD)
    fill = {"tmp": str(tmp_path), "good": str(good)}
    out = tmp_path / "out.jsonl"
    argv = _record_argv(source.format(**fill), out, *extra)
    code, _, err = run_cli(argv, monkeypatch, capsys)
    assert needle.format(**fill) in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


def test_record_out_in_a_missing_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    out = tmp_path / "no-such-dir" / "out.jsonl"
    code, _, err = run_cli(_record_argv(f"replay:{good}", out), monkeypatch, capsys)
    assert f"directory {tmp_path / 'no-such-dir'} does not exist" in error_line(code, err)
    assert listing(tmp_path) == ["in.jsonl"]


def test_record_out_is_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    (tmp_path / "d").mkdir()
    code, _, err = run_cli(
        _record_argv(f"replay:{good}", tmp_path / "d", "--force"), monkeypatch, capsys
    )
    assert "it is a directory" in error_line(code, err)
    assert listing(tmp_path) == ["d", "in.jsonl"]


def test_record_refuses_to_replace_a_file_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = replay(tmp_path, GOOD)
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier recording\n", encoding="utf-8")
    code, _, err = run_cli(_record_argv(f"replay:{good}", out), monkeypatch, capsys)
    line = error_line(code, err)
    assert f"replay file {out} already exists" in line and "--force" in line
    assert out.read_text(encoding="utf-8") == "an earlier recording\n"
    assert listing(tmp_path) == ["in.jsonl", "out.jsonl"]


def test_record_force_with_a_bad_replay_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = replay(tmp_path, GOOD, GOOD, "{broken")
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier recording\n", encoding="utf-8")
    code, _, err = run_cli(_record_argv(f"replay:{src}", out, "--force"), monkeypatch, capsys)
    assert f"{src}:3: not valid JSON" in error_line(code, err)
    assert out.read_text(encoding="utf-8") == "an earlier recording\n"
    assert listing(tmp_path) == ["in.jsonl", "out.jsonl"]


def test_record_force_replaces_the_file_when_the_recording_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = replay(tmp_path, '{"t": 0}', '{"t": 1}', '{"t": 2}')
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier recording\n", encoding="utf-8")
    code, stdout, _ = run_cli(_record_argv(f"replay:{src}", out, "--force"), monkeypatch, capsys)
    assert code == 0
    assert stdout.strip() == f"3 samples written to {out}"
    lines = out.read_text(encoding="utf-8").splitlines()
    # one "# recorded by ..." header line, then the 3 samples
    assert len(lines) == 4 and lines[0].startswith("# recorded by rigkit monitor record")
    assert listing(tmp_path) == ["in.jsonl", "out.jsonl"]


# -- the library pieces ----------------------------------------------------------------------


class _Counter:
    """A source of samples t = 0, 1, 2, ...; sets ``stop_at`` (if given) on read number ``n``."""

    name = "counter"

    def __init__(self, stop_at: threading.Event | None = None, n: int = 0) -> None:
        self.reads = 0
        self.stop_at = stop_at
        self.n = n

    def read(self) -> Sample:
        self.reads += 1
        if self.stop_at is not None and self.reads == self.n:
            self.stop_at.set()
        if self.reads > 10:
            raise SourceExhausted("counter")
        return Sample(t=float(self.reads - 1), gpus=(), host=None, source="counter", wall_time=0.0)

    def close(self) -> None:
        pass


def test_record_stopped_keeps_what_was_recorded(tmp_path: Path) -> None:
    stop = threading.Event()
    out = tmp_path / "out.jsonl"
    n = record(_Counter(stop, n=2), out, interval_s=0.0, stop=stop)
    assert n == 2  # the stop came with the second read; that sample is written, then the loop ends
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert listing(tmp_path) == ["out.jsonl"]


def test_record_stopped_before_the_first_sample_writes_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    assert record(_Counter(), out, interval_s=0.0, stop=stop, overwrite=True) == 0
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert listing(tmp_path) == ["out.jsonl"]


def test_record_without_overwrite_refuses_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(MonitorError, match="already exists"):
        record(_Counter(), out, interval_s=0.0)
    assert out.read_text(encoding="utf-8") == "keep me\n"


def test_replay_source_reports_a_bad_first_line_when_opened(tmp_path: Path) -> None:
    src = replay(tmp_path, "# label", "[1, 2]")
    with pytest.raises(MonitorError, match=r"in.jsonl:2"):
        ReplaySource(src, speed=0)


def test_new_db_guard_removes_only_what_it_created(tmp_path: Path) -> None:
    db = tmp_path / "a" / "m.db"
    guard = NewDbGuard(db)
    guard.open_store().close()
    (tmp_path / "a" / "m.db-wal").write_bytes(b"")  # as a crashed run would leave it
    removed = guard.remove_created()
    # the db, the -wal file and the directory "a"; no -shm existed to remove
    assert removed == [db, tmp_path / "a" / "m.db-wal", tmp_path / "a"]
    assert listing(tmp_path) == []
    old = tmp_path / "old.db"
    with Store(old):
        pass
    assert NewDbGuard(old).remove_created() == []  # there before: never removed
    assert old.exists()
