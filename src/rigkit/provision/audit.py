"""`rigkit audit`: the live host compared with its spec and its provisioning plan.

Every check is an :class:`AuditItem` - pass, fail or not present - with the observed and the
expected value. The host is read through a :class:`Sources` object: a root directory for ``/sys``
and ``/proc`` and a command runner, so the same code audits this machine (:class:`HostSources`)
or recorded outputs of another (:class:`RecordedSources`, the tests' fixtures).

Commands read: ``nvidia-smi -q -x`` (GPUs, PCIe links, driver, persistence, power limits, ECC),
``ip -j link`` (MTU), ``sysctl`` (socket buffers), ``ss -ltnH`` (listening ports), ``sshd -T``
(effective SSH settings), ``systemctl is-active`` (units), ``mdadm --detail`` (arrays); files:
``/proc/mounts``, ``/sys/bus/pci/devices`` (NVIDIA GPUs on the bus), ``/sys/class/net``.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from rigkit.errors import RigkitError
from rigkit.provision.plan import SERVING_UNIT, BuildPlan

__all__ = [
    "AuditItem",
    "AuditReport",
    "CommandResult",
    "HostSources",
    "RecordedSources",
    "Sources",
    "audit",
]

Status = Literal["pass", "fail", "not present"]
MONITOR_UNIT = "rigkit-monitor.service"
POWER_UNIT = "rigkit-gpu-power.service"
PERSISTENCE_UNIT = "nvidia-persistenced.service"
SYSCTL_KEYS = ("net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str = ""


class Sources(Protocol):
    """Where the audit reads the host: a root for /sys and /proc, commands, the exporter."""

    root: Path

    def run(self, argv: Sequence[str]) -> CommandResult | None:
        """The command's result, or None when the command is not installed."""
        ...

    def http_status(self, url: str) -> tuple[int, str] | None:
        """(status, body) of a GET, or None when nothing answers."""
        ...


class HostSources:
    """This machine."""

    def __init__(self, root: Path = Path("/"), timeout_s: float = 10.0) -> None:
        self.root = root
        self.timeout_s = timeout_s

    def run(self, argv: Sequence[str]) -> CommandResult | None:
        exe = shutil.which(argv[0]) or next(
            (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / argv[0]).is_file()),
            None,
        )
        if exe is None:
            return None
        try:
            r = subprocess.run(
                [exe, *argv[1:]],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return CommandResult(rc=-1, stdout="", stderr=str(err))
        return CommandResult(r.returncode, r.stdout, r.stderr)

    def http_status(self, url: str) -> tuple[int, str] | None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                return int(resp.status), resp.read(200_000).decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return int(err.code), ""
        except (urllib.error.URLError, OSError, ValueError):
            return None


class RecordedSources:
    """Recorded outputs of a host: ``DIR/root`` (its /sys and /proc) and ``DIR/commands.yaml``,
    a list of ``{argv: [...], rc: N, stdout: FILE, stderr: TEXT}`` (a missing command is not
    installed), plus an optional ``http: {URL: {status: N, body: FILE}}``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.root = directory / "root"
        index = directory / "commands.yaml"
        try:
            data: Any = yaml.safe_load(index.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise RigkitError(f"{index}: cannot read the recording: {err}") from None
        self._commands: dict[tuple[str, ...], dict[str, Any]] = {
            tuple(str(a) for a in c["argv"]): c for c in data.get("commands", [])
        }
        self._http: dict[str, dict[str, Any]] = data.get("http", {}) or {}

    def _text(self, entry: Mapping[str, Any], key: str) -> str:
        name = entry.get(key)
        if name is None:
            return ""
        path = self.dir / str(name)
        return path.read_text(encoding="utf-8") if path.is_file() else str(name)

    def run(self, argv: Sequence[str]) -> CommandResult | None:
        c = self._commands.get(tuple(argv))
        if c is None:
            return None
        return CommandResult(int(c.get("rc", 0)), self._text(c, "stdout"), self._text(c, "stderr"))

    def http_status(self, url: str) -> tuple[int, str] | None:
        h = self._http.get(url)
        if h is None:
            return None
        return int(h.get("status", 200)), self._text(h, "body")


@dataclass(frozen=True)
class AuditItem:
    area: str
    name: str
    status: Status
    observed: str
    expected: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "area": self.area,
            "name": self.name,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
            "note": self.note,
        }


@dataclass(frozen=True)
class AuditReport:
    spec: str
    items: tuple[AuditItem, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> list[AuditItem]:
        return [i for i in self.items if i.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "not present": 0}
        for i in self.items:
            out[i.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "ok": self.ok,
            "counts": self.counts(),
            "items": [i.to_dict() for i in self.items],
            "notes": list(self.notes),
        }


def _item(
    area: str, name: str, ok: bool, observed: object, expected: object, note: str = ""
) -> AuditItem:
    return AuditItem(area, name, "pass" if ok else "fail", str(observed), str(expected), note)


def _absent(area: str, name: str, expected: object, note: str) -> AuditItem:
    return AuditItem(area, name, "not present", "-", str(expected), note)


# --- GPUs -------------------------------------------------------------------------------------


def _pci_nvidia_gpus(root: Path) -> int:
    """NVIDIA display/3D controllers on the PCI bus (vendor 0x10de, class 0x0300/0x0302)."""
    base = root / "sys" / "bus" / "pci" / "devices"
    if not base.is_dir():
        return 0
    n = 0
    for dev in base.iterdir():
        try:
            vendor = (dev / "vendor").read_text().strip().lower()
            cls = (dev / "class").read_text().strip().lower()
        except OSError:
            continue
        if vendor == "0x10de" and cls[:6] in ("0x0300", "0x0302"):
            n += 1
    return n


def _t(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    text = found.text.strip()
    return None if text in ("", "N/A", "[N/A]") else text


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def _gpu_items(plan: BuildPlan, src: Sources, limits: dict[int, float]) -> Iterator[AuditItem]:
    build = plan.build
    want = len(build.gpus)
    names = sorted({g.gpu.name for g in build.gpus})
    on_bus = _pci_nvidia_gpus(src.root)
    smi = src.run(["nvidia-smi", "-q", "-x"])
    per_gpu = ("model", "memory", "PCIe link", "persistence mode", "power limit")
    if smi is None or smi.rc != 0:
        text = "" if smi is None else (smi.stdout + smi.stderr)
        if "mismatch" in text.lower():
            yield _item(
                "driver",
                "driver",
                False,
                "NVML: driver/library version mismatch",
                f"branch R{plan.var('rigkit_nvidia_min_branch')}+ loaded",
                "reboot: the driver was upgraded and the old kernel module is still loaded",
            )
        why = (
            "nvidia-smi is not installed (no NVIDIA driver)"
            if smi is None
            else f"nvidia-smi failed: {' '.join(text.split())[:160]}"
        )
        yield _item(
            "gpu",
            "GPU count",
            False,
            f"{on_bus} NVIDIA GPU(s) on the PCI bus"
            + (", the driver does not answer" if on_bus else ""),
            f"{want}x {', '.join(names)}",
            why if on_bus else "no NVIDIA GPU on this host's PCI bus",
        )
        if "mismatch" not in text.lower():
            yield _absent("driver", "driver", f"R{plan.var('rigkit_nvidia_min_branch')}+", why)
        for g in build.gpus:
            for what in per_gpu:
                yield _absent("gpu", f"GPU {g.index} {what}", "-", "no GPU to read")
        return
    try:
        doc = ET.fromstring(smi.stdout)
    except ET.ParseError as err:
        raise RigkitError(f"nvidia-smi -q -x: not XML ({err})") from None
    gpus = doc.findall("gpu")
    yield _item(
        "gpu",
        "GPU count",
        len(gpus) == want,
        len(gpus),
        want,
    )
    driver = _t(doc, "driver_version") or "?"
    major = int(driver.split(".")[0]) if driver.split(".")[0].isdigit() else 0
    need = int(plan.var("rigkit_nvidia_min_branch"))
    branch = int(plan.var("rigkit_nvidia_driver_branch"))
    yield _item(
        "driver",
        "driver",
        major >= need,
        driver,
        f"R{need}+ (provisioned: R{branch})",
        ""
        if major == branch or major < need
        else f"branch R{major}, not the provisioned R{branch}",
    )
    for k, g in enumerate(build.gpus):
        node = gpus[k] if k < len(gpus) else None
        if node is None:
            for what in per_gpu:
                yield _absent("gpu", f"GPU {g.index} {what}", "-", "GPU missing")
            continue
        product = _t(node, "product_name") or "?"
        yield _item("gpu", f"GPU {k} model", product == g.gpu.name, product, g.gpu.name)
        mib = _num(_t(node, "fb_memory_usage/total"))
        gb = (mib or 0) * 1024 * 1024 / 1e9
        # marketed GB vs the MiB nvidia-smi reports: within 10% (24 GB cards show 24,564 MiB)
        yield _item(
            "gpu",
            f"GPU {k} memory",
            mib is not None and abs(gb - g.gpu.vram_gb) <= 0.1 * g.gpu.vram_gb,
            f"{mib:,.0f} MiB ({gb:.1f} GB)" if mib is not None else "?",
            f"{g.gpu.vram_gb:g} GB",
        )
        gen = _num(_t(node, "pci/pci_gpu_link_info/pcie_gen/max_link_gen"))
        width = _t(node, "pci/pci_gpu_link_info/link_widths/max_link_width")
        w = _num(width.rstrip("x") if width else None)
        if g.slot is not None:
            e_gen = min(g.gpu.pcie_gen, g.slot.gen)
            e_w = min(g.gpu.pcie_lanes, g.slot.electrical_lanes)
            yield _item(
                "pcie",
                f"GPU {k} PCIe link",
                gen == e_gen and w == e_w,
                f"gen {gen or 0:g} x{w or 0:g}",
                f"gen {e_gen} x{e_w} ({g.slot.name})",
                "the link's maximum; at idle the current link may run slower to save power",
            )
        pm = _t(node, "persistence_mode") or "?"
        yield _item("gpu", f"GPU {k} persistence mode", pm == "Enabled", pm, "Enabled")
        pl = _num(
            _t(node, "gpu_power_readings/current_power_limit")
            or _t(node, "power_readings/power_limit")
        )
        e_pl = limits.get(g.index, g.gpu.tdp_w)
        yield _item(
            "power",
            f"GPU {k} power limit",
            pl is not None and abs(pl - e_pl) <= 1.0,
            f"{pl:g} W" if pl is not None else "?",
            f"{e_pl:g} W" + (" (spec)" if g.index in limits else " (board power)"),
        )
        if g.gpu.ecc:
            ecc = _t(node, "ecc_mode/current_ecc") or "?"
            yield _item("gpu", f"GPU {k} ECC", ecc == "Enabled", ecc, "Enabled")


# --- storage, network, security, services ----------------------------------------------------


def _mounts(root: Path) -> dict[str, str]:
    path = root / "proc" / "mounts"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            out[parts[1].replace("\\040", " ")] = parts[2]
    return out


def _storage_items(plan: BuildPlan, src: Sources) -> Iterator[AuditItem]:
    mounts = _mounts(src.root)
    for vol in plan.var("rigkit_storage_volumes"):
        if vol["raid"]:
            dev = f"/dev/md/{vol['name']}"
            r = src.run(["mdadm", "--detail", dev])
            if r is None:
                yield _absent("storage", f"{dev} RAID", "raid0, clean", "mdadm is not installed")
            elif r.rc != 0:
                yield _item(
                    "storage",
                    f"{dev} RAID",
                    False,
                    "no such array",
                    f"raid0 of {vol['expected_devices']}, clean",
                )
            else:
                info = {}
                for line in r.stdout.splitlines():
                    key, sep, value = line.partition(" : ")
                    if sep:
                        info[key.strip()] = value.strip()
                level = info.get("Raid Level", "?")
                state = info.get("State", "?")
                n = info.get("Raid Devices", "?")
                ok = (
                    level == "raid0"
                    and n == str(vol["expected_devices"])
                    and state.split(",")[0].strip() in ("clean", "active")
                )
                yield _item(
                    "storage",
                    f"{dev} RAID",
                    ok,
                    f"{level} of {n}, {state}",
                    f"raid0 of {vol['expected_devices']}, clean",
                )
        fs = mounts.get(vol["mount"])
        yield _item(
            "storage",
            f"{vol['mount']} mounted",
            fs == vol["fstype"],
            fs or "not mounted",
            vol["fstype"],
        )


def _network_items(plan: BuildPlan, src: Sources, interfaces: Sequence[str]) -> Iterator[AuditItem]:
    if not plan.var("rigkit_network_tune"):
        return
    mtu = int(plan.var("rigkit_network_mtu"))
    r = src.run(["ip", "-j", "link"])
    if r is None or r.rc != 0:
        yield _absent("network", "MTU", mtu, "ip is not available")
    else:
        import json

        try:
            links = json.loads(r.stdout)
        except ValueError:
            links = []
        names = list(interfaces) or [
            str(link.get("ifname"))
            for link in links
            if (src.root / "sys" / "class" / "net" / str(link.get("ifname")) / "device").exists()
        ]
        by_name = {str(link.get("ifname")): link for link in links}
        if not names:
            yield _absent("network", "MTU", mtu, "no physical network interface found")
        for name in names:
            link = by_name.get(name)
            if link is None:
                yield _absent("network", f"{name} MTU", mtu, "no such interface")
                continue
            yield _item(
                "network", f"{name} MTU", int(link.get("mtu", 0)) == mtu, link.get("mtu"), mtu
            )
    buf = int(plan.var("rigkit_network_buffer_bytes"))
    r = src.run(["sysctl", *SYSCTL_KEYS])
    values: dict[str, str] = {}
    if r is not None:
        for line in r.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = " ".join(value.split())
    for key in SYSCTL_KEYS:
        got = values.get(key)
        if got is None:
            yield _absent("network", key, buf, "sysctl did not report it")
            continue
        top = int(got.split()[-1])
        expected = f"{buf:,}" if key.startswith("net.core") else f"... {buf:,} (maximum)"
        yield _item("network", key, top == buf, got, expected)


def _ports_items(plan: BuildPlan, src: Sources) -> Iterator[AuditItem]:
    allowed = {22, int(plan.var("rigkit_api_port")), int(plan.var("rigkit_exporter_port"))}
    r = src.run(["ss", "-ltnH"])
    if r is None or r.rc != 0:
        yield _absent("security", "open ports", sorted(allowed), "ss is not available")
        return
    exposed: set[int] = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        addr, _, port = parts[3].rpartition(":")
        addr = addr.strip("[]").split("%")[0]
        try:
            loopback = addr not in ("*", "0.0.0.0", "::") and ipaddress.ip_address(addr).is_loopback
        except ValueError:
            loopback = False
        if port.isdigit() and not loopback:
            exposed.add(int(port))
    extra = sorted(exposed - allowed)
    yield _item(
        "security",
        "ports listening beyond loopback",
        not extra,
        ", ".join(map(str, sorted(exposed))) or "none",
        "only " + ", ".join(map(str, sorted(allowed))) + " (SSH, API, exporter)",
        f"not in the firewall plan: {', '.join(map(str, extra))}" if extra else "",
    )


_SSHD_WANT = {
    "passwordauthentication": ("no",),
    "kbdinteractiveauthentication": ("no",),
    "permitrootlogin": ("prohibit-password", "without-password", "no"),
    "permitemptypasswords": ("no",),
}


def _ssh_items(src: Sources) -> Iterator[AuditItem]:
    r = src.run(["sshd", "-T"])
    if r is None:
        yield _absent("security", "sshd", "keys only", "sshd is not installed")
        return
    settings: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.strip().partition(" ")
        settings[key.lower()] = value.strip()
    if r.rc != 0 or not settings:
        yield _item(
            "security",
            "sshd -T",
            False,
            " ".join(r.stderr.split())[:120] or f"exit {r.rc}",
            "effective settings",
        )
        return
    for key, ok in _SSHD_WANT.items():
        got = settings.get(key, "?")
        yield _item("security", f"sshd {key}", got in ok, got, " or ".join(ok))


def _unit_items(
    plan: BuildPlan, src: Sources, limits: dict[int, float], serving: bool
) -> Iterator[AuditItem]:
    units = [MONITOR_UNIT, PERSISTENCE_UNIT]
    if limits:
        units.append(POWER_UNIT)
    if serving or plan.serving is not None:
        units.append(SERVING_UNIT)
    r = src.run(["systemctl", "is-active", *units])
    if r is None or not (src.root / "run" / "systemd" / "system").is_dir():
        for u in units:
            yield _absent("services", u, "active", "no systemctl (not a systemd host)")
        return
    states = r.stdout.split()
    for k, u in enumerate(units):
        state = states[k] if k < len(states) else "unknown"
        yield _item("services", u, state == "active", state, "active")


def _exporter_items(plan: BuildPlan, src: Sources) -> Iterator[AuditItem]:
    url = f"http://127.0.0.1:{int(plan.var('rigkit_exporter_port'))}/metrics"
    got = src.http_status(url)
    if got is None:
        yield _item(
            "services", "exporter", False, "no answer", f"200 with rigkit_ metrics at {url}"
        )
        return
    status, body = got
    yield _item(
        "services",
        "exporter",
        status == 200 and "rigkit_" in body,
        f"HTTP {status}" + (", rigkit_ metrics" if "rigkit_" in body else ", no rigkit_ metrics"),
        f"200 with rigkit_ metrics at {url}",
    )


def audit(
    plan: BuildPlan,
    limits: Mapping[int, float],
    sources: Sources,
    interfaces: Sequence[str] = (),
    serving: bool = False,
) -> AuditReport:
    """Compare the host behind ``sources`` with ``plan`` (what `rigkit provision` would set up)
    and the spec's power ``limits`` (GPU index -> W)."""
    lim = dict(limits)
    items: list[AuditItem] = []
    items += _gpu_items(plan, sources, lim)
    items += _storage_items(plan, sources)
    items += _network_items(plan, sources, interfaces)
    items += _ports_items(plan, sources)
    items += _ssh_items(sources)
    items += _unit_items(plan, sources, lim, serving)
    items += _exporter_items(plan, sources)
    return AuditReport(spec=plan.spec_path, items=tuple(items))
