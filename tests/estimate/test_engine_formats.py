"""Which formats an engine loads is catalog data (engines.yaml ``formats``), and only that.

Before: the estimator's priors added GGUF formats to vLLM's list, so ``estimate --engine vllm
--quant q4_k_m`` was estimated although docs/models.md says vLLM does not load it.
"""

from __future__ import annotations

import sys

import pytest

from rigkit.catalog.llm import load_llm_catalog
from rigkit.cli import entry


def test_vllm_refuses_a_gguf_format_with_what_it_loads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["estimate", "--model", "llama-3-8b", "--gpu", "rtx-4090", "--engine", "vllm"]
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv, "--quant", "q4_k_m"])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    loads = sorted(load_llm_catalog().engine("vllm").formats)
    assert "q4_k_m" not in loads and "awq-int4" in loads
    assert err == (
        "rigkit: error: engine 'vllm' does not load format 'q4_k_m' "
        f"(hint: it loads: {', '.join(loads)})"
    )


def test_every_engine_loads_what_its_catalog_entry_lists() -> None:
    from rigkit.estimate import estimate

    for fmt in ("q4_k_m", "q8_0", "f16"):  # llama.cpp loads all three (GGUF)
        assert fmt in load_llm_catalog().engine("llama.cpp").formats
        assert estimate("llama-3-8b", fmt, "rtx-4090", engine="llama.cpp").fits
