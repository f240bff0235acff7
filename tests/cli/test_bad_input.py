"""Unusable input on any command: one line on stderr naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from rigkit.cli import entry

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"
CASE = '{"model":"llama-3-8b","quant":"q4_k_m","gpu":"rtx-4090"}\n'


def run_cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run the console-script entry point as a user would; return (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    code = exc.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


@pytest.fixture()
def binary(tmp_path: Path) -> Path:
    """A file that is not UTF-8 text (a UTF-16 byte-order mark and a NUL)."""
    p = tmp_path / "binary.yaml"
    p.write_bytes(b"\xff\xfe\x00bin")
    return p


@pytest.fixture()
def blocked(tmp_path: Path) -> Path:
    """A directory path that cannot be created: its parent is a regular file."""
    f = tmp_path / "a-file"
    f.write_text("x\n", encoding="utf-8")
    return f / "sub"


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rigkit: error: ")
    for n in needles:
        assert n in lines[0], lines[0]


def test_binary_monitor_rules_file(
    binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["monitor", "export-config", "--rules", str(binary), "--out", str(tmp_path / "o")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml", "not UTF-8")


def test_binary_calibrate_input(
    binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["calibrate", str(binary), "--out", str(tmp_path / "p.yaml")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml", "not UTF-8")
    assert not (tmp_path / "p.yaml").exists()


def test_binary_estimate_profile(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090"]
    code, err = run_cli([*argv, "--profile", str(binary)], monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml", "not UTF-8")


def test_binary_estimate_batch_file(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the fast path (entry.py) reads the file itself, before the full CLI is built
    code, err = run_cli(["estimate", "--batch", str(binary)], monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml", "not UTF-8")


def test_binary_estimate_batch_file_full_cli(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --json is not a fast-path option, so this goes through cli/estimate.py
    code, err = run_cli(["estimate", "--batch", str(binary), "--json"], monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml", "not UTF-8")


def test_binary_qa_baseline(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        ["qa", "--checks", "inventory", "--baseline", str(binary)], monkeypatch, capsys
    )
    assert_one_line(code, err, "baseline", "not a text file")


def test_plan_out_not_writable(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["plan", str(REF), "--json", "--out", str(blocked)], monkeypatch, capsys)
    assert_one_line(code, err, "cannot write the report", str(blocked))


def test_qa_out_not_writable(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["qa", "--checks", "inventory", "--out", str(blocked)], monkeypatch, capsys)
    assert_one_line(code, err, "--out", str(blocked))


def test_qa_save_baseline_not_writable(
    blocked: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = blocked / "baseline.json"
    argv = ["qa", "--checks", "inventory", "--save-baseline", "--baseline", str(target), "--json"]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "cannot save baseline", str(target))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        # llama-3-8b q4_k_m fits one 24 GB card, so the CPU is never consulted: the id is still checked
        (["--cpu", "no-such-cpu"], "unknown cpu id 'no-such-cpu'"),
        # NaN passes a `<= 0` test (every comparison with NaN is false)
        (["--ram-gb", "nan"], "ram_gb must be > 0, got nan"),
        (["--ram-gb", "inf"], "ram_gb must be > 0, got inf"),
        (["--disk-read-gb-s", "nan"], "disk_read_gb_s must be > 0, got nan"),
    ],
)
def test_estimate_bad_host_values(
    extra: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090"]
    code, err = run_cli([*argv, *extra], monkeypatch, capsys)
    assert_one_line(code, err, needle)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        # 0 s between live samples would spin a core; a negative interval is meaningless
        (["--interval", "0"], "--interval must be a number of seconds above 0, got 0.0"),
        (["--interval", "-1"], "--interval must be a number of seconds above 0, got -1.0"),
        (["--count", "0"], "--count must be 1 or more, got 0"),
        (["--duration", "-5"], "--duration must be a number of seconds above 0, got -5.0"),
        (["--log-level", "loud"], "--log-level must be one of debug, info, warning, error"),
    ],
)
def test_monitor_run_bad_limits(
    extra: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "m.db"
    argv = ["monitor", "run", "--source", "host", "--listen", "off", "--db", str(db)]
    code, err = run_cli([*argv, *extra], monkeypatch, capsys)
    assert_one_line(code, err, needle)
    assert not db.exists()  # refused before anything is opened


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--interval", "0", "--count", "1"], "--interval must be a number of seconds above 0"),
        (["--count", "-1"], "--count must be 1 or more, got -1"),
    ],
)
def test_monitor_record_bad_limits(
    extra: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "r.jsonl"
    code, err = run_cli(
        ["monitor", "record", "--source", "host", "-o", str(out), *extra], monkeypatch, capsys
    )
    assert_one_line(code, err, needle)
    assert not out.exists()


def test_monitor_events_bad_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["monitor", "events", "--db", str(tmp_path / "m.db"), "--limit", "0"]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "--limit must be 1 or more, got 0")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        # a NaN threshold compares false with every reading: the alert could never fire
        (
            "rules:\n  gpu_temp_high:\n    threshold: .nan\n",
            "rules.yaml:3: rules.gpu_temp_high.threshold: input should be a finite number, got nan",
        ),
        (
            "response:\n  tier1: {offset_c: .nan, for: 30s}\n",
            "rules.yaml:2: response.tier1.offset_c: input should be a finite number, got nan",
        ),
        (
            "response:\n  slowdown_temp_c: .inf\n",
            "rules.yaml:2: response.slowdown_temp_c: input should be a finite number, got inf",
        ),
    ],
)
def test_monitor_rules_not_a_number(
    text: str,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text, encoding="utf-8")
    replay = ROOT / "tests" / "fixtures" / "replay" / "spike.jsonl"
    argv = ["monitor", "run", "--source", f"replay:{replay}", "--speed", "0", "--count", "1"]
    argv += ["--listen", "off", "--db", str(tmp_path / "m.db"), "--rules", str(rules)]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, needle)


def test_binary_soak_replay(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # unusable input, not a failed soak check (which would exit 1)
    argv = ["qa", "--checks", "soak", "--soak-replay", str(binary)]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml:1: not UTF-8 text")


def test_binary_replay_record(
    binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["monitor", "record", "--source", f"replay:{binary}", "-o", str(tmp_path / "r.jsonl")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml:1: not UTF-8 text")


def test_calibrate_bad_gpu_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = ROOT / "tests" / "fixtures" / "calibration" / "rtx4090-q4-decode.csv"
    argv = ["calibrate", str(csv), "--gpus", "0", "--out", str(tmp_path / "p.yaml")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "--gpus must be 1 or more, got 0")


def test_calibrate_gpu_default_does_not_skip_row_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every row names its GPU ("RTX 4090 24GB" -> rtx-4090), so --gpu (for rows that lack one)
    # is not used; the row names must still be read as ids rather than taken verbatim
    csv = ROOT / "tests" / "fixtures" / "calibration" / "rtx4090-q4-decode.csv"
    argv = ["calibrate", str(csv), "--gpu", "rtx-3090", "--json"]
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    entry.run()  # exit status 0: returns without SystemExit
    doc = json.loads(capsys.readouterr().out)
    # rtx4090-q4-decode.csv: 4 rows, tg512, tg1024, tg4096, tg8192
    assert doc["fit"]["rows"] == 4


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--url", "localhost:8080"], "--url 'localhost:8080' is not an http(s) URL"),
        (["--url", "ftp://host/"], "--url 'ftp://host/' is not an http(s) URL"),
        (["--url", "http://host:port"], "--url 'http://host:port' is not a valid URL"),
        # an infinite rate made the gamma-distributed gaps raise ValueError (a traceback)
        (["--rate", "inf"], "every request rate must be a number above 0"),
        (["--request-timeout", "0"], "--request-timeout must be a number of seconds above 0"),
        (["--stall-timeout", "nan"], "--stall-timeout must be a number of seconds above 0"),
        (["--slo", "ttft:inf"], "SLO 'ttft:inf': the limit must be a number of milliseconds"),
    ],
)
def test_bench_serve_bad_options(
    extra: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "serve", "--url", "http://127.0.0.1:9", "--model", "m", "--requests", "1"]
    code, err = run_cli([*argv, *extra, "-q"], monkeypatch, capsys)
    assert_one_line(code, err, needle)


def test_bench_serve_binary_dataset(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "serve", "--url", "http://127.0.0.1:9", "--model", "m", "-q"]
    code, err = run_cli([*argv, "--dataset", str(binary)], monkeypatch, capsys)
    assert_one_line(code, err, "cannot read dataset", "not UTF-8")


def test_bench_serve_nothing_listening(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # nothing listens on the port: every request is refused, nothing is measured
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # a port that was free a moment ago: connecting to it is refused
    url = f"http://127.0.0.1:{port}"
    argv = ["bench", "serve", "--url", url, "--model", "m", "--requests", "2", "--warmup", "0"]
    code, err = run_cli([*argv, "-q"], monkeypatch, capsys)
    assert_one_line(code, err, f"cannot connect to {url} (connection refused)")


@pytest.mark.parametrize("seconds", ["nan", "inf", "-1"])
def test_qa_soak_seconds_must_be_finite(
    seconds: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["qa", "--checks", "soak", "--soak-seconds", seconds], monkeypatch, capsys)
    assert_one_line(code, err, "--soak-seconds must be 0 or more")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # the parser's own picture was four lines: usage, "Try ...", a blank line, "Error: ..."
        (["plan"], "plan: Missing argument 'spec'. (hint: rigkit plan --help)"),
        (["plan", str(REF), "--format", "xml"], "plan: Invalid value for '--format'"),
        (["catalog", "gpuz"], "catalog: No such command 'gpuz'. Did you mean 'gpus'?"),
        (["no-such-command"], "No such command 'no-such-command'. (hint: rigkit --help)"),
        (["estimate", "--ram-gb", "lots"], "estimate: Invalid value for '--ram-gb'"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, needle)


def test_binary_spec(
    binary: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # was "cannot read: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    code, err = run_cli(["plan", str(binary)], monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml:1: not a text file (not UTF-8)")


def test_spec_quantity_has_a_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 99999999 GPUs expanded into that many cards before the slot count was compared (a hang)
    text = REF.read_text(encoding="utf-8").replace(
        "{id: rtx-4090, quantity: 4}", "{id: rtx-4090, quantity: 99999999}"
    )
    spec = tmp_path / "typo.yaml"
    spec.write_text(text, encoding="utf-8")
    code, err = run_cli(["plan", str(spec)], monkeypatch, capsys)
    assert_one_line(code, err, "parts.gpus[0].quantity: input should be less than or equal to 1000")


def _existing(directory: Path, name: str) -> Path:
    directory.mkdir(exist_ok=True)
    mine = directory / name
    mine.write_text("my notes\n", encoding="utf-8")
    return mine


def test_plan_out_keeps_existing_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = _existing(tmp_path / "out", "report.md")
    argv = ["plan", str(REF), "--json", "--out", str(tmp_path / "out")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "already has report.md", "pass --force")
    assert mine.read_text(encoding="utf-8") == "my notes\n"


def test_plan_out_must_be_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "a-file"
    f.write_text("x\n", encoding="utf-8")
    code, err = run_cli(["plan", str(REF), "--json", "--out", str(f)], monkeypatch, capsys)
    assert_one_line(code, err, f"--out {f} is a file, not a directory")


def test_qa_out_keeps_existing_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = _existing(tmp_path / "qa", "qa-results.json")
    argv = ["qa", "--checks", "inventory", "--out", str(tmp_path / "qa")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "already has qa-results.json", "pass --force")
    assert mine.read_text(encoding="utf-8") == "my notes\n"


def test_export_config_needs_force_to_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prom"
    mine = _existing(out, "rigkit-alerts.yml")
    argv = ["monitor", "export-config", "--out", str(out), "--json"]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "already has rigkit-alerts.yml", "pass --force")
    assert mine.read_text(encoding="utf-8") == "my notes\n"
    # with --force the six files are written (exit status 0: returns without SystemExit)
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv, "--force"])
    entry.run()
    doc = json.loads(capsys.readouterr().out)
    # alerts, promtool tests, scrape config, targets, Alertmanager, dashboard
    assert len(doc["files"]) == 6
    assert mine.read_text(encoding="utf-8") != "my notes\n"


def test_calibrate_keeps_existing_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = _existing(tmp_path, "my-rig.yaml")
    csv = ROOT / "tests" / "fixtures" / "calibration" / "rtx4090-q4-decode.csv"
    code, err = run_cli(["calibrate", str(csv), "--out", str(mine)], monkeypatch, capsys)
    assert_one_line(code, err, f"--out {mine} already exists", "pass --force")
    assert mine.read_text(encoding="utf-8") == "my notes\n"


def test_calibrate_checks_gpu_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every row names its GPU, so --gpu is not needed; a typo in it is still reported
    csv = ROOT / "tests" / "fixtures" / "calibration" / "rtx4090-q4-decode.csv"
    code, err = run_cli(["calibrate", str(csv), "--gpu", "rtx4090"], monkeypatch, capsys)
    assert_one_line(code, err, "unknown gpu id 'rtx4090'", "rtx-4090")


@pytest.mark.parametrize("checks", [",", " , ", ""])
def test_qa_checks_naming_nothing(
    checks: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run of no checks had verdict pass and exit status 0
    code, err = run_cli(["qa", "--checks", checks], monkeypatch, capsys)
    assert_one_line(code, err, "names no check")


def test_qa_baseline_is_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # was "baseline file DIR does not exist"
    argv = ["qa", "--checks", "inventory", "--baseline", str(tmp_path)]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, f"--baseline {tmp_path} is a directory")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        # port 99999 reached the socket's bind(): an OverflowError traceback
        (["--port", "99999"], "--port must be between 0 and 65535, not 99999"),
        (["--port", "-1"], "--port must be between 0 and 65535, not -1"),
        # a NaN or infinite delay passed the `< 0` test and hung every client
        (["--ttft-ms", "nan"], "--ttft-ms must be a number of milliseconds, 0 or more, not nan"),
        (["--itl-ms", "inf"], "--itl-ms must be a number of milliseconds, 0 or more, not inf"),
        (["--tokens", "-1"], "--tokens must be 0 or more, not -1"),
        (["--fault-after", "-2"], "--fault-after must be 0 or more, not -2"),
        (["--retry-after-s", "-1"], "--retry-after-s must be 0 or more, not -1"),
    ],
)
def test_mock_server_bad_options(
    extra: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(["bench", "mock-server", "--port", "0", *extra], monkeypatch, capsys)
    assert_one_line(code, err, needle)


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_serve_output_checked_before_the_run(
    option: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # port 9 refuses connections: the message shows the output was refused before any request
    argv = ["bench", "serve", "--url", "http://127.0.0.1:9", "--model", "m", "-q"]
    code, err = run_cli([*argv, option, str(tmp_path)], monkeypatch, capsys)
    assert_one_line(code, err, f"{option} {tmp_path} is a directory")


@pytest.mark.parametrize("command", [["status"], ["events"], ["history", "--metric", "power_w"]])
def test_monitor_readers_leave_an_empty_file_alone(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # SQLite turned the empty file into a 4096-byte database before the reader refused it
    empty = tmp_path / "notes.txt"
    empty.write_bytes(b"")
    code, err = run_cli(["monitor", *command, "--db", str(empty)], monkeypatch, capsys)
    assert_one_line(code, err, f"{empty} is not a rigkit monitor database")
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no -wal, no -shm


@pytest.fixture()
def monitor_db(tmp_path: Path) -> Path:
    """A monitor database with the 101 samples of spike.jsonl (2 GPUs)."""
    from rigkit.monitor.sources.base import SourceExhausted
    from rigkit.monitor.sources.replay import ReplaySource
    from rigkit.monitor.store import Store

    db = tmp_path / "m.db"
    source = ReplaySource(ROOT / "tests" / "fixtures" / "replay" / "spike.jsonl", speed=0)
    with Store(db) as store:
        while True:
            try:
                store.write_sample(source.read())
            except SourceExhausted:
                break
    return db


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        # NaN compared false with every sample time: "no events", exit status 0
        (["events", "--since", "nan"], "--since: 'nan' is not a time"),
        (["events", "--since", "inf"], "--since: 'inf' is not a time"),
        (["history", "--metric", "temperature_c", "--gpu", "-1"], "--gpu must be a GPU index"),
    ],
)
def test_monitor_readers_bad_options(
    extra: list[str],
    needle: str,
    monitor_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(["monitor", *extra, "--db", str(monitor_db)], monkeypatch, capsys)
    assert_one_line(code, err, needle)


def test_monitor_history_plot_into_a_directory(
    monitor_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # matplotlib wrote DIR.png beside the directory, and the command said "plot: DIR"
    plots = tmp_path / "plots"
    plots.mkdir()
    argv = ["monitor", "history", "--metric", "temperature_c", "--db", str(monitor_db)]
    code, err = run_cli([*argv, "--plot", str(plots)], monkeypatch, capsys)
    assert_one_line(code, err, f"--plot {plots} is a directory")
    assert not (tmp_path / "plots.png").exists()


def test_monitor_db_under_a_file_is_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rigkit.errors import MonitorError
    from rigkit.monitor.agent import NewDbGuard

    f = tmp_path / "a-file"
    f.write_text("x\n", encoding="utf-8")
    with pytest.raises(MonitorError, match="Not a directory"):
        NewDbGuard(f / "sub" / "m.db").open_store()
    # removing m.db, m.db-wal and m.db-shm, which never existed, logged three warnings
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def test_monitor_rules_unknown_rule_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  no_such_rule:\n    threshold: 5\n", encoding="utf-8")
    argv = ["monitor", "export-config", "--rules", str(rules), "--out", str(tmp_path / "o")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "rules.no_such_rule: no default rule has this name")
    assert err.count("rules.no_such_rule") == 1  # the place was written twice


def test_estimate_batch_refuses_single_case_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --model and --gpus were ignored without a word: every case comes from the file
    cases = tmp_path / "cases.jsonl"
    cases.write_text(CASE, encoding="utf-8")
    argv = ["estimate", "--batch", str(cases), "--model", "llama-3-70b", "--gpus", "2"]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "--model, --gpus would be ignored")


@pytest.mark.parametrize("extra", [[], ["--json"]])  # fast path, full CLI
def test_estimate_batch_bad_profile_stops_the_batch(
    extra: list[str],
    binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the profile error was written as the "error" of every case, with exit status 0
    cases = tmp_path / "cases.jsonl"
    cases.write_text(CASE * 2, encoding="utf-8")
    argv = ["estimate", "--batch", str(cases), "--profile", str(binary), *extra]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml:1: not a text file (not UTF-8)")
    assert capsys.readouterr().out == ""


def test_qa_soak_seconds_and_replay_conflict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the replay was judged and --soak-seconds ignored (exit status 1 for spike.jsonl's alert)
    replay = ROOT / "tests" / "fixtures" / "replay" / "spike.jsonl"
    argv = ["qa", "--checks", "soak", "--soak-seconds", "5", "--soak-replay", str(replay)]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "give --soak-seconds or --soak-replay, not both")


def test_qa_refused_input_creates_no_out_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --out was created before the storage path was checked: an empty directory stayed behind
    out = tmp_path / "qa"
    argv = ["qa", "--checks", "storage", "--storage-path", str(tmp_path / "nope")]
    code, err = run_cli([*argv, "--out", str(out)], monkeypatch, capsys)
    assert_one_line(code, err, f"storage path {tmp_path / 'nope'} does not exist")
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        # --gpus, --prompt, --gen, --ctx and --batch take a number or a comma list of numbers
        (["--gpus", "two"], "Invalid value for '--gpus': 'two' is not a whole number"),
        (["--gpus", "2,x"], "Invalid value for '--gpus': 'x' is not a whole number"),
        (["--quant", "q4_k_m,,q8_0"], "--quant 'q4_k_m,,q8_0' has an empty item"),
    ],
)
def test_estimate_lists_are_checked(
    argv: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090"]
    code, err = run_cli([*base, *argv], monkeypatch, capsys)
    assert_one_line(code, err, needle)
