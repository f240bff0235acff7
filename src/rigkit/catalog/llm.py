"""The LLM catalog: model architectures, weight formats and inference engines.

Data lives in ``catalog/data/models.yaml``, ``formats.yaml`` and ``engines.yaml``; every entry has a
``source``. This module holds the schemas, the loader and the pure helpers that turn an architecture
into parameter counts, weight bytes and KV-cache bytes.

Conventions:

* ``params_b`` is the published total from the model card (billions); :meth:`ModelArch.total_params`
  recomputes it from the architecture and the tests keep both within 2%.
* DeepSeek's multi-token-prediction (MTP) module is *not* counted: it is not used for ordinary
  decoding and llama.cpp / vLLM do not load it by default (671 B without it, 685 B with it).
* Bits per weight (bpw) include the format's block scales and zero points.
* ``exl2-<bpw>`` formats are synthesised on demand from the ``exl2`` template for any
  2.0 <= bpw <= 8.0 (see :meth:`LlmCatalog.format`).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rigkit.catalog.yamlcache import load_yaml
from rigkit.errors import CatalogError, EstimateError, UnknownIdError
from rigkit.yamlerrors import yaml_error_text

__all__ = [
    "Engine",
    "LlmCatalog",
    "MlaConfig",
    "ModelArch",
    "MoeConfig",
    "WeightFormat",
    "exl2_id",
    "load_llm_catalog",
    "synthesise_exl2",
    "weight_bytes",
    "weight_bytes_breakdown",
]

_ID_PATTERN = r"^[a-z0-9][a-z0-9.\-_]*$"
_EXL2_RE = re.compile(r"^exl2-(\d+(?:\.\d+)?)$")
EXL2_MIN_BPW = 2.0
EXL2_MAX_BPW = 8.0

ParallelMode = Literal["layer", "row", "tensor", "pipeline"]
Kernel = Literal[
    "dequant-f16", "mmq-int8", "fp8", "fp4", "int4-marlin", "exl2", "dense-f16", "dense-f32"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return self.model_dump(mode="json")


class _Entry(_Frozen):
    """Fields every catalog entry has."""

    id: str = Field(pattern=_ID_PATTERN)
    name: str
    source: str = Field(min_length=3, description="where the figures come from")


_T = TypeVar("_T", bound=_Entry)


# --- model architectures -------------------------------------------------------------------------


class MoeConfig(_Frozen):
    """Mixture-of-experts layout (Mixtral, DeepSeek)."""

    n_experts: int = Field(gt=0, description="routed experts per MoE layer")
    n_active: int = Field(gt=0, description="routed experts used per token")
    n_shared_experts: int = Field(default=0, ge=0, description="always-on experts per MoE layer")
    expert_ffn_size: int = Field(gt=0, description="intermediate size of one expert")
    first_dense_layers: int = Field(default=0, ge=0, description="leading layers with a dense MLP")
    dense_ffn_size: int | None = Field(
        default=None,
        gt=0,
        description="MLP size of the dense layers (default: the model's ffn_size)",
    )
    router_bias: bool = Field(
        default=False, description="per-expert router bias (DeepSeek-V3/R1, gpt-oss)"
    )
    expert_bias: bool = Field(
        default=False, description="every expert's matrices carry biases (gpt-oss)"
    )
    layer_step: int = Field(
        default=1,
        ge=1,
        description="every layer_step-th layer after the dense ones is MoE (Llama 4 Maverick: 2)",
    )


class MlaConfig(_Frozen):
    """DeepSeek multi-head latent attention (low-rank compressed K/V)."""

    kv_lora_rank: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0, description="None: full-rank Q projection")
    qk_rope_head_dim: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)


class ModelArch(_Entry):
    """A transformer's shape, as in its ``config.json``."""

    family: str
    hf_repo: str | None = Field(
        default=None, description="Hugging Face repository of its config.json and tokenizer"
    )
    params_b: float = Field(gt=0, description="published total parameters, billions")
    active_params_b: float = Field(
        gt=0, description="published active parameters (MoE); dense: = params_b"
    )
    n_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0, description="per-head dimension of Q/K (MLA: nope + rope)")
    ffn_size: int = Field(
        gt=0, description="dense MLP intermediate size (config intermediate_size)"
    )
    vocab_size: int = Field(gt=0)
    tied_embeddings: bool
    max_context: int = Field(gt=0)
    rope_theta: float | None = None
    norm: Literal["rmsnorm", "layernorm"] | None = None
    norms_per_layer: int = Field(
        default=2, ge=1, description="norm vectors per layer (Gemma-2: 4, pre and post)"
    )
    mlp_kind: Literal["gated", "plain"] = Field(
        description="gated: SwiGLU/GeGLU, 3 matrices; plain: up + down"
    )
    qkv_bias: bool = Field(default=False, description="biases on Q, K and V (Qwen2)")
    out_bias: bool = Field(default=False, description="bias on the attention output (gpt-oss)")
    qk_norm: bool = Field(
        default=False, description="RMSNorm vectors on Q and K per head (Qwen3, Gemma 3)"
    )
    attn_sinks: bool = Field(default=False, description="one learned sink logit per head (gpt-oss)")
    attention_window: int | None = Field(default=None, gt=0, description="sliding window, tokens")
    sliding_window_layers: Literal["alternate", "all"] | int | None = Field(
        default=None,
        description="alternate: every other layer is local (Gemma-2, gpt-oss; first layer local); "
        "all: every layer; N: every N-th layer is global, the others local (Gemma 3: 6)",
    )
    vision_params_b: float | None = Field(
        default=None,
        ge=0,
        description="vision encoder in the published total, billions (not loaded for text)",
    )
    active_count: Literal["head", "embedding+head", "no-head"] = Field(
        default="head",
        description="what the card's active count includes besides the layers: the LM head "
        "(as active_params_per_token), also the embedding lookup (Qwen3 MoE, Llama 4), or "
        "neither (GLM-4.5)",
    )
    file_bytes: dict[str, float] | None = Field(
        default=None,
        description="exact bytes per component from a GGUF file's tensors (weight_params keys)",
    )
    file_format: str | None = Field(
        default=None, description="weight format id of the GGUF file the entry was read from"
    )
    moe: MoeConfig | None = None
    mla: MlaConfig | None = None
    mtp_layers: int | None = Field(
        default=None, ge=0, description="multi-token-prediction layers, not counted, not loaded"
    )
    logit_softcap: float | None = Field(default=None, gt=0, description="final logit soft-capping")
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelArch:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}"
            )
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b is larger than params_b")
        if (self.attention_window is None) != (self.sliding_window_layers is None):
            raise ValueError("attention_window and sliding_window_layers go together")
        if isinstance(self.sliding_window_layers, int) and self.sliding_window_layers < 2:
            raise ValueError("sliding_window_layers N needs N >= 2 (every N-th layer global)")
        if self.moe is not None and self.moe.first_dense_layers > self.n_layers:
            raise ValueError("moe.first_dense_layers exceeds n_layers")
        if self.moe is not None and self.moe.n_active > self.moe.n_experts:
            raise ValueError("moe.n_active exceeds moe.n_experts")
        if self.moe is None and self.active_params_b != self.params_b:
            raise ValueError("a dense model needs active_params_b equal to params_b")
        return self

    # -- layer bookkeeping

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def n_moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts."""
        if self.moe is None:
            return 0
        return (self.n_layers - self.moe.first_dense_layers) // self.moe.layer_step

    @property
    def n_dense_layers(self) -> int:
        """Layers with an ordinary MLP."""
        return self.n_layers - self.n_moe_layers

    def _mlp_matrices(self) -> int:
        return 3 if self.mlp_kind == "gated" else 2

    # -- parameter counts

    def attention_matrix_params(self) -> dict[str, int]:
        """Parameters of one layer's attention, per matrix (``q``, ``k``, ``v``, ``o``, ``bias``).

        Standard attention: q = hidden x heads x head_dim, k = v = hidden x kv_heads x head_dim,
        o = heads x head_dim x hidden. MLA (DeepSeek): ``q`` = q_a (hidden x q_lora) + q_b
        (q_lora x heads x (nope + rope)); ``k`` = kv_a (hidden x (kv_lora + rope)); ``v`` = kv_b
        (kv_lora x heads x (nope + v_head)); ``o`` = heads x v_head x hidden.
        """
        h = self.hidden_size
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank is None:
                q = h * self.n_heads * qk
            else:
                q = h * m.q_lora_rank + m.q_lora_rank * self.n_heads * qk
            k = h * (m.kv_lora_rank + m.qk_rope_head_dim)
            v = m.kv_lora_rank * self.n_heads * (m.qk_nope_head_dim + m.v_head_dim)
            o = self.n_heads * m.v_head_dim * h
            return {"q": q, "k": k, "v": v, "o": o, "bias": h if self.out_bias else 0}
        q_dim = self.n_heads * self.head_dim
        kv_dim = self.n_kv_heads * self.head_dim
        bias = q_dim + 2 * kv_dim if self.qkv_bias else 0
        bias += h if self.out_bias else 0
        bias += self.n_heads if self.attn_sinks else 0
        return {"q": h * q_dim, "k": h * kv_dim, "v": h * kv_dim, "o": q_dim * h, "bias": bias}

    def weight_params(self) -> dict[str, int]:
        """Parameter count by component, whole model.

        Keys: ``embedding`` (vocab x hidden), ``attention`` (all layers, biases included),
        ``mlp`` (dense MLPs), ``experts`` (all routed experts), ``shared_experts``, ``router``,
        ``norms`` (norm weight vectors, the final norm, MLA's latent norms, Q/K norms),
        ``expert_bias`` (gpt-oss's per-expert biases) and ``output`` (the LM head; 0 when tied to
        the embedding). Attention biases and sinks are in ``attention``.
        """
        h = self.hidden_size
        attn = sum(self.attention_matrix_params().values()) * self.n_layers
        per_mlp = self._mlp_matrices() * h
        dense_ffn = self.ffn_size
        experts = shared = router = expert_bias = 0
        if self.moe is not None:
            moe = self.moe
            dense_ffn = moe.dense_ffn_size or self.ffn_size
            per_expert = per_mlp * moe.expert_ffn_size
            experts = self.n_moe_layers * moe.n_experts * per_expert
            shared = self.n_moe_layers * moe.n_shared_experts * per_expert
            router_per_layer = h * moe.n_experts + (moe.n_experts if moe.router_bias else 0)
            router = self.n_moe_layers * router_per_layer
            if moe.expert_bias:  # gated: gate + up biases (2 x ffn) and the down bias (hidden)
                one = (self._mlp_matrices() - 1) * moe.expert_ffn_size + h
                expert_bias = self.n_moe_layers * moe.n_experts * one
        mlp = self.n_dense_layers * per_mlp * dense_ffn
        norms = self.n_layers * self.norms_per_layer * h + h
        if self.mla is not None:
            latent = self.mla.kv_lora_rank + (self.mla.q_lora_rank or 0)
            norms += self.n_layers * latent
        if self.qk_norm:
            norms += self.n_layers * 2 * self.head_dim
        return {
            "embedding": self.vocab_size * h,
            "attention": attn,
            "mlp": mlp,
            "experts": experts,
            "shared_experts": shared,
            "router": router,
            "norms": norms,
            "expert_bias": expert_bias,
            "output": 0 if self.tied_embeddings else self.vocab_size * h,
        }

    def total_params(self) -> int:
        """Sum of :meth:`weight_params` (MTP layers excluded)."""
        return sum(self.weight_params().values())

    def published_active_params(self) -> int:
        """:meth:`active_params_per_token` counted the way the model card counts (``active_count``)."""
        a = self.active_params_per_token()
        h = self.vocab_size * self.hidden_size
        if self.active_count == "embedding+head":
            return a + h
        if self.active_count == "no-head":
            return a - h
        return a

    def active_params_per_token(self) -> int:
        """Parameters whose weights are read for each generated token.

        Dense: everything but the embedding lookup (one row per token); with tied embeddings the
        matrix is read as the LM head, so nothing is subtracted. MoE: attention + dense-layer MLPs
        + shared experts + ``n_active`` routed experts per MoE layer + router + norms + output.
        """
        p = self.weight_params()
        if self.moe is None:
            return self.total_params() - (0 if self.tied_embeddings else p["embedding"])
        moe = self.moe
        active_experts = p["experts"] * moe.n_active // moe.n_experts
        active_experts += p["expert_bias"] * moe.n_active // moe.n_experts
        head = p["embedding"] if self.tied_embeddings else p["output"]
        return (
            p["attention"]
            + p["mlp"]
            + p["shared_experts"]
            + active_experts
            + p["router"]
            + p["norms"]
            + head
        )

    # -- KV cache

    def kv_bytes_per_layer_token(self, kv_dtype_bytes: float) -> float:
        """KV-cache bytes one layer stores per token.

        Standard attention: K and V, 2 x n_kv_heads x head_dim x bytes. MLA: the compressed latent
        and the shared RoPE key, (kv_lora_rank + qk_rope_head_dim) x bytes, as llama.cpp and vLLM
        cache it.
        """
        if self.mla is not None:
            return (self.mla.kv_lora_rank + self.mla.qk_rope_head_dim) * kv_dtype_bytes
        return 2 * self.n_kv_heads * self.head_dim * kv_dtype_bytes

    def kv_bytes_per_token(self, kv_dtype_bytes: float) -> float:
        """KV-cache bytes per token of context with every layer holding the full context.

        Standard: 2 x n_layers x n_kv_heads x head_dim x bytes; MLA: n_layers x (kv_lora_rank +
        qk_rope_head_dim) x bytes. For sliding-window models this is the cost per token up to the
        window; use :meth:`kv_bytes` for a given context length.
        """
        return self.n_layers * self.kv_bytes_per_layer_token(kv_dtype_bytes)

    @property
    def n_local_layers(self) -> int:
        """Layers with a sliding window (Gemma-2 alternates, first layer local: ceil(n/2); every
        N-th layer global: n - n // N)."""
        if self.sliding_window_layers == "all":
            return self.n_layers
        if self.sliding_window_layers == "alternate":
            return (self.n_layers + 1) // 2
        if isinstance(self.sliding_window_layers, int):
            return self.n_layers - self.n_layers // self.sliding_window_layers
        return 0

    def kv_bytes(self, context: int, kv_dtype_bytes: float) -> float:
        """KV-cache bytes for one sequence of ``context`` tokens.

        Global layers hold every token; sliding-window layers hold min(context, window) tokens.
        (An engine that allocates the full context on every layer, as llama.cpp did before its
        SWA cache, uses ``kv_bytes_per_token(b) x context`` instead.)
        """
        if context < 0:
            raise EstimateError(f"a context of {context} tokens is negative")
        per_layer = self.kv_bytes_per_layer_token(kv_dtype_bytes)
        return per_layer * layer_tokens(
            context, self.n_layers, self.n_local_layers, self.attention_window or 0
        )


def layer_tokens(context: float, n_layers: int, n_local: int, window: int) -> float:
    """Tokens of a ``context`` summed over the layers: the sliding-window formula.

    Global layers hold every token, the ``n_local`` sliding-window layers at most ``window``
    (0: no window). KV-cache bytes are this x bytes per layer and token; the mean attention
    depth is this / ``n_layers``.
    """
    held = min(context, window) if window > 0 else context
    return (n_layers - n_local) * context + n_local * held


# --- weight formats ------------------------------------------------------------------------------

TensorName = Literal["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


class WeightFormat(_Entry):
    """How weights are stored: bits per weight for each kind of tensor and the kernel that runs them."""

    containers: list[Literal["gguf", "safetensors", "exl2"]] = Field(
        min_length=1, description="file formats that carry it"
    )
    bits_per_weight: float = Field(
        gt=0,
        le=32,
        description="all-in average bpw (scales included) over a Llama-3-8B-shaped model",
    )
    token_embd_bpw: float = Field(gt=0, le=32)
    output_bpw: float = Field(gt=0, le=32, description="LM head")
    attn_bpw: float = Field(
        gt=0, le=32, description="attention matrices (those not named in tensor_bpw)"
    )
    ffn_bpw: float = Field(
        gt=0, le=32, description="MLP and expert matrices (those not named in tensor_bpw)"
    )
    tensor_bpw: dict[TensorName, float] = Field(
        default_factory=dict,
        description="per-matrix bpw where the format mixes types; overrides attn_bpw / ffn_bpw",
    )
    nominal_bpw: float | None = Field(
        default=None, gt=0, description="the bpw in the format's name where it differs (EXL2)"
    )
    norm_bpw: float = Field(default=32, gt=0, le=32, description="norm vectors and biases")
    compute_dtype: Literal["f16", "bf16", "f32", "fp8"] = Field(description="matmul input dtype")
    kernel: Kernel
    engines: list[str] = Field(min_length=1, description="engine ids that load this format")
    kv_dtype_default_bytes: float = Field(default=2, gt=0)
    embedding_on_cpu: bool = Field(
        default=False, description="the engine keeps the embedding table in system RAM"
    )
    notes: str | None = None


def _bytes_of(model: ModelArch, fmt: WeightFormat) -> dict[str, float]:
    if model.file_bytes is not None:  # read from a GGUF file's tensors: exact
        fb = model.file_bytes
        return {
            "embedding": fb.get("embedding", 0.0),
            "attention": fb.get("attention", 0.0),
            "ffn": fb.get("mlp", 0.0) + fb.get("experts", 0.0) + fb.get("shared_experts", 0.0),
            "router": fb.get("router", 0.0) + fb.get("expert_bias", 0.0),
            "norms": fb.get("norms", 0.0),
            "output": fb.get("output", 0.0),
        }
    p = model.weight_params()
    attn = model.attention_matrix_params()
    t = fmt.tensor_bpw
    nl = model.n_layers
    attn_bits = (
        attn["q"] * t.get("attn_q", fmt.attn_bpw)
        + attn["k"] * t.get("attn_k", fmt.attn_bpw)
        + attn["v"] * t.get("attn_v", fmt.attn_bpw)
        + attn["o"] * t.get("attn_output", fmt.attn_bpw)
    ) * nl + attn["bias"] * nl * fmt.norm_bpw
    ffn_params = p["mlp"] + p["experts"] + p["shared_experts"]
    k = 3 if model.mlp_kind == "gated" else 2
    # gated: gate, up, down are equal thirds; plain: up and down are halves
    up_side = ffn_params * (k - 1) / k
    down = ffn_params / k
    if model.mlp_kind == "gated":
        up_bits = up_side / 2 * (t.get("ffn_gate", fmt.ffn_bpw) + t.get("ffn_up", fmt.ffn_bpw))
    else:
        up_bits = up_side * t.get("ffn_up", fmt.ffn_bpw)
    ffn_bits = up_bits + down * t.get("ffn_down", fmt.ffn_bpw)
    # llama.cpp quantises a tied embedding as the output tensor (it is read as the LM head)
    embd_bpw = fmt.token_embd_bpw
    if model.tied_embeddings and "gguf" in fmt.containers:
        embd_bpw = fmt.output_bpw
    return {
        "embedding": p["embedding"] * embd_bpw / 8,
        "attention": attn_bits / 8,
        "ffn": ffn_bits / 8,
        "router": (p["router"] + p["expert_bias"]) * fmt.norm_bpw / 8,
        "norms": p["norms"] * fmt.norm_bpw / 8,
        "output": p["output"] * fmt.output_bpw / 8,
    }


def weight_bytes_breakdown(model: ModelArch, fmt: WeightFormat) -> dict[str, float]:
    """Bytes of each component of ``model`` stored in ``fmt``.

    Keys: embedding, attention, ffn (dense MLPs + all experts), router, norms, output. Routers, norms
    and biases are kept at ``norm_bpw`` (F32 in GGUF). With tied embeddings the output is 0: the
    embedding matrix is stored once, and in GGUF at ``output_bpw`` (llama.cpp's quantiser gives a
    tied ``token_embd`` the LM head's type).
    """
    return _bytes_of(model, fmt)


def weight_bytes(model: ModelArch, fmt: WeightFormat) -> float:
    """Total bytes of ``model``'s weights in ``fmt`` (the file size less metadata)."""
    return sum(_bytes_of(model, fmt).values())


# --- engines -------------------------------------------------------------------------------------


class ComputeBuffer(_Frozen):
    """Parameters of an engine's activation / compute-buffer estimate.

    bytes = base_gb x 1e9 + max(ubatch x vocab x logits_bytes (the LM head's f32 logits),
                                ubatch x context x n_heads x scores_bytes (attention scores;
                                0 with flash attention)).
    The graph allocator reuses memory, so the larger of the two big tensors sets the peak. This is
    an estimate from the shapes of the largest tensors, not a measurement.
    """

    base_gb: float = Field(ge=0)
    ubatch_default: int = Field(gt=0, description="tokens per micro-batch (llama.cpp -ub)")
    logits_bytes: float = Field(default=4, ge=0)
    scores_bytes: float = Field(
        default=4, ge=0, description="per attention score without flash attention"
    )
    flash_attention_default: bool = False


class Engine(_Entry):
    """An inference engine and how it places a model on GPUs."""

    parallel_modes: list[ParallelMode] = Field(min_length=1)
    default_split: ParallelMode
    split_notes: dict[ParallelMode, str] = Field(description="what each split mode does")
    cuda_context_gb: float = Field(ge=0, description="per GPU: CUDA context + cuBLAS/kernels")
    workspace_gb: float = Field(
        ge=0, description="per GPU activation/compute buffer, typical settings"
    )
    compute_buffer: ComputeBuffer | None = None
    gpu_memory_utilization: float | None = Field(
        default=None, gt=0, le=1, description="fraction of VRAM the engine claims up front (vLLM)"
    )
    kv_cache: Literal["paged", "contiguous"]
    kv_dtype_options: dict[str, float] = Field(
        min_length=1, description="KV cache dtype name -> bytes per element"
    )
    supports_cpu_offload: bool
    cpu_offload: str | None = Field(default=None, description="how offload works, its flag")
    formats: list[str] = Field(min_length=1, description="weight format ids it loads")
    experimental_formats: list[str] = Field(
        default_factory=list,
        description="format ids it loads only through a path its makers call experimental",
    )
    experimental_note: str | None = Field(
        default=None, description="what the experimental path means for a user (with its source)"
    )
    behaves_as: str | None = Field(default=None, description="engine id whose model applies")
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Engine:
        if self.default_split not in self.parallel_modes:
            raise ValueError(f"default_split {self.default_split!r} not in parallel_modes")
        missing = set(self.parallel_modes) - set(self.split_notes)
        if missing:
            raise ValueError(f"split_notes lacks {sorted(missing)}")
        return self

    def workspace_bytes(
        self,
        model: ModelArch,
        context: int,
        *,
        ubatch: int | None = None,
        flash_attention: bool | None = None,
    ) -> float:
        """Compute-buffer estimate in bytes (see :class:`ComputeBuffer`); ``workspace_gb`` otherwise."""
        cb = self.compute_buffer
        if cb is None:
            return self.workspace_gb * 1e9
        ub = cb.ubatch_default if ubatch is None else ubatch
        fa = cb.flash_attention_default if flash_attention is None else flash_attention
        scores = 0.0 if fa else ub * context * model.n_heads * cb.scores_bytes
        return cb.base_gb * 1e9 + max(ub * model.vocab_size * cb.logits_bytes, scores)


# --- the catalog ---------------------------------------------------------------------------------


def _closest(kind: str, wanted: str, ids: list[str]) -> UnknownIdError:
    close = difflib.get_close_matches(wanted, ids, n=3, cutoff=0.0)
    return UnknownIdError(
        f"unknown {kind} id {wanted!r}",
        hint="closest: " + ", ".join(close) if close else None,
    )


class LlmCatalog:
    """Models, weight formats and engines, keyed by id."""

    def __init__(
        self,
        models: Mapping[str, ModelArch],
        formats: Mapping[str, WeightFormat],
        engines: Mapping[str, Engine],
        exl2_template: WeightFormat | None = None,
    ) -> None:
        self.models: dict[str, ModelArch] = dict(models)
        self.formats: dict[str, WeightFormat] = dict(formats)
        self.engines: dict[str, Engine] = dict(engines)
        self.exl2_template = exl2_template

    def model(self, model_id: str) -> ModelArch:
        """The model with this id (case-insensitive), or read from a path to a Hugging Face
        ``config.json`` or a ``.gguf`` file (:mod:`rigkit.catalog.modelfile`);
        :class:`UnknownIdError` with the 3 closest ids otherwise."""
        from rigkit.catalog.modelfile import is_model_path, load_model_file

        if model_id.strip().lower() not in self.models and is_model_path(model_id):
            arch: ModelArch = load_model_file(model_id)
            return arch
        model_id = model_id.strip().lower()
        try:
            return self.models[model_id]
        except KeyError:
            raise _closest("model", model_id, list(self.models)) from None

    def engine(self, engine_id: str) -> Engine:
        """The engine with this id (case-insensitive); :class:`UnknownIdError` with the 3 closest
        ids otherwise."""
        engine_id = engine_id.strip().lower()
        try:
            return self.engines[engine_id]
        except KeyError:
            raise _closest("engine", engine_id, list(self.engines)) from None

    def format(self, format_id: str) -> WeightFormat:
        """The format with this id. ``exl2-<bpw>`` works for any 2.0 <= bpw <= 8.0.

        An EXL2 format at ``bpw`` quantises the decoder's linear layers to ``bpw`` on average
        (the figure includes exllamav2's scales), the LM head at 6 bits (exllamav2's default
        ``-hb 6``; 8 bits from 6.0 bpw up, as 6.0-8.0 bpw releases are commonly made with ``-hb 8``)
        and keeps the embedding table in FP16 in system RAM. ``exl2-4`` and ``exl2-4.0`` are the
        same format (canonical id ``exl2-4.0``). Ids are case-insensitive (``Q4_K_M``).
        """
        format_id = format_id.strip().lower()
        if format_id in self.formats:
            return self.formats[format_id]
        m = _EXL2_RE.match(format_id)
        if m is not None and self.exl2_template is not None:
            bpw = float(m.group(1))
            return self.formats.get(exl2_id(bpw)) or synthesise_exl2(self.exl2_template, bpw)
        raise _closest("weight format", format_id, list(self.formats))

    def to_dict(self) -> dict[str, Any]:
        """The whole catalog as plain data."""
        return {
            "models": {k: v.to_dict() for k, v in self.models.items()},
            "formats": {k: v.to_dict() for k, v in self.formats.items()},
            "engines": {k: v.to_dict() for k, v in self.engines.items()},
        }


# Llama-3-8B's parameter split (embedding, LM head, decoder linear layers, norms): the reference
# shape over which ``bits_per_weight`` is averaged.
_REF_EMBED = 128256 * 4096
_REF_LINEAR = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
_REF_NORMS = 65 * 4096
_REF_TOTAL = 2 * _REF_EMBED + _REF_LINEAR + _REF_NORMS


def exl2_id(bpw: float) -> str:
    """Canonical id of the EXL2 format at ``bpw``: ``exl2-4.0``, ``exl2-4.65``."""
    text = f"{bpw:g}"
    return f"exl2-{text}" if "." in text else f"exl2-{text}.0"


def synthesise_exl2(template: WeightFormat, bpw: float) -> WeightFormat:
    """An EXL2 format at ``bpw`` from the template entry (see :meth:`LlmCatalog.format`).

    ``bits_per_weight`` becomes the all-in average over Llama-3-8B's shape (FP16 embedding, the
    head at its bits, the decoder's linear layers at ``bpw``, F32 norms); ``nominal_bpw`` is ``bpw``.
    """
    if not EXL2_MIN_BPW <= bpw <= EXL2_MAX_BPW:
        raise UnknownIdError(
            f"EXL2 at {bpw:g} bits per weight is outside {EXL2_MIN_BPW:g}-{EXL2_MAX_BPW:g}",
            hint="use exl2-<bpw> with bpw between 2.0 and 8.0, e.g. exl2-4.65",
        )
    head = 8.0 if bpw >= 6.0 else 6.0
    all_in = (
        _REF_EMBED * template.token_embd_bpw
        + _REF_EMBED * head
        + _REF_LINEAR * bpw
        + _REF_NORMS * template.norm_bpw
    ) / _REF_TOTAL
    return template.model_copy(
        update={
            "id": exl2_id(bpw),
            "name": f"EXL2 {bpw:g} bpw (head {head:g} bits)",
            "bits_per_weight": round(all_in, 4),
            "nominal_bpw": bpw,
            "attn_bpw": bpw,
            "ffn_bpw": bpw,
            "output_bpw": head,
        }
    )


_DATA = "data"


def _read_yaml(name: str) -> Any:
    path = resources.files("rigkit.catalog").joinpath(_DATA, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"catalog file {name} is missing from the rigkit package") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        raise CatalogError(yaml_error_text(f"catalog file {name}", e)) from None


def _entries(name: str, key: str) -> list[dict[str, Any]]:
    data = _read_yaml(name)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise CatalogError(f"catalog file {name} needs a top-level list {key!r}")
    out: list[dict[str, Any]] = data[key]
    for i, e in enumerate(out):
        if not isinstance(e, dict):
            raise CatalogError(f"{name}: entry {i} of {key!r} is not a mapping")
    return out


def _build(cls: type[_T], name: str, raw: dict[str, Any]) -> _T:
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(entry)"
        raise CatalogError(
            f"{name}: entry {raw.get('id', '?')!r}: {loc}: {first['msg']}"
            + (f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else "")
        ) from None


def _index(cls: type[_T], name: str, key: str) -> dict[str, _T]:
    out: dict[str, _T] = {}
    for raw in _entries(name, key):
        item = _build(cls, name, raw)
        item_id = item.id
        if item_id in out:
            raise CatalogError(f"{name}: duplicate id {item_id!r}")
        out[item_id] = item
    return out


def build_llm_catalog(
    models: dict[str, ModelArch],
    formats: dict[str, WeightFormat],
    engines: dict[str, Engine],
    exl2_template: WeightFormat | None,
    exl2_presets: list[float],
) -> LlmCatalog:
    """Cross-check the three tables and assemble the catalog (CatalogError on a dangling id)."""
    if exl2_template is not None:
        for bpw in exl2_presets:
            f = synthesise_exl2(exl2_template, bpw)
            formats.setdefault(f.id, f)
    for f in formats.values():
        for eid in f.engines:
            if eid not in engines:
                raise CatalogError(f"formats.yaml: {f.id!r} names unknown engine {eid!r}")
    for e in engines.values():
        if e.behaves_as is not None and e.behaves_as not in engines:
            raise CatalogError(f"engines.yaml: {e.id!r} behaves_as unknown engine {e.behaves_as!r}")
        for fid in [*e.formats, *e.experimental_formats]:
            if fid not in formats and not (_EXL2_RE.match(fid) or fid == "exl2"):
                raise CatalogError(f"engines.yaml: {e.id!r} lists unknown format {fid!r}")
    return LlmCatalog(models, formats, engines, exl2_template)


def _overlay_user(
    models: dict[str, ModelArch], formats: dict[str, WeightFormat], engines: dict[str, Engine]
) -> None:
    """Add the user catalog's models, formats and engines (rigkit.catalog.user), by id."""
    from rigkit.catalog.loader import KINDS
    from rigkit.catalog.user import read_user_entries, user_catalog_dir, validate

    folder = user_catalog_dir()
    if folder is None:
        return
    tables: dict[str, tuple[dict[str, Any], type[_Entry]]] = {
        "models": (models, ModelArch),
        "formats": (formats, WeightFormat),
        "engines": (engines, Engine),
    }
    for e in read_user_entries(folder, list(KINDS)):
        if e.kind in tables:
            table, cls = tables[e.kind]
            item = validate(e, cls)
            table[item.id] = item


@functools.cache
def load_llm_catalog() -> LlmCatalog:
    """Load and validate the packaged model, format and engine catalog (cached)."""
    models = _index(ModelArch, "models.yaml", "models")
    formats = _index(WeightFormat, "formats.yaml", "formats")
    engines = _index(Engine, "engines.yaml", "engines")
    _overlay_user(models, formats, engines)
    data = _read_yaml("formats.yaml")
    template: WeightFormat | None = None
    presets: list[float] = []
    if isinstance(data, dict) and data.get("exl2_template") is not None:
        raw = data["exl2_template"]
        if not isinstance(raw, dict):
            raise CatalogError("formats.yaml: exl2_template is not a mapping")
        presets = [float(x) for x in raw.pop("presets_bpw", [])]
        template = _build(WeightFormat, "formats.yaml", raw)
    return build_llm_catalog(models, formats, engines, template, presets)
