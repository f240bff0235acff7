"""The SQLite store: round trip, events, retention arithmetic, and kill -9 during writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.sample import DiskSample, Event, GpuSample, HostSample, Sample
from rigkit.monitor.store import (
    BYTES_PER_AGG_ROW,
    BYTES_PER_DISK_ROW,
    BYTES_PER_GPU_ROW,
    BYTES_PER_SAMPLE_ROW,
    Retention,
    Store,
    default_db_path,
    storage_estimate,
)

T0 = 36000.0  # 10:00:00 on day 0: a whole hour, so minute and hour buckets line up with T0


def _sample(t: float, temp: float | None = 70, power: float | None = 300.0) -> Sample:
    return Sample(
        t=t,
        gpus=(
            GpuSample(index=0, name="NVIDIA GeForce RTX 4090", temperature_c=temp, power_w=power),
        ),
        host=HostSample(cpu_temp_c=60),
        source="test",
        wall_time=t,
    )


def test_round_trip_of_a_full_sample(tmp_path: Path) -> None:
    s = Sample(
        t=100.0,
        gpus=(
            GpuSample(
                index=0,
                name="NVIDIA GeForce RTX 4090",
                uuid="GPU-1",
                pci_bus_id="00000000:01:00.0",
                temperature_c=71,
                power_w=402.5,
                throttle_reasons=("sw_power_cap", "hw_slowdown"),
                xid=(79,),
                remapped_rows_pending=False,
            ),
            GpuSample.lost_gpu(1, name="NVIDIA GeForce RTX 4090"),
        ),
        host=HostSample(
            cpu_temp_c=68,
            load1=12.1,
            mem_used_pct=41,
            disks=(DiskSample("nvme0n1", temp_c=52, wear_pct=3, free_pct=60, media_errors=0),),
            net={"eth0_rx_bytes_s": 1000.0},
        ),
        source="test",
        wall_time=123.0,
    )
    with Store(tmp_path / "m.db") as st:
        st.write_sample(s)
        back = st.latest()
    assert back is not None
    assert back.t == 100.0 and back.wall_time == 123.0
    g0, g1 = back.gpus
    assert (g0.temperature_c, g0.power_w, g0.xid) == (71, 402.5, (79,))
    assert g0.throttle_reasons == ("sw_power_cap", "hw_slowdown")
    assert (g0.name, g0.uuid, g0.pci_bus_id) == (
        "NVIDIA GeForce RTX 4090",
        "GPU-1",
        "00000000:01:00.0",
    )
    assert g0.mem_used_mib is None  # not available stays not available
    assert g1.lost and g1.temperature_c is None
    assert back.host == s.host


def test_events_and_active_alerts(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as st:
        st.write_events(
            [
                Event(10, "raised", "gpu_temp_high", "warning", 0, "GPU 0 hot", value=84),
                Event(11, "raised", "gpu_temp_high", "warning", 1, "GPU 1 hot", value=85),
                Event(
                    12,
                    "action",
                    "thermal_tier1",
                    "critical",
                    1,
                    "would lower",
                    tier=1,
                    dry_run=True,
                ),
                Event(20, "resolved", "gpu_temp_high", "warning", 0, "GPU 0 ok", value=79),
            ]
        )
        active = st.active_alerts()
        events = st.events()
        actions = st.events(kinds=["action"])
        late = st.events(since=12)
        last = st.events(limit=1)
    # GPU 0's alert was resolved at t=20; GPU 1's is still raised
    assert [(e.rule, e.gpu) for e in active] == [("gpu_temp_high", 1)]
    assert [e.t for e in events] == [10, 11, 12, 20]
    assert actions[0].tier == 1 and actions[0].dry_run is True
    assert [e.t for e in late] == [12, 20]
    assert [e.t for e in last] == [20]


def test_reader_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(MonitorError) as err:
        Store(tmp_path / "nope.db", create=False)
    assert "no monitor database" in str(err.value)
    bad = tmp_path / "other.db"
    bad.write_bytes(b"")
    with pytest.raises(MonitorError):
        Store(bad, create=False)


def test_default_path_respects_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "rigkit" / "monitor.db"


def _fill_six_hours(st: Store) -> None:
    # one sample every 5 s for 6 h: 21600 / 5 = 4320 samples; temperature cycles 60..71 so that
    # each minute (12 samples) has min 60, max 71, mean 65.5
    for k in range(4320):
        st.write_sample(_sample(T0 + 5 * k, temp=60 + k % 12, power=None))


def test_downsampling_arithmetic(tmp_path: Path) -> None:
    ret = Retention(raw_s=3600, minute_s=7200, hour_s=None)
    with Store(tmp_path / "m.db", retention=ret) as st:
        _fill_six_hours(st)
        now = T0 + 21600
        r = st.compact(now)
        # raw kept from floor((now - 3600) / 60) * 60 = T0 + 18000: samples k >= 3600 -> 720 kept
        assert st.count_samples() == 720
        assert r.raw_samples_folded == 3600
        # series with data: gpu0.temperature_c, gpu0.lost (always 0/1), host.cpu_temp_c = 3
        # (power is all null, so it has no series). 3600 folded samples = 300 minutes x 3 series
        assert r.minute_rows_written == 900
        # minutes before floor((now - 7200) / 3600) * 3600 = T0 + 14400 fold into hours:
        # 240 minutes x 3 series folded, 4 hours x 3 series written, 60 minutes x 3 left
        assert r.minute_rows_folded == 720
        assert r.hour_rows_written == 12
        assert st.count_agg(60) == 180
        assert st.count_agg(3600) == 12
        hist = st.history("temperature_c", gpu=0)
        by_res = {res: [p for p in hist if p.resolution_s == res] for res in (0, 60, 3600)}
        assert [len(by_res[r]) for r in (0, 60, 3600)] == [720, 60, 4]
        h0 = by_res[3600][0]
        # an hour holds 720 samples cycling 60..71: mean (60 + 71) / 2 = 65.5
        assert (h0.t, h0.min, h0.value, h0.max, h0.n) == (T0, 60, 65.5, 71, 720)
        # compacting again at the same time changes nothing
        again = st.compact(now)
        assert (again.raw_samples_folded, again.minute_rows_written, again.hour_rows_written) == (
            0,
            0,
            0,
        )
        # a late sample in an hour already folded merges instead of overwriting:
        # n 720 -> 721, mean (65.5 * 720 + 100) / 721
        st.write_sample(_sample(T0 + 30, temp=100, power=None))
        st.compact(now)
        h0 = next(p for p in st.history("temperature_c", gpu=0) if p.resolution_s == 3600)
        assert h0.n == 721
        assert h0.value == pytest.approx((65.5 * 720 + 100) / 721)
        assert h0.max == 100


def test_hour_rows_expire(tmp_path: Path) -> None:
    ret = Retention(raw_s=60, minute_s=3600, hour_s=7200)
    with Store(tmp_path / "m.db", retention=ret) as st:
        for k in range(3 * 60):  # 3 h at one sample per minute
            st.write_sample(_sample(T0 + 60 * k, power=None))
        r = st.compact(T0 + 3 * 3600 + 3600)
        # now = T0 + 4 h: hours ending at or before now - 2 h = T0 + 2 h are dropped: T0 and T0+1h
        assert r.hour_rows_dropped == 2 * 3  # 3 series
        assert {p.t for p in st.history("temperature_c", gpu=0)} == {T0 + 7200}


def test_storage_estimate_for_a_year_of_8_gpus() -> None:
    e = storage_estimate(gpus=8, disks=2, interval_s=1.0)
    # raw: 7 days at 1 Hz = 7 * 86400 = 604800 samples, x 8 GPUs = 4838400 rows, x 2 disks = 1209600
    assert (e.raw_sample_rows, e.raw_gpu_rows, e.raw_disk_rows) == (604800, 4838400, 1209600)
    # series: 8 GPUs x 12 + 3 host + 2 disks x 3 = 105
    # minutes: days 7..90 = 83 d = 119520 min x 105 = 12549600 rows
    assert e.minute_rows == 12549600
    # hours: days 90..365 = 275 d = 6600 h x 105 = 693000 rows
    assert e.hour_rows == 693000
    expected = (
        604800 * BYTES_PER_SAMPLE_ROW
        + 4838400 * BYTES_PER_GPU_ROW
        + 1209600 * BYTES_PER_DISK_ROW
        + (12549600 + 693000) * BYTES_PER_AGG_ROW
    )
    assert e.bytes_total == expected
    # with the measured row sizes (65, 72, 27, 30 B) that is 817.6 MB, against
    # 365 * 86400 * (65 + 8 * 72 + 2 * 27) = 21.9 GB for a year of raw samples
    assert e.bytes_total == 817_614_000
    short = storage_estimate(span_s=3600.0)
    assert (short.raw_sample_rows, short.minute_rows, short.hour_rows) == (3600, 0, 0)


def test_history_rejects_unknown_metric(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as st, pytest.raises(MonitorError) as err:
        st.history("temperature")
    assert "temperature_c" in str(err.value)


WRITER = r"""
import sys
from rigkit.monitor.sample import GpuSample, HostSample, Sample
from rigkit.monitor.store import Store

st = Store(sys.argv[1])
k = 0
while True:
    gpus = tuple(GpuSample(index=i, temperature_c=60 + i, power_w=300.5, util_pct=99) for i in range(8))
    st.write_sample(Sample(t=float(k), gpus=gpus, host=HostSample(cpu_temp_c=60), source="w", wall_time=0.0))
    print(k, flush=True)
    k += 1
"""


@pytest.mark.parametrize("kill_after", [50, 400])
def test_kill_9_during_writes_loses_no_committed_sample(tmp_path: Path, kill_after: int) -> None:
    db = tmp_path / "m.db"
    committed: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(committed) < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: most likely inside a transaction
        rest = proc.stdout.read()
        proc.wait()
    committed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    assert len(committed) >= kill_after
    with Store(db, create=False) as st:
        assert st.integrity_check() == "ok"
        stored = {int(t) for t in st.sample_times()}
    missing = set(committed) - stored
    assert missing == set()
    # at most one sample committed after the last number printed (killed between commit and print)
    assert len(stored - set(committed)) <= 1


def test_disk_and_host_fold_into_minutes(tmp_path: Path) -> None:
    # 12 samples 5 s apart in the minute at T0; disk temperature 40..51, CPU 60 throughout
    ret = Retention(raw_s=60, minute_s=7200, hour_s=None)
    with Store(tmp_path / "m.db", retention=ret) as st:
        for k in range(12):
            st.write_sample(
                Sample(
                    t=T0 + 5 * k,
                    gpus=(),
                    host=HostSample(
                        cpu_temp_c=60, disks=(DiskSample(name="nvme0n1", temp_c=40 + k),)
                    ),
                    source="test",
                    wall_time=T0 + 5 * k,
                )
            )
        r = st.compact(T0 + 180)  # raw cut: floor((T0 + 180 - 60) / 60) * 60 = T0 + 120
        # series with data: host.cpu_temp_c and disk.nvme0n1.temp_c, one minute each
        assert (r.raw_samples_folded, r.minute_rows_written) == (12, 2)
        (d,) = st.history("disk.temp_c")
        # disk: min 40, mean (40 + 51) / 2 = 45.5, max 51 over 12 samples
        assert (d.t, d.min, d.value, d.max, d.n, d.resolution_s) == (T0, 40, 45.5, 51, 12, 60)
        (c,) = st.history("cpu_temp_c")
        assert (c.t, c.min, c.value, c.max, c.n) == (T0, 60, 60, 60, 12)
