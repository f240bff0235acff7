"""GPU matmul throughput and device memory bandwidth with PyTorch, against the catalog's peaks.

Skipped with the reason when PyTorch is not installed or no CUDA device is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from rigkit.bench.qa.gpu import load_torch
from rigkit.bench.qa.result import CheckResult, QaContext, Value, grade, ratio_of
from rigkit.errors import EstimateError

CATEGORY = "gpu-compute"

# Fractions of the catalog peak. A healthy card reaches about 85-92% of its memory bandwidth in a
# device-to-device copy and 70-95% of its dense tensor peak in a large FP16/BF16 matmul (GeForce
# cards at their power limit sit at the low end).
BANDWIDTH_FAIL_BELOW = 0.70
BANDWIDTH_WARN_BELOW = 0.80
MATMUL_FAIL_BELOW = 0.50
MATMUL_WARN_BELOW = 0.65

MATMUL_N = 8192
COPY_BYTES = 1 << 30


@dataclass(frozen=True)
class ComputeMeasurement:
    index: int
    name: str
    fp16_tflops: float
    bf16_tflops: float
    bandwidth_gb_s: float


def _time_ms(torch: ModuleType, device: object, fn: object, iters: int) -> float:
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    fn()  # type: ignore[operator]
    torch.cuda.synchronize(device)
    start.record()
    for _ in range(iters):
        fn()  # type: ignore[operator]
    end.record()
    torch.cuda.synchronize(device)
    return float(start.elapsed_time(end)) / iters


def measure_device(torch: ModuleType, index: int) -> ComputeMeasurement:
    """Dense matmul (N=8192) in FP16 and BF16, and a 1 GiB device-to-device copy."""
    with torch.cuda.device(index):  # CUDA events record on the current device's stream
        return _measure(torch, index)


def _measure(torch: ModuleType, index: int) -> ComputeMeasurement:
    device = torch.device("cuda", index)
    tflops = {}
    for label, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
        b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
        c = torch.empty(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
        for _ in range(3):
            torch.matmul(a, b, out=c)
        ms = _time_ms(torch, device, lambda a=a, b=b, c=c: torch.matmul(a, b, out=c), 20)
        tflops[label] = 2 * MATMUL_N**3 / (ms / 1000.0) / 1e12
        del a, b, c
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = _time_ms(torch, device, lambda s=src, d=dst: d.copy_(s), 20)
    bandwidth = 2 * COPY_BYTES / (ms / 1000.0) / 1e9  # a copy reads and writes every byte
    del src, dst
    torch.cuda.empty_cache()
    return ComputeMeasurement(
        index=index,
        name=str(torch.cuda.get_device_name(index)),
        fp16_tflops=tflops["fp16"],
        bf16_tflops=tflops["bf16"],
        bandwidth_gb_s=bandwidth,
    )


def estimator_bandwidth_efficiency(architecture: str) -> float | None:
    """The fraction of peak DRAM bandwidth rigkit's estimator assumes decode reaches on this
    architecture (its fitted ``bandwidth_efficiency``); None when the estimator is unavailable."""
    from rigkit.estimate.params import load_params

    try:
        return load_params().bw_eff(architecture)
    except EstimateError:
        return None


def results_from(measurements: list[ComputeMeasurement], ctx: QaContext) -> list[CheckResult]:
    """Grade each measurement against the catalog GPU at the same index of the spec."""
    results = []
    for m in measurements:
        gpu = (
            ctx.build.gpus[m.index].gpu
            if ctx.build is not None and m.index < len(ctx.build.gpus)
            else None
        )
        # memory bandwidth
        measured: dict[str, Value] = {
            "device": m.name,
            "bandwidth_gb_s": round(m.bandwidth_gb_s, 1),
        }
        peak_bw = gpu.bandwidth_gb_s if gpu else None
        ratio = ratio_of(m.bandwidth_gb_s, peak_bw)
        predicted: dict[str, Value] = {"bandwidth_gb_s": peak_bw}
        eff = estimator_bandwidth_efficiency(gpu.architecture) if gpu else None
        if peak_bw is not None and eff is not None:
            # what the estimator's decode speeds assume this card reaches; a card copying below
            # it makes every tokens/s estimate for it optimistic
            predicted["estimator_bandwidth_gb_s"] = round(peak_bw * eff, 1)
            measured["vs_estimator"] = round(m.bandwidth_gb_s / (peak_bw * eff), 3)
        status = grade(ratio, BANDWIDTH_FAIL_BELOW, BANDWIDTH_WARN_BELOW)
        if ratio is None:
            reason = "no spec to compare with"
        else:
            reason = f"{m.bandwidth_gb_s:.0f} GB/s, {ratio:.0%} of the {peak_bw:g} GB/s peak"
            if status != "pass":
                reason += f" (a healthy card copies at 85-92%; below {BANDWIDTH_WARN_BELOW:.0%} "
                reason += "points at memory clocks, power limits or a fault)"
        results.append(
            CheckResult(
                f"gpu{m.index}-memory-bandwidth",
                CATEGORY,
                status,
                reason,
                measured,
                {"min_fraction": BANDWIDTH_WARN_BELOW} if gpu else {},
                predicted,
                ratio,
                "bandwidth_gb_s",
                ("bandwidth_gb_s",),
            )
        )
        # matmul
        measured = {
            "device": m.name,
            "fp16_tflops": round(m.fp16_tflops, 1),
            "bf16_tflops": round(m.bf16_tflops, 1),
        }
        peak16 = gpu.fp16_tflops if gpu else None
        peakbf = gpu.bf16_tflops if gpu else None
        r16 = ratio_of(m.fp16_tflops, peak16)
        rbf = ratio_of(m.bf16_tflops, peakbf)
        worst = min((r for r in (r16, rbf) if r is not None), default=None)
        status = grade(worst, MATMUL_FAIL_BELOW, MATMUL_WARN_BELOW)
        if worst is None:
            reason = "no spec to compare with"
        else:
            reason = (
                f"FP16 {m.fp16_tflops:.0f} TFLOPS ({r16:.0%} of {peak16:g}), "
                f"BF16 {m.bf16_tflops:.0f} TFLOPS ({rbf:.0%} of {peakbf:g})"
            )
        results.append(
            CheckResult(
                f"gpu{m.index}-matmul",
                CATEGORY,
                status,
                reason,
                measured,
                {"min_fraction": MATMUL_WARN_BELOW} if gpu else {},
                {"fp16_tflops": peak16, "bf16_tflops": peakbf},
                r16,
                "fp16_tflops",
                ("fp16_tflops", "bf16_tflops"),
            )
        )
    return results


def run(ctx: QaContext) -> list[CheckResult]:
    torch, why = load_torch()
    if torch is None:
        return [CheckResult("gpu-compute", CATEGORY, "skip", why)]
    count = int(torch.cuda.device_count())
    return results_from([measure_device(torch, i) for i in range(count)], ctx)
