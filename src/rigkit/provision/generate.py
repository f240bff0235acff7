"""Write the Ansible project: packaged templates plus the values of :mod:`rigkit.provision.plan`.

The project files (inventory, playbook, group variables, README) are rendered from
``templates/project`` with rigkit's own Jinja environment, whose delimiters are ``[[ ]]`` and
``[% %]`` so that Ansible's ``{{ }}`` pass through untouched. The roles under ``templates/roles``
are Ansible's own templates and tasks, copied as they are. Every value from a spec reaches the
YAML through :func:`to_yaml` (a double-quoted scalar tagged ``!unsafe``, so Ansible never
evaluates ``{{ }}`` in it) or :func:`comment` (one comment line per 100 characters, no newline can
end the comment early).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

import jinja2
import yaml

from rigkit import __version__
from rigkit.outputs import check_out_dir
from rigkit.provision.plan import BuildPlan, ProvisionError, ProvisionOptions, Var

__all__ = ["ROLES", "ProvisionResult", "comment", "render_project", "to_yaml"]

#: roles in the order site.yml runs them
ROLES: Final = (
    "rigkit_base",
    "rigkit_nvidia",
    "rigkit_containers",
    "rigkit_storage",
    "rigkit_network",
    "rigkit_security",
    "rigkit_monitor",
    "rigkit_serving",
    "rigkit_observability",
)
_LOCAL: Final = ("localhost", "127.0.0.1", "::1")
_PLAIN_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP: Final = ("inventory.yml", "site.yml", "ansible.cfg", "README.md", ".yamllint", "group_vars")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON's string escapes are a subset of YAML's double-quoted ones: newlines, quotes and
        # control characters stay escaped; !unsafe keeps Ansible from templating the text
        return "!unsafe " + json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(k: object) -> str:
    text = str(k)
    return text if _PLAIN_KEY.match(text) else json.dumps(text)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list | tuple) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines += _block(v, indent + 2)
            else:
                lines.append(f"{pad}{_key(k)}: {to_yaml(v)}")
        return lines
    for item in value:
        if isinstance(item, dict | list | tuple) and item:
            sub = _block(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
        else:
            lines.append(f"{pad}- {to_yaml(item)}")
    return lines


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` for the right of ``key:`` at column ``indent``: scalars on the line, lists and
    mappings as an indented block; every string quoted and tagged ``!unsafe``."""
    if isinstance(value, dict | list | tuple):
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        return "\n" + "\n".join(_block(value, indent + 2))
    return _scalar(value)


def yaml_value(value: Any) -> str:
    """What follows ``key:`` on its line: `` scalar`` or a newline and an indented block."""
    text = to_yaml(value)
    return text if text.startswith("\n") else " " + text


def comment(text: str, width: int = 100, indent: str = "") -> str:
    """``text`` as YAML/INI comment lines; line breaks in it become spaces."""
    flat = " ".join(str(text).split())
    lines = textwrap.wrap(flat, width=width - len(indent) - 2, break_on_hyphens=False) or [""]
    return "\n".join(f"{indent}# {line}".rstrip() for line in lines)


def one_line(text: str) -> str:
    """Markdown-safe single line (README): no line breaks, backticks and pipes escaped."""
    flat = " ".join(str(text).split())
    return flat.replace("\\", "\\\\").replace("`", "\\`").replace("|", "\\|").replace("<", "&lt;")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rigkit.provision", "templates/project"),
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["to_yaml"] = to_yaml
    env.filters["yaml_value"] = yaml_value
    env.filters["comment"] = comment
    env.filters["one_line"] = one_line
    env.filters["key"] = json.dumps
    return env


@dataclass(frozen=True)
class ProvisionResult:
    out_dir: str
    files: tuple[str, ...]
    groups: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "files": list(self.files), "groups": list(self.groups)}


def _copy_tree(src: Traversable, dest: Path, rel: str, written: list[str]) -> None:
    for item in sorted(src.iterdir(), key=lambda t: t.name):
        if item.name == "__pycache__":
            continue
        target = dest / item.name
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            _copy_tree(item, target, f"{rel}/{item.name}", written)
        else:
            target.write_bytes(item.read_bytes())
            written.append(f"{rel}/{item.name}")


class _IndentedDumper(yaml.SafeDumper):
    """Sequences indented under their key (yamllint's default)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def scrape_targets(plans: Sequence[BuildPlan], opts: ProvisionOptions) -> list[str]:
    """Every host's exporter as ``NAME=HOST:PORT`` for Prometheus in the compose project: a
    host that is the monitoring host's own machine (local connection) is reached from the
    container as host.docker.internal."""
    out = []
    for p in plans:
        for h in p.hosts:
            address = "host.docker.internal" if h in _LOCAL else h
            out.append(f"{h}={address}:{opts.exporter_port}")
    return out


def _observability_files(
    dest: Path, written: list[str], plans: Sequence[BuildPlan], opts: ProvisionOptions
) -> None:
    """rigkit monitor export-config's files for the compose project: the alert rules, the
    dashboard, and the Prometheus configuration scraping every host of the inventory."""
    from rigkit.monitor.alerts import default_rules
    from rigkit.monitor.export_config import (
        grafana_dashboard,
        prometheus_files,
        prometheus_rules,
    )

    files = dest / "roles" / "rigkit_observability" / "files"
    files.mkdir(parents=True, exist_ok=True)
    header = "---\n# Generated by `rigkit provision` from rigkit monitor's alert rules.\n"
    prom = prometheus_files(
        scrape_targets(plans, opts), header=header, alertmanager="alertmanager:9093"
    )
    docs = {
        "rigkit-alerts.yml": header
        + yaml.dump(
            prometheus_rules(default_rules(plans[0].build)),
            Dumper=_IndentedDumper,
            sort_keys=False,
            width=60,
            allow_unicode=True,
        ),
        "prometheus.yml": prom["prometheus-scrape.yml"],
        "rigkit-targets.yml": "---\n" + prom["rigkit-targets.yml"],
        "grafana-dashboard.json": json.dumps(grafana_dashboard(), indent=2) + "\n",
    }
    for name, text in docs.items():
        (files / name).write_text(text, encoding="utf-8")
        written.append(f"roles/rigkit_observability/files/{name}")


def _common_vars(plans: Sequence[BuildPlan], opts: ProvisionOptions) -> list[Var]:
    targets = [f"{h}:{opts.exporter_port}" for p in plans for h in p.hosts]
    return [
        Var("rigkit_version", __version__, "rigkit version that wrote this project"),
        Var(
            "rigkit_observability_targets",
            targets,
            f"every host's exporter (port {opts.exporter_port}), scraped by Prometheus on the"
            " monitoring host (roles/rigkit_observability/files/rigkit-targets.yml)",
        ),
    ]


def render_project(
    plans: Sequence[BuildPlan],
    opts: ProvisionOptions,
    out: str | Path,
    *,
    force: bool = False,
    monitoring_host: str | None = None,
) -> ProvisionResult:
    """Write the project into ``out`` (refused when it has earlier files, unless ``force``)."""
    if not plans:
        raise ProvisionError("nothing to provision: no spec")
    hosts = [h for p in plans for h in p.hosts]
    dup = sorted({h for h in hosts if hosts.count(h) > 1})
    if dup:
        raise ProvisionError(f"host {dup[0]} is listed for more than one spec")
    groups = [p.group for p in plans]
    if len(set(groups)) != len(groups):
        raise ProvisionError("two specs map to the same inventory group", hint="rename a spec file")
    mon = monitoring_host or hosts[0]
    if mon not in hosts:
        raise ProvisionError(f"--monitoring-host {mon} is not one of the hosts")
    dest = check_out_dir(Path(out), (*_TOP, "roles", "files"), force=force)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    env = _env()
    ctx: dict[str, Any] = {
        "plans": plans,
        "opts": opts,
        "monitoring_host": mon,
        "roles": ROLES,
        "common": _common_vars(plans, opts),
        "version": __version__,
        "local": lambda h: h in _LOCAL,
    }
    out_files: dict[str, tuple[str, dict[str, Any]]] = {
        "inventory.yml": ("inventory.yml.j2", {}),
        "site.yml": ("site.yml.j2", {}),
        "ansible.cfg": ("ansible.cfg.j2", {}),
        "README.md": ("README.md.j2", {}),
        ".yamllint": ("yamllint.yml.j2", {}),
        "group_vars/all.yml": ("all.yml.j2", {}),
    }
    for p in plans:
        out_files[f"group_vars/{p.group}.yml"] = ("group.yml.j2", {"plan": p})
    (dest / "group_vars").mkdir(exist_ok=True)
    for name, (template, extra) in out_files.items():
        text = env.get_template(template).render(**ctx, **extra)
        (dest / name).write_text(text, encoding="utf-8")
        written.append(name)
    specs = dest / "files" / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    for p in plans:
        (specs / f"{p.group}.yaml").write_text(p.spec_text, encoding="utf-8")
        written.append(f"files/specs/{p.group}.yaml")
    roles_src = resources.files("rigkit.provision").joinpath("templates/roles")
    (dest / "roles").mkdir(exist_ok=True)
    _copy_tree(roles_src, dest / "roles", "roles", written)
    _observability_files(dest, written, plans, opts)
    os.chmod(dest / "ansible.cfg", 0o644)
    return ProvisionResult(
        out_dir=str(dest),
        files=tuple(written),
        groups=tuple(
            {
                "group": p.group,
                "spec": p.spec_path,
                "hosts": list(p.hosts),
                "serving": p.serving.to_dict() if p.serving is not None else None,
            }
            for p in plans
        ),
    )
