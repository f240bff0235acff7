"""Catalog entries reduced to the plain numbers the physics model needs (cached per id).

The hot path (thousands of cases a second) reads these small ``__slots__`` objects instead of the
pydantic catalog models.
"""

from __future__ import annotations

import functools
from typing import Any

from rigkit.catalog.llm import layer_tokens
from rigkit.errors import EstimateError

#: WeightFormat.kernel -> kernel class used by the efficiency parameters
KERNEL_CLASS: dict[str, str] = {
    "dense-f16": "dense",
    "dense-f32": "dense",
    "dequant-f16": "gguf",
    "mmq-int8": "gguf",
    "int4-marlin": "int4",
    "fp8": "fp8",
    "fp4": "fp4",
    "exl2": "exl2",
}

#: PCIe per-lane payload bandwidth in GB/s after line coding, by generation
PCIE_LANE_GB_S: dict[int, float] = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


class ModelNums:
    """A model in one weight format, as bytes and FLOPs per layer."""

    __slots__ = (
        "attn_ops_layer_pos",
        "compute_dtype",
        "embd_bytes",
        "embedding_on_cpu",
        "ffn_size",
        "flops_layer",
        "flops_out",
        "format_id",
        "head_dim",
        "hidden",
        "id",
        "kernel",
        "kernel_class",
        "kv_dtype_bytes",
        "kv_layer_token",
        "layer_bytes",
        "layer_dense_bytes",
        "layer_expert_bytes",
        "layer_params",
        "max_context",
        "mlp_matrices",
        "n_active",
        "n_experts",
        "n_heads",
        "n_kv_heads",
        "n_layers",
        "n_local_layers",
        "name",
        "out_bytes",
        "params_b",
        "score_bytes_layer_pos",
        "tied",
        "total_bytes",
        "vocab",
        "window",
    )

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    # typed attribute declarations for mypy
    id: str
    name: str
    format_id: str
    kernel: str
    kernel_class: str
    compute_dtype: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden: int
    ffn_size: int
    vocab: int
    max_context: int
    params_b: float
    mlp_matrices: int
    layer_bytes: float
    layer_dense_bytes: float
    layer_expert_bytes: float
    layer_params: float
    n_experts: int
    n_active: int
    embd_bytes: float
    out_bytes: float
    total_bytes: float
    flops_layer: float
    flops_out: float
    kv_dtype_bytes: float
    kv_layer_token: float
    n_local_layers: int
    window: int
    attn_ops_layer_pos: float
    score_bytes_layer_pos: float
    embedding_on_cpu: bool
    tied: bool  # the LM head is the token embedding matrix (one copy on a GPU that has both)

    def expert_fraction(self, batch: int) -> float:
        """Share of a layer's routed experts that ``batch`` tokens touch (uniform routing)."""
        if self.n_experts <= 1:
            return 1.0
        return 1.0 - (1.0 - self.n_active / self.n_experts) ** batch

    def kv_token_bytes(self, context: int) -> float:
        """KV-cache bytes of one sequence of ``context`` tokens over all layers."""
        return self.kv_layer_token * layer_tokens(
            context, self.n_layers, self.n_local_layers, self.window
        )


class GpuNums:
    __slots__ = (
        "arch",
        "bf16",
        "bw",
        "chip_class",
        "f16_acc16",
        "f16_acc32",
        "form_factor",
        "fp8",
        "fp32",
        "id",
        "int8",
        "name",
        "nvlink",
        "nvlink_bw",
        "nvlink_capable",
        "p2p",
        "pcie_bw_raw",
        "power_limit",
        "sm_hz",
        "tdp",
        "vram",
    )

    id: str
    name: str
    arch: str
    vram: float  # bytes
    bw: float  # bytes/s
    f16_acc16: float  # FLOP/s
    f16_acc32: float
    bf16: float
    fp8: float | None
    fp32: float
    int8: float
    pcie_bw_raw: float  # bytes/s per direction
    p2p: bool
    nvlink: bool  # GPUs talk over NVLink in this estimate (SXM; PCIe cards with a bridge)
    nvlink_capable: bool  # the card has NVLink (PCIe cards need a bridge to use it)
    form_factor: str  # "pcie" or "sxm"
    nvlink_bw: float | None
    sm_hz: float | None  # streaming multiprocessors x boost clock (SM-cycles per second)
    tdp: float | None  # board power (the default power limit), W
    power_limit: float | None  # a power limit set below or above the default (nvidia-smi -pl), W
    chip_class: str  # arch, or arch + "-dc" for chips with 2048+ FP16 tensor FLOP per SM-cycle

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def with_power_limit(self, watts: float | None) -> GpuNums:
        """A copy whose boards run at ``watts`` (``nvidia-smi -pl``; None: the default limit)."""
        kw = {k: getattr(self, k) for k in self.__slots__}
        kw["power_limit"] = watts
        return GpuNums(**kw)

    @property
    def watts(self) -> float | None:
        """The power limit the boards run at: the set limit, else the board power."""
        return self.power_limit if self.power_limit is not None else self.tdp

    def with_nvlink(self, on: bool) -> GpuNums:
        """A copy whose GPUs do (``on``: bridged, capable cards only) or do not use NVLink."""
        kw = {k: getattr(self, k) for k in self.__slots__}
        kw["nvlink"] = on and self.nvlink_capable
        return GpuNums(**kw)

    def gemm_flops(self, compute_dtype: str, kernel: str, accumulate: str) -> float:
        """Peak dense tensor FLOP/s for the matmuls an engine runs in this format."""
        if kernel == "fp8" and self.fp8 is not None:
            return self.fp8
        if compute_dtype == "f32":
            return self.fp32
        if compute_dtype == "bf16":
            return self.bf16
        return self.f16_acc16 if accumulate == "f16" else self.f16_acc32


class CpuNums:
    __slots__ = ("bw", "cores", "flops", "id", "name", "pcie_lanes", "theory_bw")

    id: str
    name: str
    bw: float  # bytes/s, the lower of the memory channels and the fabric cap
    theory_bw: float
    cores: int
    flops: float  # FP32 FLOP/s peak estimate
    pcie_lanes: int

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def _arch_key(arch: str) -> str:
    a = arch.lower().replace("-", " ").replace("_", " ")
    return a.split()[0] if a.split() else "default"


@functools.lru_cache(maxsize=256)
def model_nums(model_id: str, format_id: str, kv_dtype_bytes: float | None = None) -> ModelNums:
    """Model ``model_id`` stored in ``format_id`` (UnknownIdError for an unknown id), with a KV
    cache of ``kv_dtype_bytes`` per element (default: the format's, 2 for F16/BF16)."""
    from rigkit.catalog.llm import load_llm_catalog, weight_bytes_breakdown

    llm = load_llm_catalog()
    m = llm.model(model_id)
    f = llm.format(format_id)
    if m.file_format is not None and m.file_format != f.id:
        raise EstimateError(
            f"{model_id} is stored in {m.file_format}, not {format_id}",
            hint=f"use --quant {m.file_format} (the file's own tensor types set the bytes)",
        )
    b = weight_bytes_breakdown(m, f)
    p = m.weight_params()
    n = m.n_layers
    expert_bytes = 0.0
    dense_ffn_bytes = b["ffn"]
    if m.file_bytes is not None:
        expert_bytes = m.file_bytes.get("experts", 0.0) + m.file_bytes.get("expert_bias", 0.0)
        dense_ffn_bytes = b["ffn"] - m.file_bytes.get("experts", 0.0)
        b = {**b, "router": b["router"] - m.file_bytes.get("expert_bias", 0.0)}
    elif m.moe is not None and (p["experts"] + p["mlp"] + p["shared_experts"]) > 0:
        ffn_params = p["experts"] + p["mlp"] + p["shared_experts"]
        expert_bytes = b["ffn"] * p["experts"] / ffn_params
        dense_ffn_bytes = b["ffn"] - expert_bytes
    layer_dense = (b["attention"] + dense_ffn_bytes + b["router"] + b["norms"]) / n
    layer_expert = expert_bytes / n
    embd = b["embedding"]
    out = b["output"] if not m.tied_embeddings else embd
    total = sum(b.values())
    active = m.active_params_per_token()
    head_params = m.vocab_size * m.hidden_size
    layer_active = (active - head_params) / n
    layer_params = (
        p["attention"] + p["mlp"] + p["experts"] + p["shared_experts"] + p["router"]
    ) / n
    kv_bytes = f.kv_dtype_default_bytes if kv_dtype_bytes is None else kv_dtype_bytes
    if m.mla is not None:
        qk = m.mla.kv_lora_rank + m.mla.qk_rope_head_dim
        attn_ops = 2.0 * m.n_heads * (qk + m.mla.kv_lora_rank)
    else:
        attn_ops = 4.0 * m.n_heads * m.head_dim
    return ModelNums(
        id=m.id,
        name=m.name,
        format_id=f.id,
        kernel=f.kernel,
        kernel_class=KERNEL_CLASS.get(f.kernel, "dense"),
        compute_dtype=f.compute_dtype,
        n_layers=n,
        n_heads=m.n_heads,
        n_kv_heads=m.n_kv_heads,
        head_dim=m.head_dim,
        hidden=m.hidden_size,
        ffn_size=m.ffn_size,
        vocab=m.vocab_size,
        max_context=m.max_context,
        params_b=m.params_b,
        mlp_matrices=3 if m.mlp_kind == "gated" else 2,
        layer_bytes=layer_dense + layer_expert,
        layer_dense_bytes=layer_dense,
        layer_expert_bytes=layer_expert,
        layer_params=layer_params,
        n_experts=m.moe.n_experts if m.moe is not None else 1,
        n_active=m.moe.n_active if m.moe is not None else 1,
        embd_bytes=embd,
        out_bytes=out,
        tied=bool(m.tied_embeddings),
        total_bytes=total,
        flops_layer=2.0 * layer_active,
        flops_out=2.0 * head_params,
        kv_dtype_bytes=kv_bytes,
        kv_layer_token=m.kv_bytes_per_layer_token(kv_bytes),
        n_local_layers=m.n_local_layers,
        window=m.attention_window or 0,
        attn_ops_layer_pos=attn_ops,
        score_bytes_layer_pos=16.0
        * m.n_heads,  # f32 scores: written, read+written by softmax, read
        embedding_on_cpu=f.embedding_on_cpu,
    )


@functools.lru_cache(maxsize=128)
def gpu_nums(gpu_id: str) -> GpuNums:
    from rigkit.catalog import load_catalog

    g = load_catalog().gpu(gpu_id)
    return gpu_nums_from(g)


def gpu_nums_from(g: Any) -> GpuNums:
    """GpuNums from a catalog ``Gpu``."""
    acc32 = g.fp16_tflops * 1e12
    sms = getattr(g, "sm_count", None)
    clock = getattr(g, "boost_clock_mhz", None)
    acc16 = (g.fp16_acc16_tflops or g.fp16_tflops) * 1e12
    arch = _arch_key(g.architecture)
    sm_hz = sms * clock * 1e6 if sms and clock else None
    return GpuNums(
        id=g.id,
        name=g.name,
        arch=arch,
        vram=g.vram_gb * 2**30,  # marketed "24 GB" of GDDR/HBM is 24 GiB (24,564 MiB in nvidia-smi)
        bw=g.bandwidth_gb_s * 1e9,
        f16_acc16=acc16,
        f16_acc32=acc32,
        bf16=g.bf16_tflops * 1e12,
        fp8=g.fp8_tflops * 1e12 if g.fp8_tflops else None,
        fp32=g.fp32_tflops * 1e12,
        int8=g.int8_tops * 1e12,
        pcie_bw_raw=PCIE_LANE_GB_S.get(g.pcie_gen, 1.969) * g.pcie_lanes * 1e9,
        p2p=bool(g.p2p),
        # SXM modules sit on an NVLink baseboard; PCIe cards link only through an optional bridge,
        # assumed absent unless an estimate says otherwise (estimate(nvlink=True), a spec's
        # nvlink_bridge)
        nvlink=bool(g.nvlink) and getattr(g, "form_factor", "pcie") == "sxm",
        nvlink_capable=bool(g.nvlink),
        form_factor=str(getattr(g, "form_factor", "pcie")),
        nvlink_bw=g.nvlink_bandwidth_gb_s * 1e9 if g.nvlink_bandwidth_gb_s else None,
        sm_hz=sm_hz,
        tdp=float(g.tdp_w) if getattr(g, "tdp_w", None) else None,
        power_limit=None,
        chip_class=chip_class(arch, max(acc16, acc32), sm_hz),
    )


def chip_class(arch: str, fp16_flops: float, sm_hz: float | None) -> str:
    """``arch``, or ``arch-dc`` for datacenter chips (GA100, GH100) whose SMs do 2048+ FP16
    tensor FLOP per cycle: a different SM design and power budget from the graphics chips
    (GA102, AD102) of the same architecture."""
    if sm_hz and fp16_flops / sm_hz >= 1536.0:
        return f"{arch}-dc"
    return arch


def cpu_bandwidth(
    channels: int, speed_mts: float, fabric_gb_s: float | None
) -> tuple[float, float]:
    """(usable, theoretical) CPU memory read bandwidth in bytes/s.

    Theoretical = channels x MT/s x 8 bytes; usable is capped by the CPU's fabric (CCD links) when
    the catalog gives a figure.
    """
    theory = channels * speed_mts * 1e6 * 8.0
    if fabric_gb_s is not None:
        return min(theory, fabric_gb_s * 1e9), theory
    return theory, theory


@functools.lru_cache(maxsize=64)
def cpu_nums(cpu_id: str, ccd_read_gb_s: float, flops_per_cycle: float) -> CpuNums:
    from rigkit.catalog import load_catalog

    c = load_catalog().cpu(cpu_id)
    return cpu_nums_from(c, ccd_read_gb_s, flops_per_cycle)


def cpu_nums_from(
    c: Any, ccd_read_gb_s: float, flops_per_cycle: float, speed_mts: float | None = None
) -> CpuNums:
    fabric = c.fabric_bandwidth_gb_s
    if fabric is None and c.ccd_count:
        fabric = c.ccd_count * ccd_read_gb_s
    speed = min(speed_mts, c.memory_speed_mts) if speed_mts else c.memory_speed_mts
    bw, theory = cpu_bandwidth(c.memory_channels, speed, fabric)
    clock = c.base_clock_ghz or 3.0
    return CpuNums(
        id=c.id,
        name=c.name,
        bw=bw,
        theory_bw=theory,
        cores=c.cores,
        flops=c.cores * clock * 1e9 * flops_per_cycle,
        pcie_lanes=c.pcie_lanes,
    )


def generic_desktop_cpu(flops_per_cycle: float) -> CpuNums:
    """Stand-in when no CPU is named: 2-channel DDR5-5600, 8 cores at 4 GHz."""
    bw, theory = cpu_bandwidth(2, 5600, None)
    return CpuNums(
        id="generic-desktop",
        name="2-channel DDR5-5600 desktop",
        bw=bw,
        theory_bw=theory,
        cores=8,
        flops=8 * 4.0e9 * flops_per_cycle,
        pcie_lanes=24,
    )


def check_positive(name: str, value: int, minimum: int = 0) -> None:
    if value < minimum:
        raise EstimateError(f"{name} must be >= {minimum}, got {value}")
