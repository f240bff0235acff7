"""Models from their own files: a Hugging Face ``config.json`` or a ``.gguf`` file.

``--model`` (and a spec's or batch line's ``model``) takes a catalog id or a path. A
``config.json`` gives the architecture; its parameter counts then come from the shapes, as for a
catalog entry (:meth:`ModelArch.total_params`). A GGUF file gives the architecture from its
metadata and the exact bytes of every tensor from the tensor table (type and shape), so its weight
bytes are those of the file, without reading the weights (the reader memory-maps the file and
touches only the header).

Supported ``model_type`` values: see :data:`CONFIG_TYPES`; anything else is one clear error.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rigkit.errors import EstimateError

__all__ = [
    "CONFIG_TYPES",
    "GgufHeader",
    "arch_from_config",
    "arch_from_gguf",
    "is_model_path",
    "load_model_file",
]

#: ``model_type`` values of config.json that rigkit reads
CONFIG_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "deepseek_v3",
    "gpt_oss",
    "llama4",
    "llama4_text",
    "glm4_moe",
)


def is_model_path(text: str) -> bool:
    """True when ``text`` names a model file (``*.json``, ``*.gguf``) or a folder with a config.json."""
    low = text.strip().lower()
    if low.endswith((".json", ".gguf")):
        return True
    return ("/" in text or os.sep in text) and os.path.isdir(text)


def load_model_file(path: str) -> Any:
    """The :class:`~rigkit.catalog.llm.ModelArch` of a config.json, a folder holding one, or a
    GGUF file (cached by path and modification time)."""
    p = Path(path.strip()).expanduser()
    if p.is_dir():
        p = p / "config.json"
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as e:
        raise EstimateError(
            f"model file {p}: {e.strerror or e}",
            hint="--model takes a catalog id, a config.json or a .gguf file",
        ) from None
    return _load(str(p), mtime)


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime: int) -> Any:
    del mtime  # part of the cache key only
    if path.lower().endswith(".gguf"):
        return arch_from_gguf(path)
    return arch_from_config(path)


def _model_id(path: Path) -> str:
    stem = path.parent.name if path.name == "config.json" else path.stem
    text = re.sub(r"[^a-z0-9.\-_]+", "-", stem.lower()).strip("-._")
    return text or "model"


def _build(raw: dict[str, Any], where: str) -> Any:
    from rigkit.catalog.llm import ModelArch

    try:
        return ModelArch.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(entry)"
        raise EstimateError(f"{where}: {loc}: {first['msg']}") from None


# --- config.json ---------------------------------------------------------------------------------


def _need(cfg: dict[str, Any], key: str, where: str) -> Any:
    if cfg.get(key) is None:
        raise EstimateError(f"{where}: config.json has no {key!r}")
    return cfg[key]


def arch_from_config(path: str | Path) -> Any:
    """A ModelArch from a Hugging Face ``config.json`` (multimodal configs: their text part)."""
    p = Path(path)
    where = str(p)
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise EstimateError(f"{where}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EstimateError(f"{where}: not a JSON config.json ({e})") from None
    if not isinstance(cfg, dict):
        raise EstimateError(f"{where}: config.json is not a JSON object")
    mtype = str(cfg.get("model_type", ""))
    if mtype not in CONFIG_TYPES:
        raise EstimateError(
            f"{where}: model_type {mtype!r} is not supported",
            hint="supported: " + ", ".join(CONFIG_TYPES) + "; or give a .gguf file",
        )
    top = cfg
    if isinstance(cfg.get("text_config"), dict):  # Gemma 3, Llama 4, Mistral 3: the LM part
        cfg = {**cfg["text_config"], "model_type": mtype}
    hidden = int(_need(cfg, "hidden_size", where))
    heads = int(_need(cfg, "num_attention_heads", where))
    layers = int(_need(cfg, "num_hidden_layers", where))
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    tied = bool(cfg.get("tie_word_embeddings", top.get("tie_word_embeddings", False)))
    if mtype.startswith("gemma") and "tie_word_embeddings" not in cfg:
        tied = True  # Gemma ties its head to the embedding (the configs leave the default)
    raw: dict[str, Any] = {
        "id": _model_id(p),
        "name": _model_id(p),
        "family": mtype,
        "source": f"config.json at {p}",
        "n_layers": layers,
        "hidden_size": hidden,
        "n_heads": heads,
        "n_kv_heads": kv,
        "head_dim": head_dim,
        "ffn_size": int(_need(cfg, "intermediate_size", where)),
        "vocab_size": int(_need(cfg, "vocab_size", where)),
        "tied_embeddings": tied,
        "max_context": int(cfg.get("max_position_embeddings") or 4096),
        "rope_theta": cfg.get("rope_theta"),
        "norm": "rmsnorm",
        "mlp_kind": "gated",
    }
    if mtype in ("qwen2",):
        raw["qkv_bias"] = True
    if mtype in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text"):
        raw["qk_norm"] = True
    if mtype == "glm4_moe":
        raw["qkv_bias"] = bool(cfg.get("attention_bias", True))
        raw["qk_norm"] = bool(cfg.get("use_qk_norm", False))
    if mtype.startswith("gemma"):
        raw["norms_per_layer"] = 4
        window = cfg.get("sliding_window")
        if window:
            raw["attention_window"] = int(window)
            pattern = cfg.get("sliding_window_pattern")
            layer_types = cfg.get("layer_types")
            if mtype == "gemma2":
                raw["sliding_window_layers"] = "alternate"
            elif isinstance(layer_types, list) and "full_attention" in layer_types:
                raw["sliding_window_layers"] = layer_types.index("full_attention") + 1
            else:
                raw["sliding_window_layers"] = int(pattern or 6)
        if cfg.get("final_logit_softcapping"):
            raw["logit_softcap"] = float(cfg["final_logit_softcapping"])
    if mtype == "mistral" and cfg.get("sliding_window"):
        raw["attention_window"] = int(cfg["sliding_window"])
        raw["sliding_window_layers"] = "all"
    if mtype == "mixtral":
        raw["moe"] = {
            "n_experts": int(_need(cfg, "num_local_experts", where)),
            "n_active": int(_need(cfg, "num_experts_per_tok", where)),
            "expert_ffn_size": raw["ffn_size"],
        }
    if mtype == "qwen3_moe":
        step = int(cfg.get("decoder_sparse_step") or 1)
        if cfg.get("mlp_only_layers"):
            raise EstimateError(f"{where}: qwen3_moe with mlp_only_layers is not supported")
        raw["moe"] = {
            "n_experts": int(_need(cfg, "num_experts", where)),
            "n_active": int(_need(cfg, "num_experts_per_tok", where)),
            "expert_ffn_size": int(_need(cfg, "moe_intermediate_size", where)),
            "layer_step": step,
        }
    if mtype in ("deepseek_v3", "glm4_moe"):
        raw["moe"] = {
            "n_experts": int(_need(cfg, "n_routed_experts", where)),
            "n_active": int(_need(cfg, "num_experts_per_tok", where)),
            "n_shared_experts": int(cfg.get("n_shared_experts") or 0),
            "expert_ffn_size": int(_need(cfg, "moe_intermediate_size", where)),
            "first_dense_layers": int(cfg.get("first_k_dense_replace") or 0),
            "dense_ffn_size": raw["ffn_size"],
            "router_bias": cfg.get("topk_method") == "noaux_tc" or mtype == "glm4_moe",
        }
        if cfg.get("num_nextn_predict_layers"):
            raw["mtp_layers"] = int(cfg["num_nextn_predict_layers"])
    if mtype == "deepseek_v3":
        nope = int(_need(cfg, "qk_nope_head_dim", where))
        rope = int(_need(cfg, "qk_rope_head_dim", where))
        raw["head_dim"] = nope + rope
        raw["n_kv_heads"] = heads
        raw["mla"] = {
            "kv_lora_rank": int(_need(cfg, "kv_lora_rank", where)),
            "q_lora_rank": cfg.get("q_lora_rank"),
            "qk_rope_head_dim": rope,
            "qk_nope_head_dim": nope,
            "v_head_dim": int(_need(cfg, "v_head_dim", where)),
        }
    if mtype == "gpt_oss":
        raw.update(qkv_bias=True, out_bias=True, attn_sinks=True)
        raw["moe"] = {
            "n_experts": int(_need(cfg, "num_local_experts", where)),
            "n_active": int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or 4),
            "expert_ffn_size": raw["ffn_size"],
            "router_bias": True,
            "expert_bias": True,
        }
        if cfg.get("sliding_window"):
            raw["attention_window"] = int(cfg["sliding_window"])
            raw["sliding_window_layers"] = "alternate"
    if mtype in ("llama4", "llama4_text"):
        step = int(cfg.get("interleave_moe_layer_step") or 1)
        raw["ffn_size"] = int(cfg.get("intermediate_size_mlp") or raw["ffn_size"])
        raw["moe"] = {
            "n_experts": int(_need(cfg, "num_local_experts", where)),
            "n_active": int(_need(cfg, "num_experts_per_tok", where)),
            "n_shared_experts": 1,
            "expert_ffn_size": int(_need(cfg, "intermediate_size", where)),
            "layer_step": step,
        }
        if cfg.get("attention_chunk_size"):  # chunked attention on 3 of 4 layers (NoPE every 4th)
            raw["attention_window"] = int(cfg["attention_chunk_size"])
            raw["sliding_window_layers"] = 4
    arch = _build({**raw, "params_b": 1.0, "active_params_b": 1.0}, where)
    total = arch.total_params() / 1e9
    active = arch.active_params_per_token() / 1e9 if arch.moe is not None else total
    return _build({**raw, "params_b": total, "active_params_b": min(active, total)}, where)


# --- GGUF ----------------------------------------------------------------------------------------

#: GGUF general.file_type (llama.cpp ``llama_ftype``) -> catalog format id
_FTYPE_FORMAT: dict[str, str] = {
    "ALL_F32": "f32",
    "MOSTLY_F16": "f16",
    "MOSTLY_BF16": "bf16",
    "MOSTLY_Q8_0": "q8_0",
    "MOSTLY_Q4_0": "q4_0",
    "MOSTLY_Q4_1": "q4_1",
    "MOSTLY_Q5_0": "q5_0",
    "MOSTLY_Q6_K": "q6_k",
    "MOSTLY_Q5_K_M": "q5_k_m",
    "MOSTLY_Q5_K_S": "q5_k_m",
    "MOSTLY_Q4_K_M": "q4_k_m",
    "MOSTLY_Q4_K_S": "q4_k_m",
    "MOSTLY_Q3_K_M": "q3_k_m",
    "MOSTLY_Q3_K_L": "q3_k_m",
    "MOSTLY_Q3_K_S": "q3_k_m",
    "MOSTLY_Q2_K": "q2_k",
    "MOSTLY_IQ4_XS": "iq4_xs",
    "MOSTLY_IQ4_NL": "iq4_nl",
    "MOSTLY_IQ3_XXS": "iq3_xxs",
    "MOSTLY_IQ3_S": "iq3_s",
    "MOSTLY_IQ3_M": "iq3_s",
    "MOSTLY_IQ2_XXS": "iq2_xxs",
    "MOSTLY_IQ2_XS": "iq2_xs",
    "MOSTLY_IQ2_S": "iq2_s",
    "MOSTLY_IQ2_M": "iq2_s",
    "MOSTLY_MXFP4_MOE": "mxfp4",
}

_ATTN: tuple[str, ...] = (
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "attn_qkv",
    "attn_kv_a",
    "attn_kv_b",
    "attn_q_a",
    "attn_q_b",
    "attn_k_b",
    "attn_v_b",
    "attn_sinks",
)


def _component(name: str) -> str:
    """The weight_params key a GGUF tensor belongs to (llama.cpp's tensor names)."""
    if name.startswith("token_embd.") and "norm" not in name:
        return "embedding"
    if name.startswith("output.") and "norm" not in name:
        return "output"
    parts = name.split(".")
    base = parts[2] if len(parts) >= 3 and parts[0] == "blk" else parts[0]
    kind = parts[-1]
    if "norm" in base:
        return "norms"
    if base.endswith("_exps"):
        return "expert_bias" if kind == "bias" else "experts"
    if base.endswith("_shexp"):
        return "shared_experts"
    if base in ("ffn_gate_inp", "exp_probs_b", "ffn_gate_inp_shexp"):
        return "router"
    if base.startswith("ffn_"):
        return "mlp"
    if base in _ATTN or base.startswith("attn_"):
        return "attention"
    return "norms"


_SCALAR = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


class GgufHeader:
    """The metadata and tensor table of a GGUF file, read with ``struct`` from its first bytes.

    gguf's own ``GGUFReader`` builds a numpy view per metadata item (a 49,152-token vocabulary is
    ~150,000 of them: a minute on a small CPU); this reads the same header in well under a second
    and leaves arrays it does not need (tokens, merges) as their length. Tensor sizes use gguf's
    ``GGML_QUANT_SIZES`` (block size and bytes per block of every ggml type).
    """

    def __init__(self, path: str | Path) -> None:
        import mmap
        import struct

        import gguf

        self.path = Path(path)
        self.fields: dict[str, Any] = {}
        self.tensors: list[
            tuple[str, tuple[int, ...], int, int, int]
        ] = []  # name, shape, type, offset, bytes
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:4] != b"GGUF":
                raise EstimateError(f"{self.path}: not a GGUF file (no GGUF magic)")
            version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
            if version < 2:
                raise EstimateError(f"{self.path}: GGUF version {version} is too old (2+)")
            pos = 24

            def string(at: int) -> tuple[str, int]:
                (n,) = struct.unpack_from("<Q", mm, at)
                return bytes(mm[at + 8 : at + 8 + n]).decode("utf-8", "replace"), at + 8 + n

            def value(t: int, at: int) -> tuple[Any, int]:
                if t in _SCALAR:
                    fmt = _SCALAR[t]
                    return struct.unpack_from(fmt, mm, at)[0], at + struct.calcsize(fmt)
                if t == 8:
                    return string(at)
                if t == 9:
                    it, count = struct.unpack_from("<IQ", mm, at)
                    at += 12
                    if it in _SCALAR:
                        size = struct.calcsize(_SCALAR[it])
                        items = (
                            list(struct.unpack_from(f"<{count}{_SCALAR[it][1]}", mm, at))
                            if count <= 4096
                            else count
                        )
                        return items, at + size * count
                    if it == 8:  # strings: skip by their lengths
                        for _ in range(count):
                            (n,) = struct.unpack_from("<Q", mm, at)
                            at += 8 + n
                        return count, at
                    out = []
                    for _ in range(count):
                        v, at = value(it, at)
                        out.append(v)
                    return out, at
                raise EstimateError(f"{self.path}: unknown GGUF value type {t}")

            for _ in range(n_kv):
                key, pos = string(pos)
                (t,) = struct.unpack_from("<I", mm, pos)
                self.fields[key], pos = value(t, pos + 4)
            for _ in range(n_tensors):
                name, pos = string(pos)
                (nd,) = struct.unpack_from("<I", mm, pos)
                shape = struct.unpack_from(f"<{nd}Q", mm, pos + 4)
                ttype, offset = struct.unpack_from("<IQ", mm, pos + 4 + 8 * nd)
                pos += 4 + 8 * nd + 12
                elements = 1
                for d in shape:
                    elements *= int(d)
                try:
                    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
                except (ValueError, KeyError):
                    raise EstimateError(
                        f"{self.path}: tensor {name} has unknown ggml type {ttype}"
                    ) from None
                self.tensors.append(
                    (
                        name,
                        tuple(int(d) for d in shape),
                        ttype,
                        int(offset),
                        elements // block * type_size,
                    )
                )
            align = int(self.fields.get("general.alignment", 32))
            self.data_offset = -(-pos // align) * align
            self.file_size = len(mm)


def _field(reader: GgufHeader, key: str) -> Any:
    return reader.fields.get(key)


def arch_from_gguf(path: str | Path) -> Any:
    """A ModelArch from a GGUF file's metadata, with exact bytes per component from its tensor
    table (``file_bytes``) and the file's weight format (``file_format``)."""
    import struct

    import gguf

    p = Path(path)
    where = str(p)
    try:
        reader = GgufHeader(p)
    except (OSError, ValueError, struct.error) as e:
        raise EstimateError(f"{where}: not a readable GGUF file ({e})") from None
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise EstimateError(f"{where}: GGUF metadata has no general.architecture")

    def get(key: str, default: Any = None) -> Any:
        v = _field(reader, f"{arch}.{key}")
        if isinstance(v, list):  # per-layer arrays (head_count_kv on some models): the largest
            v = max(v) if v else default
        return default if v is None else v

    hidden = int(get("embedding_length", 0))
    heads = int(get("attention.head_count", 0))
    layers = int(get("block_count", 0))
    if not (hidden and heads and layers):
        raise EstimateError(
            f"{where}: GGUF metadata lacks {arch}.embedding_length / attention.head_count / block_count"
        )
    sizes: dict[str, float] = {}
    counts: dict[str, int] = {}
    vocab = 0
    for name, shape, _t, _off, nbytes in reader.tensors:
        comp = _component(name)
        sizes[comp] = sizes.get(comp, 0.0) + float(nbytes)
        elements = 1
        for d in shape:
            elements *= d
        counts[comp] = counts.get(comp, 0) + elements
        if name == "token_embd.weight":
            vocab = max(shape)
    if not vocab:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        vocab = tokens if isinstance(tokens, int) else len(tokens or [])
    vocab = int(get("vocab_size", vocab) or vocab)
    n_experts = int(get("expert_count", 0))
    n_active = int(get("expert_used_count", 0))
    head_dim = int(get("attention.key_length", 0) or hidden // heads)
    kv_heads = int(get("attention.head_count_kv", heads) or heads)
    ffn = int(get("feed_forward_length", 0) or get("expert_feed_forward_length", 0) or 1)
    ftype_num = _field(reader, "general.file_type")
    file_format = None
    if ftype_num is not None:
        try:
            file_format = _FTYPE_FORMAT.get(gguf.LlamaFileType(int(ftype_num)).name)
        except ValueError:
            file_format = None
    total = sum(counts.values())
    raw: dict[str, Any] = {
        "id": _model_id(p),
        "name": str(_field(reader, "general.name") or _model_id(p)),
        "family": arch,
        "source": f"GGUF file {p} (metadata and tensor table)",
        "params_b": total / 1e9,
        "active_params_b": total / 1e9,
        "n_layers": layers,
        "hidden_size": hidden,
        "n_heads": heads,
        "n_kv_heads": kv_heads if heads % kv_heads == 0 else heads,
        "head_dim": head_dim,
        "ffn_size": ffn,
        "vocab_size": max(vocab, 1),
        "tied_embeddings": "output" not in sizes,
        "max_context": int(get("context_length", 4096)),
        "mlp_kind": "gated",
        "file_bytes": sizes,
        "file_format": file_format,
    }
    window = get("attention.sliding_window", 0)
    if window:
        raw["attention_window"] = int(window)
        raw["sliding_window_layers"] = "alternate"
    lora = get("attention.kv_lora_rank", 0)
    if lora:
        rope = int(get("rope.dimension_count", 64))
        key_len = int(get("attention.key_length_mla", 0) or get("attention.key_length", 192))
        raw["mla"] = {
            "kv_lora_rank": int(lora),
            "q_lora_rank": int(get("attention.q_lora_rank", 0)) or None,
            "qk_rope_head_dim": rope,
            "qk_nope_head_dim": max(1, key_len - rope),
            "v_head_dim": int(
                get("attention.value_length_mla", 0) or get("attention.value_length", 128)
            ),
        }
        raw["head_dim"] = key_len
        raw["n_kv_heads"] = heads
    if n_experts > 1:
        ff_exp = int(get("expert_feed_forward_length", 0) or ffn)
        dense = int(get("leading_dense_block_count", 0))
        raw["moe"] = {
            "n_experts": n_experts,
            "n_active": max(1, n_active),
            "n_shared_experts": int(get("expert_shared_count", 0)),
            "expert_ffn_size": ff_exp,
            "first_dense_layers": dense,
            "dense_ffn_size": ffn,
        }
        active = total - counts.get("experts", 0) * (1 - max(1, n_active) / n_experts)
        active -= counts.get("embedding", 0) if "output" in sizes else 0
        raw["active_params_b"] = min(total, active) / 1e9
    return _build(raw, where)
