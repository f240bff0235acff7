"""``estimate()``: memory, placement, offload, speeds and load time for one configuration.

The estimate runs in named stages, each a function of the small frozen values before it:

    Workload (checked inputs)  Setup (configuration: engine, model, GPU, split; cached)
        -> Placement  (memory per GPU: fits, waves of a paged KV cache, or CPU offload)
        -> Capacity   (largest context, concurrent sequences, memory terms)
        -> Decode, Prefill (speeds of the placed model)
        -> load times, notes -> Estimate
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rigkit.errors import EstimateError
from rigkit.estimate import parallel
from rigkit.estimate.load import load_times
from rigkit.estimate.memory import (
    EngineNums,
    buffer_parts,
    compute_buffer,
    engine_nums,
    kv_share,
    llama_cpp_layers,
    split_layers,
)
from rigkit.estimate.offload import ExpertOffload, cpu_expert_decode_s, expert_offload
from rigkit.estimate.params import EngineParams, Params, load_params
from rigkit.estimate.resolve import (
    CpuNums,
    GpuNums,
    ModelNums,
    cpu_nums,
    generic_desktop_cpu,
    gpu_nums,
    model_nums,
)
from rigkit.estimate.result import Estimate
from rigkit.estimate.speed import (
    decode_step,
    gpu_rates,
    issue_bytes_s,
    prefill_time,
    sustained_clock_share,
    tensor_flops,
)

SPLITS = ("layer", "row", "tensor", "pipeline")
#: KV cache types stored at full precision (anything else is quantised)
FULL_KV = frozenset({"f32", "f16", "bf16", "fp16", "auto"})
#: GPUs in one machine, with margin: 8 on an HGX board, 16-20 on the largest PCIe-switched servers
#: and riser frames; beyond this the estimate would be of a cluster, which it does not model
MAX_GPUS = 64
_GB = 1e9
#: share of system RAM the OS and the engine leave for offloaded weights
RAM_USABLE = 0.9
_MS = 1e3

Terms = tuple[tuple[str, float], ...]


# --- the stages' values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """The checked per-call inputs: tokens per sequence, sequences, and the host."""

    prompt: int
    gen: int
    batch: int
    ctx: int  # context allocated per sequence
    cpu: str | None
    ram_gb: float | None
    disk_read_gb_s: float | None


class Config(NamedTuple):
    """What selects a :class:`Setup`: the hardware, engine and model ids.

    A named tuple: the cache key of :func:`_setup_cached`, hashed in C on every estimate.
    """

    model: str
    quant: str
    gpu: str
    gpus: int
    engine: str
    split: str | None
    nvlink: bool | None
    kv_cache: str | None
    flash_attention: bool | None
    power_limit_w: float | None = None
    nodes: int = 1
    nic: str | None = None


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything about a configuration that does not depend on prompt, gen, batch or ctx.

    Per-GPU tuples hold bytes with every layer on a GPU (the placement before any offload).
    """

    engine: str  # as asked for (notes name it so)
    kv_cache: str | None
    p: Params
    en: EngineNums
    ep: EngineParams
    m: ModelNums
    g: GpuNums
    llama_like: bool
    split: str
    mode: str  # "single" for one GPU, else the split
    n: int
    layers: tuple[int, ...]  # layers per GPU
    w: tuple[float, ...]  # weight bytes per GPU
    kvf: tuple[float, ...]  # share of the KV cache per GPU
    fixed: tuple[float, ...]  # weights + CUDA context (+ workspace) per GPU
    caps: tuple[float, ...]  # KV tokens that fit per GPU
    usable: float  # bytes of one GPU the engine uses
    kv_total_tok: float  # KV bytes per token over all layers (no window)
    flops_peak: float
    rates: tuple[float, float, float]
    nodes: int = 1  # machines; ``n`` GPUs are nodes x GPUs per machine
    nic_gbit: float = 25.0  # the link between machines, Gb/s per port
    nic_latency_us: float = 60.0  # one hand-over between machines (TCP; RDMA less)
    nic_name: str = "25GbE (no NIC given)"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where weights and KV cache go for a workload, and whether it runs."""

    fits: bool  # weights and KV cache of every sequence in GPU memory
    weights_fit: bool
    offload: bool  # llama.cpp runs ``cpu_layers`` layers from system RAM
    runnable: bool
    run_batch: int  # sequences in flight at once (a paged KV cache may hold fewer)
    layers: tuple[int, ...]  # layers per GPU
    w: tuple[float, ...]  # weight bytes per GPU
    used: tuple[float, ...]  # bytes per GPU
    worst: int  # index of the fullest GPU
    kv_needed: float  # KV bytes of the sequences in flight
    buf: float  # llama.cpp compute buffer per GPU
    cap_tokens: float  # KV tokens that fit (inf: the model has no KV cache to speak of)
    gpu_layers: int | None
    cpu_layers: int | None
    out_on_gpu: bool  # the LM head is on a GPU
    cpu_ram: float  # bytes held in system RAM
    cpu: CpuNums | None  # the host CPU running offloaded layers
    notes: tuple[str, ...]
    moe: ExpertOffload | None = None  # --n-cpu-moe: routed experts of the first N layers in RAM


@dataclass(frozen=True, slots=True)
class Capacity:
    """How much a placement holds: context, concurrent sequences, the fullest GPU's memory."""

    max_context: int
    max_concurrent: int
    memory_gb: float
    memory_terms: Terms
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decode:
    """The average decode step."""

    per_seq: float  # tokens/s of one sequence
    aggregate: float  # tokens/s of all sequences in flight
    bound: str
    terms: Terms  # ms


@dataclass(frozen=True, slots=True)
class Prefill:
    """All prompts of the sequences in flight."""

    seconds: float
    bound: str
    terms: Terms  # ms


# --- stage 1: inputs --------------------------------------------------------------------------------


def _check_ints(**values: object) -> None:
    """Raise the EstimateError that describes the first bad count."""
    for name, value in values.items():
        low = 1 if name in ("gpus", "batch") else 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise EstimateError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise EstimateError(f"{name} must be >= {low}, got {value}")


def _workload(
    cfg: Config,
    prompt: int,
    gen: int,
    batch: int,
    ctx: int | None,
    cpu: str | None,
    ram_gb: float | None,
    disk_read_gb_s: float | None,
) -> Workload:
    """Check the inputs (types, ranges) and fill in the default context."""
    gpus = cfg.gpus
    if not (type(gpus) is int and type(prompt) is int and type(gen) is int and type(batch) is int):
        _check_ints(gpus=gpus, prompt=prompt, gen=gen, batch=batch)
    if gpus < 1 or prompt < 0 or gen < 0 or batch < 1:
        _check_ints(gpus=gpus, prompt=prompt, gen=gen, batch=batch)
    if prompt == 0 and gen == 0:
        raise EstimateError("prompt and gen are both 0: nothing to estimate")
    if cfg.nvlink is not None and type(cfg.nvlink) is not bool:
        raise EstimateError(f"nvlink must be true or false, got {cfg.nvlink!r}")
    if cfg.kv_cache is not None and type(cfg.kv_cache) is not str:
        raise EstimateError(f"kv_cache must be a KV cache type name, got {cfg.kv_cache!r}")
    fa = cfg.flash_attention
    if fa is not None and type(fa) is not bool:
        raise EstimateError(f"flash_attention must be true or false, got {fa!r}")
    # `not 0 < x < inf` rather than `x <= 0`: NaN and infinity are refused too
    if ram_gb is not None and not 0 < ram_gb < math.inf:
        raise EstimateError(f"ram_gb must be > 0, got {ram_gb}")
    if disk_read_gb_s is not None and not 0 < disk_read_gb_s < math.inf:
        raise EstimateError(f"disk_read_gb_s must be > 0, got {disk_read_gb_s}")
    if ctx is None:
        ctx = max(1, prompt + gen)
    elif ctx < prompt + gen:
        raise EstimateError(f"ctx {ctx} is smaller than prompt + gen = {prompt + gen}")
    return Workload(prompt, gen, batch, ctx, cpu, ram_gb, disk_read_gb_s)


# --- stage 2: the configuration ---------------------------------------------------------------------


def _capacity_tokens(
    usable: float, fixed: float, kv_tok: float, e: EngineNums, m: ModelNums, llama_like: bool
) -> float:
    """Tokens of KV cache that fit in ``usable`` bytes after ``fixed`` (weights, context).

    llama.cpp's compute buffer is base + max(logits, scores x context): solve both branches.
    """
    if kv_tok <= 0:
        return math.inf
    if not llama_like:
        return max(0.0, (usable - fixed) / kv_tok)
    base_logits, per_ctx = buffer_parts(e, m)
    logits = base_logits - (e.cb_base or 0.0)
    t_a = (usable - fixed - base_logits) / kv_tok
    if per_ctx * t_a <= logits:
        return max(0.0, t_a)
    return max(0.0, (usable - fixed - (e.cb_base or 0.0)) / (kv_tok + per_ctx))


def _make_setup(cfg: Config, p: Params) -> Setup:
    """Resolve the ids, check the engine can run them so, and place the weights on the GPUs."""
    engine, gpus, kv_cache = cfg.engine, cfg.gpus, cfg.kv_cache
    en = engine_nums(engine)
    ep = p.engines.get(en.id) or p.engine(en.model_id)
    # the catalog's engines.yaml says which formats each engine loads (and which only experimentally)
    loads = en.formats | en.experimental
    quant = cfg.quant
    if quant not in loads and not (
        quant.startswith("exl2-") and any(f.startswith("exl2") for f in loads)
    ):
        raise EstimateError(
            f"engine {engine!r} does not load format {quant!r}",
            hint="it loads: " + ", ".join(sorted(loads)),
        )
    kv_b: float | None = None
    if kv_cache is not None:
        options = dict(en.kv_dtypes)
        if kv_cache not in options:
            raise EstimateError(
                f"engine {engine!r} has no KV cache type {kv_cache!r}",
                hint="it has: " + ", ".join(options),
            )
        kv_b = options[kv_cache]
    fa = cfg.flash_attention
    if en.model_id == "llama.cpp" and kv_cache is not None and kv_cache not in FULL_KV:
        if fa is False:
            raise EstimateError(
                f"llama.cpp quantises the V cache ({kv_cache}) only with flash attention",
                hint="drop flash_attention=false (-fa), or use kv_cache f16",
            )
        fa = True
    if fa is not None:
        # -fa: no attention-score buffer, no score traffic in prompt attention
        en = dataclasses.replace(en, cb_flash_attention=fa)
        ep = dataclasses.replace(ep, flash_attention=fa)
    m = model_nums(cfg.model, quant, kv_b)
    g = gpu_nums(cfg.gpu)
    nvlink = cfg.nvlink
    if nvlink is not None and nvlink != g.nvlink:
        if nvlink and not g.nvlink_capable:
            raise EstimateError(
                f"{cfg.gpu} has no NVLink", hint="leave nvlink unset: its GPUs talk over PCIe"
            )
        g = g.with_nvlink(nvlink)
    if cfg.power_limit_w is not None:
        _check_power_limit(cfg.gpu, cfg.power_limit_w)
        g = g.with_power_limit(cfg.power_limit_w)
    llama_like = en.model_id == "llama.cpp"
    split = en.default_split if cfg.split is None else cfg.split
    nodes = cfg.nodes
    nic_gbit, nic_lat, nic_name = 25.0, p.node_latency_tcp_us, "25GbE (no NIC given)"
    if nodes > 1:
        if split not in ("layer", "pipeline"):
            raise EstimateError(
                f"across {nodes} machines rigkit models a layer (llama.cpp RPC) or pipeline "
                f"(vLLM --pipeline-parallel-size) split, not {split!r}",
                hint="--split layer for llama.cpp, --split pipeline for vLLM",
            )
        if cfg.nic is not None:
            from rigkit.catalog import load_catalog

            card = load_catalog().get("nics", cfg.nic)
            nic_gbit = float(card.speed_gbe)  # type: ignore[attr-defined]
            rdma = bool(card.rdma) and not llama_like  # type: ignore[attr-defined]
            nic_lat = p.node_latency_rdma_us if rdma else p.node_latency_tcp_us
            nic_name = f"{card.name} ({'RDMA' if rdma else 'TCP'})"
        gpus = gpus * nodes
        cfg = cfg._replace(gpus=gpus)
    _check_split(cfg, en, m, split)
    n = gpus
    mode = split if n > 1 else "single"
    layers, w, kvf = _place_weights(
        m, n, mode, embd_on_gpu=not (llama_like or m.embedding_on_cpu), llama_cpp=llama_like
    )
    kv_total_tok = m.kv_token_bytes(1)  # per token, all layers (no window)
    paged = not llama_like
    usable = g.vram * (en.util if (paged and en.util) else 1.0)
    fixed = tuple(wi + en.cuda_ctx + (en.workspace if paged else 0.0) for wi in w)
    caps = tuple(
        _capacity_tokens(usable, fi, kv_total_tok * kf, en, m, llama_like)
        for fi, kf in zip(fixed, kvf, strict=True)
    )
    return Setup(
        engine=engine,
        kv_cache=kv_cache,
        p=p,
        en=en,
        ep=ep,
        m=m,
        g=g,
        llama_like=llama_like,
        split=split,
        mode=mode,
        n=n,
        layers=layers,
        w=w,
        kvf=kvf,
        fixed=fixed,
        caps=caps,
        usable=usable,
        kv_total_tok=kv_total_tok,
        flops_peak=tensor_flops(
            g, p, ep, g.gemm_flops(m.compute_dtype, m.kernel, ep.gemm_accumulate)
        ),
        rates=gpu_rates(g, p, ep, m.kernel_class),
        nodes=nodes,
        nic_gbit=nic_gbit,
        nic_latency_us=nic_lat,
        nic_name=nic_name,
    )


def _check_power_limit(gpu: str, watts: float) -> None:
    """Refuse a limit outside the card's settable range, where the catalog has it."""
    from rigkit.catalog import load_catalog

    card = load_catalog().gpu(gpu)
    low, high = card.min_power_limit_w, card.max_power_limit_w
    if low is not None and watts < low:
        raise EstimateError(
            f"{gpu} cannot be limited to {watts:g} W", hint=f"its lowest limit is {low:g} W"
        )
    if high is not None and watts > high:
        raise EstimateError(
            f"{gpu} cannot be set to {watts:g} W", hint=f"its highest limit is {high:g} W"
        )


def _check_split(cfg: Config, en: EngineNums, m: ModelNums, split: str) -> None:
    """Refuse a split the engine lacks or the model or GPU count cannot take."""
    gpus = cfg.gpus
    if split not in SPLITS:
        raise EstimateError(f"unknown split {split!r}", hint="one of: " + ", ".join(SPLITS))
    if gpus > 1 and split not in en.parallel_modes:
        raise EstimateError(
            f"engine {cfg.engine!r} has no {split!r} split",
            hint="it has: " + ", ".join(en.parallel_modes),
        )
    if split == "tensor" and gpus > 1 and m.n_heads % gpus:
        raise EstimateError(
            f"tensor parallelism over {gpus} GPUs needs the attention heads ({m.n_heads}) to divide evenly"
        )
    if split in ("layer", "pipeline") and gpus > m.n_layers:
        raise EstimateError(
            f"a {split} split of {cfg.model}'s {m.n_layers} layers over {gpus} GPUs leaves GPUs "
            "without a layer",
            hint=f"at most {m.n_layers} GPUs",
        )
    if gpus > MAX_GPUS:
        raise EstimateError(
            f"{gpus} GPUs: rigkit models one machine (at most {MAX_GPUS} GPUs)",
            hint="multi-node serving is not modelled",
        )


def _place_weights(
    m: ModelNums, n: int, mode: str, embd_on_gpu: bool, llama_cpp: bool = False
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """(layers, weight bytes, share of the KV cache) per GPU with every layer on the GPUs.

    llama.cpp's layer split counts the LM head as one more layer slot on the last GPU
    (memory.llama_cpp_layers); other engines split the layers evenly.
    """
    if mode in ("single", "layer", "pipeline"):
        layers = llama_cpp_layers(m.n_layers, n) if llama_cpp else split_layers(m.n_layers, n)
        w = [li * m.layer_bytes for li in layers]
        w[-1] += m.out_bytes
        if embd_on_gpu and not (m.tied and n == 1):  # a tied head on one GPU: one copy
            w[0] += m.embd_bytes
        return tuple(layers), tuple(w), tuple(li / m.n_layers for li in layers)
    if mode == "tensor":
        share = 1.0 / n
        per = (
            m.n_layers * m.layer_bytes
            + m.out_bytes
            + (m.embd_bytes if embd_on_gpu and not m.tied else 0.0)
        ) * share
        return (m.n_layers,) * n, (per,) * n, (kv_share(m, n),) * n
    # row: matrices split by rows, KV on the main GPU
    per = (m.n_layers * m.layer_bytes + m.out_bytes) / n
    return (m.n_layers,) * n, (per,) * n, (1.0,) + (0.0,) * (n - 1)


@functools.lru_cache(maxsize=4096)
def _setup_cached(cfg: Config, source: str) -> Setup:
    # ``source`` is part of the key: one entry per parameter set
    return _make_setup(cfg, load_params(None if source == "packaged" else source))


def _setup(cfg: Config, profile: str | Path | None, params: Params | None) -> Setup:
    """The configuration's :class:`Setup` (cached per parameter set unless ``params`` is given)."""
    if params is not None:
        return _make_setup(cfg, params)
    p = load_params(profile)
    su = _setup_cached(cfg, p.source)
    if su.p is not p:  # a profile file changed since: rebuild
        _setup_cached.cache_clear()
        su = _setup_cached(cfg, p.source)
    return su


# --- stage 3: memory and placement ------------------------------------------------------------------


def _place(su: Setup, wl: Workload) -> Placement:
    """Place the workload: all on the GPUs, in waves of a paged KV cache, or partly on the CPU."""
    m, en, llama_like = su.m, su.en, su.llama_like
    tokens_needed = wl.batch * wl.ctx
    kv_needed = wl.batch * m.kv_token_bytes(wl.ctx)
    cap_tokens = min(su.caps)
    buf = compute_buffer(en, m, tokens_needed) if llama_like else 0.0
    weights_fit = max(su.fixed) + buf <= su.usable
    fits = weights_fit and cap_tokens >= tokens_needed
    run_batch = wl.batch
    runnable = fits
    notes: tuple[str, ...] = ()
    if not fits and en.supports_offload and llama_like and su.mode in ("single", "layer"):
        if m.n_experts > 1:
            moe = _expert_offload(su, wl, weights_fit, kv_needed, buf)
            if moe is not None:
                return moe
        return _offload(su, wl, weights_fit, kv_needed, buf)
    if not fits and weights_fit and not llama_like and cap_tokens >= wl.ctx:
        # paged KV cache: the engine admits as many sequences as its KV pool holds and queues
        # the rest (vLLM, TGI, ExLlamaV2's dynamic generator), so the batch runs in waves
        run_batch = int(cap_tokens // wl.ctx)
        runnable = True
        kv_needed = run_batch * m.kv_token_bytes(wl.ctx)
        notes = (
            f"the KV cache holds {run_batch} of the {wl.batch} sequences of {wl.ctx:,} tokens at "
            f"once: {su.engine} runs {run_batch} and queues the rest, so speeds are for "
            f"{run_batch} concurrent sequences",
        )
    elif not fits:
        notes = _no_fit_notes(su, wl, weights_fit, cap_tokens)
    used = tuple(fi + buf + kv_needed * kf for fi, kf in zip(su.fixed, su.kvf, strict=True))
    return Placement(
        fits=fits,
        weights_fit=weights_fit,
        offload=False,
        runnable=runnable,
        run_batch=run_batch,
        layers=su.layers,
        w=su.w,
        used=used,
        worst=used.index(max(used)),
        kv_needed=kv_needed,
        buf=buf,
        cap_tokens=cap_tokens,
        gpu_layers=None,
        cpu_layers=None,
        out_on_gpu=True,
        cpu_ram=su.m.embd_bytes if (llama_like or m.embedding_on_cpu) else 0.0,
        cpu=None,
        notes=notes,
    )


def _no_fit_notes(su: Setup, wl: Workload, weights_fit: bool, cap_tokens: float) -> tuple[str, ...]:
    """Why a configuration that neither fits nor offloads does not run."""
    why = (
        "weights alone exceed"
        if not weights_fit
        else "weights fit but the KV cache for the context exceeds"
    )
    if su.en.supports_offload and not su.llama_like:
        why += (
            f" the memory {su.engine} claims; its CPU offload copies weights over PCIe every "
            "step (not modelled)"
        )
    notes = [f"does not fit: {why} GPU memory"]
    if weights_fit and cap_tokens >= wl.ctx:
        notes.append(
            f"at most {int(cap_tokens // wl.ctx)} sequences of {wl.ctx:,} tokens fit ({su.engine} "
            "allocates the KV cache of every sequence slot when it starts)"
        )
    return tuple(notes)


def _offloaded_gpus(
    su: Setup, w: list[float] | tuple[float, ...], layers: list[int], kv_needed: float, buf: float
) -> tuple[tuple[float, ...], float]:
    """(bytes used on each GPU, KV tokens that fit) of a placement with part of it in RAM."""
    m, en, g = su.m, su.en, su.g
    used = tuple(
        wi + en.cuda_ctx + buf + kv_needed * li / m.n_layers
        for wi, li in zip(w, layers, strict=True)
    )
    caps = [
        _capacity_tokens(g.vram, wi + en.cuda_ctx, su.kv_total_tok * li / m.n_layers, en, m, True)
        for wi, li in zip(w, layers, strict=True)
        if li > 0
    ]
    return used, min(caps) if caps else math.inf


def _host_cpu(su: Setup, wl: Workload, what: str) -> tuple[CpuNums, list[str]]:
    """The host CPU (the generic desktop, with a note, when none is given)."""
    p = su.p
    if wl.cpu is not None:
        return cpu_nums(wl.cpu, p.ccd_read_gb_s, p.cpu_flops_per_cycle), []
    return generic_desktop_cpu(p.cpu_flops_per_cycle), [
        f"no CPU given: {what} run on a 2-channel DDR5-5600 desktop (89.6 GB/s); pass --cpu"
    ]


def _expert_offload(
    su: Setup, wl: Workload, weights_fit: bool, kv_needed: float, buf: float
) -> Placement | None:
    """llama.cpp's --n-cpu-moe N: the smallest N whose placement fits (offload.expert_offload)."""
    m, en, g, n = su.m, su.en, su.g, su.n
    layers = list(su.layers)
    room = [g.vram - en.cuda_ctx - buf - kv_needed * li / m.n_layers for li in layers]
    plan = expert_offload(m, layers, room)
    if plan is None:
        return None
    c, notes = _host_cpu(su, wl, "the offloaded experts")
    cpu_ram = m.embd_bytes + plan.cpu_bytes
    runnable = not (wl.ram_gb is not None and cpu_ram > wl.ram_gb * _GB * RAM_USABLE)
    if not runnable:
        notes.append(
            f"the experts kept in RAM need {cpu_ram / _GB:.0f} GB, more than 90% of "
            f"{wl.ram_gb:g} GB: it would page from disk"
        )
    elif wl.ram_gb is None:
        notes.append(
            f"assumed at least {cpu_ram / _GB / RAM_USABLE:.0f} GB of system RAM for the experts"
        )
    active = m.layer_expert_bytes * m.expert_fraction(wl.batch)
    notes.append(
        f"MoE expert offload ({plan.flag}): attention, router and shared weights and the KV cache "
        f"on the GPU{'s' if n > 1 else ''}, the routed experts of the first {plan.cpu_moe_layers} "
        f"of {m.n_layers} layers ({plan.cpu_bytes / _GB:.1f} GB) in system RAM; each token reads "
        f"the experts it is routed to there ({active * plan.cpu_moe_layers / _GB:.2f} GB per step "
        f"at {c.bw * su.p.cpu_bandwidth_efficiency / _GB:.0f} GB/s)"
    )
    used, cap_tokens = _offloaded_gpus(su, plan.gpu_bytes, layers, kv_needed, buf)
    return Placement(
        fits=False,
        weights_fit=weights_fit,
        offload=True,
        runnable=runnable,
        run_batch=wl.batch,
        layers=tuple(layers),
        w=plan.gpu_bytes,
        used=used,
        worst=used.index(max(used)),
        kv_needed=kv_needed,
        buf=buf,
        cap_tokens=cap_tokens,
        gpu_layers=m.n_layers,
        cpu_layers=0,
        out_on_gpu=True,
        cpu_ram=cpu_ram,
        cpu=c,
        notes=tuple(notes),
        moe=plan,
    )


def _offload(su: Setup, wl: Workload, weights_fit: bool, kv_needed: float, buf: float) -> Placement:
    """llama.cpp's -ngl: as many layers on the GPUs as fit with their KV; the rest on the CPU."""
    m, en, g, n = su.m, su.en, su.g, su.n
    notes: list[str] = []
    per_layer = m.layer_bytes + kv_needed / m.n_layers
    room = [g.vram - en.cuda_ctx - buf for _ in range(n)]
    fit_layers = [max(0, int(r // per_layer)) for r in room]
    gl = min(m.n_layers, sum(fit_layers))
    cpu_layers = m.n_layers - gl
    layers = split_layers(gl, n) if gl else [0] * n
    # the LM head joins the last GPU only when every layer is on the GPUs (llama.cpp -ngl)
    out_on_gpu = gl == m.n_layers and room[-1] - layers[-1] * per_layer >= m.out_bytes
    w = [li * m.layer_bytes for li in layers]
    if out_on_gpu:
        w[-1] += m.out_bytes
    used, cap_tokens = _offloaded_gpus(su, w, layers, kv_needed, buf)
    cpu_ram = m.embd_bytes  # llama.cpp keeps the token embedding in RAM
    cpu_ram += cpu_layers * m.layer_bytes + (0.0 if out_on_gpu else m.out_bytes)
    cpu_ram += kv_needed * cpu_layers / m.n_layers
    c, cpu_notes = _host_cpu(su, wl, "offloaded layers")
    notes += cpu_notes
    ram_gb = wl.ram_gb
    if ram_gb is not None and cpu_ram > ram_gb * _GB * RAM_USABLE:
        runnable = False
        notes.append(
            f"the CPU part needs {cpu_ram / _GB:.0f} GB of RAM, more than 90% of {ram_gb:g} GB: it would page from disk"
        )
    else:
        runnable = True
        if ram_gb is None:
            notes.append(
                f"assumed at least {cpu_ram / _GB / RAM_USABLE:.0f} GB of system RAM for the CPU part"
            )
    return Placement(
        fits=False,
        weights_fit=weights_fit,
        offload=True,
        runnable=runnable,
        run_batch=wl.batch,
        layers=tuple(layers),
        w=tuple(w),
        used=used,
        worst=used.index(max(used)),
        kv_needed=kv_needed,
        buf=buf,
        cap_tokens=cap_tokens,
        gpu_layers=gl,
        cpu_layers=cpu_layers,
        out_on_gpu=out_on_gpu,
        cpu_ram=cpu_ram,
        cpu=c,
        notes=tuple(notes),
    )


# --- stage 4: capacity ------------------------------------------------------------------------------


def _capacity(su: Setup, wl: Workload, pl: Placement) -> Capacity:
    """Largest context, most concurrent sequences and the fullest GPU's memory of a placement."""
    m, en = su.m, su.en
    ctx = wl.ctx
    cap_tokens = pl.cap_tokens
    if math.isinf(cap_tokens):
        cap_tokens = float(m.max_context)
    max_context = int(min(cap_tokens, m.max_context))
    notes: tuple[str, ...] = ()
    if ctx > m.max_context:
        notes = (
            f"context {ctx:,} is above the model's trained context of {m.max_context:,} tokens:"
            " the figures assume it could run, quality beyond it is not modelled",
        )
    max_conc = int(cap_tokens // ctx) if pl.runnable or pl.weights_fit else 0
    if not pl.runnable:
        max_context = 0 if not pl.fits and not pl.offload else max_context
    worst = pl.worst
    kv_share_worst = pl.layers[worst] / m.n_layers if pl.offload else su.kvf[worst]
    memory_terms: Terms = (
        ("weights", pl.w[worst] / _GB),
        ("kv_cache", (pl.kv_needed * kv_share_worst) / _GB),
        ("compute_buffer", (pl.buf if su.llama_like else en.workspace) / _GB),
        ("cuda_context", en.cuda_ctx / _GB),
    )
    return Capacity(
        max_context=max_context,
        max_concurrent=max_conc,
        memory_gb=pl.used[worst] / _GB,
        memory_terms=memory_terms,
        notes=notes,
    )


# --- stage 5: speeds --------------------------------------------------------------------------------


def _dram_weight_rate(su: Setup) -> float:
    """Bytes/s of quantised weights the GPU's memory delivers (before the SMs' issue limit)."""
    g, p, ep = su.g, su.p, su.ep
    return g.bw * p.bw_eff(g.arch) * ep.bandwidth_scale * p.quant_eff(su.m.kernel_class)


def _decode(su: Setup, pl: Placement, depth: float) -> Decode:
    """The average decode step at context ``depth`` for the sequences in flight."""
    m, g, p, ep, n, rates = su.m, su.g, su.p, su.ep, su.n, su.rates
    flops_peak, mode, batch = su.flops_peak, su.mode, pl.run_batch
    cpu_layers = pl.cpu_layers or 0
    out_on_gpu = pl.out_on_gpu
    comm = 0.0
    if mode == "tensor":
        share = 1.0 / n
        t = decode_step(
            m, g, p, ep, flops_peak, m.n_layers, True, batch, depth, share, kv_share(m, n), rates
        )
        comm = 2 * m.n_layers * parallel.allreduce_s(g, p, n, batch * m.hidden * 2.0)
    elif mode == "row":
        t = decode_step(
            m, g, p, ep, flops_peak, m.n_layers, True, batch, depth, 1.0 / n, 1.0, rates
        )
        nbytes = batch * 4.0 * _row_gather_width(m)
        comm = m.n_layers * parallel.row_gather_s(g, p, n, 4 + m.mlp_matrices, nbytes)
    else:  # single, layer, pipeline: stages in sequence, same GPU type: one sum
        gl = sum(pl.layers)
        t = decode_step(m, g, p, ep, flops_peak, gl, out_on_gpu, batch, depth, rates=rates)
        used = sum(1 for li in pl.layers if li > 0)
        net = su.nodes - 1  # boundaries between machines go over the NIC
        comm = max(0, used - 1 - net) * parallel.hop_s(g, p, batch * m.hidden * 4.0)
        comm += net * parallel.node_hop_s(su.nic_gbit, su.nic_latency_us, batch * m.hidden * 4.0)
    t_w, t_c, t_kv, t_attn, t_fix = t
    t_cpu = 0.0
    if pl.moe is not None and pl.cpu is not None:
        # the GPUs read every layer but the offloaded experts; the CPU reads those
        frac = m.expert_fraction(batch)
        read = m.n_layers * (m.layer_dense_bytes + m.layer_expert_bytes * frac) + m.out_bytes
        t_w *= 1.0 - pl.moe.cpu_moe_layers * m.layer_expert_bytes * frac / read
        t_cpu, _ = cpu_expert_decode_s(
            m,
            pl.moe.cpu_moe_layers,
            batch,
            pl.cpu.bw * p.cpu_bandwidth_efficiency,
            2.0 * p.cpu_moe_sync_us * 1e-6,
        )
    if cpu_layers or not out_on_gpu:
        c = pl.cpu
        assert c is not None
        cbw = c.bw * p.cpu_bandwidth_efficiency
        frac = m.expert_fraction(batch) if m.n_experts > 1 else 1.0
        cbytes = cpu_layers * (m.layer_dense_bytes + m.layer_expert_bytes * frac) + (
            0.0 if out_on_gpu else m.out_bytes
        )
        cflops = batch * (cpu_layers * m.flops_layer + (0.0 if out_on_gpu else m.flops_out))
        t_cpu = max(cbytes / cbw, cflops / (c.flops * p.cpu_compute_efficiency))
        t_cpu += batch * cpu_layers * m.kv_layer_token * depth / cbw
        t_cpu += cpu_layers * p.layer_overhead_us * 1e-6 * 0.5
        comm += parallel.hop_s(g, p, batch * m.hidden * 4.0)
    t_lin = max(t_w, t_c)
    step = t_lin + t_kv + t_attn + t_fix + comm + t_cpu + ep.step_overhead_us * 1e-6
    # pipeline micro-batches do not raise decode throughput while the step is bandwidth-bound:
    # each micro-batch reads the stage's weights again, so aggregate stays batch / step
    # weight streaming capped by the SMs' issue rate rather than DRAM counts as compute
    issue = issue_bytes_s(m, g, p, ep)
    sm_bound = issue is not None and issue < _dram_weight_rate(su)
    w_mem = t_w if t_w >= t_c and not sm_bound else 0.0
    mem_t = w_mem + t_kv
    comp_t = (t_c if t_c > t_w else t_w - w_mem) + t_attn
    bound, top = ("memory-bandwidth", mem_t) if mem_t >= comp_t else ("compute", comp_t)
    if comm > top:
        bound, top = "interconnect", comm
    if t_cpu > top:
        bound = "cpu-ram"
    terms = (
        ("weights", t_w * _MS),
        ("gemm_compute", t_c * _MS),
        ("kv_cache", t_kv * _MS),
        ("attention", t_attn * _MS),
        ("fixed_overhead", (t_fix + ep.step_overhead_us * 1e-6) * _MS),
        ("interconnect", comm * _MS),
        ("cpu_layers", t_cpu * _MS),
        ("total", step * _MS),
    )
    return Decode(per_seq=1.0 / step, aggregate=batch / step, bound=bound, terms=terms)


def _row_gather_width(m: ModelNums) -> float:
    """Values per token the main GPU gathers per layer under a row split."""
    return 2 * m.hidden + 2 * m.n_kv_heads * m.head_dim + (m.mlp_matrices - 1) * m.ffn_size


def _prefill(su: Setup, pl: Placement, prompt: int) -> Prefill:
    """Prefill of ``prompt`` tokens for each sequence in flight."""
    m, g, p, ep, n, rates = su.m, su.g, su.p, su.ep, su.n, su.rates
    flops_peak, mode, batch = su.flops_peak, su.mode, pl.run_batch
    u = max(1, ep.ubatch)
    total = batch * prompt
    n_ub = -(-total // u)
    comm = 0.0
    factor = 1.0
    if mode == "tensor":
        t = prefill_time(
            m, g, p, ep, flops_peak, m.n_layers, True, prompt, 0, 1.0 / n, batch, rates
        )
        tok = min(u, total)
        comm = n_ub * 2 * m.n_layers * parallel.allreduce_s(g, p, n, tok * m.hidden * 2.0)
    elif mode == "row":
        t = prefill_time(
            m, g, p, ep, flops_peak, m.n_layers, True, prompt, 0, 1.0 / n, batch, rates
        )
        tok = min(u, total)
        nbytes = tok * 4.0 * _row_gather_width(m)
        comm = n_ub * m.n_layers * parallel.row_gather_s(g, p, n, 4 + m.mlp_matrices, nbytes)
    else:
        # the GPUs compute every layer; CPU-resident layers' weights are copied up per micro-batch
        t = prefill_time(m, g, p, ep, flops_peak, m.n_layers, True, prompt, 0, 1.0, batch, rates)
        used_layers = [li for li in pl.layers if li > 0]
        if len(used_layers) > 1:
            # micro-batches flow through the GPUs (parallel.pipelined_prefill_s); the hops are
            # inside the stages, so the pipelined time replaces the serial one
            serial = sum(t)
            nbytes = min(u, total) * m.hidden * 4.0
            per_gpu = n // su.nodes
            hop = [
                parallel.node_hop_s(su.nic_gbit, su.nic_latency_us, nbytes)
                if su.nodes > 1 and (i + 1) % per_gpu == 0 and i + 1 < n
                else parallel.hop_s(g, p, nbytes)
                for i, li in enumerate(pl.layers)
                if li > 0
            ]
            per_call = -(-min(total, max(ep.n_batch, u)) // u)
            gl = sum(used_layers)
            stages = [serial / n_ub * li / gl for li in used_layers]
            piped = parallel.pipelined_prefill_s(stages, n_ub, per_call, hop)
            hops = piped - parallel.pipelined_prefill_s(stages, n_ub, per_call, 0.0)
            factor = (piped - hops) / serial
            comm = hops
    t_lin, t_dq, t_attn, t_fix = t
    t_copy = 0.0
    cpu_layers, out_on_gpu = pl.cpu_layers or 0, pl.out_on_gpu
    if cpu_layers or not out_on_gpu or pl.moe is not None:
        cbytes = cpu_layers * m.layer_bytes + (0.0 if out_on_gpu else m.out_bytes)
        if pl.moe is not None:  # the offloaded experts go up to the GPU for each micro-batch
            cbytes += pl.moe.cpu_bytes
        t_copy = n_ub * cbytes / (g.pcie_bw_raw * p.pcie_efficiency)
    gpu_t = (t_lin + t_dq + t_attn + t_fix) * factor
    total_t = gpu_t + comm + t_copy
    cats = {
        "compute": (t_lin + t_attn) * factor,
        "memory-bandwidth": t_dq * factor,
        "interconnect": comm + t_copy,
        "cpu-ram": 0.0,
    }
    terms = (
        ("linear", t_lin * factor * _MS),
        ("dequant", t_dq * factor * _MS),
        ("attention", t_attn * factor * _MS),
        ("fixed_overhead", t_fix * factor * _MS),
        ("interconnect", comm * _MS),
        ("weight_upload", t_copy * _MS),
        ("total", total_t * _MS),
    )
    return Prefill(seconds=total_t, bound=max(cats, key=lambda k: cats[k]), terms=terms)


# --- stage 6: notes and the result ------------------------------------------------------------------


def _notes(su: Setup, wl: Workload, pl: Placement) -> tuple[str, ...]:
    """What the speeds and load time assume beyond the placement (split, links, kernels, fit)."""
    m, g, p, ep, en, n, mode = su.m, su.g, su.p, su.ep, su.en, su.n, su.mode
    engine, runnable = su.engine, pl.runnable
    notes: list[str] = []
    if m.format_id in en.experimental and en.experimental_note:
        notes.append(en.experimental_note)
    if wl.disk_read_gb_s is None:
        notes.append(f"disk read {p.default_disk_read_gb_s:g} GB/s (pass disk_read_gb_s / a build)")
    if mode == "tensor" and n > 1:
        _, _, path = parallel.link(g, p)
        one = parallel.allreduce_s(g, p, n, wl.batch * m.hidden * 2.0)
        notes.append(
            f"tensor split: every GPU reads 1/{n} of the weights at once, but each layer needs 2 all-reduces: "
            f"{2 * m.n_layers} per token over {path}, ~{one * 1e6:.0f} us each = "
            f"{2 * m.n_layers * one * 1e3:.2g} ms per token"
        )
    elif mode in ("layer", "pipeline") and n > 1:
        notes.append(
            f"{mode} split: the {n} GPUs run their layers one after another, so per-token time is the sum "
            f"over GPUs (no all-reduce, {n - 1} hidden-state hops); more GPUs add memory, not single-stream speed"
        )
        if su.llama_like and wl.prompt > 0:
            per_call = -(-min(wl.prompt * wl.batch, max(ep.n_batch, ep.ubatch)) // ep.ubatch)
            notes.append(
                f"prompt: micro-batches of {ep.ubatch} tokens flow through the GPUs, up to "
                f"{per_call} at once per call of {ep.n_batch} (llama.cpp -b / -ub), each handed "
                f"on through {'PCIe peer-to-peer' if g.p2p else 'host memory'}; layers per GPU "
                f"{', '.join(str(x) for x in pl.layers)} (llama.cpp counts the LM head as a layer "
                "slot on the last GPU)"
            )
    elif mode == "row" and n > 1:
        notes.append(
            f"row split: every matrix split across {n} GPUs, the main GPU gathers the results after each of "
            f"{4 + m.mlp_matrices} matmuls per layer; KV cache on the main GPU"
        )
    if su.nodes > 1:
        one = parallel.node_hop_s(su.nic_gbit, su.nic_latency_us, wl.batch * m.hidden * 4.0)
        mech = (
            "llama.cpp's RPC backend (rpc-server on each machine)"
            if su.llama_like
            else ("vLLM pipeline parallelism across machines (--pipeline-parallel-size)")
        )
        notes.append(
            f"{su.nodes} machines of {n // su.nodes} GPUs over {su.nic_name}: {mech}; each token's "
            f"hidden state crosses {su.nodes - 1} network hop(s) of ~{one * 1e6:.0f} us "
            f"({su.nic_latency_us:g} us latency + {wl.batch * m.hidden * 4:,} B at "
            f"{su.nic_gbit:g} Gb/s); the machines add memory, not single-stream speed"
        )
    kv_cache = su.kv_cache
    if kv_cache is not None and su.llama_like and kv_cache not in FULL_KV:
        notes.append(
            f"KV cache {kv_cache}: llama.cpp quantises the V cache only with flash attention, "
            f"so -fa is on (--cache-type-k {kv_cache} --cache-type-v {kv_cache})"
        )
    if n > 1 and g.nvlink_capable and not g.nvlink:
        notes.append(
            f"no NVLink bridge assumed: the {g.id} cards talk over PCIe (pass nvlink=true / "
            "--nvlink if they are bridged)"
        )
    if wl.gen > 0 and runnable:
        issue = issue_bytes_s(m, g, p, ep)
        dram = _dram_weight_rate(su)
        if issue is not None and issue < dram:
            notes.append(
                f"decode weight streaming is limited by the SMs, not DRAM: {(g.sm_hz or 0) / 1e9:.0f} G "
                f"SM-cycles/s x {p.issue_rate(m.kernel_class):.2g} B = {issue / 1e9:.0f} GB/s, "
                f"below {dram / 1e9:.0f} GB/s from memory ({engine}'s mat-vec kernels)"
            )
    if wl.prompt > 0 and runnable:
        flops_peak = su.flops_peak
        sheet = g.gemm_flops(m.compute_dtype, m.kernel, ep.gemm_accumulate)
        if abs(flops_peak - sheet) > 0.02 * sheet:
            share = sustained_clock_share(g, p)
            causes = ["SMs x boost clock x the whitepaper rate per SM"]
            if ep.mma_sync and g.chip_class in p.mma_sync_flops_per_sm_clock:
                causes.append(f"{engine}'s GEMMs use mma.sync, not wgmma")
            if share < 1.0:
                causes.append(f"{g.tdp or 0:.0f} W holds ~{share:.0%} of the boost clock")
            notes.append(
                f"prompt GEMMs reach {flops_peak / 1e12:.0f} TFLOPS peak, not the datasheet's "
                f"{sheet / 1e12:.0f} ({'; '.join(causes)})"
            )
    if g.power_limit is not None and runnable:
        from rigkit.estimate.speed import decode_clock_share

        notes.append(
            f"power limit {g.power_limit:g} W (board power {g.tdp or 0:g} W): prompt GEMMs hold "
            f"~{sustained_clock_share(g, p):.0%} of the boost clock, decode's SMs "
            f"~{decode_clock_share(g, p):.0%} (decode draws less; its speed falls only when the "
            "SMs can no longer keep up with the memory)"
        )
    if p.source != "packaged":
        notes.append(f"efficiency parameters from profile {p.source}")
    elif runnable and (wl.gen > 0 or wl.prompt > 0):
        notes.append(
            _accuracy(
                g.id,
                en.model_id,
                n,
                pl.offload,
                su.llama_like and ep.flash_attention,
                g.chip_class.endswith("-dc"),
            )
        )
    return tuple(notes)


def estimate(
    model: str,
    quant: str,
    gpu: str,
    gpus: int = 1,
    engine: str = "llama.cpp",
    split: str | None = None,
    prompt: int = 512,
    gen: int = 128,
    batch: int = 1,
    ctx: int | None = None,
    cpu: str | None = None,
    ram_gb: float | None = None,
    profile: str | Path | None = None,
    disk_read_gb_s: float | None = None,
    nvlink: bool | None = None,
    kv_cache: str | None = None,
    flash_attention: bool | None = None,
    power_limit_w: float | None = None,
    nodes: int = 1,
    nic: str | None = None,
    *,
    params: Params | None = None,
) -> Estimate:
    """Estimate memory, speed and load time of ``model`` in ``quant`` on ``gpus`` x ``gpu``.

    ``prompt`` tokens are prefilled, then ``gen`` tokens generated per sequence for ``batch``
    concurrent sequences; ``ctx`` is the context allocated per sequence (default prompt + gen).
    Decode speed is averaged over the generated tokens (context depth prompt .. prompt + gen).
    ``cpu``/``ram_gb`` describe the host for CPU offload; ``profile`` is a calibration profile.
    ``nvlink``: True when NVLink-capable PCIe cards are paired by bridges (default: only SXM
    modules use NVLink), False to take SXM modules over PCIe. ``kv_cache``: the engine's KV cache
    type (llama.cpp ``q8_0``/``q4_0``, vLLM ``fp8``, ...; default F16/BF16). ``flash_attention``:
    llama.cpp's ``-fa`` (no attention-score buffer; implied by a quantised KV cache); default the
    engine's. ``power_limit_w``: each GPU's power limit (``nvidia-smi -pl W``; default the
    board power): prompt GEMMs follow the clock the card holds at that power, decode only once
    the core clock falls below what the memory stream needs (speed.decode_clock_share).
    ``nodes``: machines of ``gpus`` GPUs each, joined by ``nic`` (a catalog NIC id; default
    25GbE over TCP) in a layer split (llama.cpp RPC) or pipeline split (vLLM).
    Raises EstimateError (bad input) or UnknownIdError (an id is not in the catalog).
    """
    if power_limit_w is not None and (
        isinstance(power_limit_w, bool)
        or not isinstance(power_limit_w, int | float)
        or not 0 < power_limit_w < math.inf
    ):
        raise EstimateError(f"power_limit_w must be a number of watts > 0, got {power_limit_w!r}")
    if type(nodes) is not int or nodes < 1:
        raise EstimateError(f"nodes must be an integer >= 1, got {nodes!r}")
    cfg = Config(
        model,
        quant,
        gpu,
        gpus,
        engine,
        split,
        nvlink,
        kv_cache,
        flash_attention,
        power_limit_w,
        nodes,
        nic,
    )
    wl = _workload(cfg, prompt, gen, batch, ctx, cpu, ram_gb, disk_read_gb_s)
    su = _setup(cfg, profile, params)
    if cpu is not None:  # an unknown id is an error even when nothing is offloaded (cached lookup)
        cpu_nums(cpu, su.p.ccd_read_gb_s, su.p.cpu_flops_per_cycle)
    pl = _place(su, wl)
    cap = _capacity(su, wl, pl)
    dec = _decode(su, pl, prompt + gen / 2.0) if pl.runnable and gen > 0 else None
    pre = _prefill(su, pl, prompt) if pl.runnable and prompt > 0 else None
    cold, cached, load_terms = load_times(
        su.p,
        su.g,
        su.m.total_bytes,
        [wi for wi in pl.w if wi > 0],
        parallel_upload=not su.llama_like,
        disk_read_gb_s=disk_read_gb_s,
    )
    return Estimate(
        model=su.m.id,
        quant=su.m.format_id,
        gpu=su.g.id,
        gpus=su.n,
        engine=su.en.id,
        split=su.split if su.n > 1 else "none",
        prompt=prompt,
        gen=gen,
        batch=batch,
        ctx=wl.ctx,
        fits=pl.fits,
        offload=pl.offload,
        runnable=pl.runnable,
        memory_gb_per_gpu=cap.memory_gb,
        vram_gb_per_gpu=su.g.vram / _GB,
        prefill_tokens_per_s=pl.run_batch * prompt / pre.seconds if pre else None,
        decode_tokens_per_s=dec.per_seq if dec else None,
        aggregate_tokens_per_s=dec.aggregate if dec else None,
        ttft_s=pre.seconds if pre else None,
        max_context=cap.max_context,
        max_concurrent_sequences=cap.max_concurrent,
        load_time_s=cold,
        load_time_cached_s=cached,
        bound=dec.bound if dec else "memory-bandwidth",
        prefill_bound=pre.bound if pre else None,
        gpu_layers=pl.gpu_layers,
        cpu_layers=pl.cpu_layers,
        cpu_ram_gb=pl.cpu_ram / _GB,
        memory_terms=cap.memory_terms,
        decode_terms=dec.terms if dec else (),
        prefill_terms=pre.terms if pre else (),
        load_terms=load_terms,
        assumptions=pl.notes + cap.notes + _notes(su, wl, pl),
        params_source=su.p.source,
        cpu_moe_layers=pl.moe.cpu_moe_layers if pl.moe is not None else None,
        power_limit_w=power_limit_w,
        nodes=su.nodes,
    )


@functools.cache
def _calibration_gpus() -> frozenset[str]:
    """The GPUs of the packaged llama.cpp calibration rows (the fit's data)."""
    from rigkit.estimate.fit import packaged_calibration_rows

    return frozenset(r.gpu for r in packaged_calibration_rows())


def _accuracy(
    gpu: str, engine_model: str, n: int, offload: bool, fa: bool = False, dc: bool = False
) -> str:
    """How far the speeds can be trusted, from what the parameters were fitted on."""
    if engine_model != "llama.cpp":
        return (
            "accuracy: this engine's overheads and kernels are priors (no measurements of it are "
            "fitted); treat its speeds as ±25% until calibrated (rigkit calibrate)"
        )
    if offload:
        return "accuracy: the CPU part rests on priors (CPU bandwidth efficiency); ±25%"
    if gpu in _calibration_gpus():
        base = "accuracy: fitted on this GPU's llama.cpp rows (decode ~1%, prompt ~3% on them)"
    elif dc:
        base = (
            "accuracy: a datacenter chip (GA100/GH100 SMs, HBM) unlike the calibration cards: "
            "about ±25%, least sure for quantised formats"
        )
    else:
        base = "accuracy: GPU not in the calibration set: about ±10% decode, ±15% prompt"
    if n > 1:
        base += "; the multi-GPU terms (hops, pipelining, all-reduce) are priors"
    if fa:
        base += "; flash attention (-fa) was not in the fitted runs: its attention terms are priors"
    return base
