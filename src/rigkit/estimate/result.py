"""The estimate: a frozen result with a term-by-term breakdown and ``to_dict()`` for the edges."""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _jstr
from typing import Any, NamedTuple

BOUNDS = ("memory-bandwidth", "compute", "interconnect", "cpu-ram")
#: significant figures of every estimated quantity in ``to_dict`` / ``to_json``: the model is good
#: to a few percent on its calibration GPUs and about 10% elsewhere, so more digits would be noise
DIGITS = 3


class Estimate(NamedTuple):
    """What one configuration does. Times in seconds, memory in GB (1e9 bytes), rates in tokens/s.

    ``fits``: the whole model and its KV cache fit in GPU memory. ``offload``: it does not, and the
    engine runs ``cpu_layers`` layers from system RAM instead. ``runnable``: fits, or offload works
    (the CPU part fits in RAM). Speeds are ``None`` when the configuration cannot run or the phase
    has no tokens (``prompt`` 0 or ``gen`` 0). An immutable named tuple: cheap to build in bulk.
    """

    model: str
    quant: str
    gpu: str
    gpus: int
    engine: str
    split: str
    prompt: int
    gen: int
    batch: int
    ctx: int
    fits: bool
    offload: bool
    runnable: bool
    memory_gb_per_gpu: float  # the fullest GPU
    vram_gb_per_gpu: float
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None  # per sequence
    aggregate_tokens_per_s: float | None  # all sequences of the batch
    ttft_s: float | None
    max_context: int
    max_concurrent_sequences: int
    load_time_s: float
    load_time_cached_s: float
    bound: str
    prefill_bound: str | None
    gpu_layers: int | None
    cpu_layers: int | None
    cpu_ram_gb: float  # weights and KV held in system RAM
    memory_terms: tuple[tuple[str, float], ...]  # GB on the fullest GPU
    decode_terms: tuple[tuple[str, float], ...]  # ms per decode step
    prefill_terms: tuple[tuple[str, float], ...]  # ms for the whole prompt (batch included)
    load_terms: tuple[tuple[str, float], ...]  # s
    assumptions: tuple[str, ...]
    params_source: str
    # llama.cpp --n-cpu-moe N: the routed experts of the first N layers stay in system RAM
    cpu_moe_layers: int | None = None
    power_limit_w: float | None = None  # the boards' power limit the speeds are for (None: stock)
    nodes: int = 1  # machines; ``gpus`` counts the GPUs of all of them

    def to_dict(self) -> dict[str, Any]:
        """The result for the edges (JSON, reports); estimated quantities at :data:`DIGITS`
        significant figures. The attributes keep full precision for arithmetic."""
        return {
            "model": self.model,
            "quant": self.quant,
            "gpu": self.gpu,
            "gpus": self.gpus,
            "engine": self.engine,
            "split": self.split,
            "prompt": self.prompt,
            "gen": self.gen,
            "batch": self.batch,
            "ctx": self.ctx,
            "fits": self.fits,
            "offload": self.offload,
            "runnable": self.runnable,
            "memory_gb_per_gpu": sig(self.memory_gb_per_gpu),
            "vram_gb_per_gpu": sig(self.vram_gb_per_gpu),
            "prefill_tokens_per_s": sig(self.prefill_tokens_per_s),
            "decode_tokens_per_s": sig(self.decode_tokens_per_s),
            "aggregate_tokens_per_s": sig(self.aggregate_tokens_per_s),
            "ttft_s": sig(self.ttft_s),
            "max_context": self.max_context,
            "max_concurrent_sequences": self.max_concurrent_sequences,
            "load_time_s": sig(self.load_time_s),
            "load_time_cached_s": sig(self.load_time_cached_s),
            "bound": self.bound,
            "prefill_bound": self.prefill_bound,
            "gpu_layers": self.gpu_layers,
            "cpu_layers": self.cpu_layers,
            "cpu_moe_layers": self.cpu_moe_layers,
            "power_limit_w": self.power_limit_w,
            "nodes": self.nodes,
            "cpu_ram_gb": sig(self.cpu_ram_gb),
            "breakdown": {
                "memory_gb": _sig_terms(self.memory_terms),
                "decode_ms_per_step": _sig_terms(self.decode_terms),
                "prefill_ms": _sig_terms(self.prefill_terms),
                "load_s": _sig_terms(self.load_terms),
            },
            "assumptions": list(self.assumptions),
            "params": self.params_source,
        }

    def to_json(self) -> str:
        """``json.dumps(self.to_dict(), separators=(",", ":"))``, built directly (batch mode)."""
        return (
            f'{{"model":{_jstr(self.model)},"quant":{_jstr(self.quant)},"gpu":{_jstr(self.gpu)}'
            f',"gpus":{_jnum(self.gpus)},"engine":{_jstr(self.engine)}'
            f',"split":{_jstr(self.split)},"prompt":{_jnum(self.prompt)}'
            f',"gen":{_jnum(self.gen)},"batch":{_jnum(self.batch)},"ctx":{_jnum(self.ctx)}'
            f',"fits":{_jbool(self.fits)},"offload":{_jbool(self.offload)}'
            f',"runnable":{_jbool(self.runnable)}'
            f',"memory_gb_per_gpu":{_jsig(self.memory_gb_per_gpu)}'
            f',"vram_gb_per_gpu":{_jsig(self.vram_gb_per_gpu)}'
            f',"prefill_tokens_per_s":{_jsig(self.prefill_tokens_per_s)}'
            f',"decode_tokens_per_s":{_jsig(self.decode_tokens_per_s)}'
            f',"aggregate_tokens_per_s":{_jsig(self.aggregate_tokens_per_s)}'
            f',"ttft_s":{_jsig(self.ttft_s)},"max_context":{_jnum(self.max_context)}'
            f',"max_concurrent_sequences":{_jnum(self.max_concurrent_sequences)}'
            f',"load_time_s":{_jsig(self.load_time_s)}'
            f',"load_time_cached_s":{_jsig(self.load_time_cached_s)}'
            f',"bound":{_jstr(self.bound)}'
            f',"prefill_bound":{"null" if self.prefill_bound is None else _jstr(self.prefill_bound)}'
            f',"gpu_layers":{_jnum(self.gpu_layers)},"cpu_layers":{_jnum(self.cpu_layers)}'
            f',"cpu_moe_layers":{_jnum(self.cpu_moe_layers)}'
            f',"power_limit_w":{_jnum(self.power_limit_w)},"nodes":{_jnum(self.nodes)}'
            f',"cpu_ram_gb":{_jsig(self.cpu_ram_gb)}'
            f',"breakdown":{{"memory_gb":{_jterms(self.memory_terms)}'
            f',"decode_ms_per_step":{_jterms(self.decode_terms)}'
            f',"prefill_ms":{_jterms(self.prefill_terms)}'
            f',"load_s":{_jterms(self.load_terms)}}}'
            f',"assumptions":[{",".join(map(_jstr, self.assumptions))}]'
            f',"params":{_jstr(self.params_source)}}}'
        )


_INF = float("inf")


def _jnum(x: float | None) -> str:
    """A number as the json module writes it (``null``, ``Infinity`` and ``NaN`` included)."""
    if x is None:
        return "null"
    if x != x:
        return "NaN"
    if x == _INF:
        return "Infinity"
    if x == -_INF:
        return "-Infinity"
    return repr(x)


_SIG_FMT = f"%.{DIGITS}g"


def _jsig(x: float | None) -> str:
    """A measured-kind number as JSON, at :data:`DIGITS` significant figures (``sig``, inlined:
    batch mode writes ~30 of these per case)."""
    if x is None:
        return "null"
    if x != x or x == _INF or x == -_INF:
        return _jnum(x)
    return repr(float(_SIG_FMT % x)) if x else repr(float(x))


def _sig_terms(terms: tuple[tuple[str, float], ...]) -> dict[str, float | None]:
    return {k: sig(v) for k, v in terms}


def _jbool(x: bool) -> str:
    return "true" if x else "false"


def _jterms(terms: tuple[tuple[str, float], ...]) -> str:
    return "{" + ",".join(f"{_jstr(k)}:{_jsig(v)}" for k, v in terms) + "}"


def fmt_sig(x: float | None, digits: int = DIGITS) -> str:
    """``x`` at ``digits`` significant figures for people, thousands separated: 59.4, 136, 10,200
    ("-" for None)."""
    if x is None:
        return "-"
    v = float(f"{x:.{digits}g}")
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:g}"


#: how each :func:`runs` verdict is coloured in a terminal
RUNS_STYLE = {"fits": "green", "offload": "yellow", "waves": "yellow", "no": "red"}


def runs(fits: bool, offload: bool, runnable: bool) -> str:
    """One word for whether a configuration runs: ``fits`` in GPU memory, ``offload`` (layers on
    the CPU), ``waves`` (a paged KV cache runs the batch a part at a time) or ``no``."""
    if fits:
        return "fits"
    if not runnable:
        return "no"
    return "offload" if offload else "waves"


def sig(x: float | None, digits: int = DIGITS) -> float | None:
    """``x`` rounded to ``digits`` significant figures (what the model can support)."""
    if x is None:
        return None
    if x == 0 or x != x or x in (_INF, -_INF):
        return x
    fmt = _SIG_FMT if digits == DIGITS else f"%.{digits}g"
    return float(fmt % x)
