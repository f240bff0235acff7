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
            "rules.gpu_temp_high.threshold: expected a number, got nan",
        ),
        (
            "response:\n  tier1: {offset_c: .nan, for: 30s}\n",
            "response.tier1.offset_c: expected a number of degrees, got nan",
        ),
        (
            "response:\n  slowdown_temp_c: .inf\n",
            "response.slowdown_temp_c: expected a number",
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
    assert_one_line(code, err, "binary.yaml: not a replay file (not UTF-8 text)")


def test_binary_replay_record(
    binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["monitor", "record", "--source", f"replay:{binary}", "-o", str(tmp_path / "r.jsonl")]
    code, err = run_cli(argv, monkeypatch, capsys)
    assert_one_line(code, err, "binary.yaml: not a replay file (not UTF-8 text)")


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
    assert_one_line(code, err, "cannot read dataset", "not UTF-8 text")


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
