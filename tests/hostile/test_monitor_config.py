"""Hostile monitor settings files (``--rules FILE``): YAML features, special files, odd numbers
and names. Each is refused with one ``FILE:LINE`` line and exit status 2, quickly, without a
traceback, and ``monitor run`` creates no database when it refuses one."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rigkit.cli import entry
from rigkit.errors import MonitorError
from rigkit.monitor.agent import make_notifier
from rigkit.monitor.alerts import load_rules
from rigkit.monitor.config import MAX_FILE_BYTES, load_config
from rigkit.monitor.respond import load_policy

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)  # 9^9 = 387,420,489 leaves from about 350 bytes


def _load_everything(path: Path) -> None:
    load_rules(path, None)
    load_policy(path, None)
    load_config(path)


CASES: list[tuple[str, str, str]] = [
    # (name, text, what the error line must start with after FILE)
    (
        "recursive alias",
        "rules: &a [*a]\n",
        ":1: refused YAML: an alias refers to a node that contains it",
    ),
    ("alias bomb", BOMB, ":"),
    ("python tag", "rules: !!python/object/apply:os.system ['true']\n", ":1: refused YAML: tag"),
    (
        "unknown tag",
        "rules:\n  gpu_temp_high: !foo {threshold: 3}\n",
        ":2: refused YAML: tag '!foo' is not allowed",
    ),
    (
        "complex key",
        "rules:\n  ? [a, b]\n  : 1\n",
        ":2: refused YAML: a mapping key must be plain text",
    ),
    (
        "duplicate key",
        "rules:\n  gpu_temp_high: {for: 1m}\n  gpu_temp_high: {for: 2m}\n",
        ":3: rules.gpu_temp_high: duplicate key (hint: first given on line 2)",
    ),
    ("deep nesting", "rules: " + "[" * 100_000 + "\n", ":1: nested more than 50 levels deep"),
    (
        "deep block nesting",
        "rules:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 80)),
        ":51: nested more than 50 levels deep",
    ),
    (
        "float overflow",
        "rules:\n  gpu_temp_high: {threshold: 1.0e+400}\n",
        ":2: rules.gpu_temp_high.threshold: input should be a finite number",
    ),
    (
        "NaN threshold",
        "rules:\n  gpu_temp_high: {threshold: .nan}\n",
        ":2: rules.gpu_temp_high.threshold: input should be a finite number",
    ),
    (
        "400-digit threshold",
        "rules:\n  gpu_temp_high: {threshold: " + "9" * 400 + "}\n",
        ":2: refused YAML: an integer of 400 characters",
    ),
    (
        "5000-digit XID",
        "rules:\n  gpu_xid_critical: {codes: [" + "7" * 5000 + "]}\n",
        ":2: refused YAML: an integer of 5000 characters",
    ),
    (
        "huge duration",
        "rules:\n  gpu_temp_high: {for: 99999999999999999999d}\n",
        ":2: rules.gpu_temp_high.for: expected a duration",
    ),
    (
        "bool as a number",
        "response:\n  slowdown_temp_c: true\n",
        ":2: response.slowdown_temp_c: input should be a valid number",
    ),
    (
        "option as a unit name",
        "response:\n  tier2:\n    units: [--now]\n",
        ":3: response.tier2.units[0]: expected a systemd unit or container name",
    ),
    (
        "shell in a container name",
        "response:\n  tier2:\n    containers: ['$(reboot)']\n",
        ":3: response.tier2.containers[0]: expected a systemd unit or container name",
    ),
    (
        "file URL as a notify target",
        "notify:\n  targets: ['file:///etc/passwd']\n",
        ":2: notify.targets[0]: notify target 'file:///etc/passwd'",
    ),
    ("a list at the top", "- rules\n", ":1: expected a mapping"),
    ("a string at the top", "rules\n", ":1: expected a mapping"),
    ("null rule name", "rules:\n  ~: {expr: gpu.power_w, threshold: 1}\n", ":"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_text_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text, encoding="utf-8")
    t0 = time.monotonic()
    try:
        _load_everything(f)
    except MonitorError as err:
        msg = str(err)
        assert msg.startswith(f"{f}{expected}"), msg
        assert "\n" not in msg and len(msg) < 600
        assert msg.split(":")[1].isdigit(), msg  # FILE:LINE
    else:
        assert expected == ":", "accepted"  # only the open-ended cases may load
    assert time.monotonic() - t0 < 5


def test_the_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB, encoding="utf-8")
    with pytest.raises(
        MonitorError, match=r":1: refused YAML: aliases expand this document to [\d,]+ nodes"
    ):
        load_config(f)


def test_special_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="/dev/zero: a device, not a file"):
        load_config("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(MonitorError, match="fifo: a FIFO \\(named pipe\\), not a file"):
        load_config(fifo)  # no writer: must not wait for one
    assert time.monotonic() - t0 < 2
    big = tmp_path / "big.yaml"
    big.write_text("# x\n" * (MAX_FILE_BYTES // 4 + 1), encoding="utf-8")
    with pytest.raises(MonitorError, match="more than the 1 MiB this input may have"):
        load_config(big)
    with pytest.raises(MonitorError, match="a directory, not a file"):
        load_config(tmp_path)
    with pytest.raises(MonitorError, match=r"nope\.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_bytes(b"rules:\n  gpu_temp_high:\n    summary: caf\xe9\n")
    with pytest.raises(MonitorError) as err:
        load_config(f)
    assert str(err.value) == f"{f}:3: not a text file (not UTF-8) (hint: save it as UTF-8 text)"


def test_an_empty_or_comment_only_file_is_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    for text in ("", "# nothing\n", "rules:\nresponse:\nnotify:\n"):
        f.write_text(text, encoding="utf-8")
        assert [r.name for r in load_rules(f, None)] == [r.name for r in load_rules(None, None)]
        assert load_policy(f, None) == load_policy(None, None)
        assert make_notifier(tmp_path / "n.db", [], load_config(f).config.notify) is None


@pytest.mark.parametrize(
    "text",
    [
        "rules: &a [*a]\n",
        "rules: !!python/object/apply:os.system ['true']\n",
        "response:\n  tier2: {units: [--now]}\n",
    ],
)
def test_monitor_run_refuses_with_exit_2_and_creates_no_database(
    tmp_path: Path,
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text, encoding="utf-8")
    db = tmp_path / "m.db"
    argv = ["monitor", "run", "--source", "replay:idle-4x4090", "--speed", "0", "--count", "2"]
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv, "--db", str(db), "--rules", str(f)])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"rigkit: error: {f}:")
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]
