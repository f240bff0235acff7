"""Which formats an engine loads is catalog data (engines.yaml ``formats`` and
``experimental_formats``), and only that.

Before: the estimator's priors added GGUF formats to vLLM's list silently, so ``estimate --engine
vllm --quant q4_k_m`` was estimated as a first-class format while docs/models.md said vLLM did not
load it. Now the catalog lists them as vLLM's experimental GGUF path and the estimate says so.
"""

from __future__ import annotations

import sys

import pytest

from rigkit.catalog.llm import load_llm_catalog
from rigkit.cli import entry


def test_vllm_refuses_a_format_it_cannot_load_with_what_it_loads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["estimate", "--model", "llama-3-8b", "--gpu", "rtx-4090", "--engine", "vllm"]
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv, "--quant", "iq2_xs"])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    vllm = load_llm_catalog().engine("vllm")
    loads = sorted({*vllm.formats, *vllm.experimental_formats})
    assert "iq2_xs" not in loads and "awq-int4" in loads
    assert err == (
        "rigkit: error: engine 'vllm' does not load format 'iq2_xs' "
        f"(hint: it loads: {', '.join(loads)})"
    )


def test_vllm_gguf_is_its_experimental_path_and_says_so() -> None:
    """vLLM loads single-file GGUF (q4_k_m) only through the path its docs call experimental:
    the estimate runs and its notes say so; AWQ, a format vLLM is tuned for, has no such note."""
    from rigkit.estimate import estimate

    vllm = load_llm_catalog().engine("vllm")
    assert "q4_k_m" in vllm.experimental_formats and "q4_k_m" not in vllm.formats
    gguf = estimate("llama-3-8b", "q4_k_m", "rtx-4090", engine="vllm")
    awq = estimate("llama-3-8b", "awq-int4", "rtx-4090", engine="vllm")
    assert gguf.fits and any("experimental" in n and "--tokenizer" in n for n in gguf.assumptions)
    assert not any("experimental" in n for n in awq.assumptions)


def test_every_engine_loads_what_its_catalog_entry_lists() -> None:
    from rigkit.estimate import estimate

    for fmt in ("q4_k_m", "q8_0", "f16"):  # llama.cpp loads all three (GGUF)
        assert fmt in load_llm_catalog().engine("llama.cpp").formats
        assert estimate("llama-3-8b", fmt, "rtx-4090", engine="llama.cpp").fits
