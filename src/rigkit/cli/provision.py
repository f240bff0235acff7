"""`rigkit provision SPEC --out DIR`: an Ansible project that turns hosts into the build.

Exit status: 0 written, 2 unusable input (a bad spec, host or option, a model that cannot run).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `rigkit provision` to the root app."""

    @app.command("provision")
    def provision_cmd(
        spec: Path | None = typer.Argument(
            None, help="Build spec (YAML); or give --fleet for many hosts and specs."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the Ansible project."),
        host: list[str] = typer.Option(
            [], "--host", help="Host to provision (repeat; default localhost, local connection)."
        ),
        fleet: Path | None = typer.Option(
            None, "--fleet", help="YAML file listing hosts with their specs (docs/provision.md)."
        ),
        serve: str | None = typer.Option(
            None, "--serve", help="Model to serve (catalog id), configured by the estimate."
        ),
        quant: str | None = typer.Option(None, "--quant", help="Weight format of --serve."),
        engine: str = typer.Option("vllm", "--engine", help="vllm, llama.cpp, ollama or tgi."),
        context: int | None = typer.Option(
            None, "--context", help="Tokens per sequence (default: the model's trained context)."
        ),
        allow: list[str] = typer.Option(
            [], "--allow", help="Subnet allowed to reach the API and the exporter (repeat)."
        ),
        mtu: int = typer.Option(1500, "--mtu", help="MTU of the tuned NICs (9000: jumbo frames)."),
        rtt_ms: float = typer.Option(
            1.0, "--rtt-ms", help="Round-trip time the socket buffers are sized for."
        ),
        enforce: bool = typer.Option(
            False, "--enforce", help="The monitor's thermal response acts (default: logs only)."
        ),
        monitoring_host: str | None = typer.Option(
            None, "--monitoring-host", help="Host that runs Prometheus/Grafana (default: first)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace an earlier project in --out."),
        as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    ) -> None:
        """Write an Ansible project (inventory, group_vars, site.yml, roles) for the build."""
        from rigkit.provision.fleet import FleetEntry, load_fleet
        from rigkit.provision.generate import render_project
        from rigkit.provision.plan import ProvisionError, ProvisionOptions, plan_build
        from rigkit.provision.serving import ServeRequest

        if (spec is None) == (fleet is None):
            raise ProvisionError("give a SPEC or --fleet FILE (one of them)")
        if fleet is not None and (host or serve):
            raise ProvisionError("--host and --serve go in the fleet file with --fleet")
        if (serve is None) != (quant is None):
            raise ProvisionError(
                "--serve and --quant go together", hint="--serve llama-3-70b --quant awq-int4"
            )
        opts = ProvisionOptions(allow=tuple(allow), mtu=mtu, rtt_ms=rtt_ms, enforce=enforce)
        if fleet is not None:
            entries = load_fleet(fleet)
        else:
            assert spec is not None
            req = (
                ServeRequest(serve, quant, engine, context)
                if serve is not None and quant is not None
                else None
            )
            entries = [FleetEntry(spec, tuple(host) or ("localhost",), req)]
        plans = [plan_build(e.spec, e.hosts, opts, e.serve) for e in entries]
        result = render_project(plans, opts, out, force=force, monitoring_host=monitoring_host)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2))
            return
        typer.echo(f"wrote an Ansible project to {result.out_dir} ({len(result.files)} files)")
        for g in result.groups:
            typer.echo(f"  {g['group']}: {', '.join(g['hosts'])} <- {g['spec']}")
            if g["serving"]:
                s = g["serving"]
                typer.echo(
                    f"    serving {s['model']} {s['quant']} with {s['engine']}: {' '.join(s['args'])}"
                )
        typer.echo(f"next: cd {result.out_dir} && ansible-playbook site.yml --check --diff")
