"""`rigkit plan SPEC` (check a build and report it) and `rigkit rules` (list the design rules)."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

import typer


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class RulesFormat(StrEnum):
    text = "text"
    json = "json"


def plan_cmd(
    spec: Path = typer.Argument(
        ..., help="Build spec (YAML), e.g. examples/reference-4x4090.yaml."
    ),
    fmt: PlanFormat = typer.Option(PlanFormat.text, "--format", "-f", help="Output format."),
    json_flag: bool = typer.Option(False, "--json", help="Same as --format json."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also write report.md and report.html (with figures) here."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List information findings too."),
    force: bool = typer.Option(
        False, "--force", help="Replace report files already in the --out directory."
    ),
) -> None:
    """Check a build against every design rule and print the plan.

    Exit status: 0 no error finding, 1 at least one error finding, 2 unusable input.
    """
    # pydantic looks up plugins through every installed package's entry points the first time a
    # model is built (~30-60 ms); rigkit uses none. An explicit setting by the user still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from rigkit.design.plan import plan
    from rigkit.spec import load_build

    if out is not None:
        from rigkit.outputs import check_out_dir
        from rigkit.report.render import report_file_names

        check_out_dir(out, report_file_names(), force=force)
    result = plan(load_build(spec))
    if json_flag:
        fmt = PlanFormat.json
    if fmt is PlanFormat.json:
        from rigkit.report.render import render_json

        typer.echo(render_json(result))
    elif fmt is PlanFormat.markdown:
        from rigkit.report.markdown import render_markdown
        from rigkit.report.render import capacity_md

        typer.echo(render_markdown(result, None, capacity_md(result)), nl=False)
    else:
        from rich.console import Console

        from rigkit.report.capacity import capacity_rich
        from rigkit.report.text import render_text

        console = Console()
        cap = None if result.capacity is None else capacity_rich(result.capacity)
        render_text(result, console, verbose=verbose, capacity=cap)
    if out is not None:
        from rigkit.errors import RigkitError
        from rigkit.report.render import write_report

        try:
            paths = write_report(result, out)
        except OSError as err:
            raise RigkitError(f"cannot write the report to {out}: {err.strerror or err}") from err
        msg = "report written: " + ", ".join(str(p) for p in paths[:2])
        # keep stdout clean for machine-readable formats
        typer.echo(msg, err=fmt is not PlanFormat.text)
    if not result.ok:
        # SystemExit, not typer.Exit: the root app runs with standalone_mode=False, where click
        # would turn Exit into a return value and lose the status
        raise SystemExit(1)


def rules_cmd(
    fmt: RulesFormat = typer.Option(RulesFormat.text, "--format", "-f", help="Output format."),
    json_flag: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """List every design rule: code, category, default severity and what it checks."""
    from rigkit.design.registry import all_rules

    rules = all_rules()
    if json_flag or fmt is RulesFormat.json:
        doc = [
            {
                "code": r.code,
                "name": r.name,
                "category": r.category,
                "severity": r.severity.value,
                "doc": r.doc,
            }
            for r in rules
        ]
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rules)} design rules", show_lines=True, title_justify="left")
    for col in ("Code", "Category", "Severity", "Rule"):
        table.add_column(col, no_wrap=col != "Rule")
    for r in rules:
        text = "\n\n".join(" ".join(par.split()) for par in r.doc.split("\n\n"))
        table.add_row(r.code, r.category, r.severity.value, f"[bold]{r.name}[/bold]\n{text}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `plan` and `rules` to the root app."""
    app.command("plan")(plan_cmd)
    app.command("rules")(rules_cmd)
