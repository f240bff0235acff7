"""NvmlProbe against a stand-in for the pynvml module (every name it uses exists in the real one)."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pynvml
import pytest

from rigkit.bench.qa.gpu import NvmlProbe


def _not_supported() -> pynvml.NVMLError:
    return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


def fake_nvml() -> ModuleType:
    events = [SimpleNamespace(device="h1", eventData=79)]

    def wait(event_set: object, timeout_ms: int) -> SimpleNamespace:
        if events:
            return events.pop()
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def fan(handle: str) -> int:
        if handle == "h1":
            raise _not_supported()
        return 70

    funcs = {
        "NVMLError": pynvml.NVMLError,
        "NVML_TEMPERATURE_GPU": 0,
        "NVML_CLOCK_SM": 1,
        "nvmlEventTypeXidCriticalError": 8,
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 2,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetIndex": lambda h: int(h[1:]),
        "nvmlSystemGetDriverVersion": lambda: "550.54.15",
        "nvmlDeviceGetName": lambda h: "NVIDIA GeForce RTX 4090",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=24564 << 20, used=1 << 30),
        "nvmlDeviceGetPciInfo": lambda h: SimpleNamespace(busId=f"00000000:0{h[1:]}:00.0"),
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: 4,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 4,
        "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetPowerUsage": lambda h: 398_500,  # mW
        "nvmlDeviceGetTemperature": lambda h, sensor: 66,
        "nvmlDeviceGetClockInfo": lambda h, clock: 2520,
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=99, memory=40),
        "nvmlDeviceGetFanSpeed": fan,
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: 0x4,
        "nvmlEventSetCreate": lambda: "set",
        "nvmlDeviceRegisterEvents": lambda h, kinds, s: None,
        "nvmlEventSetWait_v2": wait,
        "nvmlEventSetFree": lambda s: None,
    }
    module = ModuleType("pynvml")
    for name, value in funcs.items():
        assert hasattr(pynvml, name), f"pynvml has no {name}"
        setattr(module, name, value)
    return module


def test_probe_reads_devices_readings_and_xids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    probe = NvmlProbe()
    try:
        devices = probe.devices()
        assert [d.index for d in devices] == [0, 1]
        assert devices[1].pci_bus_id == "00000000:01:00.0"
        assert devices[0].memory_total_bytes == 24564 * 2**20
        assert devices[0].driver_version == "550.54.15"
        r0, r1 = probe.readings()
        assert r0.power_w == pytest.approx(398.5)  # 398,500 mW
        assert (r0.temp_c, r0.sm_clock_mhz, r0.util_pct, r0.fan_pct) == (66.0, 2520.0, 99.0, 70.0)
        assert r0.clocks_event_reasons == 0x4
        assert r1.fan_pct is None  # "not supported" becomes a missing value
        assert probe.xids(50) == [(1, 79)]  # GPU 1 (handle h1) reported XID 79
        assert probe.xids(0) == []
    finally:
        probe.close()


def test_hung_nvml_call_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from rigkit.errors import BenchError

    release = threading.Event()
    module = fake_nvml()
    module.nvmlDeviceGetCount = lambda: release.wait(5)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    try:
        with pytest.raises(BenchError, match=r"did not answer within 0\.2 s"):
            NvmlProbe(timeout_s=0.2)
    finally:
        release.set()


def test_a_lost_gpu_is_a_lost_reading_not_missing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from rigkit.bench.qa.checks.soak import to_sample

    module = fake_nvml()

    def temperature(handle: str, sensor: int) -> int:
        if handle == "h1":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return 66

    module.nvmlDeviceGetTemperature = temperature  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    probe = NvmlProbe()
    try:
        r0, r1 = probe.readings()
        assert (r0.lost, r0.temp_c) == (False, 66.0)
        assert r1.lost and r1.temp_c is None
        # the soak check sees a GPU that fell off the bus, not a GPU without sensors
        sample = to_sample(0.0, [r0, r1], [])
        assert [g.lost for g in sample.gpus] == [False, True]
    finally:
        probe.close()
