"""No command writes through a symbolic link at a target name.

Before: plan, qa, export-config and calibrate with ``--force`` followed a link planted at one of
their file names and overwrote whatever it pointed to, outside ``--out``. Now ``--force``
replaces the link itself with the command's file; without ``--force`` it is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rigkit.errors import RigkitError
from rigkit.outputs import check_file_target, check_out_dir, check_out_file

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
def test_force_replaces_the_link_not_its_target(
    rigkit: RigkitCli, tmp_path: Path, victim: Path, args: tuple[str, ...], name: str
) -> None:
    out = tmp_path / "out"
    link = _planted(out, name, victim)
    r = rigkit(*(str(out) if a == "OUT" else a for a in args))
    r.assert_clean()
    assert r.code in (0, 1), r.err  # plan: 1 when a rule finds an error
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not link.is_symlink() and link.stat().st_size > 100  # the command's own file


def test_without_force_a_link_is_refused(rigkit: RigkitCli, tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "out"
    link = _planted(out, "report.html", victim)
    rigkit("plan", str(SPEC), "--out", str(out)).assert_refused("already has report.html")
    assert link.is_symlink() and victim.read_text(encoding="utf-8") == "keep me\n"


def test_calibrate_replaces_a_profile_link(rigkit: RigkitCli, tmp_path: Path, victim: Path) -> None:
    link = _planted(tmp_path, "profile.yaml", victim)
    r = rigkit("calibrate", str(MEASURED), "--out", str(link), "--force")
    r.assert_clean()
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not link.is_symlink() and "fitted:" in link.read_text(encoding="utf-8")


def test_qa_and_other_targets(tmp_path: Path, victim: Path) -> None:
    # qa's --out goes through the same check (qa itself needs the machine's GPUs)
    out = tmp_path / "qa"
    link = _planted(out, "qa-report.html", victim)
    with pytest.raises(RigkitError, match=r"already has qa-report\.html"):
        check_out_dir(out, ["qa-report.md", "qa-report.html"], force=False)
    check_out_dir(out, ["qa-report.md", "qa-report.html"], force=True)
    assert not os.path.lexists(link) and victim.exists()
    # a file target that is a link (bench serve --json, monitor history --plot) is refused
    dangling = tmp_path / "new.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    with pytest.raises(RigkitError, match="is a symbolic link"):
        check_file_target(dangling, "--json")
    # an ordinary existing file is still replaced with --force
    plain = tmp_path / "plain.yaml"
    plain.write_text("old\n", encoding="utf-8")
    assert check_out_file(plain, force=True) == plain
