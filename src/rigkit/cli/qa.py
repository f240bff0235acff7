"""CLI commands for `rigkit qa`: acceptance checks of a built machine against its spec."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rigkit.errors import BenchError
from rigkit.report.words import plural

if TYPE_CHECKING:
    from rigkit.bench.qa.baseline import BaselineComparison
    from rigkit.bench.qa.runner import QaReport
    from rigkit.build import Build

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _load_build(path: Path) -> Build:
    from rigkit.spec import load_build

    return load_build(path)


def _print_table(report: QaReport, comparison: BaselineComparison | None, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from rigkit.bench.qa.report import brief, ratio_text

    console = Console()
    title = f"rigkit qa: {report.spec_name or report.machine.get('hostname', 'machine')}"
    table = Table(title=title, expand=True)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("measured", overflow="fold", ratio=2)
    table.add_column("predicted", overflow="fold", ratio=2)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=5)
    for r in report.results:
        table.add_row(
            f"[{_STYLE[r.status]}]{r.status.upper()}[/]",
            r.name,
            brief(r.measured, r.ratio_key),
            brief(r.predicted, r.ratio_key),
            ratio_text(r),
            r.reason,
        )
    console.print(table)
    counts = report.counts
    verdict = report.verdict
    if comparison is not None:
        if comparison.degradations:
            verdict = "fail"
            for d in comparison.degradations:
                console.print(f"[bold red]DEGRADED[/] {d.message}")
        else:
            console.print(
                f"baseline {comparison.baseline_path} ({comparison.baseline_started_at}): "
                f"no degradation in {plural(comparison.compared, 'check')}"
            )
    for note in notes:
        console.print(note)
    console.print(
        f"verdict: [{_STYLE[verdict]}]{verdict.upper()}[/] "
        f"({counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail, "
        f"{counts['skip']} skip)"
    )


def qa(
    spec: Path | None = typer.Option(
        None, "--spec", help="The machine's spec (YAML); without it, checks only measure."
    ),
    checks: str | None = typer.Option(
        None,
        "--checks",
        help="Comma-separated families: inventory,host,pcie,gpu-compute,storage,network,soak "
        "(default: all).",
    ),
    soak_seconds: float = typer.Option(
        0.0, "--soak-seconds", help="Length of the GPU soak test; 0 skips it (1800 recommended)."
    ),
    soak_replay: Path | None = typer.Option(
        None, "--soak-replay", help="Judge a recorded soak (monitor replay JSONL) instead."
    ),
    storage_path: Path | None = typer.Option(
        None,
        "--storage-path",
        help="Directory to write and read a test file in, or a file/device to read "
        "(default: the temp directory).",
    ),
    storage_mb: int = typer.Option(1024, "--storage-mb", help="MiB to read in the storage test."),
    iperf_server: str | None = typer.Option(
        None, "--iperf-server", help="Host running `iperf3 -s` for the network test."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write qa-report.md, qa-report.html, qa-results.json here."
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Baseline file to compare with / save to (default: in the user's data directory).",
    ),
    save_baseline: bool = typer.Option(
        False, "--save-baseline", help="Store this run as the baseline (after comparing)."
    ),
    threshold: float = typer.Option(
        0.10, "--threshold", help="Flag a throughput drop larger than this fraction."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Replace report files already in the --out directory."
    ),
) -> None:
    """Acceptance checks for a built machine; exit 1 when a check fails or results degraded."""
    from rigkit.bench.qa.baseline import (
        compare,
        default_baseline_path,
        load_baseline,
    )
    from rigkit.bench.qa.baseline import (
        save_baseline as store_baseline,
    )
    from rigkit.bench.qa.report import REPORT_FILES, write_reports
    from rigkit.bench.qa.result import QaContext
    from rigkit.bench.qa.runner import parse_checks, run_qa, validate

    names = parse_checks(checks)
    if not 0 < threshold < 1:
        raise BenchError(f"--threshold must be between 0 and 1, got {threshold:g}")
    if baseline is not None and baseline.is_dir():
        raise BenchError(f"--baseline {baseline} is a directory", hint="give a file path")
    if baseline is not None and not save_baseline and not baseline.is_file():
        raise BenchError(f"baseline file {baseline} does not exist", hint="add --save-baseline")
    build = _load_build(spec) if spec is not None else None
    if out is not None:
        from rigkit.outputs import check_out_dir

        files = list(REPORT_FILES.values())
        check_out_dir(out, [*files, "soak.jsonl"] if soak_seconds > 0 else files, force=force)
    ctx = QaContext(
        build=build,
        storage_path=storage_path,
        storage_mb=storage_mb,
        iperf_server=iperf_server,
        soak_seconds=soak_seconds,
        soak_replay=soak_replay,
        soak_record=(out / "soak.jsonl") if out is not None and soak_seconds > 0 else None,
    )
    validate(ctx, names)  # before --out is created: a refused run leaves nothing behind
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BenchError(f"cannot create --out directory {out}: {err.strerror or err}") from err
    report = run_qa(ctx, names)

    notes: list[str] = []
    base_path = baseline or default_baseline_path(report.spec_name)
    comparison = None
    if base_path.is_file():
        comparison = compare(report, load_baseline(base_path), threshold, str(base_path))
    if save_baseline:
        store_baseline(report, base_path)
        notes.append(f"baseline saved to {base_path}")
    if out is not None:
        paths = write_reports(report, out, comparison)
        notes.append("report: " + ", ".join(str(p) for p in paths.values()))

    if as_json:
        data = report.to_dict()
        if comparison is not None:
            data["baseline"] = comparison.to_dict()
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _print_table(report, comparison, notes)
    if report.verdict == "fail" or (comparison is not None and comparison.degraded):
        # SystemExit rather than typer.Exit: the entry point runs click without standalone mode,
        # where an Exit is returned instead of raised.
        raise SystemExit(1)


def register(app: typer.Typer) -> None:
    """Add `rigkit qa` to the root app."""
    app.command("qa")(qa)
