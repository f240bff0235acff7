"""Hostile input: the installed command line run as a separate process, as a user would run it.

Every run is bounded: 20 s of wall time and 2 GiB of address space (``RLIMIT_AS``), so a hang or a
memory blow-up fails the test instead of the machine. :class:`Run` holds what came back; its
:meth:`Run.assert_clean` is the common check: exit status 0, 1 or 2 and no traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

#: seconds one command may take; a hang fails here, well before pytest-timeout's limit
TIME_LIMIT_S = 20
#: address space of one command; rigkit plan needs about 0.6 GiB (numpy and matplotlib mapped)
MEMORY_LIMIT_BYTES = 2 * 1024**3

_ENTRY = "import sys; from rigkit.cli.entry import run; sys.argv[0] = 'rigkit'; run()"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def assert_clean(self) -> None:
        """Exit 0/1/2, no traceback, no Python exception name on stderr."""
        assert self.code in (0, 1, 2), (self.args, self.code, self.err[-2000:])
        assert "Traceback" not in self.err, self.err[-2000:]
        assert "MemoryError" not in self.err and "RecursionError" not in self.err, self.err

    def assert_refused(self, *needles: str) -> str:
        """Exit 2 with one line on stderr holding every needle; returns that line."""
        self.assert_clean()
        assert self.code == 2, (self.args, self.code, self.out[-500:], self.err)
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("rigkit: error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], lines[0]
        return lines[0]


RigkitCli = Callable[..., Run]


@pytest.fixture()
def rigkit(tmp_path: Path) -> RigkitCli:
    """``rigkit(*args, stdin=bytes)`` -> :class:`Run`, in ``tmp_path``, bounded in time and memory."""

    def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Run:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _ENTRY, *args],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                cwd=tmp_path,
                timeout=TIME_LIMIT_S,
                preexec_fn=_limit_memory,
                env={**os.environ, "COLUMNS": "120", **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"rigkit {' '.join(args)} ran past {TIME_LIMIT_S} s")
        return Run(
            tuple(args),
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    return run
