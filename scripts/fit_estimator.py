"""Fit the estimator's efficiency parameters to the packaged llama.cpp calibration rows.

    .venv/bin/python scripts/fit_estimator.py            # writes src/rigkit/estimate/data/efficiency.yaml
    .venv/bin/python scripts/fit_estimator.py --dry-run  # prints the fit only

The rows are src/rigkit/estimate/data/llamacpp-llama3-single-gpu.csv (a copy of the shared
calibration set; its source_file column names the notebook each row comes from). The fit starts
from INITIAL below every time, so rerunning it gives the same result.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from rigkit.estimate.fit import fit, packaged_calibration_rows
from rigkit.estimate.params import Params, packaged_params

OUT = (
    Path(__file__).resolve().parent.parent
    / "src"
    / "rigkit"
    / "estimate"
    / "data"
    / "efficiency.yaml"
)

#: starting values (physical guesses); the kernel classes without calibration rows keep these priors
INITIAL: dict[str, object] = {
    "bandwidth_efficiency": {"default": 0.85},
    # int4 (AWQ/GPTQ Marlin), exl2 and fp8 have no rows in the calibration set: priors
    "quant_decode_efficiency": {"gguf": 0.88, "int4": 0.85, "exl2": 0.85, "fp8": 0.95},
    "layer_overhead_us": 50.0,
    "attn_decode_fp32_efficiency": 0.03,
    "prefill_tensor_efficiency": 0.45,
    "prefill_attn_efficiency": 0.1,
    "dequant_passes": 1.0,
}

HEADER = """\
# Efficiency parameters of the estimator, fitted by scripts/fit_estimator.py to the llama.cpp rows
# in data/llamacpp-llama3-single-gpu.csv (rerun the script to refit). Meaning of each:
#   bandwidth_efficiency: fraction of the GPU's peak DRAM bandwidth decode reaches, per architecture
#     (default: geometric mean of the fitted architectures, used for the others)
#   quant_decode_efficiency: x bandwidth_efficiency for a kernel class (gguf: k-quant mmvq dequant);
#     int4/exl2/fp8 are priors (no rows)
#   layer_overhead_us: fixed time per layer per decode step (kernel launches, norms, rope)
#   attn_decode_fp32_efficiency: decode attention arithmetic (4 x heads x head_dim per position per
#     layer) as a fraction of FP32 peak
#   prefill_tensor_efficiency: prompt GEMMs as a fraction of tensor FLOPS (FP16 accumulate for llama.cpp)
#   prefill_attn_efficiency: prompt attention GEMMs as a fraction of tensor FLOPS
#   dequant_passes: F16-sized weight passes per prompt micro-batch for dequantised GGUF weights
"""


def _round(x: object) -> object:
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, float):
        return float(f"{x:.4g}")
    return x


def start_params() -> Params:
    """The packaged priors with every fitted value replaced by INITIAL (not merged with the last fit)."""
    return replace(packaged_params(), **INITIAL)  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="print the fit, do not write the file")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = packaged_calibration_rows()
    start = start_params()
    fitted, record = fit(rows, start)
    fitted = replace(fitted, source="fit")
    data = {
        "fitted": _round(fitted.fitted_dict()),
        "fit": {
            "data": "llamacpp-llama3-single-gpu.csv",
            "rows": record["rows"],
            "parameters": record["parameters"],
            "mape_decode_pct": round(record["mape_decode_pct"], 2),
            "mape_prefill_pct": round(record["mape_prefill_pct"], 2),
        },
    }
    text = HEADER + yaml.safe_dump(data, sort_keys=False)
    print(text, end="")
    if not args.dry_run:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
