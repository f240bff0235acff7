"""Schemas of the parts catalog (one pydantic model per part kind).

Conventions: units live in field names (``_w``, ``_gb``, ``_gb_s``, ``_mm``, ``_tflops``); every entry
has a ``source`` (spec sheet, manual or standard it was taken from) and may add per-field sources in
``sources`` (field name -> source) where a figure came from somewhere else. Optional figures are
``None`` when the maker does not publish them; code treats ``None`` as "not known", never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Part(BaseModel):
    """Fields shared by every catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    name: str
    source: str = Field(min_length=3, description="where the figures come from")
    sources: dict[str, str] = Field(default_factory=dict, description="per-field sources")
    price_usd: float | None = Field(default=None, ge=0, description="typical street price")
    notes: str | None = None


# --- GPUs -------------------------------------------------------------------------------------


class Gpu(Part):
    vendor: Literal["nvidia", "amd", "intel"] = "nvidia"
    architecture: str
    vram_gb: float = Field(gt=0, description="memory in GB (1e9 bytes), as marketed (24 GB)")
    memory_type: str
    bandwidth_gb_s: float = Field(gt=0, description="peak memory bandwidth")
    fp32_tflops: float = Field(gt=0, description="non-tensor FP32")
    fp16_tflops: float = Field(gt=0, description="dense FP16 tensor, FP32 accumulate")
    fp16_acc16_tflops: float | None = Field(
        default=None, description="dense FP16 tensor with FP16 accumulate (GeForce: 2x)"
    )
    bf16_tflops: float = Field(gt=0, description="dense BF16 tensor, FP32 accumulate")
    fp8_tflops: float | None = Field(default=None, description="dense FP8 tensor; None: no FP8")
    int8_tops: float = Field(gt=0, description="dense INT8 tensor")
    tdp_w: float = Field(gt=0, description="total board power (default power limit)")
    max_power_limit_w: float | None = Field(default=None, description="highest settable limit")
    min_power_limit_w: float | None = Field(default=None, description="lowest settable limit")
    power_connectors: dict[Literal["12vhpwr", "pcie_8pin", "eps_8pin", "none"], int] = Field(
        description="board power inputs, e.g. {12vhpwr: 1}, {pcie_8pin: 2}; datacenter cards with"
        " an 8-pin CPU (EPS-12V) input use eps_8pin"
    )
    form_factor: Literal["pcie", "sxm"] = "pcie"
    cooling: Literal["open-air", "blower", "passive", "sxm"] = "open-air"
    slot_width: float = Field(gt=0, description="expansion slots occupied (3.0, 2.0, ...)")
    length_mm: float | None = Field(default=None, gt=0)
    pcie_gen: int = Field(ge=3, le=6)
    pcie_lanes: int = 16
    p2p: bool = Field(description="PCIe peer-to-peer enabled by the driver")
    nvlink: bool = False
    nvlink_bandwidth_gb_s: float | None = Field(
        default=None, description="per-GPU NVLink bandwidth, both directions"
    )
    slowdown_temp_c: float | None = Field(default=None, description="hardware slowdown threshold")
    shutdown_temp_c: float | None = Field(default=None, description="hardware shutdown threshold")
    max_operating_temp_c: float | None = Field(default=None, description="maker's max GPU temp")
    transient_peak_ratio: float | None = Field(
        default=None, description="measured ~1-10 ms power excursion / board power (reviews)"
    )
    ecc: bool = False
    sm_count: int | None = Field(
        default=None, gt=0, description="streaming multiprocessors (the maker's whitepaper)"
    )
    boost_clock_mhz: float | None = Field(
        default=None, gt=0, description="maker's rated boost clock, MHz"
    )
    l2_cache_mb: float | None = Field(default=None, gt=0, description="L2 cache, MB")


# --- CPUs, boards, memory ---------------------------------------------------------------------


class Cpu(Part):
    vendor: Literal["amd", "intel"]
    family: str
    socket: str
    cores: int = Field(gt=0)
    threads: int = Field(gt=0)
    base_clock_ghz: float | None = None
    boost_clock_ghz: float | None = None
    pcie_lanes: int = Field(gt=0, description="CPU PCIe lanes usable for devices")
    pcie_gen: int = Field(ge=3, le=6)
    memory_type: str = Field(description="e.g. ddr5-rdimm, ddr5-udimm")
    memory_channels: int = Field(gt=0)
    memory_speed_mts: int = Field(gt=0, description="highest officially supported speed")
    ccd_count: int | None = Field(default=None, description="compute dies (AMD) or None")
    fabric_bandwidth_gb_s: float | None = Field(
        default=None, description="CPU-side read bandwidth cap from the fabric (CCD links)"
    )
    ecc: bool = False
    tdp_w: float = Field(gt=0)


class PcieSlot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="as printed on the board, e.g. PCIEX16_1")
    position: int = Field(ge=1, description="expansion-slot position from the top (20.32 mm pitch)")
    physical_lanes: int = 16
    electrical_lanes: int
    gen: int
    source: Literal["cpu", "chipset"] = "cpu"
    shares_with: list[str] = Field(
        default_factory=list, description="M.2/slot names whose use reduces or disables this one"
    )
    shared_lanes: int | None = Field(
        default=None, description="electrical lanes left when a shares_with device is used"
    )


class M2Slot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    gen: int
    lanes: int = 4
    source: Literal["cpu", "chipset"] = "cpu"
    shares_with: list[str] = Field(default_factory=list)


#: BIOS settings the build book can name a menu path for (rigkit.guide.bios)
BiosKey = Literal[
    "above_4g",
    "rebar",
    "csm",
    "pcie_speed",
    "bifurcation",
    "iommu",
    "memory_profile",
    "ecc",
    "nps",
    "ac_power_loss",
    "fan_control",
]


class BoardBios(BaseModel):
    """Where the board's setup program keeps the settings a build must change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=3, description="the manual (chapter) the paths come from")
    menus: dict[BiosKey, str] = Field(
        default_factory=dict, description="setting -> menu path, e.g. 'Advanced > ...'"
    )
    debug: Literal["qcode", "qled", "none"] = Field(
        default="none", description="two-digit Q-code display, status LEDs, or nothing"
    )


class Motherboard(Part):
    socket: str
    form_factor: str = Field(description="e-atx, eeb, ceb, atx, ...")
    chipset: str
    memory_type: str
    dimm_slots: int = Field(gt=0)
    max_memory_gb: int = Field(gt=0)
    pcie_slots: list[PcieSlot]
    m2_slots: list[M2Slot] = Field(default_factory=list)
    onboard_nic_gbe: list[float] = Field(default_factory=list, description="onboard ports, Gb/s")
    bmc: bool = False
    ecc: bool | None = Field(
        default=None, description="ECC memory supported by the board; None: the maker does not say"
    )
    eps_8pin: int = Field(default=2, description="CPU power inputs")
    pcie_aux_power: list[str] = Field(
        default_factory=list, description="extra board power inputs for slots (e.g. 6pin)"
    )
    dimm_population: dict[int, list[str]] = Field(
        default_factory=dict,
        description="module count -> DIMM slot names to fill, from the manual's population table",
    )
    bios: BoardBios | None = Field(default=None, description="setup-program menu paths")


class MemoryKit(Part):
    """One module type; a spec says how many modules."""

    memory_type: str = Field(description="ddr5-rdimm, ddr5-udimm, ddr4-rdimm, ...")
    module_gb: int = Field(gt=0)
    speed_mts: int = Field(gt=0)
    ecc: bool
    registered: bool
    power_w_per_module: float = 10.0


# --- power ------------------------------------------------------------------------------------


class Psu(Part):
    wattage_w: float = Field(gt=0)
    efficiency_rating: str = Field(description="80 PLUS level: titanium, platinum, gold, ...")
    efficiency_curve: list[tuple[float, float]] = Field(
        description="(load fraction, efficiency) at 115 V, ascending load"
    )
    atx_version: str = Field(description="'3.1', '3.0' or '2.x'")
    connectors: dict[Literal["12vhpwr", "pcie_8pin", "eps_8pin"], int]
    form_factor: str = "atx"
    length_mm: float | None = None
    min_input_voltage_v: float | None = Field(
        default=None,
        description="lowest AC input at which the rated wattage is available (None: 100-240 V)",
    )


#: AC input plugs (or inlets) of UPS units, by the id used in the catalog's ``input_plug``
InputPlug = Literal[
    "5-15P",
    "5-20P",
    "L5-20P",
    "L5-30P",
    "6-20P",
    "L6-20P",
    "L6-30P",
    "IEC-60320-C14",
    "IEC-60320-C20",
    "CEE-7/7",
    "BS-1363",
]


@dataclass(frozen=True)
class PlugRating:
    """What a UPS input plug is rated for and what it plugs into.

    ``detachable``: the plug is an appliance inlet (IEC 60320) on the unit; the cord, and so the
    wall plug, is chosen for the country. ``nema``: a North American NEMA plug, whose receptacle
    may only sit on a circuit of the ratings NEC Table 210.21(B)(3) allows.
    """

    name: str  # as printed for people: "NEMA L5-30P"
    current_a: float  # rated current of the plug / inlet
    voltage_v: float  # rated voltage of the plug / inlet
    receptacle: str  # what it mates with: "NEMA L5-30R", "IEC 60320 C19 cord connector"
    nema: bool = False
    detachable: bool = False
    source: str = ""


_NEMA = "NEMA WD 6 (dimensional and rating standard) / UL 498"
_IEC = "IEC 60320-1 (appliance couplers); UL rating 15 A (C14) / 20 A (C20)"

#: rated current and voltage of every :data:`InputPlug` (their standards, in ``source``)
INPUT_PLUGS: dict[str, PlugRating] = {
    "5-15P": PlugRating("NEMA 5-15P", 15, 125, "NEMA 5-15R", nema=True, source=_NEMA),
    "5-20P": PlugRating("NEMA 5-20P", 20, 125, "NEMA 5-20R", nema=True, source=_NEMA),
    "L5-20P": PlugRating("NEMA L5-20P", 20, 125, "NEMA L5-20R", nema=True, source=_NEMA),
    "L5-30P": PlugRating("NEMA L5-30P", 30, 125, "NEMA L5-30R", nema=True, source=_NEMA),
    "6-20P": PlugRating("NEMA 6-20P", 20, 250, "NEMA 6-20R", nema=True, source=_NEMA),
    "L6-20P": PlugRating("NEMA L6-20P", 20, 250, "NEMA L6-20R", nema=True, source=_NEMA),
    "L6-30P": PlugRating("NEMA L6-30P", 30, 250, "NEMA L6-30R", nema=True, source=_NEMA),
    "IEC-60320-C14": PlugRating(
        "IEC 60320 C14 inlet", 10, 250, "a C13 cord", detachable=True, source=_IEC
    ),
    "IEC-60320-C20": PlugRating(
        "IEC 60320 C20 inlet", 16, 250, "a C19 cord", detachable=True, source=_IEC
    ),
    "CEE-7/7": PlugRating(
        "CEE 7/7 (Schuko) plug", 16, 250, "a CEE 7/3 or 7/5 socket", source="IEC/TR 60083 (CEE 7)"
    ),
    "BS-1363": PlugRating(
        "BS 1363 plug", 13, 250, "a BS 1363 socket (13 A fuse)", source="BS 1363-1"
    ),
}


class Ups(Part):
    va: float = Field(gt=0)
    watts: float = Field(gt=0)
    battery_wh: float = Field(gt=0)
    topology: Literal["online", "line-interactive", "standby"]
    output_voltage_v: float = Field(
        default=120, description="nominal output voltage; also the unit's nominal input voltage"
    )
    input_plug: InputPlug | None = Field(
        default=None,
        description="AC input plug or inlet (rating in INPUT_PLUGS); None: not taken down yet",
    )
    runtime_chart: list[tuple[float, float]] = Field(
        default_factory=list, description="(load W, minutes) from the maker's runtime chart"
    )
    efficiency_full_load: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="fraction of its input power the unit delivers at (near) full load in its "
        "normal operating mode (online: double conversion, not an ECO/green bypass mode; "
        "line-interactive and standby: line mode), from the maker's sheet; None: not taken down, "
        "the power model then uses its default for the topology",
    )

    @property
    def plug(self) -> PlugRating | None:
        """The rating of :attr:`input_plug` (None when the entry does not state it)."""
        return None if self.input_plug is None else INPUT_PLUGS[self.input_plug]


# --- storage, network, cooling, case ----------------------------------------------------------


class Nvme(Part):
    capacity_tb: float = Field(gt=0)
    pcie_gen: int
    lanes: int = 4
    seq_read_mb_s: float = Field(gt=0)
    seq_write_mb_s: float = Field(gt=0)
    endurance_tbw: float | None = None
    power_w: float = Field(gt=0, description="active power")


class Nic(Part):
    ports: int = Field(gt=0)
    speed_gbe: float = Field(gt=0, description="per port, Gb/s")
    pcie_gen: int
    lanes: int
    power_w: float = Field(gt=0)
    rdma: bool = False


class Fan(Part):
    size_mm: int
    airflow_cfm: float = Field(gt=0)
    max_rpm: int
    power_w: float = Field(gt=0)
    noise_dba: float | None = None


class Cooler(Part):
    kind: Literal["air", "aio", "custom-loop"]
    sockets: list[str]
    tdp_rating_w: float = Field(gt=0)
    power_w: float = Field(default=5.0, description="fans/pump draw")


class Case(Part):
    form_factors: list[str] = Field(description="board form factors that fit")
    expansion_slots: int = Field(gt=0)
    max_gpu_length_mm: float = Field(gt=0)
    psu_bays: int = 1
    fan_mounts: int = Field(ge=0)
    open_frame: bool = Field(
        default=False,
        description="an open frame: cards on risers hang from a rail, no case length or bracket limit",
    )


# --- cloud ------------------------------------------------------------------------------------


class CloudInstance(Part):
    provider: str
    gpu_id: str = Field(description="catalog GPU id")
    gpu_count: int = Field(gt=0)
    price_per_hour_usd: float = Field(gt=0, description="on-demand, for the whole instance")
    price_as_of: str = Field(
        pattern=r"^(19|20)\d\d(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$",
        description="date of the price, as precise as its source: YYYY, YYYY-MM or YYYY-MM-DD",
    )
