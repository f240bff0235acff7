"""`rigkit plan` and `rigkit rules`: formats, exit statuses, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rigkit.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"
REF_20A = ROOT / "examples" / "reference-4x4090-20a.yaml"
OK = ROOT / "tests" / "fixtures" / "specs" / "rules" / "ok-2x4090.yaml"
BAD = ROOT / "tests" / "fixtures" / "specs" / "bad"

runner = CliRunner()


def plan_json(spec: Path) -> tuple[int, dict[str, object]]:
    res = runner.invoke(app, ["plan", str(spec), "--format", "json"])
    return res.exit_code, json.loads(res.stdout)


def by_rule(doc: dict[str, object], code: str) -> list[dict[str, object]]:
    findings = doc["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["rule"] == code]


def test_rules_json_lists_every_rule() -> None:
    res = runner.invoke(app, ["rules", "--format", "json"])
    assert res.exit_code == 0
    rules = json.loads(res.stdout)
    assert len(rules) >= 30
    assert {"code", "name", "category", "severity", "doc"} <= set(rules[0])
    codes = [r["code"] for r in rules]
    assert codes == sorted(codes) and len(codes) == len(set(codes))


def test_rules_text() -> None:
    res = runner.invoke(app, ["rules"])
    assert res.exit_code == 0
    assert "CIR001" in res.stdout and "design rules" in res.stdout


@pytest.mark.skipif(not REF.exists(), reason="reference example not present")
def test_reference_build_plan_json() -> None:
    code, doc = plan_json(REF)
    assert code == 1  # error findings
    assert {"build", "ok", "counts", "summary", "findings"} <= set(doc)
    s = doc["summary"]
    assert isinstance(s, dict)
    for key in (
        "sustained_power_w",
        "peak_power_w",
        "wall_power_w",
        "heat_btu_h",
        "total_vram_gb",
        "total_cost_usd",
    ):
        assert key in s
    assert s["total_vram_gb"] == 96  # 4 x 24 GB
    # the heat is the wall power: BTU/h = W x 3.412
    assert s["heat_btu_h"] == pytest.approx(s["wall_power_w"] * 3.412, abs=1)
    # default site: 120 V 15 A shared -> 1440 W usable; 4 x 450 W of GPUs alone exceed it
    (cir,) = by_rule(doc, "CIR001")
    assert cir["severity"] == "error"
    assert cir["data"]["usable_w"] == 1440  # 120 x 15 x 0.8
    # room cooling not stated, 3-slot cards overlap, no P2P on GeForce
    assert by_rule(doc, "HVC001")[0]["severity"] == "warning"
    assert any(f["severity"] == "error" for f in by_rule(doc, "CLR001"))
    assert by_rule(doc, "ICN001")[0]["severity"] == "warning"


@pytest.mark.skipif(not REF_20A.exists(), reason="20 A example not present")
def test_reference_on_a_dedicated_20a_circuit_is_still_over() -> None:
    code, doc = plan_json(REF_20A)
    (cir,) = by_rule(doc, "CIR001")
    assert cir["data"]["usable_w"] == 1920  # 120 x 20 x 0.8
    # four 450 W GPUs (1800 W DC) plus a 350 W CPU are > 2150 W DC before PSU losses: > 1920 W
    assert cir["data"]["wall_w"] > 2150
    assert cir["severity"] == "error"
    assert code == 1


def test_passing_build_exits_0() -> None:
    code, doc = plan_json(OK)
    assert code == 0
    assert doc["ok"] is True
    assert doc["counts"]["error"] == 0  # type: ignore[index]
    (cir,) = by_rule(doc, "CIR001")
    assert cir["data"]["usable_w"] == 3840  # 240 x 20 x 0.8


def test_text_and_markdown_formats() -> None:
    res = runner.invoke(app, ["plan", str(OK)])
    assert res.exit_code == 0
    assert "no errors" in res.stdout
    res = runner.invoke(app, ["plan", str(OK), "--format", "markdown"])
    assert res.exit_code == 0
    assert res.stdout.startswith("# Plan: Two RTX 4090 on WRX90")


def test_out_writes_reports(tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", str(OK), "--format", "json", "--out", str(tmp_path)])
    assert res.exit_code == 0
    json.loads(res.stdout)  # stdout stays one JSON document
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert (tmp_path / "report.md").read_text().startswith("# Plan:")


def _rigkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from rigkit.cli.main import run; run()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "spec",
    [BAD / "unknown-id.yaml", BAD / "malformed.yaml", ROOT / "no-such-spec.yaml"],
    ids=["unknown-id", "malformed", "missing"],
)
def test_bad_input_is_one_line_and_exit_2(spec: Path) -> None:
    if spec.parent == BAD and not spec.exists():
        pytest.skip("bad fixture not present")
    proc = _rigkit("plan", str(spec))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rigkit: error:")


def test_exit_1_through_the_console_entry() -> None:
    proc = _rigkit("plan", str(REF), "--format", "json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["ok"] is False


def test_json_plan_loads_no_heavy_library() -> None:
    code = (
        "import sys, io, contextlib\n"
        f"sys.argv = ['rigkit', 'plan', {str(OK)!r}, '--format', 'json']\n"
        "from rigkit.cli.main import run\n"
        "try:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        run()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('matplotlib', 'jinja2', 'rich.console', 'scipy', 'aiohttp')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize(
    "spec", sorted(BAD.glob("*.yaml")) if BAD.exists() else [], ids=lambda p: p.stem
)
def test_every_bad_spec_raises_a_user_error(spec: Path) -> None:
    from rigkit.errors import RigkitError

    res = runner.invoke(app, ["plan", str(spec), "--format", "json"])
    # the console entry turns RigkitError into one line and exit 2 (checked above by subprocess)
    assert isinstance(res.exception, RigkitError), res.exception
    assert res.stdout == ""


def test_seed_remedy_20a_is_named_as_not_enough() -> None:
    if not REF_20A.exists():
        pytest.skip("20 A example not present")
    _, doc = plan_json(REF_20A)
    (cir,) = by_rule(doc, "CIR001")
    # 120 x 20 x 0.8 = 1920 W < the ~2593 W wall load; 240 V 20 A gives 3840 W
    assert "1920 W, not enough" in str(cir["fix"])
    assert "240 V 20 A (3840 W)" in str(cir["fix"])


def test_claims_reach_json_and_text() -> None:
    spec = ROOT / "tests" / "fixtures" / "specs" / "rules" / "reference-claims.yaml"
    code, doc = plan_json(spec)
    assert code == 1
    claims = doc["claims"]
    assert isinstance(claims, list) and len(claims) == 15
    cost = next(c for c in claims if c["figure"] == "total_cost_usd")
    assert cost["value"] == 18072  # the seed's own line items: 3899 + 7200 + ... + 275
    res = runner.invoke(app, ["plan", str(spec)])
    assert "Stated figures: 8 of 15 stated figures hold" in res.stdout


@pytest.mark.parametrize("columns", ["100", "120"])
def test_capacity_table_keeps_model_ids_whole(columns: str) -> None:
    res = runner.invoke(app, ["plan", str(REF)], env={"COLUMNS": columns})
    assert res.exit_code == 1  # the reference build has error findings
    cap = res.stdout[res.stdout.index("Capacity: 4x rtx-4090") :]
    cap = cap[: cap.index("Performance claims")]
    # every catalog model id of the table is printed in full, none cut to "llama-3.…"
    for model in ("llama-3.1-405b", "llama-3.3-70b", "mixtral-8x22b", "deepseek-r1"):
        assert model in cap
    assert "…" not in cap
    assert "VRAM bw" in cap  # bounds in their terminal form
