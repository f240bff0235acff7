"""CLI commands for `rigkit monitor`: run the agent, read its store, record replays."""

from __future__ import annotations

import json
import logging
import math
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rigkit.errors import MonitorError

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.monitor.sample import Event, Sample
    from rigkit.monitor.store import Store

monitor_app = typer.Typer(
    name="monitor",
    help="Watch the machine: sample GPUs/host/disks, store, alert, respond, export to Prometheus.",
    no_args_is_help=True,
)

_DB_HELP = "Monitor database (SQLite). Default: $XDG_DATA_HOME/rigkit/monitor.db."


def register(app: typer.Typer) -> None:
    """Add `rigkit monitor` and its commands to the root app."""
    app.add_typer(monitor_app, name="monitor")


def _db_path(db: Path | None) -> Path:
    from rigkit.monitor.store import default_db_path

    return db if db is not None else default_db_path()


def _open_store(db: Path | None) -> Store:
    from rigkit.monitor.store import Store

    return Store(_db_path(db), create=False)


def _fmt_t(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 10 * 365 * 86400:  # a replay whose clock starts near 0
        return f"t={t:.0f}s"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None, latest_t: float | None) -> float | None:
    """``--since``: a duration back from the latest sample (``30m``, ``2h``, ``7d``), Unix seconds,
    or an ISO date/time (UTC unless it says otherwise)."""
    if text is None:
        return None
    text = text.strip()
    m = _REL.match(text)
    if m:
        ref = latest_t if latest_t is not None else datetime.now(UTC).timestamp()
        return ref - float(m.group(1)) * _UNIT_S[m.group(2)]
    hint = "use a duration (30m, 2h, 7d), Unix seconds or an ISO time (2026-01-01T12:00)"
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # "nan" and "inf" read as floats; NaN compares false with every time (nothing matches)
        if not math.isfinite(seconds):
            raise MonitorError(f"--since: {text!r} is not a time", hint=hint)
        return seconds
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise MonitorError(f"--since: cannot read {text!r}", hint=hint) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _check_run_limits(interval: float, duration: float | None, count: int | None) -> None:
    """--interval, --duration and --count: positive, finite numbers (NaN is refused too)."""
    if not 0 < interval < math.inf:
        raise MonitorError(f"--interval must be a number of seconds above 0, got {interval}")
    if duration is not None and not 0 < duration < math.inf:
        raise MonitorError(f"--duration must be a number of seconds above 0, got {duration}")
    if count is not None and count < 1:
        raise MonitorError(f"--count must be 1 or more, got {count}")


def _setup_logging(level: str) -> None:
    if level.lower() not in _LOG_LEVELS:
        raise MonitorError(f"--log-level must be one of {', '.join(_LOG_LEVELS)}, got {level!r}")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@monitor_app.command("run")
def run_cmd(
    spec: Path | None = typer.Option(
        None, "--spec", help="Build spec: alert and response defaults follow its parts."
    ),
    source: str = typer.Option(
        "nvml", "--source", help="nvml (the machine), host (no GPUs), or replay:FILE."
    ),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between samples (live)."),
    speed: float = typer.Option(
        1.0, "--speed", help="Replay speed factor; 0 plays as fast as possible."
    ),
    duration: float | None = typer.Option(
        None, "--duration", help="Stop after this many seconds of sample time."
    ),
    count: int | None = typer.Option(None, "--count", help="Stop after this many samples."),
    loop: bool = typer.Option(False, "--loop", help="Replay: start over at the end of the file."),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    rules: Path | None = typer.Option(
        None,
        "--rules",
        help="Settings file: `rules:` (alerts), `response:` (tiers), `notify:` (targets, limits).",
    ),
    notify: list[str] = typer.Option(
        [], "--notify", help="Webhook URL or smtp://user:pass@host:port?from=..&to=.. (repeat)."
    ),
    listen: str = typer.Option(
        "auto",
        "--listen",
        help="Serve /metrics on HOST:PORT; 'auto': 127.0.0.1:9842 for live sources, off for"
        " replays; 'off': no exporter.",
    ),
    enforce: bool = typer.Option(
        False,
        "--enforce",
        help="Act on thermal emergencies (lower power limits, stop workloads, shut down)."
        " Without it every decision is a logged dry run.",
    ),
    no_rules: bool = typer.Option(False, "--no-rules", help="Record and export only."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error."),
) -> None:
    """Run the monitor agent until the source ends, --duration/--count is reached, or Ctrl-C."""
    from rigkit.monitor.agent import (
        Agent,
        NewDbGuard,
        load_build,
        make_engine,
        make_notifier,
        make_responder,
    )
    from rigkit.monitor.config import load_config
    from rigkit.monitor.exporter import ExporterCache, ExporterServer
    from rigkit.monitor.sources import open_source

    # Everything that can be checked is checked before the database is created or opened.
    _setup_logging(log_level)
    _check_run_limits(interval, duration, count)
    _check_speed(speed)
    log = logging.getLogger("rigkit.monitor")
    if enforce and not source.startswith(("nvml", "live")):
        raise MonitorError(
            "--enforce acts on this machine's GPUs and services; it needs --source nvml",
            hint="run replays without --enforce: every decision is still logged as a dry run",
        )
    address = _listen_address(listen, source)
    _check_notify_targets(notify)
    notify_settings = load_config(rules).config.notify
    build = load_build(spec) if spec is not None else None
    db_path = _db_path(db)
    if db_path.is_dir():
        raise MonitorError(f"--db {db_path} is a directory", hint="give a file path")
    engine = None if no_rules else make_engine(rules, build)
    responder = None if no_rules else make_responder(rules, build, enforce=enforce)
    expected: tuple[tuple[int, int, int], ...] = ()
    if build is not None:
        from rigkit.monitor.alerts import expected_pcie

        expected = expected_pcie(build)
    cache = ExporterCache(expected_pcie=expected)
    # a replay source reads up to its first sample here: a missing, unreadable or bad file stops
    # the run before the database exists
    src = open_source(source, speed=speed, loop=loop)
    guard = NewDbGuard(db_path)
    server: ExporterServer | None = None
    store: Store | None = None
    agent: Agent | None = None
    ok = False
    try:
        if address is not None:
            server = ExporterServer(cache, address)
        store = guard.open_store()
        notifier = make_notifier(db_path, notify, notify_settings)
        agent = Agent(
            src,
            store,
            engine=engine,
            responder=responder,
            notifier=notifier,
            cache=cache,
            interval_s=interval,
        )
        stop = threading.Event()

        def _on_signal(signum: int, frame: object) -> None:
            log.info("signal %d: stopping after the current sample", signum)
            stop.set()

        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        log.info(
            "monitor: source=%s db=%s rules=%s response=%s%s",
            src.name,
            db_path,
            "off" if engine is None else (rules or "defaults"),
            "off" if responder is None else ("ENFORCING" if enforce else "dry run"),
            f" metrics={server.url}" if server else "",
        )
        try:
            summary = agent.run(duration_s=duration, count=count, stop=stop)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        ok = True
    finally:
        if agent is not None:
            agent.close()  # the notifier and the source
        else:
            src.close()
        if server is not None:
            server.close()
        if store is not None:
            keep = ok or _has_samples(store)
            store.close()
            if not keep:
                for path in guard.remove_created():
                    log.debug("removed %s: the run failed before its first sample", path)
    if as_json:
        typer.echo(json.dumps({"db": str(db_path), **summary.to_dict()}, indent=2))
    else:
        typer.echo(
            f"{summary.samples} samples ({summary.stopped_by}), {summary.raised} alerts raised,"
            f" {summary.resolved} resolved, {summary.actions} response decisions;"
            f" {summary.cpu_per_sample_ms:.2f} ms CPU per sample; db: {db_path}"
        )


def _check_speed(speed: float) -> None:
    """--speed: 0 (as fast as possible) or a finite factor above 0 (NaN is refused too)."""
    if not 0 <= speed < math.inf:
        raise MonitorError(f"--speed must be 0 (as fast as possible) or more, got {speed}")


def _listen_address(listen: str, source: str) -> str | None:
    """The exporter's HOST:PORT, checked, or None for no exporter."""
    from rigkit.monitor.exporter import DEFAULT_LISTEN, parse_listen

    if listen == "auto":
        return None if source.startswith("replay:") else DEFAULT_LISTEN
    if listen == "off":
        return None
    parse_listen(listen)
    return listen


def _check_notify_targets(targets: list[str]) -> None:
    """Each --notify URL parses (a webhook or an SMTP server with from/to)."""
    if not targets:
        return
    from rigkit.monitor.notify import parse_target

    for t in targets:
        parse_target(t)


def _has_samples(store: Store) -> bool:
    """Whether the store holds a sample; True when that cannot be told (keep the file)."""
    import sqlite3

    try:
        return store.count_samples() > 0
    except (MonitorError, sqlite3.Error) as err:
        logging.getLogger("rigkit.monitor").warning(
            "cannot count samples in %s: %s", store.path, err
        )
        return True


def _v(v: float | int | None, unit: str = "") -> str:
    """A value for people: integers without ".0", one decimal otherwise, n/a when missing."""
    if v is None:
        return "n/a"
    text = f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{text}{unit}"


def _gpu_rows(sample: Sample) -> list[list[str]]:
    rows = []
    for g in sample.gpus:
        if g.lost:
            rows.append([str(g.index), "LOST", *["-"] * 7])
            continue
        rows.append(
            [
                str(g.index),
                _v(g.temperature_c, " C"),
                f"{_v(g.power_w)}/{_v(g.power_limit_w, ' W')}",
                _v(g.fan_pct, "%"),
                _v(g.util_pct, "%"),
                f"{_v(g.sm_clock_mhz)}/{_v(g.mem_clock_mhz)}",
                f"{_v(g.mem_used_mib)}/{_v(g.mem_total_mib)}",
                f"{_v(g.pcie_gen)}x{_v(g.pcie_width)}",
                ",".join(g.throttle_reasons) if g.throttle_reasons else "-",
            ]
        )
    return rows


@monitor_app.command("status")
def status_cmd(
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: latest sample, active alerts."),
) -> None:
    """Latest values and active alerts. Exit status 1 while a warning/critical alert is active."""
    import time

    with _open_store(db) as store:
        sample = store.latest()
        alerts = store.active_alerts()
        n = store.count_samples()
    if sample is None:
        raise MonitorError(f"{_db_path(db)} has no samples yet")
    age = time.time() - sample.wall_time
    problem = any(a.severity in ("critical", "warning") for a in alerts)
    if as_json:
        doc = {
            "db": str(_db_path(db)),
            "samples": n,
            "source": sample.source,
            "age_s": round(age, 3),
            "latest": sample.to_dict(),
            "active_alerts": [a.to_dict() for a in alerts],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(
            f"latest sample {_fmt_t(sample.t)} from {sample.source}, collected {age:.0f} s ago;"
            f" {n} samples in {_db_path(db)}"
        )
        names = sorted({g.name for g in sample.gpus if g.name})
        table = Table(title=", ".join(names) or None, box=None, pad_edge=False)
        for col in (
            "GPU",
            "temp",
            "power",
            "fan",
            "util",
            "SM/mem MHz",
            "mem MiB",
            "PCIe",
            "throttle",
        ):
            table.add_column(col, no_wrap=True)
        for row in _gpu_rows(sample):
            table.add_row(*row)
        if sample.gpus:
            console.print(table)
        else:
            console.print("no GPUs in this sample")
        h = sample.host
        if h is not None:
            disks = ", ".join(
                f"{d.name} {_v(d.temp_c, ' C')} wear {_v(d.wear_pct, '%')} free {_v(d.free_pct, '%')}"
                for d in h.disks
            )
            console.print(
                f"host: CPU {_v(h.cpu_temp_c, ' C')}, load {_v(h.load1)},"
                f" memory {_v(h.mem_used_pct, '%')} used" + (f"; disks: {disks}" if disks else ""),
                highlight=False,
            )
        if alerts:
            console.print(f"[bold]{len(alerts)} active alert(s):[/bold]")
            for a in alerts:
                gpu = "" if a.gpu is None else f" GPU {a.gpu}"
                console.print(
                    f"  {a.severity.upper():8} {a.rule}{gpu} since {_fmt_t(a.t)}: {a.message}",
                    markup=False,
                    highlight=False,
                )
        else:
            console.print("no active alerts")
    if problem:
        raise typer.Exit(1)


def _event_line(e: Event) -> str:
    gpu = "" if e.gpu is None else f" GPU {e.gpu}"
    extra = ""
    if e.kind == "action":
        extra = f" tier {e.tier}{' (dry run)' if e.dry_run else ''}"
    return f"{_fmt_t(e.t)}  {e.kind:8} {e.severity:8} {e.rule}{gpu}{extra}: {e.message}"


@monitor_app.command("events")
def events_cmd(
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    since: str | None = typer.Option(
        None, "--since", help="30m, 2h, 7d back from the latest sample; Unix time; ISO time."
    ),
    kind: list[str] = typer.Option([], "--kind", help="raised, resolved or action (repeat)."),
    limit: int | None = typer.Option(None, "--limit", help="Only the last N events."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of events."),
) -> None:
    """Alerts raised and resolved, and response decisions, in time order."""
    for k in kind:
        if k not in ("raised", "resolved", "action"):
            raise MonitorError(f"--kind: unknown kind {k!r} (raised, resolved, action)")
    if limit is not None and limit < 1:
        raise MonitorError(f"--limit must be 1 or more, got {limit}")
    with _open_store(db) as store:
        latest = store.latest()
        lo = parse_since(since, latest.t if latest else None)
        events = store.events(since=lo, kinds=kind or None, limit=limit)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    if not events:
        typer.echo("no events")
    for e in events:
        typer.echo(_event_line(e))


@monitor_app.command("history")
def history_cmd(
    metric: str = typer.Option(
        ..., "--metric", help="e.g. temperature_c, power_w, cpu_temp_c, disk.temp_c."
    ),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    since: str | None = typer.Option(None, "--since", help="30m, 2h, 7d; Unix time; ISO time."),
    gpu: int | None = typer.Option(None, "--gpu", help="Only this GPU index."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG plot to this file."),
    force: bool = typer.Option(False, "--force", help="Replace the --plot file if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the points as JSON."),
) -> None:
    """A metric over time (raw samples, then 1-minute and 1-hour aggregates for older data)."""
    if gpu is not None and gpu < 0:
        raise MonitorError(f"--gpu must be a GPU index, 0 or more, got {gpu}")
    if plot is not None:
        from rigkit.outputs import check_out_file

        check_out_file(plot, force=force, option="--plot")
    with _open_store(db) as store:
        latest = store.latest()
        lo = parse_since(since, latest.t if latest else None)
        points = store.history(metric, since=lo, gpu=gpu)
    if plot is not None:
        _plot(points, metric, plot)
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in points], indent=2))
        return
    if not points:
        typer.echo(f"no values of {metric}")
        return
    series: dict[str, list[float]] = {}
    for p in points:
        series.setdefault(p.series, []).append(p.value)
    for name, vals in series.items():
        mean = math.fsum(vals) / len(vals)
        typer.echo(
            f"{name}: {len(vals)} points, min {min(vals):g}, mean {mean:.1f}, max {max(vals):g},"
            f" last {vals[-1]:g}"
        )
    typer.echo(
        f"from {_fmt_t(points[0].t)} to {_fmt_t(points[-1].t)}"
        + (f"; plot: {plot}" if plot else "")
    )


def _plot(points: list[Any], metric: str, out: Path) -> None:
    import matplotlib

    from rigkit.outputs import replace_file

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    series: dict[str, tuple[list[float], list[float]]] = {}
    for p in points:
        xs, ys = series.setdefault(p.series, ([], []))
        xs.append(p.t)
        ys.append(p.value)
    t0 = points[0].t if points else 0.0
    for name, (xs, ys) in sorted(series.items()):
        ax.plot([(x - t0) / 60 for x in xs], ys, label=name, linewidth=1)
    ax.set_xlabel(f"minutes since {_fmt_t(t0)}")
    ax.set_ylabel(metric)
    ax.set_title(f"rigkit monitor: {metric}")
    if series:
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    # PNG unless the file's suffix names another format matplotlib writes
    fmt = out.suffix[1:].lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"
    try:
        # written beside the target and renamed over it (--force replaces a symlink there
        # instead of writing through it)
        replace_file(out, lambda fh: fig.savefig(fh, dpi=100, format=fmt))
    except OSError as err:
        raise MonitorError(f"cannot write plot {out}: {err.strerror}") from err
    finally:
        plt.close(fig)


@monitor_app.command("record")
def record_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Replay file to write (JSON Lines)."),
    source: str = typer.Option("nvml", "--source", help="nvml, host, or replay:FILE."),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between samples."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after S seconds."),
    count: int | None = typer.Option(None, "--count", help="Stop after N samples."),
    speed: float = typer.Option(0.0, "--speed", help="Replay source speed (0: fast)."),
    force: bool = typer.Option(
        False, "--force", help="Replace --out if it exists (only once the recording completes)."
    ),
) -> None:
    """Write samples from any source in the replay format (one JSON object per line).

    The file appears when the recording ends (Ctrl-C ends it too, keeping what was recorded); on
    an error nothing is written and an existing file stays as it was."""
    from rigkit.monitor.record import check_output, record
    from rigkit.monitor.sources import open_source

    if duration is None and count is None and not source.startswith("replay:"):
        raise MonitorError("record: give --duration or --count for a live source")
    _check_run_limits(interval, duration, count)
    _check_speed(speed)
    check_output(out, overwrite=force)
    src = open_source(source, speed=speed)  # a replay is read up to its first sample here
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        n = record(
            src,
            out,
            interval_s=0.0 if source.startswith("replay:") else interval,
            duration_s=duration,
            count=count,
            header=f"recorded by rigkit monitor record from {src.name}",
            overwrite=force,
            stop=stop,
        )
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        src.close()
    if n == 0 and stop.is_set():
        typer.echo(f"stopped before the first sample; {out} not written")
    else:
        typer.echo(f"{n} samples written to {out}" + (" (stopped)" if stop.is_set() else ""))


@monitor_app.command("export-config")
def export_config(
    spec: Path | None = typer.Option(
        None, "--spec", help="Build spec: thresholds from its GPUs' catalog entries."
    ),
    out: Path = typer.Option(
        Path("rigkit-prometheus"), "--out", help="Directory to write the files into."
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="YAML overrides (`rules:`), as for `monitor run`."
    ),
    targets: list[str] = typer.Option(
        [],
        "--target",
        metavar="[NAME=]HOST:PORT",
        help="A workstation's exporter to scrape (repeat for a fleet; default: this machine's,"
        " 127.0.0.1:9842). Remote ones need `monitor run --listen` on an address Prometheus"
        " can reach.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    force: bool = typer.Option(
        False, "--force", help="Replace files already in the --out directory."
    ),
) -> None:
    """Write Prometheus alert rules (+ promtool tests), a scrape config and its target list, an
    Alertmanager configuration routing to e-mail, and a Grafana dashboard, all derived from the
    agent's alert rules."""
    from rigkit.monitor.alerts import load_rules
    from rigkit.monitor.export_config import EXPORT_FILES, ScrapeTarget, write_config
    from rigkit.outputs import check_out_dir

    parsed = [ScrapeTarget.parse(t) for t in targets]  # a bad target: exit 2, nothing written
    check_out_dir(out, EXPORT_FILES, force=force)

    build: Build | None = None
    if spec is not None:
        from rigkit.monitor.agent import load_build

        build = load_build(spec)
    result = write_config(
        out, load_rules(rules, build), source=str(spec) if spec else None, targets=parsed
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(f"wrote {len(result.files)} files to {result.out_dir}:")
    for f in result.files:
        typer.echo(f"  {f}")
    typer.echo(
        f"{result.alerts} alerts, {result.tests} promtool test groups. Check with:\n"
        f"  promtool check config {result.out_dir}/prometheus-scrape.yml\n"
        f"  (cd {result.out_dir} && promtool test rules rigkit-alerts.test.yml)\n"
        f"  amtool check-config {result.out_dir}/alertmanager.yml\n"
        "Put your mail server and addresses in alertmanager.yml (the CHANGE-ME values)."
    )
