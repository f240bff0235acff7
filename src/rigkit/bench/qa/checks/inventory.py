"""GPU inventory through NVML: count, model and memory against the spec."""

from __future__ import annotations

from rigkit.bench.qa.gpu import GpuDevice, GpuUnavailable, open_probe
from rigkit.bench.qa.match import reported_matches
from rigkit.bench.qa.result import CheckResult, QaContext, Value

CATEGORY = "inventory"

# NVML reports usable memory; a "24 GB" card shows 24564 MiB (25.8e9 bytes). Less than this
# fraction of the marketed size means the wrong card or a fault.
VRAM_MIN_FRACTION = 0.9


def check_gpus(devices: list[GpuDevice], ctx: QaContext) -> list[CheckResult]:
    measured: dict[str, Value] = {"count": len(devices)}
    for dev in devices:
        mem = dev.memory_total_bytes
        measured[f"gpu{dev.index}"] = dev.name + (f" ({mem / 1e9:.1f} GB)" if mem else "")
    if devices and devices[0].driver_version:
        measured["driver"] = devices[0].driver_version
    if ctx.build is None:
        return [CheckResult("gpu-inventory", CATEGORY, "pass", "no spec to compare with", measured)]
    placed = ctx.build.gpus
    expected: dict[str, Value] = {"count": len(placed)}
    for p in placed:
        expected[f"gpu{p.index}"] = f"{p.gpu.name} ({p.gpu.vram_gb:g} GB)"
    problems: list[str] = []
    if len(devices) < len(placed):
        problems.append(f"{len(devices)} GPUs found, the spec has {len(placed)}")
    elif len(devices) > len(placed):
        problems.append(f"{len(devices)} GPUs found, the spec has only {len(placed)}")
    for p, dev in zip(placed, devices, strict=False):
        if not reported_matches(dev.name, p.gpu.id, p.gpu.name):
            problems.append(f"GPU {dev.index} is {dev.name!r}, the spec has {p.gpu.name}")
        elif (
            dev.memory_total_bytes is not None
            and dev.memory_total_bytes < VRAM_MIN_FRACTION * p.gpu.vram_gb * 1e9
        ):
            problems.append(
                f"GPU {dev.index} shows {dev.memory_total_bytes / 1e9:.1f} GB, "
                f"the {p.gpu.name} has {p.gpu.vram_gb:g} GB"
            )
    if problems:
        return [
            CheckResult("gpu-inventory", CATEGORY, "fail", "; ".join(problems), measured, expected)
        ]
    names = sorted({d.name for d in devices})
    return [
        CheckResult(
            "gpu-inventory",
            CATEGORY,
            "pass",
            f"{len(devices)} x {', '.join(names)} as specified",
            measured,
            expected,
        )
    ]


def run(ctx: QaContext) -> list[CheckResult]:
    try:
        probe = open_probe(ctx.gpu_probe)
    except GpuUnavailable as err:
        expected: dict[str, Value] = {}
        if ctx.build is not None and ctx.build.gpus:
            expected["count"] = len(ctx.build.gpus)
            return [
                CheckResult(
                    "gpu-inventory",
                    CATEGORY,
                    "fail",
                    f"the spec has {len(ctx.build.gpus)} GPUs but none can be probed: {err}",
                    {"count": 0},
                    expected,
                )
            ]
        return [CheckResult("gpu-inventory", CATEGORY, "skip", str(err))]
    try:
        return check_gpus(probe.devices(), ctx)
    finally:
        if ctx.gpu_probe is None:
            probe.close()
