"""`rigkit` entry point. Registers each command group and turns RigkitError into exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer

from rigkit import __version__
from rigkit.cli import (
    audit,
    bench,
    build,
    calibrate,
    catalog,
    estimate,
    guide,
    monitor,
    plan,
    provision,
    qa,
)
from rigkit.errors import RigkitError


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rigkit {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    catalog: str | None = typer.Option(
        None,
        "--catalog",
        metavar="DIR",
        help="a folder of YAML files that add or override catalog entries "
        "(default: $RIGKIT_CATALOG, else ~/.config/rigkit/catalog/)",
    ),
) -> None:
    """rigkit: the build as data, its checks as code, the machine measured against the plan."""
    if catalog is not None:
        import os

        os.environ["RIGKIT_CATALOG"] = catalog


#: command name -> the function of its module that registers it, in the order `rigkit --help`
#: lists them (the modules import their heavy libraries inside the commands)
COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "plan": plan.register,
    "rules": plan.register,
    "catalog": catalog.register,
    "estimate": estimate.register,
    "monitor": monitor.register,
    "bench": bench.register,
    "qa": qa.register,
    "calibrate": calibrate.register,
    "guide": guide.register,
    "build": build.register,
    "provision": provision.register,
    "audit": audit.register,
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root app with its command groups.

    Building a command costs an evaluation of its signature, so when ``argv`` names a known command
    only the module that defines it is registered; otherwise (help, no command) all of them are.
    """
    root = typer.Typer(
        name="rigkit",
        help="Plan, estimate, benchmark and monitor multi-GPU workstations for local LLM inference.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback()(_root)
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    wanted = [COMMANDS[first]] if first in COMMANDS else COMMANDS.values()
    for register in dict.fromkeys(wanted):
        register(root)
    _plain_flags(root)
    return root


def _plain_flags(app: typer.Typer) -> None:
    """Show on/off options without a value placeholder: ``--force`` rather than
    ``--force <bool>`` in ``--help`` (typer prints the type of a flag as if it took a value)."""
    import inspect

    callbacks = [info.callback for info in app.registered_commands]
    if app.registered_callback is not None:
        callbacks.append(app.registered_callback.callback)
    for callback in callbacks:
        if callback is None:
            continue
        for param in inspect.signature(callback).parameters.values():
            opt = param.default
            flag = param.annotation in (bool, "bool", "bool | None")
            if flag and isinstance(opt, typer.models.OptionInfo) and opt.metavar is None:
                opt.metavar = ""
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _plain_flags(group.typer_instance)


@functools.cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    # `from rigkit.cli.main import app`: the app with every command (tests, documentation tools)
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run() -> None:
    """Console-script entry: user errors become one line on stderr and exit status 2."""
    app = build_app(sys.argv[1:])
    try:
        # Without standalone mode, click returns the code of `typer.Exit(code)` instead of raising.
        rc = app(standalone_mode=False, prog_name="rigkit")
        if isinstance(rc, int) and not isinstance(rc, bool):
            sys.exit(rc)
    except RigkitError as err:
        sys.stderr.write("".join(f"rigkit: error: {line}\n" for line in str(err).splitlines()))
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
        sys.stderr.write(f"rigkit: error: {usage_line(exc)}\n")
        sys.exit(2)


def usage_line(exc: Exception) -> str:
    """A usage error from the CLI parser as one line: the command, the problem, where help is.

    The parser's own picture (usage line, "Try ... --help", a blank line, "Error: ...") says the
    same thing on four lines, which a script reading stderr cannot take as one message.
    """
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split())
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None)
    if not command:
        return message
    # "rigkit plan" -> "plan: ..."; the root command needs no name (the line starts with rigkit:)
    _, _, sub = str(command).partition(" ")
    return f"{sub + ': ' if sub else ''}{message} (hint: {command} --help)"


if __name__ == "__main__":
    run()
