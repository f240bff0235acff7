"""Hostile clients of the /metrics exporter: garbage, oversized and endless requests, and
connections that never finish. Each gets an error status or is dropped, and the exporter keeps
answering real scrapes."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from rigkit.monitor import exporter as ex
from rigkit.monitor.exporter import ExporterCache, ExporterServer
from rigkit.monitor.sample import GpuSample, Sample


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ExporterServer]:
    monkeypatch.setattr(ex._Handler, "timeout", 1.0)  # 10 s in production
    cache = ExporterCache()
    cache.update(Sample(t=1.0, gpus=(GpuSample(index=0, name="g", temperature_c=40),), wall_time=1))
    s = ExporterServer(cache, "127.0.0.1:0")
    yield s
    s.close()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _scrape_ok(server: ExporterServer) -> None:
    body = urllib.request.urlopen(server.url, timeout=5).read()
    assert b'rigkit_gpu_temperature_celsius{gpu="0",name="g"} 40.0' in body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x00\xff garbage\r\n\r\n", b" 400 "),  # not HTTP
        (b"GET /metrics HTTP/9.9\r\n\r\n", b" 505 "),  # an HTTP version nobody speaks
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b" 414 "),  # request line > 64 KiB
        (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b" 431 "),  # 200 headers
        (b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", b" 431 "),  # a huge one
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", b" 405 "),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", b" 404 "),
    ],
    ids=["garbage", "version", "long line", "many headers", "long header", "delete", "path"],
)
def test_bad_requests_get_an_error_and_the_exporter_keeps_answering(
    server: ExporterServer, request_bytes: bytes, status: bytes
) -> None:
    t0 = time.monotonic()
    answer = _exchange(server.port, request_bytes)
    assert status in answer.split(b"\r\n", 1)[0], answer[:100]
    assert time.monotonic() - t0 < 5
    _scrape_ok(server)


def test_silent_and_half_finished_connections_are_dropped(server: ExporterServer) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(50)]
    for i, s in enumerate(held):
        if i % 2:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
    _scrape_ok(server)  # answered while 50 connections hang
    # each is dropped after the handler's timeout (1 s here): the client reads EOF
    for s in held:
        s.settimeout(5)
        assert s.recv(1024) == b""
        s.close()
    _scrape_ok(server)
