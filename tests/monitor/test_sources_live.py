"""Kernel-log XIDs, host (psutil), smartctl and the composite live source, on fakes and fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rigkit.monitor.sample import DiskSample, GpuSample
from rigkit.monitor.sources.composite import CompositeSource, add_kernel_xids, merge_disks
from rigkit.monitor.sources.host import HostSource, cpu_temperature, disk_name
from rigkit.monitor.sources.kmsg import KernelLogXids, bus_key, parse_xid_lines
from rigkit.monitor.sources.smartctl import SmartctlReader, disk_name_for, parse_smartctl

FIX = Path(__file__).parent / "fixtures"


# -- kernel log ------------------------------------------------------------------------------


def test_xid_lines_are_parsed() -> None:
    recs = parse_xid_lines((FIX / "kmsg-xid.txt").read_text().splitlines())
    assert [(r.bus_id, r.xid) for r in recs] == [("0000:21:00", 79), ("0000:01:00", 13)]


def test_kernel_and_nvml_bus_ids_match() -> None:
    # kernel: domain 0000, bus 21, device 00; NVML: 8-digit domain and a function
    assert bus_key("0000:21:00") == bus_key("00000000:21:00.0") == (0, 0x21, 0)
    assert bus_key("01:00") == (0, 1, 0)
    with pytest.raises(ValueError):
        bus_key("garbage")


def test_file_tail_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("NVRM: Xid (PCI:0000:01:00): 48, old line\n")
    reader = KernelLogXids(log)  # starts at the end: the old XID 48 is not reported
    assert reader.poll() == []
    with log.open("a") as f:
        f.write("NVRM: Xid (PCI:0000:01:00): 79, pid=1\nNVRM: Xid (PCI:0000:01:00): 9")
    assert [r.xid for r in reader.poll()] == [79]  # the unfinished line waits
    with log.open("a") as f:
        f.write("4, pid=2\n")
    assert [r.xid for r in reader.poll()] == [94]
    assert [r.xid for r in KernelLogXids(log, from_start=True).poll()] == [48, 79, 94]


def test_unreadable_log_disables_the_reader(tmp_path: Path) -> None:
    reader = KernelLogXids(tmp_path / "missing.log")
    assert reader.enabled is False and reader.poll() == []


def test_kernel_xids_go_to_the_gpu_at_that_address() -> None:
    gpus = (
        GpuSample(index=0, pci_bus_id="00000000:01:00.0"),
        GpuSample(index=1, pci_bus_id="00000000:21:00.0", xid=(79,)),
    )
    out = add_kernel_xids(gpus, [("0000:21:00", 79), ("0000:01:00", 13), ("0000:99:00", 48)])
    assert out[0].xid == (13,)
    assert out[1].xid == (79,)  # already reported by NVML events: not doubled


# -- host ------------------------------------------------------------------------------------


def _t(label: str, current: float) -> Any:
    return SimpleNamespace(label=label, current=current)


def test_cpu_temperature_prefers_package_sensors() -> None:
    assert cpu_temperature({"k10temp": [_t("Tccd1", 60), _t("Tctl", 68.5)]}) == 68.5
    assert cpu_temperature({"coretemp": [_t("Core 0", 50), _t("Package id 0", 55)]}) == 55
    assert cpu_temperature({"k10temp": [_t("Tccd1", 60), _t("Tccd2", 64)]}) == 64  # hottest CCD
    assert cpu_temperature({"acpitz": [_t("", 30)]}) is None


@pytest.mark.parametrize(
    ("dev", "name"),
    [
        ("/dev/nvme0n1p2", "nvme0n1"),
        ("/dev/nvme1n1", "nvme1n1"),
        ("/dev/sda1", "sda"),
        ("/dev/md0", None),
    ],
)
def test_disk_name(dev: str, name: str | None) -> None:
    assert disk_name(dev) == name


class FakePsutil:
    def __init__(self) -> None:
        self.rx = 0

    def sensors_temperatures(self) -> dict[str, list[Any]]:
        return {"k10temp": [_t("Tctl", 68.0)]}

    def getloadavg(self) -> tuple[float, float, float]:
        return (12.1, 10.0, 8.0)

    def virtual_memory(self) -> Any:
        return SimpleNamespace(percent=41.0)

    def disk_partitions(self, all: bool = False) -> list[Any]:
        return [
            SimpleNamespace(device="/dev/nvme0n1p2", mountpoint="/"),
            SimpleNamespace(device="/dev/nvme0n1p3", mountpoint="/data"),
            SimpleNamespace(device="/dev/nvme1n1p1", mountpoint="/models"),
        ]

    def disk_usage(self, path: str) -> Any:
        return SimpleNamespace(percent={"/": 40.0, "/data": 75.0, "/models": 10.0}[path])

    def net_io_counters(self, pernic: bool = False) -> dict[str, Any]:
        self.rx += 2_500_000
        return {
            "lo": SimpleNamespace(bytes_recv=9, bytes_sent=9),
            "eth0": SimpleNamespace(bytes_recv=self.rx, bytes_sent=0),
        }


def test_host_source_reads_psutil() -> None:
    now = [0.0]
    src = HostSource(FakePsutil(), clock=lambda: now[0])
    h = src.read().host
    assert h is not None
    assert (h.cpu_temp_c, h.load1, h.mem_used_pct) == (68.0, 12.1, 41.0)
    # nvme0n1 has / (60 % free) and /data (25 % free): the lower one counts
    assert {d.name: d.free_pct for d in h.disks} == {"nvme0n1": 25.0, "nvme1n1": 90.0}
    assert h.net is None  # rates need two readings
    now[0] = 2.0
    h2 = src.read_host()
    # 2.5 MB received in 2 s = 1.25 MB/s; lo is left out
    assert h2.net == {"eth0_rx_bytes_s": 1_250_000.0, "eth0_tx_bytes_s": 0.0}


# -- smartctl --------------------------------------------------------------------------------


def test_smartctl_fixture_is_parsed() -> None:
    d = parse_smartctl(json.loads((FIX / "smartctl-nvme0.json").read_text()))
    assert d == DiskSample(
        "nvme0n1", temp_c=52, wear_pct=3, free_pct=None, media_errors=0, critical_warning=0
    )


def test_smartctl_reader_caches_and_tolerates_failures() -> None:
    doc = (FIX / "smartctl-nvme0.json").read_text()
    calls: list[str] = []

    def runner(argv: Any, timeout: float) -> tuple[int, str]:
        calls.append(argv[-1])
        if argv[-1] == "/dev/nvme1":
            return (
                2,
                '{"smartctl": {"messages": [{"string": "Permission denied"}]}}',
            )  # bit 1: open failed
        return 4 * 16, doc  # bit 6 (error log has entries) is informational, not fatal

    now = [0.0]
    r = SmartctlReader(
        ["/dev/nvme0", "/dev/nvme1"], runner=runner, clock=lambda: now[0], min_interval_s=60
    )
    assert [d.name for d in r.read()] == ["nvme0n1"]
    now[0] = 30.0
    r.read()
    assert len(calls) == 2  # within 60 s: cached, smartctl not run again
    now[0] = 61.0
    r.read()
    assert len(calls) == 4
    assert disk_name_for("/dev/nvme3") == "nvme3n1" and disk_name_for("/dev/nvme3n1") == "nvme3n1"


# -- composite -------------------------------------------------------------------------------


def test_merge_disks_takes_health_from_smart_and_space_from_host() -> None:
    host = (DiskSample("nvme0n1", free_pct=25.0), DiskSample("sda", free_pct=50.0))
    smart = (DiskSample("nvme0n1", temp_c=52, wear_pct=3),)
    merged = {d.name: d for d in merge_disks(host, smart)}
    assert merged["nvme0n1"] == DiskSample("nvme0n1", temp_c=52, wear_pct=3, free_pct=25.0)
    assert merged["sda"].free_pct == 50.0


def test_composite_with_host_only(tmp_path: Path) -> None:
    doc = (FIX / "smartctl-nvme0.json").read_text()
    smart = SmartctlReader(["/dev/nvme0"], runner=lambda argv, t: (0, doc))
    src = CompositeSource(None, HostSource(FakePsutil()), smart=smart)
    s = src.read()
    assert s.gpus == () and s.host is not None
    d = {x.name: x for x in s.host.disks}["nvme0n1"]
    assert (d.temp_c, d.wear_pct, d.free_pct) == (52, 3, 25.0)
    src.close()


def test_kernel_log_from_a_following_command() -> None:
    import time

    # stands in for `journalctl -k -f -o cat`: prints one XID line, then waits
    cmd = [
        "sh",
        "-c",
        "printf 'NVRM: Xid (PCI:0000:21:00): 79, pid=1, fell off the bus\\n'; sleep 30",
    ]
    reader = KernelLogXids(command=cmd)
    try:
        recs: list[int] = []
        deadline = time.monotonic() + 10
        while not recs and time.monotonic() < deadline:
            recs = [r.xid for r in reader.poll()]  # never blocks
            time.sleep(0.02)
        assert recs == [79]
        assert reader.poll() == []
    finally:
        reader.close()
