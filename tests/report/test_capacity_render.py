"""The capacity section's renderers (report/capacity.py) over a hand-made Capacity."""

from __future__ import annotations

from pathlib import Path

from rigkit.estimate.capacity import Capacity, CapacityRow, ExpectationCheck, plan_capacity
from rigkit.report.capacity import capacity_html, capacity_markdown, capacity_rich, cells
from rigkit.report.figures import roofline_png
from rigkit.spec import load_build

REF = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"

ROW = CapacityRow(
    model="llama-3-70b",
    quant="q4_k_m",
    engine="vllm",
    split="tensor",
    fits=False,
    offload=True,
    runnable=True,
    weights_gb=42.5,
    memory_gb_per_gpu=23.456,
    decode_tokens_per_s=12.345,
    prefill_tokens_per_s=1234.5,
    max_context=32768,
    max_concurrent_8k=3,
    bound="cpu-ram",
)
CLAIM = ExpectationCheck(
    claim="<b>70B</b> at 40 tok/s",
    metric="decode_tokens_per_s",
    claimed_min=40.0,
    claimed_max=None,
    estimate=12.345,
    unit="tok/s",
    plausible=False,
    reason="estimate 12 | claimed 40",
    source=None,
)
CAP = Capacity(
    gpu="rtx-4090",
    gpus=4,
    vram_gb_total=103.08,
    cpu=None,
    ram_gb=256.0,
    disk_read_gb_s=None,
    rows=(ROW,),
    expectations=(CLAIM,),
    assumptions=("8k <context> per sequence",),
)


def test_cells() -> None:
    # three significant figures (fmt_sig): 23.456 -> 23.5, 12.345 -> 12.3, 1234.5 -> 1,230;
    # an offloaded row "offload"; the split shown unless it is the default layer split
    assert cells(ROW) == (
        "llama-3-70b",
        "q4_k_m",
        "vllm (tensor)",
        "offload",
        "23.5",
        "12.3",
        "1,230",
        "32,768",
        "3",
        "cpu-ram",
    )


def test_markdown_escapes_pipes() -> None:
    md = capacity_markdown(CAP)
    assert md.startswith("## Capacity: 4x rtx-4090 (103 GB VRAM), 256 GB RAM\n")
    assert "| llama-3-70b | q4_k_m | vllm (tensor) | offload | 23.5 |" in md
    # the claim's estimate at three figures, as the table shows it (12.345 -> 12.3); the reason's "|" escaped
    assert "| NOT plausible | 12.3 tok/s | estimate 12 \\| claimed 40 |" in md


def test_html_from_the_template_escapes_every_value() -> None:
    html = capacity_html(CAP)
    assert html.startswith('<section class="capacity">')
    assert "<li>8k &lt;context&gt; per sequence</li>" in html
    assert '<tr class="offload"><td>llama-3-70b</td>' in html
    assert '<tr class="implausible"><td>&lt;b&gt;70B&lt;/b&gt; at 40 tok/s</td>' in html
    assert "<b>" not in html


def test_rich_tables() -> None:
    tables = capacity_rich(CAP)
    assert [t.title for t in tables][1] == "Performance claims"
    assert tables[0].row_count == 1 and tables[1].row_count == 1


def test_roofline_of_the_reference_build() -> None:
    build = load_build(REF)
    png = roofline_png(build, plan_capacity(build))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
