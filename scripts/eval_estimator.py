"""Score the estimator on the llama.cpp calibration rows, with cross-validation.

    .venv/bin/python scripts/eval_estimator.py

Prints the mean absolute percentage error (MAPE) of decode and prefill speed:
  1. the packaged parameters (data/efficiency.yaml) on all rows (targets: decode <= 10%, prefill <= 15%),
  2. leave-one-GPU-out: fit on one GPU's rows, predict the other GPU's rows,
  3. fit on F16 rows, predict Q4_K_M rows (and the reverse),
  4. baselines: a bare roofline (peak bandwidth / bytes per token, peak FLOPS / FLOPs per token)
     and the same with the usual 80% / 50% efficiency factors,
  5. the prompt GEMM peak the model takes for llama.cpp on every catalog GPU (TFLOPS),
  6. with --heldout FILE.csv (repeatable): rows the parameters were not fitted on (other GPUs,
     multi-GPU layer split, other models), in the calibration CSV's columns (gpu, n_gpus, model,
     quant, metric ppN/tgN, tokens_per_s), scored by GPU count and by GPU, worst rows listed,
  7. leave-one-GPU-count-out on the multi-GPU rows (data/llamacpp-llama3-multi-gpu.csv: 2, 4, 6,
     8 GPUs): fit on the single-GPU rows and the other counts, predict the held-out count
     (targets: decode <= 6%, prefill <= 12%), and the memory check: every configuration that ran
     in either file must be predicted to fit.
Exits 1 when the packaged parameters miss the targets (on the held-out rows too, when given).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_estimator import start_params

from rigkit.errors import RigkitError
from rigkit.estimate.fit import (
    Measurement,
    fit,
    mape,
    packaged_calibration_rows,
    predict,
    rows_from_records,
)
from rigkit.estimate.params import Params, packaged_params
from rigkit.estimate.resolve import gpu_nums, model_nums

DECODE_TARGET = 10.0
PREFILL_TARGET = 15.0
CV_DECODE_TARGET = 6.0
CV_PREFILL_TARGET = 12.0


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


def heldout(paths: Sequence[str], params: Params) -> tuple[float, float]:
    """Score ``params`` on held-out CSV rows; (decode MAPE, prefill MAPE) over the rows that run."""
    rows: list[Measurement] = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            rows += rows_from_records(list(csv.DictReader(f)), {"split": "layer"}, Path(path).name)
    preds = predict(rows, params)
    errs = [
        (r, y, math.nan if y is None else (y - r.value) / r.value * 100.0)
        for r, y in zip(rows, preds, strict=True)
    ]
    print(f"6. held-out rows ({len(rows)} from {', '.join(Path(p).name for p in paths)})")

    def score(
        label: str, sel: list[tuple[Measurement, float | None, float]]
    ) -> tuple[float, float]:
        out = []
        for metric in ("decode", "prefill"):
            e = [abs(x) for r, _, x in sel if r.metric == metric and not math.isnan(x)]
            out.append(sum(e) / len(e) if e else math.nan)
        n_run = sum(1 for _, y, _ in sel if y is not None)
        print(
            f"  {label:<44} decode {out[0]:5.1f}%   prefill {out[1]:5.1f}%   "
            f"({n_run} of {len(sel)} rows run)"
        )
        return out[0], out[1]

    d, p = score("all held-out rows", errs)
    for n in sorted({r.gpus for r in rows}):
        score(f"  {n} GPU{'s' if n > 1 else ''}", [e for e in errs if e[0].gpus == n])
    for gpu in sorted({r.gpu for r in rows}):
        score(f"  {gpu}", [e for e in errs if e[0].gpu == gpu])
    for r, y, _ in errs:
        if y is None:
            print(f"  does not run here: {r.gpus}x {r.gpu} {r.model} {r.quant} ({r.label})")
    worst = sorted((e for e in errs if not math.isnan(e[2])), key=lambda e: -abs(e[2]))[:8]
    print("  largest errors:")
    for r, y, x in worst:
        ph = f"pp{r.prompt}" if r.metric == "prefill" else f"tg{r.gen}"
        print(
            f"    {r.gpus}x {r.gpu:<16} {r.model:<12} {r.quant:<7} {ph:<7} "
            f"measured {r.value:8.1f}  estimated {y:8.1f}  {x:+6.1f}%"
        )
    return d, p


def fits_check(rows: Sequence[Measurement], params: Params) -> list[str]:
    """Configurations that ran (each row's prompt or generation length) but are predicted not to fit."""
    from rigkit.estimate import estimate

    out = []
    for r in rows:
        e = estimate(
            r.model,
            r.quant,
            r.gpu,
            gpus=r.gpus,
            split=r.split,
            prompt=r.prompt,
            gen=r.gen,
            params=params,
        )
        if not e.fits:
            ph = f"pp{r.prompt}" if r.metric == "prefill" else f"tg{r.gen}"
            out.append(
                f"{r.gpus}x {r.gpu} {r.model} {r.quant} {ph}: {e.memory_gb_per_gpu:.2f} of "
                f"{e.vram_gb_per_gpu:.2f} GB"
            )
    return out


def gpu_count_cv(rows: Sequence[Measurement], start: Params) -> tuple[float, float]:
    """Leave one GPU count of the multi-GPU rows out: fit on the rest, score the count left out."""
    print(
        "7. leave-one-GPU-count-out (fit on 1 GPU + the other counts, predict the count left out)"
    )
    worst_d = worst_p = 0.0
    errs_d: list[float] = []
    errs_p: list[float] = []
    for n in sorted({r.gpus for r in rows if r.gpus > 1}):
        train = [r for r in rows if r.gpus != n]
        test = [r for r in rows if r.gpus == n]
        fitted, _ = fit(train, start)
        d, p = line(f"fit without {n} GPUs -> predict {n} GPUs", test, fitted)
        worst_d, worst_p = max(worst_d, d), max(worst_p, p)
        for r, y in zip(test, predict(test, fitted), strict=True):
            e = math.inf if y is None else abs(y - r.value) / r.value * 100.0
            (errs_d if r.metric == "decode" else errs_p).append(e)
    d_all = sum(errs_d) / len(errs_d)
    p_all = sum(errs_p) / len(errs_p)
    print(
        f"  {'all counts, each predicted unseen':<44} decode {d_all:5.1f}%   prefill {p_all:5.1f}%"
    )
    return d_all, p_all


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--heldout", action="append", default=[], metavar="CSV", help="held-out rows to score"
    )
    ap.add_argument(
        "--quick", action="store_true", help="skip the cross-validation fits (sections 2, 3, 7)"
    )
    args = ap.parse_args(argv)
    every = packaged_calibration_rows(multi_gpu=True)
    rows = [r for r in every if r.gpus == 1]
    print("1. packaged parameters (src/rigkit/estimate/data/efficiency.yaml), all rows")
    d, p = line("all rows (1-8 GPUs)", every, packaged_params())
    for n in sorted({r.gpus for r in every}):
        line(
            f"  {n} GPU{'s' if n > 1 else ''}", [r for r in every if r.gpus == n], packaged_params()
        )
    for gpu in sorted({r.gpu for r in every}):
        line(f"  {gpu}", [r for r in every if r.gpu == gpu], packaged_params())
    start = start_params()
    not_fit = fits_check(every, packaged_params())
    print(f"   configurations that ran but are predicted not to fit: {len(not_fit)}")
    for x in not_fit:
        print(f"     {x}")
    ok_cv = not not_fit
    if not args.quick:
        cv_sections(rows, start)
    tensor_rates(packaged_params())
    if not args.quick:
        cd, cp = gpu_count_cv(every, start)
        ok_cv = ok_cv and cd <= CV_DECODE_TARGET and cp <= CV_PREFILL_TARGET
    ok = d <= DECODE_TARGET and p <= PREFILL_TARGET and ok_cv
    if args.heldout:
        try:
            hd, hp = heldout(args.heldout, packaged_params())
        except (OSError, RigkitError) as e:
            print(f"eval_estimator: {e}", file=sys.stderr)
            return 2
        ok = ok and not hd > DECODE_TARGET and not hp > PREFILL_TARGET
    print(
        f"targets: decode <= {DECODE_TARGET:g}%, prefill <= {PREFILL_TARGET:g}% on all rows; "
        + (
            ""
            if args.quick
            else f"leaving out a GPU count decode <= {CV_DECODE_TARGET:g}%, prefill <= "
            f"{CV_PREFILL_TARGET:g}%; "
        )
        + f"every configuration that ran fits: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


def cv_sections(rows: Sequence[Measurement], start: Params) -> None:
    """Sections 2-4: leave one GPU / one format out of the single-GPU rows, and the baselines."""
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


if __name__ == "__main__":
    sys.exit(main())
