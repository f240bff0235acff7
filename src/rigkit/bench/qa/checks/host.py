"""Host checks: CPU model, RAM size, memory channels populated, NVMe devices.

Sources: ``/proc/cpuinfo`` and ``/proc/meminfo`` under ``ctx.proc_root``; ``dmidecode -t memory``
(needs root) through ``ctx.run``; ``/sys/class/nvme`` under ``ctx.sys_root``, else ``lsblk``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rigkit.bench.qa.match import reported_matches
from rigkit.bench.qa.result import CheckResult, QaContext, Status, Value, ratio_of

CATEGORY = "host"
GIB = 2**30

# MemTotal is installed memory less what firmware and the kernel keep; on a healthy machine it is
# about 97-99% of the DIMMs' size. Below this fraction a DIMM is missing or disabled.
RAM_VISIBLE_MIN = 0.95


# --- CPU --------------------------------------------------------------------------------------


def read_cpuinfo(proc_root: Path) -> tuple[str | None, int]:
    """(model name, logical CPU count) from cpuinfo."""
    text = (proc_root / "cpuinfo").read_text(errors="replace")
    model = None
    logical = 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and model is None:
            model = value.strip()
    return model, logical


def check_cpu(ctx: QaContext) -> CheckResult:
    name = "cpu"
    try:
        model, logical = read_cpuinfo(ctx.proc_root)
    except OSError as err:
        return CheckResult(name, CATEGORY, "skip", f"cannot read cpuinfo: {err.strerror}")
    measured: dict[str, Value] = {"model": model, "logical_cpus": logical}
    if ctx.build is None:
        return CheckResult(name, CATEGORY, "pass", "no spec to compare with", measured)
    cpu = ctx.build.cpu
    expected: dict[str, Value] = {"model": cpu.name, "id": cpu.id, "threads": cpu.threads}
    if model is None or not reported_matches(model, cpu.id, cpu.name):
        return CheckResult(
            name, CATEGORY, "fail", f"CPU is {model!r}, the spec has {cpu.name}", measured, expected
        )
    if logical < cpu.cores:
        return CheckResult(
            name,
            CATEGORY,
            "fail",
            f"{logical} logical CPUs online, fewer than the {cpu.cores} cores of the {cpu.name}",
            measured,
            expected,
        )
    if logical < cpu.threads:
        return CheckResult(
            name,
            CATEGORY,
            "warn",
            f"{logical} logical CPUs of {cpu.threads}: SMT looks disabled in the BIOS",
            measured,
            expected,
        )
    return CheckResult(name, CATEGORY, "pass", f"{model}, {logical} threads", measured, expected)


# --- RAM size ---------------------------------------------------------------------------------


def read_memtotal_bytes(proc_root: Path) -> int:
    for line in (proc_root / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError("meminfo has no MemTotal line")


def check_ram(ctx: QaContext) -> CheckResult:
    name = "ram-size"
    try:
        total = read_memtotal_bytes(ctx.proc_root)
    except (OSError, ValueError) as err:
        return CheckResult(name, CATEGORY, "skip", f"cannot read meminfo: {err}")
    visible_gib = total / GIB
    measured: dict[str, Value] = {"visible_gib": round(visible_gib, 2)}
    if ctx.build is None:
        return CheckResult(name, CATEGORY, "pass", "no spec to compare with", measured)
    installed_gib = float(ctx.build.memory_gb)  # DIMM sizes are binary: a "32 GB" DIMM is 32 GiB
    expected: dict[str, Value] = {
        "installed_gib": installed_gib,
        "modules": ctx.build.memory_modules,
        "min_visible_fraction": RAM_VISIBLE_MIN,
    }
    ratio = ratio_of(visible_gib, installed_gib)
    assert ratio is not None  # memory_gb is positive
    status: Status
    if ratio < RAM_VISIBLE_MIN:
        reason = (
            f"{visible_gib:.1f} GiB visible, {ratio:.1%} of the spec's {installed_gib:g} GiB: "
            "a DIMM is missing, not detected or disabled"
        )
        status = "fail"
    else:
        reason = f"{visible_gib:.1f} GiB visible of {installed_gib:g} GiB installed"
        status = "pass"
    return CheckResult(
        name,
        CATEGORY,
        status,
        reason,
        measured,
        expected,
        {"visible_gib": installed_gib},
        ratio,
        "visible_gib",
    )


# --- memory channels (dmidecode) --------------------------------------------------------------


@dataclass(frozen=True)
class Dimm:
    locator: str
    bank: str
    size_gib: float | None  # None: empty slot
    configured_mts: int | None


def parse_dmidecode_memory(text: str) -> list[Dimm]:
    """The "Memory Device" records of ``dmidecode -t memory``."""
    dimms: list[Dimm] = []
    for block in re.split(r"\n(?=Handle )", text):
        if "Memory Device" not in block:
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if ":" in line and line.startswith("\t") and not line.startswith("\t\t"):
                key, _, value = line.strip().partition(":")
                fields[key.strip()] = value.strip()
        size_text = fields.get("Size", "")
        size = None
        m = re.match(r"(\d+)\s*(GB|MB|TB)", size_text)
        if m:
            size = float(m.group(1)) * {"MB": 1 / 1024, "GB": 1.0, "TB": 1024.0}[m.group(2)]
        speed = None
        m = re.match(r"(\d+)\s*MT/s", fields.get("Configured Memory Speed", ""))
        if m:
            speed = int(m.group(1))
        dimms.append(Dimm(fields.get("Locator", ""), fields.get("Bank Locator", ""), size, speed))
    return dimms


def channel_of(dimm: Dimm) -> str | None:
    """The channel letter from the slot labels ("P0 CHANNEL A", "DIMM_A1", "CPU0_DIMM_B2")."""
    for text in (dimm.bank, dimm.locator):
        m = re.search(r"CHANNEL\s*([A-Z])\b", text, re.I) or re.search(
            r"DIMM[_ ]?([A-Z])\d", text, re.I
        )
        if m:
            return m.group(1).upper()
    return None


def check_memory_channels(ctx: QaContext) -> CheckResult:
    name = "memory-channels"
    if ctx.which("dmidecode") is None:
        return CheckResult(name, CATEGORY, "skip", "dmidecode is not installed")
    result = ctx.run(["dmidecode", "-t", "memory"], 30.0)
    if result.returncode != 0 or "Memory Device" not in result.stdout:
        why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
        return CheckResult(
            name, CATEGORY, "skip", f"dmidecode gave no memory table (run as root): {why}"
        )
    dimms = parse_dmidecode_memory(result.stdout)
    populated = [d for d in dimms if d.size_gib]
    channels = {c for c in (channel_of(d) for d in populated) if c is not None}
    speeds = sorted({d.configured_mts for d in populated if d.configured_mts})
    measured: dict[str, Value] = {
        "slots": len(dimms),
        "populated": len(populated),
        "channels_populated": len(channels) if channels else None,
        "installed_gib": sum(d.size_gib or 0 for d in populated),
        "configured_mts": min(speeds) if speeds else None,
    }
    if ctx.build is None:
        return CheckResult(name, CATEGORY, "pass", "no spec to compare with", measured)
    build = ctx.build
    want_channels = min(build.memory_modules, build.cpu.memory_channels)
    want_mts = min(build.memory.speed_mts, build.cpu.memory_speed_mts)
    expected: dict[str, Value] = {
        "populated": build.memory_modules,
        "channels_populated": want_channels,
        "configured_mts": want_mts,
    }
    problems = []
    if len(populated) != build.memory_modules:
        problems.append(f"{len(populated)} DIMMs populated, the spec has {build.memory_modules}")
    if channels and len(channels) < want_channels:
        problems.append(
            f"{len(channels)} channels populated ({', '.join(sorted(channels))}), "
            f"{want_channels} needed for full bandwidth"
        )
    if problems:
        return CheckResult(name, CATEGORY, "fail", "; ".join(problems), measured, expected)
    if speeds and min(speeds) < want_mts:
        return CheckResult(
            name,
            CATEGORY,
            "warn",
            f"memory runs at {min(speeds)} MT/s, the parts support {want_mts} MT/s: "
            "check the BIOS memory profile",
            measured,
            expected,
        )
    ch = f" in {len(channels)} channels" if channels else ""
    return CheckResult(name, CATEGORY, "pass", f"{len(populated)} DIMMs{ch}", measured, expected)


# --- NVMe -------------------------------------------------------------------------------------


def list_nvme(ctx: QaContext) -> tuple[list[dict[str, Value]], str]:
    """NVMe controllers from /sys/class/nvme, else lsblk; and which source was used."""
    base = ctx.sys_root / "class" / "nvme"
    if base.is_dir():
        out: list[dict[str, Value]] = []
        for ctrl in sorted(base.iterdir()):
            model = _read(ctrl / "model")
            size_bytes = 0
            for ns in sorted(ctrl.glob(f"{ctrl.name}n*")):
                sectors = _read(ns / "size")
                if sectors and sectors.isdigit():
                    size_bytes += int(sectors) * 512
            out.append(
                {
                    "name": ctrl.name,
                    "model": model,
                    "firmware": _read(ctrl / "firmware_rev"),
                    "size_gb": round(size_bytes / 1e9, 1) if size_bytes else None,
                }
            )
        return out, "sysfs"
    if ctx.which("lsblk") is None:
        return [], "none"
    result = ctx.run(["lsblk", "-J", "-d", "-b", "-o", "NAME,MODEL,SIZE,TRAN"], 30.0)
    if result.returncode != 0:
        return [], "none"
    try:
        devices = json.loads(result.stdout).get("blockdevices", [])
    except json.JSONDecodeError:
        return [], "none"
    out = []
    for dev in devices:
        if dev.get("tran") == "nvme" or str(dev.get("name", "")).startswith("nvme"):
            size = dev.get("size")
            out.append(
                {
                    "name": dev.get("name"),
                    "model": (dev.get("model") or "").strip() or None,
                    "firmware": None,
                    "size_gb": round(int(size) / 1e9, 1) if str(size).isdigit() else None,
                }
            )
    return out, "lsblk"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def check_nvme(ctx: QaContext) -> CheckResult:
    name = "nvme-devices"
    devices, source = list_nvme(ctx)
    measured: dict[str, Value] = {"count": len(devices), "source": source}
    for i, dev in enumerate(devices):
        measured[f"nvme{i}"] = f"{dev['model']} ({dev['size_gb']} GB)"
    if ctx.build is None:
        if not devices:
            return CheckResult(name, CATEGORY, "skip", "no NVMe devices found and no spec")
        return CheckResult(name, CATEGORY, "pass", "no spec to compare with", measured)
    want = len(ctx.build.drives)
    expected: dict[str, Value] = {
        "count": want,
        "models": ", ".join(d.drive.name for d in ctx.build.drives),
    }
    if len(devices) < want:
        return CheckResult(
            name,
            CATEGORY,
            "fail",
            f"{len(devices)} NVMe devices found, the spec has {want}",
            measured,
            expected,
        )
    return CheckResult(
        name, CATEGORY, "pass", f"{len(devices)} NVMe devices (spec: {want})", measured, expected
    )


def run(ctx: QaContext) -> list[CheckResult]:
    return [check_cpu(ctx), check_ram(ctx), check_memory_channels(ctx), check_nvme(ctx)]
