"""The exporter state behind ``fixtures/exporter-scrape-0.0.4.prom``.

Every metric family the exporter can serve is present: all GPU fields on GPU 0, a lost GPU 1,
throttle reasons, ECC and row remapping, XID counters, host and disk readings, the build's PCIe
slot map (``--spec``) and an active alert. The fixture is the text the hand-written exporter (the
one before prometheus_client) served for this state; test_exporter.py compares today's scrape
with it, family by family.
"""

from __future__ import annotations

from rigkit.monitor.exporter import ExporterCache
from rigkit.monitor.sample import DiskSample, Event, GpuSample, HostSample, Sample

NAME = "NVIDIA GeForce RTX 4090"


def scrape_sample(t: float = 50.0, xid: tuple[int, ...] = ()) -> Sample:
    return Sample(
        t=t,
        gpus=(
            GpuSample(
                index=0,
                name=NAME,
                temperature_c=71,
                slowdown_temp_c=88,
                shutdown_temp_c=93,
                thermal_margin_c=17,
                power_w=402.5,
                power_limit_w=450,
                default_power_limit_w=450,
                min_power_limit_w=150,
                fan_pct=64,
                sm_clock_mhz=2520,
                mem_clock_mhz=10501,
                util_pct=99,
                mem_used_mib=21000,
                mem_total_mib=24564,
                pcie_gen=4,
                pcie_width=16,
                pcie_max_gen=4,
                pcie_max_width=16,
                throttle_reasons=("sw_power_cap",),
                ecc_uncorrected=0,
                remapped_rows_pending=False,
                xid=xid,
            ),
            GpuSample.lost_gpu(1, name=NAME),
        ),
        host=HostSample(
            cpu_temp_c=68,
            load1=3.5,
            mem_used_pct=41,
            disks=(
                DiskSample(
                    "nvme0n1",
                    temp_c=52,
                    wear_pct=3,
                    free_pct=40,
                    media_errors=0,
                    critical_warning=0,
                ),
            ),
        ),
        source="test",
        wall_time=1000.0,
    )


def scrape_snapshot_cache() -> ExporterCache:
    """Two samples (XID 79 on GPU 0 in the first), an active alert, a 2-GPU slot map; the clock
    stands 2.5 s after the latest sample."""
    cache = ExporterCache(clock=lambda: 1002.5, expected_pcie=((0, 4, 16), (1, 4, 8)))
    cache.update(scrape_sample(49.0, xid=(79,)))
    cache.update(
        scrape_sample(50.0),
        [Event(40.0, "raised", "gpu_temp_high", "warning", 0, "hot")],
    )
    return cache
