"""`rigkit bench serve` through the CLI against the mock server in its own process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rigkit.bench.mockserver import MockConfig, mock_process
from rigkit.cli.main import app
from rigkit.errors import BenchError


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with mock_process(MockConfig(ttft_ms=20, itl_ms=2)) as url:
        yield url


@pytest.fixture(scope="module")
def faulty_url() -> Iterator[str]:
    with mock_process(MockConfig(ttft_ms=5, itl_ms=1, fault="http500", fault_rate=0.25)) as url:
        yield url


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["bench", "serve", "--quiet", *args])


def test_json_schema_and_plot(mock_url: str, tmp_path: Path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = _invoke(
        "--url", mock_url, "--model", "m", "--concurrency", "1,4", "--requests", "8",
        "--gen-tokens", "10", "--prompt-tokens", "30", "--slo", "ttft:10000",
        "--json", str(out), "--plot", str(png),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data) == {"meta", "runs"}
    for key in (
        "url",
        "model",
        "endpoint",
        "prompt_tokens",
        "gen_tokens",
        "started",
        "rigkit_version",
    ):
        assert key in data["meta"]
    assert [r["concurrency"] for r in data["runs"]] == [1, 4]
    for r in data["runs"]:
        assert r["rate"] is None
        assert (r["requests"], r["completed"], r["failed"]) == (8, 8, 0)
        for m in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
            assert set(r[m]) == {"mean", "p50", "p90", "p99"}
        assert r["output_tokens"] == 80  # 8 requests x 10 tokens
        # every request meets a 10 s TTFT SLO, so goodput equals the request rate
        assert r["goodput_requests_per_s"] == pytest.approx(r["requests_per_s"])
        assert r["predicted"] is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "TTFT p50" in res.output


def test_failures_exit_1_with_reasons(faulty_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = _invoke(
        "--url", faulty_url, "--model", "m", "--concurrency", "2", "--requests", "8",
        "--gen-tokens", "4", "--warmup", "0", "--json", str(out),
    )  # fmt: skip
    assert res.exit_code == 1
    (run,) = json.loads(out.read_text())["runs"]
    assert run["failures"] == {"http_500": 2}  # fault rate 0.25 of 8 requests
    assert run["completed"] == 6
    assert "2 x http_500" in res.output


def test_rate_mode_json(mock_url: str) -> None:
    res = _invoke(
        "--url", mock_url, "--model", "m", "--rate", "50", "--requests", "5",
        "--gen-tokens", "3", "--warmup", "0", "--json", "-",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    start = res.stdout.index("{")
    data = json.loads(res.stdout[start:])
    (run,) = data["runs"]
    assert (run["rate"], run["concurrency"], run["completed"]) == (50.0, None, 5)
    assert data["meta"]["burstiness"] == 1.0


@pytest.mark.parametrize(
    "args",
    [
        ["--endpoint", "embeddings"],
        ["--concurrency", "1,x"],
        ["--slo", "speed:3"],
        ["--spec", "x.yaml"],  # a prediction needs --engine and --quant too
        ["--requests", "0"],
    ],
)
def test_unusable_input_raises_bench_error(args: list[str]) -> None:
    res = _invoke("--url", "http://127.0.0.1:9", "--model", "m", *args)
    assert isinstance(res.exception, BenchError), res.output


def test_predictions_side_by_side_for_every_metric(
    mock_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rigkit.estimate import serving

    calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def cost(model: str, quant: str, gpu: str, **kw: Any) -> tuple[serving.StepCost, int]:
        calls.append((model, quant, gpu, kw))
        # 10 ms per step whatever the batch; prompts of ~32 tokens cost the same 10 ms
        return serving.StepCost(weights_s=0.010, token_s=0.0), 100_000

    # a real spec with 2x RTX 4090; only the step cost is replaced
    spec = Path(__file__).resolve().parents[2] / "fixtures/specs/rules/ok-2x4090.yaml"
    monkeypatch.setattr(serving, "cost_from_estimate", cost)
    out = tmp_path / "r.json"
    res = _invoke(
        "--url", mock_url, "--model", "served-name", "--concurrency", "4", "--requests", "4",
        "--gen-tokens", "8", "--warmup", "0", "--spec", str(spec), "--engine", "vllm",
        "--quant", "f16", "--model-id", "llama-3.1-8b", "--json", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["meta"]["gpu"] == "rtx-4090" and data["meta"]["gpus"] == 2
    assert calls == [("llama-3.1-8b", "f16", "rtx-4090", {"gpus": 2, "engine": "vllm"})]
    (run,) = data["runs"]
    p = run["predicted"]
    # vLLM policy, step overhead 3 ms: 13 ms per step. 4 requests at once: the prompt step
    # gives the first token at 13 ms, 7 more steps end them at 8 x 13 = 104 ms
    assert p["ttft_ms"]["p50"] == pytest.approx(13.0)
    assert p["itl_ms"]["p99"] == pytest.approx(13.0)
    assert p["tpot_ms"]["p50"] == pytest.approx(13.0)
    assert p["e2e_ms"]["p50"] == pytest.approx(104.0)
    # 32 tokens in 0.104 s
    assert p["output_tokens_per_s"] == pytest.approx(32 / 0.104)
    assert p["ratio"]["ttft_ms.p50"] == pytest.approx(run["ttft_ms"]["p50"] / 13.0)
    assert p["ratio"]["output_tokens_per_s"] == pytest.approx(
        run["output_tokens_per_s"] / (32 / 0.104)
    )
    # every metric of the results table is in the side-by-side table
    assert "estimate vs measured" in res.output
    for label in ("TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "E2E p50 ms", "req/s"):
        assert label in res.output


def test_mock_server_rejects_bad_fault() -> None:
    res = CliRunner().invoke(app, ["bench", "mock-server", "--fault", "explode"])
    assert isinstance(res.exception, BenchError)


def test_stalling_server_ends_within_the_time_bound(tmp_path: Path) -> None:
    import time

    out = tmp_path / "r.json"
    with mock_process(MockConfig(ttft_ms=5, itl_ms=1, fault="stall", stall_s=600)) as url:
        t0 = time.monotonic()
        res = _invoke(
            "--url", url, "--model", "m", "--concurrency", "1,2", "--duration", "1",
            "--warmup", "1", "--json", str(out),
        )  # fmt: skip
        wall = time.monotonic() - t0
    # warm-up cut at 1 s, then two runs cut at 1 s each: about 3 s, far below the 60 s stall
    # timeout and the 600 s stall
    assert wall < 10
    runs = json.loads(out.read_text())["runs"]
    assert [(r["completed"], r["cancelled"]) for r in runs] == [(0, 1), (0, 2)]
    # nothing failed (the requests were cut at the bound), but nothing was measured either
    assert res.exit_code == 1
    assert "no request completed" in res.output
