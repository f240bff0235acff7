"""Fixtures for the QA check tests (the doubles live in qa_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from qa_fakes import make_build

from rigkit.build import Build


@pytest.fixture
def build() -> Build:
    return make_build()


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Baselines go to a temporary data directory, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
