"""What a build can run: a model x format table and a check of the spec's performance claims.

``plan_capacity(build)`` evaluates every catalog model in the common formats on the build's GPUs
(llama.cpp with its default layer split, plus vLLM tensor parallel where it loads the format and
the model fits), each with an 8k-token context, and checks ``build.expectations``. The
renderers of the result (Markdown, HTML, rich, the roofline figure) are in
:mod:`rigkit.report.capacity` and :mod:`rigkit.report.figures`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rigkit.errors import RigkitError
from rigkit.estimate.core import estimate
from rigkit.estimate.result import Estimate, fmt_sig

if TYPE_CHECKING:
    from rigkit.build import Build

LLAMA_FORMATS = ("f16", "q8_0", "q4_k_m")
VLLM_FORMATS = ("f16", "awq-int4")
CAPACITY_CTX = 8192
PROMPT, GEN = 512, 128
#: an expectation is plausible when it is within this factor of the estimate (model uncertainty
#: on configurations outside the calibration set)
TOLERANCE = 0.25
BOUND_TEXT = {
    "memory-bandwidth": "GPU memory bandwidth",
    "compute": "GPU compute",
    "interconnect": "GPU-to-GPU transfers",
    "cpu-ram": "CPU RAM bandwidth",
}
METRICS = {
    "decode_tokens_per_s": ("decode_tokens_per_s", "tok/s"),
    "prefill_tokens_per_s": ("prefill_tokens_per_s", "tok/s"),
    "load_time_s": ("load_time_s", "s"),
    "ttft_s": ("ttft_s", "s"),
}


_GIB_PER_GB = 2**30 / 1e9  # GPU memory is marketed in GiB ("24 GB" = 24 GiB)


@dataclass(frozen=True)
class CapacityRow:
    model: str
    quant: str
    engine: str
    split: str
    fits: bool
    offload: bool
    runnable: bool
    weights_gb: float
    memory_gb_per_gpu: float
    decode_tokens_per_s: float | None
    prefill_tokens_per_s: float | None
    max_context: int
    max_concurrent_8k: int
    bound: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExpectationCheck:
    claim: str
    metric: str
    claimed_min: float | None
    claimed_max: float | None
    estimate: float | None
    unit: str
    plausible: bool | None  # None: could not be evaluated
    reason: str
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Capacity:
    gpu: str
    gpus: int
    vram_gb_total: float
    cpu: str | None
    ram_gb: float
    disk_read_gb_s: float | None
    rows: tuple[CapacityRow, ...]
    expectations: tuple[ExpectationCheck, ...]
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "vram_gb_total": self.vram_gb_total,
            "cpu": self.cpu,
            "ram_gb": self.ram_gb,
            "disk_read_gb_s": self.disk_read_gb_s,
            "context_tokens": CAPACITY_CTX,
            "prompt_tokens": PROMPT,
            "gen_tokens": GEN,
            "rows": [r.to_dict() for r in self.rows],
            "expectations": [e.to_dict() for e in self.expectations],
            "assumptions": list(self.assumptions),
        }


def models_disk_read_gb_s(build: Build) -> float | None:
    """Sequential read of the drive (or RAID 0 group) holding models, GB/s; None without drives."""
    if not build.drives:
        return None
    groups: dict[str, float] = {}
    for i, d in enumerate(build.drives):
        key = d.raid_group or f"drive-{i}"
        groups[key] = groups.get(key, 0.0) + d.drive.seq_read_mb_s / 1000.0
    model_keys = [
        d.raid_group or f"drive-{i}" for i, d in enumerate(build.drives) if d.role == "models"
    ]
    if model_keys:
        return max(groups[k] for k in model_keys)
    return max(groups.values())


def _row(e: Estimate, weights_gb: float) -> CapacityRow:
    return CapacityRow(
        model=e.model,
        quant=e.quant,
        engine=e.engine,
        split=e.split,
        fits=e.fits,
        offload=e.offload,
        runnable=e.runnable,
        weights_gb=weights_gb,
        memory_gb_per_gpu=e.memory_gb_per_gpu,
        decode_tokens_per_s=e.decode_tokens_per_s,
        prefill_tokens_per_s=e.prefill_tokens_per_s,
        max_context=e.max_context,
        max_concurrent_8k=e.max_concurrent_sequences,
        bound=e.bound if e.decode_tokens_per_s is not None else "-",
    )


_fmt = fmt_sig


def _check(build: Build, exp: dict[str, Any], common: dict[str, Any]) -> ExpectationCheck:
    claim = str(exp.get("claim") or "")
    metric = str(exp.get("metric") or "decode_tokens_per_s")
    lo = exp.get("min")
    hi = exp.get("max")
    lo_f = float(lo) if isinstance(lo, int | float) else None
    hi_f = float(hi) if isinstance(hi, int | float) else None
    src = exp.get("source")
    source = str(src) if src is not None else None
    if metric not in METRICS:
        return ExpectationCheck(
            claim, metric, lo_f, hi_f, None, "", None, f"unknown metric {metric!r}", source
        )
    attr, unit = METRICS[metric]
    gpus = exp.get("gpus") or build.gpu_count
    kw: dict[str, Any] = {
        "gpus": int(gpus),
        "engine": str(exp.get("engine") or "llama.cpp"),
        "split": exp.get("split"),
        "prompt": int(exp.get("prompt") or PROMPT),
        "gen": int(exp.get("gen") or GEN),
        "batch": int(exp.get("batch") or 1),
    }
    model, quant = str(exp.get("model")), str(exp.get("quant"))
    try:
        # the context the capacity table allocates for the same model, so that a claim and the
        # table's row for it are one computation and show one figure
        from rigkit.catalog.llm import load_llm_catalog

        arch = load_llm_catalog().model(model)
        kw["ctx"] = max(kw["prompt"] + kw["gen"], min(CAPACITY_CTX, arch.max_context))
        e = estimate(model, quant, build.gpus[0].gpu.id, **kw, **common)
    except RigkitError as err:
        return ExpectationCheck(
            claim, metric, lo_f, hi_f, None, unit, None, f"cannot estimate: {err}", source
        )
    value = getattr(e, attr)
    weights_gb = _weights_gb(model, quant)
    vram = kw["gpus"] * e.vram_gb_per_gpu
    if not e.runnable:
        reason = (
            f"{model} {quant} needs ~{_fmt(weights_gb, 3)} GB of weights; "
            f"{kw['gpus']}x{e.vram_gb_per_gpu / _GIB_PER_GB:.3g} GiB = {vram / _GIB_PER_GB:.3g} GiB "
            f"({vram:.3g} GB): does not fit with {e.engine}"
        )
        try:
            alt = estimate(
                model,
                quant,
                build.gpus[0].gpu.id,
                gpus=kw["gpus"],
                prompt=kw["prompt"],
                gen=kw["gen"],
                **common,
            )
        except RigkitError:
            alt = None
        if metric == "load_time_s":
            # the claim's verdict first: the weights cannot be loaded onto these GPUs at all; the
            # disk time is context (it alone already uses up most of a short claim), not support
            disk_s = dict(e.load_terms)["disk_read_s"]
            reason += (
                f", so it cannot be loaded onto these GPUs in any time; even reading the "
                f"{_fmt(weights_gb)} GB from disk would take ~{_fmt(disk_s, 2)} s before the copy "
                f"to GPU memory and the engine start"
            )
        elif alt is not None and alt.offload and alt.runnable and alt.decode_tokens_per_s:
            reason += (
                f"; with llama.cpp CPU offload ({alt.cpu_layers} of {(alt.gpu_layers or 0) + (alt.cpu_layers or 0)} layers "
                f"on the CPU) decode is bounded by {BOUND_TEXT.get(alt.bound, alt.bound)} at "
                f"~{_fmt(alt.decode_tokens_per_s, 2)} tok/s"
            )
            reason += _cpu_ram_arithmetic(alt, build)
        return ExpectationCheck(claim, metric, lo_f, hi_f, None, unit, False, reason, source)
    if value is None:
        return ExpectationCheck(
            claim,
            metric,
            lo_f,
            hi_f,
            None,
            unit,
            None,
            "the estimate has no value for this metric",
            source,
        )
    ok = True
    if lo_f is not None and value * (1 + TOLERANCE) < lo_f:
        ok = False
    if hi_f is not None and value * (1 - TOLERANCE) > hi_f:
        ok = False
    rng = (
        f"{_fmt(lo_f)}-{_fmt(hi_f)}"
        if lo_f is not None and hi_f is not None
        else (f">= {_fmt(lo_f)}" if lo_f is not None else f"<= {_fmt(hi_f)}")
    )
    reason = f"estimate ~{_fmt(value)} {unit} vs claimed {rng} {unit}"  # as the table shows it
    if e.offload:
        reason += (
            f"; {e.cpu_layers} of {(e.gpu_layers or 0) + (e.cpu_layers or 0)} layers run from system RAM, "
            f"decode bounded by {BOUND_TEXT.get(e.bound, e.bound)}"
        )
        reason += _cpu_ram_arithmetic(e, build)
    elif metric.endswith("tokens_per_s"):
        b = e.bound if metric.startswith("decode") else (e.prefill_bound or "")
        reason += f"; bounded by {BOUND_TEXT.get(b, b)}"
    if metric == "load_time_s":
        terms = dict(e.load_terms)
        reason += (
            f" (disk {_fmt(terms['disk_read_s'], 2)} s, host-to-device {_fmt(terms['host_to_device_s'], 2)} s, "
            f"engine start {_fmt(terms['engine_start_s'], 2)} s)"
        )
    reason += f" ({'within' if ok else 'outside'} {int(TOLERANCE * 100)}% of the claim)"
    return ExpectationCheck(claim, metric, lo_f, hi_f, value, unit, ok, reason, source)


def _cpu_ram_arithmetic(e: Estimate, build: Build) -> str:
    """'(X GB read from RAM per token at Y GB/s usable)' for an offloaded estimate."""
    from rigkit.estimate.params import load_params
    from rigkit.estimate.resolve import cpu_nums, model_nums

    p = load_params()
    c = cpu_nums(build.cpu.id, p.ccd_read_gb_s, p.cpu_flops_per_cycle)
    m = model_nums(e.model, e.quant)
    cpu_bytes = (e.cpu_layers or 0) * m.layer_bytes
    if e.gpu_layers is not None and e.cpu_layers is not None:
        cpu_bytes += m.out_bytes if e.cpu_layers else 0.0
    usable = c.bw * p.cpu_bandwidth_efficiency
    return (
        f" ({_fmt(cpu_bytes / 1e9)} GB read from RAM per token at ~{_fmt(usable / 1e9)} GB/s usable"
        f" = {_fmt(c.bw / 1e9)} GB/s x {p.cpu_bandwidth_efficiency:g}: at most "
        f"{_fmt(usable / cpu_bytes, 2) if cpu_bytes else '-'} tok/s)"
    )


def _weights_gb(model: str, quant: str) -> float:
    from rigkit.estimate.resolve import model_nums

    return model_nums(model, quant).total_bytes / 1e9


#: the most GPUs :func:`what_fits` tries (one workstation)
MAX_SUGGESTED_GPUS = 8


def what_fits(e: Estimate, **kw: Any) -> list[str]:
    """For an estimate that does not fit in GPU memory: the nearest configurations that do, as
    short phrases - the largest smaller weight format on the same GPUs, and the fewest GPUs (up to
    :data:`MAX_SUGGESTED_GPUS`) for the same format. ``kw``: the estimate's other arguments
    (prompt, gen, batch, ctx, cpu, ram_gb, ...)."""
    from rigkit.estimate.memory import engine_nums
    from rigkit.estimate.resolve import model_nums

    if e.fits:
        return []
    split = None if e.split == "none" else e.split
    base = {"engine": e.engine, "split": split, **kw}

    def fits(quant: str, gpus: int) -> Estimate | None:
        try:
            alt = estimate(e.model, quant, e.gpu, gpus=gpus, **base)
        except RigkitError:
            return None
        return alt if alt.fits else None

    out: list[str] = []
    size = model_nums(e.model, e.quant).total_bytes
    smaller: list[tuple[float, str]] = []
    for f in engine_nums(e.engine).formats:
        try:
            b = model_nums(e.model, f).total_bytes
        except RigkitError:
            continue
        if b < size:
            smaller.append((b, f))
    for _, f in sorted(smaller, reverse=True):  # the largest format that fits first
        alt = fits(f, e.gpus)
        if alt is not None:
            out.append(
                f"{f} on {e.gpus}x {e.gpu} ({_fmt(alt.memory_gb_per_gpu)} GB per GPU"
                + (
                    f", ~{_fmt(alt.decode_tokens_per_s, 2)} tok/s decode)"
                    if alt.decode_tokens_per_s
                    else ")"
                )
            )
            break
    for n in range(e.gpus + 1, MAX_SUGGESTED_GPUS + 1):
        alt = fits(e.quant, n)
        if alt is not None:
            out.append(
                f"{e.quant} on {n}x {e.gpu}"
                + (
                    f" (~{_fmt(alt.decode_tokens_per_s, 2)} tok/s decode)"
                    if alt.decode_tokens_per_s
                    else ""
                )
            )
            break
    return out


def bridged(build: Build) -> bool | None:
    """True when the spec pairs NVLink-capable PCIe cards with bridges; None: the GPU's default."""
    linked = any(g.nvlink_bridge and g.gpu.nvlink for g in build.gpus)
    return True if linked and build.gpus[0].gpu.form_factor == "pcie" else None


def power_limit(build: Build) -> float | None:
    """The spec's GPU power limit (the lowest, when they differ), or None at the board power."""
    limits = [g.power_limit_w for g in build.gpus if g.power_limit_w != g.gpu.tdp_w]
    return min(limits) if limits else None


def plan_capacity(build: Build) -> Capacity:
    """The model x format table for the build's GPUs and the check of its expectations."""
    from rigkit.catalog.llm import load_llm_catalog

    if not build.gpus:
        return Capacity(
            "none",
            0,
            0.0,
            build.cpu.id,
            float(build.memory_gb),
            None,
            (),
            (),
            ("the build has no GPUs",),
        )
    gpu = build.gpus[0].gpu
    n = build.gpu_count
    disk = models_disk_read_gb_s(build)
    common: dict[str, Any] = {
        "cpu": build.cpu.id,
        "ram_gb": float(build.memory_gb),
        "disk_read_gb_s": disk,
        "nvlink": bridged(build),
        "power_limit_w": power_limit(build),
    }
    rows: list[CapacityRow] = []
    assumptions = [
        f"every row: prompt {PROMPT}, {GEN} generated tokens, batch 1, a {CAPACITY_CTX:,}-token context per sequence",
        "llama.cpp rows use its default layer split (GPUs in sequence); vLLM rows tensor parallel where they fit",
    ]
    if len({g.gpu.id for g in build.gpus}) > 1:
        assumptions.append(f"mixed GPUs: the table assumes {n}x {gpu.id}")
    if common["power_limit_w"] is not None:
        assumptions.append(
            f"every GPU at the spec's {common['power_limit_w']:g} W power limit (board power "
            f"{gpu.tdp_w:g} W): prefill follows the clock it holds, decode stays close"
        )
    llm = load_llm_catalog()
    for model_id, arch in llm.models.items():
        ctx = min(CAPACITY_CTX, arch.max_context)
        for q in LLAMA_FORMATS:
            try:
                e = estimate(model_id, q, gpu.id, gpus=n, prompt=PROMPT, gen=GEN, ctx=ctx, **common)
            except RigkitError:
                continue
            rows.append(_row(e, _weights_gb(model_id, q)))
        if n >= 1:
            for q in VLLM_FORMATS:
                split = "tensor" if arch.n_heads % n == 0 else "pipeline"
                try:
                    e = estimate(
                        model_id,
                        q,
                        gpu.id,
                        gpus=n,
                        engine="vllm",
                        split=split,
                        prompt=PROMPT,
                        gen=GEN,
                        ctx=ctx,
                        **common,
                    )
                except RigkitError:
                    continue
                if e.fits:
                    rows.append(_row(e, _weights_gb(model_id, q)))
    checks = tuple(_check(build, dict(x), common) for x in build.expectations)
    return Capacity(
        gpu=gpu.id,
        gpus=n,
        vram_gb_total=gpu.vram_gb * n,
        cpu=build.cpu.id,
        ram_gb=float(build.memory_gb),
        disk_read_gb_s=disk,
        rows=tuple(rows),
        expectations=checks,
        assumptions=tuple(assumptions),
    )
