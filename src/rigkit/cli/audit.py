"""`rigkit audit SPEC`: compare the live host with its spec and provisioning plan.

Exit status: 0 every item passes (or is not present), 1 an item fails, 2 unusable input.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `rigkit audit` to the root app."""

    @app.command("audit")
    def audit_cmd(
        spec: Path = typer.Argument(..., help="Build spec (YAML) the host was provisioned from."),
        mtu: int = typer.Option(1500, "--mtu", help="MTU the host was provisioned with."),
        rtt_ms: float = typer.Option(1.0, "--rtt-ms", help="RTT the buffers were sized for."),
        interface: list[str] = typer.Option(
            [], "--interface", help="Interface to check (repeat; default: every physical one)."
        ),
        serving: bool = typer.Option(
            False, "--serving", help="The serving unit (rigkit-serve.service) should be running."
        ),
        recorded: Path | None = typer.Option(
            None, "--recorded", help="Audit recorded outputs of a host (DIR with commands.yaml)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the items as JSON."),
    ) -> None:
        """Check this host against its spec: GPUs, PCIe links, driver, persistence, power limits,
        ECC, RAID and mount, MTU and socket buffers, open ports, sshd, units, the exporter."""
        from rigkit.provision.audit import HostSources, RecordedSources, audit
        from rigkit.provision.plan import ProvisionOptions, plan_build, power_limits
        from rigkit.spec import load_spec, resolve

        opts = ProvisionOptions(mtu=mtu, rtt_ms=rtt_ms)
        plan = plan_build(spec, ("localhost",), opts)
        limits = dict(power_limits(load_spec(spec), resolve(load_spec(spec))))
        if recorded is not None:
            if not (recorded / "commands.yaml").is_file():
                from rigkit.errors import RigkitError

                raise RigkitError(
                    f"--recorded {recorded}: no commands.yaml there", hint="see docs/provision.md"
                )
            sources: RecordedSources | HostSources = RecordedSources(recorded)
        else:
            sources = HostSources()
        report = audit(plan, limits, sources, interfaces=interface, serving=serving)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            from rich.console import Console
            from rich.table import Table

            colour = {"pass": "green", "fail": "red", "not present": "yellow"}
            table = Table(title=f"rigkit audit: {spec}", show_lines=False)
            for col in ("area", "item", "status", "observed", "expected", "note"):
                table.add_column(col, overflow="fold")
            for i in report.items:
                table.add_row(
                    i.area,
                    i.name,
                    f"[{colour[i.status]}]{i.status}[/]",
                    i.observed,
                    i.expected,
                    i.note,
                )
            console = Console(width=max(Console().width, 140))
            console.print(table)
            c = report.counts()
            console.print(f"{c['pass']} pass, {c['fail']} fail, {c['not present']} not present")
        if not report.ok:
            raise typer.Exit(1)
