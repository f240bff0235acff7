"""Capacity for `rigkit plan`: the model table and the check of the spec's claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.estimate.capacity import models_disk_read_gb_s, plan_capacity
from rigkit.spec import load_build

REF = Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml"


@pytest.fixture(scope="module")
def ref():  # type: ignore[no-untyped-def]
    build = load_build(REF)
    return build, plan_capacity(build)


def test_reference_claims_are_checked(ref) -> None:  # type: ignore[no-untyped-def]
    _build, cap = ref
    checks = {c.claim: c for c in cap.expectations}
    fp16 = next(c for c in checks.values() if "40 tokens/s" in c.claim)
    # 141 GB of FP16 weights on 4 x 24 GiB = 96 GiB (4 x 25.77e9 = 103 GB): vLLM cannot load it
    assert (
        fp16.plausible is False
        and "does not fit" in fp16.reason
        and "96 GiB (103 GB)" in fp16.reason
    )
    assert "CPU RAM bandwidth" in fp16.reason
    big = next(c for c in checks.values() if "405B" in c.claim)
    assert big.plausible is False and big.estimate is not None and big.estimate < 2
    assert "CPU RAM bandwidth" in big.reason


def test_reference_table(ref) -> None:  # type: ignore[no-untyped-def]
    _, cap = ref
    rows = {(r.model, r.quant, r.engine): r for r in cap.rows}
    assert rows[("llama-3-70b", "q4_k_m", "llama.cpp")].fits
    assert rows[("llama-3-70b", "f16", "llama.cpp")].offload
    assert rows[("llama-3.1-405b", "q4_k_m", "llama.cpp")].bound == "cpu-ram"
    assert ("llama-3-70b", "awq-int4", "vllm") in rows
    assert cap.to_dict()["gpus"] == 4


def test_models_disk_is_the_raid_group(ref) -> None:  # type: ignore[no-untyped-def]
    build, _ = ref
    # two Crucial T705 in RAID 0 for models: 2 x the drive's sequential read
    t705 = next(d.drive for d in build.drives if d.raid_group == "models")
    assert models_disk_read_gb_s(build) == pytest.approx(2 * t705.seq_read_mb_s / 1000)


def test_what_fits_names_the_nearest_configurations() -> None:
    from rigkit.estimate import estimate
    from rigkit.estimate.capacity import what_fits

    e = estimate("llama-3-70b", "f16", "rtx-4090", gpus=4)
    got = what_fits(e, prompt=512, gen=128)
    # F16 is 141 GB: too big for 4 x 25.8 GB. The largest smaller format is Q8_0 (~75 GB; the
    # first GPU holds 21 of llama.cpp's 81 layer slots: 21 x 0.909 GB = 19.09 GB of weights
    # + 0.2 GB context + 0.31 GB buffer + 0.06 GB KV = 19.7 GB); F16 itself needs 141 / 25.8
    # -> 6 GPUs (23.5 GB of weights each; 5 would need 28.2 GB each)
    assert got[0].startswith("q8_0 on 4x rtx-4090 (19.7 GB per GPU")
    assert got[1].startswith("f16 on 6x rtx-4090")
    # Llama-3.1-405B Q4_K_M (~243 GB) does not fit on up to 8 RTX 4090s (206 GB), nor does any
    # smaller format on 4 of them (Q2_K is ~150 GB)
    big = estimate("llama-3.1-405b", "q4_k_m", "rtx-4090", gpus=4)
    assert what_fits(big, prompt=512, gen=128) == []
    assert what_fits(estimate("llama-3-8b", "q4_k_m", "rtx-4090")) == []  # it fits already


def test_load_claim_that_cannot_load_reads_as_a_refutation() -> None:
    # the seed's "70B model (~140GB) loads in 5 seconds": llama-3-70b f16 is ~141 GB against
    # 4 x 24 GiB = 96 GiB (103 GB) of GPU memory, so it never loads onto these GPUs. Before, the
    # reason ended "reading 141 GB from disk alone takes ~4.9 s", which read as support.
    checks = plan_capacity(load_build(REF)).expectations
    (c,) = [c for c in checks if c.metric == "load_time_s"]
    assert c.plausible is False
    assert "does not fit with vllm, so it cannot be loaded onto these GPUs in any time" in c.reason
    assert c.reason.endswith("before the copy to GPU memory and the engine start")
    assert "decode" not in c.reason  # decode speed says nothing about a load-time claim


def test_a_claim_and_its_table_row_are_one_figure() -> None:
    # the 405B q4_k_m claim (llama.cpp, 4 GPUs, no prompt/gen given) is the table's row: the same
    # 8,192-token context, so the same estimate and, printed, the same three figures. Before, the
    # claim allocated prompt + gen = 640 tokens and showed 1.06 / 1.1 against the table's 0.99.
    from rigkit.estimate.result import fmt_sig
    from rigkit.report.capacity import expectation_cells

    cap = plan_capacity(load_build(REF))
    (row,) = [
        r
        for r in cap.rows
        if (r.model, r.quant, r.engine) == ("llama-3.1-405b", "q4_k_m", "llama.cpp")
    ]
    (claim,) = [c for c in cap.expectations if "405B" in c.claim]
    assert claim.estimate == row.decode_tokens_per_s
    shown = fmt_sig(row.decode_tokens_per_s)
    assert f"estimate ~{shown} tok/s" in claim.reason
    assert expectation_cells(claim)[2] == f"{shown} tok/s"  # the claims table's estimate column
