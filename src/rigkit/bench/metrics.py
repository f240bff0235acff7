"""Per-request records and the run summary (vLLM ``bench serve`` / GuideLLM metric definitions).

* TTFT: first token event minus request start.
* ITL: gaps between consecutive token events, pooled over all requests of a run.
* TPOT: ``(latency - TTFT) / (output_tokens - 1)`` per request with at least 2 output tokens.
* E2E: request start to the end of the stream.
* Throughputs divide totals by the run's wall time; goodput counts only requests that meet every
  SLO (``--slo ttft:MS``, ``--slo tpot:MS``, ``--slo e2e:MS``, ``--slo itl:MS`` on the request's
  mean ITL).

Percentiles use linear interpolation between closest ranks (numpy's default), as vLLM does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rigkit.bench.sse import ServerTimings
from rigkit.errors import BenchError

PERCENTILES = (50, 90, 99)
SLO_METRICS = ("ttft", "tpot", "itl", "e2e")


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy ``method='linear'``)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} outside 0..100")
    rank = pct / 100.0 * (len(sorted_values) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True, slots=True)
class Stats:
    """Mean and percentiles of one metric, in milliseconds; ``count`` values went in."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None

    @classmethod
    def of(cls, values_s: Iterable[float]) -> Stats:
        """Summarise values given in seconds, reported in milliseconds."""
        ms = sorted(v * 1000.0 for v in values_s)
        if not ms:
            return cls(0, None, None, None, None)
        return cls(
            count=len(ms),
            mean=math.fsum(ms) / len(ms),
            p50=percentile(ms, 50),
            p90=percentile(ms, 90),
            p99=percentile(ms, 99),
        )

    def to_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99}


@dataclass(slots=True)
class RequestResult:
    """What one request did. Times are ``time.perf_counter()`` seconds."""

    start: float
    end: float = 0.0
    token_times: list[float] = field(default_factory=list)
    """Arrival time of each token event (a chunk with non-empty text)."""
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    token_source: str = "none"
    error: str | None = None
    """Failure class (``http_500``, ``connection_dropped``, ``stalled``, ...); None when it succeeded."""
    message: str = ""
    timings: ServerTimings | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.start if self.token_times else None

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def itls(self) -> list[float]:
        t = self.token_times
        return [t[i] - t[i - 1] for i in range(1, len(t))]

    @property
    def tpot(self) -> float | None:
        """(latency - TTFT) / (output tokens - 1); None without a server token count or < 2 tokens."""
        ttft = self.ttft
        if ttft is None or self.output_tokens is None or self.output_tokens < 2:
            return None
        return (self.latency - ttft) / (self.output_tokens - 1)

    @property
    def mean_itl(self) -> float | None:
        t = self.token_times
        if len(t) < 2:
            return None
        return (t[-1] - t[0]) / (len(t) - 1)


def parse_slos(specs: Iterable[str]) -> dict[str, float]:
    """``["ttft:500", "tpot:50"]`` -> ``{"ttft": 500.0, "tpot": 50.0}`` (milliseconds)."""
    slos: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition(":")
        name = name.strip().lower()
        if not sep or name not in SLO_METRICS:
            raise BenchError(
                f"cannot read SLO {spec!r}",
                hint="write METRIC:MILLISECONDS with METRIC one of " + ", ".join(SLO_METRICS),
            )
        try:
            ms = float(value)
        except ValueError:
            raise BenchError(f"SLO {spec!r}: {value!r} is not a number of milliseconds") from None
        if not 0 < ms < math.inf:
            raise BenchError(f"SLO {spec!r}: the limit must be a number of milliseconds above 0")
        slos[name] = ms
    return slos


def meets_slos(r: RequestResult, slos: Mapping[str, float]) -> bool:
    """True when a successful request is within every SLO (a metric it lacks fails the SLO)."""
    if not r.ok:
        return False
    values = {"ttft": r.ttft, "tpot": r.tpot, "itl": r.mean_itl, "e2e": r.latency}
    for name, limit_ms in slos.items():
        v = values[name]
        if v is None or v * 1000.0 > limit_ms:
            return False
    return True


@dataclass(frozen=True, slots=True)
class ServerSummary:
    """Means of the server's own ``timings`` (llama.cpp) over the successful requests."""

    requests: int
    predicted_per_token_ms: float | None
    """Mean of the server's ``predicted_ms / predicted_n``."""
    tpot_ms: float | None
    """Mean of ``predicted_ms / (predicted_n - 1)``: llama.cpp times generation from the first
    sampled token to the last, so this is the server's side of the client's TPOT."""
    prompt_ms: float | None
    predicted_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "predicted_per_token_ms": self.predicted_per_token_ms,
            "tpot_ms": self.tpot_ms,
            "prompt_ms": self.prompt_ms,
            "predicted_tokens": self.predicted_tokens,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """Summary of one run (one concurrency level or request rate) of a sweep."""

    concurrency: int | None
    rate: float | None
    burstiness: float | None
    requests: int
    completed: int
    failed: int
    cancelled: int
    failures: dict[str, int]
    failure_examples: dict[str, str]
    duration_s: float
    input_tokens: int
    output_tokens: int
    missing_token_counts: int
    ttft_ms: Stats
    itl_ms: Stats
    tpot_ms: Stats
    e2e_ms: Stats
    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    goodput_requests_per_s: float | None
    slos_ms: dict[str, float]
    server: ServerSummary | None = None
    predicted: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "rate": self.rate,
            "burstiness": self.burstiness,
            "requests": self.requests,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "failures": dict(self.failures),
            "failure_examples": dict(self.failure_examples),
            "duration_s": self.duration_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "missing_token_counts": self.missing_token_counts,
            "ttft_ms": self.ttft_ms.to_dict(),
            "itl_ms": self.itl_ms.to_dict(),
            "tpot_ms": self.tpot_ms.to_dict(),
            "e2e_ms": self.e2e_ms.to_dict(),
            "output_tokens_per_s": self.output_tokens_per_s,
            "total_tokens_per_s": self.total_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "slos_ms": dict(self.slos_ms),
            "server": self.server.to_dict() if self.server else None,
            "predicted": self.predicted,
        }

    def with_prediction(self, predicted: dict[str, Any] | None) -> RunResult:
        from dataclasses import replace

        return replace(self, predicted=predicted)


def summarize(
    results: Sequence[RequestResult],
    *,
    issued: int,
    duration_s: float,
    concurrency: int | None,
    rate: float | None = None,
    burstiness: float | None = None,
    slos: Mapping[str, float] | None = None,
) -> RunResult:
    """Aggregate per-request results into a :class:`RunResult`.

    ``issued`` counts every request started; those without a result were cancelled at the run's
    time bound. ``duration_s`` is the run's wall time (the denominator of every rate).
    """
    slos = dict(slos or {})
    ok = [r for r in results if r.ok]
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    for r in results:
        if r.error is not None:
            failures[r.error] = failures.get(r.error, 0) + 1
            examples.setdefault(r.error, r.message)
    counted = [r for r in ok if r.output_tokens is not None]
    out_tokens = sum(r.output_tokens or 0 for r in counted)
    in_tokens = sum(r.prompt_tokens or 0 for r in ok)
    itls: list[float] = []
    for r in ok:
        itls.extend(r.itls)
    ttfts = [t for t in (r.ttft for r in ok) if t is not None]
    tpots = [t for t in (r.tpot for r in ok) if t is not None]
    per_s = (lambda x: x / duration_s) if duration_s > 0 else (lambda x: 0.0)
    goodput = per_s(sum(1 for r in ok if meets_slos(r, slos))) if slos else None
    timed = [r.timings for r in ok if r.timings is not None]
    server = None
    if timed:
        per_tok = [t.predicted_per_token_ms for t in timed if t.predicted_per_token_ms is not None]
        gaps = [t.predicted_ms / (t.predicted_n - 1) for t in timed if t.predicted_n > 1]
        server = ServerSummary(
            requests=len(timed),
            predicted_per_token_ms=math.fsum(per_tok) / len(per_tok) if per_tok else None,
            tpot_ms=math.fsum(gaps) / len(gaps) if gaps else None,
            prompt_ms=math.fsum(t.prompt_ms for t in timed) / len(timed),
            predicted_tokens=sum(t.predicted_n for t in timed),
        )
    return RunResult(
        concurrency=concurrency,
        rate=rate,
        burstiness=burstiness,
        requests=issued,
        completed=len(ok),
        failed=len(results) - len(ok),
        cancelled=max(issued - len(results), 0),
        failures=dict(sorted(failures.items())),
        failure_examples=dict(sorted(examples.items())),
        duration_s=duration_s,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        missing_token_counts=len(ok) - len(counted),
        ttft_ms=Stats.of(ttfts),
        itl_ms=Stats.of(itls),
        tpot_ms=Stats.of(tpots),
        e2e_ms=Stats.of(r.latency for r in ok),
        output_tokens_per_s=per_s(out_tokens),
        total_tokens_per_s=per_s(out_tokens + in_tokens),
        requests_per_s=per_s(len(ok)),
        goodput_requests_per_s=goodput,
        slos_ms=slos,
        server=server,
    )
