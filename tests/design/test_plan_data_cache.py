"""The parsed-YAML cache `rigkit plan` reads the catalog through (rigkit.catalog.yamlcache)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rigkit.catalog.yamlcache import load_yaml


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RIGKIT_NO_CACHE", raising=False)
    monkeypatch.setenv("RIGKIT_CACHE_DIR", str(tmp_path / "c"))
    return tmp_path / "c"


def test_second_load_comes_from_the_cache(cache: Path) -> None:
    text = "- {id: a, watts: 450}\n- {id: b, watts: 1.5}\n"
    assert load_yaml(text) == [{"id": "a", "watts": 450}, {"id": "b", "watts": 1.5}]
    (entry,) = cache.iterdir()  # one file per distinct text
    # a cache entry is what is returned: change it on disk and the next load shows it
    import marshal

    entry.write_bytes(marshal.dumps([{"id": "from cache"}]))
    assert load_yaml(text) == [{"id": "from cache"}]
    # an edited file is another key: parsed again, a second entry
    assert load_yaml(text + "- {id: c}\n")[-1] == {"id": "c"}
    assert len(list(cache.iterdir())) == 2


def test_damaged_entry_falls_back_to_parsing(cache: Path) -> None:
    load_yaml("x: 1\n")
    (entry,) = cache.iterdir()
    entry.write_bytes(b"\x00not marshal")
    assert load_yaml("x: 1\n") == {"x": 1}


def test_values_marshal_cannot_store_are_parsed_each_time(cache: Path) -> None:
    assert load_yaml("d: 2024-01-02\n") == {"d": dt.date(2024, 1, 2)}
    assert not cache.exists() or not list(cache.iterdir())


def test_cache_can_be_turned_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGKIT_NO_CACHE", "1")
    assert load_yaml("y: [1, 2]\n") == {"y": [1, 2]}
    assert not cache.exists()
