"""`bench serve --plot` and the results table, as a new user reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rigkit.bench.metrics import RequestResult, RunResult, summarize
from rigkit.bench.serve import ServeResult, figure, plot, render_table


def _run(conc: int, ttft_s: float, tpot_s: float, n: int = 4, tokens: int = 9) -> RunResult:
    """``n`` requests of ``tokens`` tokens: first token at ``ttft_s``, then one per ``tpot_s``."""
    reqs = []
    for i in range(n):
        t0 = 10.0 * i
        times = [t0 + ttft_s + k * tpot_s for k in range(tokens)]
        reqs.append(
            RequestResult(
                start=t0, end=times[-1], token_times=times, prompt_tokens=32, output_tokens=tokens
            )
        )
    return summarize(reqs, issued=n, duration_s=1.0, concurrency=conc)


def _result(predicted: bool = False) -> ServeResult:
    # TPOT 15.008, 15.016, 15.024 ms: noise of 16 microseconds across the sweep
    runs = [_run(c, 0.120 + 0.001 * i, 0.015008 + 0.000008 * i) for i, c in enumerate((1, 4, 16))]
    if predicted:
        runs = [
            r.with_prediction(
                {
                    "output_tokens_per_s": 9.0 * (i + 1),
                    "ttft_ms": {"p50": 110.0},
                    "tpot_ms": {"p50": 14.0},
                }
            )
            for i, r in enumerate(runs)
        ]
    return ServeResult(
        meta={"model": "m", "url": "http://x", "endpoint": "completions"}, runs=tuple(runs)
    )


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_latency_axes_start_at_zero() -> None:
    fig = figure(_result())
    try:
        ax_ttft, ax_tpot = fig.axes
        # TPOT 15.008-15.024 ms: the axis runs from 0 to above 15.024, so the 0.016 ms spread
        # is 0.1% of its height instead of the whole height
        lo, hi = ax_tpot.get_ylim()
        assert lo == 0.0 and 15.024 < hi < 15.024 * 1.2
        lo, hi = ax_ttft.get_ylim()
        assert lo == 0.0 and hi > 122.0
    finally:
        _close(fig)


def test_legend_off_the_data_and_labels_inside_the_figure() -> None:
    fig = figure(_result(predicted=True))
    try:
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        fb = fig.bbox
        (legend,) = fig.legends
        lb = legend.get_window_extent(r)
        for ax in fig.axes:
            # the legend does not overlap either panel (it sits below them)
            assert not lb.overlaps(ax.get_window_extent(r))
        # every drawn text (tick labels, axis labels, run tags, title, legend) is inside it
        boxes = [ax.get_tightbbox(r) for ax in fig.axes] + [lb]
        boxes.append(fig._suptitle.get_window_extent(r))
        for b in boxes:
            assert fb.x0 - 1 <= b.x0 and b.x1 <= fb.x1 + 1, b
            assert fb.y0 - 1 <= b.y0 and b.y1 <= fb.y1 + 1, b
    finally:
        _close(fig)


def test_predictions_are_drawn() -> None:
    fig = figure(_result(predicted=True))
    try:
        labels = [str(ln.get_label()) for ax in fig.axes for ln in ax.get_lines()]
        assert "TTFT p50 predicted" in labels and "TPOT p50 predicted" in labels
        (tpot_pred,) = [
            ln for ln in fig.axes[1].get_lines() if ln.get_label() == "TPOT p50 predicted"
        ]
        # predicted points at 9, 18, 27 tok/s and 14 ms
        assert list(tpot_pred.get_xdata()) == [9.0, 18.0, 27.0]
        assert list(tpot_pred.get_ydata()) == [14.0, 14.0, 14.0]
    finally:
        _close(fig)
    fig = figure(_result(predicted=False))
    try:
        labels = [str(ln.get_label()) for ax in fig.axes for ln in ax.get_lines()]
        assert not any("predicted" in x for x in labels)
    finally:
        _close(fig)


def test_plot_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    plot(_result(predicted=True), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_latency_columns_have_units() -> None:
    headers = [str(c.header) for c in render_table(_result()).columns]
    for name in ("TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "TPOT p50", "E2E p50"):
        assert f"{name} ms" in headers
    assert "out tok/s" in headers and "req/s" in headers


@pytest.mark.parametrize("n", [1])
def test_no_completed_run_is_refused(n: int) -> None:
    from rigkit.errors import BenchError

    failed = RequestResult(start=0.0, end=1.0, error="http_500")
    run = summarize([failed] * n, issued=n, duration_s=1.0, concurrency=1)
    with pytest.raises(BenchError):
        figure(ServeResult(meta={"model": "m"}, runs=(run,)))
