"""The packaged catalog loads, every entry has a source, and key figures match the spec sheets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.catalog import KINDS, load_catalog, load_catalog_from
from rigkit.catalog.loader import parse_kind
from rigkit.errors import CatalogError, UnknownIdError

REQUIRED_GPUS = [
    "rtx-3070",
    "rtx-3080",
    "rtx-3080-ti",
    "rtx-3090",
    "rtx-4070-ti",
    "rtx-4080",
    "rtx-4090",
    "rtx-5090",
    "rtx-a6000",
    "rtx-4000-ada",
    "rtx-5000-ada",
    "rtx-6000-ada",
    "l40s",
    "a40",
    "a100-80gb-pcie",
    "a100-80gb-sxm",
    "h100-pcie",
    "h100-sxm",
    "h200",
    "a100-40gb-sxm",
]


def test_load_is_cached() -> None:
    assert load_catalog() is load_catalog()


@pytest.mark.parametrize("gpu_id", REQUIRED_GPUS)
def test_required_gpu_present(gpu_id: str) -> None:
    assert load_catalog().gpu(gpu_id).id == gpu_id


def test_every_entry_has_a_source_and_lowercase_id() -> None:
    cat = load_catalog()
    count = 0
    for kind in KINDS:
        for part_id, part in cat.kind(kind).items():
            assert len(part.source.strip()) >= 10, f"{kind}/{part_id} has no real source"
            assert part_id == part_id.lower()
            count += 1
    # at least the 20 required GPUs and 15 CPUs
    assert count >= 35


def test_rtx_4090_figures() -> None:
    g = load_catalog().gpu("rtx-4090")
    # NVIDIA: 24 GB GDDR6X, 384-bit at 21 Gb/s -> 384 / 8 * 21 = 1008 GB/s, 450 W, no P2P
    assert g.vram_gb == 24
    assert g.bandwidth_gb_s == 1008
    assert g.tdp_w == 450
    assert g.p2p is False
    assert g.nvlink is False
    # FP16 tensor with FP16 accumulate is twice the FP32-accumulate rate on GeForce: 2 x 165.2
    assert g.fp16_acc16_tflops == pytest.approx(2 * g.fp16_tflops, abs=0.1)
    assert g.power_connectors == {"12vhpwr": 1}
    assert (g.slot_width, g.length_mm) == (3, 304)


def test_datacenter_figures() -> None:
    cat = load_catalog()
    # facts.md: A100 80GB SXM 2039 GB/s, PCIe 1935 GB/s, 312 TFLOPS BF16
    assert cat.gpu("a100-80gb-sxm").bandwidth_gb_s == 2039
    assert cat.gpu("a100-80gb-pcie").bandwidth_gb_s == 1935
    assert cat.gpu("a100-80gb-pcie").bf16_tflops == 312
    # H100 SXM 3350 GB/s, 989 BF16, 1979 FP8; H200 141 GB at 4800 GB/s with the same compute
    h100 = cat.gpu("h100-sxm")
    assert (h100.bandwidth_gb_s, h100.bf16_tflops, h100.fp8_tflops) == (3350, 989, 1979)
    h200 = cat.gpu("h200")
    assert (h200.vram_gb, h200.bandwidth_gb_s, h200.bf16_tflops) == (141, 4800, 989)


def test_geforce_40_50_have_no_p2p_and_nvlink_where_expected() -> None:
    cat = load_catalog()
    for gid in ("rtx-4070-ti", "rtx-4080", "rtx-4090", "rtx-5090"):
        assert cat.gpu(gid).p2p is False, gid
    for gid in ("rtx-3090", "rtx-a6000", "a40", "a100-80gb-pcie", "h100-pcie", "h100-sxm"):
        assert cat.gpu(gid).nvlink is True, gid


def test_threadripper_7975wx() -> None:
    c = load_catalog().cpu("threadripper-pro-7975wx")
    # AMD: 32 cores, 4 CCDs, 128 PCIe 5.0 lanes, 8-channel DDR5-5200, 350 W
    assert (c.cores, c.ccd_count, c.pcie_lanes, c.pcie_gen) == (32, 4, 128, 5)
    assert (c.memory_channels, c.memory_speed_mts, c.tdp_w) == (8, 5200, 350)
    # facts.md: a 4-CCD part reaches roughly 250 GB/s
    assert c.fabric_bandwidth_gb_s == 250


def test_unknown_id_suggests_closest() -> None:
    cat = load_catalog()
    with pytest.raises(UnknownIdError) as info:
        cat.get("gpus", "rtx-4900")
    msg = str(info.value)
    assert "unknown gpu id 'rtx-4900'" in msg
    assert "rtx-4090" in (info.value.hint or "")
    assert len((info.value.hint or "").removeprefix("closest: ").split(", ")) == 3


def test_unknown_kind() -> None:
    with pytest.raises(CatalogError, match="unknown catalog kind 'gpu'"):
        load_catalog().get("gpu", "rtx-4090")


def test_invalid_entry_names_file_and_entry() -> None:
    text = "- id: bad-card\n  name: Bad\n  source: test\n  vram_gb: -1\n"
    with pytest.raises(CatalogError) as info:
        parse_kind("gpus", text, "gpus.yaml")
    msg = str(info.value)
    assert msg.startswith("gpus.yaml: entry #1 (bad-card): ")
    assert "vram_gb" in msg


def test_duplicate_id_rejected() -> None:
    one = "- id: fan-a\n  name: A\n  source: test sheet\n  size_mm: 140\n  airflow_cfm: 90\n  max_rpm: 3000\n  power_w: 3\n"
    with pytest.raises(CatalogError, match="entry #2 \\(fan-a\\): duplicate id 'fan-a'"):
        parse_kind("fans", one + one, "fans.yaml")


def test_not_a_list_rejected() -> None:
    with pytest.raises(CatalogError, match=r"fans\.yaml: expected a list of entries, got dict"):
        parse_kind("fans", "id: x\n", "fans.yaml")


def test_cloud_gpu_reference_checked(tmp_path: Path) -> None:
    (tmp_path / "cloud.yaml").write_text(
        "- {id: x, name: X, source: price page, provider: aws, gpu_id: rtx-9999,"
        " gpu_count: 1, price_per_hour_usd: 1, price_as_of: '2024'}\n"
    )
    with pytest.raises(CatalogError, match=r"gpu_id .rtx-9999. is not in gpus\.yaml"):
        load_catalog_from(tmp_path)


def test_listing_and_dump() -> None:
    cat = load_catalog()
    ids = cat.all_ids()
    assert list(ids) == list(KINDS)
    assert ids["gpus"] == sorted(ids["gpus"]) and "rtx-4090" in ids["gpus"]
    dumped = cat.to_dict()
    assert dumped["gpus"]["rtx-4090"]["bandwidth_gb_s"] == 1008
    assert (
        dumped["motherboards"]["asus-pro-ws-wrx90e-sage-se"]["pcie_slots"][0]["name"] == "PCIEX16_1"
    )


def test_find_searches_every_kind() -> None:
    cat = load_catalog()
    kind, part = cat.find("apc-srt3000xla")
    assert kind == "ups" and part.name.startswith("APC Smart-UPS SRT 3000VA")
    with pytest.raises(UnknownIdError) as info:
        cat.find("evga-supernova-1600")
    assert "evga-supernova-1600-t2" in (info.value.hint or "")


def test_ids_are_unique_across_kinds(tmp_path: Path) -> None:
    (tmp_path / "fans.yaml").write_text(
        "- {id: dup, name: A, source: sheet, size_mm: 140, airflow_cfm: 90, max_rpm: 3000,"
        " power_w: 3}\n"
    )
    (tmp_path / "coolers.yaml").write_text(
        "- {id: dup, name: B, source: sheet, kind: air, sockets: [AM5], tdp_rating_w: 200}\n"
    )
    with pytest.raises(CatalogError, match=r"coolers\.yaml: id 'dup' is also used in fans\.yaml"):
        load_catalog_from(tmp_path)
