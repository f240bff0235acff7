"""Network: NIC link speeds from ``/sys/class/net`` against the spec's NICs, and iperf3 throughput.

Only physical interfaces count (those with a ``device`` link in sysfs); ``speed`` is in Mb/s and
reads -1 or fails when the link is down. iperf3 runs against ``--iperf-server`` when both exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rigkit.bench.qa.result import CheckResult, QaContext, Status, Value, grade, ratio_of

CATEGORY = "network"
IPERF_FAIL_BELOW = 0.50
IPERF_WARN_BELOW = 0.80
IPERF_STREAMS = 4


@dataclass(frozen=True)
class Interface:
    name: str
    speed_mb_s: int | None  # Mb/s as the kernel reports; None: no link or unknown
    operstate: str | None


def interfaces(sys_root: Path) -> list[Interface]:
    base = sys_root / "class" / "net"
    if not base.is_dir():
        return []
    out = []
    for iface in sorted(base.iterdir()):
        if not (iface / "device").exists():
            continue  # lo, bridges, veth, ifb, ...
        try:
            raw = (iface / "speed").read_text().strip()
            speed: int | None = int(raw) if raw.lstrip("-").isdigit() and int(raw) > 0 else None
        except OSError:  # EINVAL when the link is down
            speed = None
        try:
            state: str | None = (iface / "operstate").read_text().strip()
        except OSError:
            state = None
        out.append(Interface(iface.name, speed, state))
    return out


def check_links(ifaces: list[Interface], ctx: QaContext) -> list[CheckResult]:
    measured: dict[str, Value] = {
        i.name: (f"{i.speed_mb_s} Mb/s" if i.speed_mb_s else f"speed unknown ({i.operstate})")
        for i in ifaces
    }
    if ctx.build is None or not ctx.build.nics:
        if not ifaces:
            return [CheckResult("nic-links", CATEGORY, "skip", "no physical network interfaces")]
        why = "no spec to compare with" if ctx.build is None else "the spec lists no add-in NIC"
        return [CheckResult("nic-links", CATEGORY, "pass", why, measured)]
    # Each spec NIC needs at least one port linked at its rated speed; other ports may be unused.
    free = sorted((i for i in ifaces if i.speed_mb_s), key=lambda i: -(i.speed_mb_s or 0))
    results = []
    for n, placed in enumerate(ctx.build.nics):
        nic = placed.part
        rated = int(nic.speed_gbe * 1000)
        at_rate = [i for i in free if (i.speed_mb_s or 0) >= rated][: nic.ports]
        for i in at_rate:
            free.remove(i)
        expected: dict[str, Value] = {"ports": nic.ports, "speed_mb_s": rated, "nic": nic.name}
        fastest = max((i.speed_mb_s or 0 for i in ifaces), default=0)
        got: dict[str, Value] = {"speed_mb_s": fastest or None, "ports_at_speed": len(at_rate)}
        got.update(measured)
        ratio = ratio_of(float(fastest), float(rated))
        status: Status
        if not at_rate:
            status, reason = (
                "fail",
                f"no interface links at {nic.speed_gbe:g} Gb/s for the {nic.name}"
                + (f" (fastest link {fastest} Mb/s)" if fastest else " (no link speed reported)"),
            )
        elif len(at_rate) < nic.ports:
            status = "warn"
            reason = (
                f"{len(at_rate)} of {nic.ports} ports of the {nic.name} at {nic.speed_gbe:g} Gb/s "
                f"({', '.join(i.name for i in at_rate)}); the others are down or slower"
            )
        else:
            status = "pass"
            reason = (
                f"{len(at_rate)} ports at {nic.speed_gbe:g} Gb/s "
                f"({', '.join(i.name for i in at_rate)})"
            )
        results.append(
            CheckResult(
                f"nic{n}-link",
                CATEGORY,
                status,
                reason,
                got,
                expected,
                {"speed_mb_s": rated},
                min(ratio, 1.0) if ratio is not None else None,
                "speed_mb_s",
            )
        )
    return results


def parse_iperf3(text: str) -> float:
    """Received bits/s from ``iperf3 -J`` (the receiver's sum over all streams)."""
    data = json.loads(text)
    if "error" in data:
        raise ValueError(str(data["error"]))
    end = data["end"]
    summary = end.get("sum_received") or end["sum"]
    return float(summary["bits_per_second"])


def check_iperf(ctx: QaContext) -> CheckResult:
    name = "iperf3"
    if ctx.iperf_server is None:
        return CheckResult(name, CATEGORY, "skip", "no --iperf-server given")
    if ctx.which("iperf3") is None:
        return CheckResult(name, CATEGORY, "skip", "iperf3 is not installed")
    argv = [
        "iperf3",
        "-c",
        ctx.iperf_server,
        "-J",
        "-t",
        str(ctx.iperf_seconds),
        "-P",
        str(IPERF_STREAMS),
    ]
    result = ctx.run(argv, ctx.iperf_seconds + 30.0)
    try:
        bps = parse_iperf3(result.stdout)
    except (ValueError, KeyError, TypeError) as err:
        detail = str(err) or result.stderr.strip()[-200:]
        return CheckResult(name, CATEGORY, "fail", f"iperf3 to {ctx.iperf_server} failed: {detail}")
    gbit = bps / 1e9
    want = max((p.part.speed_gbe for p in ctx.build.nics), default=None) if ctx.build else None
    ratio = ratio_of(gbit, want)
    status = grade(ratio, IPERF_FAIL_BELOW, IPERF_WARN_BELOW)
    reason = f"{gbit:.2f} Gb/s to {ctx.iperf_server} over {IPERF_STREAMS} streams"
    if ratio is not None:
        reason += f", {ratio:.0%} of the {want:g} Gb/s NIC"
    return CheckResult(
        name,
        CATEGORY,
        status,
        reason,
        {"gbit_s": round(gbit, 3), "server": ctx.iperf_server},
        {},
        {"gbit_s": want},
        ratio,
        "gbit_s",
        ("gbit_s",),
    )


def run(ctx: QaContext) -> list[CheckResult]:
    return [*check_links(interfaces(ctx.sys_root), ctx), check_iperf(ctx)]
