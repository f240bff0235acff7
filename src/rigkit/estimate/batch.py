"""Batch mode: one JSON case per line in, one JSON result per line out, in order.

Each case is an object with the keys of :func:`rigkit.estimate.estimate` (model, quant, gpu, gpus,
engine, split, prompt, gen, batch, ctx, cpu, ram_gb, disk_read_gb_s, nvlink, kv_cache,
flash_attention). A case that cannot be
evaluated gives ``{"error": "...", **case}`` on its line instead of a result.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from rigkit.errors import EstimateError, RigkitError
from rigkit.estimate.core import estimate

CASE_KEYS = frozenset(
    {
        "model",
        "quant",
        "gpu",
        "gpus",
        "engine",
        "split",
        "prompt",
        "gen",
        "batch",
        "ctx",
        "cpu",
        "ram_gb",
        "disk_read_gb_s",
        "nvlink",
        "kv_cache",
        "flash_attention",
        "power_limit_w",
        "nodes",
        "nic",
    }
)
REQUIRED = ("model", "quant", "gpu")
#: compact lines; results hold no cycles, so the circular-reference check is skipped (faster)
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def run_case(case: Any, profile: str | Path | None = None) -> dict[str, Any]:
    """The result dict for one case, or ``{"error": ..., **case}``."""
    if not isinstance(case, dict):
        return {"error": f"a case must be a JSON object, got {type(case).__name__}"}
    unknown = sorted(case.keys() - CASE_KEYS)
    if unknown:
        return {"error": f"unknown keys: {', '.join(unknown)}", **case}
    missing = [k for k in REQUIRED if k not in case]
    if missing:
        return {"error": f"missing keys: {', '.join(missing)}", **case}
    try:
        return estimate(**case, profile=profile).to_dict()
    except RigkitError as e:
        return {"error": str(e), **case}
    except TypeError as e:  # a value of the wrong JSON type reached the arithmetic
        return {"error": f"bad value: {e}", **case}


def _case_line(case: Any, profile: str | Path | None) -> str | None:
    """The JSON text of a valid case's result; None when :func:`run_case` must explain an error."""
    if type(case) is not dict or not case.keys() <= CASE_KEYS:
        return None
    if "model" not in case or "quant" not in case or "gpu" not in case:
        return None
    try:
        return estimate(**case, profile=profile).to_json()
    except (RigkitError, TypeError):
        return None


def run_batch(
    lines: Iterable[str], out: TextIO, profile: str | Path | None = None, first_line: int = 1
) -> tuple[int, int]:
    """Evaluate JSON Lines ``lines``, writing one line per non-blank input line. Returns (ok, errors)."""
    ok = err = 0
    dumps = _encode
    loads = json.loads
    write = out.write
    for n, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            case = loads(line)
        except json.JSONDecodeError as e:
            res: dict[str, Any] = {"error": f"line {n}: not JSON: {e.msg}", "line": n}
        else:
            text = _case_line(case, profile)
            if text is not None:
                ok += 1
                write(text)
                write("\n")
                continue
            res = run_case(case, profile)  # the error's explanation (or a result after all)
        if "error" in res:
            err += 1
        else:
            ok += 1
        write(dumps(res))
        write("\n")
    return ok, err


#: below this many cases one process is faster than starting workers
PARALLEL_MIN_CASES = int(os.environ.get("RIGKIT_BATCH_PARALLEL_MIN", "2000"))


def _eval_chunk(args: tuple[Sequence[str], int, str | None]) -> tuple[str, int, int]:
    lines, first, profile = args
    import io

    buf = io.StringIO()
    ok, err = run_batch(lines, buf, profile, first_line=first)
    return buf.getvalue(), ok, err


def run_batch_parallel(
    lines: Sequence[str], out: TextIO, profile: str | Path | None = None, workers: int | None = None
) -> tuple[int, int]:
    """:func:`run_batch` over ``workers`` forked processes (same output, same order).

    Falls back to one process for small inputs or where ``fork`` is not available. The catalogs
    are loaded before forking, so the workers start warm.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    if workers < 2 or len(lines) < PARALLEL_MIN_CASES or not hasattr(os, "fork"):
        return run_batch(lines, out, profile)
    import multiprocessing

    for line in lines[:1]:  # warm the catalog caches before forking
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):
                run_case(json.loads(line), profile)
    prof = None if profile is None else os.fspath(profile)
    size = -(-len(lines) // workers)
    chunks = [(lines[i : i + size], i + 1, prof) for i in range(0, len(lines), size)]
    ok = err = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        for text, k, e in pool.imap(_eval_chunk, chunks):
            out.write(text)
            ok += k
            err += e
    return ok, err


def run_batch_source(
    source: str, out: TextIO, profile: str | Path | None = None
) -> tuple[int, int]:
    """Batch mode over ``source``: ``-`` (standard input) or a JSON Lines file path.

    The whole input is read first so large inputs can use :func:`run_batch_parallel`. An unreadable
    or non-UTF-8 input raises :class:`EstimateError` naming it.
    """
    import sys

    if profile is not None:
        from rigkit.estimate.params import load_params

        # a profile that cannot be used is unusable input for the whole batch (exit status 2),
        # not an error repeated on every line
        load_params(profile)
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            # bytes, decoded strictly: the text layer may escape bad bytes (C locale) instead
            raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else None
            lines = (
                raw.decode("utf-8").splitlines(keepends=True)
                if raw is not None
                else sys.stdin.readlines()
            )
        else:
            with open(source, encoding="utf-8") as fh:
                lines = fh.readlines()
    except OSError as err:
        raise EstimateError(f"cannot read {where}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise EstimateError(f"cannot read {where}: not UTF-8 text") from None
    result = run_batch_parallel(lines, out, profile)
    out.flush()
    return result
