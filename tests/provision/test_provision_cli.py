"""`rigkit provision` on the command line: JSON output, unusable input as one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from provision_helpers import REF

from rigkit.cli import entry


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    code: object = 0
    try:
        entry.run()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return (code if isinstance(code, int) else 0), out.out, out.err


def test_provision_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        [
            "provision",
            str(REF),
            "--out",
            str(tmp_path / "p"),
            "--serve",
            "llama-3-70b",
            "--quant",
            "q4_k_m",
            "--engine",
            "llama.cpp",
            "--host",
            "gpu1.lan",
            "--json",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    (group,) = data["groups"]
    assert group["hosts"] == ["gpu1.lan"]
    assert group["serving"]["engine"] == "llama.cpp"
    assert "inventory.yml" in data["files"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "a b"], "is not a host name"),
        (["--allow", "10.0.0.0/99"], "is not a subnet"),
        (["--serve", "llama-3.1-405b", "--quant", "awq-int4"], "what would: --engine llama.cpp"),
        (["--serve", "llama-3-70b"], "--serve and --quant go together"),
        (["--serve", "nosuch-model", "--quant", "q4_k_m"], "nosuch-model"),
    ],
)
def test_unusable_input_is_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "p"
    code, _, err = _run(["provision", str(REF), "--out", str(out_dir), *args], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("rigkit: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out_dir.exists()  # nothing written


def test_many_hosts_one_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        [
            "provision",
            str(REF),
            "--out",
            str(tmp_path / "p"),
            "--host",
            "gpu1.lan",
            "--host",
            "10.0.0.8",
            "--monitoring-host",
            "10.0.0.8",
            "--json",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["groups"][0]["hosts"] == ["gpu1.lan", "10.0.0.8"]
    inv = (tmp_path / "p" / "inventory.yml").read_text()
    assert '"gpu1.lan":\n              ansible_host: !unsafe "gpu1.lan"' in inv
    assert 'rigkit_monitoring:\n      hosts:\n        "10.0.0.8":' in inv
