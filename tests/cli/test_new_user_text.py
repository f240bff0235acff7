"""Text a new user reads first: flags without a type placeholder, counts in the singular where
one, catalog ids whole in an 80-column terminal.

Before: ``--help`` showed ``--force <bool>``; the plan said "1 errors"; ``rigkit catalog gpus``
at 80 columns broke ids such as ``a100-80gb-pcie`` across two lines.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rigkit.catalog import load_catalog
from rigkit.report.words import plural

_ENTRY = "import sys; from rigkit.cli.entry import run; sys.argv[0] = 'rigkit'; run()"


def _rigkit(*args: str, columns: int = 80) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(columns)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", [("plan",), ("estimate",), ("monitor", "run"), ()])
def test_help_shows_no_bool_placeholder(command: tuple[str, ...]) -> None:
    text = _rigkit(*command, "--help", columns=120)
    # typer's own --help line is the one left: it is not a rigkit option
    flagged = [line for line in text.splitlines() if "<bool>" in line and "--help" not in line]
    assert flagged == []
    assert "--json" in text or "--version" in text or command == ("monitor", "run")


def test_counts_in_words() -> None:
    assert [plural(n, "error") for n in (0, 1, 2, 1200)] == [
        "0 errors", "1 error", "2 errors", "1,200 errors",
    ]  # fmt: skip
    assert plural(1, "more column") == "1 more column"


@pytest.mark.parametrize("kind", ["gpus", "cpus", "motherboards", "psus"])
def test_catalog_ids_stay_whole_at_80_columns(kind: str) -> None:
    text = _rigkit("catalog", kind, columns=80)
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    first_cells = {line.split()[0] for line in lines if line.strip()}
    missing = [pid for pid in load_catalog().kind(kind) if pid not in first_cells]
    assert missing == [], f"ids broken across lines: {missing}"
