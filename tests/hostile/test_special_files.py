"""Paths that are not regular files: read without limit or blocked forever before; now one line.

``rigkit plan /dev/zero`` read until MemoryError, a FIFO with no writer blocked ``open`` forever,
``--profile /dev/zero`` likewise. Only regular files are read, up to a size cap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's type (conftest is not importable by name)
    from conftest import RigkitCli

pytestmark = pytest.mark.timeout(30)

ESTIMATE = ("estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090")


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def test_plan_dev_zero(rigkit: RigkitCli) -> None:
    rigkit("plan", "/dev/zero").assert_refused("/dev/zero: a device, not a file")


def test_plan_fifo_without_writer(rigkit: RigkitCli, fifo: Path) -> None:
    rigkit("plan", str(fifo)).assert_refused(f"{fifo}: a FIFO (named pipe), not a file")


def test_plan_directory(rigkit: RigkitCli, tmp_path: Path) -> None:
    rigkit("plan", str(tmp_path)).assert_refused(f"{tmp_path}: a directory, not a file")


def test_profile_dev_zero_and_fifo(rigkit: RigkitCli, fifo: Path) -> None:
    rigkit(*ESTIMATE, "--profile", "/dev/zero").assert_refused(
        "cannot read profile /dev/zero: a device, not a file"
    )
    rigkit(*ESTIMATE, "--profile", str(fifo)).assert_refused(f"profile {fifo}: a FIFO")


def test_batch_dev_zero(rigkit: RigkitCli) -> None:
    rigkit("estimate", "--batch", "/dev/zero").assert_refused(
        "/dev/zero' is neither a batch size nor a JSON Lines file"
    )


def test_oversized_spec(rigkit: RigkitCli, tmp_path: Path) -> None:
    # 5 MiB of comment: over the 4 MiB cap for a spec; refused from its size, before parsing
    spec = tmp_path / "big.yaml"
    spec.write_bytes(b"#" * (5 * 1024 * 1024))
    rigkit("plan", str(spec)).assert_refused("5,242,880 bytes, more than the 4 MiB")


def test_nul_byte_and_non_utf8_name_the_line(rigkit: RigkitCli, tmp_path: Path) -> None:
    spec = tmp_path / "nul.yaml"
    spec.write_bytes(b"name: a\nparts:\n  cpu: x\x00y\n")
    rigkit("plan", str(spec)).assert_refused(f"{spec}:3: not a text file (a NUL byte)")
    spec.write_bytes(b"name: a\n\ndescription: caf\xe9\n")  # Latin-1, not UTF-8
    rigkit("plan", str(spec)).assert_refused(f"{spec}:3: not a text file (not UTF-8)")


def test_dangling_link_and_missing_file(rigkit: RigkitCli, tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    rigkit("plan", str(link)).assert_refused(f"{link}: no such file")
