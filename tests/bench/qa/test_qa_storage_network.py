"""Storage reader on a temporary file, fio/iperf3 output parsing, NIC link speeds from fake /sys."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from qa_fakes import FakeRunner, make_build, which_of, write_tree

from rigkit.bench.qa.checks import network, storage
from rigkit.bench.qa.result import CommandResult, QaContext
from rigkit.build import Build
from rigkit.errors import BenchError

MIB = 1 << 20


def test_test_file_is_rounded_to_whole_reads(tmp_path: Path) -> None:
    path = storage.write_test_file(tmp_path, 10 * MIB, block=4 * MIB)
    assert path.stat().st_size == 8 * MIB  # 10 MiB rounded down to two 4 MiB reads
    assert path.parent == tmp_path


def test_direct_reader_reads_every_byte(tmp_path: Path) -> None:
    path = storage.write_test_file(tmp_path, 8 * MIB, block=1 * MIB)
    m = storage.read_sequential(path, 64 * MIB, block=1 * MIB, threads=3)
    assert m.bytes_read == 8 * MIB  # the limit is larger than the 8 MiB file
    assert m.seconds > 0
    # tmp_path's file system either takes O_DIRECT or the reader says it fell back
    assert m.method in (storage.METHOD_DIRECT, storage.METHOD_BUFFERED)
    assert m.mb_s == pytest.approx(8 * MIB / m.seconds / 1e6)


def test_reader_respects_the_limit(tmp_path: Path) -> None:
    path = storage.write_test_file(tmp_path, 8 * MIB, block=1 * MIB)
    m = storage.read_sequential(path, 3 * MIB, block=1 * MIB, threads=2)
    assert m.bytes_read == 3 * MIB


def test_reader_falls_back_when_o_direct_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = storage.write_test_file(tmp_path, 4 * MIB, block=1 * MIB)

    def refuse(p: Path) -> int:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(storage, "_open_direct", refuse)
    m = storage.read_sequential(path, 4 * MIB, block=1 * MIB)
    assert m.method == storage.METHOD_BUFFERED
    assert m.note == "O_DIRECT refused (Invalid argument)"
    assert m.bytes_read == 4 * MIB


def test_parse_fio() -> None:
    text = "note: both iodepth >= 1 and synchronous I/O engine\n" + json.dumps(
        {
            "jobs": [
                {"jobname": "rigkit-seqread", "read": {"bw_bytes": 13_500_000_000, "bw": 13183593}}
            ]
        }
    )
    assert storage.parse_fio(text) == 13.5e9
    old = json.dumps({"jobs": [{"read": {"bw": 1_000_000}}]})
    assert storage.parse_fio(old) == 1_024_000_000  # 1,000,000 KiB/s x 1024


def test_predicted_read_sums_raid0() -> None:
    assert storage.predicted_read(make_build()) == (29000, "RAID 0 'md0' (2 drives)")  # 2 x 14,500
    # no RAID group: one drive with the models role
    assert storage.predicted_read(make_build(raid=False)) == (14500, "Test Gen5 4TB (models)")


def test_storage_check_with_fio_against_raid(tmp_path: Path, build: Build) -> None:
    fio_json = json.dumps({"jobs": [{"read": {"bw_bytes": 20_300_000_000}}]})
    run = FakeRunner({"fio": CommandResult(0, fio_json)})
    ctx = QaContext(
        build=build, storage_path=tmp_path, storage_mb=4, run=run, which=which_of("fio")
    )
    [r] = storage.run(ctx)
    # 20.3e9 B/s = 20,300 MB/s; 20,300 / 29,000 = 0.70: under 0.80 -> warn
    assert r.measured["read_mb_s"] == 20300.0
    assert r.ratio == pytest.approx(0.70)
    assert r.status == "warn"
    assert r.measured["method"] == "fio"
    assert "--direct=1" in run.calls[0]
    assert list(tmp_path.iterdir()) == []  # the test file is removed


def test_storage_check_reads_temp_file_without_fio(tmp_path: Path, build: Build) -> None:
    ctx = QaContext(build=build, storage_path=tmp_path, storage_mb=8, which=which_of())
    [r] = storage.run(ctx)
    assert r.measured["bytes"] == 8 * MIB
    assert r.predicted == {"read_mb_s": 29000}
    assert r.ratio == pytest.approx(float(r.measured["read_mb_s"]) / 29000, rel=1e-3)  # type: ignore[arg-type]
    assert r.throughput == ("read_mb_s",)
    assert list(tmp_path.iterdir()) == []


def test_storage_check_on_existing_file_only_reads(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"\0" * (8 * MIB))
    [r] = storage.run(QaContext(storage_path=target, storage_mb=4, which=which_of()))
    assert r.measured["bytes"] == 4 * MIB
    assert r.status == "pass" and r.ratio is None  # no spec: measured only
    assert target.stat().st_size == 8 * MIB


def test_storage_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="does not exist"):
        storage.run(QaContext(storage_path=tmp_path / "nope"))


# --- network ----------------------------------------------------------------------------------


def net_tree(tmp_path: Path, speeds: dict[str, str | None]) -> Path:
    files = {"class/net/lo/speed": "", "class/net/lo/operstate": "unknown\n"}
    for name, speed in speeds.items():
        files[f"class/net/{name}/device/vendor"] = "0x15b3\n"
        files[f"class/net/{name}/operstate"] = "up\n" if speed else "down\n"
        if speed is not None:
            files[f"class/net/{name}/speed"] = speed + "\n"
    return write_tree(tmp_path / "sys", files)


def test_nic_links_at_rated_speed(tmp_path: Path, build: Build) -> None:
    root = net_tree(tmp_path, {"enp65s0f0np0": "25000", "enp65s0f1np1": "25000", "eno1": "1000"})
    [r] = network.check_links(network.interfaces(root), QaContext(build=build))
    assert r.status == "pass"
    assert r.measured["ports_at_speed"] == 2  # both 25GbE ports; eno1 (1 Gb/s) does not count
    assert "lo" not in r.measured  # no device link: virtual


def test_nic_one_port_down_warns(tmp_path: Path, build: Build) -> None:
    root = net_tree(tmp_path, {"enp65s0f0np0": "25000", "enp65s0f1np1": None})
    [r] = network.check_links(network.interfaces(root), QaContext(build=build))
    assert r.status == "warn"
    assert r.reason.startswith("1 of 2 ports of the Test dual 25GbE NIC at 25 Gb/s")


def test_nic_linked_slow_fails(tmp_path: Path, build: Build) -> None:
    root = net_tree(tmp_path, {"enp65s0f0np0": "10000", "enp65s0f1np1": "-1"})
    [r] = network.check_links(network.interfaces(root), QaContext(build=build))
    assert r.status == "fail"
    assert "fastest link 10000 Mb/s" in r.reason
    assert r.ratio == pytest.approx(0.4)  # 10,000 / 25,000 Mb/s


def iperf_json(bps: float) -> str:
    return json.dumps(
        {
            "start": {},
            "end": {
                "sum_sent": {"bits_per_second": bps + 1e6},
                "sum_received": {"bits_per_second": bps},
            },
        }
    )


def test_iperf3_against_nic_speed(build: Build) -> None:
    run = FakeRunner({"iperf3": CommandResult(0, iperf_json(23.5e9))})
    ctx = QaContext(build=build, iperf_server="10.0.0.2", run=run, which=which_of("iperf3"))
    r = network.check_iperf(ctx)
    # received 23.5 Gb/s of the 25 Gb/s NIC: 0.94
    assert r.measured["gbit_s"] == 23.5
    assert r.ratio == pytest.approx(0.94)
    assert r.status == "pass"
    assert run.calls[0][:4] == ["iperf3", "-c", "10.0.0.2", "-J"]


def test_iperf3_error_and_skips(build: Build) -> None:
    run = FakeRunner(
        {
            "iperf3": CommandResult(
                1, json.dumps({"error": "unable to connect to server: Connection refused"})
            )
        }
    )
    ctx = QaContext(build=build, iperf_server="10.0.0.2", run=run, which=which_of("iperf3"))
    r = network.check_iperf(ctx)
    assert r.status == "fail"
    assert "Connection refused" in r.reason
    assert network.check_iperf(QaContext(build=build)).reason == "no --iperf-server given"
    no_tool = QaContext(build=build, iperf_server="h", which=which_of())
    assert network.check_iperf(no_tool).reason == "iperf3 is not installed"


def test_storage_permission_denied_is_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(directory: Path, size: int, block: int = 0) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(directory))

    monkeypatch.setattr(storage, "write_test_file", denied)
    with pytest.raises(BenchError, match="permission denied") as info:
        storage.run(QaContext(storage_path=tmp_path, storage_mb=4, which=which_of()))
    assert "needs root" in str(info.value)
