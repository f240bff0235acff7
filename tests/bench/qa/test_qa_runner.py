"""The runner: family selection, input errors, and a family that breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.bench.qa import runner
from rigkit.bench.qa.result import CheckResult, QaContext, QaInputError
from rigkit.errors import BenchError


def test_parse_checks_keeps_run_order() -> None:
    assert runner.parse_checks("soak, inventory") == ["inventory", "soak"]
    assert runner.parse_checks(None) == list(runner.CHECKS)
    with pytest.raises(BenchError, match="unknown check"):
        runner.parse_checks("inventory,gpu")


def test_a_family_that_breaks_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: QaContext) -> list[CheckResult]:
        raise OSError(5, "Input/output error")

    def hung(ctx: QaContext) -> list[CheckResult]:
        raise BenchError("NVML call nvmlDeviceGetCount did not answer within 5 s")

    checks = dict(runner.CHECKS, host=broken, inventory=hung)
    monkeypatch.setattr(runner, "CHECKS", checks)
    report = runner.run_qa(QaContext(), ["inventory", "host", "soak"])
    by = {r.name: r for r in report.results}
    assert by["host"].status == "fail"
    assert "Input/output error" in by["host"].reason
    assert by["inventory"].status == "fail"
    assert "did not answer" in by["inventory"].reason
    assert by["soak"].status == "skip"  # the others still ran
    assert report.verdict == "fail"


def test_input_errors_stop_the_run(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="does not exist"):
        runner.run_qa(QaContext(storage_path=tmp_path / "nope"), ["storage"])
    with pytest.raises(BenchError, match="must be positive"):
        runner.run_qa(QaContext(storage_mb=0), ["host"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(QaInputError, match=r"bad\.jsonl:1"):
        runner.run_qa(QaContext(soak_replay=bad), ["soak"])
