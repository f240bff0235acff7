"""What `rigkit provision` writes, worked out from a spec: every value with the reason for it.

:func:`plan_build` turns a spec (and the provisioning options) into a :class:`BuildPlan`: the
inventory group of the hosts that run that build and the ordered group variables the roles read,
each a :class:`Var` whose ``reason`` becomes the comment above it in ``group_vars``. Nothing here
writes files or formats YAML; :mod:`rigkit.provision.generate` renders the packaged templates.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from rigkit.build import Build
from rigkit.errors import RigkitError
from rigkit.spec import Spec, load_spec, resolve

__all__ = [
    "API_PORT",
    "EXPORTER_PORT",
    "SERVING_CONTAINER",
    "SERVING_UNIT",
    "BuildPlan",
    "ProvisionError",
    "ProvisionOptions",
    "Var",
    "driver_vars",
    "network_vars",
    "plan_build",
    "power_limits",
    "storage_vars",
]

#: the systemd unit that runs the inference server; the monitor's tier-2 response stops it
SERVING_UNIT: Final = "rigkit-serve.service"
#: the container the serving unit runs (engines shipped as images), also stopped by tier 2
SERVING_CONTAINER: Final = "rigkit-serve"
#: the monitor's Prometheus exporter port (`rigkit monitor run --listen`)
EXPORTER_PORT: Final = 9842
#: the inference API port of the serving unit
API_PORT: Final = 8000
_MIB = 1 << 20


class ProvisionError(RigkitError):
    """The provisioning request cannot be carried out (a bad host, a model that does not fit)."""


@dataclass(frozen=True)
class Var:
    """One Ansible variable: its value and why it has it (the comment above it)."""

    name: str
    value: Any
    reason: str


@dataclass(frozen=True)
class ProvisionOptions:
    """Choices that are not in the spec: who may reach the machine and how the network behaves."""

    allow: tuple[str, ...] = ()  # subnets allowed to reach the API and the exporter
    mtu: int = 1500
    rtt_ms: float = 1.0
    enforce: bool = False  # the monitor's thermal response acts (otherwise it only logs)
    api_port: int = API_PORT
    exporter_port: int = EXPORTER_PORT

    def __post_init__(self) -> None:
        for net in self.allow:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ProvisionError(
                    f"--allow {net!r} is not a subnet", hint="e.g. 192.168.1.0/24 or 10.0.0.5/32"
                ) from None
        if not 576 <= self.mtu <= 9216:
            raise ProvisionError(f"--mtu {self.mtu} is outside 576..9216")
        if not 0 < self.rtt_ms <= 1000 or math.isnan(self.rtt_ms):
            raise ProvisionError(f"--rtt-ms {self.rtt_ms} must be above 0 and at most 1000")


@dataclass(frozen=True)
class BuildPlan:
    """One spec: its inventory group, its hosts and the variables its roles read."""

    group: str
    spec_path: str
    spec_text: str
    build: Build
    hosts: tuple[str, ...]
    vars: tuple[Var, ...]
    serving: Any = None  # rigkit.provision.serving.ServingPlan when --serve was given
    notes: tuple[str, ...] = field(default=())

    def var(self, name: str) -> Any:
        for v in self.vars:
            if v.name == name:
                return v.value
        raise KeyError(name)


_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$"
)


def check_host(host: str) -> str:
    """A host name or IP address for the inventory; anything else is refused."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOST.match(host):
        raise ProvisionError(
            f"host {host!r} is not a host name or an IP address",
            hint="letters, digits, '-' and '.', e.g. gpu1.lan or 192.168.1.20",
        )
    return host


def group_name(stem: str) -> str:
    """An inventory group for a spec file: ``reference-4x4090`` -> ``build_reference_4x4090``."""
    slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "spec"
    return f"build_{slug}"


def slug(text: str, fallback: str) -> str:
    """A name safe in paths and unit names (lowercase letters, digits, '-')."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:40] or fallback


# --- nvidia -----------------------------------------------------------------------------------


@functools.cache
def _drivers() -> dict[str, Any]:
    text = resources.files("rigkit.provision").joinpath("data/drivers.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def driver_vars(build: Build) -> list[Var]:
    """The driver branch and kernel-module flavour the build's GPUs need."""
    data = _drivers()
    archs = {a["id"]: a for a in data["architectures"]}
    present = sorted({g.gpu.architecture for g in build.gpus})
    unknown = [a for a in present if a not in archs]
    if unknown:
        raise ProvisionError(
            f"no driver data for GPU architecture {', '.join(unknown)}",
            hint="add it to rigkit/provision/data/drivers.yaml",
        )
    need = max(int(archs[a]["min_branch"]) for a in present)
    branch = max(int(data["default_branch"]), need)
    required = [a for a in present if archs[a]["open_required"]]
    names = ", ".join(f"{a} (R{archs[a]['min_branch']}+)" for a in present)
    open_modules = bool(required) or all(archs[a]["open_supported"] for a in present)
    if required:
        why_open = (
            f"open kernel modules: {', '.join(required)} GPUs are supported only by NVIDIA's open"
            " modules, not the proprietary ones"
        )
    else:
        why_open = (
            "open kernel modules: NVIDIA's recommended flavour for Turing and later since R560;"
            f" {', '.join(present)} also work with the proprietary modules"
            " (set rigkit_nvidia_open_modules: false to use them)"
        )
    flavour = "-open" if open_modules else ""
    return [
        Var(
            "rigkit_nvidia_driver_branch",
            branch,
            f"driver branch {branch}: the build's GPUs need {names}; default branch"
            f" R{data['default_branch']} ({' '.join(str(data['default_branch_source']).split())})",
        ),
        Var(
            "rigkit_nvidia_min_branch",
            need,
            f"oldest branch that supports every GPU in the build: R{need} (the audit checks it)",
        ),
        Var("rigkit_nvidia_open_modules", open_modules, why_open),
        Var(
            "rigkit_nvidia_driver_package",
            f"nvidia-driver-{branch}-server{flavour}",
            "Ubuntu's server driver package for that branch and flavour (apt; held with"
            " apt-mark so unattended upgrades cannot move it)",
        ),
        Var(
            "rigkit_nvidia_utils_package",
            f"nvidia-utils-{branch}-server",
            "nvidia-smi for that branch (held with the driver)",
        ),
    ]


def power_limits(spec: Spec, build: Build) -> list[tuple[int, float]]:
    """(GPU index, watts) for every GPU whose spec entry sets ``power_limit_w``; none otherwise.

    The build fills in the board power for GPUs without a limit; only the spec's own limits are
    applied (a board at its default needs no unit)."""
    out: list[tuple[int, float]] = []
    index = 0
    for ref in spec.parts.gpus:
        for _ in range(ref.quantity):
            if ref.power_limit_w is not None:
                out.append((build.gpus[index].index, ref.power_limit_w))
            index += 1
    return out


def _power_vars(spec: Spec, build: Build) -> list[Var]:
    limits = power_limits(spec, build)
    if not limits:
        return [
            Var(
                "rigkit_nvidia_power_limits",
                [],
                "no power_limit_w in the spec: every GPU keeps its board power, no limits unit",
            )
        ]
    parts = "; ".join(
        f"GPU {i} ({build.gpus[i].gpu.id}, board power {build.gpus[i].gpu.tdp_w:g} W): {w:g} W"
        for i, w in limits
    )
    return [
        Var(
            "rigkit_nvidia_power_limits",
            [{"index": i, "watts": int(w) if float(w).is_integer() else w} for i, w in limits],
            f"power_limit_w from the spec, applied at every boot by rigkit-gpu-power.service: {parts}",
        )
    ]


# --- storage ----------------------------------------------------------------------------------

#: mdadm's default chunk (RAID 0): large sequential reads of model files stripe in 512 KiB pieces
CHUNK_KIB: Final = 512


def storage_vars(build: Build) -> list[Var]:
    """Model volumes: each RAID group a RAID 0 array, each other non-OS drive a plain volume."""
    volumes: list[dict[str, Any]] = []
    reasons: list[str] = []
    groups: dict[str, list[str]] = {}
    for d in build.drives:
        if d.raid_group is not None:
            groups.setdefault(d.raid_group, []).append(d.drive.id)
    for name, ids in groups.items():
        s = slug(name, "models")
        n = len(ids)
        volumes.append(
            {
                "name": s,
                "raid": n > 1,
                "level": 0,
                "expected_devices": n,
                "devices": [],
                "chunk_kib": CHUNK_KIB,
                "fstype": "xfs",
                "mount": f"/srv/{s}",
            }
        )
        reasons.append(
            f"{s}: RAID 0 of {n}x {ids[0]} (the spec's raid group), chunk {CHUNK_KIB} KiB;"
            f" XFS stripe unit su={CHUNK_KIB}k x sw={n} data drives = {CHUNK_KIB * n} KiB per"
            f" full stripe; mounted at /srv/{s} with nofail"
        )
    for k, d in enumerate(build.drives):
        if d.raid_group is None and d.role not in ("os", "boot"):
            s = slug(d.role, "data")
            if any(v["name"] == s for v in volumes):
                s = f"{s}-{k}"
            volumes.append(
                {
                    "name": s,
                    "raid": False,
                    "level": 0,
                    "expected_devices": 1,
                    "devices": [],
                    "chunk_kib": CHUNK_KIB,
                    "fstype": "xfs",
                    "mount": f"/srv/{s}",
                }
            )
            reasons.append(f"{s}: one {d.drive.id} (role {d.role}), XFS at /srv/{s} with nofail")
    reason = (
        "; ".join(reasons)
        if reasons
        else "no model drives besides the OS drive in the spec: no volumes"
    )
    if volumes:
        reason += (
            ". Set devices per host (/dev/disk/by-id/... paths): the spec names the drives, not"
            " their device paths. Creating arrays and file systems needs rigkit_storage_format: true"
        )
    return [
        Var("rigkit_storage_volumes", volumes, reason),
        Var(
            "rigkit_models_dir",
            volumes[0]["mount"] if volumes else "/srv/models",
            "where the serving role looks for model files"
            + (
                f": the {volumes[0]['name']} volume"
                if volumes
                else " (no model volume: a directory)"
            ),
        ),
    ]


# --- network ----------------------------------------------------------------------------------


def _pow2_at_least(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, n))))


def network_vars(build: Build, opts: ProvisionOptions) -> list[Var]:
    """MTU and socket buffers sized from the fastest NIC's speed x the round-trip time."""
    if not build.nics:
        return [
            Var(
                "rigkit_network_tune",
                False,
                "no add-in NIC in the spec: kernel network defaults kept",
            ),
            Var("rigkit_network_mtu", opts.mtu, "MTU (not changed without a NIC to tune)"),
            Var("rigkit_network_buffer_bytes", 0, "no socket buffer tuning"),
        ]
    nic = max(build.nics, key=lambda n: n.part.speed_gbe)
    gbps = nic.part.speed_gbe
    bdp = gbps * 1e9 / 8 * opts.rtt_ms / 1000
    buf = max(_pow2_at_least(2 * bdp), 4 * _MIB)
    arithmetic = (
        f"{gbps:g} Gb/s ({nic.part.id}) x {opts.rtt_ms:g} ms RTT = {gbps:g}e9 / 8 x"
        f" {opts.rtt_ms / 1000:g} s = {bdp:,.0f} B bandwidth-delay product; x2 (Linux counts"
        f" half the buffer as overhead, tcp_adv_win_scale) = {2 * bdp:,.0f} B; next power of"
        f" two {buf:,} B ({buf // _MIB} MiB)"
    )
    return [
        Var("rigkit_network_tune", True, f"tune the {nic.part.id} links"),
        Var(
            "rigkit_network_mtu",
            opts.mtu,
            f"MTU {opts.mtu}"
            + (
                " (--mtu; every switch port and peer on the link must use it too)"
                if opts.mtu != 1500
                else " (standard Ethernet; pass --mtu 9000 for jumbo frames when the switch has them)"
            ),
        ),
        Var("rigkit_network_link_gbps", gbps, f"fastest NIC port: {nic.part.name}"),
        Var(
            "rigkit_network_rtt_ms",
            opts.rtt_ms,
            "round-trip time the buffers are sized for (--rtt-ms)",
        ),
        Var(
            "rigkit_network_buffer_bytes",
            buf,
            f"net.core.rmem_max / wmem_max and the tcp_rmem / tcp_wmem maximum: {arithmetic}"
            " (not a fixed 128 MB: a larger buffer only adds queueing on this link)",
        ),
        Var(
            "rigkit_network_interfaces",
            [],
            "interfaces to tune (names differ per host: set per host)",
        ),
    ]


# --- the whole build --------------------------------------------------------------------------


def _gpu_vars(build: Build) -> list[Var]:
    gpus = [
        {
            "index": g.index,
            "id": g.gpu.id,
            "name": g.gpu.name,
            "architecture": g.gpu.architecture,
            "vram_gb": g.gpu.vram_gb,
        }
        for g in build.gpus
    ]
    counts: dict[str, int] = {}
    for g in build.gpus:
        counts[g.gpu.id] = counts.get(g.gpu.id, 0) + 1
    return [
        Var(
            "rigkit_gpus",
            gpus,
            "GPUs in the spec: " + ", ".join(f"{n}x {i}" for i, n in counts.items()),
        )
    ]


def _security_vars(opts: ProvisionOptions) -> list[Var]:
    allow = list(opts.allow)
    return [
        Var(
            "rigkit_allow_subnets",
            allow,
            "subnets allowed to reach the inference API and the exporter (--allow)"
            if allow
            else "no --allow: the API and the exporter stay on 127.0.0.1, only SSH is open",
        ),
        Var("rigkit_api_port", opts.api_port, "inference API port of the serving unit"),
        Var("rigkit_exporter_port", opts.exporter_port, "rigkit monitor's Prometheus exporter"),
        Var(
            "rigkit_listen_address",
            "0.0.0.0" if allow else "127.0.0.1",
            "address the API and the exporter bind: all interfaces behind the firewall when"
            " subnets are allowed, loopback otherwise",
        ),
    ]


def _monitor_vars(opts: ProvisionOptions, serving: Any) -> list[Var]:
    units = [SERVING_UNIT] if serving is not None else []
    containers = [SERVING_CONTAINER] if serving is not None and serving.image else []
    return [
        Var(
            "rigkit_monitor_enforce",
            opts.enforce,
            "--enforce: the thermal response acts (lowers power limits, stops the serving unit,"
            " shuts down)"
            if opts.enforce
            else "no --enforce: the thermal response only logs what it would do",
        ),
        Var(
            "rigkit_monitor_tier2_units",
            units,
            f"units the monitor's tier-2 response stops: the serving unit {SERVING_UNIT}"
            if units
            else "no serving unit: tier 2 has nothing to stop",
        ),
        Var(
            "rigkit_monitor_tier2_containers",
            containers,
            "containers tier 2 stops (the serving container)" if containers else "none",
        ),
    ]


def _model_path_var(serving: Any, models_dir: str) -> Var:
    """Where the server finds the weights: one .gguf file for a GGUF-only format, else a
    directory of safetensors (the model's Hugging Face layout)."""
    from rigkit.catalog.llm import load_llm_catalog

    containers = load_llm_catalog().format(serving.quant).containers
    gguf = containers == ["gguf"]
    path = f"{models_dir}/{serving.model}-{serving.quant}" + (".gguf" if gguf else "")
    if serving.engine == "ollama":
        why = "Ollama keeps its own model store; unused"
    elif gguf:
        why = f"{serving.quant} is a GGUF format: one .gguf file" + (
            " (vLLM's GGUF loading is experimental: the unit passes the base model's tokenizer,"
            " rigkit_vllm_tokenizer)"
            if serving.engine == "vllm"
            else ""
        )
    else:
        why = f"{serving.quant} weights in the model's Hugging Face layout (a directory)"
    return Var("rigkit_serving_model_path", path, f"model files on the model volume: {why}")


def plan_build(
    spec_path: str | Path,
    hosts: Sequence[str],
    opts: ProvisionOptions,
    serve: Any = None,
    group: str | None = None,
) -> BuildPlan:
    """Everything the roles need for the hosts that run the spec at ``spec_path``.

    ``serve``: a :class:`rigkit.provision.serving.ServeRequest` (or None)."""
    path = Path(spec_path)
    spec = load_spec(path)
    build = resolve(spec)
    text = path.read_text(encoding="utf-8")
    hosts = tuple(check_host(h) for h in hosts)
    serving = None
    if serve is not None:
        from rigkit.provision.serving import plan_serving

        serving = plan_serving(build, serve, opts)
    out: list[Var] = [
        Var("rigkit_build_name", spec.name, f"the spec's name ({path.name})"),
        Var(
            "rigkit_spec_file",
            f"{group or group_name(path.stem)}.yaml",
            "copy of the spec on the host",
        ),
    ]
    out += _gpu_vars(build)
    out += driver_vars(build)
    out += _power_vars(spec, build)
    out += storage_vars(build)
    out += network_vars(build, opts)
    out += _security_vars(opts)
    out += _monitor_vars(opts, serving)
    if serving is not None:
        out += list(serving.vars)
        out += [
            Var(
                "rigkit_serving_args",
                list(serving.args),
                f"{serving.engine} arguments, from the values above",
            ),
            Var("rigkit_serving_env", dict(serving.env), "environment of the server"),
            Var(
                "rigkit_serving_model_flag", serving.model_flag, f"{serving.engine}'s model option"
            ),
            _model_path_var(
                serving, str(next(v.value for v in out if v.name == "rigkit_models_dir"))
            ),
        ]
    else:
        out.append(Var("rigkit_serving_enabled", False, "no --serve: no inference server"))
    return BuildPlan(
        group=group or group_name(path.stem),
        spec_path=str(path),
        spec_text=text,
        build=build,
        hosts=hosts,
        vars=tuple(out),
        serving=serving,
    )
