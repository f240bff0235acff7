"""scripts/eval_estimator.py --heldout: held-out rows in the calibration CSV's columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rigkit.estimate import estimate

ROOT = Path(__file__).resolve().parents[2]
HEADER = "gpu,n_gpus,model,quant,metric,tokens_per_s\n"


def test_heldout_rows_are_scored_by_gpu_count(tmp_path: Path) -> None:
    two = estimate("llama-3-8b", "q4_k_m", "rtx-3090", gpus=2, split="layer", prompt=0, gen=128)
    one = estimate("llama-3-8b", "q4_k_m", "a100-80gb-pcie", prompt=512, gen=0)
    assert two.decode_tokens_per_s and one.prefill_tokens_per_s
    # "measured" so that the estimate is 8% high (est / 1.08) and 5% low (est / 0.95):
    # decode error +8.0%, prefill error -5.0%
    csv = tmp_path / "held.csv"
    csv.write_text(
        HEADER
        + f"RTX 3090 24GB,2,Llama-3-8B,Q4_K_M,tg128,{two.decode_tokens_per_s / 1.08}\n"
        + f"A100 PCIe 80GB,1,Llama-3-8B,Q4_K_M,pp512,{one.prefill_tokens_per_s / 0.95}\n"
    )
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "eval_estimator.py"),
            "--quick",
            "--heldout",
            str(csv),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout
    assert "6. held-out rows (2 from held.csv)" in out, out + res.stderr
    assert "decode   8.0%   prefill   5.0%   (2 of 2 rows run)" in out
    # by GPU count: the 2-GPU row carries the decode error, the 1-GPU rows the prefill one
    assert "2 GPUs" in out and "decode   8.0%   prefill   nan%   (1 of 1 rows run)" in out
    # the marketing name "A100 PCIe 80GB" is the catalog's a100-80gb-pcie
    assert "1x a100-80gb-pcie" in out
    assert res.returncode == 0  # 8% and 5% are within the 10% / 15% targets


def test_heldout_bad_file_exits_2(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(HEADER + "RTX 4090 24GB,1,Llama-3-8B,Q4_K_M,xx512,100\n")
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "eval_estimator.py"), "--heldout", str(csv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2
    assert "bad.csv: row 1: metric 'xx512' is not ppN or tgN" in res.stderr
