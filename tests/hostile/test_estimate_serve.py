"""Hostile input to `rigkit estimate --serve`: one line, exit status 2, quickly, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

BASE = ["estimate", "--model", "llama-3.1-8b", "--quant", "f16", "--gpu", "rtx-4090"]
BASE += ["--engine", "vllm", "--serve"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--concurrency", "0"], "concurrency must be at least 1"),
        (["--concurrency", "1,x"], "--concurrency"),
        (["--rate", "0"], "request rate must be a number above 0"),
        (["--rate", "inf"], "request rate must be a number above 0"),
        (["--rate", "nan"], "request rate must be a number above 0"),
        (["--rate", "fast"], "--rate 'fast' is not a comma list of numbers"),
        (["--requests", "0"], "--requests must be at least 1"),
        # 10^9 token times would exhaust memory: refused before simulating
        (["--requests", "1000000", "--gen-tokens", "1000"], "more than the 10,000,000 token"),
        (["--prompt-tokens", "2000000"], "tokens of KV cache"),
        (["--max-num-seqs", "0"], "max_num_seqs"),
        (["--step-overhead-ms", "-1"], "step_overhead_s must be >= 0"),
    ],
)
def test_refused_with_one_line(extra: list[str], says: str) -> None:
    res = subprocess.run(
        [sys.executable, "-c", "from rigkit.cli.entry import run; run()", *BASE, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert says in lines[0]
