"""`rigkit monitor export-config`: Prometheus rules + promtool tests, scrape config, Grafana JSON.

The promtool checks run when Debian's `prometheus` package (promtool) is installed, as in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rigkit.cli.main import app
from rigkit.monitor.alerts import default_rules, load_rules
from rigkit.monitor.export_config import (
    alert_name,
    grafana_dashboard,
    prometheus_rules,
    promtool_tests,
    scrape_config,
    to_prometheus,
    write_config,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def alerts_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in doc["groups"][0]["rules"]}


def test_one_alert_per_rule_plus_staleness_and_exporter_down() -> None:
    rules = default_rules(None)
    doc = alerts_by_name(prometheus_rules(rules))
    info = [r.name for r in rules if r.severity == "info"]
    assert info == ["gpu_xid_application"]  # log-only: no Prometheus alert
    assert len(doc) == len(rules) - 1 + 2
    assert "RigkitGpuXidApplication" not in doc
    assert {"RigkitSamplesStale", "RigkitExporterDown"} <= set(doc)
    assert alert_name("gpu_temp_high") == "RigkitGpuTempHigh"


def test_same_thresholds_and_durations_as_the_agent() -> None:
    doc = alerts_by_name(prometheus_rules(default_rules(None)))
    high = doc["RigkitGpuTempHigh"]
    # slowdown - 5 from NVML's own threshold, else the fallback 88 - 5 = 83 C; for 60 s;
    # once firing it stays firing down to the clear threshold slowdown - 8 (fallback 80 C)
    t, s = "rigkit_gpu_temperature_celsius", "rigkit_gpu_slowdown_temperature_celsius"
    assert high["expr"] == (
        f"(({t} >= ({s} - 5)) or ({t} >= 83 unless {s})) or "
        f"((({t} >= ({s} - 8)) or ({t} >= 80 unless {s})) and "
        'ignoring(alertname, alertstate, severity, rule) ALERTS{alertname="RigkitGpuTempHigh", '
        'alertstate="firing"})'
    )
    assert high["for"] == "1m"
    assert high["labels"] == {"severity": "warning", "rule": "gpu_temp_high"}
    # percentages become Prometheus ratios: 95% -> 0.95, 10% -> 0.1, 50% load -> 0.5
    # 95% raises, the alert holds down to 90% -> 0.95 and 0.9
    assert doc["RigkitHostMemHigh"]["expr"] == (
        "(rigkit_host_memory_used_ratio >= 0.95) or ((rigkit_host_memory_used_ratio >= 0.9) and "
        'ignoring(alertname, alertstate, severity, rule) ALERTS{alertname="RigkitHostMemHigh", '
        'alertstate="firing"})'
    )
    assert doc["RigkitHostMemHigh"]["for"] == "5m"  # 300 s
    # below 10% free raises, the alert holds until 12% free
    assert doc["RigkitDiskFreeLow"]["expr"].startswith(
        "(rigkit_disk_free_ratio < 0.1) or ((rigkit_disk_free_ratio < 0.12) and"
    )
    # no hysteresis (clear = threshold): a plain comparison
    assert doc["RigkitDiskWearHigh"]["expr"] == "rigkit_disk_wear_ratio >= 0.8"
    assert doc["RigkitGpuFanStopped"]["expr"] == (
        "rigkit_gpu_fan_speed_ratio <= 0 and on(instance, job, gpu) "
        "rigkit_gpu_utilization_ratio >= 0.5"
    )
    assert doc["RigkitHostCpuTempHigh"]["expr"].startswith(
        "(rigkit_host_cpu_temperature_celsius >= 90) or "
        "((rigkit_host_cpu_temperature_celsius >= 85) and"
    )
    assert doc["RigkitDiskTempHigh"]["for"] == "2m"  # 120 s


def test_for_floor_is_one_scrape_and_xids_are_events() -> None:
    doc = alerts_by_name(prometheus_rules(default_rules(None)))
    # for 0 s in the agent (two samples) -> 15 s in Prometheus (two 15 s scrapes)
    assert doc["RigkitGpuLost"]["for"] == "15s"
    assert doc["RigkitGpuEccUncorrected"]["for"] == "15s"
    xid = doc["RigkitGpuXidCritical"]
    assert xid["for"] == "0s"
    assert 'xid=~"48|62|64|74|79|94|95|119|120"' in xid["expr"]
    assert "[10m]" in xid["expr"] and "offset 10m" in xid["expr"]  # quiet period 600 s
    assert 'xid!~"48|62|64|74|79|94|95|119|120|13|31|43|63|92"' in doc["RigkitGpuXidOther"]["expr"]


def test_hysteresis_promtool_case_is_worked_out() -> None:
    tests = {t["name"]: t for t in promtool_tests(default_rules(None))["tests"]}
    t = tests[
        "RigkitGpuTempHigh: hysteresis, firing until past the clear threshold 80 (threshold 83)"
    ]
    # for 60 s -> 60/15 + 2 = 6 samples at 83 C (t = 0..75 s), then 81.5 C (between 80 and 83)
    # or 75 C (80 - 5). Checked at 75 s (both fire: pending since 0 s, for 60 s) and at
    # ceil((6 x 15 + 0 + 120) / 15) x 15 = 210 s: only the one between the thresholds fires.
    # Series length: 210 / 15 + 10 = 24 more samples.
    assert [s["values"] for s in t["input_series"]] == ["83x5 81.5x24", "83x5 75x24"]
    checks = [
        (c["eval_time"], [a["exp_labels"]["machine"] for a in c["exp_alerts"]])
        for c in t["alert_rule_test"]
    ]
    assert checks == [("75s", ["ws1", "ws2"]), ("210s", ["ws1"])]
    # rules whose clear threshold equals the threshold get no hysteresis case: 7 of 21 have one
    # (temp high/critical, thermal margin, CPU temp, host memory, disk temp, disk free)
    assert sum("hysteresis" in name for name in tests) == 7


def test_clear_for_becomes_keep_firing_for(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("rules:\n  host_cpu_temp_high: {clear_for: 2m}\n", encoding="utf-8")
    rules = load_rules(f, None)
    doc = alerts_by_name(prometheus_rules(rules))
    assert doc["RigkitHostCpuTempHigh"]["keep_firing_for"] == "2m"
    assert "keep_firing_for" not in doc["RigkitHostMemHigh"]
    tests = {
        t["name"].split(":")[0] + (":h" if "hysteresis" in t["name"] else ""): t
        for t in promtool_tests(rules)["tests"]
    }
    # for 60 s -> 6 bad samples; checked at ceil((90 + 120 + 120) / 15) x 15 = 330 s
    assert tests["RigkitHostCpuTempHigh:h"]["alert_rule_test"][1]["eval_time"] == "330s"


def test_pcie_rule_prefers_the_slot_map_and_lost_uses_freshness() -> None:
    doc = alerts_by_name(prometheus_rules(default_rules(None)))
    pcie = doc["RigkitGpuPcieDegraded"]["expr"]
    by = "on(instance, job, gpu) group_left()"
    assert f"rigkit_gpu_pcie_link_width < {by} rigkit_gpu_pcie_expected_width" in pcie
    # NVML's maximum only where the agent exports no expected link (no --spec)
    assert "unless on(instance, job, gpu) rigkit_gpu_pcie_expected_generation" in pcie
    lost = doc["RigkitGpuLost"]["expr"]
    assert lost.startswith("rigkit_gpu_lost == 1 or ")
    assert "(rigkit_gpu_expected unless on(instance, job, gpu) rigkit_gpu_lost)" in lost
    assert lost.count("on(instance, job) (rigkit_sample_age_seconds < 60)") == 2
    assert "up == 1" not in lost


def test_overrides_flow_into_prometheus(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "rules:\n  gpu_temp_high: {threshold: -10, for: 3m}\n  gpu_lost: {enabled: false}\n",
        encoding="utf-8",
    )
    doc = alerts_by_name(prometheus_rules(load_rules(f, None)))
    assert "slowdown_temperature_celsius - 10" in doc["RigkitGpuTempHigh"]["expr"]
    assert ">= 78 unless" in doc["RigkitGpuTempHigh"]["expr"]  # 88 - 10
    assert doc["RigkitGpuTempHigh"]["for"] == "3m"
    assert "RigkitGpuLost" not in doc


def test_every_alert_has_a_firing_a_quiet_and_a_spike_case() -> None:
    rules = default_rules(None)
    tests = promtool_tests(rules)
    names = {t["name"].split(":")[0] for t in tests["tests"]}
    exported = {p.alert for r in rules if (p := to_prometheus(r)) is not None}
    assert exported | {"RigkitSamplesStale", "RigkitExporterDown"} == names
    for t in tests["tests"]:
        checks = t["alert_rule_test"]
        assert any(c["exp_alerts"] for c in checks), t["name"]  # something fires
        series = [s["series"] for s in t["input_series"]]
        if "hysteresis" in t["name"]:
            continue
        if "Xid" not in t["name"]:
            # a series with one bad sample at 165 s (sample 11), never among the firing ones
            spikes = [s for s in t["input_series"] if s["values"].count(" ") == 2]
            assert spikes, t["name"]
            assert any(c["eval_time"] == "165s" for c in checks), t["name"]
        assert series


def test_grafana_dashboard_has_variables_and_panels() -> None:
    d = json.loads(json.dumps(grafana_dashboard()))
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource", "machine", "gpu"]
    titles = " | ".join(p["title"] for p in d["panels"])
    for needle in (
        "temperature",
        "power vs limit",
        "Clocks",
        "Utilisation",
        "memory",
        "Throttle",
        "XID",
        "alerts",
        "freshness",
    ):
        assert needle in titles
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"
        for t in p["targets"]:
            assert "$machine" in t["expr"], p["title"]


def test_scrape_config_labels_machines() -> None:
    cfg = scrape_config()
    job = cfg["scrape_configs"][0]
    assert job["job_name"] == "rigkit"
    assert job["file_sd_configs"][0]["files"] == ["rigkit-targets*.yml"]
    assert "static_configs" not in job  # every target comes from rigkit-targets*.yml
    assert cfg["rule_files"] == ["rigkit-alerts.yml"]
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def _scraped(out: Path) -> list[dict[str, Any]]:
    """What Prometheus scrapes: the active entries of every rigkit-targets*.yml (comments are
    not entries), and any static targets of the scrape config."""
    entries: list[dict[str, Any]] = []
    for f in sorted(out.glob("rigkit-targets*.yml")):
        entries += yaml.safe_load(f.read_text(encoding="utf-8")) or []
    cfg = yaml.safe_load((out / "prometheus-scrape.yml").read_text(encoding="utf-8"))
    for job in cfg["scrape_configs"]:
        entries += job.get("static_configs", [])
    return entries


def test_no_example_host_is_scraped_by_default(tmp_path: Path) -> None:
    write_config(tmp_path, default_rules(None))
    # only this machine's exporter, at the agent's default address
    assert _scraped(tmp_path) == [
        {"targets": ["127.0.0.1:9842"], "labels": {"machine": "localhost"}}
    ]
    text = (tmp_path / "rigkit-targets.yml").read_text(encoding="utf-8")
    assert '# - targets: ["ws-4x4090.lan:9842"]' in text  # the examples, commented out
    # the file next to the targets says remote scraping needs --listen on a routable address
    assert "--listen 0.0.0.0:9842" in text
    assert "--listen 0.0.0.0:9842" in (tmp_path / "prometheus-scrape.yml").read_text("utf-8")


def test_a_fleet_is_the_targets_given_and_nothing_else(tmp_path: Path) -> None:
    from rigkit.monitor.export_config import prometheus_files

    write_config(tmp_path, default_rules(None), targets=["ws-a.lan:9842", "rig2=10.0.0.21:9842"])
    assert _scraped(tmp_path) == [
        {"targets": ["ws-a.lan:9842"], "labels": {"machine": "ws-a.lan"}},
        {"targets": ["10.0.0.21:9842"], "labels": {"machine": "rig2"}},
    ]
    # the library function another tool calls for a fleet gives the same text
    files = prometheus_files(["ws-a.lan:9842", "rig2=10.0.0.21:9842"])
    assert files["rigkit-targets.yml"] == (tmp_path / "rigkit-targets.yml").read_text("utf-8")


@pytest.mark.parametrize(
    "bad",
    ["ws1", "ws1:0", "ws1:99999", 'ws"1:9842', "ws1:9842\n- targets: [evil:1]", "a b=ws1:9842",
     "$(reboot):9842", ":9842"],
)  # fmt: skip
def test_bad_targets_are_refused(bad: str, tmp_path: Path) -> None:
    from rigkit.errors import MonitorError
    from rigkit.monitor.export_config import ScrapeTarget

    with pytest.raises(MonitorError, match="expected HOST:PORT or NAME=HOST:PORT"):
        ScrapeTarget.parse(bad)
    result = CliRunner().invoke(
        app, ["monitor", "export-config", "--out", str(tmp_path / "o"), "--target", bad]
    )
    assert result.exit_code != 0 and not (tmp_path / "o").exists()  # nothing written


def test_descriptions_carry_the_value_and_the_threshold() -> None:
    doc = alerts_by_name(prometheus_rules(default_rules(None)))
    value = '{{ printf "%.4g" $value }}'
    # gpu_temp_high: >= slowdown - 5 C, 88 - 5 = 83 C without NVML's own slowdown temperature;
    # clears below slowdown - 8 C = 80 C
    assert doc["RigkitGpuTempHigh"]["annotations"]["description"] == (
        "{{ $labels.machine }} GPU {{ $labels.gpu }}: rigkit_gpu_temperature_celsius "
        f"{value} C, alert at >= slowdown - 5 C (83 C where the GPU reports no slowdown"
        " temperature), clears at < slowdown - 8 C (80 C where the GPU reports no slowdown"
        " temperature); rigkit rule gpu_temp_high"
    )
    # disk_free_low: < 10 % free -> the ratio 0.1; clears at >= 12 % -> 0.12
    assert doc["RigkitDiskFreeLow"]["annotations"]["description"] == (
        "{{ $labels.machine }} disk {{ $labels.disk }}: rigkit_disk_free_ratio "
        f"{value}, alert at < 0.1, clears at >= 0.12; rigkit rule disk_free_low"
    )
    assert value in doc["RigkitSamplesStale"]["annotations"]["description"]


def test_cli_writes_the_files(tmp_path: Path) -> None:
    out = tmp_path / "prom"
    result = CliRunner().invoke(app, ["monitor", "export-config", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    names = sorted(Path(f).name for f in info["files"])
    assert names == [
        "alertmanager.yml",
        "grafana-dashboard.json",
        "prometheus-scrape.yml",
        "rigkit-alerts.test.yml",
        "rigkit-alerts.yml",
        "rigkit-targets.yml",
    ]
    assert info["alerts"] == len(default_rules(None)) - 1 + 2  # 21 exported + 2 meta = 22
    doc = yaml.safe_load((out / "rigkit-alerts.yml").read_text(encoding="utf-8"))
    assert len(doc["groups"][0]["rules"]) == info["alerts"]


def test_cli_bad_rules_file_is_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("rules: {gpu_temp_high: {bogus: 1}}\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["monitor", "export-config", "--out", str(tmp_path / "o"), "--rules", str(f)]
    )
    assert result.exit_code != 0
    assert f"{f}:1: rules.gpu_temp_high.bogus: unknown setting 'bogus'" in str(result.exception)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_checks_and_unit_tests_pass(tmp_path: Path) -> None:
    # the defaults plus user rules of each shape: a long `for`, a longer XID quiet period,
    # a per-disk counter and a throttle bit
    f = tmp_path / "rules.yaml"
    f.write_text(
        "rules:\n"
        "  gpu_xid_critical: {quiet: 30m}\n"
        "  gpu_util_low: {expr: gpu.util_pct, op: '<', threshold: 5, for: 30m}\n"
        "  disk_media_errors: {expr: disk.media_errors, op: '>', threshold: 0}\n"
        "  gpu_sw_thermal: {expr: gpu.throttle.sw_thermal_slowdown, for: 1m}\n"
        "  host_cpu_temp_high: {clear_for: 2m}\n",
        encoding="utf-8",
    )
    write_config(tmp_path, load_rules(f, None))
    r = promtool("check", "rules", "rigkit-alerts.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "25 rules found" in r.stdout  # 21 default + 3 added + stale + exporter down
    r = promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = promtool("check", "config", "prometheus-scrape.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_promtool_accepts_a_fleet_config(tmp_path: Path) -> None:
    write_config(tmp_path, default_rules(None), targets=["ws-a.lan:9842", "rig2=[fd00::21]:9842"])
    r = promtool("check", "config", "prometheus-scrape.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: prometheus-scrape.yml is valid" in r.stdout + r.stderr
    r = promtool("check", "rules", "rigkit-alerts.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


AMTOOL = shutil.which("amtool")


@pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (apt-get install prometheus-alertmanager)"
)
def test_amtool_accepts_the_alertmanager_config(tmp_path: Path) -> None:
    assert AMTOOL is not None
    write_config(tmp_path, default_rules(None))
    r = subprocess.run(
        [AMTOOL, "check-config", "alertmanager.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    doc = yaml.safe_load((tmp_path / "alertmanager.yml").read_text(encoding="utf-8"))
    assert doc["route"]["receiver"] == "email"
    assert doc["receivers"][0]["email_configs"][0]["send_resolved"] is True
    # every placeholder is marked for the user
    text = (tmp_path / "alertmanager.yml").read_text(encoding="utf-8")
    for line in text.splitlines():
        if "example.org" in line:
            assert "CHANGE-ME" in line, line


@needs_promtool
def test_promtool_tests_catch_a_rule_without_for(tmp_path: Path) -> None:
    # The unit tests must be able to fail: drop the `for` of the hw_slowdown alert and the
    # one-sample spike at 165 s fires, which the generated test forbids.
    write_config(tmp_path, default_rules(None))
    path = tmp_path / "rigkit-alerts.yml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for r in doc["groups"][0]["rules"]:
        if r["alert"] == "RigkitGpuHwSlowdown":
            r["for"] = "0s"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    r = promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert "RigkitGpuHwSlowdown" in r.stdout + r.stderr


def test_force_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n", encoding="utf-8")
    out = tmp_path / "prom"
    out.mkdir()
    (out / "rigkit-alerts.yml").symlink_to(outside)
    result = CliRunner().invoke(app, ["monitor", "export-config", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert outside.read_text(encoding="utf-8") == "not yours\n"
    link = out / "rigkit-alerts.yml"
    assert not link.is_symlink() and "RigkitGpuTempHigh" in link.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp left
