"""``--force`` never writes through a symbolic link at a target name.

Before: plan, qa, export-config and calibrate with ``--force`` followed a link planted at one of
their file names and overwrote whatever it pointed to, outside ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rigkit.errors import RigkitError
from rigkit.outputs import check_out_dir, check_out_file

if TYPE_CHECKING:  # the fixture's type (conftest is not importable by name)
    from conftest import RigkitCli

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "1x5090-desktop.yaml"
MEASURED = ROOT / "tests" / "fixtures" / "calibration" / "rtx4090-q4-decode.csv"


@pytest.fixture()
def victim(tmp_path: Path) -> Path:
    """A file outside every --out: it must keep its content."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_text("keep me\n", encoding="utf-8")
    return path


def _planted(out: Path, name: str, victim: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    link = out / name
    link.symlink_to(victim)
    return link


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("plan", str(SPEC), "--out", "OUT", "--force"), "report.html"),
        (("monitor", "export-config", "--out", "OUT", "--force"), "rigkit-alerts.yml"),
    ],
)
def test_out_dir_link_is_refused_even_with_force(
    rigkit: RigkitCli, tmp_path: Path, victim: Path, args: tuple[str, ...], name: str
) -> None:
    out = tmp_path / "out"
    link = _planted(out, name, victim)
    r = rigkit(*(str(out) if a == "OUT" else a for a in args))
    r.assert_refused(f"{link} is a symbolic link", "does not write through links")
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert link.is_symlink()


def test_calibrate_profile_link_is_refused(rigkit: RigkitCli, tmp_path: Path, victim: Path) -> None:
    link = _planted(tmp_path, "profile.yaml", victim)
    r = rigkit("calibrate", str(MEASURED), "--out", str(link), "--force")
    r.assert_refused(f"{link} is a symbolic link")
    assert victim.read_text(encoding="utf-8") == "keep me\n"


def test_qa_and_dangling_links(tmp_path: Path, victim: Path) -> None:
    # qa's --out goes through the same check (qa itself needs the machine's GPUs); a dangling
    # link is refused too: writing would create its target
    out = tmp_path / "qa"
    _planted(out, "qa-report.html", victim)
    with pytest.raises(RigkitError, match="is a symbolic link"):
        check_out_dir(out, ["qa-report.md", "qa-report.html"], force=True)
    dangling = tmp_path / "new.yaml"
    dangling.symlink_to(tmp_path / "nowhere" / "x.yaml")
    with pytest.raises(RigkitError, match="is a symbolic link"):
        check_out_file(dangling, force=True)
    # an ordinary existing file is still replaced with --force
    plain = tmp_path / "plain.yaml"
    plain.write_text("old\n", encoding="utf-8")
    assert check_out_file(plain, force=True) == plain
