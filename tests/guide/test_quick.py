"""`rigkit guide --quick`: the one-page card agrees with the plan and the monitor's defaults."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rigkit.guide.quick import quick_reference
from rigkit.guide.render import find_chromium
from rigkit.spec import load_build

#: the `cli` fixture (conftest.py): argv -> (exit status, stdout, stderr)
RunCli = Callable[[list[str]], tuple[int, str, str]]

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "examples" / "reference-4x4090.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_reference_card_numbers() -> None:
    q = quick_reference(load_build(REF))
    rows = {r.label: r.value for r in q.power}
    # PSU 0: 2 x 450 W GPUs + the system; the plan's budget says 1453 W of 1600 W (91%)
    assert rows["PSU 0 (primary)"].startswith("EVGA SuperNOVA 1600 T2: 1453 of 1600 W (91%)")
    assert rows["PSU 1 (secondary)"].startswith("EVGA SuperNOVA 1000 T2: 900 of 1000 W (90%)")
    alerts = {r.label: r.value for r in q.alerts}
    # the RTX 4090 has no slowdown temperature in the catalog: the monitor's fallback 88 C,
    # gpu_temp_high warns 5 C below it (83), gpu_temp_critical at it (88)
    assert alerts["warning: gpu_temp_high"] == "gpu.temperature_c >= 83 for 60 s"
    assert alerts["critical: gpu_temp_critical"] == "gpu.temperature_c >= 88 for 30 s"
    assert not any(label.startswith("info") for label in alerts)
    tiers = {r.label: r.value for r in q.tiers}
    # tier 3: shutdown 93 C (fallback) - 2 = 91 C for 10 s
    assert "temperature >= 91 C (shutdown 93 - 2) for 10 s" in tiers["Tier 3: shut down"]
    slots = {r.label: r.value for r in q.slots}
    assert slots["PCIEX16_4"] == "GPU 1 (NVIDIA GeForce RTX 4090): x16 Gen4 (CPU)"
    assert "UPS service" in q.contacts


def test_quick_is_html_and_pdf_only(tmp_path: Path, cli: RunCli) -> None:
    code, _, err = cli(["guide", str(REF), "--quick", "--format", "md", "--out", str(tmp_path)])
    assert code == 2 and "--quick writes html and pdf only" in err
    code, out, _ = cli(
        ["guide", str(REF), "--quick", "--format", "html", "--out", str(tmp_path), "--json"]
    )
    assert code == 0
    assert [Path(f).name for f in json.loads(out)["files"]] == ["quick-reference.html"]


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed")
@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="poppler-utils is not installed")
@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_quick_reference_prints_on_one_page(spec: Path, tmp_path: Path, cli: RunCli) -> None:
    code, _, err = cli(["guide", str(spec), "--quick", "--out", str(tmp_path)])
    assert code == 0, err
    info = subprocess.run(
        ["pdfinfo", str(tmp_path / "quick-reference.pdf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Pages:           1" in info
