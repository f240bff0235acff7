"""Memory formulas, fit boundaries and offload placement, against hand-computed numbers."""

from __future__ import annotations

import pytest

from rigkit.estimate import estimate
from rigkit.estimate.memory import compute_buffer, engine_nums, kv_bytes, split_layers
from rigkit.estimate.resolve import cpu_bandwidth, model_nums


def test_kv_cache_llama3_70b_8k() -> None:
    m = model_nums("llama-3-70b", "f16")
    # GQA: 2 (K, V) x 80 layers x 8 kv heads x 128 head dim x 2 bytes = 327,680 B per token
    assert m.kv_token_bytes(1) == 327_680
    # x 8192 tokens = 2,684,354,560 B (2.684e9)
    assert kv_bytes(m, 8192) == 2_684_354_560
    # a 20-layer share of it (one GPU of four in a layer split): 2,684,354,560 / 4 = 671,088,640
    assert kv_bytes(m, 8192, layers=20) == 671_088_640


def test_weights_llama3_70b_f16() -> None:
    m = model_nums("llama-3-70b", "f16")
    # per layer: q 8192x8192 + k,v 8192x1024 each + o 8192x8192 = 150,994,944 params;
    # MLP 3 x 8192 x 28672 = 704,643,072; at 2 B: 1,711,276,032 B; + norms (2 x 8192 per layer
    # + the final 8192, F32, spread over 80 layers): 1,318,912 x 4 / 80 = 65,945.6 B
    assert m.layer_bytes == pytest.approx(1_711_341_977.6, rel=1e-9)
    # embedding and LM head: 128,256 x 8192 x 2 B = 2,101,346,304 B each
    assert m.out_bytes == 2_101_346_304
    # whole file: 80 x 1,711,341,977.6 + 2 x 2,101,346,304 = 141,110,050,816 B = 141.1 GB > 96 GB
    assert m.total_bytes == pytest.approx(141_110_050_816, rel=1e-9)


def test_llama3_8b_f16_on_one_4090_memory_terms() -> None:
    e = estimate("llama-3-8b", "f16", "rtx-4090", prompt=512, gen=128)
    terms = dict(e.memory_terms)
    # llama.cpp keeps the embedding table in RAM: 16,061,054,976 (file) - 128,256 x 4096 x 2
    # (1,050,673,152) = 15,010,381,824 B on the GPU
    assert terms["weights"] == pytest.approx(15.010381824, rel=1e-9)
    # KV: 2 x 32 x 8 x 128 x 2 B = 131,072 B/token x 640 tokens = 83,886,080 B
    assert terms["kv_cache"] == pytest.approx(0.08388608, rel=1e-9)
    # compute buffer: 0.05 GB + max(512 x 128,256 x 4 (logits) = 262,668,288,
    #   512 x 640 x 32 x 4 (scores) = 41,943,040) = 312,668,288 B
    assert terms["compute_buffer"] == pytest.approx(0.312668288, rel=1e-9)
    # total with the 0.2 GB CUDA context: 15,606,936,192 B
    assert e.memory_gb_per_gpu == pytest.approx(15.606936192, rel=1e-9)
    assert e.fits and not e.offload


def test_context_capacity_llama3_8b_f16_4090() -> None:
    e = estimate("llama-3-8b", "f16", "rtx-4090", prompt=4000, gen=96, ctx=4096)
    # a "24 GB" card has 24 GiB = 25,769,803,776 B; free for KV + scores: 25,769,803,776
    # - 15,010,381,824 - 0.2e9 (CUDA) - 0.05e9 (base) = 10,509,421,952 B; each context token costs
    # 131,072 (KV) + 512 x 32 x 4 = 65,536 (scores) = 196,608 B
    # -> 53,453 tokens -> 53,453 // 4096 = 13 sequences of 4096
    assert e.max_concurrent_sequences == 13
    # the model's own limit (8192) caps the single-sequence context
    assert e.max_context == 8192


def test_fit_boundary_16gb_gpu() -> None:
    # rtx-4080, 16 GiB = 17,179,869,184 B; llama-3.1-8b f16 (same weights as llama-3-8b,
    # 15,010,381,824 B, but a 131,072-token limit). Past 262,668,288 / 65,536 = 4,008 tokens the
    # attention scores (65,536 B per token) outgrow the logits buffer, so each context token costs
    # 131,072 (KV) + 65,536 = 196,608 B of the 17,179,869,184 - 15,010,381,824 - 0.2e9 (CUDA)
    # - 0.05e9 (base) = 1,919,487,360 B left: 9,763 x 196,608 = 1,919,483,904 fits, 9,764 does not
    at = estimate("llama-3.1-8b", "f16", "rtx-4080", prompt=2000, gen=100, ctx=9763)
    assert at.fits
    assert at.max_context == 9763
    over = estimate(
        "llama-3.1-8b",
        "f16",
        "rtx-4080",
        prompt=2000,
        gen=100,
        ctx=9764,
        cpu="threadripper-pro-7975wx",
        ram_gb=64,
    )
    assert not over.fits and over.offload and over.runnable
    # per layer 436,240,896 B + KV 131,072 x 9,764 / 32 = 39,993,344 -> 476,234,240 B; room
    # 17,179,869,184 - 0.2e9 - (0.05e9 + 65,536 x 9,764 = 689,893,504) = 16,289,975,680 -> all 32
    # layers fit, leaving 1,050,480,000 B, 193,152 B short of the 1,050,673,152 B LM head: the
    # head runs from RAM
    assert (over.gpu_layers, over.cpu_layers) == (32, 0)
    assert over.cpu_ram_gb == pytest.approx(2 * 1.050673152, rel=1e-9)  # head + embedding table


def test_offload_split_llama3_70b_f16_on_4x4090() -> None:
    e = estimate(
        "llama-3-70b", "f16", "rtx-4090", gpus=4, cpu="threadripper-pro-7975wx", ram_gb=512
    )
    assert not e.fits and e.offload and e.runnable
    # per layer on a GPU: 1,711,341,977.6 B weights + KV 327,680 x 640 / 80 = 2,621,440 B
    #   = 1,713,963,417.6 B; room per GPU: 24 GiB = 25,769,803,776 - 0.4e9 - 312,668,288 (buffer)
    #   = 25,057,135,488 B -> 14.62 -> 14 layers per GPU, 56 on the GPUs, 80 - 56 = 24 on the CPU
    assert (e.gpu_layers, e.cpu_layers) == (56, 24)
    # RAM: 24 x 1,711,341,977.6 + LM head 2,101,346,304 (on the CPU in a partial offload)
    #   + embedding 2,101,346,304 + KV 24 x 4096 B x 640 = 62,914,560 -> 45.34 GB
    assert e.cpu_ram_gb == pytest.approx(45.3378146304, rel=1e-6)


def test_offload_not_runnable_without_ram() -> None:
    e = estimate(
        "llama-3.1-405b", "f16", "rtx-4090", gpus=4, cpu="threadripper-pro-7975wx", ram_gb=512
    )
    # ~812 GB of weights, ~720 GB of them on the CPU: more than 90% of 512 GB
    assert e.offload and not e.runnable
    assert e.decode_tokens_per_s is None


def test_split_layers_and_buffer() -> None:
    assert split_layers(80, 4) == [20, 20, 20, 20]
    assert split_layers(126, 4) == [32, 32, 31, 31]  # 126 = 4 x 31 + 2
    en = engine_nums("llama.cpp")
    m = model_nums("llama-3-70b", "q4_k_m")
    # 0.05e9 + max(512 x 128,256 x 4 = 262,668,288, 512 x 8192 x 64 x 4 = 1,073,741,824)
    assert compute_buffer(en, m, 8192) == pytest.approx(1_123_741_824)


def test_cpu_bandwidth_fabric_cap() -> None:
    # 8 channels x 5200 MT/s x 8 B = 332.8 GB/s theoretical, capped at 250 GB/s by 4 CCDs
    usable, theory = cpu_bandwidth(8, 5200, 250.0)
    assert theory == pytest.approx(332.8e9)
    assert usable == pytest.approx(250e9)
