"""Score the estimator on the llama.cpp calibration rows, with cross-validation.

    .venv/bin/python scripts/eval_estimator.py

Prints the mean absolute percentage error (MAPE) of decode and prefill speed:
  1. the packaged parameters (data/efficiency.yaml) on all rows (targets: decode <= 10%, prefill <= 15%),
  2. leave-one-GPU-out: fit on one GPU's rows, predict the other GPU's rows,
  3. fit on F16 rows, predict Q4_K_M rows (and the reverse),
  4. baselines: a bare roofline (peak bandwidth / bytes per token, peak FLOPS / FLOPs per token)
     and the same with the usual 80% / 50% efficiency factors,
  5. the prompt GEMM peak the model takes for llama.cpp on every catalog GPU (TFLOPS).
Exits 1 when the packaged parameters miss the targets.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_estimator import start_params

from rigkit.estimate.fit import Measurement, fit, mape, packaged_calibration_rows
from rigkit.estimate.params import Params, packaged_params
from rigkit.estimate.resolve import gpu_nums, model_nums

DECODE_TARGET = 10.0
PREFILL_TARGET = 15.0


def roofline_mape(
    rows: Sequence[Measurement], bw_factor: float, flops_factor: float
) -> tuple[float, float]:
    """MAPE of a bare roofline: decode = BW x f / weight bytes read, prefill = FLOPS x f / (2 x params)."""
    errs: dict[str, list[float]] = {"decode": [], "prefill": []}
    for r in rows:
        m = model_nums(r.model, r.quant)
        g = gpu_nums(r.gpu)
        if r.metric == "decode":
            pred = g.bw * bw_factor / (m.n_layers * m.layer_bytes + m.out_bytes)
        else:
            pred = g.f16_acc32 * flops_factor / (m.n_layers * m.flops_layer + m.flops_out)
        errs[r.metric].append(abs(pred - r.value) / r.value * 100)
    return (sum(errs["decode"]) / len(errs["decode"]), sum(errs["prefill"]) / len(errs["prefill"]))


def line(label: str, rows: Sequence[Measurement], params: Params) -> tuple[float, float]:
    d = mape(rows, params, "decode")
    p = mape(rows, params, "prefill")
    print(f"  {label:<44} decode {d:5.1f}%   prefill {p:5.1f}%   ({len(rows)} rows)")
    return d, p


def tensor_rates(params: Params) -> None:
    """The tensor rate llama.cpp's prompt GEMMs are modelled to reach on each catalog GPU."""
    from rigkit.catalog import load_catalog
    from rigkit.estimate.speed import sustained_clock_share, tensor_flops

    ep = params.engine("llama.cpp")
    print("5. prompt GEMM peak for llama.cpp (no measurements: what the model assumes per GPU)")
    print(f"  {'gpu':<16} {'class':<10} {'datasheet':>9} {'modelled':>9}  clock held")
    for gid in load_catalog().gpus:
        g = gpu_nums(gid)
        sheet = g.gemm_flops("f16", "dense-f16", ep.gemm_accumulate)
        rate = tensor_flops(g, params, ep, sheet)
        share = sustained_clock_share(g, params)
        print(
            f"  {gid:<16} {g.chip_class:<10} {sheet / 1e12:9.0f} {rate / 1e12:9.0f}  {share:7.0%}"
        )


def main() -> int:
    rows = packaged_calibration_rows()
    print("1. packaged parameters (src/rigkit/estimate/data/efficiency.yaml), all rows")
    d, p = line("all rows", rows, packaged_params())
    for gpu in sorted({r.gpu for r in rows}):
        line(f"  {gpu}", [r for r in rows if r.gpu == gpu], packaged_params())
    start = start_params()
    print("2. leave-one-GPU-out (fit on one GPU, predict the other)")
    for held in sorted({r.gpu for r in rows}):
        train = [r for r in rows if r.gpu != held]
        test = [r for r in rows if r.gpu == held]
        fitted, _ = fit(train, start)
        line(f"fit {'+'.join(sorted({r.gpu for r in train}))} -> predict {held}", test, fitted)
    print("3. leave-one-format-out (fit on one weight format, predict the other)")
    for held in sorted({r.quant for r in rows}):
        train = [r for r in rows if r.quant != held]
        test = [r for r in rows if r.quant == held]
        fitted, _ = fit(train, start)
        line(f"fit {'+'.join(sorted({r.quant for r in train}))} -> predict {held}", test, fitted)
    print("4. baselines on all rows")
    for label, bwf, ff in (
        ("bare roofline (100% / 100%)", 1.0, 1.0),
        ("roofline x 80% bandwidth / 50% FLOPS", 0.8, 0.5),
    ):
        rd, rp = roofline_mape(rows, bwf, ff)
        print(f"  {label:<44} decode {rd:5.1f}%   prefill {rp:5.1f}%")
    tensor_rates(packaged_params())
    ok = d <= DECODE_TARGET and p <= PREFILL_TARGET
    print(
        f"targets: decode <= {DECODE_TARGET:g}%, prefill <= {PREFILL_TARGET:g}%: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
