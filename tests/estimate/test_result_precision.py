"""Estimated quantities leave rigkit at three significant figures, JSON and dict alike."""

from __future__ import annotations

import json

from rigkit.estimate import estimate
from rigkit.estimate.result import DIGITS, sig


def test_sig_rounds_to_three_figures() -> None:
    assert DIGITS == 3
    # 45.5168 -> 45.5; 1236.7 -> 1240; 0.0052832 -> 0.00528; 25.7698 (24 GiB in GB) -> 25.8
    assert sig(45.5168) == 45.5
    assert sig(1236.7) == 1240.0
    assert sig(0.0052832) == 0.00528
    assert sig(25.7698) == 25.8
    assert sig(None) is None and sig(0.0) == 0.0


def test_to_dict_and_to_json_round_alike_attributes_keep_precision() -> None:
    e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=512, gen=128)
    d = e.to_dict()
    assert json.loads(e.to_json()) == d
    assert e.decode_tokens_per_s is not None
    assert d["decode_tokens_per_s"] == float(f"{e.decode_tokens_per_s:.3g}")
    # the RTX 4090's 24 GiB = 25.769803776 GB
    assert e.vram_gb_per_gpu == 24 * 1024**3 / 1e9
    assert d["vram_gb_per_gpu"] == 25.8
    for group in d["breakdown"].values():
        for v in group.values():
            assert v == 0 or len(f"{v:.6e}".split("e")[0].rstrip("0").replace(".", "")) <= 3
