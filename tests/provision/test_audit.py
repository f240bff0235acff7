"""`rigkit audit`: recorded outputs of a correct and an incorrect host, and this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from provision_helpers import ROOT

from rigkit.cli import entry
from rigkit.provision.audit import AuditReport, RecordedSources, audit
from rigkit.provision.plan import ProvisionOptions, plan_build, power_limits
from rigkit.spec import load_spec, resolve

FIX = ROOT / "tests" / "fixtures" / "audit"
SPEC = FIX / "spec.yaml"  # the reference build with power_limit_w: 300 on its four RTX 4090s


def _audit(host: str) -> AuditReport:
    plan = plan_build(SPEC, ("localhost",), ProvisionOptions(mtu=9000))
    spec = load_spec(SPEC)
    limits = dict(power_limits(spec, resolve(spec)))
    return audit(plan, limits, RecordedSources(FIX / host), serving=True)


def test_correct_host_passes_every_item() -> None:
    report = _audit("good")
    assert report.ok
    assert report.counts() == {"pass": 40, "fail": 0, "not present": 0}
    by = {i.name: i for i in report.items}
    # 4 GPUs x (model, memory, link, persistence, power) + count + driver = 22 GPU items
    assert sum(i.area in ("gpu", "pcie", "power", "driver") for i in report.items) == 22
    assert by["GPU 0 power limit"].observed == "300 W"
    assert by["GPU 0 power limit"].expected == "300 W (spec)"
    # RTX 4090 is PCIe 4.0 x16 in a PCIe 5.0 x16 slot of the WRX90E: the link trains at gen 4 x16
    assert by["GPU 2 PCIe link"].expected == "gen 4 x16 (PCIEX16_7)"
    # 24,564 MiB x 1,048,576 = 25.76 GB for a card marketed as 24 GB (within 10%)
    assert by["GPU 0 memory"].observed == "24,564 MiB (25.8 GB)"
    assert by["net.core.rmem_max"].observed == "8388608"
    assert by["driver"].observed == "570.133.20"


def test_incorrect_host_reports_the_exact_differences() -> None:
    report = _audit("bad")
    failed = {i.name: (i.observed, i.expected) for i in report.failed}
    assert failed == {
        "GPU 1 persistence mode": ("Disabled", "Enabled"),
        "GPU 2 PCIe link": ("gen 4 x8", "gen 4 x16 (PCIEX16_7)"),
        "GPU 3 power limit": ("450 W", "300 W (spec)"),
        "/dev/md/models RAID": ("no such array", "raid0 of 2, clean"),
        "/srv/models mounted": ("not mounted", "xfs"),
        "enp65s0f0np0 MTU": ("1500", "9000"),
        "net.core.rmem_max": ("212992", "8,388,608"),
        "net.ipv4.tcp_rmem": ("4096 131072 6291456", "... 8,388,608 (maximum)"),
        "ports listening beyond loopback": (
            "22, 5432, 11434",
            "only 22, 8000, 9842 (SSH, API, exporter)",
        ),
        "sshd passwordauthentication": ("yes", "no"),
        "sshd permitrootlogin": ("yes", "prohibit-password or without-password or no"),
        "rigkit-gpu-power.service": ("failed", "active"),
        "rigkit-serve.service": ("inactive", "active"),
        "exporter": ("no answer", "200 with rigkit_ metrics at http://127.0.0.1:9842/metrics"),
    }
    by = {i.name: i for i in report.items}
    # R550 supports Ada (R525+): it passes, with the difference from the provisioned branch noted
    assert by["driver"].status == "pass"
    assert by["driver"].note == "branch R550, not the provisioned R570"
    assert "not in the firewall plan: 5432, 11434" in by["ports listening beyond loopback"].note


def test_driver_library_mismatch_says_reboot() -> None:
    report = _audit("mismatch")
    by = {i.name: i for i in report.items}
    assert by["driver"].status == "fail"
    assert by["driver"].observed == "NVML: driver/library version mismatch"
    assert by["driver"].note.startswith("reboot:")
    assert by["GPU 0 model"].status == "not present"


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["rigkit", *argv])
    code: object = 0
    try:
        entry.run()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return (code if isinstance(code, int) else 0), out.out, out.err


def test_audit_this_machine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """This machine has no GPU: every item is printed with observed and expected, the GPU items
    say not present, the command exits 1 (the GPUs the spec has are missing) with no traceback."""
    code, out, err = _run(
        ["audit", str(ROOT / "examples/reference-4x4090.yaml"), "--json"], monkeypatch, capsys
    )
    assert code == 1, err
    assert err == ""
    data = json.loads(out)
    names = [i["name"] for i in data["items"]]
    for name in ("GPU count", "driver", "GPU 0 power limit", "/srv/models mounted", "exporter"):
        assert name in names
    for i in data["items"]:
        assert i["status"] in ("pass", "fail", "not present")
        assert i["expected"] != ""
    count = next(i for i in data["items"] if i["name"] == "GPU count")
    if "0 NVIDIA GPU(s)" in count["observed"]:
        assert count["status"] == "fail"
        assert (
            next(i for i in data["items"] if i["name"] == "GPU 0 model")["status"] == "not present"
        )
    code, out, err = _run(
        ["audit", str(ROOT / "examples/reference-4x4090.yaml")], monkeypatch, capsys
    )
    assert code == 1 and "Traceback" not in out + err
    assert "GPU count" in out and "observed" in out and "expected" in out


def test_bad_input_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["audit", str(tmp_path / "none.yaml")], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "no such file" in err
    code, _, err = _run(["audit", str(SPEC), "--recorded", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "no commands.yaml" in err


def test_ecc_checked_where_the_card_has_it(tmp_path: Path) -> None:
    """RTX 6000 Ada cards have ECC: the audit checks it (one card recorded with ECC off fails);
    the RTX 4090 recordings above have no ECC item at all."""
    import shutil

    host = tmp_path / "ada"
    shutil.copytree(FIX / "good", host)
    xml = (host / "nvidia-smi-q-x.xml").read_text()
    xml = xml.replace("NVIDIA GeForce RTX 4090", "NVIDIA RTX 6000 Ada Generation")
    xml = xml.replace("<total>24564 MiB</total>", "<total>49140 MiB</total>")
    xml = xml.replace("<current_ecc>N/A</current_ecc>", "<current_ecc>Enabled</current_ecc>")
    last = xml.rindex("<current_ecc>Enabled</current_ecc>")
    xml = xml[:last] + "<current_ecc>Disabled</current_ecc>" + xml[last + 34 :]
    (host / "nvidia-smi-q-x.xml").write_text(xml)
    spec = ROOT / "examples" / "4x6000ada-wrx90.yaml"
    plan = plan_build(spec, ("localhost",), ProvisionOptions(mtu=9000))
    report = audit(plan, {}, RecordedSources(host))
    ecc = {i.name: (i.status, i.observed) for i in report.items if i.name.endswith("ECC")}
    assert ecc == {
        "GPU 0 ECC": ("pass", "Enabled"),
        "GPU 1 ECC": ("pass", "Enabled"),
        "GPU 2 ECC": ("pass", "Enabled"),
        "GPU 3 ECC": ("fail", "Disabled"),
    }
    by = {i.name: i for i in report.items}
    # 49,140 MiB x 1,048,576 = 51.5 GB for a card marketed as 48 GB (within 10%)
    assert by["GPU 0 memory"].status == "pass"
    assert by["GPU 0 power limit"].expected == "300 W (board power)"
    assert not any(i.name.endswith("ECC") for i in _audit("good").items)
