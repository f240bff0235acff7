"""`rigkit calibrate RESULTS... --out PROFILE.yaml`: fit the estimator to this machine's measurements.

RESULTS are llama-bench CSV/JSON files (the calibration CSV's columns or llama-bench's own
n_prompt/n_gen/avg_ts) and `rigkit bench serve --json` files. The profile holds the fitted
efficiency parameters; `rigkit estimate --profile PROFILE.yaml` uses them.
Exit status: 0 fitted, 2 unusable input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rigkit.errors import EstimateError

if TYPE_CHECKING:
    from rigkit.estimate.fit import Measurement


def register(app: typer.Typer) -> None:
    """Add `rigkit calibrate` to the root app."""

    @app.command("calibrate")
    def calibrate_cmd(
        results: list[Path] = typer.Argument(
            ..., help="llama-bench CSV/JSON or `bench serve --json` files"
        ),
        out: Path | None = typer.Option(None, "--out", help="profile YAML to write"),
        model: str | None = typer.Option(None, "--model", help="model id for rows that lack one"),
        quant: str | None = typer.Option(None, "--quant", help="format id for rows that lack one"),
        gpu: str | None = typer.Option(None, "--gpu", help="GPU id for rows that lack one"),
        gpus: int | None = typer.Option(None, "--gpus", help="GPU count for rows that lack one"),
        engine: str | None = typer.Option(None, "--engine", help="engine id (default llama.cpp)"),
        as_json: bool = typer.Option(False, "--json", help="print the fit as JSON"),
        force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
        allow_outliers: bool = typer.Option(
            False,
            "--allow-outliers",
            help="fit even when a measurement is off the estimate by more than 5x",
        ),
    ) -> None:
        """Fit the estimator's efficiency parameters to measurements and save a profile."""
        from rigkit.estimate.fit import (
            REFUSE_RATIO,
            WARN_RATIO,
            check_rows,
            fit,
            mape,
            outliers,
            read_measurements,
        )
        from rigkit.estimate.params import packaged_params, params_to_yaml

        if gpus is not None and gpus < 1:
            raise EstimateError(f"--gpus must be 1 or more, got {gpus}")
        if gpu is not None:
            from rigkit.catalog import load_catalog

            # checked even when every row names its GPU: a typo is not silently ignored
            load_catalog().gpu(gpu)
        if out is not None:
            from rigkit.outputs import check_out_file

            check_out_file(out, force=force)
        defaults = {"model": model, "quant": quant, "gpu": gpu, "gpus": gpus, "engine": engine}
        defaults = {k: v for k, v in defaults.items() if v is not None}
        rows = [r for path in results for r in read_measurements(path, defaults)]
        base = packaged_params()
        problems = check_rows(rows, base)
        if problems:
            raise EstimateError(
                f"{len(problems)} measurement(s) cannot be used: "
                + "; ".join(problems[:3])
                + (" ..." if len(problems) > 3 else "")
            )
        _check_outliers(outliers(rows, base, WARN_RATIO), REFUSE_RATIO, allow_outliers)
        before = {m: mape(rows, base, m) for m in ("decode", "prefill", "aggregate")}
        fitted, record = fit(rows, base)
        after = {m: mape(rows, fitted, m) for m in ("decode", "prefill", "aggregate")}
        record["mape_before_pct"] = {k: round(v, 2) for k, v in before.items() if v == v}
        record["mape_after_pct"] = {k: round(v, 2) for k, v in after.items() if v == v}
        record["files"] = [str(p) for p in results]
        overheads = _step_overheads(results)
        if overheads:
            record["step_overhead_s"] = overheads
        record.pop("mape_decode_pct", None)
        record.pop("mape_prefill_pct", None)
        if out is not None:
            try:
                out.write_text(params_to_yaml(fitted, record), encoding="utf-8")
            except OSError as e:
                raise EstimateError(f"cannot write {out}: {e.strerror or e}") from None
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "fitted": fitted.fitted_dict(),
                        "fit": record,
                        "profile": str(out) if out else None,
                    },
                    indent=2,
                )
            )
            return
        typer.echo(f"{len(rows)} measurements from {len(results)} file(s)")
        for k in ("decode", "prefill", "aggregate"):
            if k in record["mape_before_pct"]:
                typer.echo(
                    f"  {k:<9} error before {record['mape_before_pct'][k]:5.1f}%  after {record['mape_after_pct'][k]:5.1f}%"
                )
        typer.echo("fitted: " + ", ".join(record["parameters"]))
        for eng, ov in overheads.items():
            typer.echo(f"  step overhead of {eng}: {ov * 1000:.2f} ms (estimate --serve uses it)")
        if out is not None:
            typer.echo(f"profile written to {out}; use it with `rigkit estimate --profile {out}`")


def _check_outliers(
    odd: list[tuple[Measurement, float]], refuse: tuple[float, float], allow: bool
) -> None:
    """Warn (stderr) about measurements far from the packaged estimate; refuse (exit 2) past
    ``refuse`` unless ``allow``: such a run is a wrong model/GPU id, a unit mix-up or a broken
    setup, and a profile fitted to it would skew every estimate made with it."""
    if not odd:
        return
    lo, hi = refuse
    worst = [(m, q) for m, q in odd if not lo <= q <= hi]
    for m, q in odd[:5]:
        typer.echo(
            f"warning: {m.label} ({m.model} on {m.gpus}x {m.gpu}) {m.metric}: measured "
            f"{m.value:.4g} is {q:.2f}x the estimate",
            err=True,
        )
    if len(odd) > 5:
        typer.echo(f"warning: and {len(odd) - 5} more measurements far from the estimate", err=True)
    if worst and not allow:
        qs = [q for _, q in worst]
        raise EstimateError(
            f"{len(worst)} measurement(s) are {min(qs):.2f}x-{max(qs):.2f}x the estimate, beyond "
            f"{lo:g}x-{hi:g}x: check the model, quant and GPU ids and the run itself",
            hint="pass --allow-outliers to fit them anyway",
        )


def _step_overheads(paths: list[Path]) -> dict[str, float]:
    """Per-engine step overhead fitted to the TPOT of `bench serve --json` files (the serving
    simulation's one fitted parameter); the mean per engine over files."""
    from rigkit.estimate.serving import fit_from_serve_json

    found: dict[str, list[float]] = {}
    for path in paths:
        if path.suffix.lower() != ".json":
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # read_measurements has already said what is wrong with it
        if not isinstance(data, dict) or "runs" not in data:
            continue
        fitted = fit_from_serve_json(data)
        if fitted is not None:
            found.setdefault(fitted[0], []).append(fitted[1])
    return {eng: round(sum(v) / len(v), 6) for eng, v in found.items()}
