"""`rigkit estimate`: memory, speed and fit of one model configuration, or a batch of them.

``--batch`` takes either a batch size (an integer: concurrent sequences) or ``-`` / a path to a
JSON Lines file of cases, one result line per case (see docs/estimate.md).
Exit status: 0 it runs (fits, or offloads within RAM), 1 it cannot run, 2 unusable input.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from rigkit.errors import EstimateError

SPEED_DIGITS = 2  # significant figures of speeds and times in the text view


def _fmt(x: float | None, unit: str = "", digits: int = 3) -> str:
    from rigkit.estimate.result import fmt_sig

    return "-" if x is None else fmt_sig(x, digits) + unit


def _render(d: dict[str, Any], would_fit: list[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    machines = f"{d.get('nodes', 1)} machines, " if d.get("nodes", 1) > 1 else ""
    title = (
        f"{d['model']} {d['quant']} on {machines}{d['gpus']}x {d['gpu']} ({d['engine']}"
        + (f", {d['split']} split" if d["gpus"] > 1 else "")
        + f"), prompt {d['prompt']}, gen {d['gen']}, batch {d['batch']}, ctx {d['ctx']}"
    )
    con.print(f"[bold]{title}[/bold]")
    if d["fits"]:
        verdict = "[green]fits in GPU memory[/green]"
    elif d["offload"] and d["runnable"] and d.get("cpu_moe_layers") is not None:
        verdict = (
            f"[yellow]does not fit on the GPUs: runs with the routed experts of "
            f"{d['cpu_moe_layers']} layers in system RAM (llama.cpp -ngl 99 --n-cpu-moe "
            f"{d['cpu_moe_layers']})[/yellow]"
        )
    elif d["offload"] and d["runnable"]:
        verdict = f"[yellow]does not fit: offloads {d['cpu_layers']} of {d['gpu_layers'] + d['cpu_layers']} layers to the CPU[/yellow]"
    elif d["runnable"]:  # a paged KV cache: the batch runs in waves
        verdict = (
            f"[yellow]the batch does not fit at once: {d['max_concurrent_sequences']} of "
            f"{d['batch']} sequences run together, the rest queue[/yellow]"
        )
    else:
        verdict = "[red]does not fit[/red]"
    con.print(verdict)
    if would_fit:
        con.print("would fit in GPU memory: " + "; ".join(would_fit), markup=False)
    elif would_fit is not None:
        con.print(
            f"no smaller format fits on {d['gpus']}x {d['gpu']}, and {d['quant']} does not fit "
            "on up to 8 of them",
            markup=False,
        )
    mem = Table(
        title=f"memory on the fullest GPU (GB of {_fmt(d['vram_gb_per_gpu'])})", show_header=False
    )
    for k, v in d["breakdown"]["memory_gb"].items():
        mem.add_row(k.replace("_", " "), _fmt(v))
    mem.add_row("[bold]total[/bold]", f"[bold]{_fmt(d['memory_gb_per_gpu'])}[/bold]")
    if d["offload"]:
        mem.add_row("system RAM (CPU part)", _fmt(d["cpu_ram_gb"]))
    con.print(mem)
    # speeds at two significant figures: on GPUs outside the calibration set the model is good to
    # about 10% (decode) and 15% (prompt), so a third digit would claim more than it knows; the
    # estimate's own accuracy line says how sure this one is
    accuracy = next((a for a in d["assumptions"] if a.startswith("accuracy: ")), None)
    sp = Table(title="speed", show_header=False)
    sp.add_row("prefill", _fmt(d["prefill_tokens_per_s"], " tok/s", SPEED_DIGITS))
    sp.add_row("decode (per sequence)", _fmt(d["decode_tokens_per_s"], " tok/s", SPEED_DIGITS))
    if d["batch"] > 1:
        sp.add_row("decode (aggregate)", _fmt(d["aggregate_tokens_per_s"], " tok/s", SPEED_DIGITS))
    sp.add_row("time to first token", _fmt(d["ttft_s"], " s", SPEED_DIGITS))
    sp.add_row("decode bound by", d["bound"] if d["decode_tokens_per_s"] is not None else "-")
    sp.add_row("max context", f"{d['max_context']:,}")
    sp.add_row(f"max sequences of {d['ctx']:,} tokens", f"{d['max_concurrent_sequences']:,}")
    sp.add_row(
        "load time (cold / cached)",
        f"{_fmt(d['load_time_s'], ' s', 2)} / {_fmt(d['load_time_cached_s'], ' s', 2)}",
    )
    con.print(sp)
    if accuracy:
        con.print(accuracy, markup=False)
    if d["breakdown"]["decode_ms_per_step"]:
        t = Table(title="decode step (ms)", show_header=False)
        for k, v in d["breakdown"]["decode_ms_per_step"].items():
            if v or k == "total":
                t.add_row(k.replace("_", " "), _fmt(v, "", SPEED_DIGITS))
        con.print(t)
    rest = [a for a in d["assumptions"] if a != accuracy]
    if rest:
        con.print("[bold]assumptions[/bold]")
        for a in rest:
            con.print(f"  - {a}")


#: combinations one sweep may ask for
MAX_SWEEP = 2000


def _words(option: str, value: str) -> list[str]:
    """``a,b`` -> ["a", "b"] (an empty item is an error)."""
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise EstimateError(f"{option} {value!r} has an empty item", hint="e.g. q4_k_m,q8_0")
    return items


def _ints(option: str, value: str) -> list[int]:
    """``1,8,32`` -> [1, 8, 32]; a non-integer item is one error line naming the option."""
    out = []
    for item in _words(option, value):
        try:
            out.append(int(item))
        except ValueError:
            raise EstimateError(
                f"Invalid value for '{option}': {item!r} is not a whole number",
                hint=f"{option} 4, or a list such as {option} 2,4",
            ) from None
    return out


def _sweep(axes: dict[str, list[Any]], common: dict[str, Any], as_json: bool) -> None:
    """Every combination of the listed values: one table (or a JSON list), errors in their row."""
    import itertools

    from rich.console import Console
    from rich.table import Table

    from rigkit.errors import RigkitError, UnknownIdError
    from rigkit.estimate import estimate
    from rigkit.estimate.result import runs
    from rigkit.report.capacity import BOUND_SHORT

    names = list(axes)
    combos = list(itertools.product(*(axes[n] for n in names)))
    if len(combos) > MAX_SWEEP:
        raise EstimateError(
            f"the lists make {len(combos):,} combinations (at most {MAX_SWEEP:,})",
            hint="use --batch FILE for large sweeps",
        )
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for combo in combos:
        case = dict(zip(names, combo, strict=True))
        kw = {k: v for k, v in case.items() if k not in ("model", "quant", "gpu")}
        try:
            d = estimate(case["model"], case["quant"], case["gpu"], **kw, **common).to_dict()
        except UnknownIdError:
            raise  # a typo in a list is unusable input, not a configuration that cannot run
        except RigkitError as err:
            d = {"error": str(err), **{k: v for k, v in case.items() if v is not None}}
        rows.append((case, d))
    if as_json:
        typer.echo(json.dumps([d for _, d in rows], indent=2))
        return
    varying = [n for n in names if len(axes[n]) > 1]
    t = Table(title=f"{len(rows)} configurations", title_justify="left")
    for n in varying:
        t.add_column(n.replace("_", " "), no_wrap=True)
    heads = ("runs", "GB/GPU", "prefill tok/s", "decode tok/s", "all seqs tok/s", "TTFT s")
    for h in (*heads, "max ctx", "bound"):
        left = h in ("runs", "bound")
        t.add_column(h.replace(" ", "\n"), justify="left" if left else "right", no_wrap=True)
    errors: list[str] = []
    for case, d in rows:
        keys = [str(case[n]) for n in varying]
        if "error" in d:
            errors.append(d["error"])
            t.add_row(*keys, f"[red]error ({len(errors)})[/red]", *[""] * 7)
            continue
        t.add_row(
            *keys,
            runs(d["fits"], d["offload"], d["runnable"]),
            _fmt(d["memory_gb_per_gpu"]),
            _fmt(d["prefill_tokens_per_s"], "", SPEED_DIGITS),
            _fmt(d["decode_tokens_per_s"], "", SPEED_DIGITS),
            _fmt(d["aggregate_tokens_per_s"], "", SPEED_DIGITS),
            _fmt(d["ttft_s"], "", SPEED_DIGITS),
            f"{d['max_context']:,}" if d["runnable"] else "-",
            BOUND_SHORT.get(d["bound"], d["bound"])
            if d["decode_tokens_per_s"] is not None
            else "-",
        )
    con = Console()
    con.print(t)
    for i, e in enumerate(errors, 1):
        con.print(f"({i}) {e}", markup=False)


def _serve(
    model: str | None,
    quant: str | None,
    gpu: str | None,
    gpus: str,
    engine: str,
    prompt: str,
    gen: str,
    concurrency: str | None,
    rate: str | None,
    requests: int,
    max_num_seqs: int | None,
    max_num_batched_tokens: int | None,
    step_overhead_ms: float | None,
    profile: str | None,
    as_json: bool,
) -> None:
    """`estimate --serve`: the serving simulation, printed as `bench serve` prints a sweep."""
    from rich.console import Console

    from rigkit.bench.serve import ServeResult, render_table
    from rigkit.estimate.serving import cost_from_estimate, policy, sweep

    missing = [n for n, v in (("--model", model), ("--quant", quant), ("--gpu", gpu)) if not v]
    if missing:
        raise EstimateError(f"--serve needs {', '.join(missing)}", hint="rigkit estimate --help")
    assert model is not None and quant is not None and gpu is not None
    (n_gpus,) = _ints("--gpus", gpus)
    (p_tok,) = _ints("--prompt", prompt)
    (g_tok,) = _ints("--gen", gen)
    levels = tuple(_ints("--concurrency", concurrency)) if concurrency else ()
    rates: tuple[float, ...] = ()
    if rate:
        try:
            rates = tuple(float(v) for v in rate.split(",") if v.strip())
        except ValueError:
            raise EstimateError(f"--rate {rate!r} is not a comma list of numbers") from None
    if not rates and not levels:
        levels = (1, 4, 16, 64)
    if requests < 1:
        raise EstimateError("--requests must be at least 1")
    cost, kv_tokens = cost_from_estimate(
        model, quant, gpu, gpus=n_gpus, engine=engine, profile=profile
    )
    if step_overhead_ms is None and profile is not None:
        from rigkit.estimate.params import load_params

        fitted = load_params(profile).fit_info.get("step_overhead_s") or {}
        if isinstance(fitted.get(engine), int | float):
            step_overhead_ms = 1000.0 * float(fitted[engine])
    pol = policy(
        engine,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        step_overhead_s=None if step_overhead_ms is None else step_overhead_ms / 1000.0,
        kv_capacity_tokens=kv_tokens,
    )
    runs = sweep(
        cost,
        pol,
        prompt_tokens=p_tok,
        gen_tokens=g_tok,
        concurrencies=levels,
        rates=rates,
        requests=requests,
    )
    meta: dict[str, Any] = {
        "url": "rigkit estimate --serve (simulated)",
        "model": model,
        "endpoint": "completions",
        "prompt_tokens": p_tok,
        "gen_tokens": g_tok,
        "predicted": True,
        "quant": quant,
        "gpu": gpu,
        "gpus": n_gpus,
        "engine": engine,
        "policy": {
            "max_num_seqs": pol.max_num_seqs,
            "max_num_batched_tokens": pol.max_num_batched_tokens,
            "ubatch": pol.ubatch,
            "chunked_prefill": pol.chunked_prefill,
            "step_overhead_s": pol.step_overhead_s,
            "kv_capacity_tokens": pol.kv_capacity_tokens,
        },
    }
    result = ServeResult(meta=meta, runs=tuple(runs))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    Console(width=None if sys.stdout.isatty() else 160).print(render_table(result))


def register(app: typer.Typer) -> None:
    """Add `rigkit estimate` to the root app."""

    @app.command("estimate")
    def estimate_cmd(
        model: str | None = typer.Option(
            None,
            "--model",
            help="model id (llama-3-70b), or a Hugging Face config.json or .gguf file",
        ),
        quant: str | None = typer.Option(None, "--quant", help="weight format id, e.g. q4_k_m"),
        gpu: str | None = typer.Option(None, "--gpu", help="GPU id, e.g. rtx-4090"),
        gpus: str = typer.Option("1", "--gpus", metavar="N", help="number of GPUs"),
        engine: str = typer.Option(
            "llama.cpp", "--engine", help="llama.cpp, ollama, vllm, exllamav2, tgi"
        ),
        split: str | None = typer.Option(None, "--split", help="layer | row | tensor | pipeline"),
        prompt: str = typer.Option(
            "512", "--prompt", "--prompt-tokens", metavar="N", help="prompt tokens"
        ),
        gen: str = typer.Option(
            "128", "--gen", "--gen-tokens", metavar="N", help="generated tokens per sequence"
        ),
        batch: str = typer.Option(
            "1",
            "--batch",
            metavar="N|FILE|-",
            help="batch size (concurrent sequences), or '-' / a JSON Lines file of cases",
        ),
        ctx: str | None = typer.Option(
            None, "--ctx", metavar="N", help="context per sequence (default prompt + gen)"
        ),
        cpu: str | None = typer.Option(None, "--cpu", help="CPU id, for offload speed"),
        ram_gb: float | None = typer.Option(None, "--ram-gb", help="system RAM in GB"),
        disk_read_gb_s: float | None = typer.Option(
            None, "--disk-read-gb-s", help="model disk read rate"
        ),
        profile: str | None = typer.Option(
            None, "--profile", help="calibration profile from `rigkit calibrate`"
        ),
        nvlink: bool | None = typer.Option(
            None,
            "--nvlink/--no-nvlink",
            help="NVLink-capable PCIe cards are paired by bridges (default: only SXM modules use NVLink)",
            show_default=False,
        ),
        kv_cache: str | None = typer.Option(
            None,
            "--kv-cache",
            help="KV cache type: llama.cpp/ollama f16|q8_0|q4_0, vllm fp8, exllamav2 q8|q6|q4, ...",
        ),
        flash_attention: bool | None = typer.Option(
            None,
            "--flash-attention/--no-flash-attention",
            help="llama.cpp -fa: no attention-score buffer (default: the engine's; on with a quantised KV cache)",
            show_default=False,
        ),
        power_limit: float | None = typer.Option(
            None,
            "--power-limit",
            metavar="W",
            help="each GPU's power limit in watts (nvidia-smi -pl W; default the board power)",
        ),
        nodes: int = typer.Option(
            1,
            "--nodes",
            metavar="N",
            help="machines of --gpus GPUs each (llama.cpp RPC / vLLM pipeline parallel)",
        ),
        nic: str | None = typer.Option(
            None, "--nic", help="NIC id joining the machines (default 25GbE over TCP)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
        serve: bool = typer.Option(
            False, "--serve", help="predict what `rigkit bench serve` measures (see below)"
        ),
        concurrency: str | None = typer.Option(
            None, "--concurrency", help="with --serve: comma list of levels (default 1,4,16,64)"
        ),
        rate: str | None = typer.Option(
            None, "--rate", help="with --serve: comma list of request rates (requests/s)"
        ),
        requests: int = typer.Option(200, "--requests", help="with --serve: requests per run"),
        max_num_seqs: int | None = typer.Option(
            None, "--max-num-seqs", help="with --serve: sequences per step (llama.cpp -np)"
        ),
        max_num_batched_tokens: int | None = typer.Option(
            None, "--max-num-batched-tokens", help="with --serve: tokens per step (llama.cpp -b)"
        ),
        step_overhead_ms: float | None = typer.Option(
            None, "--step-overhead-ms", help="with --serve: scheduler time per step"
        ),
    ) -> None:
        """Estimate memory per GPU, fit/offload, prefill and decode speed, context and load time.

        Comma lists (--quant q4_k_m,q8_0 --gpus 2,4 --engine llama.cpp,vllm --batch 1,8 ...) sweep
        every combination into one table.

        --serve simulates the engine's scheduler under a `bench serve` load (--concurrency or
        --rate, --prompt-tokens, --gen-tokens) and prints the same table and JSON runs.
        """
        if serve:
            _serve(
                model, quant, gpu, gpus, engine, prompt, gen, concurrency, rate, requests,
                max_num_seqs, max_num_batched_tokens, step_overhead_ms, profile, as_json,
            )  # fmt: skip
            return
        batch_size: int | None = None
        batch_is_list = "," in batch and not os.path.isfile(batch)
        try:
            batch_size = int(batch) if not batch_is_list else 1
        except ValueError:
            if batch != "-" and not os.path.isfile(batch):
                raise EstimateError(
                    f"--batch {batch!r} is neither a batch size nor a JSON Lines file",
                    hint="--batch 8 for 8 concurrent sequences; --batch cases.jsonl or --batch - for batch mode",
                ) from None
        if batch_size is None:
            # every case comes from the file: an option for one estimate would be ignored silently
            given = [
                name
                for name, value, default in (
                    ("--model", model, None),
                    ("--quant", quant, None),
                    ("--gpu", gpu, None),
                    ("--gpus", gpus, "1"),
                    ("--engine", engine, "llama.cpp"),
                    ("--split", split, None),
                    ("--prompt", prompt, "512"),
                    ("--gen", gen, "128"),
                    ("--ctx", ctx, None),
                    ("--cpu", cpu, None),
                    ("--ram-gb", ram_gb, None),
                    ("--disk-read-gb-s", disk_read_gb_s, None),
                    ("--nvlink", nvlink, None),
                    ("--kv-cache", kv_cache, None),
                    ("--flash-attention", flash_attention, None),
                    ("--power-limit", power_limit, None),
                    ("--nodes", nodes, 1),
                    ("--nic", nic, None),
                )
                if value != default
            ]
            if given:
                raise EstimateError(
                    f"--batch {batch} takes every case from its lines; {', '.join(given)} "
                    "would be ignored",
                    hint='put them in each case, e.g. {"model": ..., "gpus": 2}, or drop --batch',
                )
            from rigkit.estimate.batch import run_batch_source

            run_batch_source(batch, sys.stdout, profile)
            return
        if not quant and model and model.strip().lower().endswith(".gguf") and "," not in model:
            from rigkit.catalog.llm import load_llm_catalog

            # a GGUF file carries its own weight format
            quant = load_llm_catalog().model(model).file_format
        missing = [n for n, v in (("--model", model), ("--quant", quant), ("--gpu", gpu)) if not v]
        if missing:
            raise EstimateError(f"missing {', '.join(missing)}", hint="rigkit estimate --help")
        from rigkit.estimate import estimate

        assert model is not None and quant is not None and gpu is not None
        axes: dict[str, list[Any]] = {
            "model": _words("--model", model),
            "quant": _words("--quant", quant),
            "gpu": _words("--gpu", gpu),
            "gpus": _ints("--gpus", gpus),
            "engine": _words("--engine", engine),
            "split": _words("--split", split) if split else [None],
            "prompt": _ints("--prompt", prompt),
            "gen": _ints("--gen", gen),
            "batch": _ints("--batch", batch) if batch_is_list else [batch_size],
            "ctx": _ints("--ctx", ctx) if ctx else [None],
            "kv_cache": _words("--kv-cache", kv_cache) if kv_cache else [None],
        }
        common: dict[str, Any] = {
            "cpu": cpu,
            "ram_gb": ram_gb,
            "profile": profile,
            "disk_read_gb_s": disk_read_gb_s,
            "nvlink": nvlink,
            "flash_attention": flash_attention,
            "power_limit_w": power_limit,
            "nodes": nodes,
            "nic": nic,
        }
        if any(len(v) > 1 for v in axes.values()):
            _sweep(axes, common, as_json)
            return
        one = {k: v[0] for k, v in axes.items()}
        est = estimate(
            one["model"],
            one["quant"],
            one["gpu"],
            gpus=one["gpus"],
            engine=one["engine"],
            split=one["split"],
            prompt=one["prompt"],
            gen=one["gen"],
            batch=one["batch"],
            ctx=one["ctx"],
            cpu=cpu,
            ram_gb=ram_gb,
            profile=profile,
            disk_read_gb_s=disk_read_gb_s,
            nvlink=nvlink,
            kv_cache=one["kv_cache"],
            flash_attention=flash_attention,
            power_limit_w=power_limit,
            nodes=nodes,
            nic=nic,
        )
        d = est.to_dict()
        if as_json:
            typer.echo(json.dumps(d, indent=2))
        else:
            would_fit: list[str] | None = None
            if not est.fits:
                from rigkit.estimate.capacity import what_fits

                would_fit = what_fits(
                    est,
                    prompt=one["prompt"],
                    gen=one["gen"],
                    batch=one["batch"],
                    ctx=one["ctx"],
                    cpu=cpu,
                    ram_gb=ram_gb,
                    nvlink=nvlink,
                    kv_cache=one["kv_cache"],
                    flash_attention=flash_attention,
                )
            _render(d, would_fit)
        if not est.runnable:
            raise typer.Exit(1)
