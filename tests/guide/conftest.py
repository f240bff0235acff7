"""Shared helpers for the guide and build-tracker tests."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from rigkit.cli import entry

RunCli = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run the console-script entry point as a user would: (exit status, stdout, stderr)."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
        code: object = 0
        try:
            entry.run()
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return (code if isinstance(code, int) else 0), out.out, out.err

    return run
