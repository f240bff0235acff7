"""``rigkit bench serve``: measure a served model the way vLLM's ``bench serve`` and GuideLLM do.

:func:`run_serve` runs a sweep (several concurrency levels, or request rates with an optional
concurrency cap) against an OpenAI-compatible server and returns a :class:`ServeResult` whose
``to_dict()`` is the documented JSON::

    {"meta": {url, model, endpoint, prompt_tokens, gen_tokens, started, rigkit_version,
              [spec, engine, quant, model_id, gpu, gpus]},
     "runs": [{"concurrency", "rate", "requests", "completed", "failed", "cancelled",
               "failures": {reason: count}, "ttft_ms": {"mean","p50","p90","p99"}, "itl_ms",
               "tpot_ms", "e2e_ms", "output_tokens_per_s", "total_tokens_per_s",
               "requests_per_s", "goodput_requests_per_s", "predicted": {...} | null, ...}]}

With a build spec, engine and quantization, each run also carries rigkit's own estimate for the
same load (batch = concurrency) and the ratio measured / predicted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rigkit.bench.loadgen import ClientConfig, make_session, run_level, send_request
from rigkit.bench.metrics import RequestResult, RunResult, summarize
from rigkit.bench.prompts import Prompt, RandomPrompts, load_dataset
from rigkit.errors import BenchError
from rigkit.report.words import plural


@dataclass(frozen=True, slots=True)
class PredictionSpec:
    """What rigkit's estimator needs to predict the served figures."""

    spec: str
    engine: str
    quant: str
    model_id: str
    max_num_seqs: int | None = None
    """The server's sequences per step (vLLM --max-num-seqs, llama.cpp -np); None: as many as
    the sweep's highest concurrency."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """A whole sweep."""

    client: ClientConfig
    concurrencies: tuple[int, ...] = (1,)
    rates: tuple[float, ...] = ()
    """Requests/s; when given, one run per (rate, concurrency cap)."""
    capped: bool = False
    """With ``rates``: whether ``concurrencies`` are caps (False: no cap)."""
    burstiness: float = 1.0
    requests: int | None = 100
    duration_s: float | None = None
    warmup: int = 1
    prompt_tokens: int = 256
    dataset: Path | None = None
    slos: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    prediction: PredictionSpec | None = None

    def levels(self) -> list[tuple[int | None, float | None]]:
        """(concurrency, rate) of each run, in order."""
        if not self.rates:
            return [(c, None) for c in self.concurrencies]
        caps: Sequence[int | None] = self.concurrencies if self.capped else (None,)
        return [(c, r) for r in self.rates for c in caps]

    def check(self) -> None:
        if any(c < 1 for c in self.concurrencies):
            raise BenchError("every concurrency must be at least 1")
        # an infinite rate would draw gaps from a zero-mean gamma distribution
        if any(not 0 < r < math.inf for r in self.rates):
            raise BenchError("every request rate must be a number above 0")
        if self.requests is None and self.duration_s is None:
            raise BenchError("give --requests or --duration so each run ends")
        if self.requests is not None and self.requests < 1:
            raise BenchError("--requests must be at least 1")
        if self.duration_s is not None and not 0 < self.duration_s < math.inf:
            raise BenchError("--duration must be above 0 seconds")
        if not 0 < self.burstiness < math.inf:
            raise BenchError(f"--burstiness must be above 0, not {self.burstiness}")
        for name, value in (
            ("--request-timeout", self.client.request_timeout_s),
            ("--stall-timeout", self.client.stall_timeout_s),
        ):
            if value is not None and not 0 < value < math.inf:
                raise BenchError(f"{name} must be a number of seconds above 0, not {value}")
        if self.client.gen_tokens < 1:
            raise BenchError("--gen-tokens must be at least 1")
        if self.warmup < 0:
            raise BenchError("--warmup cannot be negative")


@dataclass(frozen=True, slots=True)
class ServeResult:
    """The sweep's results: ``meta`` and one :class:`RunResult` per level."""

    meta: dict[str, Any]
    runs: tuple[RunResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"meta": dict(self.meta), "runs": [r.to_dict() for r in self.runs]}


def _prompt_source(cfg: ServeConfig) -> tuple[Iterator[Prompt], RandomPrompts | None]:
    if cfg.dataset is not None:
        items = load_dataset(cfg.dataset)
        return itertools.cycle(items), None
    rp = RandomPrompts(cfg.prompt_tokens, seed=cfg.seed)
    return iter(rp), rp


async def _warmup(
    session: Any, cfg: ServeConfig, prompts: Iterator[Prompt], rp: RandomPrompts | None
) -> list[RequestResult]:
    """Send the warm-up requests; with random prompts, calibrate words per token from them."""
    if cfg.warmup == 0:
        return []
    width = max(1, min(cfg.warmup, max(cfg.concurrencies)))
    sem = asyncio.Semaphore(width)
    bodies: list[tuple[Prompt, int]] = []

    async def one() -> RequestResult:
        p = next(prompts)
        bodies.append((p, len(p.text.split())))
        async with sem:
            return await send_request(session, cfg.client, p)

    tasks = [asyncio.create_task(one()) for _ in range(cfg.warmup)]
    # the warm-up is bounded by --duration too, so a stalled server cannot hold the run
    _, pending = await asyncio.wait(tasks, timeout=cfg.duration_s)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    results = [t.result() for t in tasks if t.done() and not t.cancelled()]
    if rp is not None and cfg.client.endpoint == "completions":
        words = sum(w for _, w in bodies[: len(results)])
        measured = [r.prompt_tokens for r in results if r.ok and r.prompt_tokens]
        if len(measured) == len(results) and measured:
            rp.calibrate(words, sum(t for t in measured if t is not None))
    return results


async def _run_async(
    cfg: ServeConfig, progress: Callable[[str], None] | None
) -> tuple[list[RunResult], list[RequestResult]]:
    prompts, rp = _prompt_source(cfg)
    runs: list[RunResult] = []
    async with make_session(cfg.client) as session:
        warm = await _warmup(session, cfg, prompts, rp)
        if progress and warm:
            bad = sum(1 for r in warm if not r.ok)
            progress(f"warm-up: {plural(len(warm), 'request')}, {bad} failed")
        for i, (conc, rate) in enumerate(cfg.levels()):
            out = await run_level(
                session,
                cfg.client,
                prompts,
                concurrency=conc,
                rate=rate,
                burstiness=cfg.burstiness,
                num_requests=cfg.requests,
                duration_s=cfg.duration_s,
                seed=cfg.seed + i,
            )
            res = summarize(
                out.results,
                issued=out.issued,
                duration_s=out.wall_s,
                concurrency=conc,
                rate=rate,
                burstiness=cfg.burstiness if rate is not None else None,
                slos=cfg.slos,
            )
            runs.append(res)
            if progress:
                what = f"rate {rate:g}/s" if rate is not None else f"concurrency {conc}"
                progress(
                    f"{what}: {res.completed}/{res.requests} ok, "
                    f"{res.output_tokens_per_s:.1f} output tok/s in {res.duration_s:.1f} s"
                )
    return runs, warm


def run_serve(cfg: ServeConfig, progress: Callable[[str], None] | None = None) -> ServeResult:
    """Run the sweep and attach predictions when asked. Raises BenchError for unusable input."""
    cfg.check()
    meta: dict[str, Any] = {
        "url": cfg.client.url,
        "model": cfg.client.model,
        "endpoint": cfg.client.endpoint,
        "prompt_tokens": cfg.prompt_tokens if cfg.dataset is None else None,
        "gen_tokens": cfg.client.gen_tokens,
        "dataset": str(cfg.dataset) if cfg.dataset else None,
        "burstiness": cfg.burstiness if cfg.rates else None,
        "warmup": cfg.warmup,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rigkit_version": _version(),
    }
    predictor = None
    if cfg.prediction is not None:
        predictor = Predictor(cfg.prediction)  # fails early on a bad spec or id
        meta.update(predictor.meta())
    runs, _ = asyncio.run(_run_async(cfg, progress))
    if predictor is not None:
        runs = [r.with_prediction(predictor.predict(r, cfg)) for r in runs]
    return ServeResult(meta=meta, runs=tuple(runs))


def _version() -> str:
    from rigkit import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# Predicted vs measured


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _ratio(measured: float | None, predicted: float | None) -> float | None:
    if measured is None or predicted is None or predicted <= 0:
        return None
    return measured / predicted


#: the metrics of the results table, predicted and compared one by one: (label, key, stat)
METRICS: tuple[tuple[str, str, str | None], ...] = (
    ("TTFT p50 ms", "ttft_ms", "p50"),
    ("TTFT p99 ms", "ttft_ms", "p99"),
    ("ITL p50 ms", "itl_ms", "p50"),
    ("ITL p99 ms", "itl_ms", "p99"),
    ("TPOT p50 ms", "tpot_ms", "p50"),
    ("E2E p50 ms", "e2e_ms", "p50"),
    ("out tok/s", "output_tokens_per_s", None),
    ("req/s", "requests_per_s", None),
)


def metric(d: dict[str, Any], key: str, stat: str | None) -> float | None:
    """One table metric from a run's ``to_dict()`` (``stat`` picks from a percentile dict)."""
    v = d.get(key)
    if stat is not None:
        v = v.get(stat) if isinstance(v, dict) else None
    return _num(v)


class Predictor:
    """rigkit's serving simulation (:mod:`rigkit.estimate.serving`) of each run's load on the
    build's first GPU model, with the engine's scheduler policy and the run's prompt and output
    lengths, concurrency or rate and number of requests."""

    def __init__(self, spec: PredictionSpec) -> None:
        from rigkit.estimate import serving
        from rigkit.spec import load_build

        self.spec = spec
        self.build = load_build(Path(spec.spec))
        gpus = self.build.gpus
        if not gpus:
            raise BenchError(f"{spec.spec}: the build has no GPUs to predict for")
        self.gpu = str(gpus[0].gpu.id)
        self.gpus = len(gpus)
        # fails early (before the sweep) on an id the catalog lacks or a model that does not run
        self.cost, kv_tokens = serving.cost_from_estimate(
            spec.model_id, spec.quant, self.gpu, gpus=self.gpus, engine=spec.engine
        )
        self.kv_tokens = kv_tokens
        self.max_num_seqs = spec.max_num_seqs

    def meta(self) -> dict[str, Any]:
        return {
            "spec": self.spec.spec,
            "engine": self.spec.engine,
            "quant": self.spec.quant,
            "model_id": self.spec.model_id,
            "gpu": self.gpu,
            "gpus": self.gpus,
        }

    def predict(self, run: RunResult, cfg: ServeConfig) -> dict[str, Any]:
        from rigkit.estimate import serving

        prompt = round(run.input_tokens / run.completed) if run.completed else cfg.prompt_tokens
        # without --max-num-seqs the server is taken to have a slot for every client
        seqs = self.max_num_seqs or max(cfg.concurrencies)
        pol = serving.policy(self.spec.engine, max_num_seqs=seqs, kv_capacity_tokens=self.kv_tokens)
        sim = serving.simulate(
            self.cost,
            pol,
            serving.Workload(
                max(1, prompt),
                cfg.client.gen_tokens,
                concurrency=run.concurrency,
                rate=run.rate,
                requests=max(1, run.requests),
                burstiness=cfg.burstiness,
                seed=cfg.seed,
            ),
        ).to_dict()
        measured = run.to_dict()
        out: dict[str, Any] = {
            k: sim[k] for k in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s")
        }
        out["requests_per_s"] = sim["requests_per_s"]
        out["prompt_tokens"] = prompt
        out["max_num_seqs"] = pol.max_num_seqs
        out["ratio"] = {
            key if stat is None else f"{key}.{stat}": _ratio(
                metric(measured, key, stat), metric(sim, key, stat)
            )
            for _, key, stat in METRICS
        }
        return out


# ---------------------------------------------------------------------------------------------
# Rendering


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def render_table(result: ServeResult) -> Any:
    """A rich table: one row per run."""
    from rich.table import Table

    t = Table(title=f"{result.meta['model']} at {result.meta['url']} ({result.meta['endpoint']})")
    cols = [
        "conc",
        "rate/s",
        "ok/sent",
        "fail",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "ITL p50 ms",
        "ITL p99 ms",
        "TPOT p50 ms",
        "E2E p50 ms",
        "out tok/s",
        "req/s",
        "goodput req/s",
    ]
    for c in cols:
        t.add_column(c, justify="right")
    for r in result.runs:
        t.add_row(
            str(r.concurrency) if r.concurrency else "-",
            _fmt(r.rate, 2) if r.rate is not None else "-",
            f"{r.completed}/{r.requests}",
            str(r.failed + r.cancelled),
            _fmt(r.ttft_ms.p50),
            _fmt(r.ttft_ms.p99),
            _fmt(r.itl_ms.p50, 2),
            _fmt(r.itl_ms.p99, 2),
            _fmt(r.tpot_ms.p50, 2),
            _fmt(r.e2e_ms.p50),
            _fmt(r.output_tokens_per_s),
            _fmt(r.requests_per_s, 2),
            _fmt(r.goodput_requests_per_s, 2),
        )
    return t


def render_predictions(result: ServeResult) -> Any | None:
    """A rich table of predicted vs measured for every metric of the results table (ratio =
    measured / predicted), or None without predictions."""
    if not any(r.predicted for r in result.runs):
        return None
    from rich.table import Table

    t = Table(title="rigkit estimate vs measured (ratio = measured / predicted)")
    for c in ("run", "metric", "predicted", "measured", "ratio"):
        t.add_column(c, justify="right")
    for r in result.runs:
        p = r.predicted or {}
        ratio = p.get("ratio", {})
        measured = r.to_dict()
        what = f"{r.rate:g}/s" if r.rate is not None else f"c={r.concurrency}"
        for label, key, stat in METRICS:
            name = key if stat is None else f"{key}.{stat}"
            t.add_row(
                what,
                label,
                _fmt(metric(p, key, stat), 2),
                _fmt(metric(measured, key, stat), 2),
                _fmt(ratio.get(name), 2),
            )
    return t


def failure_lines(result: ServeResult) -> list[str]:
    """One line per failure reason per run, with an example message."""
    lines: list[str] = []
    for r in result.runs:
        what = f"rate {r.rate:g}/s" if r.rate is not None else f"concurrency {r.concurrency}"
        for reason, n in r.failures.items():
            lines.append(f"{what}: {n} x {reason}: {r.failure_examples.get(reason, '')}")
        if r.cancelled:
            lines.append(f"{what}: {plural(r.cancelled, 'request')} cut at the time bound")
        if not r.completed:
            lines.append(f"{what}: no request completed; nothing was measured")
        if r.missing_token_counts:
            lines.append(
                f"{what}: {plural(r.missing_token_counts, 'request')} had no token counts from the server "
                "(no usage, timings or eval_count); token metrics leave them out"
            )
    return lines


def figure(result: ServeResult) -> Any:
    """TTFT (p50, p99) and TPOT (p50) against output throughput, one panel each, with rigkit's
    predictions (hollow markers, dotted) where the runs carry them.

    Both latency axes start at zero, so run-to-run noise of a few microseconds cannot look like
    a cliff; the legend sits below the panels, off the data, and the layout keeps every label
    inside the figure. The caller closes the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in result.runs if r.completed]
    if not runs:
        raise BenchError("nothing to plot: no run completed a request")
    nan = float("nan")

    def ys(values: Sequence[float | None]) -> list[float]:
        return [nan if v is None else v for v in values]

    x = [r.output_tokens_per_s for r in runs]
    pred = [r.predicted or {} for r in runs]
    has_pred = any(_num(p.get("output_tokens_per_s")) is not None for p in pred)
    px = ys([_num(p.get("output_tokens_per_s")) for p in pred])
    fig, (ax_ttft, ax_tpot) = plt.subplots(1, 2, figsize=(10, 4.8), layout="constrained")
    # (axes, run field, the stats drawn with their line styles)
    panels = (
        (ax_ttft, "ttft_ms", (("p50", "o-"), ("p99", "o--"))),
        (ax_tpot, "tpot_ms", (("p50", "s-"),)),
    )
    for ax, pkey, series in panels:
        name = pkey.split("_")[0].upper()
        ylabel = f"{name} (ms)"
        top = 0.0
        first: list[float] = []
        for stat, style in series:
            y = ys([getattr(getattr(r, pkey), stat) for r in runs])
            first = first or y
            color = "tab:orange" if stat == "p99" else "tab:blue"
            ax.plot(x, y, style, color=color, label=f"{name} {stat} measured")
            top = max([top, *(v for v in y if v == v)])
        if has_pred:
            py = ys([metric(p, pkey, "p50") for p in pred])
            ax.plot(px, py, "D:", color="tab:green", mfc="none", label=f"{name} p50 predicted")
            top = max([top, *(v for v in py if v == v)])
        for r, xi, yi in zip(runs, x, first, strict=True):
            tag = f"c={r.concurrency}" if r.rate is None else f"{r.rate:g}/s"
            ax.annotate(tag, (xi, yi), textcoords="offset points", xytext=(5, -12), fontsize=8)
        # from zero, with room above the highest point for the run labels
        ax.set_ylim(0.0, top * 1.15 if top > 0 else 1.0)
        ax.set_xlim(left=0.0, right=max([*x, *(v for v in px if v == v)]) * 1.12)
        ax.set_xlabel("output throughput (tokens/s)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles = [ln for ax in (ax_ttft, ax_tpot) for ln in ax.get_lines()]
    fig.legend(
        handles,
        [str(h.get_label()) for h in handles],
        loc="outside lower center",
        ncols=min(len(handles), 5),
        fontsize=8,
    )
    fig.suptitle(f"{result.meta['model']}: latency vs throughput")
    return fig


def plot(result: ServeResult, path: Path) -> None:
    """Write :func:`figure` to ``path`` (PNG unless its suffix names another format)."""
    import matplotlib.pyplot as plt

    fig = figure(result)
    try:
        # matplotlib would add ".png" to a name without a suffix
        fig.savefig(path, dpi=120, format=None if Path(path).suffix else "png")
    except OSError as err:
        raise BenchError(f"cannot write plot {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
