"""The asyncio load generator: streaming requests to an OpenAI-compatible server.

One :class:`aiohttp.ClientSession` (unlimited connector) serves the whole sweep. Each stream is
read line by line and every ``data:`` event is timestamped with ``time.perf_counter()`` as it
arrives; only data lines are JSON-decoded. Every failure becomes a classified
:class:`~rigkit.bench.metrics.RequestResult`, never an exception:

``http_<status>``, ``connection_refused``, ``connect_timeout``, ``connection_dropped`` (reset,
incomplete body, or a stream that ends before ``[DONE]``/``finish_reason``), ``stalled`` (no
bytes for ``stall_timeout_s``), ``timeout`` (the request took longer than
``request_timeout_s``), ``malformed_sse``, ``server_error`` (an ``error`` object in the stream),
``empty_response`` (finished without any text), ``invalid_response`` (the answer is not HTTP,
e.g. a bad status line), ``redirect_loop`` (more redirects than aiohttp follows),
``client_error`` (anything else from aiohttp).

A run ends when its request bound is reached or at its time bound, whichever comes first;
requests still in flight at the time bound are cancelled and counted as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import aiohttp

from rigkit.bench.metrics import RequestResult
from rigkit.bench.prompts import Prompt
from rigkit.bench.sse import (
    DONE,
    SKIP,
    MalformedSSE,
    ServerTimings,
    parse_line,
    server_timings,
    token_counts,
)
from rigkit.errors import BenchError

Endpoint = Literal["completions", "chat"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How to talk to the server (the same for every request of a sweep)."""

    url: str
    model: str
    endpoint: Endpoint = "completions"
    gen_tokens: int = 128
    ignore_eos: bool = True
    temperature: float = 0.0
    request_timeout_s: float = 600.0
    stall_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    api_key: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)

    @property
    def request_url(self) -> str:
        """``URL`` may be the server root, ``.../v1`` or the full endpoint URL."""
        base = self.url.rstrip("/")
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        if base.endswith(("/completions", "/chat/completions")):
            return base
        if not base.endswith("/v1"):
            base += "/v1"
        return base + path

    def body(self, prompt: Prompt) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": prompt.max_tokens or self.gen_tokens,
            "temperature": self.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.endpoint == "chat":
            body["messages"] = prompt.chat_messages()
        else:
            body["prompt"] = prompt.text
        body.update(self.extra_body)
        return json.dumps(body).encode()

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h


def make_session(cfg: ClientConfig) -> aiohttp.ClientSession:
    """The one session of a sweep: no connection limit, timeouts per request."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=_KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, timeout=_timeout(cfg))


def _timeout(cfg: ClientConfig) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=cfg.request_timeout_s,
        sock_connect=cfg.connect_timeout_s,
        sock_read=cfg.stall_timeout_s,
    )


class _Stream:
    """Per-request parse state; :meth:`feed` handles one ``data:`` line."""

    __slots__ = ("append", "done", "error", "finished", "message", "ollama", "timings", "usage")

    def __init__(self, times: list[float]) -> None:
        self.append = times.append
        self.usage: dict[str, Any] | None = None
        self.timings: ServerTimings | None = None
        self.ollama: dict[str, Any] | None = None
        self.done = False
        self.finished = False
        self.error: str | None = None
        self.message = ""

    def feed(self, line: bytes, now: float) -> bool:
        """Handle one line; True when the stream is over (``[DONE]`` or an error event)."""
        parsed = parse_line(line)
        if parsed is SKIP:
            return False
        if parsed is DONE:
            self.done = True
            return True
        obj = cast("dict[str, Any]", parsed)
        choices = obj.get("choices")
        if choices:
            c0 = choices[0]
            if c0.get("text") or (
                (d := c0.get("delta"))
                and (d.get("content") or d.get("reasoning_content") or d.get("reasoning"))
            ):
                self.append(now)
            if c0.get("finish_reason"):
                self.finished = True
        elif "error" in obj:
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            self.error, self.message = "server_error", f"error event: {str(msg)[:200]}"
            return True
        u = obj.get("usage")
        if u:
            self.usage = u
        if "timings" in obj:
            self.timings = server_timings(obj) or self.timings
        if "eval_count" in obj:
            self.ollama = obj
        return False


_STALE_RETRIES = 3
"""Each stale pooled connection fails at once and leaves the pool; then a new one is opened."""

_KEEPALIVE_S = 3.0
"""Idle pooled connections are closed after this; below common server keep-alive timeouts
(llama.cpp's HTTP server closes idle connections after 5 s)."""


class _StaleConnection(Exception):
    """The request failed before any response arrived (a pooled connection the server closed)."""


class _Lines:
    """Splits body bytes, as they arrive in reads, into lines for a :class:`_Stream`; lines that
    arrived in one read share its arrival time."""

    __slots__ = ("done_at", "st", "tail")

    def __init__(self, st: _Stream) -> None:
        self.st = st
        self.tail = b""
        self.done_at = 0.0

    def data(self, data: bytes, now: float) -> bool:
        """Feed one read; True when the stream is over. Raises :class:`MalformedSSE`."""
        if self.tail:
            data = self.tail + data
        lines = data.split(b"\n")
        self.tail = lines.pop()
        feed = self.st.feed
        for line in lines:
            if line.startswith(b"data:") and feed(line, now):
                self.done_at = now
                return True
        return False

    def eof(self, now: float) -> None:
        """The body ended: a last ``data:`` line without a newline still counts."""
        if self.tail.startswith(b"data:") and self.st.feed(self.tail, now):
            self.done_at = now
        self.tail = b""


async def _read_stream(content: aiohttp.StreamReader, r: RequestResult, st: _Stream) -> None:
    """Read the body with :meth:`aiohttp.StreamReader.iter_any` (whatever has arrived: one
    wake-up per network read, not per line) and feed its ``data:`` lines to ``st``.

    Stalls and the total time bound are the session's ``ClientTimeout(sock_read=..., total=...)``.
    """
    perf = time.perf_counter
    lines = _Lines(st)
    async for data in content.iter_any():
        if lines.data(data, perf()):
            break
    else:
        lines.eof(perf())
    if st.done:
        r.end = lines.done_at
        if not content.at_eof():
            # Read the (empty) rest so the connection goes back to the pool.
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                await asyncio.wait_for(content.read(), 1.0)


async def _exchange(
    session: aiohttp.ClientSession,
    cfg: ClientConfig,
    payload: bytes,
    r: RequestResult,
    st: _Stream,
) -> None:
    """Send the request and read the stream into ``r``/``st``; aiohttp errors propagate."""
    try:
        ctx = session.post(cfg.request_url, data=payload, headers=cfg.headers())
        resp = await ctx.__aenter__()
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as err:
        if isinstance(err, aiohttp.ClientConnectorError):
            raise
        raise _StaleConnection(str(err)) from err
    try:
        if resp.status != 200:
            r.error = f"http_{resp.status}"
            detail = (await resp.text(errors="replace"))[:200].strip()
            retry = resp.headers.get("Retry-After")
            r.message = f"HTTP {resp.status} {resp.reason or ''}".strip()
            if retry:
                r.message += f" (Retry-After: {retry})"
            if detail:
                r.message += f": {detail}"
            return
        await _read_stream(resp.content, r, st)
    finally:
        await ctx.__aexit__(None, None, None)


async def send_request(
    session: aiohttp.ClientSession, cfg: ClientConfig, prompt: Prompt, *, body: bytes | None = None
) -> RequestResult:
    """Stream one request and return what happened; failures are classified, not raised.

    The body is read with ``iter_any()`` (whatever has arrived) and split into lines here: one
    wake-up per network read instead of one per line, and lines that arrived together share
    their arrival time. A request that fails before any response on a kept-alive connection
    (the server had closed it) is sent again, up to three times.
    """
    payload = body if body is not None else cfg.body(prompt)
    perf = time.perf_counter
    r = RequestResult(start=perf())
    st = _Stream(r.token_times)
    try:
        for attempt in range(_STALE_RETRIES + 1):
            try:
                await _exchange(session, cfg, payload, r, st)
                break
            except _StaleConnection:
                if attempt == _STALE_RETRIES:
                    raise
        if r.error is not None:
            return r
        if st.error is not None:
            r.error, r.message = st.error, st.message
        elif not st.done and not st.finished:
            r.error = "connection_dropped"
            r.message = f"stream ended before [DONE] after {len(r.token_times)} token events"
        elif not r.token_times:
            r.error, r.message = "empty_response", "the stream finished without any generated text"
    except _StaleConnection as err:
        r.error, r.message = "connection_dropped", f"connection closed before a response: {err}"
    except MalformedSSE as err:
        r.error, r.message = "malformed_sse", str(err)
    except aiohttp.ConnectionTimeoutError:
        r.error = "connect_timeout"
        r.message = f"no connection within {cfg.connect_timeout_s:g} s"
    except aiohttp.ServerTimeoutError:  # aiohttp's sock_read timeout
        r.error = "stalled"
        r.message = f"no data for {cfg.stall_timeout_s:g} s after {len(r.token_times)} token events"
    except TimeoutError:
        r.error = "timeout"
        r.message = f"request took longer than {cfg.request_timeout_s:g} s"
    except aiohttp.ClientConnectorError as err:
        r.error, r.message = "connection_refused", str(err)[:200]
    except (
        aiohttp.ClientPayloadError,
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
    ) as err:
        r.error = "connection_dropped"
        r.message = (
            f"{type(err).__name__}: {str(err)[:160]} after {len(r.token_times)} token events"
        )
    except aiohttp.TooManyRedirects as err:
        r.error = "redirect_loop"
        r.message = f"more than {len(err.history)} redirects; last to {err.request_info.real_url}"
    except aiohttp.ClientResponseError as err:
        # the answer was not HTTP (a bad status line, broken headers): not a server to measure
        r.error = "invalid_response"
        r.message = f"not an HTTP response: {' '.join(err.message.split())[:160]}"
    except aiohttp.ClientError as err:
        r.error, r.message = "client_error", f"{type(err).__name__}: {str(err)[:160]}"
    finally:
        if not r.end:
            r.end = perf()
    counts = token_counts(st.usage, st.timings, st.ollama)
    r.prompt_tokens, r.output_tokens, r.token_source = (
        counts.prompt_tokens,
        counts.output_tokens,
        counts.source,
    )
    r.timings = st.timings
    return r


@dataclass(slots=True)
class LevelOutcome:
    """Raw outcome of one run: results of finished requests, how many started, wall time."""

    results: list[RequestResult]
    issued: int
    wall_s: float


async def _finish(tasks: set[asyncio.Task[None]], deadline: float | None) -> None:
    """Wait for ``tasks`` until ``deadline``; cancel whatever is still running then."""
    if not tasks:
        return
    timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


async def run_level(
    session: aiohttp.ClientSession,
    cfg: ClientConfig,
    prompts: Iterator[Prompt],
    *,
    concurrency: int | None,
    rate: float | None = None,
    burstiness: float = 1.0,
    num_requests: int | None = None,
    duration_s: float | None = None,
    seed: int = 0,
    on_result: Callable[[RequestResult], None] | None = None,
) -> LevelOutcome:
    """Run one load level.

    Without ``rate``: ``concurrency`` workers each send the next request as soon as their previous
    one ends (closed loop). With ``rate`` (requests/s): arrivals follow a gamma process with shape
    ``burstiness`` (1.0 = Poisson), capped at ``concurrency`` in flight when given. The run stops
    issuing at ``num_requests`` or ``duration_s`` and is cut at ``duration_s``.
    """
    if num_requests is None and duration_s is None:
        raise BenchError("a run needs a bound: give a number of requests or a duration")
    if rate is None and (concurrency is None or concurrency < 1):
        raise BenchError("concurrency must be at least 1 without a request rate")
    if rate is not None and not rate > 0:
        raise BenchError(f"request rate must be above 0, not {rate}")
    if not burstiness > 0:
        raise BenchError(f"burstiness must be above 0, not {burstiness}")

    results: list[RequestResult] = []
    issued = 0
    start = time.perf_counter()
    deadline = start + duration_s if duration_s is not None else None

    def more() -> bool:
        if num_requests is not None and issued >= num_requests:
            return False
        return deadline is None or time.perf_counter() < deadline

    def record(res: RequestResult) -> None:
        results.append(res)
        if on_result is not None:
            on_result(res)

    tasks: set[asyncio.Task[None]] = set()
    if rate is None:
        assert concurrency is not None

        async def worker() -> None:
            nonlocal issued
            while more():
                issued += 1
                record(await send_request(session, cfg, next(prompts)))

        tasks = {asyncio.create_task(worker()) for _ in range(concurrency)}
        await _finish(tasks, deadline)
    else:
        sem = asyncio.Semaphore(concurrency) if concurrency else None
        rng = random.Random(seed)

        async def one(p: Prompt) -> None:
            if sem is None:
                record(await send_request(session, cfg, p))
                return
            async with sem:
                if deadline is not None and time.perf_counter() >= deadline:
                    return  # never started: counted as cancelled
                record(await send_request(session, cfg, p))

        next_t = start
        while more():
            next_t += rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
            if deadline is not None and next_t >= deadline:
                break
            delay = next_t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            issued += 1
            task = asyncio.create_task(one(next(prompts)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await _finish(set(tasks), deadline)
    return LevelOutcome(results=results, issued=issued, wall_s=time.perf_counter() - start)
