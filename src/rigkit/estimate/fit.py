"""Fit the efficiency parameters to measurements, and score a parameter set against them.

Measurements come from llama-bench (CSV/JSON: the calibration CSV's columns, or llama-bench's own
``n_prompt``/``n_gen``/``avg_ts`` columns) and from ``rigkit bench serve --json`` files. The fit
minimises the mean squared log error of the predicted rates with a small pull towards the starting
values (so parameters the data do not constrain stay where they were), by a pattern search in log
space: pure Python, no SciPy needed, a few seconds for a few hundred rows.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rigkit.errors import EstimateError, RigkitError
from rigkit.estimate.core import estimate
from rigkit.estimate.params import Params
from rigkit.estimate.resolve import gpu_nums, model_nums
from rigkit.inputs import UnreadableInput, read_text_file

METRICS = ("prefill", "decode", "aggregate", "ttft")


@dataclass(frozen=True)
class Measurement:
    """One measured rate: ``value`` is tokens/s (prefill, decode per sequence, aggregate) or s (ttft)."""

    gpu: str
    gpus: int
    model: str
    quant: str
    engine: str
    split: str | None
    prompt: int
    gen: int
    batch: int
    metric: str
    value: float
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _norm_gpu(name: str) -> str:
    """A catalog GPU id for a marketing name: "NVIDIA GeForce RTX 4090 24GB" -> "rtx-4090".

    The memory size is dropped, unless only an id with it is in the catalog ("A100 PCIe 80GB"
    -> "a100-80gb-pcie", "RTX 4060 Ti 16GB" -> "rtx-4060-ti-16gb"); an unknown name stays as
    normalised, and the estimator then names the closest ids.
    """
    s = name.lower().replace("nvidia", "").replace("geforce", "")
    size = re.search(r"\b(\d+)\s*gb\b", s)
    words = re.sub(r"\b\d+\s*gb\b", "", s).split()
    base = "-".join(words)
    if size is None or not words:
        return base
    from rigkit.catalog import load_catalog

    gpus = load_catalog().gpus
    if base in gpus:
        return base
    tag = f"{size.group(1)}gb"
    for k in range(1, len(words) + 1):  # a100-80gb-pcie, rtx-4060-ti-16gb
        sized = "-".join([*words[:k], tag, *words[k:]])
        if sized in gpus:
            return sized
    return base


def _norm_id(name: str) -> str:
    return "-".join(name.strip().lower().split())


def _predict(m: Measurement, params: Params) -> float | None:
    e = estimate(
        m.model,
        m.quant,
        m.gpu,
        gpus=m.gpus,
        engine=m.engine,
        split=m.split,
        prompt=m.prompt,
        gen=m.gen,
        batch=m.batch,
        params=params,
    )
    if m.metric == "prefill":
        return e.prefill_tokens_per_s
    if m.metric == "decode":
        return e.decode_tokens_per_s
    if m.metric == "aggregate":
        return e.aggregate_tokens_per_s
    return e.ttft_s


def predict(rows: Sequence[Measurement], params: Params) -> list[float | None]:
    """The estimator's value for each measurement (None where it cannot run)."""
    return [_predict(r, params) for r in rows]


def ape(rows: Sequence[Measurement], params: Params) -> list[float]:
    """Absolute percentage error of each row (predicted vs measured), in percent."""
    out = []
    for r, y in zip(rows, predict(rows, params), strict=True):
        out.append(math.inf if y is None else abs(y - r.value) / r.value * 100.0)
    return out


#: measured / predicted outside this range: ``rigkit calibrate`` warns (the packaged estimate is
#: usually within +-30%; a factor of 2 means a wrong id, unit or setup rather than efficiency)
WARN_RATIO = (0.5, 2.0)
#: outside this range it refuses without ``--allow-outliers``: fitting efficiency factors to a
#: factor of 5 would bend every other estimate made with the profile
REFUSE_RATIO = (0.2, 5.0)


def ratios(rows: Sequence[Measurement], params: Params) -> list[float | None]:
    """measured / predicted for each row (None where the estimator cannot run it)."""
    return [
        None if y is None or y <= 0 else r.value / y
        for r, y in zip(rows, predict(rows, params), strict=True)
    ]


def outliers(
    rows: Sequence[Measurement], params: Params, bounds: tuple[float, float]
) -> list[tuple[Measurement, float]]:
    """The rows whose measured / predicted ratio lies outside ``bounds`` (low, high)."""
    lo, hi = bounds
    return [
        (r, q)
        for r, q in zip(rows, ratios(rows, params), strict=True)
        if q is not None and not lo <= q <= hi
    ]


def mape(rows: Sequence[Measurement], params: Params, metric: str | None = None) -> float:
    sel = [r for r in rows if metric is None or r.metric == metric]
    if not sel:
        return math.nan
    errs = ape(sel, params)
    return sum(errs) / len(errs)


# --- fitting -------------------------------------------------------------------------------------


def _vector(params: Params, rows: Sequence[Measurement]) -> list[tuple[str, str | None]]:
    """The (name, key) parameters the rows can inform."""
    table = params.bandwidth_efficiency
    # one GPU-independent efficiency, unless the start names the rows' architectures
    archs = sorted({a if a in table else "default" for a in (gpu_nums(r.gpu).arch for r in rows)})
    all_kernels = sorted({model_nums(r.model, r.quant).kernel_class for r in rows})
    kernels = [k for k in all_kernels if k != "dense"]
    # issue limits: for the kernel classes the start has one (none: no limit, nothing to fit)
    issue = any(gpu_nums(r.gpu).sm_hz for r in rows)
    issue_kernels = [k for k in all_kernels if params.issue_rate(k) is not None] if issue else []
    has_prefill = any(r.metric in ("prefill", "ttft") for r in rows)
    has_decode = any(r.metric in ("decode", "aggregate") for r in rows)
    has_gguf = "gguf" in kernels
    multi = any(r.gpus > 1 for r in rows)
    v: list[tuple[str, str | None]] = []
    if has_decode:
        v += [("bandwidth_efficiency", a) for a in archs]
        v += [("quant_decode_efficiency", k) for k in kernels]
        v += [("issue_bytes_per_sm_clock", k) for k in issue_kernels]
        v += [("layer_overhead_us", None), ("attn_decode_fp32_efficiency", None)]
    if has_prefill:
        v += [("prefill_tensor_efficiency", None), ("prefill_attn_efficiency", None)]
        if has_gguf:
            v.append(("dequant_passes", None))
    if multi:  # the hand-over between GPUs of a layer split (through host memory, no P2P)
        v.append(("hop_latency_us", None))
    return v


def _get(p: Params, name: str, key: str | None) -> float:
    val = getattr(p, name)
    if key is None:
        return float(val)
    if name == "bandwidth_efficiency":
        return p.bw_eff(key)
    if name == "quant_decode_efficiency":
        return p.quant_eff(key)
    if name == "issue_bytes_per_sm_clock":
        return p.issue_rate(key) or math.inf
    return float(val[key])


def _set(p: Params, values: dict[tuple[str, str | None], float]) -> Params:
    upd: dict[str, Any] = {}
    for (name, key), x in values.items():
        if key is None:
            upd[name] = x
        else:
            d = dict(upd.get(name) or getattr(p, name))
            d[key] = x
            upd[name] = d
    return replace(p, **upd)


#: parameters that are fractions of a peak figure cannot exceed 1
_FRACTIONS = {
    "bandwidth_efficiency",
    "attn_decode_fp32_efficiency",
    "prefill_tensor_efficiency",
    "prefill_attn_efficiency",
}


def fit(
    rows: Sequence[Measurement],
    start: Params,
    *,
    ridge: float = 1e-3,
    tol: float = 1e-4,
    max_sweeps: int = 400,
    robust: float | None = 0.1,
) -> tuple[Params, dict[str, Any]]:
    """Fit the parameters the rows inform; returns (params, record of the fit).

    The loss per row is the pseudo-Huber function of the log error with scale ``robust`` (0.1:
    about 10%): quadratic for small errors, linear for large ones, so a few rows the model cannot
    explain (a run whose settings differ from the rest) do not drag every parameter towards
    them. ``robust=None`` gives the plain mean squared log error.
    """
    if not rows:
        raise EstimateError("no measurements to fit")
    names = _vector(start, rows)
    x0 = [math.log(_get(start, n, k)) for n, k in names]
    x = list(x0)

    def params_of(vec: Sequence[float]) -> Params:
        return _set(start, {nk: math.exp(v) for nk, v in zip(names, vec, strict=True)})

    def loss(vec: Sequence[float]) -> float:
        for (n, _), v in zip(names, vec, strict=True):
            if n in _FRACTIONS and v > 0.0:
                return math.inf
        p = params_of(vec)
        s = 0.0
        for r, y in zip(rows, predict(rows, p), strict=True):
            if y is None or y <= 0:
                return math.inf
            e = math.log(y / r.value)
            if robust is None:
                s += e * e
            else:
                s += 2.0 * robust * robust * (math.sqrt(1.0 + (e / robust) ** 2) - 1.0)
        s /= len(rows)
        return s + ridge * sum((a - b) ** 2 for a, b in zip(vec, x0, strict=True))

    best = loss(x)
    if math.isinf(best):
        raise EstimateError(
            "some measured configurations cannot run in the model (do not fit in memory?)"
        )
    step = 0.5
    sweeps = 0
    while step > tol and sweeps < max_sweeps:
        sweeps += 1
        improved = False
        for i in range(len(x)):
            for d in (step, -step):
                trial = list(x)
                trial[i] += d
                f = loss(trial)
                if f < best:
                    best, x, improved = f, trial, True
                    break
        if not improved:
            step /= 2.0
    fitted = params_of(x)
    # architectures without a value use the geometric mean of those with one
    archs = [k for k in fitted.bandwidth_efficiency if k != "default"]
    if archs:
        bw = dict(fitted.bandwidth_efficiency)
        bw["default"] = math.exp(sum(math.log(bw[a]) for a in archs) / len(archs))
        fitted = replace(fitted, bandwidth_efficiency=bw)
    record = {
        "rows": len(rows),
        "loss": best,
        "sweeps": sweeps,
        "parameters": [f"{n}[{k}]" if k else n for n, k in names],
        "mape_decode_pct": mape(rows, fitted, "decode"),
        "mape_prefill_pct": mape(rows, fitted, "prefill"),
    }
    return fitted, record


# --- reading measurements ------------------------------------------------------------------------


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return default


def rows_from_records(
    records: Iterable[dict[str, Any]], defaults: dict[str, Any], label: str
) -> list[Measurement]:
    """Rows from llama-bench records (calibration-CSV columns or llama-bench's own)."""
    out: list[Measurement] = []
    for i, rec in enumerate(records):
        where = f"{label}: row {i + 1}"

        def field(*keys: str, rec: dict[str, Any] = rec) -> Any:
            for k in keys:
                if rec.get(k) not in (None, ""):
                    return rec[k]
            return None

        # a row's own GPU name (a marketing name such as "RTX 4090 24GB") is normalised to an id;
        # --gpu, for rows that lack one, is an id already and comes before llama-bench's gpu_info
        gpu = field("gpu")
        if gpu is not None:
            gpu = _norm_gpu(str(gpu))
        elif defaults.get("gpu") is not None:
            gpu = defaults["gpu"]
        elif field("gpu_info"):
            gpu = _norm_gpu(str(field("gpu_info")).split("/")[0].split(",")[0])
        model = defaults.get("model") or field("model")
        quant = defaults.get("quant") or field("quant")
        if gpu is None or model is None or quant is None:
            raise EstimateError(f"{where}: needs gpu, model and quant (give --gpu/--model/--quant)")
        metric = field("metric")
        value = field("tokens_per_s", "avg_ts")
        if value is None:
            raise EstimateError(f"{where}: no tokens_per_s / avg_ts value")
        if metric is not None:
            m = re.fullmatch(r"(pp|tg)(\d+)", str(metric))
            if m is None:
                raise EstimateError(f"{where}: metric {metric!r} is not ppN or tgN")
            prompt, gen = (int(m.group(2)), 0) if m.group(1) == "pp" else (0, int(m.group(2)))
        else:
            prompt, gen = _int(field("n_prompt")), _int(field("n_gen"))
        if prompt and gen:
            continue  # llama-bench -pg rows mix both phases: not used
        if not prompt and not gen:
            raise EstimateError(f"{where}: neither a prompt (pp) nor a generation (tg) row")
        out.append(
            Measurement(
                gpu=str(gpu),
                gpus=_int(field("n_gpus") or defaults.get("gpus"), 1) or 1,
                model=_norm_id(str(model)),
                quant=_norm_id(str(quant)),
                engine=str(defaults.get("engine") or "llama.cpp"),
                split=defaults.get("split"),
                prompt=prompt,
                gen=gen,
                batch=1,
                metric="prefill" if prompt else "decode",
                value=float(value),
                label=f"{label}:{i + 1}",
            )
        )
    return out


def rows_from_serve(
    data: dict[str, Any], defaults: dict[str, Any], label: str
) -> list[Measurement]:
    """Rows from a ``rigkit bench serve --json`` result: aggregate and per-sequence decode, TTFT."""
    meta = dict(data.get("meta") or {})
    meta.update({k: v for k, v in defaults.items() if v is not None})
    for k in ("model", "quant", "gpu"):
        if not meta.get(k):
            raise EstimateError(f"{label}: meta.{k} is missing (give --{k})")
    out: list[Measurement] = []
    prompt = _int(meta.get("prompt_tokens"), 0)
    gen = _int(meta.get("gen_tokens"), 0)
    if prompt <= 0 or gen <= 0:
        raise EstimateError(f"{label}: meta needs prompt_tokens and gen_tokens")
    split = meta.get("split")
    base = Measurement(
        gpu=str(meta["gpu"]),
        gpus=_int(meta.get("gpus"), 1) or 1,
        model=str(meta.get("model_id") or meta["model"]),
        quant=str(meta["quant"]),
        engine=str(meta.get("engine") or "llama.cpp"),
        split=str(split) if split else None,
        prompt=prompt,
        gen=gen,
        batch=1,
        metric="decode",
        value=1.0,
    )
    for j, run in enumerate(data.get("runs") or []):
        conc = _int(run.get("concurrency"), 1) or 1
        tps = run.get("output_tokens_per_s")
        if isinstance(tps, int | float) and tps > 0:
            out.append(
                replace(
                    base,
                    batch=conc,
                    metric="aggregate",
                    value=float(tps),
                    label=f"{label}:run{j}",
                )
            )
        tpot = (
            (run.get("tpot_ms") or {}).get("p50") if isinstance(run.get("tpot_ms"), dict) else None
        )
        if isinstance(tpot, int | float) and tpot > 0:
            out.append(
                replace(
                    base,
                    batch=conc,
                    metric="decode",
                    value=1000.0 / tpot,
                    label=f"{label}:run{j}",
                )
            )
    if not out:
        raise EstimateError(f"{label}: no runs with output_tokens_per_s or tpot_ms")
    return out


#: largest measurements file read (a llama-bench sweep or a bench serve --json file is KBs to MBs)
MAX_MEASUREMENT_BYTES = 256 * 1024 * 1024


def read_measurements(
    path: str | Path, defaults: dict[str, Any] | None = None
) -> list[Measurement]:
    """Measurements from a llama-bench CSV/JSON/JSONL file or a ``bench serve --json`` file."""
    d = dict(defaults or {})
    p = Path(path)
    try:
        text = read_text_file(p, limit=MAX_MEASUREMENT_BYTES)
    except UnreadableInput as e:  # missing, a directory or device, too big, not UTF-8 text
        raise EstimateError(f"cannot read {e}") from None
    label = p.name
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as e:
                raise EstimateError(f"{p}: not JSON or JSON Lines: {e}") from None
        if isinstance(data, dict) and "runs" in data:
            return rows_from_serve(data, d, label)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise EstimateError(f"{p}: expected a list of llama-bench records")
        return rows_from_records(data, d, label)
    reader = csv.DictReader(text.splitlines())
    return rows_from_records(list(reader), d, label)


def check_rows(rows: Sequence[Measurement], params: Params) -> list[str]:
    """Problems that stop rows from being used (unknown ids, configurations that cannot run)."""
    problems = []
    for r in rows:
        try:
            y = _predict(r, params)
        except RigkitError as e:
            problems.append(f"{r.label}: {e}")
            continue
        if y is None:
            problems.append(f"{r.label}: the configuration does not run in the model")
    return problems


def group_by(
    rows: Sequence[Measurement], key: Callable[[Measurement], str]
) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


#: the packaged llama.cpp calibration files (copies of the shared calibration set; each row's
#: source_file column names the notebook it comes from)
SINGLE_GPU_CSV = "llamacpp-llama3-single-gpu.csv"
MULTI_GPU_CSV = "llamacpp-llama3-multi-gpu.csv"


def packaged_calibration_rows(multi_gpu: bool = False) -> list[Measurement]:
    """The packaged llama.cpp calibration rows: ``data/llamacpp-llama3-single-gpu.csv`` (1x RTX
    4090 / RTX 3090), and with ``multi_gpu`` also ``data/llamacpp-llama3-multi-gpu.csv`` (2, 4, 8x
    RTX 4090 and 2, 4, 6x RTX 3090 in llama.cpp's default layer split)."""
    from importlib import resources

    out: list[Measurement] = []
    for name in (SINGLE_GPU_CSV, MULTI_GPU_CSV) if multi_gpu else (SINGLE_GPU_CSV,):
        text = resources.files("rigkit.estimate").joinpath("data", name).read_text("utf-8")
        defaults = {"split": "layer"} if name == MULTI_GPU_CSV else {}
        out += rows_from_records(list(csv.DictReader(text.splitlines())), defaults, name)
    return out
