"""Renderers of a plan: JSON, Markdown, rich text, HTML with embedded figures, capacity hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rigparts as rp
from rich.console import Console

from rigkit.design.plan import PlanResult, plan
from rigkit.report.markdown import render_markdown
from rigkit.report.render import capacity_md, render_html, render_json, write_report
from rigkit.report.text import render_text

#: no cloud instances: CST002 has nothing to compare with
CATALOG = rp.catalog()


@pytest.fixture
def result() -> PlanResult:
    return plan(rp.ref(), capacity=False, catalog=CATALOG)


def test_json_document(result: PlanResult) -> None:
    doc = json.loads(render_json(result))
    assert set(doc) >= {"build", "ok", "counts", "summary", "findings"}
    s = doc["summary"]
    # hand-computed in tests/design/test_design_numbers.py: 2370 W DC, 3270 W peak, 2612.8 W wall
    assert s["sustained_power_w"] == 2370
    assert s["peak_power_w"] == 3270
    assert s["wall_power_w"] == pytest.approx(2612.8, abs=0.1)
    assert s["heat_btu_h"] == 8915  # 2612.81 x 3.412 = 8914.9
    assert s["total_vram_gb"] == 96  # 4 x 24
    assert s["total_cost_usd"] == 18405
    assert s["fp16_tflops"] == pytest.approx(660.8)  # 4 x 165.2
    assert s["gpu_bandwidth_gb_s"] == 4032  # 4 x 1008
    assert s["memory_bandwidth_gb_s"] == pytest.approx(332.8)  # 8 x 5200 x 8
    assert s["storage_read_gb_s"] == pytest.approx(29.0)  # 2 x 14.5
    assert len(s["pcie"]) == 8  # 4 GPUs + 1 NIC + 3 drives
    for f in doc["findings"]:
        assert set(f) >= {"rule", "category", "severity", "message", "fix"}
    assert doc["ok"] is False  # CIR001, CLR001, CLR003 are errors
    assert doc["counts"]["error"] == sum(1 for f in doc["findings"] if f["severity"] == "error")
    assert "capacity" not in doc


def test_markdown(result: PlanResult) -> None:
    md = render_markdown(result)
    assert md.startswith("# Plan: ref\n")
    assert "## The build at a glance" in md
    assert "| Wall power | 2,613 W |" in md  # 2612.8 rounded
    assert "| Heat | 8,915 BTU/h |" in md
    assert "### Errors (" in md
    assert "**CIR001** (circuit)" in md
    assert "| gpu0: RTX 4090 | S1 | cpu | Gen4 x16 (card Gen4 x16) | 31.5 |" in md  # 16 x 1.969


def test_glance_says_the_ups_losses() -> None:
    r = plan(rp.ref(ups=rp.ups()), capacity=False, catalog=CATALOG)
    md = render_markdown(r)
    # rigparts' online UPS at the 0.94 default: 2612.81 / 0.94 = 2779.59 W, 166.78 W of losses
    assert "| Wall power | 2,613 W machine + 167 W UPS losses = 2,780 W |" in md
    # machine 2612.81 x 3.412 = 8914.9; room 2779.59 x 3.412 = 9483.9 BTU/h
    assert "| Heat | 8,915 BTU/h machine; 9,484 BTU/h with the UPS |" in md


def test_text_hides_notes_unless_verbose(result: PlanResult) -> None:
    console = Console(record=True, width=140)
    render_text(result, console)
    out = console.export_text()
    assert "CIR001" in out
    assert "THM001" not in out  # an info finding
    assert "show them with --verbose" in out
    console = Console(record=True, width=140)
    render_text(result, console, verbose=True)
    assert "THM001" in console.export_text()


def test_html_is_self_contained(result: PlanResult) -> None:
    html = render_html(result, {"power": "data:image/png;base64,AAAA"})
    assert "<h1>Plan: ref</h1>" in html
    assert 'src="data:image/png;base64,AAAA"' in html
    assert "http://" not in html and "https://" not in html
    assert "CIR001" in html


def test_html_escapes_text(result: PlanResult) -> None:
    import dataclasses

    bad = dataclasses.replace(
        result, build=dataclasses.replace(result.build, name="<script>x</script>")
    )
    assert "<script>x" not in render_html(bad)


def test_write_report(result: PlanResult, tmp_path: Path) -> None:
    paths = write_report(result, tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == ["cost.png", "pcie.png", "power.png", "report.html", "report.md", "slots.png"]
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # pcie, slots, power, cost
    md = (tmp_path / "out" / "report.md").read_text()
    assert "![Power budget](power.png)" in md


def test_capacity_section_in_every_rendering() -> None:
    r = plan(rp.ref(), catalog=CATALOG)
    assert r.capacity is not None
    assert r.to_dict()["capacity"]["gpus"] == r.build.gpu_count
    md = render_markdown(r, None, capacity_md(r))
    assert "## Capacity: " in md and "| model | format | engine | runs |" in md
    assert '<section class="capacity">' in render_html(r)


def test_a_capacity_bug_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # plan() calls plan_capacity plainly: an error inside it reaches the caller, it does not
    # silently drop the section
    import rigkit.design.plan as plan_mod

    def broken(build: object) -> None:
        raise AttributeError("a bug in plan_capacity")

    monkeypatch.setattr(plan_mod, "plan_capacity", broken)
    with pytest.raises(AttributeError, match="a bug in plan_capacity"):
        plan(rp.ref(), catalog=CATALOG)


def _with_claims(result: PlanResult) -> PlanResult:
    """``result`` with two claims: FP32 4 x 82.6 = 330.4 (holds), heat 7500 BTU/h (does not:
    the ref build's wall power is 2612.8 W x 3.412 = 8915 BTU/h)."""
    import dataclasses

    from rigkit.design.claims import check_claims

    claims = (
        {"claim": "330 TFLOPS FP32", "figure": "fp32_tflops", "value": 330.0},
        {"claim": "7,500 BTU/hr", "figure": "heat_btu_h", "value": 7500.0},
    )
    build = dataclasses.replace(result.build, claims=claims)
    return dataclasses.replace(result, build=build, claims=check_claims(build, result.summary))


def test_claims_section_in_every_format(result: PlanResult) -> None:
    assert "Stated figures" not in render_markdown(result)  # no claims, no section
    r = _with_claims(result)
    md = render_markdown(r)
    assert "## Stated figures\n\n1 of 2 stated figures hold" in md
    assert "| 330 TFLOPS FP32 | 330 TFLOPS | 4 x 82.6 = 330.4 TFLOPS (non-tensor FP32) |" in md
    # 7500 / 3.412 = 2198 W would give the claimed heat
    assert "**does not hold**: 2,198 W would give the claimed figure" in md
    html = render_html(r)
    assert "<h2>Stated figures</h2>" in html and "8,915 BTU/h" in html
    console = Console(record=True, width=140)
    render_text(r, console)
    assert "Stated figures: 1 of 2 stated figures hold" in console.export_text()


def test_narrow_terminal_puts_the_fix_under_the_finding(result: PlanResult) -> None:
    console = Console(record=True, width=80)
    render_text(result, console)
    out = console.export_text()
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "Fix: " in out  # the fix column folded into the finding
    assert "Eff." not in out  # the PSU table drops peak and efficiency
    wide = Console(record=True, width=140)
    render_text(result, wide)
    assert "Fix: " not in wide.export_text()


def test_narrow_capacity_table_keeps_model_ids_whole(result: PlanResult) -> None:
    import dataclasses

    from rigkit.estimate.capacity import CapacityRow

    def row(model: str, quant: str, tok_s: float, ctx: int) -> CapacityRow:
        return CapacityRow(
            model,
            quant,
            "vllm",
            "tensor",
            True,
            False,
            True,
            40.0,
            12.6,
            tok_s,
            1300.0,
            ctx,
            14,
            "memory-bandwidth",
        )

    class Cap:
        gpus, gpu, expectations = 4, "rtx-4090", ()
        rows = (
            row("llama-3.1-405b", "awq-int4", 53.04, 117760),
            row("llama-3.1-405b", "f16", 9.0, 8192),
        )

    r = dataclasses.replace(result, capacity=Cap())
    console = Console(record=True, width=80)
    render_text(r, console, capacity=["the estimator's wide table"])
    out = console.export_text()
    assert "the estimator's wide table" not in out
    assert "llama-3.1-405b" in out and "llam…" not in out
    assert out.count("llama-3.1-405b") == 1  # named once per group
    # 117760 tokens = 115 x 1024 -> "115k"; 53.04 tok/s at 3 significant digits -> 53
    line = next(x for x in out.splitlines() if "awq-int4" in x)
    assert "115k" in line and " 53 " in line and "vllm TP" in line and "VRAM bw" in line
