"""CLI commands for `rigkit bench`: `serve` (load generator) and `mock-server` (test server)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rigkit.errors import BenchError

if TYPE_CHECKING:
    from rigkit.bench.metrics import RunResult

bench_app = typer.Typer(
    name="bench",
    help="Measure a served model (OpenAI-compatible API) and compare with rigkit's estimate.",
    no_args_is_help=True,
)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"{what}: {text!r} is not a comma-separated list of integers") from None
    if not values:
        raise BenchError(f"{what}: give at least one value")
    return values


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"{what}: {text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise BenchError(f"{what}: give at least one value")
    return values


def _check_url(url: str) -> None:
    """An http(s) URL with a host, else unusable input (exit 2) before any request is sent."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        raise BenchError(f"--url {url!r} is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BenchError(
            f"--url {url!r} is not an http(s) URL", hint="e.g. --url http://127.0.0.1:8080"
        )


#: failure reasons that mean the server was never reached
_UNREACHED = frozenset({"connection_refused", "connect_timeout"})


def _check_reached(runs: Sequence[RunResult], url: str) -> None:
    """No request completed and every failure was a refused or timed-out connection: nothing at
    the URL to measure, which is unusable input (exit 2) rather than a failed measurement."""
    if not runs or any(r.completed for r in runs):
        return
    reasons = {reason for r in runs for reason in r.failures}
    if reasons and reasons <= _UNREACHED:
        how = " / ".join(sorted(x.replace("_", " ") for x in reasons))
        raise BenchError(f"cannot connect to {url} ({how})", hint="is the server running?")


def _check_served_name(model: str) -> None:
    """Without ``--model-id`` the estimate looks the served ``--model`` name up in the catalog;
    a served name is rarely a catalog id, so say which option to give rather than suggest
    catalog models that merely look alike."""
    from rigkit.catalog.llm import load_llm_catalog
    from rigkit.errors import UnknownIdError

    try:
        load_llm_catalog().model(model)
    except UnknownIdError:
        raise BenchError(
            f"--model {model!r} (the name the server expects) is not a catalog model id, and the "
            "estimate needs one",
            hint="give the catalog id of the served model with --model-id, e.g. "
            "--model-id llama-3.1-8b",
        ) from None


@bench_app.command("serve")
def serve(
    url: str = typer.Option(..., "--url", help="Server root, e.g. http://127.0.0.1:8080."),
    model: str = typer.Option(..., "--model", help="Model name the server expects."),
    endpoint: str = typer.Option("completions", "--endpoint", help="completions or chat."),
    concurrency: str | None = typer.Option(
        None,
        "--concurrency",
        help="Comma list of concurrency levels (default 1); with --rate: caps.",
    ),
    rate: str | None = typer.Option(
        None, "--rate", help="Comma list of request rates (requests/s); arrivals are random."
    ),
    burstiness: float = typer.Option(
        1.0, "--burstiness", help="Gamma shape of arrivals with --rate: 1 Poisson, <1 burstier."
    ),
    requests: int | None = typer.Option(
        None, "--requests", help="Requests per run (default 100 unless --duration is given)."
    ),
    duration: float | None = typer.Option(
        None, "--duration", help="Time bound per run in seconds; requests in flight are cut."
    ),
    warmup: int = typer.Option(1, "--warmup", help="Warm-up requests before the sweep."),
    prompt_tokens: int = typer.Option(256, "--prompt-tokens", help="Random prompt length."),
    gen_tokens: int = typer.Option(128, "--gen-tokens", help="Tokens to generate per request."),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="JSON/JSONL prompts (prompt, messages or ShareGPT conversations)."
    ),
    slo: list[str] = typer.Option(
        [], "--slo", help="SLO for goodput, METRIC:MS with METRIC ttft, tpot, itl or e2e."
    ),
    ignore_eos: bool = typer.Option(
        True, "--ignore-eos/--no-ignore-eos", help="Ask the server to generate all tokens."
    ),
    request_timeout: float = typer.Option(600.0, "--request-timeout", help="Seconds per request."),
    stall_timeout: float = typer.Option(
        60.0, "--stall-timeout", help="Seconds without data before a request counts as stalled."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="RIGKIT_API_KEY", help="Bearer token (or RIGKIT_API_KEY)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for prompts and arrivals."),
    json_out: str | None = typer.Option(
        None, "--json", help="Write results as JSON (- for stdout)."
    ),
    plot_out: Path | None = typer.Option(None, "--plot", help="Write latency vs throughput PNG."),
    spec: Path | None = typer.Option(
        None, "--spec", help="Build spec: print rigkit's estimate too."
    ),
    engine: str | None = typer.Option(None, "--engine", help="Engine id for the estimate."),
    quant: str | None = typer.Option(None, "--quant", help="Quantization id for the estimate."),
    model_id: str | None = typer.Option(
        None, "--model-id", help="Catalog model id when the served name differs."
    ),
    max_num_seqs: int | None = typer.Option(
        None,
        "--max-num-seqs",
        help="With --spec: the server's sequences per step (-np, --max-num-seqs); default the "
        "highest --concurrency.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    force: bool = typer.Option(False, "--force", help="Replace --json/--plot files that exist."),
) -> None:
    """Load-test an OpenAI-compatible server and report TTFT, ITL, TPOT, latency and throughput.

    Exit status 1 when any request failed (reasons are listed) or a run completed none,
    2 for unusable input (also a URL where every connection is refused or times out).
    """
    from rich.console import Console

    from rigkit.bench.loadgen import ClientConfig
    from rigkit.bench.metrics import parse_slos
    from rigkit.bench.serve import (
        PredictionSpec,
        ServeConfig,
        failure_lines,
        plot,
        render_predictions,
        render_table,
        run_serve,
    )

    if endpoint not in ("completions", "chat"):
        raise BenchError(f"--endpoint must be completions or chat, not {endpoint!r}")
    _check_url(url)
    from rigkit.outputs import check_out_file

    if json_out is not None and json_out != "-":
        check_out_file(Path(json_out), force=force, option="--json")
    if plot_out is not None:
        check_out_file(plot_out, force=force, option="--plot")
    prediction = None
    if spec is not None or engine is not None or quant is not None:
        if spec is None or engine is None or quant is None:
            raise BenchError("a prediction needs all of --spec, --engine and --quant")
        if model_id is None:
            _check_served_name(model)
        if max_num_seqs is not None and max_num_seqs < 1:
            raise BenchError("--max-num-seqs must be at least 1")
        prediction = PredictionSpec(str(spec), engine, quant, model_id or model, max_num_seqs)
    if requests is None and duration is None:
        requests = 100
    client = ClientConfig(
        url=url,
        model=model,
        endpoint="chat" if endpoint == "chat" else "completions",
        gen_tokens=gen_tokens,
        ignore_eos=ignore_eos,
        request_timeout_s=request_timeout,
        stall_timeout_s=stall_timeout,
        api_key=api_key,
    )
    cfg = ServeConfig(
        client=client,
        concurrencies=_ints(concurrency, "--concurrency") if concurrency else (1,),
        rates=_floats(rate, "--rate") if rate else (),
        capped=concurrency is not None,
        burstiness=burstiness,
        requests=requests,
        duration_s=duration,
        warmup=warmup,
        prompt_tokens=prompt_tokens,
        dataset=dataset,
        slos=parse_slos(slo),
        seed=seed,
        prediction=prediction,
    )
    to_stdout = json_out == "-"
    err = Console(stderr=True)
    # A pipe or file gets a wide table (rich would fold 13 columns into 80 characters).
    tty = sys.stderr.isatty() if to_stdout else sys.stdout.isatty()
    out = Console(stderr=to_stdout, width=None if tty else 160)

    def progress(line: str) -> None:
        if not quiet:
            err.print(f"[dim]{line}[/dim]", highlight=False)

    result = run_serve(cfg, progress=progress)
    _check_reached(result.runs, url)
    out.print(render_table(result))
    pred = render_predictions(result)
    if pred is not None:
        out.print(pred)
    problems = failure_lines(result)
    for line in problems:
        out.print(f"[yellow]{line}[/yellow]", highlight=False)
    if json_out:
        text = json.dumps(result.to_dict(), indent=2)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            try:
                Path(json_out).write_text(text + "\n")
            except OSError as e:
                raise BenchError(f"cannot write {json_out}: {e.strerror or e}") from None
    if plot_out is not None:
        plot(result, plot_out)
    if any(r.failed or not r.completed for r in result.runs):
        raise typer.Exit(1)


@bench_app.command("mock-server")
def mock_server(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", help="0 picks a free port."),
    ttft_ms: float = typer.Option(120.0, "--ttft-ms", help="Time to first token."),
    itl_ms: float = typer.Option(15.0, "--itl-ms", help="Gap between tokens."),
    tokens: int | None = typer.Option(
        None, "--tokens", help="Tokens per reply (default max_tokens)."
    ),
    fault: str = typer.Option(
        "none", "--fault", help="none, drop, http500, http429, stall, malformed or no_usage."
    ),
    fault_rate: float = typer.Option(
        1.0, "--fault-rate", help="Fraction of requests with the fault."
    ),
    fault_after: int = typer.Option(
        2, "--fault-after", help="Tokens sent before a mid-stream fault."
    ),
    retry_after_s: int = typer.Option(1, "--retry-after-s", help="Retry-After of HTTP 429."),
    usage: str = typer.Option("usage", "--usage", help="Token counts as usage, timings or ollama."),
) -> None:
    """Serve a fake OpenAI-compatible model with set delays and faults (to test a client or setup)."""
    import asyncio

    from rigkit.bench.mockserver import FAULTS, USAGE_STYLES, MockConfig, serve_forever

    if not 0 <= port <= 65535:
        raise BenchError(f"--port must be between 0 and 65535, not {port}")
    if fault not in FAULTS:
        raise BenchError(f"--fault must be one of {', '.join(FAULTS)}, not {fault!r}")
    if usage not in USAGE_STYLES:
        raise BenchError(f"--usage must be one of {', '.join(USAGE_STYLES)}, not {usage!r}")
    cfg = MockConfig(
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        tokens=tokens,
        fault=fault,  # type: ignore[arg-type]
        fault_rate=fault_rate,
        fault_after=fault_after,
        retry_after_s=retry_after_s,
        usage=usage,  # type: ignore[arg-type]
    )
    cfg.check()
    try:
        asyncio.run(serve_forever(cfg, host, port))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        raise BenchError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def register(app: typer.Typer) -> None:
    """Add `rigkit bench` to the root app."""
    app.add_typer(bench_app, name="bench")
