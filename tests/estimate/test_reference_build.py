"""The reference build's claims (4x RTX 4090, Threadripper PRO 7975WX, 512 GB) and split modes."""

from __future__ import annotations

from typing import Any

import pytest

from rigkit.errors import EstimateError, UnknownIdError
from rigkit.estimate import estimate
from rigkit.estimate.params import packaged_params

HOST: dict[str, Any] = {"cpu": "threadripper-pro-7975wx", "ram_gb": 512}


def test_70b_f16_does_not_fit_without_offload() -> None:
    # 141.1 GB of weights > 4 x 24 GB = 96 GB
    e = estimate("llama-3-70b", "f16", "rtx-4090", gpus=4, **HOST)
    assert not e.fits and e.offload
    vllm = estimate("llama-3-70b", "f16", "rtx-4090", gpus=4, engine="vllm", split="tensor")
    assert not vllm.fits and not vllm.runnable and vllm.decode_tokens_per_s is None


def test_70b_q4_fits_layer_and_tensor_split() -> None:
    layer = estimate("llama-3-70b", "q4_k_m", "rtx-4090", gpus=4, split="layer")
    # vLLM does not load GGUF: its tensor split runs the AWQ weights
    tensor = estimate("llama-3-70b", "awq-int4", "rtx-4090", gpus=4, engine="vllm", split="tensor")
    assert layer.fits and tensor.fits
    lt, tt = dict(layer.decode_terms), dict(tensor.decode_terms)
    # layer split: 3 hops of the hidden state, no all-reduce: 3 x (104.6 us fitted hand-over
    #   + 2 x 8192 x 4 B / 25.2 GB/s = 2.6 us) = 3 x 107.2 us = 0.3216 ms
    assert lt["interconnect"] == pytest.approx(0.3216, rel=0.01)
    # tensor split without P2P: 2 all-reduces x 80 layers = 160, each 30 us latency
    #   + 2 x 3/4 x 16,384 B / (25.2 GB/s / 2) = 1.95 us -> 160 x 31.95 us = 5.112 ms
    assert tt["interconnect"] == pytest.approx(5.112, rel=0.01)
    # every GPU reads a quarter of the weights at once: the weights term is 1/4 of the same
    # engine's pipeline split, where the stages read their layers one after another
    pipe = estimate("llama-3-70b", "awq-int4", "rtx-4090", gpus=4, engine="vllm", split="pipeline")
    assert tt["weights"] == pytest.approx(dict(pipe.decode_terms)["weights"] / 4, rel=0.02)
    assert tensor.decode_tokens_per_s is not None and layer.decode_tokens_per_s is not None
    assert tensor.decode_tokens_per_s > layer.decode_tokens_per_s
    assert any("160 per token" in a and "5.1 ms" in a for a in tensor.assumptions)
    assert any("sum over GPUs" in a for a in layer.assumptions)


def test_405b_needs_offload_bounded_by_cpu_ram() -> None:
    e = estimate("llama-3.1-405b", "q4_k_m", "rtx-4090", gpus=4, **HOST)
    assert e.offload and e.runnable and e.bound == "cpu-ram"
    assert e.cpu_layers is not None and e.cpu_layers > 60
    # the CPU part alone: >= 60 layers x ~1.9 GB at 250 GB/s x 0.7 = 175 GB/s -> > 0.65 s per token,
    # so well under 2 tok/s: the 8-12 tok/s claim is not physically possible here
    assert e.decode_tokens_per_s is not None and e.decode_tokens_per_s < 2.0


def test_offload_cpu_time_arithmetic() -> None:
    e = estimate("llama-3-70b", "f16", "rtx-4090", gpus=4, **HOST)
    eff = packaged_params().cpu_bandwidth_efficiency
    t = dict(e.decode_terms)
    # CPU part (24 layers offloaded, see test_memory): 24 x 1,711,341,977.6 B + LM head
    #   2,101,346,304 B = 43,173,553,766.4 B at 250 GB/s x efficiency; KV and per-layer overhead
    #   add well under 1%
    expect_ms = 43_173_553_766.4 / (250e9 * eff) * 1e3
    assert t["cpu_layers"] == pytest.approx(expect_ms, rel=0.01)
    assert e.bound == "cpu-ram"


def test_batch_raises_aggregate_not_per_sequence() -> None:
    one = estimate("llama-3-8b", "q4_k_m", "rtx-4090", batch=1)
    eight = estimate("llama-3-8b", "q4_k_m", "rtx-4090", batch=8)
    assert one.aggregate_tokens_per_s is not None and eight.aggregate_tokens_per_s is not None
    # weights are read once per step for all 8 sequences: aggregate grows several-fold
    assert eight.aggregate_tokens_per_s > 4 * one.aggregate_tokens_per_s
    assert eight.decode_tokens_per_s is not None and one.decode_tokens_per_s is not None
    assert eight.decode_tokens_per_s < one.decode_tokens_per_s


def test_zero_prompt_and_zero_gen() -> None:
    e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=0, gen=64)
    assert e.prefill_tokens_per_s is None and e.ttft_s is None and e.decode_tokens_per_s is not None
    e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=64, gen=0)
    assert e.decode_tokens_per_s is None and e.prefill_tokens_per_s is not None
    d = e.to_dict()
    assert d["decode_tokens_per_s"] is None and "breakdown" in d and d["fits"] is True


def test_load_time_arithmetic() -> None:
    e = estimate("llama-3-8b", "f16", "rtx-4090", disk_read_gb_s=10.0)
    t = dict(e.load_terms)
    # file 16,061,054,976 B at 10 GB/s = 1.6061 s
    assert t["disk_read_s"] == pytest.approx(1.6061054976, rel=1e-9)
    # 15,010,381,824 B to the GPU over PCIe 4.0 x16: 1.969 x 16 x 0.8 = 25.2032 GB/s -> 0.59558 s
    assert t["host_to_device_s"] == pytest.approx(15.010381824 / 25.2032, rel=1e-6)
    # reading and uploading overlap: 2 s engine start + the slower of the two = 3.6061 s
    assert e.load_time_s == pytest.approx(3.6061054976, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"gpus": 0}, EstimateError),
        ({"batch": 0}, EstimateError),
        ({"prompt": 0, "gen": 0}, EstimateError),
        ({"split": "tensor", "gpus": 2}, EstimateError),  # llama.cpp has no tensor split
        ({"engine": "vllm", "split": "tensor", "gpus": 3}, EstimateError),  # 64 heads / 3
        ({"ctx": 100}, EstimateError),  # smaller than prompt + gen
        ({"engine": "nope"}, UnknownIdError),
        ({"quant": "awq-int4"}, EstimateError),  # llama.cpp does not load AWQ
    ],
)
def test_invalid_input(kwargs: dict[str, object], exc: type[Exception]) -> None:
    args: dict[str, object] = {"model": "llama-3-70b", "quant": "q4_k_m", "gpu": "rtx-4090"}
    args.update(kwargs)
    with pytest.raises(exc):
        estimate(**args)  # type: ignore[arg-type]


def test_unknown_model_hint() -> None:
    with pytest.raises(UnknownIdError) as info:
        estimate("llama-3-71b", "q4_k_m", "rtx-4090")
    assert "llama-3-70b" in str(info.value)


def test_context_beyond_the_model_is_noted() -> None:
    # llama-3-8b was trained on 8,192 tokens; 9,000 + 128 = 9,128 is past it
    e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=9000, gen=128)
    assert e.max_context == 8192
    assert any(
        "context 9,128 is above the model's trained context of 8,192" in a for a in e.assumptions
    )
    inside = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=8000, gen=128)
    assert not any("trained context" in a for a in inside.assumptions)
