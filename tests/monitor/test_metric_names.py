"""Metric names cannot drift: every series that the generated Prometheus rules, promtool tests and
Grafana dashboard use exists in the exporter's real /metrics output.

The output comes from a replay file with every field of the replay format filled in, read by the
replay source, put into the exporter cache and scraped over HTTP from the real server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rigkit.monitor import export_config
from rigkit.monitor.alerts import AlertRule, default_rules, valid_exprs
from rigkit.monitor.export_config import grafana_dashboard, write_config
from rigkit.monitor.exporter import XID_SERIES, ExporterCache, ExporterServer
from rigkit.monitor.sample import DISK_METRICS, GPU_METRICS, HOST_METRICS, THROTTLE_REASONS, Event
from rigkit.monitor.sources.replay import ReplaySource

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)

#: Series Prometheus itself makes (scrape health, alert state), not the exporter.
PROMETHEUS_OWN = {"up", "ALERTS"}


def _full_line(t: float, xid: list[int]) -> dict[str, Any]:
    """A replay line with every GPU, host and disk field the format has (two GPUs)."""
    gpus = []
    for i in (0, 1):
        g: dict[str, Any] = {f: 10 + i for f in GPU_METRICS}
        g.update(
            index=i,
            name="NVIDIA GeForce RTX 4090",
            throttle_reasons=list(THROTTLE_REASONS[:2]),
            xid=xid if i == 0 else [],
            ecc_uncorrected=0,
            remapped_rows_pending=False,
        )
        gpus.append(g)
    disk: dict[str, Any] = {f: 1 for f in DISK_METRICS}
    disk["name"] = "nvme0n1"
    host: dict[str, Any] = {f: 5 for f in HOST_METRICS}
    host["disks"] = [disk]
    return {"t": t, "gpus": gpus, "host": host}


def scraped_names(tmp_path: Path) -> set[str]:
    """Sample names in the exporter's /metrics after replaying two full lines (XID 79 in the 2nd)."""
    replay = tmp_path / "full.jsonl"
    replay.write_text(
        "\n".join(json.dumps(_full_line(t, x)) for t, x in ((0.0, []), (1.0, [79]))) + "\n",
        encoding="utf-8",
    )
    source = ReplaySource(replay, speed=0)
    # expected links from a build spec: GPU 0 in an x16 slot, GPU 1 in an x8 (electrical) slot
    cache = ExporterCache(expected_pcie=((0, 4, 16), (1, 4, 8)))
    cache.update(source.read())
    cache.update(source.read(), [Event(1.0, "raised", "gpu_temp_high", "warning", 0, "hot")])
    source.close()
    server = ExporterServer(cache, "127.0.0.1:0")
    try:
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        server.close()
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def _all_expr_rules() -> list[AlertRule]:
    """The defaults plus one rule for every expression a rule may use, so that every mapping from
    a sample field to a series name is exercised."""
    extra = [
        AlertRule(name=f"probe_{i}", expr=expr, threshold=1.0, for_s=60.0)
        for i, expr in enumerate(valid_exprs())
    ]
    return [*default_rules(None), *extra]


_RIGKIT = re.compile(r"\brigkit_[a-z0-9_]+")
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


def used_names(out: Path) -> dict[str, set[str]]:
    """Series names each generated file uses."""
    alerts = yaml.safe_load((out / "rigkit-alerts.yml").read_text(encoding="utf-8"))
    tests = yaml.safe_load((out / "rigkit-alerts.test.yml").read_text(encoding="utf-8"))
    dash = (out / "grafana-dashboard.json").read_text(encoding="utf-8")
    rule_names = set()
    for r in alerts["groups"][0]["rules"]:
        rule_names |= set(_RIGKIT.findall(r["expr"]))
    series_names = set()
    for t in tests["tests"]:
        for s in t["input_series"]:
            m = _SERIES.match(s["series"])
            assert m is not None, s["series"]
            series_names.add(m.group(1))
    return {"rules": rule_names, "promtool": series_names, "grafana": set(_RIGKIT.findall(dash))}


def test_every_series_used_by_rules_tests_and_dashboard_is_exported(tmp_path: Path) -> None:
    exposed = scraped_names(tmp_path)
    # the counters as scraped carry _total; the old names that once drifted do not exist
    assert XID_SERIES == "rigkit_gpu_xid_total" and XID_SERIES in exposed
    assert "rigkit_samples_total" in exposed
    assert "rigkit_gpu_xid" not in exposed and "rigkit_samples" not in exposed
    # spec-derived series: one per GPU of the build
    assert {"rigkit_gpu_expected", "rigkit_gpu_pcie_expected_width"} <= exposed
    write_config(tmp_path / "prom", _all_expr_rules())
    used = used_names(tmp_path / "prom")
    for where, names in used.items():
        missing = names - exposed - PROMETHEUS_OWN
        assert missing == set(), f"{where} uses series the exporter does not serve: {missing}"
    # the checks saw the names they should: XIDs in the rules, the freshness gauge in the lost
    # rule, the machine list in the dashboard
    assert XID_SERIES in used["rules"] and "rigkit_sample_age_seconds" in used["rules"]
    assert "rigkit_samples_total" in used["grafana"]
    assert {"up", "ALERTS"} & used["promtool"] == {"up"}  # ALERTS is made by promtool itself
    # all 18 GPU fields + 3 host + 5 disk fields (each probed by a rule) reach the rules
    assert len({n for n in used["rules"] if n.startswith(("rigkit_gpu_", "rigkit_host_"))}) >= 21


def test_the_name_check_catches_a_drifted_name(tmp_path: Path) -> None:
    # What the check would have said about the old export_config, which queried rigkit_gpu_xid.
    exposed = scraped_names(tmp_path)
    out = tmp_path / "prom"
    write_config(out, default_rules(None))
    path = out / "rigkit-alerts.yml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(XID_SERIES, "rigkit_gpu_xid"), encoding="utf-8"
    )
    missing = used_names(out)["rules"] - exposed
    assert missing == {"rigkit_gpu_xid"}


def test_dashboard_queries_are_all_checked() -> None:
    # every panel target and both query variables: 11 panels, 2 variables with queries
    d = grafana_dashboard()
    exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in d["templating"]["list"] if "definition" in v]
    assert len(d["panels"]) == 11 and len(exprs) == 19 + 2  # 2+2+2+2+2+1+1+2+1+2+2 targets
    assert all(_RIGKIT.search(e) or e.startswith("ALERTS{") for e in exprs)
    assert sum(e.startswith("ALERTS{") for e in exprs) == 1  # the active-alerts table


def _keep_tests(out: Path, prefix: str) -> None:
    """Keep only the promtool test groups of one alert (promtool then runs in about a second)."""
    path = out / "rigkit-alerts.test.yml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["tests"] = [t for t in doc["tests"] if t["name"].startswith(prefix)]
    assert doc["tests"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_tests_fail_when_a_rule_queries_a_name_its_tests_do_not_feed(
    tmp_path: Path,
) -> None:
    # The rule side drifts (rigkit_gpu_xid instead of rigkit_gpu_xid_total) while the test
    # inputs keep the exporter's name: the XID alerts never fire and promtool says so. (Drift on
    # both sides at once passes promtool: the scrape check above catches that case.)
    write_config(tmp_path, default_rules(None))
    _keep_tests(tmp_path, "RigkitGpuXidCritical:")
    r = _promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # as generated: passes
    path = tmp_path / "rigkit-alerts.yml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(XID_SERIES, "rigkit_gpu_xid"), encoding="utf-8"
    )
    r = _promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert "RigkitGpuXidCritical" in r.stdout + r.stderr


@needs_promtool
def test_promtool_tests_fail_without_hysteresis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rules without the ALERTS branch, tests as generated: at 81.5 C (between clear 80 and
    # threshold 83 C) the firing alert resolves, which the generated hysteresis test forbids.
    write_config(tmp_path, default_rules(None))
    _keep_tests(tmp_path, "RigkitGpuTempHigh: hysteresis")
    r = _promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # as generated: passes
    monkeypatch.setattr(export_config, "has_hysteresis", lambda rule: False)
    doc = export_config.prometheus_rules(default_rules(None))
    assert "ALERTS{" not in json.dumps(doc)
    (tmp_path / "rigkit-alerts.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    r = _promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert "RigkitGpuTempHigh: hysteresis" in r.stdout + r.stderr


@needs_promtool
def test_promtool_tests_fail_when_the_pcie_rule_ignores_the_slot_map(tmp_path: Path) -> None:
    # The rule as it was (NVML's maximum only): the GPU in an x8 slot, trained to x8 as it should,
    # alerts, which the generated test forbids.
    write_config(tmp_path, default_rules(None))
    _keep_tests(tmp_path, "RigkitGpuPcieDegraded:")
    path = tmp_path / "rigkit-alerts.yml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for r in doc["groups"][0]["rules"]:
        if r["alert"] == "RigkitGpuPcieDegraded":
            r["expr"] = (
                "(rigkit_gpu_pcie_link_generation < rigkit_gpu_pcie_link_max_generation or "
                "rigkit_gpu_pcie_link_width < rigkit_gpu_pcie_link_max_width) and "
                "on(instance, job, gpu) rigkit_gpu_utilization_ratio >= 0.5"
            )
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    r = _promtool("test", "rules", "rigkit-alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert 'instance="ws5:9842"' in r.stdout + r.stderr  # the x8 slot, wrongly firing
