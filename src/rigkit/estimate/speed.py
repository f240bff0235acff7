"""Time per decode step and per prompt on one GPU stage: bytes moved, FLOPs, fixed costs.

A *stage* is the part of the model one GPU runs: ``layers`` transformer layers (fractional layers
are fine: the averages are linear), whether it holds the LM head, and the ``share`` of each layer's
weights and heads it holds (1 for a layer split, 1/N for a tensor or row split).

Decode step time (batch ``B`` sequences at context depth ``d``)::

    weights  = layer bytes read (routed experts: the share B tokens touch) / R
    R        = smoothmin(BW x e_bw x e_quant, SMs x clock x issue bytes per SM-cycle)  (gpu_rates)
    compute  = 2 x active params x B / (tensor FLOPS x e_prefill)      -- roofline: max(weights, compute)
    kv       = B x d x KV bytes per token / (BW x e_bw)
    attn     = B x d x 4 x heads x head_dim per layer / (FP32 FLOPS x e_attn)
               (e_attn: fitted for llama.cpp; an engine prior for flash-decoding kernels)
    overhead = layers x layer_overhead_us (kernel launches and small ops; host-bound, any GPU)

Prompt time (N tokens in micro-batches of U)::

    F        = the tensor rate the engine's GEMMs reach (tensor_flops: SMs x clock x FLOP per
               SM-cycle, capped for mma.sync-only engines and by the board's power limit)
    linear   = per micro-batch max(weights read, U x 2 x params / (F x e_prefill))
    dequant  = micro-batches x F16-sized weight passes x dequant_passes / (BW x e_bw)   (GGUF quants)
    attn     = sum over tokens of depth x (score bytes / (BW x e_bw) + 4 x heads x head_dim /
               (F x e_prefill_attn))                                  -- grows as N^2
"""

from __future__ import annotations

from rigkit.catalog.llm import layer_tokens
from rigkit.estimate.params import EngineParams, Params
from rigkit.estimate.resolve import GpuNums, ModelNums


def issue_bytes_s(m: ModelNums, g: GpuNums, p: Params, ep: EngineParams) -> float | None:
    """Bytes/s the SMs can issue for ``m``'s decode mat-vec kernels (None: no such limit)."""
    k = p.issue_rate(m.kernel_class) if ep.issue_limited else None
    if k is None or not g.sm_hz:
        return None
    return k * g.sm_hz * decode_clock_share(g, p)


def decode_clock_share(g: GpuNums, p: Params) -> float:
    """Share of the boost clock the SMs keep in memory-bound decode under the power limit.

    Decode at boost draws ``decode_power_share`` of the board power, of which
    ``memory_power_share`` (memory, controller, static) does not fall with the core clock; the
    rest goes as clock^``power_clock_exponent``. Under a lower limit W the clock falls until
    memory + core power = W: share = ((W - memory) / (decode - memory))^(1/k). The memory clock
    stays, so decode speed stays until the SMs can no longer issue the loads the DRAM delivers.
    RTX 4090 at 300 W: decode draws 0.8 x 450 = 360 W at boost, memory 0.35 x 450 = 157.5 W:
    ((300 - 157.5) / 202.5)^(1/3) = 0.889 of the boost clock.
    """
    limit = g.power_limit
    if limit is None or g.tdp is None:
        return 1.0
    decode = p.decode_power_share * g.tdp
    if limit >= decode:
        return 1.0
    memory = p.memory_power_share * g.tdp
    core = max(limit - memory, 0.0) / (decode - memory)
    return max(0.2, float(core ** (1.0 / p.power_clock_exponent)))


def gpu_rates(g: GpuNums, p: Params, ep: EngineParams, kernel: str) -> tuple[float, float, float]:
    """(DRAM rate, decode weight-streaming rate in bytes/s, fixed seconds per layer) on ``g``.

    The weight-streaming rate of a decode mat-vec kernel is the smooth minimum of what DRAM
    delivers (peak x e_bw x e_quant) and what the SMs can issue (SMs x clock x bytes per SM-cycle
    for the kernel class): low-clock, high-bandwidth GPUs (A100, H100) are issue-bound. The
    per-layer fixed time (launching ~24 kernels, most of them tiny) is host-bound: the same on
    every GPU.
    """
    bw = g.bw * p.bw_eff(g.arch) * ep.bandwidth_scale
    wbw = bw * p.quant_eff(kernel)
    k = p.issue_rate(kernel) if ep.issue_limited else None
    if k is not None and g.sm_hz:
        q = p.issue_smoothness
        wbw = (wbw**-q + (k * g.sm_hz * decode_clock_share(g, p)) ** -q) ** (-1.0 / q)
    return bw, wbw, p.layer_overhead_us * 1e-6 * ep.overhead_scale


def depth_sum(d0: int, n: int, window: int) -> float:
    """Sum of min(i, window) for i in [d0, d0 + n) (window 0: no window)."""
    if n <= 0:
        return 0.0
    b = d0 + n - 1
    if window <= 0 or b < window:
        return n * d0 + n * (n - 1) / 2.0
    if d0 >= window:
        return float(n * window)
    below = window - d0  # i in [d0, window)
    s = below * d0 + below * (below - 1) / 2.0
    return s + (n - below) * window


def mean_depth(m: ModelNums, d: float) -> float:
    """Context depth averaged over layers (sliding-window layers see at most the window)."""
    if m.n_local_layers == 0 or m.window <= 0 or d <= m.window:
        return d
    return layer_tokens(d, m.n_layers, m.n_local_layers, m.window) / m.n_layers


def decode_step(
    m: ModelNums,
    g: GpuNums,
    p: Params,
    ep: EngineParams,
    flops_peak: float,
    layers: float,
    out: bool,
    batch: int,
    depth: float,
    share: float = 1.0,
    kv_share: float = 1.0,
    rates: tuple[float, float, float] | None = None,
) -> tuple[float, float, float, float, float]:
    """(weights_s, compute_s, kv_s, attn_s, overhead_s) of one decode step on one stage.

    ``rates``: :func:`gpu_rates` for (g, p, ep, the model's kernel class), when already known.
    """
    bw, wbw, fix = rates or gpu_rates(g, p, ep, m.kernel_class)
    frac = m.expert_fraction(batch) if m.n_experts > 1 else 1.0
    wbytes = layers * (m.layer_dense_bytes + m.layer_expert_bytes * frac)
    flops = layers * m.flops_layer
    if out:
        wbytes += m.out_bytes
        flops += m.flops_out
    t_w = wbytes * share / wbw
    t_c = batch * flops * share / (flops_peak * p.prefill_tensor_efficiency)
    dd = mean_depth(m, depth)
    t_kv = batch * layers * m.kv_layer_token * dd * kv_share / bw
    t_attn = (
        batch
        * layers
        * m.attn_ops_layer_pos
        * dd
        * share
        / (g.fp32 * (ep.attn_decode_efficiency or p.attn_decode_fp32_efficiency))
    )
    t_fix = layers * fix
    return t_w, t_c, t_kv, t_attn, t_fix


def prefill_time(
    m: ModelNums,
    g: GpuNums,
    p: Params,
    ep: EngineParams,
    flops_peak: float,
    layers: float,
    out: bool,
    n_tokens: int,
    d0: int = 0,
    share: float = 1.0,
    sequences: int = 1,
    rates: tuple[float, float, float] | None = None,
) -> tuple[float, float, float, float]:
    """(linear_s, dequant_s, attn_s, overhead_s) to process ``sequences`` prompts of ``n_tokens``.

    The linear layers see all ``sequences x n_tokens`` tokens in micro-batches; attention is per
    sequence. Only the last token of a prompt goes through the LM head.
    """
    total = n_tokens * sequences
    if total <= 0:
        return 0.0, 0.0, 0.0, 0.0
    u = max(1, ep.ubatch)
    n_ub = -(-total // u)
    last = total - (n_ub - 1) * u
    bw, _, fix = rates or gpu_rates(g, p, ep, m.kernel_class)
    qbw = bw * p.quant_eff(m.kernel_class)  # GEMM kernels: no mat-vec issue limit
    fe = flops_peak * p.prefill_tensor_efficiency
    lbytes = layers * m.layer_bytes * share  # a full micro-batch touches every expert
    fl = layers * m.flops_layer * share
    t_full = max(lbytes / qbw, u * fl / fe)
    t_last = max(
        layers
        * (m.layer_dense_bytes + m.layer_expert_bytes * m.expert_fraction(last))
        * share
        / qbw,
        last * fl / fe,
    )
    t_lin = (n_ub - 1) * t_full + t_last
    if out:
        t_lin += sequences * m.flops_out / fe + m.out_bytes / qbw
    t_dq = 0.0
    if m.kernel_class == "gguf":
        t_dq = n_ub * layers * m.layer_params * 2.0 * share * p.dequant_passes / bw
    local = m.n_local_layers
    s_glob = depth_sum(d0, n_tokens, 0)
    s = (
        s_glob
        if local == 0
        else ((m.n_layers - local) * s_glob + local * depth_sum(d0, n_tokens, m.window))
        / m.n_layers
    )
    per_pos = 0.0 if ep.flash_attention else m.score_bytes_layer_pos / bw
    per_pos += m.attn_ops_layer_pos / (flops_peak * p.prefill_attn_efficiency)
    t_attn = sequences * layers * s * share * per_pos
    t_fix = n_ub * layers * fix
    return t_lin, t_dq, t_attn, t_fix


def tensor_flops(g: GpuNums, p: Params, ep: EngineParams, datasheet: float) -> float:
    """Tensor FLOP/s an engine's prompt GEMMs can reach on ``g`` (before ``e_prefill``).

    ``datasheet`` is the maker's dense rate for the precision and accumulate mode. It is put on
    the SMs x boost clock footing of the architecture whitepapers, then two physical caps apply:

    * per-SM rate: the FP16 tensor FLOP per SM per clock of the chip class
      (``tensor_flops_per_sm_clock``) x SMs x boost clock replaces the datasheet's FP16 figure
      where a datasheet quotes it at a lower clock (RTX 4000 Ada); other precisions scale with it;
    * kernels: an engine restricted to mma.sync-class instructions (``ep.mma_sync``) reaches at
      most SMs x clock x ``mma_sync_flops_per_sm_clock[chip class]`` (Hopper without wgmma);
    * power: a board whose TDP is below what its SMs draw at boost clock (energy per SM-cycle of
      the class's reference card x SMs x boost) sustains a lower clock, rate x
      (TDP / needed)^(1 / power_clock_exponent).
    """
    rate = datasheet
    if g.sm_hz is None:
        return rate
    per_sm = p.tensor_flops_per_sm_clock.get(g.chip_class)
    fp16 = max(g.f16_acc16, g.f16_acc32)
    if per_sm is not None and fp16 > 0:
        rate *= g.sm_hz * per_sm / fp16
    if ep.mma_sync:
        cap = p.mma_sync_flops_per_sm_clock.get(g.chip_class)
        if cap is not None:
            rate = min(rate, g.sm_hz * cap)
    return rate * sustained_clock_share(g, p)


def sustained_clock_share(g: GpuNums, p: Params) -> float:
    """Share of the boost clock ``g`` holds under tensor load within its power limit (1: all).

    The power at boost clock is SMs x boost x the energy per SM-cycle of the chip class's
    reference card (which holds its boost at its TDP); a class without a reference is taken to
    hold its boost at its own TDP. A limit below that holds (limit / need)^(1/k) of the clock:
    RTX 4090 at 300 W: (300 / 450)^(1/3) = 0.874.
    """
    watts = g.watts
    if watts is None or g.sm_hz is None:
        return 1.0
    need = g.tdp
    ref_id = p.power_reference_gpu.get(g.chip_class)
    ref = _reference_gpu(ref_id) if ref_id is not None else None
    if ref is not None and ref.tdp is not None and ref.sm_hz is not None:
        need = g.sm_hz * ref.tdp / ref.sm_hz  # W at boost with the reference's energy per SM-cycle
    if need is None or watts >= need:
        return 1.0
    return float((watts / need) ** (1.0 / p.power_clock_exponent))


def _reference_gpu(gpu_id: str) -> GpuNums | None:
    from rigkit.errors import RigkitError
    from rigkit.estimate.resolve import gpu_nums

    try:
        return gpu_nums(gpu_id)
    except RigkitError:
        return None
