"""The text view of `rigkit estimate` prints no more digits than the model supports."""

from __future__ import annotations

from typer.testing import CliRunner

from rigkit.cli.estimate import SPEED_DIGITS, _fmt
from rigkit.cli.main import build_app


def test_speeds_print_at_two_significant_figures() -> None:
    assert SPEED_DIGITS == 2
    # 17.66 -> 18; 1236 -> 1,200 (1.236e3 at 2 figures = 1.2e3); 0.829 s -> 0.83 s
    assert _fmt(17.66, " tok/s", SPEED_DIGITS) == "18 tok/s"
    assert _fmt(1236.0, " tok/s", SPEED_DIGITS) == "1,200 tok/s"
    assert _fmt(0.829, " s", SPEED_DIGITS) == "0.83 s"
    # memory stays at 3 figures: 25.7698 GB (24 GiB) -> 25.8
    assert _fmt(25.7698) == "25.8"


def test_text_view_states_accuracy_and_rounds_vram() -> None:
    res = CliRunner().invoke(
        build_app(["estimate"]),
        ["estimate", "--model", "llama-3-8b", "--quant", "q4_k_m", "--gpu", "rtx-4090"],
        env={"COLUMNS": "120"},
    )
    assert res.exit_code == 0, res.output
    # the RTX 4090's 24 GiB = 25.77 GB, printed at 3 figures, not as 25.7698
    assert "GB of 25.8" in res.output
    assert "25.7698" not in res.output
    # the RTX 4090 is a calibration GPU: the speed table says how close the fit is there
    assert "fitted on this GPU's llama.cpp rows" in " ".join(res.output.split())


def test_text_view_of_a_batch_that_runs_in_waves() -> None:
    # vLLM's KV pool on an RTX 4090 holds 50 sequences of 768 tokens of Llama-3-8B F16
    # (tests/estimate/test_paged_waves.py has the arithmetic): 64 run as 50 + queue
    res = CliRunner().invoke(
        build_app(["estimate"]),
        [
            "estimate",
            *("--model", "llama-3-8b", "--quant", "f16", "--gpu", "rtx-4090"),
            *("--engine", "vllm", "--prompt", "512", "--gen", "256", "--batch", "64"),
        ],
        env={"COLUMNS": "120"},
    )
    assert res.exit_code == 0, res.output  # it runs
    assert "50 of 64 sequences run together, the rest queue" in res.output


def test_comma_lists_sweep_every_combination() -> None:
    import json

    args = [
        "estimate",
        *("--model", "llama-3-70b", "--quant", "q4_k_m,q8_0", "--gpu", "rtx-4090"),
        *("--gpus", "2,4", "--engine", "llama.cpp,vllm"),
    ]
    res = CliRunner().invoke(build_app(["estimate"]), [*args, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    # 2 formats x 2 GPU counts x 2 engines = 8 rows, in that nested order
    assert len(rows) == 8
    assert [(r["quant"], r["gpus"], r["engine"]) for r in rows[:3]] == [
        ("q4_k_m", 2, "llama.cpp"),
        ("q4_k_m", 2, "vllm"),
        ("q4_k_m", 4, "llama.cpp"),
    ]
    # Q8_0 (~75 GB) fits on 4x 25.8 GB but not on 2 (llama.cpp offloads the rest)
    by = {(r["quant"], r["gpus"], r["engine"]): r for r in rows}
    assert by[("q8_0", 4, "llama.cpp")]["fits"] and not by[("q8_0", 2, "llama.cpp")]["fits"]
    assert by[("q8_0", 2, "llama.cpp")]["offload"]
    text = CliRunner().invoke(build_app(["estimate"]), args, env={"COLUMNS": "140"})
    assert text.exit_code == 0
    assert "8 configurations" in text.output and "offload" in text.output
