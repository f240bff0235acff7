"""`rigkit provision`: the project's files, values with reasons, quoting of hostile spec text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from provision_helpers import (
    EXAMPLES,
    REF,
    ROOT,
    UnsafeLoader,
    ansible_env,
    ansible_tool,
    load_yaml,
)

from rigkit.provision import ProvisionOptions, ServeRequest, plan_build, render_project
from rigkit.provision.generate import ROLES, to_yaml
from rigkit.provision.plan import ProvisionError, check_host, driver_vars
from rigkit.spec import load_build

OPTS = ProvisionOptions()


def _project(tmp: Path, spec: Path = REF, **kw: object) -> Path:
    hosts = kw.pop("hosts", ("localhost",))
    serve = kw.pop("serve", None)
    plan = plan_build(spec, hosts, OPTS, serve)  # type: ignore[arg-type]
    out = tmp / "project"
    render_project([plan], OPTS, out)
    return out


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_a_complete_project(spec: Path, tmp_path: Path) -> None:
    out = _project(tmp_path, spec)
    for name in ("inventory.yml", "site.yml", "ansible.cfg", "README.md", ".yamllint"):
        assert (out / name).is_file(), name
    for role in ROLES:
        for part in ("tasks/main.yml", "meta/main.yml", "defaults/main.yml", "README.md"):
            assert (out / "roles" / role / part).is_file(), f"{role}/{part}"
    gv = load_yaml(next((out / "group_vars").glob("build_*.yml")))
    build = load_build(spec)
    assert [g["id"] for g in gv["rigkit_gpus"]] == [g.gpu.id for g in build.gpus]
    # every value in group_vars has a comment above it saying where it came from
    lines = next((out / "group_vars").glob("build_*.yml")).read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^rigkit_\w+:", line):
            assert lines[i - 1].startswith("# "), line
    inv = load_yaml(out / "inventory.yml")
    group = inv["all"]["children"]["rigkit_hosts"]["children"]
    assert list(group) == [f"build_{spec.stem.replace('-', '_').replace('.', '_')}"]


def test_refuses_to_replace_an_earlier_project(tmp_path: Path) -> None:
    _project(tmp_path)
    plan = plan_build(REF, ("localhost",), OPTS)
    with pytest.raises(Exception, match="already has"):
        render_project([plan], OPTS, tmp_path / "project")
    render_project([plan], OPTS, tmp_path / "project", force=True)


def test_driver_branch_by_architecture() -> None:
    """RTX 5090 (Blackwell) needs R570+ and the open kernel modules; 4x RTX 4090 (Ada, R525+)
    gets the default R570 branch."""
    blackwell = {v.name: v for v in driver_vars(load_build(ROOT / "examples/1x5090-desktop.yaml"))}
    assert blackwell["rigkit_nvidia_min_branch"].value == 570
    assert blackwell["rigkit_nvidia_open_modules"].value is True
    assert "supported only by NVIDIA's open" in blackwell["rigkit_nvidia_open_modules"].reason
    assert blackwell["rigkit_nvidia_driver_package"].value == "nvidia-driver-570-server-open"
    ada = {v.name: v for v in driver_vars(load_build(REF))}
    assert ada["rigkit_nvidia_min_branch"].value == 525
    assert "also work with the proprietary modules" in ada["rigkit_nvidia_open_modules"].reason


def test_network_buffers_from_link_speed_and_rtt(tmp_path: Path) -> None:
    """25 GbE (ConnectX-4 Lx) x 1 ms: 25e9 / 8 x 0.001 = 3,125,000 B; x2 = 6,250,000 B; next
    power of two 2^23 = 8,388,608 B. At 0.2 ms: 625,000 x 2 = 1,250,000 -> 2^21 = 2,097,152,
    raised to the 4 MiB floor (4,194,304). Neither is the seed's fixed 128 MB."""
    plan = plan_build(REF, ("localhost",), OPTS)
    assert plan.var("rigkit_network_buffer_bytes") == 8_388_608
    fast = plan_build(REF, ("localhost",), ProvisionOptions(rtt_ms=0.2))
    assert fast.var("rigkit_network_buffer_bytes") == 4_194_304
    none = plan_build(ROOT / "examples/1x5090-desktop.yaml", ("localhost",), OPTS)
    assert none.var("rigkit_network_tune") is False


def test_storage_raid_from_the_spec() -> None:
    plan = plan_build(REF, ("localhost",), OPTS)
    (vol,) = plan.var("rigkit_storage_volumes")
    # 2x crucial-t705-4tb in raid group "models": RAID 0, 512 KiB chunk, XFS su=512k,sw=2
    assert vol == {
        "name": "models",
        "raid": True,
        "level": 0,
        "expected_devices": 2,
        "devices": [],
        "chunk_kib": 512,
        "fstype": "xfs",
        "mount": "/srv/models",
    }


def test_bad_hosts_and_options_are_refused() -> None:
    for bad in ("a b", "$(id)", "host;rm", "-oProxyCommand=x", "x\ny", ""):
        with pytest.raises(ProvisionError):
            check_host(bad)
    assert check_host("gpu1.lan") == "gpu1.lan"
    assert check_host("fe80::1") == "fe80::1"
    with pytest.raises(ProvisionError, match="not a subnet"):
        ProvisionOptions(allow=("10.0.0.0/33",))


HOSTILE = (
    "Evil \"rig\" 'x' $(touch /tmp/pwned) `id` {{ lookup('pipe', 'id') }} %n\n"
    "second: line\n- !!python/object:os.system [id] &anchor *alias # not a comment"
)


def test_hostile_spec_strings_are_inert(tmp_path: Path) -> None:
    """A spec whose name carries quotes, $(...), backticks, Jinja, % specifiers, newlines and YAML
    tags: every generated YAML file parses, the name round-trips as a plain string (tagged
    !unsafe so Ansible never templates it), comments cannot be ended by a newline."""
    text = (REF.read_text(encoding="utf-8")).replace(
        "name: Reference 4x RTX 4090 workstation", "name: " + json.dumps(HOSTILE)
    )
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text, encoding="utf-8")
    out = _project(tmp_path, spec)
    gv_path = out / "group_vars" / "build_hostile.yml"
    gv = load_yaml(gv_path)
    assert gv["rigkit_build_name"] == HOSTILE
    raw = gv_path.read_text(encoding="utf-8")
    assert "rigkit_build_name: !unsafe " in raw
    for path in out.rglob("*.yml"):
        load_yaml(path)  # no file is broken by the text
    # no line of any file starts with the text after the newline (it stayed inside a string)
    for path in [*out.rglob("*.yml"), out / "README.md"]:
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not line.startswith("second: line"), path
            assert not line.startswith("- !!python"), path
    # README: one line, backticks escaped
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "\\`id\\`" in readme


def test_to_yaml_round_trips_every_value() -> None:
    import yaml

    value = {
        "a": ["x\ny", "$(id)", "`id`", "{{ x }}", "!!python/name:os.system", "", "null", "yes"],
        "n": 1.5,
        "b": True,
        "nested": [{"k": "v: w"}, []],
    }
    text = "v:" + (" " + to_yaml(value) if not to_yaml(value).startswith("\n") else to_yaml(value))
    assert yaml.load(text, Loader=UnsafeLoader)["v"] == value


def _render_role_template(
    tmp: Path, out: Path, role: str, template: str, extra: list[str] | None = None
) -> str:
    """Render one of a role's templates with Ansible itself and the project's group_vars."""
    ansible = ansible_tool("ansible")
    dest = tmp / "rendered"
    gv = next((out / "group_vars").glob("build_*.yml"))
    subprocess.run(
        [
            str(ansible),
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={out}/roles/{role}/templates/{template} dest={dest}",
            # role defaults first: a later -e wins, as group_vars win over defaults
            "-e",
            f"@{out / 'roles' / role / 'defaults' / 'main.yml'}",
            "-e",
            f"@{out / 'group_vars' / 'all.yml'}",
            "-e",
            f"@{gv}",
            *(extra or []),
        ],
        check=True,
        capture_output=True,
        env=ansible_env(tmp),
        cwd=out,
        timeout=120,
    )
    return dest.read_text(encoding="utf-8")


@pytest.mark.slow
def test_power_limits_unit_from_the_spec(tmp_path: Path) -> None:
    """power_limit_w: 300 on the 4 RTX 4090s (board power 450 W): one nvidia-smi -pl per GPU
    index, after nvidia-persistenced; the unit's description cannot carry a % specifier."""
    text = (
        REF.read_text(encoding="utf-8")
        .replace(
            "- {id: rtx-4090, quantity: 4}", "- {id: rtx-4090, quantity: 4, power_limit_w: 300}"
        )
        .replace("name: Reference 4x RTX 4090 workstation", 'name: "rig 100% $(id)\\nx"')
    )
    spec = tmp_path / "limited.yaml"
    spec.write_text(text, encoding="utf-8")
    out = _project(tmp_path, spec)
    unit = _render_role_template(tmp_path, out, "rigkit_nvidia", "rigkit-gpu-power.service.j2")
    assert re.findall(r"^ExecStart=.*$", unit, re.M) == [
        f"ExecStart=/usr/bin/nvidia-smi -i {i} -pl 300" for i in range(4)
    ]
    assert "After=nvidia-persistenced.service" in unit
    assert "WantedBy=multi-user.target" in unit
    (desc,) = re.findall(r"^Description=.*$", unit, re.M)
    assert desc == "Description=rigkit GPU power limits for rig 100%% $(id) x"


def test_no_power_limits_no_unit(tmp_path: Path) -> None:
    out = _project(tmp_path)
    gv = load_yaml(next((out / "group_vars").glob("build_*.yml")))
    assert gv["rigkit_nvidia_power_limits"] == []
    tasks = (out / "roles/rigkit_nvidia/tasks/install.yml").read_text()
    # the unit is written only when there are limits, and removed otherwise
    assert "when: rigkit_nvidia_power_limits | length > 0" in tasks
    assert "when: rigkit_nvidia_power_limits | length == 0" in tasks


def test_fleet_inventory_groups_and_scrape_targets(tmp_path: Path) -> None:
    """Three hosts of two specs: two inventory groups, and Prometheus scrapes all three."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "hosts:\n"
        f"  - {{host: gpu1.lan, spec: {REF}}}\n"
        f"  - {{host: gpu2.lan, spec: {REF}}}\n"
        f"  - {{host: 10.0.0.7, spec: {ROOT / 'examples/2x3090-desktop.yaml'}}}\n",
        encoding="utf-8",
    )
    from rigkit.provision.fleet import load_fleet

    entries = load_fleet(fleet)
    plans = [plan_build(e.spec, e.hosts, OPTS, e.serve) for e in entries]
    out = tmp_path / "fleet"
    render_project(plans, OPTS, out)
    inv = load_yaml(out / "inventory.yml")
    groups = inv["all"]["children"]["rigkit_hosts"]["children"]
    assert {g: list(v["hosts"]) for g, v in groups.items()} == {
        "build_reference_4x4090": ["gpu1.lan", "gpu2.lan"],
        "build_2x3090_desktop": ["10.0.0.7"],
    }
    assert list(inv["all"]["children"]["rigkit_monitoring"]["hosts"]) == ["gpu1.lan"]
    common = load_yaml(out / "group_vars" / "all.yml")
    assert common["rigkit_observability_targets"] == [
        "gpu1.lan:9842",
        "gpu2.lan:9842",
        "10.0.0.7:9842",
    ]


def test_scrape_targets_file_lists_every_host(tmp_path: Path) -> None:
    """Prometheus (monitor export-config's files) scrapes both hosts; the local host is reached
    from the container as host.docker.internal; the example hosts are not scraped."""
    plans = [
        plan_build(REF, ("gpu1.lan", "gpu2.lan"), OPTS),
        plan_build(ROOT / "examples/2x3090-desktop.yaml", ("localhost",), OPTS),
    ]
    out = tmp_path / "p"
    render_project(plans, OPTS, out)
    files = out / "roles/rigkit_observability/files"
    assert load_yaml(files / "rigkit-targets.yml") == [
        {"targets": ["gpu1.lan:9842"], "labels": {"machine": "gpu1.lan"}},
        {"targets": ["gpu2.lan:9842"], "labels": {"machine": "gpu2.lan"}},
        {"targets": ["host.docker.internal:9842"], "labels": {"machine": "localhost"}},
    ]
    prom = load_yaml(files / "prometheus.yml")
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    assert prom["scrape_configs"][0]["file_sd_configs"][0]["files"] == ["rigkit-targets*.yml"]
    promtool = shutil.which("promtool")
    if promtool is not None:  # Prometheus's own check of the config, its rules and targets
        r = subprocess.run(
            [promtool, "check", "config", "prometheus.yml"],
            cwd=files,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stdout + r.stderr


def test_serving_needs_both_model_and_format() -> None:
    with pytest.raises(ProvisionError):
        plan_build(REF, ("localhost",), OPTS, ServeRequest("llama-3-70b", "q4_k_m", "nosuch"))


@pytest.mark.slow
def test_monitor_unit_enforce_only_when_asked(tmp_path: Path) -> None:
    """Without --enforce the monitor runs as the rigkit user with the capabilities it needs and
    never gets --enforce; with it, it runs as root with --enforce. The notify target never
    appears in the unit (it is in a root-only environment file, from Vault)."""
    plain = _project(tmp_path)
    unit = _render_role_template(tmp_path, plain, "rigkit_monitor", "rigkit-monitor.service.j2")
    assert "User=rigkit" in unit and "--enforce" not in unit
    assert "AmbientCapabilities=CAP_SYSLOG CAP_SYS_RAWIO CAP_SYS_ADMIN" in unit
    assert "Restart=always" in unit
    assert "--db /var/lib/rigkit/monitor.db" in unit and "--notify" not in unit
    plan = plan_build(REF, ("localhost",), ProvisionOptions(enforce=True))
    enforced = tmp_path / "enforced"
    render_project([plan], ProvisionOptions(enforce=True), enforced)
    unit = _render_role_template(tmp_path, enforced, "rigkit_monitor", "rigkit-monitor.service.j2")
    assert "User=root" in unit
    (exec_line,) = re.findall(r"^ExecStart=.*$", unit, re.M)
    assert exec_line.endswith(" --enforce")


@pytest.mark.slow
def test_serving_unit_command_line(tmp_path: Path) -> None:
    """The unit's ExecStart, split the way systemd and a shell split it, is exactly the engine's
    arguments from group_vars: every argument quoted, nothing from a spec can add one."""
    import shlex

    text = REF.read_text(encoding="utf-8").replace("raid: models}", 'raid: "mo dels $(id) 100%"}')
    spec = tmp_path / "odd.yaml"
    spec.write_text(text, encoding="utf-8")
    plan = plan_build(spec, ("localhost",), OPTS, ServeRequest("llama-3-70b", "awq-int4", "vllm"))
    out = tmp_path / "p"
    render_project([plan], OPTS, out)
    unit = _render_role_template(tmp_path, out, "rigkit_serving", "rigkit-serve.service.j2")
    (line,) = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    argv = shlex.split(line.replace("%%", "%").replace("$$", "$"))
    models = plan.var("rigkit_models_dir")
    assert models == "/srv/mo-dels-id-100"  # the raid group's name reaches paths only as a slug
    i = argv.index("vllm/vllm-openai:v0.8.5")
    assert argv[:i] == [
        "/usr/bin/docker",
        "run",
        "--rm",
        "--name",
        "rigkit-serve",
        "--gpus",
        "all",
        "--ipc",
        "host",
        "--publish",
        "127.0.0.1:8000:8000",
        "--volume",
        f"{models}:{models}",
    ]
    assert argv[i + 1 :] == [
        "--model",
        f"{models}/llama-3-70b-awq-int4",
        *plan.serving.args,
    ]


@pytest.mark.slow
def test_alertmanager_config_is_valid(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed")
    out = _project(tmp_path)
    vault = tmp_path / "vault.json"
    vault.write_text(
        json.dumps(
            {
                "vault_rigkit_alert_email_to": "ops@example.org",
                "vault_rigkit_smtp_smarthost": "mail.example.org:587",
                "vault_rigkit_smtp_from": "rig@example.org",
                "vault_rigkit_smtp_username": "rig",
                "vault_rigkit_smtp_password": "p'a\"ss: #1",
            }
        )
    )
    for extra in ([], ["-e", f"@{vault}"]):
        text = _render_role_template(
            tmp_path, out, "rigkit_observability", "alertmanager.yml.j2", extra
        )
        conf = tmp_path / "alertmanager.yml"
        conf.write_text(text)
        r = subprocess.run(
            [amtool, "check-config", str(conf)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stdout + r.stderr
        if extra:
            doc = load_yaml(conf)
            assert doc["route"]["receiver"] == "email"
            assert doc["global"]["smtp_auth_password"] == "p'a\"ss: #1"
