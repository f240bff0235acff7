"""Fit the estimator's efficiency parameters to the packaged llama.cpp calibration rows.

    .venv/bin/python scripts/fit_estimator.py            # writes src/rigkit/estimate/data/efficiency.yaml
    .venv/bin/python scripts/fit_estimator.py --dry-run  # prints the fit only

The rows are src/rigkit/estimate/data/llamacpp-llama3-single-gpu.csv and
llamacpp-llama3-multi-gpu.csv (copies of the shared calibration set; the source_file column names
the notebook each row comes from): 1, 2, 4, 8x RTX 4090 and 1, 2, 4, 6x RTX 3090. The fit starts
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
    # one GPU-independent DRAM efficiency (the SM issue term carries the differences between GPUs)
    "bandwidth_efficiency": {"default": 0.85},
    # int4 (AWQ/GPTQ Marlin), exl2 and fp8 have no rows in the calibration set: priors
    "quant_decode_efficiency": {"gguf": 0.88, "int4": 0.85, "exl2": 0.85, "fp8": 0.95},
    # bytes per SM per clock of llama.cpp's mat-vec kernels: F16 (dense) and k-quant (gguf)
    "issue_bytes_per_sm_clock": {"dense": 6.0, "gguf": 4.0},
    # llama.cpp's decode graph launches ~24 kernels per Llama layer (norms, rope, KV copies,
    # softmax, adds, 7 mat-vecs), each with a launch-to-completion floor of ~3 us: ~70 us. The
    # calibration rows barely constrain it (both GPUs have ~1 TB/s; the loss is flat from 50 to
    # 75 us), so this starting value matters.
    "layer_overhead_us": 70.0,
    "attn_decode_fp32_efficiency": 0.03,
    "prefill_tensor_efficiency": 0.45,
    "prefill_attn_efficiency": 0.1,
    "dequant_passes": 1.0,
    # handing a prompt micro-batch's hidden state to the next GPU of a layer split: a copy
    # through host memory (no P2P on GeForce) and the event wait that orders the two GPUs
    "hop_latency_us": 100.0,
}

HEADER = """\
# Efficiency parameters of the estimator, fitted by scripts/fit_estimator.py to the llama.cpp rows
# in data/llamacpp-llama3-single-gpu.csv and data/llamacpp-llama3-multi-gpu.csv (rerun to refit). Meaning of each:
#   bandwidth_efficiency: fraction of the GPU's peak DRAM bandwidth decode reaches; one value
#     (default) for every GPU. A profile may add per-architecture keys (ada, ampere, ...)
#   quant_decode_efficiency: x bandwidth_efficiency for a kernel class (gguf: k-quant mmvq dequant);
#     int4/exl2/fp8 are priors (no rows)
#   issue_bytes_per_sm_clock: weight bytes a llama.cpp mat-vec kernel streams per SM per clock
#     cycle at most (dense: F16/F32, gguf: k-quants); decode streams at the smooth minimum of
#     DRAM x efficiencies and SMs x boost clock x this (priors.yaml: issue_smoothness)
#   layer_overhead_us: fixed time per layer per decode step, the same on every GPU (host-side
#     launches of ~24 small kernels)
#   attn_decode_fp32_efficiency: decode attention arithmetic (4 x heads x head_dim per position per
#     layer) as a fraction of FP32 peak
#   prefill_tensor_efficiency: prompt GEMMs as a fraction of tensor FLOPS (FP16 accumulate for llama.cpp)
#   prefill_attn_efficiency: prompt attention GEMMs as a fraction of tensor FLOPS
#   dequant_passes: F16-sized weight passes per prompt micro-batch for dequantised GGUF weights
#   hop_latency_us: fixed cost of handing a micro-batch (prefill) or a token (decode) to the next
#     GPU of a layer split, besides the copy's bytes over PCIe (through host memory without P2P)
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
    rows = packaged_calibration_rows(multi_gpu=True)
    start = start_params()
    fitted, record = fit(rows, start)
    fitted = replace(fitted, source="fit")
    data = {
        "fitted": _round(fitted.fitted_dict()),
        "fit": {
            "data": "llamacpp-llama3-single-gpu.csv + llamacpp-llama3-multi-gpu.csv",
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
