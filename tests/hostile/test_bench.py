"""Hostile input to `rigkit bench serve`: servers that are not HTTP or redirect forever, output
files that already exist, and a prediction without a catalog model id. Each run is the installed
CLI in its own process: exit status 0/1/2, one line for unusable input, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[1] / "fixtures/specs/rules/ok-2x4090.yaml"


def _rigkit(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from rigkit.cli.entry import run; run()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _serve(answer: Callable[[bytes], bytes]) -> Iterator[str]:
    """A TCP server answering each request (read up to the end of its body) with ``answer``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            buf = b""
            try:
                while not stop.is_set():
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    head, sep, body = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v)
                    if len(body) < length:
                        continue
                    buf = body[length:]
                    conn.sendall(answer(head))
            except OSError:
                return

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        srv.close()


@pytest.fixture
def ssh_like() -> Iterator[str]:
    """Answers with an SSH banner: not an HTTP status line."""
    yield from _serve(lambda _: b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


@pytest.fixture
def redirect_loop() -> Iterator[str]:
    """Answers every request with a 307 back to the same path (307 keeps the POST)."""
    yield from _serve(
        lambda _: (
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v1/completions\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
    )


def _bench(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _rigkit(
        "bench", "serve", "--url", url, "--model", "m", "--requests", "2", "--warmup", "0",
        "--gen-tokens", "4", "--quiet", "--json", "-", *extra,
    )  # fmt: skip


def _failures(url: str) -> tuple[dict[str, int], dict[str, str]]:
    """The single run's failure counts and examples; exit 1, no traceback."""
    res = _bench(url)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    (run,) = json.loads(res.stdout)["runs"]
    return run["failures"], run["failure_examples"]


def test_non_http_answer_is_invalid_response(ssh_like: str) -> None:
    failures, examples = _failures(ssh_like)
    # 2 requests, both answered with an SSH banner: a documented reason, not client_error
    assert failures == {"invalid_response": 2}
    assert "not an HTTP response" in examples["invalid_response"]


def test_redirect_loop_is_its_own_reason(redirect_loop: str) -> None:
    failures, examples = _failures(redirect_loop)
    assert failures == {"redirect_loop": 2}
    # aiohttp follows 10 redirects, then gives up
    assert "more than 10 redirects" in examples["redirect_loop"]


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_existing_output_file_needs_force(tmp_path: Path, option: str) -> None:
    target = tmp_path / "old.out"
    target.write_text("last month's results\n")
    # refused before any request: port 9 (discard) need not answer
    res = _rigkit(
        "bench", "serve", "--url", "http://127.0.0.1:9", "--model", "m", option, str(target)
    )
    assert res.returncode == 2, res.stderr
    assert "already exists" in res.stderr and "--force" in res.stderr
    assert "Traceback" not in res.stderr
    assert target.read_text() == "last month's results\n"  # untouched


def test_force_replaces_the_json_file(tmp_path: Path) -> None:
    from rigkit.bench.mockserver import MockConfig, mock_process

    target = tmp_path / "r.json"
    target.write_text("old\n")
    with mock_process(MockConfig(ttft_ms=2, itl_ms=1)) as url:
        res = _rigkit(
            "bench", "serve", "--url", url, "--model", "m", "--requests", "2", "--warmup", "0",
            "--gen-tokens", "4", "--quiet", "--json", str(target), "--force",
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(target.read_text())["runs"][0]["completed"] == 2


def test_prediction_without_model_id_hints_the_option() -> None:
    res = _rigkit(
        "bench", "serve", "--url", "http://127.0.0.1:9", "--model", "my-served-llama",
        "--spec", str(SPEC), "--engine", "llama.cpp", "--quant", "q4_k_m",
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "--model-id" in lines[0] and "my-served-llama" in lines[0]
    # no "did you mean" list of unrelated catalog models
    assert "did you mean" not in lines[0].lower() and "mistral" not in lines[0]
