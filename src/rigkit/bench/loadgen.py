"""The asyncio load generator: streaming requests to an OpenAI-compatible server.

One :class:`aiohttp.ClientSession` (unlimited connector) serves the whole sweep. Each stream is
read line by line and every ``data:`` event is timestamped with ``time.perf_counter()`` as it
arrives; only data lines are JSON-decoded. Every failure becomes a classified
:class:`~rigkit.bench.metrics.RequestResult`, never an exception:

``http_<status>``, ``connection_refused``, ``connect_timeout``, ``connection_dropped`` (reset,
incomplete body, or a stream that ends before ``[DONE]``/``finish_reason``), ``stalled`` (no
bytes for ``stall_timeout_s``), ``timeout`` (the request took longer than
``request_timeout_s``), ``malformed_sse``, ``server_error`` (an ``error`` object in the stream),
``empty_response`` (finished without any text), ``client_error`` (anything else from aiohttp).

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
from aiohttp.client_proto import ResponseHandler

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


class _Stalled(Exception):
    """No data arrived for ``stall_timeout_s``."""


class _StaleConnection(Exception):
    """The request failed before any response arrived (a pooled connection the server closed)."""


class _PushReader(aiohttp.StreamReader):
    """aiohttp's StreamReader, but body data goes straight to a registered :class:`_Push` from
    the protocol callback (timestamped there), instead of waking the reading task per chunk.
    Same memory layout (no new slots), so an existing reader can switch to it."""

    __slots__ = ()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        push = _PUSH.get(id(self))
        if push is None:
            return super().feed_data(data, size)
        if data:
            push.data(data, time.perf_counter())
        return False

    def feed_eof(self) -> None:
        super().feed_eof()
        push = _PUSH.get(id(self))
        if push is not None:
            push.eof()

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        super().set_exception(exc, *args)
        push = _PUSH.get(id(self))
        if push is not None:
            push.error(exc)


_PUSH: dict[int, _Push] = {}


class _Push:
    """Splits pushed body bytes into lines and feeds ``data:`` lines to a :class:`_Stream`."""

    __slots__ = ("done_at", "eof_fut", "fut", "last", "st", "tail")

    def __init__(self, st: _Stream, loop: asyncio.AbstractEventLoop) -> None:
        self.st = st
        self.tail = b""
        self.done_at = 0.0
        self.last = time.perf_counter()  # when data last arrived
        self.fut: asyncio.Future[None] = loop.create_future()  # the stream is over
        self.eof_fut: asyncio.Future[None] = loop.create_future()  # the body has ended

    def data(self, data: bytes, now: float) -> None:
        self.last = now
        if self.fut.done():
            return
        if self.tail:
            data = self.tail + data
        lines = data.split(b"\n")
        self.tail = lines.pop()
        feed = self.st.feed
        try:
            for line in lines:
                if line.startswith(b"data:") and feed(line, now):
                    self.done_at = now
                    self.fut.set_result(None)
                    return
        except MalformedSSE as err:
            self.fut.set_exception(err)

    def eof(self) -> None:
        if not self.fut.done():
            if self.tail.startswith(b"data:"):
                self.data(b"\n", time.perf_counter())
            if not self.fut.done():
                self.fut.set_result(None)
        if not self.eof_fut.done():
            self.eof_fut.set_result(None)

    def error(self, exc: BaseException) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)
        if not self.eof_fut.done():
            self.eof_fut.set_result(None)


async def _read_pushed(
    content: aiohttp.StreamReader,
    proto: ResponseHandler | None,
    cfg: ClientConfig,
    r: RequestResult,
    st: _Stream,
) -> None:
    """Read the stream with data pushed from the protocol callback (see :class:`_PushReader`)."""
    push = _Push(st, asyncio.get_running_loop())
    key = id(content)
    _PUSH[key] = push
    try:
        content.__class__ = _PushReader
        early = content.read_nowait()  # body bytes that came with the headers
        if early:
            push.data(early, time.perf_counter())
        exc = content.exception()
        if exc is not None:
            push.error(exc)
        elif content.is_eof():
            push.eof()
        # Stall and total time are watched here, at most once per stall period, instead of
        # aiohttp re-arming its read timer on every network read.
        if proto is not None:
            proto.read_timeout = None
        deadline = r.start + cfg.request_timeout_s
        stall = cfg.stall_timeout_s
        while not push.fut.done():
            now = time.perf_counter()
            if now >= deadline:
                raise TimeoutError
            if now - push.last >= stall:
                raise _Stalled
            wait = min(push.last + stall, deadline) - now
            await asyncio.wait((push.fut,), timeout=wait)
        push.fut.result()
        if st.done:
            r.end = push.done_at
            if not push.eof_fut.done():
                # Wait for the (empty) rest so the connection goes back to the pool.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(push.eof_fut), 1.0)
    finally:
        _PUSH.pop(key, None)
        push.fut.cancel()
        if push.fut.done() and not push.fut.cancelled():
            push.fut.exception()  # retrieved: no "exception was never retrieved" warning


async def _read_pulled(content: aiohttp.StreamReader, r: RequestResult, st: _Stream) -> None:
    """Read the stream with ``readany()``, one wake-up per network read."""
    perf = time.perf_counter
    feed = st.feed
    tail = b""
    over = False
    now = perf()
    while not over:
        data = await content.readany()
        now = perf()
        if not data:  # end of the body
            if tail:
                over = feed(tail, now)
            break
        if tail:
            data = tail + data
        lines = data.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"data:") and feed(line, now):
                over = True
                break
    if st.done:
        r.end = now
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
        content = resp.content
        if type(content) is aiohttp.StreamReader:
            conn = resp.connection
            await _read_pushed(content, conn.protocol if conn else None, cfg, r, st)
        else:  # pragma: no cover - another aiohttp reader type: the generic path
            await _read_pulled(content, r, st)
    finally:
        await ctx.__aexit__(None, None, None)


async def send_request(
    session: aiohttp.ClientSession, cfg: ClientConfig, prompt: Prompt, *, body: bytes | None = None
) -> RequestResult:
    """Stream one request and return what happened; failures are classified, not raised.

    The body is read with ``readany()`` (whatever has arrived) and split into lines here: one
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
    except (aiohttp.ServerTimeoutError, _Stalled):
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
