"""Baseline comparison arithmetic, saved baselines, and the certification report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigkit.bench.qa.baseline import (
    compare,
    default_baseline_path,
    load_baseline,
    save_baseline,
)
from rigkit.bench.qa.report import render_html, render_markdown, write_reports
from rigkit.bench.qa.result import CheckResult
from rigkit.bench.qa.runner import QaReport
from rigkit.errors import BenchError


def storage(read_gb_s: float, status: str = "pass") -> CheckResult:
    return CheckResult(
        "storage-seq-read",
        "storage",
        status,  # type: ignore[arg-type]
        "test",
        {"read_mb_s": read_gb_s * 1000, "method": "direct-io"},
        {},
        {"read_mb_s": 29000},
        read_gb_s * 1000 / 29000,
        "read_mb_s",
        ("read_mb_s",),
    )


def report(*results: CheckResult, started: str = "2026-11-01T10:00:00+00:00") -> QaReport:
    return QaReport(
        results=results,
        machine={"hostname": "rig1", "kernel": "Linux 6.8", "arch": "x86_64", "rigkit": "0.1.0"},
        spec_name="Reference 4x4090",
        started_at=started,
        seconds=12.5,
    )


def test_drop_of_14_percent_is_flagged_at_10() -> None:
    c = compare(report(storage(6.0)), report(storage(7.0)))
    [d] = c.degradations
    # (6.0 - 7.0) / 7.0 = -0.142857 -> -14.3%, more than the 10% allowed
    assert d.kind == "throughput-drop"
    assert d.key == "read_mb_s"
    assert (d.baseline, d.current) == (7000.0, 6000.0)
    assert d.change == pytest.approx(-0.142857, abs=1e-6)
    assert "-14.3%" in d.message
    assert c.degraded and c.compared == 1


def test_drop_of_exactly_the_threshold_and_gains_are_not_flagged() -> None:
    # 10.0 -> 9.0 is exactly -10%: not "more than" 10%
    assert not compare(report(storage(9.0)), report(storage(10.0))).degraded
    # 7.0 -> 6.0 is -14.3%: inside a 15% threshold
    assert not compare(report(storage(6.0)), report(storage(7.0)), threshold=0.15).degraded
    assert not compare(report(storage(8.0)), report(storage(7.0))).degraded


def test_check_that_passed_and_now_fails_is_flagged() -> None:
    was = CheckResult("gpu-inventory", "inventory", "pass", "4 x RTX 4090")
    now = CheckResult("gpu-inventory", "inventory", "fail", "3 GPUs found, the spec has 4")
    [d] = compare(report(now), report(was)).degradations
    assert d.kind == "now-failing"
    assert d.message == (
        "gpu-inventory passed at the baseline and fails now: 3 GPUs found, the spec has 4"
    )
    # a check only in one of the runs is not compared
    assert compare(report(now), report(storage(7.0))).compared == 0


def test_bad_threshold_is_input_error() -> None:
    with pytest.raises(BenchError):
        compare(report(), report(), threshold=1.5)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = save_baseline(report(storage(7.0)), tmp_path / "sub" / "b.json")
    back = load_baseline(path)
    got = back.results[0]
    assert got.measured == {"read_mb_s": 7000.0, "method": "direct-io"}
    assert got.throughput == ("read_mb_s",)
    assert got.ratio == 0.2414  # 7000 / 29000 = 0.24138, stored to 4 places
    assert back.spec_name == "Reference 4x4090"
    assert back.started_at == "2026-11-01T10:00:00+00:00"


def test_load_baseline_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="cannot read baseline"):
        load_baseline(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BenchError, match="not valid JSON"):
        load_baseline(bad)
    bad.write_text('{"verdict": "pass"}')
    with pytest.raises(BenchError, match="not a rigkit qa result"):
        load_baseline(bad)


def test_default_baseline_lives_in_the_data_dir(tmp_path: Path) -> None:
    # conftest points XDG_DATA_HOME at tmp_path / "xdg-data"
    path = default_baseline_path("Reference 4x4090")
    assert path == tmp_path / "xdg-data" / "rigkit" / "qa" / "baseline-reference-4x4090.json"


def test_verdict_and_counts() -> None:
    skip = CheckResult("pcie", "pcie", "skip", "no NVIDIA GPU on the PCI bus")
    warn = storage(20.3, "warn")
    assert report(skip).verdict == "pass"  # skips alone do not fail
    assert report(skip, warn).verdict == "warn"
    r = report(skip, warn, storage(1.0, "fail"))
    assert r.verdict == "fail"
    assert r.counts == {"pass": 0, "warn": 1, "fail": 1, "skip": 1}


def test_reports_show_status_ratio_and_degradation(tmp_path: Path) -> None:
    skip = CheckResult("gpu-compute", "gpu-compute", "skip", "PyTorch not installed")
    now = report(storage(6.0), skip)
    comparison = compare(now, report(storage(7.0)), baseline_path="/b.json")
    md = render_markdown(now, comparison)
    assert "**Verdict: FAIL** (degraded since the baseline)" in md
    # ratio 6000 / 29000 = 0.21
    assert "| PASS | storage-seq-read | read_mb_s=6000, method=direct-io |" in md
    assert "| 0.21 |" in md
    assert "| SKIP | gpu-compute |" in md and "PyTorch not installed" in md
    assert "**throughput-drop**" in md
    html = render_html(now, comparison)
    assert '<td class="status pass">pass</td>' in html
    assert '<td class="status skip">skip</td>' in html
    assert "<dt>predicted read_mb_s</dt><dd>29000</dd>" in html

    paths = write_reports(now, tmp_path / "out", comparison)
    assert sorted(p.name for p in paths.values()) == [
        "qa-report.html",
        "qa-report.md",
        "qa-results.json",
    ]
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == "pass"  # the checks themselves; the degradation is beside it
    assert data["baseline"]["degraded"] is True
    assert data["results"][0]["ratio"] == pytest.approx(0.2069, abs=1e-4)  # 6000 / 29000


def test_html_escapes_reasons() -> None:
    r = CheckResult("cpu", "host", "fail", "CPU is '<script>x</script>'")
    html = render_html(report(r))
    assert "<script>x" not in html
    assert "&lt;script&gt;" in html


def test_small_ratios_keep_a_significant_digit() -> None:
    from rigkit.bench.qa.report import ratio_text

    assert ratio_text(storage(0.1423)) == "0.005"  # 142.3 / 29000 = 0.0049
    assert ratio_text(storage(6.0)) == "0.21"  # 6000 / 29000 = 0.2069
    assert ratio_text(CheckResult("x", "y", "skip", "z")) == "-"
