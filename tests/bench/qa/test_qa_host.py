"""Host checks on fake /proc and /sys trees and recorded dmidecode output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qa_fakes import FIXTURES, FakeRunner, make_build, which_of, write_tree

from rigkit.bench.qa.checks import host
from rigkit.bench.qa.result import CommandResult, QaContext
from rigkit.build import Build

TR_MODEL = "AMD Ryzen Threadripper PRO 7975WX 32-Cores"


def cpuinfo(model: str, logical: int) -> str:
    return "".join(
        f"processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: {model}\n\n"
        for i in range(logical)
    )


def proc(
    tmp_path: Path, model: str = TR_MODEL, logical: int = 64, memtotal_kb: int = 527_000_000
) -> Path:
    return write_tree(
        tmp_path / "proc",
        {
            "cpuinfo": cpuinfo(model, logical),
            "meminfo": f"MemTotal:       {memtotal_kb} kB\nMemFree:        1000 kB\n",
        },
    )


def test_cpu_matches_spec(tmp_path: Path, build: Build) -> None:
    r = host.check_cpu(QaContext(build=build, proc_root=proc(tmp_path)))
    assert r.status == "pass"
    assert r.measured["logical_cpus"] == 64  # 64 "processor" records written


def test_cpu_with_smt_off_warns_and_missing_cores_fail(tmp_path: Path, build: Build) -> None:
    # 32 logical CPUs = the 7975WX's 32 cores without SMT (64 threads): a warning
    r = host.check_cpu(QaContext(build=build, proc_root=proc(tmp_path / "a", logical=32)))
    assert r.status == "warn"
    assert "SMT" in r.reason
    # 16 logical CPUs < 32 cores: cores disabled or the wrong part
    r = host.check_cpu(QaContext(build=build, proc_root=proc(tmp_path / "b", logical=16)))
    assert r.status == "fail"


def test_cpu_other_model_fails(tmp_path: Path, build: Build) -> None:
    root = proc(tmp_path, model="AMD Ryzen Threadripper PRO 7965WX 24-Cores", logical=48)
    r = host.check_cpu(QaContext(build=build, proc_root=root))
    assert r.status == "fail"
    assert "7965WX" in r.reason


def test_ram_size_full(tmp_path: Path, build: Build) -> None:
    r = host.check_ram(QaContext(build=build, proc_root=proc(tmp_path)))
    # 527,000,000 kB * 1024 / 2^30 = 502.59 GiB visible; 8 x 64 GiB = 512 GiB installed
    assert r.measured["visible_gib"] == pytest.approx(502.59, abs=0.01)
    assert r.ratio == pytest.approx(502.586 / 512, abs=1e-4)  # 0.9816 >= 0.95
    assert r.status == "pass"


def test_ram_missing_dimm_fails(tmp_path: Path, build: Build) -> None:
    # one 64 GiB DIMM missing: 461,000,000 kB -> 439.64 GiB; 439.64 / 512 = 0.8587 < 0.95
    r = host.check_ram(QaContext(build=build, proc_root=proc(tmp_path, memtotal_kb=461_000_000)))
    assert r.status == "fail"
    assert r.ratio == pytest.approx(0.8587, abs=1e-4)
    assert "512 GiB" in r.reason


def test_dmidecode_parse_counts_dimms_and_channels() -> None:
    dimms = host.parse_dmidecode_memory((FIXTURES / "dmidecode_8x64gb.txt").read_text())
    assert len(dimms) == 8  # eight "Memory Device" records
    assert [host.channel_of(d) for d in dimms] == list("ABCDEFGH")
    assert all(d.size_gib == 64 and d.configured_mts == 5200 for d in dimms)


def test_memory_channels_pass(build: Build) -> None:
    run = FakeRunner(
        {"dmidecode": CommandResult(0, (FIXTURES / "dmidecode_8x64gb.txt").read_text())}
    )
    r = host.check_memory_channels(QaContext(build=build, run=run, which=which_of("dmidecode")))
    # 8 DIMMs in channels A-H; speed 5200 = min(kit 5600, CPU 5200)
    assert r.status == "pass", r.reason
    assert r.measured["channels_populated"] == 8
    assert r.measured["installed_gib"] == 512  # 8 x 64
    assert run.calls == [["dmidecode", "-t", "memory"]]


def test_memory_channels_missing_dimm_fails(build: Build) -> None:
    text = (FIXTURES / "dmidecode_7x64gb_4800.txt").read_text()
    run = FakeRunner({"dmidecode": CommandResult(0, text)})
    r = host.check_memory_channels(QaContext(build=build, run=run, which=which_of("dmidecode")))
    assert r.status == "fail"
    # channel H empty: 7 populated of the spec's 8, 7 channels of min(8 modules, 8 channels)
    assert "7 DIMMs populated, the spec has 8" in r.reason
    assert "7 channels populated" in r.reason


def test_memory_slow_profile_warns() -> None:
    text = (FIXTURES / "dmidecode_7x64gb_4800.txt").read_text()
    run = FakeRunner({"dmidecode": CommandResult(0, text)})
    seven = make_build(modules=7)
    r = host.check_memory_channels(QaContext(build=seven, run=run, which=which_of("dmidecode")))
    # 7 of 7 DIMMs present, but 4800 MT/s < 5200 (min of the kit's 5600 and the CPU's 5200)
    assert r.status == "warn"
    assert "4800" in r.reason and "5200" in r.reason


def test_memory_channels_skip_without_dmidecode_or_root(build: Build) -> None:
    r = host.check_memory_channels(QaContext(build=build, which=which_of()))
    assert (r.status, r.reason) == ("skip", "dmidecode is not installed")
    denied = FakeRunner(
        {
            "dmidecode": CommandResult(
                1, "", "/sys/firmware/dmi/tables/smbios_entry_point: Permission denied\n"
            )
        }
    )
    r = host.check_memory_channels(QaContext(build=build, run=denied, which=which_of("dmidecode")))
    assert r.status == "skip"
    assert "root" in r.reason and "Permission denied" in r.reason


def nvme_sys(tmp_path: Path, count: int) -> Path:
    files = {}
    for i in range(count):
        files[f"class/nvme/nvme{i}/model"] = "Test Gen5 4TB       \n"
        files[f"class/nvme/nvme{i}/firmware_rev"] = "PACR5111\n"
        files[f"class/nvme/nvme{i}/nvme{i}n1/size"] = "7814037168\n"  # 512-byte sectors
    return write_tree(tmp_path / "sys", files)


def test_nvme_from_sysfs(tmp_path: Path, build: Build) -> None:
    r = host.check_nvme(QaContext(build=build, sys_root=nvme_sys(tmp_path, 2)))
    assert r.status == "pass"
    assert r.measured["source"] == "sysfs"
    # 7,814,037,168 sectors x 512 B = 4,000,787,030,016 B = 4000.8 GB
    assert r.measured["nvme0"] == "Test Gen5 4TB (4000.8 GB)"


def test_nvme_fewer_than_spec_fails(tmp_path: Path, build: Build) -> None:
    r = host.check_nvme(QaContext(build=build, sys_root=nvme_sys(tmp_path, 1)))
    assert r.status == "fail"
    assert "1 NVMe devices found, the spec has 2" in r.reason


def test_nvme_lsblk_fallback(tmp_path: Path, build: Build) -> None:
    out = {
        "blockdevices": [
            {"name": "nvme0n1", "model": "Test Gen5 4TB", "size": 4000787030016, "tran": "nvme"},
            {"name": "sda", "model": "HDD", "size": 1000, "tran": "sata"},
        ]
    }
    run = FakeRunner({"lsblk": CommandResult(0, json.dumps(out))})
    ctx = QaContext(build=build, sys_root=tmp_path / "empty", run=run, which=which_of("lsblk"))
    r = host.check_nvme(ctx)
    assert r.measured["source"] == "lsblk"
    assert r.measured["count"] == 1  # the SATA disk does not count
    assert r.status == "fail"  # 1 < 2 drives in the spec
