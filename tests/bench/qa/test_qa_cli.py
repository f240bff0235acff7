"""`rigkit qa` end to end: on this machine, with baselines, replays, a spec, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from qa_fakes import FIXTURES, make_build
from typer.testing import CliRunner

from rigkit.cli import qa as qa_cli
from rigkit.cli.main import app


def nvml_present() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def rigkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rigkit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_whole_qa_on_this_machine(tmp_path: Path) -> None:
    if nvml_present():
        pytest.skip("this machine has an NVIDIA driver; the test covers machines without GPUs")
    out = tmp_path / "out"
    proc = rigkit(
        "qa",
        "--storage-path",
        str(tmp_path),
        "--storage-mb",
        "8",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    by = {r["name"]: r for r in data["results"]}
    assert by["gpu-inventory"]["status"] == "skip"
    assert by["gpu-inventory"]["reason"].startswith("NVML not available: no NVIDIA driver found")
    assert by["pcie"]["status"] == "skip"
    assert by["gpu-compute"]["status"] == "skip"
    assert by["gpu-compute"]["reason"] in ("PyTorch not installed", "no CUDA device")
    assert by["soak"]["status"] == "skip"
    # what it can check, it checks
    assert by["cpu"]["status"] == "pass" and by["cpu"]["measured"]["logical_cpus"] >= 1
    assert by["ram-size"]["status"] == "pass"
    assert by["storage-seq-read"]["status"] == "pass"
    assert by["storage-seq-read"]["measured"]["bytes"] == 8 << 20  # 8 MiB read back
    assert data["verdict"] == "pass"
    md = (out / "qa-report.md").read_text()
    assert "| SKIP | gpu-inventory |" in md and "| PASS | storage-seq-read |" in md
    html = (out / "qa-report.html").read_text()
    assert '<td class="status skip">skip</td>' in html
    assert json.loads((out / "qa-results.json").read_text())["verdict"] == "pass"


def test_bad_input_exits_2(tmp_path: Path) -> None:
    proc = rigkit("qa", "--checks", "inventory,bogus")
    assert proc.returncode == 2
    assert "unknown check(s): bogus" in proc.stderr
    proc = rigkit("qa", "--checks", "host", "--baseline", str(tmp_path / "missing.json"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


runner = CliRunner()


def test_baseline_saved_then_degradation_flagged(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    args = ["qa", "--checks", "storage", "--storage-path", str(tmp_path), "--storage-mb", "4"]
    first = runner.invoke(app, [*args, "--baseline", str(base), "--save-baseline"])
    assert first.exit_code == 0, first.output
    assert "baseline saved to" in first.output
    saved = json.loads(base.read_text())
    assert saved["results"][0]["name"] == "storage-seq-read"
    # pretend the baseline read 1000x faster: any real run is now a drop far beyond 10%
    saved["results"][0]["measured"]["read_mb_s"] *= 1000
    base.write_text(json.dumps(saved))
    second = runner.invoke(app, [*args, "--baseline", str(base), "--json"])
    assert second.exit_code == 1
    data = json.loads(second.stdout)
    assert data["baseline"]["degraded"] is True
    assert data["baseline"]["degradations"][0]["change"] < -0.99  # (x - 1000x) / 1000x = -0.999


def test_soak_replay_with_xid_exits_1() -> None:
    result = runner.invoke(
        app, ["qa", "--checks", "soak", "--soak-replay", str(FIXTURES / "soak_xid79.jsonl")]
    )
    assert result.exit_code == 1
    assert "XID 79" in result.stdout


def test_spec_with_gpus_on_a_machine_without_them_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    def init() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", init)
    monkeypatch.setattr(qa_cli, "_load_build", lambda path: make_build())
    result = runner.invoke(
        app, ["qa", "--spec", "spec.yaml", "--checks", "inventory,pcie", "--json"]
    )
    assert result.exit_code == 1
    by = {r["name"]: r for r in json.loads(result.stdout)["results"]}
    assert by["gpu-inventory"]["status"] == "fail"
    assert by["gpu-inventory"]["expected"] == {"count": 4}


def test_failed_check_exits_1_through_the_entry_point() -> None:
    proc = rigkit(
        "qa", "--checks", "soak", "--soak-replay", str(FIXTURES / "soak_xid79.jsonl"), "--json"
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "fail"


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "reference-4x4090.yaml"


def test_reference_spec_on_a_machine_without_its_parts() -> None:
    if not EXAMPLE.is_file():
        pytest.skip("examples/reference-4x4090.yaml is not in this checkout")
    if nvml_present():
        pytest.skip("this machine has an NVIDIA driver")
    proc = rigkit("qa", "--spec", str(EXAMPLE), "--checks", "inventory,host", "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    by = {r["name"]: r for r in data["results"]}
    assert data["spec"]["name"]
    assert by["gpu-inventory"]["status"] == "fail"
    assert by["gpu-inventory"]["expected"] == {"count": 4}  # the reference build's 4 x RTX 4090
    # the reference build has 8 x 64 GB = 512 GiB
    assert by["ram-size"]["expected"]["installed_gib"] == 512.0
