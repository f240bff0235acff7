"""Serving under load: a step-by-step simulation of an engine's scheduler that predicts what
``rigkit bench serve`` measures (TTFT, ITL, TPOT, E2E percentiles, output tokens/s, requests/s).

Each engine step runs one forward pass over the running sequences: one token for every sequence
that is generating, plus prompt tokens (chunks) of sequences being prefilled, up to
``max_num_batched_tokens`` (vLLM's names; llama.cpp's ``-np`` slots are ``max_num_seqs``). Its
time comes from the estimator's physics, reduced to a :class:`StepCost`::

    step = overhead + sum over micro-batches of max(weights streamed once, tokens x FLOP time)
           + KV bytes read (every cached token of every sequence in the step) / bandwidth
           + attention arithmetic (tokens x depth)

A request's first token appears at the end of the step that finishes its prompt; every later
token at the end of each following step. Requests wait (in arrival order) until a sequence slot
and KV space for prompt + output are free. The workload is the load generator's: a closed loop
of ``concurrency`` clients, or arrivals at ``rate`` per second (gamma gaps, the same generator
as ``bench serve``) capped at ``concurrency`` in flight when given. The per-request timelines go
through :func:`rigkit.bench.metrics.summarize`, so predicted and measured runs have one schema.

While the set of running sequences does not change, the simulation advances many steps at once
(their times form an arithmetic series), so 1,000 requests take milliseconds.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import numpy as np
import yaml

from rigkit.bench.metrics import RequestResult, RunResult, summarize
from rigkit.errors import EstimateError


@dataclass(frozen=True, slots=True)
class SchedulerPolicy:
    """How an engine forms steps (data: ``estimate/data/serving.yaml``)."""

    engine: str
    max_num_seqs: int
    max_num_batched_tokens: int
    ubatch: int
    chunked_prefill: bool
    step_overhead_s: float
    slot_context: bool
    kv_capacity_tokens: int | None = None
    """KV cache size in tokens (all sequences together); None: unlimited."""
    source: str = ""

    def check(self) -> None:
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1 or self.ubatch < 1:
            raise EstimateError(
                f"{self.engine}: max_num_seqs, max_num_batched_tokens and ubatch must be >= 1"
            )
        if not 0 <= self.step_overhead_s < math.inf:
            raise EstimateError(f"{self.engine}: step_overhead_s must be >= 0 seconds")


@functools.cache
def _policies() -> dict[str, SchedulerPolicy]:
    text = resources.files("rigkit.estimate").joinpath("data/serving.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    out: dict[str, SchedulerPolicy] = {}
    for engine, d in data["engines"].items():
        out[engine] = SchedulerPolicy(
            engine=engine,
            max_num_seqs=int(d["max_num_seqs"]),
            max_num_batched_tokens=int(d["max_num_batched_tokens"]),
            ubatch=int(d["ubatch"]),
            chunked_prefill=bool(d["chunked_prefill"]),
            step_overhead_s=float(d["step_overhead_s"]),
            slot_context=bool(d["slot_context"]),
            source=str(d["source"]),
        )
    return out


def policy(engine: str, **overrides: Any) -> SchedulerPolicy:
    """The engine's default scheduler policy with ``overrides`` (field names) applied."""
    pols = _policies()
    if engine not in pols:
        raise EstimateError(
            f"no scheduler policy for engine {engine!r}",
            hint="one of " + ", ".join(sorted(pols)),
        )
    p = replace(pols[engine], **{k: v for k, v in overrides.items() if v is not None})
    p.check()
    return p


@dataclass(frozen=True, slots=True)
class StepCost:
    """Seconds per engine step as a function of what the step holds.

    ``weights_s``: streaming every weight once; ``token_s``: the linear layers' arithmetic for one
    token; ``kv_s``: reading one cached token's K and V (all layers); ``attn_s``: attention
    arithmetic for one token against one cached position (all layers).
    """

    weights_s: float
    token_s: float
    kv_s: float = 0.0
    attn_s: float = 0.0
    fixed_s: float = 0.0
    """Per forward pass (micro-batch): kernel launches and small ops, whatever the tokens."""

    def linear(self, tokens: int, ubatch: int) -> float:
        """Linear layers for ``tokens`` tokens in micro-batches of ``ubatch``."""
        if tokens <= 0:
            return 0.0
        full, last = divmod(tokens, ubatch)
        t = full * (self.fixed_s + max(self.weights_s, ubatch * self.token_s))
        if last:
            t += self.fixed_s + max(self.weights_s, last * self.token_s)
        return t

    @classmethod
    def from_rates(
        cls,
        *,
        weight_bytes: float,
        flops_per_token: float,
        kv_bytes_per_token: float,
        attn_flops_per_position: float,
        bandwidth_bytes_s: float,
        flops_s: float,
    ) -> StepCost:
        """Roofline terms from a device's sustained bandwidth and arithmetic rate."""
        if not bandwidth_bytes_s > 0 or not flops_s > 0:
            raise EstimateError("bandwidth and FLOP rate must be above 0")
        return cls(
            weights_s=weight_bytes / bandwidth_bytes_s,
            token_s=flops_per_token / flops_s,
            kv_s=kv_bytes_per_token / bandwidth_bytes_s,
            attn_s=attn_flops_per_position / flops_s,
        )


def cost_from_estimate(
    model: str, quant: str, gpu: str, *, gpus: int = 1, engine: str = "llama.cpp", **kw: Any
) -> tuple[StepCost, int]:
    """The :class:`StepCost` of a catalog configuration, read from the estimator's own step
    breakdown (:func:`rigkit.estimate.estimate`), and the KV cache size in tokens.

    Weights, fixed and interconnect time come from a one-sequence decode step; the per-token
    arithmetic from the prompt's linear and dequantisation time (512 tokens, compute-bound);
    the per-position KV and attention time from the difference of decode steps at two depths.
    ``kw`` goes to ``estimate`` (``split``, ``profile``, ``kv_cache``, ``flash_attention``...).
    """
    from rigkit.estimate import estimate

    def run(prompt: int) -> dict[str, Any]:
        d: dict[str, Any] = estimate(
            model, quant, gpu, gpus=gpus, engine=engine, prompt=prompt, gen=1, batch=1, **kw
        ).to_dict()
        if not d.get("runnable", True):
            raise EstimateError(f"{model} {quant} does not run on {gpus}x {gpu} with {engine}")
        return d

    near, far = run(512), run(4608)
    step = near["breakdown"]["decode_ms_per_step"]
    step_far = far["breakdown"]["decode_ms_per_step"]
    pre = near["breakdown"]["prefill_ms"]
    ms = 1e-3
    per_pos = 4096.0  # depth difference of the two runs
    cost = StepCost(
        weights_s=(step["weights"] + step.get("cpu_layers", 0.0)) * ms,
        token_s=(pre["linear"] + pre.get("dequant", 0.0)) / 512 * ms,
        kv_s=(step_far["kv_cache"] - step["kv_cache"]) / per_pos * ms,
        attn_s=(step_far["attention"] - step["attention"]) / per_pos * ms,
        fixed_s=(step["fixed_overhead"] + step.get("interconnect", 0.0)) * ms,
    )
    seqs = int(near.get("max_concurrent_sequences") or 0)
    return cost, max(1, seqs) * 513


MAX_TOKENS = 10_000_000
"""Output tokens of one simulated run at most: every token's time is kept (~30 B each)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """What the load generator sends: as ``rigkit bench serve`` options."""

    prompt_tokens: int
    gen_tokens: int
    concurrency: int | None = 1
    rate: float | None = None
    requests: int = 100
    burstiness: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if self.prompt_tokens < 1 or self.gen_tokens < 1:
            raise EstimateError("prompt and output tokens must be at least 1")
        if self.requests < 1:
            raise EstimateError("a simulated run needs at least 1 request")
        if self.rate is None and (self.concurrency is None or self.concurrency < 1):
            raise EstimateError("concurrency must be at least 1 without a request rate")
        if self.rate is not None and not 0 < self.rate < math.inf:
            raise EstimateError(f"request rate must be a number above 0, not {self.rate}")
        if not 0 < self.burstiness < math.inf:
            raise EstimateError(f"burstiness must be above 0, not {self.burstiness}")
        if self.requests * self.gen_tokens > MAX_TOKENS:
            raise EstimateError(
                f"{self.requests:,} requests x {self.gen_tokens:,} output tokens is more than the "
                f"{MAX_TOKENS:,} token times one simulated run keeps",
                hint="fewer --requests or --gen-tokens",
            )


class _Seq:
    __slots__ = ("gen", "need", "prefilled", "prompt", "res")

    def __init__(self, res: RequestResult, prompt: int, gen: int) -> None:
        self.res = res
        self.prompt = prompt
        self.gen = gen
        self.prefilled = 0
        self.need = prompt + gen


def simulate_requests(
    cost: StepCost, pol: SchedulerPolicy, wl: Workload
) -> tuple[list[RequestResult], float]:
    """Every request's timeline (start, token times, end) and the run's wall time in seconds."""
    pol.check()
    wl.check()
    prompt, gen = wl.prompt_tokens, wl.gen_tokens
    if pol.slot_context and pol.kv_capacity_tokens is not None:
        slot = pol.kv_capacity_tokens // pol.max_num_seqs
        if prompt + gen > slot:
            raise EstimateError(
                f"a request needs {prompt + gen} tokens of context but each of "
                f"{pol.max_num_seqs} slots has {slot}"
            )
    elif pol.kv_capacity_tokens is not None and prompt + gen > pol.kv_capacity_tokens:
        raise EstimateError(
            f"a request needs {prompt + gen} tokens of KV cache; the engine holds "
            f"{pol.kv_capacity_tokens}"
        )
    kv_free = pol.kv_capacity_tokens if pol.kv_capacity_tokens is not None else math.inf
    results: list[RequestResult] = []
    waiting: deque[_Seq] = deque()
    running: list[_Seq] = []
    arrivals: list[float] = []  # heap of times at which a request reaches the server
    issued = 0
    in_flight = 0
    blocked = 0  # rate mode with a cap: arrivals held by the client until one finishes
    cap = wl.concurrency if wl.rate is not None else None
    clock = 0.0

    def issue(t: float) -> None:
        nonlocal issued, in_flight
        issued += 1
        in_flight += 1
        r = RequestResult(start=t, prompt_tokens=prompt, output_tokens=gen)
        results.append(r)
        waiting.append(_Seq(r, prompt, gen))

    if wl.rate is None:
        assert wl.concurrency is not None
        for _ in range(min(wl.concurrency, wl.requests)):
            issue(0.0)
    else:
        rng = random.Random(wl.seed)
        t = 0.0
        for _ in range(wl.requests):
            t += rng.gammavariate(wl.burstiness, 1.0 / (wl.rate * wl.burstiness))
            arrivals.append(t)
        heapq.heapify(arrivals)

    def take_arrivals(now: float) -> None:
        nonlocal blocked
        while arrivals and arrivals[0] <= now:
            t = heapq.heappop(arrivals)
            if cap is not None and in_flight >= cap:
                blocked += 1
            else:
                issue(t)

    def finished(s: _Seq, now: float) -> None:
        nonlocal kv_free, in_flight, blocked
        s.res.end = now
        kv_free += s.need
        in_flight -= 1
        if wl.rate is None:
            if issued < wl.requests:
                issue(now)  # the closed-loop client sends its next request at once
        elif blocked:
            blocked -= 1
            issue(now)  # a request held by the client's cap starts now

    while True:
        take_arrivals(clock)
        while waiting and len(running) < pol.max_num_seqs and kv_free >= waiting[0].need:
            s = waiting.popleft()
            kv_free -= s.need
            running.append(s)
        if not running:
            if waiting:  # cannot happen with the checks above; guard against a stuck loop
                raise EstimateError("a request can never be admitted (KV capacity)")
            if not arrivals:
                break
            clock = max(clock, arrivals[0])
            continue
        decoding = [s for s in running if s.prefilled >= s.prompt]
        prefilling = [s for s in running if s.prefilled < s.prompt]
        if not prefilling:
            clock = _fast_forward(cost, pol, running, clock, arrivals, waiting, finished)
            running = [s for s in running if not s.res.end]
            continue
        # one step with prompt work
        budget = pol.max_num_batched_tokens
        chunks: list[tuple[_Seq, int]] = []
        if pol.chunked_prefill:
            budget -= len(decoding)
        else:
            decoding = []  # a prompt step: running sequences wait for it
        for s in prefilling:
            if budget <= 0:
                break
            n = min(s.prompt - s.prefilled, budget)
            if not pol.chunked_prefill and n < s.prompt - s.prefilled and chunks:
                break  # whole prompts only, unless one prompt exceeds the budget alone
            chunks.append((s, n))
            budget -= n
        tokens = len(decoding) + sum(n for _, n in chunks)
        depth = sum(s.prompt + len(s.res.token_times) for s in decoding)
        dt = pol.step_overhead_s + cost.linear(tokens, pol.ubatch)
        dt += cost.kv_s * depth + cost.attn_s * depth
        for s, n in chunks:
            dt += cost.kv_s * (s.prefilled + n) + cost.attn_s * n * (s.prefilled + (n + 1) / 2)
        clock += dt
        for s in decoding:
            _emit(s, clock, finished)
        for s, n in chunks:
            s.prefilled += n
            if s.prefilled >= s.prompt:
                _emit(s, clock, finished)
        running = [s for s in running if not s.res.end]
    wall = max((r.end for r in results), default=0.0)
    return results, wall


def _emit(s: _Seq, now: float, finished: Any) -> None:
    times = s.res.token_times
    times.append(now)
    if len(times) >= s.gen:
        finished(s, now)


def _fast_forward(
    cost: StepCost,
    pol: SchedulerPolicy,
    running: list[_Seq],
    clock: float,
    arrivals: list[float],
    waiting: deque[_Seq],
    finished: Any,
) -> float:
    """Decode-only steps while the running set stays the same: until the first sequence ends,
    or (when a slot is free) until the next arrival could be admitted."""
    b = len(running)
    left = min(s.gen - len(s.res.token_times) for s in running)
    # step j (0-based) reads depth D0 + j x b: an arithmetic series of step times
    d0 = sum(s.prompt + len(s.res.token_times) for s in running)
    per_depth = cost.kv_s + cost.attn_s
    base = pol.step_overhead_s + cost.linear(b, pol.ubatch) + per_depth * d0
    j = np.arange(left, dtype=np.float64)
    ends = clock + np.cumsum(base + per_depth * b * j)
    if len(running) < pol.max_num_seqs and (waiting or arrivals):
        nxt = arrivals[0] if arrivals else clock
        # steps that end before the arrival, then the step during which it arrives
        k = int(np.searchsorted(ends, nxt, side="left")) + 1
        ends = ends[: max(1, min(k, left))]
    times: list[float] = ends.tolist()
    for s in running:
        s.res.token_times.extend(times)
        if len(s.res.token_times) >= s.gen:
            finished(s, times[-1])
    return times[-1]


def simulate(cost: StepCost, pol: SchedulerPolicy, wl: Workload) -> RunResult:
    """One simulated ``bench serve`` run, summarized exactly as a measured one."""
    results, wall = simulate_requests(cost, pol, wl)
    return summarize(
        results,
        issued=len(results),
        duration_s=wall,
        concurrency=wl.concurrency,
        rate=wl.rate,
        burstiness=wl.burstiness if wl.rate is not None else None,
    )


def sweep(
    cost: StepCost,
    pol: SchedulerPolicy,
    *,
    prompt_tokens: int,
    gen_tokens: int,
    concurrencies: tuple[int, ...] = (1,),
    rates: tuple[float, ...] = (),
    requests: int = 100,
    burstiness: float = 1.0,
    seed: int = 0,
) -> list[RunResult]:
    """One simulated run per level, as ``bench serve`` sweeps them: each concurrency (closed
    loop), or each rate (capped by the concurrencies when given with ``rates``)."""
    levels: list[tuple[int | None, float | None]]
    if rates:
        caps: tuple[int | None, ...] = concurrencies or (None,)
        levels = [(c, r) for r in rates for c in caps]
    else:
        levels = [(c, None) for c in concurrencies]
    return [
        simulate(
            cost,
            pol,
            Workload(
                prompt_tokens,
                gen_tokens,
                concurrency=c,
                rate=r,
                requests=requests,
                burstiness=burstiness,
                seed=seed + i,
            ),
        )
        for i, (c, r) in enumerate(levels)
    ]


def fit_step_overhead(
    cost: StepCost, pol: SchedulerPolicy, runs: list[tuple[Workload, float]]
) -> float:
    """The per-step overhead (seconds) that makes the simulated TPOT p50 meet each measured one
    (``runs``: the workload and its measured TPOT p50 in ms); the median over runs.

    TPOT is one step's time in steady state and the overhead adds to every step, so the gap
    between measured and simulated TPOT is the overhead; two rounds settle queueing effects.
    """
    if not runs:
        raise EstimateError("no runs with a TPOT to fit the step overhead to")
    overhead = 0.0
    for _ in range(2):
        trial = replace(pol, step_overhead_s=overhead)
        gaps = sorted(
            tpot_ms / 1000.0 - (simulate(cost, trial, wl).tpot_ms.p50 or 0.0) / 1000.0
            for wl, tpot_ms in runs
        )
        mid = len(gaps) // 2
        gap = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
        overhead = max(0.0, overhead + gap)
    return overhead


def fit_from_serve_json(data: dict[str, Any]) -> tuple[str, float, int] | None:
    """(engine, fitted step overhead in seconds, runs used) from a ``bench serve --json`` result
    whose meta names a catalog configuration (``--spec`` runs do); None when it names none."""
    meta = data.get("meta") or {}
    model = meta.get("model_id") or meta.get("model")
    quant, gpu, engine = meta.get("quant"), meta.get("gpu"), meta.get("engine")
    if not all(isinstance(v, str) and v for v in (model, quant, gpu, engine)):
        return None
    gen = meta.get("gen_tokens")
    if not isinstance(gen, int) or gen < 2:
        return None
    cost, kv = cost_from_estimate(
        str(model), str(quant), str(gpu), gpus=int(meta.get("gpus") or 1), engine=str(engine)
    )
    runs: list[tuple[Workload, float]] = []
    levels = [r.get("concurrency") for r in data.get("runs") or []]
    seqs = max([c for c in levels if isinstance(c, int)] or [1])
    pol = policy(str(engine), max_num_seqs=seqs, kv_capacity_tokens=kv)
    for r in data.get("runs") or []:
        tpot = (r.get("tpot_ms") or {}).get("p50")
        done = r.get("completed")
        if not isinstance(tpot, int | float) or not isinstance(done, int) or done < 1:
            continue
        prompt = max(
            1, round((r.get("input_tokens") or 0) / done) or int(meta.get("prompt_tokens") or 1)
        )
        wl = Workload(
            prompt, gen, concurrency=r.get("concurrency"), rate=r.get("rate"), requests=done
        )
        runs.append((wl, float(tpot)))
    if not runs:
        return None
    return str(engine), fit_step_overhead(cost, pol, runs), len(runs)
