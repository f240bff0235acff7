"""The generated project passes Ansible's own checks and really runs in check mode on this host.

ansible-lint takes most of a minute on its own, so it runs once, over one project that holds every
example spec (one inventory group each, the reference build serving with vLLM and another with
llama.cpp): the roles are the same files for every spec and each spec's values are in its own
group_vars file, all of which are linted. yamllint and the syntax check run on the same project.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from provision_helpers import EXAMPLES, REF, ansible_env, ansible_tool

from rigkit.provision import ProvisionOptions, ServeRequest, plan_build, render_project
from rigkit.provision.plan import group_name

pytestmark = pytest.mark.slow

OPTS = ProvisionOptions(allow=("192.168.1.0/24",))


@pytest.fixture(scope="module")
def all_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("examples")
    serve = {
        "reference-4x4090": ServeRequest("llama-3-70b", "awq-int4", "vllm"),
        "reference-4x4090-eu": ServeRequest("llama-3-70b", "q4_k_m", "llama.cpp"),
        "2x3090-desktop": ServeRequest("llama-3.1-8b", "q4_k_m", "ollama"),
        "4x6000ada-wrx90": ServeRequest("llama-3.1-70b", "awq-int4", "tgi"),
    }
    plans = [
        plan_build(spec, (f"{spec.stem.replace('.', '-')}.lan",), OPTS, serve.get(spec.stem))
        for spec in EXAMPLES
    ]
    out = tmp / "project"
    render_project(plans, OPTS, out)
    assert sorted(p.group for p in plans) == sorted(group_name(s.stem) for s in EXAMPLES)
    return out


def _nvidia_on_bus() -> int:
    """NVIDIA display/3D controllers on this machine's PCI bus (sysfs)."""
    n = 0
    for dev in Path("/sys/bus/pci/devices").glob("*"):
        try:
            vendor = (dev / "vendor").read_text().strip()
            cls = (dev / "class").read_text().strip()
        except OSError:
            continue
        n += vendor == "0x10de" and cls[:6] in ("0x0300", "0x0302")
    return n


def _run(
    args: list[str], cwd: Path, tmp: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=ansible_env(tmp), capture_output=True, text=True, timeout=timeout
    )


def test_syntax_check(all_examples: Path, tmp_path: Path) -> None:
    r = _run(
        [str(ansible_tool("ansible-playbook")), "--syntax-check", "site.yml"],
        all_examples,
        tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr


def test_yamllint_no_warnings(all_examples: Path, tmp_path: Path) -> None:
    r = _run(
        [str(ansible_tool("yamllint")), "--strict", "-f", "parsable", "."], all_examples, tmp_path
    )
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr


def test_ansible_lint_production_profile(all_examples: Path, tmp_path: Path) -> None:
    r = _run(
        [
            str(ansible_tool("ansible-lint")),
            "--offline",
            "--profile",
            "production",
            "--nocolor",
            "-q",
        ],
        all_examples,
        tmp_path,
        timeout=500,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stdout.lower(), r.stdout


def test_check_mode_against_localhost(tmp_path: Path) -> None:
    """`ansible-playbook site.yml --check --diff` against this machine (local connection) runs
    to the end: no GPU here, so the nvidia role says so; no devices are set, so storage only says
    what it needs; services are not started without systemd."""
    if not (Path("/usr/bin/apt-get").exists() or Path("/bin/apt-get").exists()):
        pytest.skip("the roles install packages with apt; this machine has no apt-get")
    plan = plan_build(
        REF, ("localhost",), ProvisionOptions(), ServeRequest("llama-3-70b", "awq-int4")
    )
    out = tmp_path / "project"
    render_project([plan], ProvisionOptions(), out)
    r = _run(
        [
            str(ansible_tool("ansible-playbook")),
            "site.yml",
            "--check",
            "--diff",
        ],
        out,
        tmp_path,
        timeout=500,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    recap = r.stdout[r.stdout.rindex("PLAY RECAP") :]
    assert "failed=0" in recap and "unreachable=0" in recap, recap
    if _nvidia_on_bus() == 0:
        assert "no NVIDIA GPU found on localhost (lspci; the spec has 4)" in r.stdout
    assert "volume models: no devices set" in r.stdout


def test_driver_change_with_local_connection_stops_cleanly(tmp_path: Path) -> None:
    """Ansible cannot reboot the machine it runs on: when the driver changed on a host reached
    with a local connection, the nvidia role says a reboot is needed and ends that host's play
    (nothing after it runs) without failing. The role's own handlers and reboot tasks run here;
    the driver change is simulated by a task that notifies them."""
    plan = plan_build(REF, ("localhost",), ProvisionOptions())
    project = tmp_path / "project"
    render_project([plan], ProvisionOptions(), project)
    play = tmp_path / "reboot.yml"
    play.write_text(
        "---\n"
        "- name: Driver changed on the control node\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Load the nvidia role's handlers\n"
        "      ansible.builtin.import_role:\n"
        "        name: rigkit_nvidia\n"
        "        tasks_from: reboot.yml\n"
        "    - name: Pretend the driver packages changed\n"
        "      ansible.builtin.debug:\n"
        "        msg: driver installed\n"
        "      changed_when: true\n"
        "      notify: Reboot for the NVIDIA driver\n"
        "    - name: Reach the reboot point\n"
        "      ansible.builtin.include_role:\n"
        "        name: rigkit_nvidia\n"
        "        tasks_from: reboot.yml\n"
        "    - name: After the reboot point\n"
        "      ansible.builtin.debug:\n"
        "        msg: SHOULD-NOT-RUN\n",
        encoding="utf-8",
    )
    env = ansible_env(tmp_path)
    env["ANSIBLE_ROLES_PATH"] = str(project / "roles")
    r = subprocess.run(
        [str(ansible_tool("ansible-playbook")), "-i", "localhost,", str(play)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    text = " ".join(r.stdout.split())
    assert "the NVIDIA driver changed and the host must reboot" in text
    assert "Ansible does not reboot the machine it runs on (local connection)" in text
    assert "SHOULD-NOT-RUN" not in r.stdout
    assert "failed=0" in r.stdout
