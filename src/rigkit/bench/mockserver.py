"""An OpenAI-compatible test server with injected delays and faults (``rigkit bench mock-server``).

It streams ``/v1/completions`` and ``/v1/chat/completions`` with a fixed time to first token and a
fixed gap between tokens, scheduled against absolute times so delays do not accumulate. It can
misbehave on purpose, to check that a client counts failures instead of crashing or hanging:

* ``drop``: closes the connection after ``fault_after`` tokens,
* ``http500``: answers HTTP 500,
* ``http429``: answers HTTP 429 with ``Retry-After``,
* ``stall``: stops sending after ``fault_after`` tokens (for ``stall_s`` seconds),
* ``malformed``: sends a ``data:`` line that is not JSON after ``fault_after`` tokens,
* ``no_usage``: a normal stream without ``usage``, ``timings`` or ``eval_count``.

``fault_rate`` spreads a fault evenly over that fraction of requests (0.25: every 4th).
Token counts are reported the way a real server does (``usage``; llama.cpp ``timings``; Ollama
``eval_count``). ``/metrics`` exposes llama.cpp-style counters, ``/health`` answers ``ok``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiohttp import web

from rigkit.errors import BenchError

Fault = Literal["none", "drop", "http500", "http429", "stall", "malformed", "no_usage"]
UsageStyle = Literal["usage", "timings", "ollama"]
FAULTS: tuple[str, ...] = ("none", "drop", "http500", "http429", "stall", "malformed", "no_usage")
USAGE_STYLES: tuple[str, ...] = ("usage", "timings", "ollama")


@dataclass(frozen=True, slots=True)
class MockConfig:
    """Behaviour of the mock server."""

    ttft_ms: float = 120.0
    itl_ms: float = 15.0
    tokens: int | None = None
    """Tokens per response; None: the request's ``max_tokens`` (16 when absent)."""
    fault: Fault = "none"
    fault_rate: float = 1.0
    fault_after: int = 2
    retry_after_s: int = 1
    stall_s: float = 3600.0
    usage: UsageStyle = "usage"
    token_text: str = " tok"

    def check(self) -> None:
        if self.fault not in FAULTS:
            raise BenchError(f"unknown fault {self.fault!r}", hint="one of " + ", ".join(FAULTS))
        if self.usage not in USAGE_STYLES:
            raise BenchError(f"unknown usage style {self.usage!r}")
        for name, ms in (("ttft_ms", self.ttft_ms), ("itl_ms", self.itl_ms)):
            # NaN passes a `< 0` test and an infinite delay never sends: both hang a client
            if not (math.isfinite(ms) and ms >= 0):
                option = "--" + name.replace("_", "-")
                raise BenchError(f"{option} must be a number of milliseconds, 0 or more, not {ms}")
        for name, count in (
            ("tokens", self.tokens),
            ("fault_after", self.fault_after),
            ("retry_after_s", self.retry_after_s),
        ):
            if count is not None and count < 0:
                raise BenchError(f"--{name.replace('_', '-')} must be 0 or more, not {count}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise BenchError(f"fault rate must be between 0 and 1, not {self.fault_rate}")


class MockServer:
    """The request handlers and their counters (one instance per running server)."""

    def __init__(self, config: MockConfig) -> None:
        config.check()
        self.config = config
        self.requests = 0
        self.tokens_predicted = 0
        self.prompt_tokens = 0
        self.faults = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    def _is_faulty(self, index: int) -> bool:
        c = self.config
        if c.fault == "none" or c.fault_rate <= 0:
            return False
        # Spread evenly: request i is faulty when floor((i+1)*rate) > floor(i*rate).
        return math.floor((index + 1) * c.fault_rate) > math.floor(index * c.fault_rate)

    async def health(self, request: web.Request) -> web.Response:
        del request
        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        del request
        return web.json_response({"object": "list", "data": [{"id": "mock", "object": "model"}]})

    async def metrics(self, request: web.Request) -> web.Response:
        del request
        text = (
            "# TYPE llamacpp:prompt_tokens_total counter\n"
            f"llamacpp:prompt_tokens_total {self.prompt_tokens}\n"
            "# TYPE llamacpp:tokens_predicted_total counter\n"
            f"llamacpp:tokens_predicted_total {self.tokens_predicted}\n"
            "# TYPE llamacpp:requests_total counter\n"
            f"llamacpp:requests_total {self.requests}\n"
        )
        return web.Response(text=text, content_type="text/plain")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, chat=True)

    async def _stream(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        c = self.config
        index = self.requests
        self.requests += 1
        try:
            body: dict[str, Any] = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        faulty = self._is_faulty(index)
        if faulty:
            self.faults += 1
        if faulty and c.fault == "http500":
            return web.json_response({"error": {"message": "injected failure"}}, status=500)
        if faulty and c.fault == "http429":
            return web.json_response(
                {"error": {"message": "too many requests"}},
                status=429,
                headers={"Retry-After": str(c.retry_after_s)},
            )
        if chat:
            msgs = body.get("messages") or []
            text = " ".join(str(m.get("content", "")) for m in msgs if isinstance(m, dict))
        else:
            text = str(body.get("prompt", ""))
        prompt_n = max(1, round(len(text.split()) / 0.75))
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        n = c.tokens if c.tokens is not None else int(max_tokens)
        model = str(body.get("model", "mock"))
        created = int(time.time())
        if chat:
            piece = {"index": 0, "delta": {"content": c.token_text}, "finish_reason": None}
            obj = "chat.completion.chunk"
        else:
            piece = {"index": 0, "text": c.token_text, "finish_reason": None}
            obj = "text_completion"
        token_line = (
            "data: "
            + json.dumps(
                {
                    "id": f"mock-{index}",
                    "object": obj,
                    "created": created,
                    "model": model,
                    "choices": [piece],
                }
            )
            + "\n\n"
        ).encode()

        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        # The client may go away (as it should after a malformed line): nothing to report then.
        with contextlib.suppress(ConnectionResetError):
            await self._send_tokens(
                request, resp, t0, index, n, token_line, faulty, chat, prompt_n, model, created, obj
            )
        return resp

    async def _send_tokens(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        t0: float,
        index: int,
        n: int,
        token_line: bytes,
        faulty: bool,
        chat: bool,
        prompt_n: int,
        model: str,
        created: int,
        obj: str,
    ) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        transport = request.transport
        if transport is None:
            return
        fault_at = c.fault_after if faulty else -1
        ttft, itl = c.ttft_ms / 1000.0, c.itl_ms / 1000.0
        # Token writes are a chain of timer callbacks that write pre-framed HTTP chunks straight
        # to the socket (one pending timer per stream, no coroutine switch per token), so the
        # server keeps time with hundreds of streams. The response is chunked; resp.write()
        # below frames its chunks the same way.
        cut = c.fault in ("drop", "stall") and 0 <= fault_at < n
        sent = fault_at if cut else n
        bad = _chunk(b"data: {not json\n\n") if c.fault == "malformed" else None
        ticker = _Ticker(loop, transport, _chunk(token_line), t0 + ttft, itl, sent, fault_at, bad)
        try:
            await ticker.run()
        finally:
            ticker.cancel()  # the client went away: no writes to a closed socket
        if transport.is_closing():
            return
        if cut:
            delay = t0 + ttft + sent * itl - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.tokens_predicted += sent
            if c.fault == "drop":
                transport.abort()
            else:
                await asyncio.sleep(c.stall_s)
            return
        self.tokens_predicted += sent
        self.prompt_tokens += prompt_n
        elapsed_ms = (loop.time() - t0) * 1000.0
        final: dict[str, Any] = {
            "id": f"mock-{index}",
            "object": obj,
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": "length"}
                if chat
                else {"index": 0, "text": "", "finish_reason": "length"}
            ],
        }
        no_counts = faulty and c.fault == "no_usage"
        if not no_counts and c.usage == "timings":
            final["timings"] = {
                "prompt_n": prompt_n,
                "prompt_ms": c.ttft_ms,
                "predicted_n": sent,
                "predicted_ms": max(elapsed_ms - c.ttft_ms, 0.0),
                "predicted_per_token_ms": c.itl_ms,
            }
        if not no_counts and c.usage == "ollama":
            final["eval_count"] = sent
            final["prompt_eval_count"] = prompt_n
        await resp.write(("data: " + json.dumps(final) + "\n\n").encode())
        if not no_counts and c.usage == "usage":
            usage = {
                "prompt_tokens": prompt_n,
                "completion_tokens": sent,
                "total_tokens": prompt_n + sent,
            }
            tail = {
                "id": f"mock-{index}",
                "object": obj,
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await resp.write(("data: " + json.dumps(tail) + "\n\n").encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()


class _Ticker:
    """Writes ``count`` token chunks at ``first``, ``first + gap``, ... from timer callbacks."""

    __slots__ = (
        "_bad",
        "_done",
        "_fault_at",
        "_first",
        "_gap",
        "_handle",
        "_i",
        "_loop",
        "_n",
        "_token",
        "_transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.BaseTransport,
        token: bytes,
        first: float,
        gap: float,
        count: int,
        fault_at: int,
        bad: bytes | None,
    ) -> None:
        self._loop = loop
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport
        self._token = token
        self._first = first
        self._gap = gap
        self._n = count
        self._fault_at = fault_at
        self._bad = bad
        self._i = 0
        self._handle: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] = loop.create_future()

    async def run(self) -> None:
        if self._n <= 0:
            return
        self._handle = self._loop.call_at(self._first, self._tick)
        await self._done

    def _tick(self) -> None:
        t = self._transport
        if t.is_closing():
            self._done.set_result(None)
            return
        i = self._i
        if i == self._fault_at and self._bad is not None:
            t.write(self._bad)
        t.write(self._token)
        self._i = i = i + 1
        if i < self._n:
            self._handle = self._loop.call_at(self._first + i * self._gap, self._tick)
        else:
            self._done.set_result(None)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def _chunk(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def start(
    config: MockConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str, MockServer]:
    """Start the server in the running event loop; returns (runner, base URL, server)."""
    server = MockServer(config)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    if not addresses:
        raise BenchError("the mock server did not open a socket")
    bound_port = int(addresses[0][1])
    return runner, f"http://{host}:{bound_port}", server


async def serve_forever(config: MockConfig, host: str, port: int) -> None:
    runner, url, _ = await start(config, host, port)
    print(f"listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def die_with_parent() -> None:
    """``preexec_fn`` for a child process: on Linux it gets SIGTERM when its parent dies, so a
    killed test run leaves no server behind."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not glibc: the server is still stopped by the normal clean-up


@contextmanager
def mock_process(config: MockConfig, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Run the mock server in its own process (so it does not share the client's CPU time
    slice in one event loop) and yield its base URL."""
    args = [sys.executable, "-m", "rigkit.bench.mockserver", "--port", "0"]
    for key, value in asdict(config).items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("listening on ") or not line:
                break
        if not line.startswith("listening on "):
            err = proc.stderr.read() if proc.stderr else ""
            raise BenchError(f"the mock server did not start: {err.strip()[-300:]}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rigkit.bench.mockserver", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--ttft-ms", type=float, default=120.0)
    p.add_argument("--itl-ms", type=float, default=15.0)
    p.add_argument("--tokens", type=int, default=None)
    p.add_argument("--fault", choices=FAULTS, default="none")
    p.add_argument("--fault-rate", type=float, default=1.0)
    p.add_argument("--fault-after", type=int, default=2)
    p.add_argument("--retry-after-s", type=int, default=1)
    p.add_argument("--stall-s", type=float, default=3600.0)
    p.add_argument("--usage", choices=USAGE_STYLES, default="usage")
    p.add_argument("--token-text", default=" tok")
    return p


def config_from_args(ns: argparse.Namespace) -> MockConfig:
    return MockConfig(
        ttft_ms=ns.ttft_ms,
        itl_ms=ns.itl_ms,
        tokens=ns.tokens,
        fault=ns.fault,
        fault_rate=ns.fault_rate,
        fault_after=ns.fault_after,
        retry_after_s=ns.retry_after_s,
        stall_s=ns.stall_s,
        usage=ns.usage,
        token_text=ns.token_text,
    )


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    cfg = config_from_args(ns)
    try:
        cfg.check()
        asyncio.run(serve_forever(cfg, ns.host, ns.port))
    except BenchError as err:
        sys.stderr.write(f"mock server: {err}\n")
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
