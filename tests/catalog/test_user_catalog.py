"""The user catalog: YAML files that add a GPU, a model and a board variant; bad files are
FILE:LINE and exit status 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rigkit.catalog import load_catalog
from rigkit.catalog.llm import load_llm_catalog
from rigkit.catalog.user import reload
from rigkit.errors import CatalogError
from rigkit.estimate import estimate

USER_FILE = """\
gpus:
  - id: rtx-4090-48gb
    name: RTX 4090 with 48 GB (modded board)
    source: seller's listing and nvidia-smi -q of the card (48 GB, 1008 GB/s, 450 W)
    architecture: ada
    sm_count: 128
    boost_clock_mhz: 2520
    l2_cache_mb: 72
    sources: {sm_count: NVIDIA Ada Lovelace architecture whitepaper (AD102 in the RTX 4090)}
    vram_gb: 48
    memory_type: gddr6x
    bandwidth_gb_s: 1008
    fp32_tflops: 82.6
    fp16_tflops: 165.2
    fp16_acc16_tflops: 330.3
    bf16_tflops: 165.2
    fp8_tflops: 330.3
    int8_tops: 660.6
    tdp_w: 450
    power_connectors: {12vhpwr: 1}
    cooling: blower
    slot_width: 2
    length_mm: 267
    pcie_gen: 4
    p2p: false
gpu_variants:
  - id: rtx-3090-asus-tuf
    gpu: rtx-3090
    name: ASUS TUF Gaming GeForce RTX 3090 OC
    source: ASUS TUF-RTX3090-O24G-GAMING specifications (299.9 x 127.4 x 51.7 mm, 2.7 slots)
    slot_width: 2.7
    length_mm: 299.9
    power_connectors: {pcie_8pin: 2}
models:
  - id: tiny-llama
    name: Tiny Llama (user)
    family: llama
    source: config.json of a local fine-tune
    params_b: 1.1
    active_params_b: 1.1
    n_layers: 22
    hidden_size: 2048
    n_heads: 32
    n_kv_heads: 4
    head_dim: 64
    ffn_size: 5632
    vocab_size: 32000
    tied_embeddings: false
    max_context: 2048
    mlp_kind: gated
"""


@pytest.fixture()
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "catalog"
    folder.mkdir()
    monkeypatch.setenv("RIGKIT_CATALOG", str(folder))
    reload()
    yield folder
    monkeypatch.delenv("RIGKIT_CATALOG")
    reload()


def test_a_user_file_adds_a_gpu_a_model_and_a_board_variant(user_dir: Path) -> None:
    (user_dir / "mine.yaml").write_text(USER_FILE, encoding="utf-8")
    reload()
    cat = load_catalog()
    assert cat.gpu("rtx-4090-48gb").vram_gb == 48
    tuf = cat.gpu("rtx-3090-asus-tuf")
    # the board's own size and plugs over the RTX 3090's chip and memory figures
    assert (tuf.slot_width, tuf.length_mm, tuf.bandwidth_gb_s) == (2.7, 299.9, 936)
    assert tuf.power_connectors == {"pcie_8pin": 2}
    assert "ASUS TUF" in tuf.source and "rtx-3090" in (tuf.notes or "")
    assert load_llm_catalog().model("tiny-llama").n_layers == 22
    # the estimator uses them: Llama-3-70B Q4_K_M (~42.5 GB) fits one 48 GB card
    e = estimate("llama-3-70b", "q4_k_m", "rtx-4090-48gb", prompt=512, gen=128)
    assert e.fits
    assert estimate("tiny-llama", "f16", "rtx-3090-asus-tuf").fits


def test_a_spec_uses_the_user_board_variant(user_dir: Path, tmp_path: Path) -> None:
    from rigkit.cli.main import build_app

    (user_dir / "mine.yaml").write_text(USER_FILE, encoding="utf-8")
    reload()
    example = Path(__file__).resolve().parents[2] / "examples" / "2x3090-desktop.yaml"
    text = example.read_text(encoding="utf-8")
    assert "rtx-3090" in text
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("rtx-3090", "rtx-3090-asus-tuf"), encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["plan", str(path), "--json"])
    assert result.exit_code in (0, 1), result.output  # planned (1: a rule found a problem)
    assert "ASUS TUF Gaming GeForce RTX 3090 OC" in result.output


def test_a_bad_user_file_is_file_line_and_exit_2(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from rigkit.cli import entry

    bad = USER_FILE.replace("    vram_gb: 48\n", "    vram_gb: -48\n")
    path = user_dir / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    reload()
    line = bad.splitlines().index("    vram_gb: -48") + 1  # line 10 of the file
    with pytest.raises(
        CatalogError, match=rf"bad.yaml:{line}: gpus entry 'rtx-4090-48gb': vram_gb"
    ):
        load_catalog()
    reload()
    monkeypatch.setattr(sys, "argv", ["rigkit", "catalog", "gpus", "--json"])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"bad.yaml:{line}: gpus entry 'rtx-4090-48gb': vram_gb" in err
    assert "Traceback" not in err


def test_unknown_kind_and_unknown_base_gpu_are_file_line(user_dir: Path) -> None:
    (user_dir / "a.yaml").write_text("gpu: []\n", encoding="utf-8")
    reload()
    with pytest.raises(CatalogError, match=r"a.yaml:1: unknown kind 'gpu'"):
        load_catalog()
    (user_dir / "a.yaml").write_text(
        "gpu_variants:\n  - id: x\n    gpu: rtx-9999\n    name: X\n    source: nowhere\n",
        encoding="utf-8",
    )
    reload()
    with pytest.raises(CatalogError, match=r"a.yaml:3: gpu_variants entry 'x': gpu 'rtx-9999'"):
        load_catalog()


def test_catalog_option_points_at_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rigkit.cli.main import build_app

    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "mine.yaml").write_text(USER_FILE, encoding="utf-8")
    monkeypatch.delenv("RIGKIT_CATALOG", raising=False)
    reload()
    try:
        result = CliRunner().invoke(
            build_app(), ["--catalog", str(folder), "catalog", "models", "--json"]
        )
        assert result.exit_code == 0, result.output
        ids = [e["id"] for e in json.loads(result.output)["entries"]]
        assert "tiny-llama" in ids
    finally:
        monkeypatch.delenv("RIGKIT_CATALOG", raising=False)
        reload()
