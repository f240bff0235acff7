"""Test doubles for the QA checks: a small reference-like build, fake /sys and /proc trees, fake
programs and a fake GPU probe. Figures in the parts are the makers' published ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rigkit.bench.qa.gpu import GpuDevice, GpuReading
from rigkit.bench.qa.result import CommandResult
from rigkit.build import Build, PlacedDevice, PlacedDrive, PlacedGpu
from rigkit.catalog.parts import Cpu, Gpu, MemoryKit, Motherboard, Nic, Nvme, PcieSlot, Psu

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qa"

RTX_4090 = Gpu(
    id="rtx-4090",
    name="NVIDIA GeForce RTX 4090",
    source="NVIDIA GeForce RTX 4090 specifications; Ada Lovelace architecture whitepaper v1.1",
    architecture="ada",
    vram_gb=24,
    memory_type="gddr6x",
    bandwidth_gb_s=1008,
    fp32_tflops=82.6,
    fp16_tflops=165.2,
    fp16_acc16_tflops=330.3,
    bf16_tflops=165.2,
    fp8_tflops=330.3,
    int8_tops=660.6,
    tdp_w=450,
    power_connectors={"12vhpwr": 1},
    slot_width=3.0,
    pcie_gen=4,
    p2p=False,
    slowdown_temp_c=90,
)

TR_7975WX = Cpu(
    id="threadripper-pro-7975wx",
    name="AMD Ryzen Threadripper PRO 7975WX",
    source="AMD product page, Ryzen Threadripper PRO 7975WX",
    vendor="amd",
    family="threadripper-pro-7000wx",
    socket="sTR5",
    cores=32,
    threads=64,
    pcie_lanes=128,
    pcie_gen=5,
    memory_type="ddr5-rdimm",
    memory_channels=8,
    memory_speed_mts=5200,
    tdp_w=350,
)

SLOTS = [
    PcieSlot(name=f"PCIEX16_{i}", position=2 * i - 1, electrical_lanes=16, gen=5)
    for i in range(1, 5)
]

BOARD = Motherboard(
    id="test-wrx90-board",
    name="Test WRX90 board",
    source="test fixture modelled on an ASUS Pro WS WRX90E-SAGE SE manual",
    socket="sTR5",
    form_factor="eeb",
    chipset="wrx90",
    memory_type="ddr5-rdimm",
    dimm_slots=8,
    max_memory_gb=2048,
    pcie_slots=SLOTS,
)

RDIMM_64 = MemoryKit(
    id="ddr5-5600-rdimm-64gb",
    name="64 GB DDR5-5600 ECC RDIMM",
    source="JEDEC DDR5 RDIMM module datasheet",
    memory_type="ddr5-rdimm",
    module_gb=64,
    speed_mts=5600,
    ecc=True,
    registered=True,
)

PSU = Psu(
    id="test-1600w",
    name="Test 1600 W ATX 3.0",
    source="test fixture modelled on a 1600 W 80 PLUS Titanium ATX 3.0 unit",
    wattage_w=1600,
    efficiency_rating="titanium",
    efficiency_curve=[(0.1, 0.9), (0.2, 0.92), (0.5, 0.94), (1.0, 0.9)],
    atx_version="3.0",
    connectors={"12vhpwr": 2, "pcie_8pin": 6, "eps_8pin": 2},
)

GEN5_SSD = Nvme(
    id="test-gen5-4tb",
    name="Test Gen5 4TB",
    source="test fixture modelled on a Crucial T705 4TB data sheet",
    capacity_tb=4,
    pcie_gen=5,
    seq_read_mb_s=14500,
    seq_write_mb_s=12700,
    power_w=10,
)

NIC_25G = Nic(
    id="test-25gbe-2p",
    name="Test dual 25GbE NIC",
    source="test fixture modelled on an NVIDIA ConnectX-6 Lx data sheet",
    ports=2,
    speed_gbe=25,
    pcie_gen=4,
    lanes=8,
    power_w=12,
)


def make_build(gpus: int = 4, modules: int = 8, raid: bool = True) -> Build:
    return Build(
        name="qa-test-4x4090",
        spec_path=None,
        cpu=TR_7975WX,
        motherboard=BOARD,
        memory=RDIMM_64,
        memory_modules=modules,
        gpus=tuple(PlacedGpu(RTX_4090, i, SLOTS[i], 450.0) for i in range(gpus)),
        psus=(PSU,),
        drives=(
            PlacedDrive(GEN5_SSD, None, "models", "md0" if raid else None),
            PlacedDrive(GEN5_SSD, None, "models", "md0" if raid else None),
        ),
        nics=(PlacedDevice(NIC_25G, None),),
    )


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


class FakeRunner:
    """Canned program output by argv[0]; records the calls."""

    def __init__(self, outputs: dict[str, CommandResult]) -> None:
        self.outputs = outputs
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        self.calls.append(list(argv))
        if argv[0] not in self.outputs:
            raise FileNotFoundError(argv[0])
        return self.outputs[argv[0]]


def which_of(*present: str) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in present else None


class FakeProbe:
    """A GPU probe with fixed devices and readings."""

    def __init__(self, devices: list[GpuDevice], readings: list[GpuReading] | None = None) -> None:
        self._devices = devices
        self._readings = readings or []
        self.closed = False

    def devices(self) -> list[GpuDevice]:
        return self._devices

    def readings(self) -> list[GpuReading]:
        return self._readings

    def xids(self, wait_ms: int) -> list[tuple[int, int]]:
        return []

    def close(self) -> None:
        self.closed = True
