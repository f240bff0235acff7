"""GPU inventory, PCIe links and compute grading, on fakes (no GPU needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pynvml
import pytest
from qa_fakes import FakeProbe, make_build, write_tree

from rigkit.bench.qa import gpu as qa_gpu
from rigkit.bench.qa.checks import gpu_compute, inventory, pcie
from rigkit.bench.qa.gpu import GpuDevice
from rigkit.bench.qa.match import reported_matches
from rigkit.bench.qa.result import QaContext
from rigkit.build import Build
from rigkit.catalog.parts import PcieSlot

MIB = 1 << 20


def dev(index: int, name: str = "NVIDIA GeForce RTX 4090", mem_mib: int = 24564) -> GpuDevice:
    return GpuDevice(index, name, f"00000000:0{index + 1}:00.0", mem_mib * MIB, 4, 16, "550.54")


@pytest.mark.parametrize(
    ("reported", "part_id", "expected"),
    [
        ("NVIDIA GeForce RTX 4090", "rtx-4090", True),
        ("NVIDIA GeForce RTX 3090", "rtx-4090", False),
        ("NVIDIA H100 PCIe", "h100-pcie", True),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm", True),
        ("AMD Ryzen Threadripper PRO 7975WX 32-Cores", "threadripper-pro-7975wx", True),
        ("AMD Ryzen Threadripper PRO 7985WX 64-Cores", "threadripper-pro-7975wx", False),
    ],
)
def test_reported_names_match_catalog_ids(reported: str, part_id: str, expected: bool) -> None:
    assert reported_matches(reported, part_id) is expected


def test_inventory_as_specified(build: Build) -> None:
    probe = FakeProbe([dev(i) for i in range(4)])
    [r] = inventory.run(QaContext(build=build, gpu_probe=probe))
    assert r.status == "pass"
    assert r.measured["count"] == 4
    # 24564 MiB = 25,757,220,864 B = 25.8 GB
    assert r.measured["gpu0"] == "NVIDIA GeForce RTX 4090 (25.8 GB)"
    assert not probe.closed  # a given probe belongs to the caller


def test_inventory_fewer_gpus_and_wrong_model_fail(build: Build) -> None:
    probe = FakeProbe([dev(0), dev(1), dev(2, "NVIDIA GeForce RTX 3090")])
    [r] = inventory.run(QaContext(build=build, gpu_probe=probe))
    assert r.status == "fail"
    assert "3 GPUs found, the spec has 4" in r.reason
    assert "GPU 2 is 'NVIDIA GeForce RTX 3090'" in r.reason


def test_inventory_small_memory_fails(build: Build) -> None:
    # 20480 MiB = 21.47e9 B < 0.9 x 24e9 = 21.6e9 B
    probe = FakeProbe([dev(0), dev(1), dev(2), dev(3, mem_mib=20480)])
    [r] = inventory.run(QaContext(build=build, gpu_probe=probe))
    assert r.status == "fail"
    assert "GPU 3 shows 21.5 GB" in r.reason


def nvml_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML as on a machine without the NVIDIA driver: nvmlInit cannot load the library."""

    def init() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", init)


def test_inventory_without_nvml(monkeypatch: pytest.MonkeyPatch, build: Build) -> None:
    nvml_absent(monkeypatch)
    [r] = inventory.run(QaContext())
    assert r.status == "skip"
    assert "NVML not available: no NVIDIA driver found" in r.reason
    # with a 4-GPU spec, no probe-able GPU is a failure, with the reason
    [r] = inventory.run(QaContext(build=build))
    assert r.status == "fail"
    assert r.reason.startswith(
        "the spec has 4 GPUs but none can be probed: NVML not available: no NVIDIA driver found"
    )


def pci_tree(tmp_path: Path, links: list[tuple[str, int, str, int]]) -> Path:
    """NVIDIA VGA functions (plus their audio functions, which must be ignored)."""
    files = {}
    for i, (speed, width, max_speed, max_width) in enumerate(links):
        base = f"bus/pci/devices/0000:{i + 1:02x}:00.0/"
        files[base + "vendor"] = "0x10de\n"
        files[base + "class"] = "0x030000\n"
        files[base + "current_link_speed"] = f"{speed}\n"
        files[base + "current_link_width"] = f"{width}\n"
        files[base + "max_link_speed"] = f"{max_speed}\n"
        files[base + "max_link_width"] = f"{max_width}\n"
        audio = f"bus/pci/devices/0000:{i + 1:02x}:00.1/"
        files[audio + "vendor"] = "0x10de\n"
        files[audio + "class"] = "0x040300\n"
    files["bus/pci/devices/0000:00:01.0/vendor"] = "0x1022\n"
    files["bus/pci/devices/0000:00:01.0/class"] = "0x060400\n"
    return write_tree(tmp_path / "sys", files)


GEN4 = "16.0 GT/s PCIe"
GEN1 = "2.5 GT/s PCIe"


def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcie, "load_torch", lambda: (None, "PyTorch not installed"))


def test_gen_from_speed() -> None:
    assert [pcie.gen_from_speed(s) for s in (GEN1, "8.0 GT/s PCIe", GEN4, "32.0 GT/s PCIe")] == [
        1,
        3,
        4,
        5,
    ]
    assert pcie.gen_from_speed("Unknown") is None


def test_pcie_links_at_full_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Build
) -> None:
    no_torch(monkeypatch)
    root = pci_tree(tmp_path, [(GEN4, 16, GEN4, 16)] * 4)
    results = pcie.run(QaContext(build=build, sys_root=root))
    assert [r.name for r in results] == ["pcie-gpu0", "pcie-gpu1", "pcie-gpu2", "pcie-gpu3"]
    assert {r.status for r in results} == {"pass"}
    # slot Gen5 x16, RTX 4090 Gen4 x16 -> Gen4 x16 = 16 x 1.969 GB/s = 31.5 GB/s
    assert results[0].expected == {"gen": 4, "width": 16, "slot": "PCIEX16_1"}
    assert results[0].predicted["link_gb_s"] == pytest.approx(31.5, abs=0.01)
    assert results[0].ratio == pytest.approx(1.0)


def test_pcie_idle_downtrained_link_only_warns_without_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Build
) -> None:
    no_torch(monkeypatch)
    root = pci_tree(tmp_path, [(GEN1, 16, GEN4, 16)] + [(GEN4, 16, GEN4, 16)] * 3)
    r = pcie.run(QaContext(build=build, sys_root=root))[0]
    assert r.status == "warn"
    assert "not read under load (PyTorch not installed)" in r.reason
    # Gen1 x16 = 16 x 0.25 = 4 GB/s of the expected 31.5: 4 / 31.504 = 0.127
    assert r.ratio == pytest.approx(4 / 31.504, abs=1e-3)


def test_pcie_narrow_link_capability_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Build
) -> None:
    no_torch(monkeypatch)
    root = pci_tree(tmp_path, [(GEN4, 16, GEN4, 16)] * 3 + [(GEN4, 8, GEN4, 8)])
    r = pcie.run(QaContext(build=build, sys_root=root))[3]
    assert r.status == "fail"
    assert "Gen4 x8 is below Gen4 x16 (PCIEX16_4)" in r.reason
    assert r.ratio == pytest.approx(0.5)  # x8 / x16 at the same generation


def test_pcie_under_load_mismatch_fails(tmp_path: Path, build: Build) -> None:
    root = pci_tree(tmp_path, [(GEN4, 16, GEN4, 16)] * 3 + [("8.0 GT/s PCIe", 16, GEN4, 16)])
    links = pcie.nvidia_links(root)
    assert len(links) == 4  # audio functions and the AMD bridge are not GPUs
    r = pcie.check_links(links, QaContext(build=build), loaded=True, why_idle="")[3]
    assert r.status == "fail"
    assert r.reason.startswith("Gen3 x16 under load, PCIEX16_4 should give Gen4 x16")


def test_pcie_without_gpus_skips(tmp_path: Path) -> None:
    [r] = pcie.run(QaContext(sys_root=tmp_path))
    assert (r.status, r.reason) == ("skip", "no NVIDIA GPU on the PCI bus")


def test_gpu_compute_skips_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_compute, "load_torch", lambda: (None, "PyTorch not installed"))
    [r] = gpu_compute.run(QaContext())
    assert (r.status, r.reason) == ("skip", "PyTorch not installed")


def test_load_torch_reports_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert qa_gpu.load_torch() == (None, "PyTorch not installed")


def test_gpu_compute_grading_against_catalog() -> None:
    build = make_build(gpus=2)
    good = gpu_compute.ComputeMeasurement(0, "NVIDIA GeForce RTX 4090", 150.0, 148.0, 900.0)
    weak = gpu_compute.ComputeMeasurement(1, "NVIDIA GeForce RTX 4090", 80.0, 160.0, 760.0)
    results = gpu_compute.results_from([good, weak], QaContext(build=build))
    by = {r.name: r for r in results}
    # 900 / 1008 = 0.893: within the 85-92% a healthy card copies at
    assert by["gpu0-memory-bandwidth"].ratio == pytest.approx(0.8929, abs=1e-4)
    assert by["gpu0-memory-bandwidth"].status == "pass"
    eff = gpu_compute.estimator_bandwidth_efficiency("ada")
    if eff is not None:  # the estimator's fitted share of peak for Ada, shown beside it
        predicted = by["gpu0-memory-bandwidth"].predicted["estimator_bandwidth_gb_s"]
        assert predicted == pytest.approx(1008 * eff, abs=0.05)
        assert by["gpu0-memory-bandwidth"].measured["vs_estimator"] == pytest.approx(
            900 / (1008 * eff), abs=1e-3
        )
    # 150 / 165.2 = 0.908
    assert by["gpu0-matmul"].ratio == pytest.approx(0.908, abs=1e-3)
    assert by["gpu0-matmul"].status == "pass"
    # 760 / 1008 = 0.754: between 0.70 and 0.80 -> warn
    assert by["gpu1-memory-bandwidth"].status == "warn"
    # FP16 80 / 165.2 = 0.484 < 0.50 -> fail, though BF16 (160 / 165.2 = 0.969) is fine
    assert by["gpu1-matmul"].status == "fail"
    assert by["gpu1-matmul"].throughput == ("fp16_tflops", "bf16_tflops")


def test_pcie_mixed_slots_pair_by_width(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_torch(monkeypatch)
    build = make_build(gpus=2)
    x8 = replace(
        build.gpus[1], slot=PcieSlot(name="PCIEX16_2", position=3, electrical_lanes=8, gen=4)
    )
    mixed = replace(build, gpus=(build.gpus[0], x8))
    # bus order: the x8 card first, the x16 card second; pairing by width puts each in its slot
    root = pci_tree(tmp_path, [(GEN4, 8, GEN4, 8), (GEN4, 16, GEN4, 16)])
    results = pcie.run(QaContext(build=mixed, sys_root=root))
    assert [r.status for r in results] == ["pass", "pass"]
    assert [r.expected["slot"] for r in results] == ["PCIEX16_2", "PCIEX16_1"]
    assert results[0].predicted["link_gb_s"] == pytest.approx(15.75, abs=0.01)  # 8 x 1.969


class _FakeEvent:
    """CUDA event whose elapsed time is set by the test (ms between start and end)."""

    elapsed_ms = 0.0

    def __init__(self, enable_timing: bool) -> None:
        assert enable_timing

    def record(self) -> None:
        pass

    def elapsed_time(self, end: _FakeEvent) -> float:
        return _FakeEvent.elapsed_ms


class _FakeTensor:
    def copy_(self, other: _FakeTensor) -> _FakeTensor:
        _FakeEvent.elapsed_ms = 20 * 2.5  # 20 timed copies of 2.5 ms
        return self


def fake_torch() -> object:
    from contextlib import nullcontext
    from types import SimpleNamespace

    def matmul(a: _FakeTensor, b: _FakeTensor, out: _FakeTensor) -> _FakeTensor:
        _FakeEvent.elapsed_ms = 20 * 10.0  # 20 timed matmuls of 10 ms
        return out

    cuda = SimpleNamespace(
        device=lambda index: nullcontext(),
        Event=_FakeEvent,
        synchronize=lambda device: None,
        empty_cache=lambda: None,
        get_device_name=lambda index: "NVIDIA GeForce RTX 4090",
        device_count=lambda: 1,
    )
    return SimpleNamespace(
        cuda=cuda,
        device=lambda kind, index: (kind, index),
        float16="fp16",
        bfloat16="bf16",
        uint8="u8",
        randn=lambda *a, **k: _FakeTensor(),
        empty=lambda *a, **k: _FakeTensor(),
        empty_like=lambda t: _FakeTensor(),
        matmul=matmul,
    )


def test_measure_device_arithmetic() -> None:
    m = gpu_compute.measure_device(fake_torch(), 0)  # type: ignore[arg-type]
    # 2 x 8192^3 = 1.0995e12 FLOP per matmul in 10 ms -> 109.95 TFLOPS
    assert m.fp16_tflops == pytest.approx(109.95, abs=0.01)
    assert m.bf16_tflops == pytest.approx(109.95, abs=0.01)
    # a 1 GiB copy reads and writes 2 x 2^30 B in 2.5 ms -> 858.99 GB/s
    assert m.bandwidth_gb_s == pytest.approx(858.99, abs=0.01)
