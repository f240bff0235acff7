"""Accuracy on the packaged llama.cpp calibration rows and the fitting machinery."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigkit.estimate.fit import Measurement, fit, mape, packaged_calibration_rows, predict
from rigkit.estimate.params import packaged_params


def test_calibration_rows_are_the_shared_set() -> None:
    rows = packaged_calibration_rows()
    # 2 GPUs x 2 formats x 8 metrics (pp512..pp8192, tg512..tg8192)
    assert len(rows) == 32
    tg = [r for r in rows if r.metric == "decode"]
    # llama-bench tgN generates N tokens from an empty context
    assert {(r.prompt, r.gen) for r in tg} == {(0, 512), (0, 1024), (0, 4096), (0, 8192)}
    assert {r.gpu for r in rows} == {"rtx-4090", "rtx-3090"}


def test_packaged_params_meet_accuracy_targets() -> None:
    rows = packaged_calibration_rows()
    p = packaged_params()
    assert mape(rows, p, "decode") <= 10.0
    assert mape(rows, p, "prefill") <= 15.0


def test_fitted_params_are_physical() -> None:
    p = packaged_params()
    for arch in ("ada", "ampere"):
        assert 0.5 < p.bw_eff(arch) <= 1.0
    assert 0.2 < p.prefill_tensor_efficiency <= 1.0
    assert 0 < p.layer_overhead_us < 500


def test_fit_reproduces_synthetic_rows() -> None:
    # without SM issue limits (one GPU cannot tell them from bandwidth efficiency)
    base = replace(packaged_params(), issue_bytes_per_sm_clock={})
    truth = base.with_fitted({"bandwidth_efficiency": {"ada": 0.8}, "layer_overhead_us": 40.0})
    shapes = [("rtx-4090", "f16", g) for g in (256, 2048, 8192)] + [
        ("rtx-4090", "q4_k_m", g) for g in (256, 8192)
    ]
    rows = [
        Measurement(gpu, 1, "llama-3-8b", q, "llama.cpp", None, 0, g, 1, "decode", 1.0)
        for gpu, q, g in shapes
    ]
    values = predict(rows, truth)
    rows = [replace(r, value=v) for r, v in zip(rows, values, strict=True)]  # type: ignore[arg-type]
    start = base.with_fitted({"bandwidth_efficiency": {"ada": 0.9}, "layer_overhead_us": 60.0})
    fitted, record = fit(rows, start, ridge=0.0, tol=1e-5)
    # synthetic rows from known parameters: the fit reproduces them to well under 0.01 %
    # (the search stops at a step of 1e-5 in log space)
    assert record["mape_decode_pct"] < 0.01
    # One model at one weight size cannot tell bandwidth efficiency, the GGUF kernel factor and
    # the per-layer overhead apart (each token's time is weights / (bw x q) + layers x overhead):
    # the fit lands on another point of that valley, so the parameters themselves are not
    # compared with the truth. What must hold is that the fitted set predicts configurations
    # it did not see as the truth does: f16 at depth 4096 and q4_k_m at depth 2048, within 0.01 %.
    held = [
        Measurement("rtx-4090", 1, "llama-3-8b", q, "llama.cpp", None, 0, g, 1, "decode", 1.0)
        for q, g in (("f16", 4096), ("q4_k_m", 2048))
    ]
    for want, got in zip(predict(held, truth), predict(held, fitted), strict=True):
        assert want is not None and got is not None
        assert got == pytest.approx(want, rel=1e-4)
    # and the start (bandwidth efficiency 0.9, 60 us per layer) does not: on f16, where the
    # GGUF kernel factor cannot compensate, it is 7.6 % off (0.98 % on q4_k_m)
    off = [
        abs(got / want - 1)
        for want, got in zip(predict(held, truth), predict(held, start), strict=True)
        if want is not None and got is not None
    ]
    assert max(off) > 0.05
