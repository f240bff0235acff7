"""`rigkit calibrate` warns about measurements far from the estimate and refuses nonsense."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rigkit.cli.main import app
from rigkit.errors import EstimateError
from rigkit.estimate.fit import REFUSE_RATIO, WARN_RATIO, outliers, read_measurements
from rigkit.estimate.params import packaged_params

runner = CliRunner()


def _serve_json(tmp_path: Path, out_tok_s: float) -> Path:
    """A `bench serve --json` file for llama-3-8b q4_k_m on one RTX 4090 at concurrency 1.

    The packaged estimate for it is 130 tok/s (256 prompt, 128 generated tokens)."""
    doc = {
        "meta": {
            "model": "llama-3-8b",
            "quant": "q4_k_m",
            "gpu": "rtx-4090",
            "gpus": 1,
            "engine": "llama.cpp",
            "prompt_tokens": 256,
            "gen_tokens": 128,
        },
        "runs": [{"concurrency": 1, "output_tokens_per_s": out_tok_s}],
    }
    f = tmp_path / f"serve-{out_tok_s:g}.json"
    f.write_text(json.dumps(doc))
    return f


def test_bounds() -> None:
    assert WARN_RATIO == (0.5, 2.0) and REFUSE_RATIO == (0.2, 5.0)


def test_outliers_are_measured_over_predicted(tmp_path: Path) -> None:
    rows = read_measurements(_serve_json(tmp_path, 5.2))
    ((_, q),) = outliers(rows, packaged_params(), WARN_RATIO)
    # 5.2 measured / 130 estimated = 0.04
    assert abs(q - 0.04) < 0.002
    assert (
        outliers(read_measurements(_serve_json(tmp_path, 120.0)), packaged_params(), WARN_RATIO)
        == []
    )


def test_nonsense_run_is_refused_and_nothing_written(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    r = runner.invoke(app, ["calibrate", str(_serve_json(tmp_path, 5.2)), "--out", str(prof)])
    # the CLI's entry point turns an EstimateError into one line and exit status 2
    assert isinstance(r.exception, EstimateError)
    assert "0.04x-0.04x the estimate, beyond 0.2x-5x" in str(r.exception)
    assert r.exception.hint == "pass --allow-outliers to fit them anyway"
    assert not prof.exists()


def test_nonsense_run_fits_with_allow_outliers_and_warns(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    r = runner.invoke(
        app,
        ["calibrate", str(_serve_json(tmp_path, 5.2)), "--out", str(prof), "--allow-outliers"],
    )
    assert r.exit_code == 0, r.output
    assert "(llama-3-8b on 1x rtx-4090) aggregate: measured 5.2 is 0.04x the estimate" in r.output
    assert prof.exists()


def test_far_but_plausible_run_warns_only(tmp_path: Path) -> None:
    # 52 / ~128 (the estimate) = 0.41: outside 0.5-2 (warn), inside 0.2-5 (fit)
    prof = tmp_path / "p.yaml"
    r = runner.invoke(app, ["calibrate", str(_serve_json(tmp_path, 52.0)), "--out", str(prof)])
    assert r.exit_code == 0, r.output
    assert "0.41x the estimate" in r.output
    assert prof.exists()
