"""The public API: everything in ``__all__`` exists and the version is consistent."""

import rigkit


def test_all_names_exist() -> None:
    for name in rigkit.__all__:
        assert hasattr(rigkit, name), name


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert rigkit.__version__ == version("rigkit")
