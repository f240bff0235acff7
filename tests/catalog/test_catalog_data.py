"""Consistency of the packaged data and spot checks of figures against the makers' sheets."""

from __future__ import annotations

import pytest

from rigkit.catalog import load_catalog
from rigkit.catalog.parts import Motherboard

BOARDS = sorted(load_catalog().motherboards)


@pytest.mark.parametrize("board_id", BOARDS)
def test_board_slot_map_is_consistent(board_id: str) -> None:
    board: Motherboard = load_catalog().motherboard(board_id)
    pcie = [s.name for s in board.pcie_slots]
    m2 = [s.name for s in board.m2_slots]
    assert len(set(pcie)) == len(pcie), "PCIe slot names repeat"
    assert len(set(m2)) == len(m2), "M.2 slot names repeat"
    positions = [s.position for s in board.pcie_slots]
    assert len(set(positions)) == len(positions), "two slots in one position"
    names = set(pcie) | set(m2)
    for s in board.pcie_slots:
        assert s.electrical_lanes <= s.physical_lanes
        assert set(s.shares_with) <= names, f"{s.name} shares with an unknown slot"
        if s.shares_with:
            assert s.shared_lanes is not None and s.shared_lanes < s.electrical_lanes
    for m in board.m2_slots:
        assert set(m.shares_with) <= names


def test_every_board_socket_has_a_cpu_and_a_cooler() -> None:
    cat = load_catalog()
    cpu_sockets = {c.socket for c in cat.cpus.values()}
    cooler_sockets = {s for c in cat.coolers.values() for s in c.sockets}
    for board in cat.motherboards.values():
        assert board.socket in cpu_sockets, board.id
        assert board.socket in cooler_sockets, board.id


def test_wrx90e_lane_budget() -> None:
    board = load_catalog().motherboard("asus-pro-ws-wrx90e-sage-se")
    cpu = load_catalog().cpu("threadripper-pro-7975wx")
    # ASUS: seven PCIe 5.0 x16 slots and four PCIe 5.0 x4 M.2 from the CPU:
    # 7 x 16 + 4 x 4 = 112 + 16 = 128 = the CPU's lanes
    slot_lanes = sum(s.electrical_lanes for s in board.pcie_slots if s.source == "cpu")
    m2_lanes = sum(m.lanes for m in board.m2_slots if m.source == "cpu")
    assert (len(board.pcie_slots), slot_lanes, m2_lanes) == (7, 112, 16)
    assert slot_lanes + m2_lanes == cpu.pcie_lanes == 128
    assert board.dimm_slots == 8


def test_fan_airflow_is_cfm_not_m3h() -> None:
    fans = load_catalog().fans
    # Noctua: NF-A14 iPPC-3000 158.5 m3/h; x 0.5886 = 93.29 -> 93.3 CFM
    assert fans["noctua-nf-a14-ippc-3000"].airflow_cfm == pytest.approx(158.5 * 0.5886, abs=0.05)
    # NF-F12 iPPC-3000 186.7 m3/h x 0.5886 = 109.9 CFM
    assert fans["noctua-nf-f12-ippc-3000"].airflow_cfm == pytest.approx(186.7 * 0.5886, abs=0.05)
    # six NF-A14 iPPC-3000: 6 x 93.3 = 559.8 CFM, not the seed's 950
    assert 6 * fans["noctua-nf-a14-ippc-3000"].airflow_cfm == pytest.approx(559.8)


def test_psu_connectors_and_ratings() -> None:
    psus = load_catalog().psus
    for pid in ("evga-supernova-1600-t2", "evga-supernova-1000-t2", "corsair-ax1600i"):
        assert psus[pid].atx_version == "2.x"
        assert psus[pid].connectors.get("12vhpwr", 0) == 0, pid
    assert psus["seasonic-prime-tx-1600"].connectors["12vhpwr"] == 2
    assert psus["super-flower-leadex-platinum-2000"].min_input_voltage_v == 200
    # seed: 1600 W + 1000 W = 2600 W total
    assert (
        psus["evga-supernova-1600-t2"].wattage_w + psus["evga-supernova-1000-t2"].wattage_w == 2600
    )


@pytest.mark.parametrize("psu_id", sorted(load_catalog().psus))
def test_efficiency_curve_ascends(psu_id: str) -> None:
    curve = load_catalog().psus[psu_id].efficiency_curve
    loads = [x for x, _ in curve]
    assert loads == sorted(loads) and loads[-1] == 1.0
    assert all(0.8 <= eff < 1.0 for _, eff in curve)


def test_ups_reference() -> None:
    ups = load_catalog().ups["apc-srt3000xla"]
    # APC: 3000 VA / 2700 W, double conversion; APCRBC152: 8 x 12 V x 5 Ah = 480 Wh
    assert (ups.va, ups.watts, ups.topology, ups.battery_wh) == (3000, 2700, "online", 480)


def test_cloud_reference_price() -> None:
    p4d = load_catalog().cloud["aws-p4d-24xlarge"]
    # seed: AWS p4d.24xlarge $32.77/h; 8x A100 40GB = 320 GB of GPU memory
    assert p4d.price_per_hour_usd == 32.77
    assert p4d.gpu_count * load_catalog().gpu(p4d.gpu_id).vram_gb == 320
    for inst in load_catalog().cloud.values():
        assert "20" in inst.source, f"{inst.id}: the price date belongs in the source"


def test_nvme_and_nic_reference_parts() -> None:
    cat = load_catalog()
    t705 = cat.nvme["crucial-t705-4tb"]
    # seed: "29 GB/s RAID 0" = 2 x 14,500 MB/s sequential read (the drives' rated figure)
    assert 2 * t705.seq_read_mb_s == 29000
    assert cat.nvme["samsung-990-pro-2tb"].seq_read_mb_s == 7450
    nic = cat.nics["mellanox-connectx-4-lx-25g-2p"]
    assert (nic.ports, nic.speed_gbe, nic.pcie_gen, nic.lanes) == (2, 25, 3, 8)


def test_cpu_memory_and_fabric() -> None:
    cat = load_catalog()
    # EPYC 9004: 12 channels of DDR5-4800 -> 12 x 4800 x 8 B = 460.8 GB/s peak
    epyc = cat.cpu("epyc-9654")
    assert epyc.memory_channels * epyc.memory_speed_mts * 8 / 1000 == pytest.approx(460.8)
    # 2-CCD parts: half the 4-CCD figure (125 vs 250 GB/s)
    assert cat.cpu("threadripper-pro-7955wx").fabric_bandwidth_gb_s == 125
    # desktop and Intel parts: no CCD-link cap recorded
    assert cat.cpu("core-i9-14900k").fabric_bandwidth_gb_s is None
    assert cat.cpu("core-i9-14900k").pcie_lanes == 20
    assert cat.cpu("xeon-w9-3495x").pcie_lanes == 112


def test_per_field_sources_name_real_fields() -> None:
    cat = load_catalog()
    for kind in cat.all_ids():
        for part in cat.kind(kind).values():
            unknown = set(part.sources) - set(type(part).model_fields)
            assert not unknown, f"{kind}/{part.id}: sources for unknown fields {unknown}"


def test_gpu_temperature_thresholds() -> None:
    cat = load_catalog()
    # nvidia-smi -q, RTX 3090: slowdown 95 C, shutdown 98 C, both above the 93 C maximum
    g = cat.gpu("rtx-3090")
    assert (g.slowdown_temp_c, g.shutdown_temp_c, g.max_operating_temp_c) == (95, 98, 93)
    # A100 / H100: slowdown 89 C, shutdown 92 C: 3 C apart
    for gid in ("a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "h100-sxm"):
        dc = cat.gpu(gid)
        assert (dc.slowdown_temp_c, dc.shutdown_temp_c) == (89, 92), gid
    # not entered for the RTX 4090: the card reports its own threshold through NVML
    assert cat.gpu("rtx-4090").slowdown_temp_c is None
    for gpu in cat.gpus.values():
        if gpu.slowdown_temp_c is not None:
            assert gpu.shutdown_temp_c is not None and gpu.shutdown_temp_c > gpu.slowdown_temp_c
            assert "slowdown_temp_c" in gpu.sources, gpu.id


def test_power_limit_ranges() -> None:
    cat = load_catalog()
    g = cat.gpu("rtx-4090")
    # Founders Edition: 150-600 W around the 450 W default; 600 / 450 = 1.333 (133%)
    assert (g.min_power_limit_w, g.tdp_w, g.max_power_limit_w) == (150, 450, 600)
    assert g.max_power_limit_w / g.tdp_w == pytest.approx(1.333, abs=0.001)
    # RTX 3090 FE: 100-400 W around 350 W
    r = cat.gpu("rtx-3090")
    assert (r.min_power_limit_w, r.tdp_w, r.max_power_limit_w) == (100, 350, 400)


def test_ecc_of_consumer_intel_needs_the_board() -> None:
    cat = load_catalog()
    # ARK lists ECC for the i9-14900K, but Z790 boards take non-ECC memory only
    assert cat.cpu("core-i9-14900k").ecc is True
    assert cat.motherboard("asus-proart-z790-creator").ecc is False
    # RDIMM boards run ECC
    assert cat.motherboard("asus-pro-ws-wrx90e-sage-se").ecc is True


@pytest.mark.parametrize("psu_id", sorted(load_catalog().psus))
def test_psu_curve_has_its_own_source(psu_id: str) -> None:
    psu = load_catalog().psus[psu_id]
    assert "efficiency_curve" in psu.sources
    if psu.efficiency_rating == "titanium":
        # 80 PLUS Titanium, 115 V internal: 90/92/94/90 % at 10/20/50/100 % load
        assert psu.efficiency_curve == [(0.1, 0.90), (0.2, 0.92), (0.5, 0.94), (1.0, 0.90)]
