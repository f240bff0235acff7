"""`rigkit` entry point. Registers each command group and turns RigkitError into exit status 2."""

from __future__ import annotations

import sys

import typer

from rigkit import __version__
from rigkit.errors import RigkitError

app = typer.Typer(
    name="rigkit",
    help="Plan, estimate, benchmark and monitor multi-GPU workstations for local LLM inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rigkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """rigkit: the build as data, its checks as code, the machine measured against the plan."""


def _register() -> None:
    # Each module adds its commands to `app`. Imports of heavy libraries stay inside commands.
    from rigkit.cli import bench, calibrate, catalog, estimate, monitor, plan, qa

    plan.register(app)
    catalog.register(app)
    estimate.register(app)
    monitor.register(app)
    bench.register(app)
    qa.register(app)
    calibrate.register(app)


_register()


def run() -> None:
    """Console-script entry: user errors become one line on stderr and exit status 2."""
    try:
        # Without standalone mode, click returns the code of `typer.Exit(code)` instead of raising.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and not isinstance(rc, bool):
            sys.exit(rc)
    except RigkitError as err:
        sys.stderr.write(f"rigkit: error: {err}\n")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("rigkit: aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("rigkit: interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors from the CLI parser arrive here without standalone mode
        if not any(c.__name__ == "ClickException" for c in type(exc).__mro__):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        sys.exit(2)


if __name__ == "__main__":
    run()
