"""The LLM catalog: parameter counts, KV-cache sizes, weight bytes, formats, engines, lookups.

Every expected number is worked out by hand in the comment beside it (GB = 1e9 B, GiB = 2^30 B).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rigkit.catalog import llm as llm_mod
from rigkit.catalog.llm import (
    LlmCatalog,
    ModelArch,
    exl2_id,
    load_llm_catalog,
    weight_bytes,
    weight_bytes_breakdown,
)
from rigkit.errors import CatalogError, EstimateError, UnknownIdError

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"

REQUIRED_MODELS = [
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "mistral-7b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen2.5-7b",
    "qwen2.5-14b",
    "qwen2.5-32b",
    "qwen2.5-72b",
    "gemma-2-9b",
    "gemma-2-27b",
    "deepseek-r1",
    "deepseek-v3.1",
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
]


@pytest.fixture(scope="module")
def cat() -> LlmCatalog:
    return load_llm_catalog()


def test_catalog_has_the_required_models_and_engines(cat: LlmCatalog) -> None:
    assert sorted(cat.models) == sorted(REQUIRED_MODELS)
    assert sorted(cat.engines) == ["exllamav2", "llama.cpp", "ollama", "tgi", "vllm"]
    assert load_llm_catalog() is cat  # cached: one load per process


# --- parameter counts --------------------------------------------------------------------------


def test_llama_3_8b_parameter_breakdown_exact(cat: LlmCatalog) -> None:
    p = cat.model("llama-3-8b").weight_params()
    # embedding: 128256 x 4096 = 525,336,576
    assert p["embedding"] == 525_336_576
    # attention per layer: q 4096x4096 = 16,777,216; k = v = 4096 x (8 x 128) = 4,194,304;
    # o 16,777,216 -> 41,943,040; x 32 layers = 1,342,177,280
    assert p["attention"] == 1_342_177_280
    # gated MLP: 3 x 4096 x 14336 = 176,160,768 per layer; x 32 = 5,637,144,576
    assert p["mlp"] == 5_637_144_576
    # norms: 2 per layer x 32 + final = 65 x 4096 = 266,240
    assert p["norms"] == 266_240
    assert p["output"] == 525_336_576  # untied LM head, same shape as the embedding
    assert p["experts"] == p["shared_experts"] == p["router"] == 0
    # 2 x 525,336,576 + 1,342,177,280 + 5,637,144,576 + 266,240 = 8,030,261,248 (8.03 B)
    assert cat.model("llama-3-8b").total_params() == 8_030_261_248
    # dense active: total less the embedding lookup: 8,030,261,248 - 525,336,576 = 7,504,924,672
    assert cat.model("llama-3-8b").active_params_per_token() == 7_504_924_672


@pytest.mark.parametrize(
    ("model_id", "published_b"),
    [
        # 2 x 1,050,673,152 emb/head + 80 x (2x67,108,864 + 2x8,388,608) attn
        # + 80 x 704,643,072 mlp = 70.55 B
        ("llama-3-70b", 70.6),
        # 2 x 2,101,346,304 + 126 x 570,425,344 attn + 126 x 2,617,245,696 mlp = 405.85 B
        ("llama-3.1-405b", 405.9),
        # 2 x 131,072,000 + 32 x 41,943,040 + 32 x 8 experts x 176,160,768 + router 1,048,576
        # = 46.70 B
        ("mixtral-8x7b", 46.7),
        # MTP module excluded (the 685 B on the model card includes its 14 B): 671.03 B
        ("deepseek-r1", 671.0),
        # 2 x 1,245,708,288 + 80 x (151,019,520 + 10,240 biases) + 80 x 726,663,168 = 72.71 B
        ("qwen2.5-72b", 72.7),
        # tied: 1,179,648,000 + 46 x 56,623,104 attn + 46 x 509,607,936 mlp = 27.23 B
        ("gemma-2-27b", 27.2),
    ],
)
def test_totals_match_published(cat: LlmCatalog, model_id: str, published_b: float) -> None:
    total = cat.model(model_id).total_params()
    assert total == pytest.approx(published_b * 1e9, rel=0.005)


@pytest.mark.parametrize("model_id", REQUIRED_MODELS)
def test_every_model_total_within_2pct_of_its_card(cat: LlmCatalog, model_id: str) -> None:
    m = cat.model(model_id)
    # a published total that includes a vision encoder is compared without it
    text_b = m.params_b - (m.vision_params_b or 0.0)
    assert m.total_params() == pytest.approx(text_b * 1e9, rel=0.02)
    if m.moe is not None:
        # counted as the card counts (with or without the embedding lookup and the LM head)
        assert m.published_active_params() == pytest.approx(m.active_params_b * 1e9, rel=0.02)


def test_mixtral_active_parameters(cat: LlmCatalog) -> None:
    m = cat.model("mixtral-8x7b")
    # attention 1,342,177,280 (as Llama-3-8B) + 2 of 8 experts: 32 x 2 x 176,160,768
    # = 11,274,289,152 + router 32 x 4096 x 8 = 1,048,576 + norms 266,240
    # + LM head 32000 x 4096 = 131,072,000 -> 12,748,853,248 (12.75 B; the published 12.9 B
    # also counts the embedding lookup: 12.75 + 0.13 = 12.88)
    assert m.active_params_per_token() == 12_748_853_248
    assert m.weight_params()["mlp"] == 0  # every layer is MoE


def test_deepseek_r1_mla_and_moe_counts(cat: LlmCatalog) -> None:
    m = cat.model("deepseek-r1")
    a = m.attention_matrix_params()
    assert a["q"] == 48_758_784  # q_a 7168 x 1536 = 11,010,048 + q_b 1536 x 128 x 192 = 37,748,736
    assert a["k"] == 4_128_768  # kv_a 7168 x (512 + 64)
    assert a["v"] == 16_777_216  # kv_b 512 x 128 x (128 + 128)
    assert a["o"] == 117_440_512  # 128 x 128 x 7168
    p = m.weight_params()
    # 58 MoE layers x 256 experts x 3 x 7168 x 2048 (44,040,192) = 653,908,770,816
    assert p["experts"] == 653_908_770_816
    assert p["shared_experts"] == 58 * 44_040_192  # one shared expert: 2,554,331,136
    assert p["mlp"] == 3 * 3 * 7168 * 18432  # 3 dense layers: 1,189,085,184
    # active: attention 61 x 187,105,280 = 11.41 B + dense 1.19 B + shared 2.55 B
    # + 8/256 of the experts 20.43 B + head 0.93 B + router/norms 0.11 B = 36.63 B (~37 B)
    assert m.active_params_per_token() / 1e9 == pytest.approx(36.63, abs=0.01)


def test_qwen_biases_counted(cat: LlmCatalog) -> None:
    a = cat.model("qwen2.5-7b").attention_matrix_params()
    # q bias 28 x 128 = 3584 + k, v biases 2 x 4 x 128 = 1024 -> 4608
    assert a["bias"] == 4608
    assert cat.model("llama-3-8b").attention_matrix_params()["bias"] == 0


# --- KV cache ----------------------------------------------------------------------------------


def test_kv_llama_3_70b(cat: LlmCatalog) -> None:
    m = cat.model("llama-3-70b")
    assert m.kv_bytes_per_token(2) == 327_680  # 2 (K,V) x 80 layers x 8 heads x 128 x 2 B
    # 327,680 x 8192 = 2,684,354,560 B = 2.684 GB = 2.5 GiB
    assert m.kv_bytes(8192, 2) == 2_684_354_560
    assert m.kv_bytes(8192, 2) / 2**30 == 2.5
    assert cat.model("llama-2-70b").kv_bytes_per_token(2) == 327_680  # same GQA-8 shape


def test_kv_llama_2_7b_mha(cat: LlmCatalog) -> None:
    # 32 KV heads (no GQA): 2 x 32 x 32 x 128 x 2 B = 524,288 B/token
    assert cat.model("llama-2-7b").kv_bytes_per_token(2) == 524_288
    # q8_0 (1.0625 B/element): 2 x 32 x 32 x 128 x 1.0625 = 278,528
    assert cat.model("llama-2-7b").kv_bytes_per_token(1.0625) == 278_528


def test_kv_deepseek_mla(cat: LlmCatalog) -> None:
    # compressed latent + rope key: 61 x (512 + 64) x 2 B = 70,272 B/token
    assert cat.model("deepseek-r1").kv_bytes_per_token(2) == 70_272


def test_kv_gemma_2_sliding_window(cat: LlmCatalog) -> None:
    m = cat.model("gemma-2-9b")
    assert m.n_local_layers == 21  # 42 layers alternate, local first: 21 local + 21 global
    per_layer = 2 * 8 * 256 * 2  # 8192 B per layer per token
    assert m.kv_bytes_per_token(2) == 42 * per_layer  # 344,064 B with every layer full
    # under the window every layer holds every token: 42 x 8192 x 2048 = 704,643,072
    assert m.kv_bytes(2048, 2) == 704_643_072
    # at 8192: 21 global x 8192 tokens + 21 local x 4096 -> 21 x 8192 B x 12288 = 2,113,929,216
    assert m.kv_bytes(8192, 2) == 2_113_929_216
    # i.e. 25% less than the 42 x 8192 x 8192 = 2,818,572,288 of a cache without windows
    assert m.kv_bytes(8192, 2) / (m.kv_bytes_per_token(2) * 8192) == 0.75
    # no window: kv_bytes is kv_bytes_per_token x context
    llama = cat.model("llama-3-8b")
    assert llama.kv_bytes(1000, 2) == 131_072 * 1000  # 2 x 32 x 8 x 128 x 2 = 131,072 B/token


def test_kv_negative_context_is_an_error(cat: LlmCatalog) -> None:
    with pytest.raises(EstimateError):
        cat.model("llama-3-8b").kv_bytes(-1, 2)


# --- weight bytes against the calibration GGUF sizes --------------------------------------------


def test_weight_bytes_f16_matches_calibration_gguf(cat: LlmCatalog) -> None:
    # shared/calibration/llamacpp-llama3-single-gpu.csv: Llama-3-8B F16 model_size_gib = 14.96
    # 8,030,261,248 weights x 2 B + 266,240 norms x 2 B extra (kept in F32) = 16,061,054,976 B
    # = 14.958 GiB
    b = weight_bytes(cat.model("llama-3-8b"), cat.format("f16"))
    assert b == 16_061_054_976
    assert b / 2**30 == pytest.approx(14.96, rel=0.02)


def test_weight_bytes_q4_k_m_matches_calibration_gguf(cat: LlmCatalog) -> None:
    # shared/calibration/llamacpp-llama3-single-gpu.csv: Llama-3-8B Q4_K_M model_size_gib = 4.58
    # token_embd Q4_K: 525,336,576 x 4.5 / 8 = 295,501,824
    # output Q6_K: 525,336,576 x 6.5625 / 8 = 430,940,160
    # attention: per layer 37,748,736 (q,k,o) x 4.5 + 4,194,304 (v, half Q6_K) x 5.53125
    #   = 193,069,056 bits; x 32 / 8 = 772,276,224
    # MLP: per layer 117,440,512 (gate, up) x 4.5 + 58,720,256 (down) x 5.53125
    #   = 853,278,720 bits; x 32 / 8 = 3,413,114,880
    # norms F32: 266,240 x 4 = 1,064,960
    # total 4,912,898,048 B = 4.5755 GiB
    m, f = cat.model("llama-3-8b"), cat.format("q4_k_m")
    parts = weight_bytes_breakdown(m, f)
    assert parts["embedding"] == 295_501_824
    assert parts["output"] == 430_940_160
    assert parts["attention"] == 772_276_224
    assert parts["ffn"] == 3_413_114_880
    b = weight_bytes(m, f)
    assert b == 4_912_898_048
    assert b / 2**30 == pytest.approx(4.58, rel=0.02)
    # all-in bits per weight: 4,912,898,048 x 8 / 8,030,261,248 = 4.894
    assert b * 8 / m.total_params() == pytest.approx(4.894, abs=0.001)


@pytest.mark.parametrize(
    "format_id",
    [
        "f16",
        "q8_0",
        "q6_k",
        "q5_k_m",
        "q5_k_s",
        "q4_k_m",
        "q4_k_s",
        "iq4_xs",
        "q4_0",
        "q3_k_m",
        "q2_k",
    ],
)
def test_bits_per_weight_is_the_llama_3_8b_all_in_average(cat: LlmCatalog, format_id: str) -> None:
    # the catalog's bits_per_weight is documented as file bits / 8.03 B weights of Llama-3-8B
    m, f = cat.model("llama-3-8b"), cat.format(format_id)
    assert weight_bytes(m, f) * 8 / m.total_params() == pytest.approx(f.bits_per_weight, rel=0.005)


def test_tied_embedding_stored_once(cat: LlmCatalog) -> None:
    m = cat.model("gemma-2-9b")
    parts = weight_bytes_breakdown(m, cat.format("f16"))
    assert parts["output"] == 0
    assert parts["embedding"] == 256000 * 3584 * 2  # 1,835,008,000 B
    # GGUF gives a tied embedding the head's type: Q4_K_M -> Q6_K,
    # 917,504,000 x 6.5625 / 8 = 752,640,000 B (Q4_K would be 516,096,000)
    q4 = weight_bytes_breakdown(m, cat.format("q4_k_m"))
    assert (q4["embedding"], q4["output"]) == (752_640_000, 0)


# --- EXL2 synthesis ------------------------------------------------------------------------------


def test_exl2_any_bpw(cat: LlmCatalog) -> None:
    f = cat.format("exl2-4.65")
    assert f.id == "exl2-4.65"
    assert f.nominal_bpw == 4.65
    assert (f.attn_bpw, f.ffn_bpw, f.output_bpw, f.token_embd_bpw) == (4.65, 4.65, 6.0, 16)
    assert f.engines == ["exllamav2"]
    # Llama-3-8B: embedding FP16 525,336,576 x 2 = 1,050,673,152 + head 6-bit 394,002,432
    # + linear 6,979,321,856 x 4.65 / 8 = 4,056,730,828.8 + norms 1,064,960 = 5,502,471,372.8 B
    assert weight_bytes(cat.model("llama-3-8b"), f) == pytest.approx(5_502_471_372.8)
    # its all-in bpw: 5,502,471,372.8 x 8 / 8,030,261,248 = 5.4817
    assert f.bits_per_weight == pytest.approx(5.4817, abs=1e-4)
    odd = cat.format("exl2-2.13")
    assert (odd.id, odd.attn_bpw) == ("exl2-2.13", 2.13)
    assert cat.format("exl2-6.5").output_bpw == 8.0  # 8-bit head from 6.0 bpw up
    assert cat.format("exl2-4") is cat.format("exl2-4.0")  # preset, canonical id exl2-4.0
    assert exl2_id(4.0) == "exl2-4.0" and exl2_id(4.25) == "exl2-4.25"


@pytest.mark.parametrize("bad", ["exl2-1.5", "exl2-8.5", "exl2-12"])
def test_exl2_out_of_range(cat: LlmCatalog, bad: str) -> None:
    with pytest.raises(UnknownIdError, match="2-8"):
        cat.format(bad)


# --- engines and cross references ---------------------------------------------------------------


def test_engine_fields(cat: LlmCatalog) -> None:
    assert cat.engine("ollama").behaves_as == "llama.cpp"
    assert cat.engine("vllm").gpu_memory_utilization == 0.9
    assert cat.engine("vllm").kv_cache == "paged"
    assert cat.engine("llama.cpp").kv_cache == "contiguous"
    assert cat.engine("llama.cpp").default_split == "layer"
    assert set(cat.engine("llama.cpp").parallel_modes) == {"layer", "row"}
    assert cat.engine("vllm").default_split == "tensor"
    assert cat.engine("llama.cpp").supports_cpu_offload
    assert not cat.engine("exllamav2").supports_cpu_offload


def test_formats_and_engines_agree(cat: LlmCatalog) -> None:
    for f in cat.formats.values():
        for eid in f.engines:
            listed = cat.engine(eid).formats
            assert f.id in listed or (f.id.startswith("exl2-") and "exl2" in listed), (f.id, eid)


def test_llama_cpp_compute_buffer(cat: LlmCatalog) -> None:
    e, m = cat.engine("llama.cpp"), cat.model("llama-3-8b")
    # logits 512 x 128256 x 4 = 262,668,288; KQ scores 512 x 8192 x 32 x 4 = 536,870,912
    # -> 0.05e9 + max(...) = 586,870,912
    assert e.workspace_bytes(m, 8192) == 586_870_912
    # flash attention drops the scores: 50,000,000 + 262,668,288 = 312,668,288
    assert e.workspace_bytes(m, 8192, flash_attention=True) == 312_668_288
    # engines without a formula use workspace_gb: vLLM 1.5 GB
    assert cat.engine("vllm").workspace_bytes(m, 8192) == 1.5e9


# --- lookups and validation ---------------------------------------------------------------------


def test_unknown_ids_suggest_closest(cat: LlmCatalog) -> None:
    with pytest.raises(UnknownIdError) as ei:
        cat.model("llama-3-7b")
    assert ei.value.hint is not None
    assert "llama-3-8b" in ei.value.hint
    assert len(ei.value.hint.removeprefix("closest: ").split(", ")) == 3
    with pytest.raises(UnknownIdError, match="q4_k_m"):
        cat.format("q4_k_n")
    with pytest.raises(UnknownIdError, match="vllm"):
        cat.engine("vlm")
    assert issubclass(UnknownIdError, CatalogError)


def test_ids_are_case_insensitive(cat: LlmCatalog) -> None:
    assert cat.format("Q4_K_M") is cat.format("q4_k_m")
    assert cat.model("Llama-3.1-70B") is cat.model("llama-3.1-70b")
    assert cat.engine("vLLM") is cat.engine("vllm")
    assert cat.format("EXL2-5").id == "exl2-5.0"


@pytest.mark.parametrize("model_id", REQUIRED_MODELS)
def test_every_model_cites_its_config_and_is_documented(model_id: str) -> None:
    m = load_llm_catalog().model(model_id)
    assert m.source.startswith("config.json of ")
    assert f"| `{model_id}` |" in DOC.read_text(encoding="utf-8")


def test_to_dict_round_trips(cat: LlmCatalog) -> None:
    m = cat.model("deepseek-r1")
    d = m.to_dict()
    assert d["mla"]["kv_lora_rank"] == 512
    assert ModelArch.model_validate(d) == m
    whole = cat.to_dict()
    assert set(whole) == {"models", "formats", "engines"}


def _llama_like(**over: Any) -> dict[str, Any]:
    """Llama-3-8B's catalog entry as raw data, with some fields replaced."""
    base = load_llm_catalog().model("llama-3-8b").to_dict()
    base.update(over)
    return base


def test_bad_models_yaml_is_a_catalog_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = llm_mod._read_yaml

    def fake(name: str) -> Any:
        if name == "models.yaml":
            return {"models": [_llama_like(n_kv_heads=7)]}  # 32 heads not a multiple of 7
        return real(name)

    monkeypatch.setattr(llm_mod, "_read_yaml", fake)
    with pytest.raises(CatalogError, match=r"llama-3-8b.*n_kv_heads"):
        load_llm_catalog.__wrapped__()


def test_duplicate_and_unknown_field_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    real = llm_mod._read_yaml
    entries: list[dict[str, Any]] = [_llama_like(), _llama_like()]

    def fake(name: str) -> Any:
        return {"models": entries} if name == "models.yaml" else real(name)

    monkeypatch.setattr(llm_mod, "_read_yaml", fake)
    with pytest.raises(CatalogError, match="duplicate id 'llama-3-8b'"):
        load_llm_catalog.__wrapped__()
    entries[:] = [_llama_like(vram_gb=24)]
    with pytest.raises(CatalogError, match="vram_gb"):
        load_llm_catalog.__wrapped__()
