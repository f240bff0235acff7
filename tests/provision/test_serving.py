"""Serving configured by the estimate: the engine's arguments with the arithmetic behind them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from provision_helpers import REF, load_yaml

from rigkit.catalog.llm import load_llm_catalog
from rigkit.estimate import estimate
from rigkit.monitor.respond import load_policy
from rigkit.provision import (
    ProvisionError,
    ProvisionOptions,
    ServeRequest,
    plan_build,
    plan_serving,
)
from rigkit.provision.generate import render_project
from rigkit.provision.plan import SERVING_UNIT
from rigkit.spec import load_build

OPTS = ProvisionOptions()
REF_BUILD = load_build(REF)


def _arg(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_catalog_ids() -> None:
    llm = load_llm_catalog()
    assert llm.model("llama-3-70b").n_layers == 80
    assert llm.model("llama-3.1-405b").n_layers == 126


def test_vllm_reference_llama3_70b_awq() -> None:
    """4x RTX 4090 (24 GiB = 25,769,803,776 B each), vLLM at gpu-memory-utilization 0.9:
    usable 25,769,803,776 x 0.9 = 23,192,823,398.4 B per GPU.
    Weights: AWQ llama-3-70b is 39,770,423,296 B (the same architecture and vocabulary as
    llama-3.1-70b below); tensor parallel 4 puts a quarter, 9,942,605,824 B, on each GPU; + 0.5 GB
    CUDA context + 1.5 GB vLLM workspace = 11,942,605,824 B fixed. KV pool per GPU =
    23,192,823,398.4 - 11,942,605,824 = 11,250,217,574.4 B.
    KV per token: 80 layers x 8 KV heads x 128 x 2 (K and V) x 2 B = 327,680 B, a quarter
    (81,920 B) per GPU -> 11,250,217,574.4 / 81,920 = 137,331.8 -> 137,331 tokens.
    max-model-len = min(137,331, 8,192 trained context) = 8,192;
    max-num-seqs = 137,331 // 8,192 = 16 (16.76)."""
    plan = plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "awq-int4", "vllm"), OPTS)
    assert _arg(plan.args, "--tensor-parallel-size") == "4"
    assert _arg(plan.args, "--max-model-len") == "8192"
    assert _arg(plan.args, "--max-num-seqs") == "16"
    assert _arg(plan.args, "--gpu-memory-utilization") == "0.9"
    # the same numbers as the estimate's own KV capacity
    e = estimate(
        "llama-3-70b",
        "awq-int4",
        "rtx-4090",
        gpus=4,
        engine="vllm",
        split="tensor",
        prompt=512,
        gen=128,
        ctx=8192,
    )
    assert (e.max_context, e.max_concurrent_sequences) == (8192, 16)
    reasons = {v.name: v.reason for v in plan.vars}
    assert "/ 327,680 B per token = 137,331 tokens" in reasons["rigkit_vllm_max_num_seqs"]
    assert (
        "KV pool 45.0 GB over 4 GPUs" in reasons["rigkit_vllm_max_model_len"]
    )  # 137,331 x 327,680 = 45,000,622,080 B


def test_vllm_reference_llama3_70b_q4km() -> None:
    """The same build serving GGUF Q4_K_M through vLLM's experimental GGUF path.
    Weights: Q4_K_M llama-3-70b is 42,470,588,416 B (80 layers x 512,721,305.6 + output
    861,880,320 + embeddings 591,003,648, the catalog's bits per weight); tensor parallel 4 puts
    a quarter, 10,617,647,104 B, on each GPU; + 0.5 GB CUDA context + 1.5 GB vLLM workspace
    = 12,617,647,104 B fixed. KV pool per GPU = 23,192,823,398.4 - 12,617,647,104
    = 10,575,176,294.4 B; / 81,920 B per token per GPU = 129,091.5 -> 129,091 tokens.
    max-model-len = min(129,091, 8,192 trained context) = 8,192;
    max-num-seqs = 129,091 // 8,192 = 15 (15.76). vLLM needs the base model's tokenizer beside
    a GGUF file, so the unit passes --tokenizer."""
    plan = plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "q4_k_m", "vllm"), OPTS)
    assert _arg(plan.args, "--tensor-parallel-size") == "4"
    assert _arg(plan.args, "--max-model-len") == "8192"
    assert _arg(plan.args, "--max-num-seqs") == "15"
    assert _arg(plan.args, "--tokenizer") == "meta-llama/Meta-Llama-3-70B"
    e = estimate(
        "llama-3-70b", "q4_k_m", "rtx-4090", gpus=4, engine="vllm", split="tensor", ctx=8192
    )
    assert (e.max_context, e.max_concurrent_sequences) == (8192, 15)
    assert any("experimental" in n for n in e.assumptions)
    reasons = {v.name: v.reason for v in plan.vars}
    assert "/ 327,680 B per token = 129,091 tokens" in reasons["rigkit_vllm_max_num_seqs"]
    assert (
        "KV pool 42.3 GB over 4 GPUs" in reasons["rigkit_vllm_max_model_len"]
    )  # 129,091 x 327,680
    assert "experimental" in reasons["rigkit_vllm_tokenizer"]


def test_vllm_long_context_gives_fewer_sequences() -> None:
    """llama-3.1-70b AWQ: weights 39,770,423,296 B / 4 = 9,942,605,824 B per GPU; pool
    23,192,823,398.4 - 9,942,605,824 - 2e9 = 11,250,217,574.4 B / 81,920 B = 137,331 tokens.
    At 32,768 tokens per sequence (the default cap): 137,331 // 32,768 = 4 sequences."""
    plan = plan_serving(REF_BUILD, ServeRequest("llama-3.1-70b", "awq-int4", "vllm"), OPTS)
    assert _arg(plan.args, "--max-model-len") == "32768"
    assert _arg(plan.args, "--max-num-seqs") == "4"
    reasons = {v.name: v.reason for v in plan.vars}
    assert reasons["rigkit_vllm_max_num_seqs"].startswith(
        "max-num-seqs 4: KV pool 45.0 GB over 4 GPUs / 327,680 B per token = 137,331 tokens"
        " / 32,768 per sequence = 4.19"
    )


def test_llama_cpp_reference() -> None:
    """llama.cpp on 4x RTX 4090: all 80 layers fit, so -ngl 81 (80 + the output layer); the
    estimate's layer placement is 80 / 4 = 20 per GPU -> --tensor-split 20,20,20,20;
    -np = the estimate's concurrent sequences at 8,192 tokens, -c = -np x 8,192."""
    plan = plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "q4_k_m", "llama.cpp"), OPTS)
    assert _arg(plan.args, "-ngl") == "81"
    assert _arg(plan.args, "--tensor-split") == "20,20,20,20"
    assert _arg(plan.args, "--split-mode") == "layer"
    e = estimate("llama-3-70b", "q4_k_m", "rtx-4090", gpus=4, engine="llama.cpp", ctx=8192)
    assert e.fits and e.gpu_layers is None
    np_ = int(_arg(plan.args, "-np"))
    assert np_ == e.max_concurrent_sequences >= 1
    assert int(_arg(plan.args, "-c")) == np_ * 8192
    assert _arg(plan.args, "-fa") == "on"


def test_405b_does_not_fit_and_names_what_would() -> None:
    """405B at AWQ int4 is ~230 GB of weights, far above 4 x 21.6 GB: refused, with the
    configuration that runs on this build (llama.cpp with most layers from the 512 GB of RAM)."""
    with pytest.raises(ProvisionError) as err:
        plan_serving(REF_BUILD, ServeRequest("llama-3.1-405b", "awq-int4", "vllm"), OPTS)
    msg = str(err.value)
    assert "cannot run on 4x rtx-4090" in msg
    assert "weights alone exceed" in msg
    assert re.search(
        r"what would: --engine llama\.cpp --quant \S+ \(\d+ of 126 layers on the GPUs", msg
    )


def test_70b_f16_refusal_reuses_the_estimators_suggestions() -> None:
    """70B F16 (141 GB) on 4x 24 GB: refused, with the estimator's own nearest configurations
    (a smaller format on 4 GPUs, F16 on more GPUs)."""
    from rigkit.estimate.capacity import what_fits

    with pytest.raises(ProvisionError) as err:
        plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "f16", "vllm"), OPTS)
    e = estimate(
        "llama-3-70b",
        "f16",
        "rtx-4090",
        gpus=4,
        engine="vllm",
        split="tensor",
        prompt=512,
        gen=128,
        ctx=8192,
        cpu=REF_BUILD.cpu.id,
        ram_gb=512.0,
    )
    alts = what_fits(e, cpu=REF_BUILD.cpu.id, ram_gb=512.0)
    assert len(alts) == 2 and alts[1].startswith("f16 on 8x rtx-4090")
    assert str(err.value).endswith("(hint: what would: " + "; ".join(alts) + ")")


def test_ollama_and_tgi() -> None:
    o = plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "q4_k_m", "ollama"), OPTS)
    env = dict(o.env)
    assert env["OLLAMA_CONTEXT_LENGTH"] == "8192" and env["OLLAMA_SCHED_SPREAD"] == "1"
    assert int(env["OLLAMA_NUM_PARALLEL"]) >= 1
    t = plan_serving(REF_BUILD, ServeRequest("llama-3-70b", "awq-int4", "tgi"), OPTS)
    assert _arg(t.args, "--num-shard") == "4"
    assert _arg(t.args, "--max-total-tokens") == "8192"


def test_serving_unit_is_what_tier2_stops(tmp_path: Path) -> None:
    """The monitor's response settings written for the host name the serving unit; the monitor's
    own loader reads them back with that unit in tier 2."""
    plan = plan_build(REF, ("localhost",), OPTS, ServeRequest("llama-3-70b", "awq-int4", "vllm"))
    out = tmp_path / "p"
    render_project([plan], OPTS, out)
    gv = load_yaml(out / "group_vars" / "build_reference_4x4090.yml")
    assert gv["rigkit_serving_unit"] == SERVING_UNIT == "rigkit-serve.service"
    assert gv["rigkit_monitor_tier2_units"] == [SERVING_UNIT]
    # the role's template renders response.tier2.units from that list (to_json)
    rules = tmp_path / "rules.yml"
    tmpl = (out / "roles/rigkit_monitor/templates/monitor-rules.yml.j2").read_text()
    import json

    rules.write_text(
        tmpl.replace("{{ ansible_managed }}", "x")
        .replace(
            "{{ rigkit_monitor_tier2_units | to_json }}",
            json.dumps(gv["rigkit_monitor_tier2_units"]),
        )
        .replace(
            "{{ rigkit_monitor_tier2_containers | to_json }}",
            json.dumps(gv["rigkit_monitor_tier2_containers"]),
        )
    )
    policy = load_policy(rules, REF_BUILD)
    assert policy.tier2_units == ("rigkit-serve.service",)
    assert policy.tier2_containers == ("rigkit-serve",)
    unit = (out / "roles/rigkit_serving/templates/rigkit-serve.service.j2").read_text()
    assert "--name {{ rigkit_serving_container }}" in unit
