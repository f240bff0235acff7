"""Every rule on a passing and a failing build (hand-written parts from rigparts.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import rigparts as rp

from rigkit.build import Build, PlacedDevice, PlacedDrive, Site
from rigkit.design.registry import Finding, Severity, all_rules

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def with_board(build: Build, **kw: object) -> Build:
    """Rebuild ``build`` on a modified board, keeping every device in the same-named slot."""
    board = rp.board(**kw)
    slots = {s.name: s for s in board.pcie_slots}
    m2 = {s.name: s for s in board.m2_slots}
    return dataclasses.replace(
        build,
        motherboard=board,
        gpus=tuple(
            dataclasses.replace(g, slot=slots.get(g.slot.name) if g.slot else None)
            for g in build.gpus
        ),
        nics=tuple(
            dataclasses.replace(n, slot=slots.get(n.slot.name) if n.slot else None)
            for n in build.nics
        ),
        drives=tuple(
            dataclasses.replace(d, m2_slot=m2.get(d.m2_slot.name) if d.m2_slot else None)
            for d in build.drives
        ),
    )


def slots_with(name: str, **kw: object) -> list[object]:
    return [rp.slot(f"S{i}", i, **(kw if f"S{i}" == name else {})) for i in range(1, 8)]


def fit() -> Build:
    """2-slot blower GPUs in slots 1, 3, 5, 7, no NIC: nothing overlaps, 8 case slots suffice."""
    b = rp.ref(nics=())
    return rp.placed(b, ["S1", "S3", "S5", "S7"], rp.gpu(slot_width=2.0, cooling="blower"))


def site(**kw: object) -> Callable[[], Build]:
    return lambda: rp.ref(site=Site(**kw))  # type: ignore[arg-type]


def psus_atx2(per_psu_8pin: int) -> Build:
    conn = {"pcie_8pin": per_psu_8pin, "eps_8pin": 2}
    return rp.ref(
        psus=(
            rp.psu(1600, atx_version="2.x", connectors=conn),
            rp.psu(1000, atx_version="2.x", connectors=conn),
        )
    )


def bridged(n: int, bridge: bool = True) -> Build:
    b = rp.placed(rp.ref(), ["S1", "S3", "S5"][:n], rp.gpu(nvlink=True))
    return dataclasses.replace(
        b, gpus=tuple(dataclasses.replace(g, nvlink_bridge=bridge) for g in b.gpus)
    )


def unbridged(n: int) -> Build:
    return bridged(n, bridge=False)


def models_on(tb: float) -> Build:
    """The ref build expecting to run llama-3-70b f16, with ``tb`` of model storage."""
    exp = ({"model": "llama-3-70b", "quant": "f16", "metric": "decode_tokens_per_s"},)
    drive = PlacedDrive(rp.nvme(capacity_tb=tb), None, "models", on_adapter=True)
    return rp.ref(expectations=exp, drives=(drive,))


def gpu_no_p2p_single() -> Build:
    return rp.placed(rp.ref(), ["S1"])


CASES: list[tuple[str, Callable[[], Build], Severity | None]] = [
    # PCIe: 4 x16 GPUs + x8 NIC + 3 x4 drives = 64 + 8 + 12 = 84 lanes
    ("PCI001", rp.ref, INFO),  # 84 <= 128
    ("PCI001", lambda: rp.ref(cpu=rp.cpu(pcie_lanes=64)), E),  # 84 > 64
    ("PCI002", rp.ref, None),
    ("PCI002", lambda: rp.placed(rp.ref(), ["S1", "S3", "S5", "S7", None]), E),
    ("PCI002", lambda: rp.placed(rp.ref(), ["S1", "S1"]), E),
    ("PCI003", rp.ref, None),
    ("PCI003", lambda: with_board(rp.ref(), pcie_slots=slots_with("S3", electrical_lanes=8)), W),
    ("PCI003", lambda: with_board(rp.ref(), pcie_slots=slots_with("S3", gen=3)), W),
    ("PCI004", rp.ref, None),
    ("PCI004", lambda: with_board(rp.ref(), pcie_slots=slots_with("S3", source="chipset")), W),
    ("PCI005", rp.ref, None),
    (
        "PCI005",
        lambda: with_board(
            rp.ref(), pcie_slots=slots_with("S7", shares_with=["M2_2"], shared_lanes=8)
        ),
        W,
    ),
    (
        "PCI005",
        lambda: with_board(
            rp.ref(), pcie_slots=slots_with("S7", shares_with=["M2_2"], shared_lanes=0)
        ),
        E,
    ),
    (
        "PCI005",
        lambda: with_board(
            rp.ref(), pcie_slots=slots_with("S4", shares_with=["M2_2"], shared_lanes=0)
        ),
        INFO,
    ),
    # slot-to-slot sharing: S1 gives up 8 lanes when S3 (a GPU in ref) is used
    (
        "PCI005",
        lambda: with_board(
            rp.ref(), pcie_slots=slots_with("S1", shares_with=["S3"], shared_lanes=8)
        ),
        W,
    ),
    (
        "PCI005",
        lambda: with_board(
            rp.ref(nics=()), pcie_slots=slots_with("S1", shares_with=["S6"], shared_lanes=8)
        ),
        None,
    ),  # S6 is empty once the NIC is gone: S1 keeps x16
    # clearance: 3-slot cards in 1, 3, 5, 7 overlap; 2-slot cards fit
    ("CLR001", rp.ref, E),
    ("CLR001", fit, None),
    ("CLR002", rp.ref, None),  # 304 mm <= 400 mm
    ("CLR002", lambda: rp.ref(case=rp.case(max_gpu_length_mm=300)), E),  # 304 > 300
    ("CLR003", rp.ref, E),  # 3-slot card in 7 needs slot 9 of 8
    ("CLR003", fit, None),  # 2-slot card in 7 needs slot 8 of 8
    ("CLR004", fit, None),  # blowers
    ("CLR004", lambda: rp.placed(rp.ref(nics=()), ["S1", "S3"], rp.gpu(slot_width=2.0)), W),
    # power (numbers in rigparts.py docstring)
    ("PWR001", rp.ref, W),  # 1470/1600 = 92%, 900/1000 = 90%
    (
        "PWR001",
        lambda: rp.placed(rp.ref(), ["S1", "S3", "S5", "S7"], limit=600),
        E,
    ),  # 570+1200 > 1600
    (
        "PWR001",
        lambda: rp.placed(rp.ref(), ["S1", "S3", "S5", "S7"], limit=300),
        INFO,
    ),  # 1170 = 73%
    ("PWR002", rp.ref, INFO),  # 1920 <= 1.6 x 1600, 1350 <= 1.6 x 1000
    ("PWR002", lambda: psus_atx2(8), E),  # ATX 2.x: 1920 > 1600
    (
        "PWR002",
        lambda: rp.placed(psus_atx2(8), ["S1", "S3", "S5", "S7"], limit=300),
        W,
    ),  # 570+900 < 1600
    ("PWR003", rp.ref, INFO),
    # the reference card has a max (600 W) but no min power limit: a set 300 W is not checked
    ("PWR004", lambda: rp.placed(rp.ref(), ["S1", "S3", "S5", "S7"], limit=300), W),
    ("PWR004", rp.ref, None),  # 450 W is the card's own TDP: nothing was set
    (
        "PWR004",
        lambda: rp.placed(
            rp.ref(), ["S1", "S3"], rp.gpu(min_power_limit_w=150, max_power_limit_w=600), 300
        ),
        None,
    ),  # 150 <= 300 <= 600, checked when the spec was read
    ("PSU001", rp.ref, INFO),  # 4 native leads for 4 cards
    ("PSU001", lambda: psus_atx2(8), W),  # 4 adapters x 4 = 16 of 16 8-pin leads
    ("PSU001", lambda: psus_atx2(6), E),  # 16 > 12
    # board 2 EPS inputs; one PSU with a single EPS lead
    ("PSU001", lambda: rp.ref(psus=(rp.psu(2000, connectors={"12vhpwr": 4, "eps_8pin": 1}),)), E),
    # site: wall 2612.8 W
    ("CIR001", rp.ref, E),  # > 1440
    ("CIR001", site(breaker_a=20.0, dedicated_circuit=True), E),  # > 1920
    (
        "CIR001",
        site(mains_voltage_v=240.0, breaker_a=20.0, dedicated_circuit=True),
        INFO,
    ),  # <= 3840
    ("CIR001", site(mains_voltage_v=240.0, breaker_a=20.0), W),  # shared
    ("THM001", rp.ref, INFO),
    ("THM002", rp.ref, W),  # need 417 CFM, 560 free-air < 1.5 x 417
    ("THM002", lambda: rp.ref(fans=((rp.fan(), 3),)), E),  # 280 < 417 (2355 W DC)
    ("THM002", lambda: rp.ref(fans=((rp.fan(), 10),)), INFO),  # 933 >= 1.5 x 420
    ("THM002", lambda: rp.ref(fans=()), INFO),  # nothing to check
    ("HVC001", rp.ref, W),  # unknown cooling
    ("HVC001", site(room_cooling_btu_h=8000.0), E),  # < 8915
    ("HVC001", site(room_cooling_btu_h=12000.0), INFO),
    ("UPS001", rp.ref, INFO),  # no UPS
    ("UPS001", lambda: rp.ref(ups=rp.ups(watts=3300, va=3500)), INFO),  # 2613 = 79%, 14.3 min
    ("UPS001", lambda: rp.ref(ups=rp.ups()), W),  # 2613 / 2700 = 97% loaded
    ("UPS001", lambda: rp.ref(ups=rp.ups(watts=3300, va=3500, battery_wh=200)), W),  # 3.3 min
    ("UPS001", lambda: rp.ref(ups=rp.ups(watts=2000, va=2200)), E),
    # UPS002 (more in test_ups_plug.py): an L5-30P needs a 30 A circuit
    ("UPS002", rp.ref, None),  # no UPS
    ("UPS002", lambda: rp.ref(ups=rp.ups(input_plug="L5-30P")), E),  # 30 A plug > 15 A circuit
    ("UPS002", lambda: rp.ref(ups=rp.ups(input_plug="L5-30P"), site=Site(breaker_a=30.0)), INFO),
    # memory
    ("MEM001", rp.ref, None),  # 8 modules, 8 channels
    ("MEM001", lambda: rp.ref(memory_modules=4), W),
    ("MEM001", lambda: rp.ref(memory_modules=12, motherboard=rp.board(dimm_slots=16)), W),
    ("MEM001", lambda: rp.ref(memory_modules=16, motherboard=rp.board(dimm_slots=16)), INFO),
    ("MEM002", rp.ref, INFO),
    ("MEM003", rp.ref, None),
    ("MEM003", lambda: rp.ref(memory=rp.mem(memory_type="ddr5-udimm", registered=False)), E),
    ("MEM003", lambda: rp.ref(memory_modules=9), E),  # 9 > 8 slots
    ("MEM003", lambda: rp.ref(cpu=rp.cpu(ecc=False)), W),
    ("MEM003", lambda: with_board(rp.ref(), ecc=False), W),  # ECC kit, board without ECC
    ("MEM003", lambda: with_board(rp.ref(), ecc=None), INFO),  # the maker does not say
    # compat
    ("CMP001", rp.ref, None),
    ("CMP001", lambda: rp.ref(cpu=rp.cpu(socket="AM5")), E),
    ("CMP002", rp.ref, None),
    ("CMP002", lambda: rp.ref(case=rp.case(form_factors=["atx"])), E),
    ("CMP003", rp.ref, None),
    ("CMP003", lambda: rp.ref(cooler=rp.cooler(sockets=["AM5"])), E),
    ("CMP003", lambda: rp.ref(cooler=rp.cooler(tdp_rating_w=280)), W),  # 280 < 350
    ("CMP004", rp.ref, None),
    ("CMP004", lambda: rp.ref(case=rp.case(psu_bays=1)), W),
    # interconnect
    ("ICN001", rp.ref, W),
    ("ICN001", gpu_no_p2p_single, None),
    ("ICN001", lambda: rp.placed(rp.ref(), ["S1", "S3"], rp.gpu(p2p=True)), None),
    ("ICN001", lambda: bridged(2), None),
    ("ICN001", lambda: unbridged(2), W),  # NVLink-capable cards without a bridge
    ("ICN002", lambda: bridged(2), None),
    ("ICN002", lambda: bridged(3), INFO),
    # storage
    ("STO001", rp.ref, INFO),
    (
        "STO001",
        lambda: with_board(
            rp.ref(), m2_slots=[rp.M2Slot(name=f"M2_{i}", gen=4) for i in range(1, 5)]
        ),
        W,
    ),
    ("STO002", rp.ref, None),
    ("STO002", lambda: rp.ref(drives=(PlacedDrive(rp.nvme(), None),)), W),
    ("STO002", lambda: rp.ref(drives=(PlacedDrive(rp.nvme(), None, on_adapter=True),)), None),
    # llama-3-70b in f16 is ~141 GB (70.6 B params x 2 bytes, from the LLM catalog)
    ("STO004", rp.ref, None),  # no expectations: nothing to store
    ("STO004", lambda: models_on(8.0), INFO),  # 141 of 8000 GB
    ("STO004", lambda: models_on(0.16), W),  # 141 / 160 = 88% full
    ("STO004", lambda: models_on(0.1), E),  # 141 > 100 GB
    ("STO003", rp.ref, INFO),
    ("STO003", lambda: rp.placed(rp.ref(), ["S1"], rp.gpu(id="a100-80gb", name="A100 80GB")), None),
    # network
    ("NET001", rp.ref, INFO),  # 6.25 <= 7.88 GB/s
    (
        "NET001",
        lambda: rp.ref(nics=(PlacedDevice(rp.nic(), rp.slot("S6", 6, electrical_lanes=4)),)),
        W,
    ),
    ("NET002", rp.ref, INFO),
    ("NET002", lambda: rp.ref(nics=(), motherboard=rp.board(onboard_nic_gbe=[])), W),
    # cost
    ("CST001", rp.ref, INFO),
    ("CST001", lambda: rp.placed(rp.ref(), ["S1"], rp.gpu(price_usd=None)), W),
    ("CST002", rp.ref, W),  # 8 x 40 GB = 320 GB > 2 x 96 GB
    (
        "CST002",
        lambda: rp.ref(
            cloud=rp.cloud(id="g96", gpu_id="l40s", gpu_count=2, price_per_hour_usd=4.0)
        ),
        INFO,
    ),
]

# the cost rules look for comparable instances in the catalog; tests use their own
CLOUD_GPUS = {
    "a100-40gb": rp.gpu(id="a100-40gb", name="A100 40GB", vram_gb=40),
    "l40s": rp.gpu(id="l40s", name="L40S", vram_gb=48),
}
CLOUD = [
    rp.cloud(),
    rp.cloud(id="g96", name="2x L40S", gpu_id="l40s", gpu_count=2, price_per_hour_usd=4.0),
]


CATALOG = rp.catalog(gpus=list(CLOUD_GPUS.values()), cloud=CLOUD)


def run(code: str, build: Build) -> list[Finding]:
    (r,) = [r for r in all_rules() if r.code == code]
    return list(r.check(build, CATALOG))


def worst(findings: list[Finding]) -> Severity | None:
    order = [E, W, INFO]
    for sev in order:
        if any(f.severity is sev for f in findings):
            return sev
    return None


@pytest.mark.parametrize(
    ("code", "make", "expected"), CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]
)
def test_rule_severity(code: str, make: Callable[[], Build], expected: Severity | None) -> None:
    findings = run(code, make())
    assert worst(findings) is expected, [f.message for f in findings]
    for f in findings:
        assert f.rule == code
        assert f.message and f.fix
        assert f.to_dict()["severity"] == f.severity.value


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    for r in all_rules():
        sevs = {exp for code, _, exp in CASES if code == r.code}
        assert sevs, f"{r.code} has no test case"
        if r.severity is not INFO:  # rules that only inform have no failing example
            assert sevs & {E, W}, f"{r.code} has no failing case"
            assert sevs & {INFO, None}, f"{r.code} has no passing case"


def test_rule_registry_metadata() -> None:
    rules = all_rules()
    codes = [r.code for r in rules]
    assert len(codes) == len(set(codes))
    assert len(rules) >= 30
    for r in rules:
        assert r.doc, r.code
        # a rule that can warn or fail tells the reader how to fix it; info rules only explain
        if r.severity is not INFO:
            assert "Fix:" in r.doc, r.code


def test_registry_refuses_duplicates_and_unknown_categories() -> None:
    from rigkit.design.registry import rule

    with pytest.raises(ValueError, match="duplicate"):
        rule("PWR001", "again", "power", E)(lambda b: iter(()))
    with pytest.raises(ValueError, match="unknown category"):
        rule("ZZZ999", "bad", "nonsense", E)


def test_rules_take_the_build_and_only_the_catalog_rules_take_the_catalog() -> None:
    from rigkit.design.registry import rule

    # two rules compare the build with the catalog; every other one reads the build alone
    assert {r.code for r in all_rules() if r.reads_catalog} == {"CST002", "UPS002"}
    with pytest.raises(ValueError, match=r"takes \(build\) or \(build, catalog\)"):
        rule("ZZZ998", "bad", "power", E)(lambda build, cat: iter(()))
