"""Console-script entry point: a fast path for batch estimates, else the full CLI."""

from __future__ import annotations

import os
import sys


def _batch_fast_path(argv: list[str]) -> bool:
    """`rigkit estimate --batch -|FILE [--profile P]`: evaluate without building the CLI.

    Batch mode is a throughput path (thousands of cases per second, process start included), so it
    skips importing typer and every command module. Any other option falls through to the CLI.
    """
    if len(argv) < 3 or argv[0] != "estimate":
        return False
    opts: dict[str, str] = {}
    rest = argv[1:]
    while rest:
        key = rest[0]
        if key.startswith("--") and "=" in key:
            key, _, value = key.partition("=")
            rest = rest[1:]
        elif key in ("--batch", "--profile") and len(rest) >= 2:
            value, rest = rest[1], rest[2:]
        else:
            return False
        if key not in ("--batch", "--profile") or key in opts:
            return False
        opts[key] = value
    batch = opts.get("--batch")
    if batch is None or (batch != "-" and not os.path.isfile(batch)):
        return False  # a batch size, or a missing file: the CLI explains it
    from rigkit.estimate.batch import run_batch_source

    run_batch_source(batch, sys.stdout, opts.get("--profile"))
    return True


def run() -> None:
    """`rigkit`: batch estimates skip building the CLI; everything else goes to :mod:`main`.

    A reader that goes away (``rigkit estimate --batch cases.jsonl | head``) ends the command
    quietly, as it does for other Unix filters: no traceback, exit status 141 (SIGPIPE).
    """
    try:
        _run(sys.argv[1:])
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)


def _run(argv: list[str]) -> None:
    if argv[:1] == ["estimate"] and "--batch" in " ".join(argv):
        from rigkit.errors import RigkitError

        try:
            if _batch_fast_path(argv):
                sys.exit(0)
        except RigkitError as err:
            sys.stderr.write("".join(f"rigkit: error: {line}\n" for line in str(err).splitlines()))
            sys.exit(2)
    from rigkit.cli.main import run as run_cli

    run_cli()
