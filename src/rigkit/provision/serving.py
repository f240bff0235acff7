"""The inference server's configuration, worked out by rigkit's own estimate for the build.

:func:`plan_serving` estimates the model on the build's GPUs with the chosen engine and turns the
estimate into the engine's arguments: vLLM's ``--tensor-parallel-size``, ``--max-model-len``,
``--max-num-seqs`` and ``--gpu-memory-utilization``; llama.cpp's ``-ngl``, ``--split-mode``,
``--tensor-split``, ``-c``, ``-np`` and ``-fa``; Ollama's environment; TGI's ``--num-shard`` and
token limits. Every value carries the arithmetic behind it. A configuration the estimate says cannot
run is refused with the reason and the nearest configurations that do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rigkit.build import Build
from rigkit.catalog.llm import load_llm_catalog
from rigkit.errors import RigkitError
from rigkit.estimate import Estimate, estimate
from rigkit.estimate.capacity import models_disk_read_gb_s, what_fits
from rigkit.estimate.memory import engine_nums, split_layers
from rigkit.estimate.resolve import model_nums
from rigkit.provision.plan import (
    SERVING_CONTAINER,
    SERVING_UNIT,
    ProvisionError,
    ProvisionOptions,
    Var,
)

__all__ = ["IMAGES", "ServeRequest", "ServingPlan", "kv_capacity_tokens", "plan_serving"]

#: container images per engine (llama.cpp runs from its CUDA server image too)
IMAGES: Final[dict[str, str]] = {
    "vllm": "vllm/vllm-openai:v0.8.5",
    "tgi": "ghcr.io/huggingface/text-generation-inference:3.2",
    "ollama": "ollama/ollama:0.6.8",
    "llama.cpp": "ghcr.io/ggml-org/llama.cpp:server-cuda",
}
#: tokens per sequence when --context is not given: the model's trained context up to this (a
#: 128k context per sequence would leave room for one sequence on most builds)
DEFAULT_CONTEXT: Final = 32768
#: vLLM allocates KV blocks of 16 tokens: the context is rounded down to whole blocks
BLOCK_TOKENS: Final = 16


@dataclass(frozen=True)
class ServeRequest:
    model: str
    quant: str
    engine: str = "vllm"
    context: int | None = None  # tokens per sequence; default the model's trained context


@dataclass(frozen=True)
class ServingPlan:
    """The engine's command line and environment, with the estimate behind them."""

    engine: str
    model: str
    quant: str
    image: str | None
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    vars: tuple[Var, ...]
    estimate: Estimate
    model_flag: str = "--model"  # the engine's option for the model path (set by the role)
    unit: str = SERVING_UNIT
    container: str = SERVING_CONTAINER

    def to_dict(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "model": self.model,
            "quant": self.quant,
            "image": self.image,
            "args": list(self.args),
            "env": dict(self.env),
            "unit": self.unit,
            "container": self.container,
            "values": {v.name: {"value": v.value, "reason": v.reason} for v in self.vars},
        }


def _common(build: Build) -> dict[str, object]:
    return {
        "cpu": build.cpu.id,
        "ram_gb": float(build.memory_gb),
        "disk_read_gb_s": models_disk_read_gb_s(build),
    }


def _estimate(build: Build, req: ServeRequest, split: str | None, ctx: int) -> Estimate:
    g = build.gpus[0].gpu
    prompt = min(512, max(1, ctx // 2))
    gen = min(128, max(0, ctx - prompt))
    return estimate(
        req.model,
        req.quant,
        g.id,
        gpus=build.gpu_count,
        engine=req.engine,
        split=split,
        prompt=prompt,
        gen=gen,
        ctx=ctx,
        **_common(build),  # type: ignore[arg-type]
    )


def kv_capacity_tokens(build: Build, req: ServeRequest, split: str | None) -> int:
    """Tokens the KV cache holds once the weights are in (the estimate's capacity at one token
    per sequence: its ``max_concurrent_sequences`` with ``ctx`` 1)."""
    g = build.gpus[0].gpu
    e = estimate(
        req.model,
        req.quant,
        g.id,
        gpus=build.gpu_count,
        engine=req.engine,
        split=split,
        prompt=0,
        gen=1,
        ctx=1,
        **_common(build),  # type: ignore[arg-type]
    )
    return e.max_concurrent_sequences


def _offload_alternative(build: Build, req: ServeRequest, ctx: int) -> str | None:
    """The largest llama.cpp format (no larger than the request's) that runs with layers on
    the CPU: what the build can do when nothing fits in GPU memory."""
    from rigkit.catalog.llm import load_llm_catalog

    size = model_nums(req.model, req.quant).total_bytes
    options: list[tuple[float, str]] = []
    for f in engine_nums("llama.cpp").formats:
        try:
            b = model_nums(req.model, f).total_bytes
        except RigkitError:
            continue
        if b <= size:
            options.append((b, f))
    _ = load_llm_catalog
    for _b, f in sorted(options, reverse=True):
        try:
            alt = _estimate(build, ServeRequest(req.model, f, "llama.cpp"), None, ctx)
        except RigkitError:
            continue
        if alt.runnable:
            where = (
                f"{alt.gpu_layers} of {(alt.gpu_layers or 0) + (alt.cpu_layers or 0)} layers on"
                f" the GPUs, the rest from CPU RAM"
                if alt.offload
                else "all layers on the GPUs"
            )
            speed = (
                f", ~{alt.decode_tokens_per_s:.2g} tok/s decode" if alt.decode_tokens_per_s else ""
            )
            return f"--engine llama.cpp --quant {f} ({where}{speed})"
    return None


def _refuse(build: Build, req: ServeRequest, e: Estimate) -> ProvisionError:
    why = next((a for a in e.assumptions if a.startswith("does not fit")), None)
    if why is None:
        why = (
            f"needs {e.memory_gb_per_gpu:.1f} GB on the fullest GPU, the"
            f" {e.gpu} has {e.vram_gb_per_gpu:.1f} GB"
        )
        if e.cpu_ram_gb > 0 and e.offload:
            why += f", and {e.cpu_ram_gb:.0f} GB of CPU RAM for the rest (the build has {build.memory_gb} GB)"
    alts = what_fits(e, **_common(build))
    if not alts:
        other = _offload_alternative(build, req, e.ctx)
        if other is not None and not other.startswith(
            f"--engine {req.engine} --quant {req.quant} "
        ):
            alts.append(other)
    hint = (
        ("what would: " + "; ".join(alts))
        if alts
        else "nothing smaller of this model runs on this build, even with CPU offload"
    )
    return ProvisionError(
        f"{req.model} at {req.quant} with {req.engine} cannot run on {build.gpu_count}x"
        f" {e.gpu}: {why}",
        hint=hint,
    )


def plan_serving(build: Build, req: ServeRequest, opts: ProvisionOptions) -> ServingPlan:
    """The engine configuration for ``req`` on ``build``; ProvisionError when it cannot run."""
    if len({g.gpu.id for g in build.gpus}) > 1:
        raise ProvisionError(
            "the build mixes GPU models; rigkit estimates (and configures) one GPU model at a time"
        )
    try:
        en = engine_nums(req.engine)
        m = model_nums(req.model, req.quant)
    except RigkitError as err:
        raise ProvisionError(err.message, hint=err.hint) from None
    n = build.gpu_count
    split: str | None = en.default_split if n > 1 else None
    if req.engine in ("vllm", "tgi") and n > 1:
        split = "tensor"
    want = req.context or min(m.max_context, DEFAULT_CONTEXT)
    if want < 2:
        raise ProvisionError(f"--context {want} is too small")
    try:
        e = _estimate(build, req, split, want)
    except RigkitError as err:
        raise ProvisionError(err.message, hint=err.hint) from None
    if not e.fits and e.max_context >= BLOCK_TOKENS and not e.offload:
        ctx = e.max_context - e.max_context % BLOCK_TOKENS
        e = _estimate(build, req, split, ctx)
    if not e.runnable or (not e.fits and not e.offload):
        raise _refuse(build, req, e)
    if e.offload and en.model_id != "llama.cpp":
        raise _refuse(build, req, e)
    cap = kv_capacity_tokens(build, req, split)
    kv_tok = m.kv_token_bytes(1)
    pool = cap * kv_tok
    gpu = build.gpus[0].gpu
    head = (
        f"{req.model} {req.quant} on {n}x {gpu.id} with {req.engine}: the estimate puts"
        f" {e.memory_gb_per_gpu:.1f} of {e.vram_gb_per_gpu:.1f} GB on the fullest GPU"
    )
    pool_text = (
        f"KV pool {pool / 1e9:.1f} GB over {n} GPU{'s' if n > 1 else ''}"
        f" / {kv_tok:,.0f} B per token = {cap:,} tokens"
    )
    if req.engine == "vllm":
        return _vllm(build, req, e, cap, pool_text, head)
    if req.engine == "tgi":
        return _tgi(build, req, e, cap, pool_text, head)
    if req.engine in ("llama.cpp", "ollama"):
        return _llama(build, req, e, cap, pool_text, head, m.n_layers)
    raise ProvisionError(
        f"rigkit provision has no deployment for engine {req.engine!r}",
        hint="one of: vllm, llama.cpp, ollama, tgi",
    )


def _base_vars(req: ServeRequest, e: Estimate, head: str) -> list[Var]:
    return [
        Var("rigkit_serving_enabled", True, head),
        Var("rigkit_serving_engine", req.engine, "--engine"),
        Var("rigkit_serving_model", req.model, "--serve (catalog id)"),
        Var("rigkit_serving_quant", req.quant, "--quant (catalog id)"),
        Var("rigkit_serving_unit", SERVING_UNIT, "the unit the monitor's tier-2 response stops"),
        Var("rigkit_serving_container", SERVING_CONTAINER, "the container the unit runs"),
        Var("rigkit_serving_image", IMAGES[req.engine], f"{req.engine}'s CUDA server image"),
        Var(
            "rigkit_serving_decode_tokens_per_s",
            round(e.decode_tokens_per_s or 0.0, 1),
            "estimated decode speed per sequence (bench serve compares the real one)",
        ),
    ]


def _vllm(
    build: Build, req: ServeRequest, e: Estimate, cap: int, pool_text: str, head: str
) -> ServingPlan:
    n = build.gpu_count
    en = engine_nums("vllm")
    util = en.util or 0.9
    mml = min(e.max_context, e.ctx)
    seqs = e.max_concurrent_sequences
    values = [
        *_base_vars(req, e, head),
        Var(
            "rigkit_vllm_tensor_parallel_size",
            n,
            f"tensor-parallel-size {n}: one shard per GPU ({n} GPUs, tensor split)",
        ),
        Var(
            "rigkit_vllm_gpu_memory_utilization",
            util,
            f"gpu-memory-utilization {util:g}: the share of each GPU's memory the estimate"
            " gives vLLM (weights, activations and CUDA graphs come out of it, the rest is KV)",
        ),
        Var(
            "rigkit_vllm_max_model_len",
            mml,
            f"max-model-len {mml:,}: {pool_text}; the context asked for is {e.ctx:,}"
            f" ({'--context' if req.context else 'the model trained context, at most ' + format(DEFAULT_CONTEXT, ',')})"
            f" and the pool holds {cap:,}, so {mml:,} per sequence",
        ),
        Var(
            "rigkit_vllm_max_num_seqs",
            seqs,
            f"max-num-seqs {seqs}: {pool_text} / {mml:,} per sequence = {cap / mml:.2f}"
            f" -> {seqs} sequences of full context at once",
        ),
    ]
    gguf: tuple[str, ...] = ()
    if req.quant in en.experimental:
        # vLLM docs, "GGUF": a .gguf file carries no Hugging Face tokenizer; vLLM takes the base model's
        repo = load_llm_catalog().model(req.model).hf_repo
        if repo is None:
            raise ProvisionError(
                f"{req.model} at {req.quant} with vllm: a GGUF file needs the base model's tokenizer"
                " and the catalog entry names no hf_repo",
                hint="add hf_repo to the model's catalog entry, or serve it with --engine llama.cpp",
            )
        gguf = ("--tokenizer", repo)
        values.append(
            Var(
                "rigkit_vllm_tokenizer",
                repo,
                f"tokenizer {repo}: {req.quant} is a GGUF format, which vLLM loads only through its"
                " experimental GGUF path, with the base model's tokenizer (vLLM docs, GGUF)",
            )
        )
    args = (
        "--served-model-name",
        req.model,
        *gguf,
        "--tensor-parallel-size",
        str(n),
        "--max-model-len",
        str(mml),
        "--max-num-seqs",
        str(seqs),
        "--gpu-memory-utilization",
        f"{util:g}",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    )
    return ServingPlan("vllm", req.model, req.quant, IMAGES["vllm"], args, (), tuple(values), e)


def _tgi(
    build: Build, req: ServeRequest, e: Estimate, cap: int, pool_text: str, head: str
) -> ServingPlan:
    n = build.gpu_count
    total = e.max_context
    inp = max(1, total - min(1024, total // 4))
    values = [
        *_base_vars(req, e, head),
        Var("rigkit_tgi_num_shard", n, f"num-shard {n}: one shard per GPU"),
        Var(
            "rigkit_tgi_max_total_tokens",
            total,
            f"max-total-tokens {total:,}: one sequence's context ({pool_text})",
        ),
        Var(
            "rigkit_tgi_max_input_tokens",
            inp,
            f"max-input-tokens {inp:,}: the context less room to generate"
            f" ({total:,} - {total - inp:,})",
        ),
        Var(
            "rigkit_tgi_max_batch_total_tokens",
            cap,
            f"max-batch-total-tokens {cap:,}: {pool_text}",
        ),
    ]
    args = (
        "--num-shard",
        str(n),
        "--max-total-tokens",
        str(total),
        "--max-input-tokens",
        str(inp),
        "--max-batch-total-tokens",
        str(cap),
        "--port",
        "8000",
    )
    return ServingPlan(
        "tgi", req.model, req.quant, IMAGES["tgi"], args, (), tuple(values), e, "--model-id"
    )


def _llama(
    build: Build,
    req: ServeRequest,
    e: Estimate,
    cap: int,
    pool_text: str,
    head: str,
    n_layers: int,
) -> ServingPlan:
    n = build.gpu_count
    ctx = e.ctx
    slots = max(1, e.max_concurrent_sequences) if e.fits else 1
    if e.offload and e.gpu_layers is not None:
        ngl = e.gpu_layers
        placement = split_layers(ngl, n) if ngl else [0] * n
        ngl_why = (
            f"-ngl {ngl}: the estimate keeps {ngl} of {n_layers} layers on the GPUs and"
            f" {e.cpu_layers} on the CPU"
        )
    else:
        ngl = n_layers + 1
        placement = split_layers(n_layers, n)
        ngl_why = (
            f"-ngl {ngl}: all {n_layers} repeating layers and the output layer on the GPUs"
            " (the estimate says they fit)"
        )
    split_text = ",".join(str(x) for x in placement)
    values = [
        *_base_vars(req, e, head),
        Var("rigkit_llama_ngl", ngl, ngl_why),
        Var(
            "rigkit_llama_split_mode",
            "layer",
            "split-mode layer: whole layers per GPU (the estimate's placement)",
        ),
        Var(
            "rigkit_llama_tensor_split",
            split_text,
            f"tensor-split {split_text}: layers per GPU in the estimate's placement"
            f" ({n_layers} layers over {n} GPUs)",
        ),
        Var(
            "rigkit_llama_parallel",
            slots,
            f"-np {slots}: {pool_text} / {ctx:,} per sequence -> {slots} slot(s)",
        ),
        Var(
            "rigkit_llama_ctx",
            ctx * slots,
            f"-c {ctx * slots:,}: {slots} slot(s) x {ctx:,} tokens (llama-server divides -c"
            " among its slots)",
        ),
        Var("rigkit_llama_flash_attention", True, "-fa on: no attention-score buffer"),
    ]
    if req.engine == "ollama":
        env = (
            ("OLLAMA_NUM_PARALLEL", str(slots)),
            ("OLLAMA_CONTEXT_LENGTH", str(ctx)),
            ("OLLAMA_FLASH_ATTENTION", "1"),
            ("OLLAMA_SCHED_SPREAD", "1" if n > 1 else "0"),
            ("OLLAMA_HOST", "0.0.0.0:8000"),
        )
        values.append(
            Var(
                "rigkit_ollama_env",
                dict(env),
                f"Ollama: {slots} parallel request(s) of {ctx:,} tokens, flash attention,"
                f" spread over {n} GPU(s) (same arithmetic as llama.cpp: Ollama runs it)",
            )
        )
        return ServingPlan(
            "ollama", req.model, req.quant, IMAGES["ollama"], (), env, tuple(values), e
        )
    args = (
        "--alias",
        req.model,
        "-ngl",
        str(ngl),
        "--split-mode",
        "layer",
        "--tensor-split",
        split_text,
        "-c",
        str(ctx * slots),
        "-np",
        str(slots),
        "-fa",
        "on",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    )
    return ServingPlan(
        "llama.cpp", req.model, req.quant, IMAGES["llama.cpp"], args, (), tuple(values), e
    )
