"""Small hand-written parts and a reference-like build for the rule tests.

The numbers are chosen to make the arithmetic easy to follow in the tests, not copied from the
catalog. The reference-like build ("ref"):

    system load: CPU 350 + board 60 + memory 8 x 10 + drives 3 x 10 + NIC 10 + fans 6 x 5
                 + cooler 10 = 570 W
    GPUs:        4 x 450 = 1800 W          sustained DC 2370 W
    PSU split:   PSU0 1600 W: system + gpu0 + gpu2 = 1470 W; PSU1 1000 W: gpu1 + gpu3 = 900 W
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rigkit.build import Build, PlacedDevice, PlacedDrive, PlacedGpu, Site
from rigkit.catalog.loader import Catalog
from rigkit.catalog.parts import (
    Case,
    CloudInstance,
    Cooler,
    Cpu,
    Fan,
    Gpu,
    M2Slot,
    MemoryKit,
    Motherboard,
    Nic,
    Nvme,
    PcieSlot,
    Psu,
    Ups,
)

SRC = "test part"
CURVE = [(0.1, 0.90), (0.2, 0.92), (0.5, 0.94), (1.0, 0.90)]


def gpu(**kw: Any) -> Gpu:
    base: dict[str, Any] = dict(
        id="rtx-4090",
        name="RTX 4090",
        source=SRC,
        architecture="ada",
        vram_gb=24,
        memory_type="gddr6x",
        bandwidth_gb_s=1008,
        fp32_tflops=82.6,
        fp16_tflops=165.2,
        bf16_tflops=165.2,
        int8_tops=660.6,
        tdp_w=450,
        max_power_limit_w=600,
        power_connectors={"12vhpwr": 1},
        slot_width=3.0,
        length_mm=304,
        pcie_gen=4,
        p2p=False,
        transient_peak_ratio=1.5,
        price_usd=1800,
    )
    base.update(kw)
    return Gpu(**base)


def cpu(**kw: Any) -> Cpu:
    base: dict[str, Any] = dict(
        id="tr-pro",
        name="TR PRO",
        source=SRC,
        vendor="amd",
        family="tr",
        socket="sTR5",
        cores=32,
        threads=64,
        pcie_lanes=128,
        pcie_gen=5,
        memory_type="ddr5-rdimm",
        memory_channels=8,
        memory_speed_mts=5200,
        ccd_count=4,
        fabric_bandwidth_gb_s=250.0,
        ecc=True,
        tdp_w=350,
        price_usd=4000,
    )
    base.update(kw)
    return Cpu(**base)


def slot(name: str, position: int, **kw: Any) -> PcieSlot:
    base: dict[str, Any] = dict(name=name, position=position, electrical_lanes=16, gen=5)
    base.update(kw)
    return PcieSlot(**base)


def board(**kw: Any) -> Motherboard:
    base: dict[str, Any] = dict(
        id="wrx90",
        name="WRX90 board",
        source=SRC,
        socket="sTR5",
        form_factor="eeb",
        chipset="wrx90",
        memory_type="ddr5-rdimm",
        dimm_slots=8,
        max_memory_gb=2048,
        pcie_slots=[slot(f"S{i}", i) for i in range(1, 8)],
        m2_slots=[M2Slot(name=f"M2_{i}", gen=5) for i in range(1, 5)],
        onboard_nic_gbe=[10.0, 10.0],
        ecc=True,
        price_usd=1300,
    )
    base.update(kw)
    return Motherboard(**base)


def mem(**kw: Any) -> MemoryKit:
    base: dict[str, Any] = dict(
        id="rdimm-64",
        name="64GB RDIMM",
        source=SRC,
        memory_type="ddr5-rdimm",
        module_gb=64,
        speed_mts=5600,
        ecc=True,
        registered=True,
        power_w_per_module=10.0,
        price_usd=400,
    )
    base.update(kw)
    return MemoryKit(**base)


def psu(watts: float, **kw: Any) -> Psu:
    base: dict[str, Any] = dict(
        id=f"psu-{watts:.0f}",
        name=f"PSU {watts:.0f}",
        source=SRC,
        wattage_w=watts,
        efficiency_rating="titanium",
        efficiency_curve=CURVE,
        atx_version="3.1",
        connectors={"12vhpwr": 2, "pcie_8pin": 4, "eps_8pin": 2},
        price_usd=450,
    )
    base.update(kw)
    return Psu(**base)


def nvme(**kw: Any) -> Nvme:
    base: dict[str, Any] = dict(
        id="nvme5",
        name="Gen5 NVMe",
        source=SRC,
        capacity_tb=4,
        pcie_gen=5,
        seq_read_mb_s=14500,
        seq_write_mb_s=12700,
        power_w=10,
        price_usd=300,
    )
    base.update(kw)
    return Nvme(**base)


def nic(**kw: Any) -> Nic:
    base: dict[str, Any] = dict(
        id="cx4",
        name="2x25G NIC",
        source=SRC,
        ports=2,
        speed_gbe=25,
        pcie_gen=3,
        lanes=8,
        power_w=10,
        price_usd=275,
    )
    base.update(kw)
    return Nic(**base)


def fan(**kw: Any) -> Fan:
    base: dict[str, Any] = dict(
        id="fan140",
        name="140mm fan",
        source=SRC,
        size_mm=140,
        airflow_cfm=93.3,
        max_rpm=3000,
        power_w=5,
        price_usd=30,
    )
    base.update(kw)
    return Fan(**base)


def cooler(**kw: Any) -> Cooler:
    base: dict[str, Any] = dict(
        id="air",
        name="Air cooler",
        source=SRC,
        kind="air",
        sockets=["sTR5"],
        tdp_rating_w=400,
        power_w=10,
        price_usd=150,
    )
    base.update(kw)
    return Cooler(**base)


def case(**kw: Any) -> Case:
    base: dict[str, Any] = dict(
        id="tower",
        name="Big tower",
        source=SRC,
        form_factors=["eeb", "e-atx", "atx"],
        expansion_slots=8,
        max_gpu_length_mm=400,
        psu_bays=2,
        fan_mounts=10,
        price_usd=300,
    )
    base.update(kw)
    return Case(**base)


def ups(**kw: Any) -> Ups:
    base: dict[str, Any] = dict(
        id="ups3k",
        name="UPS 3000",
        source=SRC,
        va=3000,
        watts=2700,
        battery_wh=864,
        topology="online",
        price_usd=2200,
    )
    base.update(kw)
    return Ups(**base)


def cloud(**kw: Any) -> CloudInstance:
    base: dict[str, Any] = dict(
        id="p4d",
        name="p4d.24xlarge",
        source=SRC,
        provider="aws",
        gpu_id="a100-40gb",
        gpu_count=8,
        price_per_hour_usd=32.77,
        price_as_of="2024",
    )
    base.update(kw)
    return CloudInstance(**base)


def catalog(
    gpus: Sequence[Gpu] = (), ups: Sequence[Ups] = (), cloud: Sequence[CloudInstance] = ()
) -> Catalog:
    """A catalog of just these parts, for the rules that compare a build with the catalog."""
    kinds: dict[str, Any] = {f.name: {} for f in dataclasses.fields(Catalog)}
    kinds.update(
        gpus={g.id: g for g in gpus},
        ups={u.id: u for u in ups},
        cloud={c.id: c for c in cloud},
    )
    return Catalog(**kinds)


def ref(**kw: Any) -> Build:
    """The reference-like build: 4 GPUs in slots 1, 3, 5, 7 (3-slot cards overlap), NIC in
    slot 2? no: the NIC sits in slot 6 behind gpu2, two PSUs, three drives (two in RAID 0)."""
    b = board()
    slots = {s.name: s for s in b.pcie_slots}
    m2 = {s.name: s for s in b.m2_slots}
    g = gpu()
    build = Build(
        name="ref",
        spec_path=None,
        cpu=cpu(),
        motherboard=b,
        memory=mem(),
        memory_modules=8,
        gpus=tuple(PlacedGpu(g, i, slots[f"S{1 + 2 * i}"], 450.0) for i in range(4)),
        psus=(psu(1600), psu(1000)),
        drives=(
            PlacedDrive(
                nvme(id="os", name="OS drive", pcie_gen=4, seq_read_mb_s=7450), m2["M2_1"], "os"
            ),
            PlacedDrive(nvme(), m2["M2_2"], "models", "models"),
            PlacedDrive(nvme(), m2["M2_3"], "models", "models"),
        ),
        nics=(PlacedDevice(nic(), slots["S6"]),),
        fans=((fan(), 6),),
        cooler=cooler(),
        case=case(),
        ups=None,
        site=Site(),
        cloud=cloud(),
    )
    return dataclasses.replace(build, **kw)


def placed(
    build: Build, slot_names: list[str], g: Gpu | None = None, limit: float = 450.0
) -> Build:
    """``build`` with one GPU per named slot (None name: no slot)."""
    slots = {s.name: s for s in build.motherboard.pcie_slots}
    part = g or gpu()
    return dataclasses.replace(
        build,
        gpus=tuple(
            PlacedGpu(part, i, slots.get(n) if n else None, limit) for i, n in enumerate(slot_names)
        ),
    )
