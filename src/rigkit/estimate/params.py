"""Efficiency parameters of the estimator: data, not code.

The packaged ``data/efficiency.yaml`` holds the parameters fitted by ``scripts/fit_estimator.py``
(``fitted:`` and the fit's record ``fit:``); ``data/priors.yaml`` holds physical constants and
engine priors that no measurement in the calibration set constrains (``priors:``, ``engines:``). A local profile written by ``rigkit calibrate`` overlays
its own ``fitted:`` values on the packaged ones.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rigkit.errors import EstimateError
from rigkit.inputs import UnreadableInput, read_text_file
from rigkit.yamlerrors import load_checked, yaml_error_text

#: names of the fitted parameters, in the order the fitter walks them
FITTED_NAMES: tuple[str, ...] = (
    "bandwidth_efficiency",
    "quant_decode_efficiency",
    "issue_bytes_per_sm_clock",
    "layer_overhead_us",
    "attn_decode_fp32_efficiency",
    "prefill_tensor_efficiency",
    "prefill_attn_efficiency",
    "dequant_passes",
    "hop_latency_us",
)


@dataclass(frozen=True)
class EngineParams:
    """How an engine runs the kernels (priors unless a profile fits them)."""

    overhead_scale: float = 1.0  # x layer_overhead_us (CUDA graphs make launches cheaper)
    step_overhead_us: float = 0.0  # per decode step, scheduler / sampling on the host
    gemm_accumulate: str = "f16"  # f16: cuBLAS with FP16 compute (llama.cpp); f32: PyTorch default
    ubatch: int = 512  # tokens per prefill micro-batch
    n_batch: int = 2048  # tokens per pipelined prefill call (llama.cpp -b)
    flash_attention: bool = False  # memory: attention scores are not materialised
    bandwidth_scale: float = 1.0  # x bandwidth_efficiency for this engine's decode kernels
    issue_limited: bool = True  # decode mat-vec kernels limited by SMs x clock (llama.cpp's are)
    mma_sync: bool = False  # GEMMs use mma.sync-class kernels only (no Hopper wgmma): llama.cpp
    # decode attention arithmetic as a fraction of FP32 peak; 0: the fitted (llama.cpp) value
    attn_decode_efficiency: float = 0.0


@dataclass(frozen=True)
class Params:
    """All parameters the physics model uses. Rates are fractions of the maker's peak figures."""

    # fitted
    bandwidth_efficiency: dict[str, float]  # architecture -> fraction of peak DRAM bandwidth
    quant_decode_efficiency: dict[str, float]  # kernel class -> x bandwidth efficiency
    # kernel class -> weight bytes a mat-vec kernel streams per SM per clock cycle at most
    issue_bytes_per_sm_clock: dict[str, float]
    layer_overhead_us: float  # fixed cost per layer per decode step (kernel launches, small ops)
    attn_decode_fp32_efficiency: float  # decode attention arithmetic, fraction of FP32 peak
    prefill_tensor_efficiency: float  # prompt GEMMs, fraction of tensor FLOPS
    prefill_attn_efficiency: float  # prompt attention GEMMs, fraction of tensor FLOPS
    dequant_passes: float  # F16-sized weight passes per prompt micro-batch when dequantising
    # priors (physical constants and engine behaviour with no fitted data)
    issue_smoothness: float = 8.0  # exponent of the smooth minimum of bandwidth and issue rates
    pcie_efficiency: float = 0.8
    hop_latency_us: float = 15.0
    host_allreduce_latency_us: float = 30.0
    p2p_allreduce_latency_us: float = 10.0
    nvlink_allreduce_latency_us: float = 5.0
    row_sync_latency_us: float = 20.0
    cpu_bandwidth_efficiency: float = 0.7
    cpu_flops_per_cycle: float = 32.0
    cpu_compute_efficiency: float = 0.5
    ccd_read_gb_s: float = 62.5
    default_disk_read_gb_s: float = 3.5
    page_cache_read_gb_s: float = 10.0
    init_s: float = 2.0
    power_clock_exponent: float = 3.0  # tensor power ~ clock^k (dynamic C V^2 f, V ~ f)
    node_latency_tcp_us: float = 60.0  # one activation hand-over between machines over TCP
    node_latency_rdma_us: float = 10.0  # the same over RDMA (RoCE, InfiniBand)
    cpu_moe_sync_us: float = 20.0  # one GPU <-> CPU hand-over of a layer's hidden state
    decode_power_share: float = 0.8  # board power drawn by memory-bound decode at boost clock
    memory_power_share: float = 0.35  # of it, memory and static power (not cut by the core clock)
    # chip class -> dense FP16 tensor FLOP per SM per clock (FP16 accumulate), whitepapers
    tensor_flops_per_sm_clock: dict[str, float] = field(default_factory=dict)
    # chip class -> tensor FLOP per SM per clock of mma.sync-class kernels, where below the datasheet
    mma_sync_flops_per_sm_clock: dict[str, float] = field(default_factory=dict)
    # chip class -> catalog id of the card whose TDP holds its boost clock under tensor load
    power_reference_gpu: dict[str, str] = field(default_factory=dict)
    engines: dict[str, EngineParams] = field(default_factory=dict)
    source: str = "packaged"
    fit_info: dict[str, Any] = field(default_factory=dict)

    def bw_eff(self, arch: str) -> float:
        """Achievable fraction of peak bandwidth for a GPU architecture (``default`` if unknown)."""
        table = self.bandwidth_efficiency
        if arch in table:
            return table[arch]
        return table.get("default", 0.8)

    def quant_eff(self, kernel: str) -> float:
        return self.quant_decode_efficiency.get(kernel, 1.0)

    def issue_rate(self, kernel: str) -> float | None:
        """Bytes per SM per clock a mat-vec kernel of this class streams at most (None: no limit)."""
        table = self.issue_bytes_per_sm_clock
        return table.get(kernel, table.get("default"))

    def engine(self, engine_id: str) -> EngineParams:
        return self.engines.get(engine_id) or self.engines.get("default") or EngineParams()

    def with_fitted(self, values: dict[str, Any]) -> Params:
        """A copy with some fitted values replaced (dict values are merged key by key)."""
        upd: dict[str, Any] = {}
        for name, v in values.items():
            if name not in FITTED_NAMES:
                raise EstimateError(f"unknown efficiency parameter {name!r}")
            cur = getattr(self, name)
            if isinstance(cur, dict):
                if not isinstance(v, dict):
                    raise EstimateError(f"efficiency parameter {name!r} needs a mapping")
                merged = dict(cur)
                merged.update({str(k): float(x) for k, x in v.items()})
                upd[name] = merged
            else:
                upd[name] = float(v)
        return replace(self, **upd)

    def fitted_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in FITTED_NAMES:
            v = getattr(self, name)
            out[name] = dict(v) if isinstance(v, dict) else v
        return out


def _num(d: dict[str, Any], key: str, where: str) -> float:
    v = d.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
        raise EstimateError(f"{where}: {key} must be a positive number, got {v!r}")
    return float(v)


def _params_from(data: Any, where: str) -> Params:
    if not isinstance(data, dict) or not isinstance(data.get("fitted"), dict):
        raise EstimateError(f"{where}: needs a top-level mapping 'fitted'")
    fitted: dict[str, Any] = data["fitted"]
    kw: dict[str, Any] = {}
    for name in FITTED_NAMES:
        v = fitted.get(name)
        if isinstance(v, dict):
            kw[name] = {str(k): _num(v, k, f"{where}: fitted.{name}") for k in v}
        else:
            kw[name] = _num(fitted, name, f"{where}: fitted")
    priors = data.get("priors") or {}
    if not isinstance(priors, dict):
        raise EstimateError(f"{where}: priors must be a mapping")
    for k, v in priors.items():
        if isinstance(v, dict):  # {value: x, why: "..."}
            v = v.get("value")
        kw[str(k)] = _num({"v": v}, "v", f"{where}: priors.{k}")
    tensor = data.get("tensor") or {}
    if not isinstance(tensor, dict):
        raise EstimateError(f"{where}: tensor must be a mapping")
    per_sm = tensor.get("tensor_flops_per_sm_clock") or {}
    mma = tensor.get("mma_sync_flops_per_sm_clock") or {}
    ref = tensor.get("power_reference_gpu") or {}
    if not isinstance(mma, dict) or not isinstance(ref, dict) or not isinstance(per_sm, dict):
        raise EstimateError(f"{where}: tensor.* must be mappings")
    kw["mma_sync_flops_per_sm_clock"] = {
        str(k): _num(mma, k, f"{where}: tensor.mma_sync_flops_per_sm_clock")
        for k in mma
        if k != "why"
    }
    kw["tensor_flops_per_sm_clock"] = {
        str(k): _num(per_sm, k, f"{where}: tensor.tensor_flops_per_sm_clock")
        for k in per_sm
        if k != "why"
    }
    kw["power_reference_gpu"] = {str(k): str(v) for k, v in ref.items() if k != "why"}
    engines: dict[str, EngineParams] = {}
    for eid, raw in (data.get("engines") or {}).items():
        if not isinstance(raw, dict):
            raise EstimateError(f"{where}: engines.{eid} must be a mapping")
        known = set(EngineParams.__dataclass_fields__)
        vals = {k: v for k, v in raw.items() if k in known}
        engines[str(eid)] = EngineParams(**vals)
    kw["engines"] = engines
    kw["fit_info"] = dict(data.get("fit") or {})
    try:
        return Params(**kw)
    except TypeError as e:
        raise EstimateError(f"{where}: {e}") from None


@functools.cache
def packaged_params() -> Params:
    """The packaged parameters (``rigkit/estimate/data/efficiency.yaml``), loaded once."""
    from rigkit.catalog.yamlcache import load_yaml  # parsed once per content, like the catalogs

    data_dir = resources.files("rigkit.estimate").joinpath("data")
    fitted = load_yaml(data_dir.joinpath("efficiency.yaml").read_text("utf-8"))
    priors = load_yaml(data_dir.joinpath("priors.yaml").read_text("utf-8"))
    if not isinstance(fitted, dict) or not isinstance(priors, dict):
        raise EstimateError("efficiency.yaml and priors.yaml must be mappings")
    return _params_from({**priors, **fitted}, "efficiency.yaml")


@functools.lru_cache(maxsize=32)
def _profile_cached(path: str, mtime: float) -> Params:
    del mtime  # part of the cache key only
    try:
        text = read_text_file(path)
    except UnreadableInput as e:  # missing, a directory or device, too big, not UTF-8 text
        raise EstimateError(f"cannot read profile {e}") from None
    try:
        data = load_checked(text)
    except yaml.YAMLError as e:
        raise EstimateError(yaml_error_text(f"profile {path}", e)) from None
    if not isinstance(data, dict) or not isinstance(data.get("fitted"), dict):
        raise EstimateError(f"profile {path} needs a top-level mapping 'fitted'")
    base = packaged_params()
    p = base.with_fitted(data["fitted"])
    return replace(p, source=str(path), fit_info=dict(data.get("fit") or {}))


def load_params(profile: str | Path | None = None) -> Params:
    """Packaged parameters, overlaid with a profile's fitted values when ``profile`` is given."""
    if profile is None:
        return packaged_params()
    path = os.fspath(profile)
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        raise EstimateError(f"profile {path} does not exist") from None
    return _profile_cached(path, mtime)


def params_to_yaml(params: Params, fit: dict[str, Any] | None = None) -> str:
    """A profile YAML holding ``params``' fitted values (and the fit's record)."""
    data: dict[str, Any] = {"fitted": params.fitted_dict()}
    if fit:
        data["fit"] = fit
    return yaml.safe_dump(data, sort_keys=False)
