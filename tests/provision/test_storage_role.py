"""The storage role run for real on loop devices this test makes (root, losetup and the loop
driver needed; skipped with the reason otherwise). The target is isolated: the volume mounts
under the test's directory and fstab is a scratch file."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from provision_helpers import REF, ansible_env, ansible_tool

from rigkit.provision import ProvisionOptions, plan_build, render_project

pytestmark = pytest.mark.slow


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture()
def loops(tmp_path: Path) -> Iterator[list[str]]:
    """Three 64 MiB loop devices: blank, with an MBR partition table, with an ext2 file system."""
    import os

    missing = [
        t
        for t in ("losetup", "mke2fs", "dumpe2fs", "wipefs", "blkid", "findmnt")
        if not shutil.which(t)
    ]
    if os.geteuid() != 0:
        pytest.skip("the storage role needs root to make loop devices and file systems")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    devices: list[str] = []
    try:
        for k in range(3):
            img = tmp_path / f"disk{k}.img"
            with img.open("wb") as f:
                f.truncate(64 << 20)
            r = _sh("losetup", "--find", "--show", str(img))
            if r.returncode != 0:
                pytest.skip(f"cannot make a loop device here: {r.stderr.strip()}")
            devices.append(r.stdout.strip())
        # an MBR with one Linux partition: what wipefs reports as a "dos" partition table
        mbr = bytearray(512)
        mbr[446:462] = struct.pack("<BBBBBBBBII", 0, 0, 0, 0, 0x83, 0, 0, 0, 2048, 65536)
        mbr[510:512] = b"\x55\xaa"
        with open(devices[1], "r+b") as f:
            f.write(mbr)
        assert _sh("mke2fs", "-q", "-t", "ext2", devices[2]).returncode == 0
        yield devices
    finally:
        for d in devices:
            _sh("umount", d)
            _sh("losetup", "-d", d)


def _play(
    tmp: Path, project: Path, volumes: list[dict[str, object]], fmt: bool
) -> subprocess.CompletedProcess[str]:
    play = tmp / "storage.yml"
    play.write_text(
        "---\n- name: Storage role on loop devices\n  hosts: localhost\n  connection: local\n"
        "  gather_facts: true\n  roles:\n    - role: rigkit_storage\n",
        encoding="utf-8",
    )
    extra = tmp / "vars.json"
    extra.write_text(
        json.dumps(
            {
                "rigkit_storage_volumes": volumes,
                "rigkit_storage_format": fmt,
                "rigkit_storage_fstab": str(tmp / "fstab"),
                "rigkit_storage_mdadm_conf": str(tmp / "mdadm.conf"),
                "rigkit_storage_update_initramfs": False,
            }
        )
    )
    env = ansible_env(tmp)
    env["ANSIBLE_ROLES_PATH"] = str(project / "roles")
    return subprocess.run(
        [str(ansible_tool("ansible-playbook")), "-i", "localhost,", str(play), "-e", f"@{extra}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _volume(name: str, device: str, mount: Path) -> dict[str, object]:
    return {
        "name": name,
        "raid": False,
        "level": 0,
        "expected_devices": 1,
        "devices": [device],
        "chunk_kib": 512,
        "fstype": "ext4",
        "mount": str(mount),
    }


def test_storage_role_for_real(loops: list[str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    render_project(
        [plan_build(REF, ("localhost",), ProvisionOptions())], ProvisionOptions(), project
    )
    (tmp_path / "fstab").write_text("")
    blank, partitioned, ext2 = loops
    mnt = tmp_path / "mnt"

    # without rigkit_storage_format nothing is created: the play says what it would erase
    r = _play(tmp_path, project, [_volume("scratch", blank, mnt)], fmt=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert f"creating it erases {blank}; run with -e rigkit_storage_format=true" in " ".join(
        r.stdout.split()
    )
    assert _sh("blkid", "-o", "value", "-s", "TYPE", blank).stdout.strip() == ""

    # with it: ext4 aligned to the stripe (512 KiB chunk / 4 KiB blocks = stride 128; one
    # drive, so stripe width 128 x 1), mounted with nofail through the scratch fstab
    r = _play(tmp_path, project, [_volume("scratch", blank, mnt)], fmt=True)
    assert r.returncode == 0, r.stdout[-3000:]
    head = _sh("dumpe2fs", "-h", blank).stdout
    assert "RAID stride:              128" in head
    assert "RAID stripe width:        128" in head
    assert _sh("findmnt", "-n", "-o", "FSTYPE", str(mnt)).stdout.strip() == "ext4"
    (line,) = (tmp_path / "fstab").read_text().splitlines()
    uuid = _sh("blkid", "-o", "value", "-s", "UUID", blank).stdout.strip()
    assert line.split() == [f"UUID={uuid}", str(mnt), "ext4", "defaults,nofail,noatime", "0", "0"]

    # a second run changes nothing
    r = _play(tmp_path, project, [_volume("scratch", blank, mnt)], fmt=True)
    assert r.returncode == 0 and "changed=0" in r.stdout, r.stdout[-3000:]

    # a partitioned device is refused with its signature, and stays as it was
    r = _play(tmp_path, project, [_volume("p", partitioned, tmp_path / "m2")], fmt=True)
    assert r.returncode != 0
    text = " ".join(r.stdout.split())
    assert f"{partitioned} already has a signature, not touched" in text and "dos" in text
    assert (
        "PTTYPE" in _sh("blkid", "-p", partitioned).stdout
        or "dos" in _sh("wipefs", "-n", partitioned).stdout
    )

    # a device with another file system is refused, named with what is on it
    r = _play(tmp_path, project, [_volume("e", ext2, tmp_path / "m3")], fmt=True)
    assert r.returncode != 0
    assert f"{ext2} already has a ext2 file system" in " ".join(r.stdout.split())
    assert _sh("blkid", "-o", "value", "-s", "TYPE", ext2).stdout.strip() == "ext2"


def test_raid_on_loop_devices(loops: list[str], tmp_path: Path) -> None:
    if not Path("/proc/mdstat").exists() or not shutil.which("mdadm"):
        pytest.skip("no md driver here (/proc/mdstat missing) or no mdadm: RAID 0 cannot be made")
    project = tmp_path / "project"
    render_project(
        [plan_build(REF, ("localhost",), ProvisionOptions())], ProvisionOptions(), project
    )
    (tmp_path / "fstab").write_text("")
    blank = loops[0]
    third = tmp_path / "disk3.img"
    with third.open("wb") as f:
        f.truncate(64 << 20)
    other = _sh("losetup", "--find", "--show", str(third)).stdout.strip()
    try:
        vol = {
            "name": "rigkittest",
            "raid": True,
            "level": 0,
            "expected_devices": 2,
            "devices": [blank, other],
            "chunk_kib": 512,
            "fstype": "ext4",
            "mount": str(tmp_path / "md"),
        }
        (tmp_path / "mdadm.conf").write_text("")
        r = _play(tmp_path, project, [vol], fmt=True)
        assert r.returncode == 0, r.stdout[-3000:]
        detail = _sh("mdadm", "--detail", "/dev/md/rigkittest").stdout
        assert "raid0" in detail and "Chunk Size : 512K" in detail
        assert "/dev/md/rigkittest" in (tmp_path / "mdadm.conf").read_text()
    finally:
        _sh("umount", str(tmp_path / "md"))
        _sh("mdadm", "--stop", "/dev/md/rigkittest")
        _sh("losetup", "-d", other)
