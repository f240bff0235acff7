"""Batch mode: one JSON case per line in, one JSON result per line out, in order.

Each case is an object with the keys of :func:`rigkit.estimate.estimate` (model, quant, gpu, gpus,
engine, split, prompt, gen, batch, ctx, cpu, ram_gb, disk_read_gb_s, nvlink, kv_cache,
flash_attention). A case that cannot be evaluated gives ``{"error": "...", **case}`` on its line
instead of a result, and a line that is not a JSON object ``{"error": "line N: ...", "line": N}``:
every non-blank input line gives exactly one output line, in order, whatever it holds.

Every value is checked against :class:`BatchCase` (its type, JSON's own; its range) before the
estimator sees it, and every number written is finite: a line of JSON never holds ``Infinity``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigkit.errors import EstimateError, RigkitError
from rigkit.estimate.core import estimate
from rigkit.inputs import UnreadableInput, is_stream, read_file_bytes, read_stream_bytes

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
#: compact lines; results hold no cycles, so the circular-reference check is skipped (faster).
#: allow_nan=False: ``Infinity`` and ``NaN`` are not JSON, a line holding one is an error instead
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False).encode

#: the estimator's own defaults, so that a case's defaults are never a second copy of them
_DEFAULT: Final[dict[str, Any]] = {
    k: v.default for k, v in inspect.signature(estimate).parameters.items()
}
#: an id is a short catalog name; a megabyte of text in one is a mistake, echoed back in full
_ID = Field(min_length=1, max_length=200)
#: counts far above any real workload (a 10-million-token context, a million concurrent
#: sequences) but far below where the arithmetic would lose precision or overflow
_TOKENS = 10**7


class BatchCase(BaseModel):
    """One batch line's case, its values checked before the estimator sees them.

    Strict: ``true`` is not 1, ``"2"`` is not 2, ``null`` is not an id. Ranges keep every result
    finite: a disk read of 5e-324 GB/s would take an infinite time to load a model.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    model: str = _ID
    quant: str = _ID
    gpu: str = _ID
    gpus: int = Field(default=_DEFAULT["gpus"], ge=1, le=1024)
    engine: str = Field(default=_DEFAULT["engine"], min_length=1, max_length=200)
    split: str | None = Field(default=None, max_length=200)
    prompt: int = Field(default=_DEFAULT["prompt"], ge=0, le=_TOKENS)
    gen: int = Field(default=_DEFAULT["gen"], ge=0, le=_TOKENS)
    batch: int = Field(default=_DEFAULT["batch"], ge=1, le=10**6)
    ctx: int | None = Field(default=None, ge=1, le=2 * _TOKENS)
    cpu: str | None = Field(default=None, max_length=200)
    #: 1 MB to 100 TB of RAM; 1 MB/s to 1 TB/s from disk
    ram_gb: float | None = Field(default=None, ge=0.001, le=100_000)
    disk_read_gb_s: float | None = Field(default=None, ge=0.001, le=1000)
    nvlink: bool | None = None
    kv_cache: str | None = Field(default=None, max_length=200)
    flash_attention: bool | None = None


def _case_problem(err: ValidationError) -> str:
    """One line for the first problem of a case: ``KEY: MESSAGE (got VALUE)``."""
    e = sorted(err.errors(), key=lambda x: x["type"] != "extra_forbidden")[0]
    key = ".".join(str(x) for x in e["loc"])
    if e["type"] == "extra_forbidden":
        extra = sorted(str(x["loc"][0]) for x in err.errors() if x["type"] == "extra_forbidden")
        return f"unknown keys: {', '.join(extra)}"
    if e["type"] == "missing":
        missing = [k for k in REQUIRED if any(x["loc"] == (k,) for x in err.errors())]
        return f"missing keys: {', '.join(missing)}"
    got = json.dumps(e.get("input"), default=repr)  # as the line wrote it: true, null, "x"
    got = got if len(got) <= 40 else got[:37] + "..."
    bound = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}"}.get(e["type"])
    if bound is not None:
        return f"{key} must be {bound.format(**e.get('ctx', {}))}, got {got}"
    kind = _KINDS.get(e["type"])
    if kind is not None:
        return f"{key} must be {kind}, got {got}"
    return f"{key}: {e['msg'][:1].lower()}{e['msg'][1:]} (got {got})"


#: pydantic's type errors in a JSON user's words
_KINDS: Final = {
    "string_type": "a string (an id)",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_too_long": "at most 200 characters",
    "string_too_short": "a non-empty string",
    "finite_number": "a finite number",
}


def _error(message: str, case: dict[str, Any]) -> dict[str, Any]:
    return {"error": message, **case}


def run_case(case: Any, profile: str | Path | None = None) -> dict[str, Any]:
    """The result dict for one case, or ``{"error": ..., **case}``."""
    if not isinstance(case, dict):
        return {"error": f"a case must be a JSON object, got {type(case).__name__}"}
    try:
        valid = BatchCase.model_validate(case)
    except ValidationError as e:
        return _error(_case_problem(e), case)
    try:
        return estimate(**valid.model_dump(exclude_unset=True), profile=profile).to_dict()
    except RigkitError as e:
        return _error(str(e), case)
    except ArithmeticError as e:  # a combination the ranges let through and the model cannot
        return _error(f"cannot estimate this case: {e}", case)


def _case_line(case: Any, profile: str | Path | None) -> str | None:
    """The JSON text of a valid case's result; None when :func:`run_case` must explain an error."""
    if type(case) is not dict:
        return None
    try:
        valid = BatchCase.model_validate(case)
        text = estimate(**valid.model_dump(exclude_unset=True), profile=profile).to_json()
    except (ValidationError, RigkitError, ArithmeticError):
        return None
    # ids are lowercase catalog ids, so these words can only be numbers that JSON cannot hold
    if "Infinity" in text or "NaN" in text:
        return None
    return text


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


#: longest integer literal read (Python refuses 4,300 digits; nothing here needs 20)
_MAX_INT_CHARS = 30


def _parse_int(text: str) -> int:
    if len(text) > _MAX_INT_CHARS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


_decoder = json.JSONDecoder(parse_constant=_not_json_constant, parse_int=_parse_int)


def _loads(line: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, overlong integers and deep nesting with a
    ValueError (the decoder raises RecursionError for ``[[[...`` a hundred thousand deep)."""
    try:
        return _decoder.decode(line)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def run_batch(
    lines: Iterable[str], out: TextIO, profile: str | Path | None = None, first_line: int = 1
) -> tuple[int, int]:
    """Evaluate JSON Lines ``lines``, writing one line per non-blank input line. Returns (ok, errors)."""
    ok = err = 0
    dumps = _encode
    loads = _loads
    write = out.write
    for n, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            case = loads(line)
        except json.JSONDecodeError as e:
            res: dict[str, Any] = {"error": f"line {n}: not JSON: {e.msg}", "line": n}
        except ValueError as e:  # NaN, an overlong integer, nesting too deep
            res = {"error": f"line {n}: not usable JSON: {e}", "line": n}
        else:
            text = _case_line(case, profile)
            if text is not None:
                ok += 1
                write(text)
                write("\n")
                continue
            res = run_case(case, profile)  # the error's explanation (or a result after all)
        try:
            encoded = dumps(res)
        except ValueError:  # a number JSON cannot hold (1e400 reads as infinity)
            res = {"error": f"line {n}: a number out of range", "line": n}
            encoded = dumps(res)
        if "error" in res:
            err += 1
        else:
            ok += 1
        write(encoded)
        write("\n")
    return ok, err


#: largest batch input read (about 1.5 million cases of ~180 bytes); split larger sweeps
MAX_BATCH_BYTES: Final = 256 * 1024 * 1024
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
            with contextlib.suppress(ValueError):  # JSONDecodeError is one
                run_case(_loads(line), profile)
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

    The whole input is read first (at most :data:`MAX_BATCH_BYTES`) so large inputs can use
    :func:`run_batch_parallel`. An unreadable, oversized or non-UTF-8 input, or a path that is not
    a file or a pipe (a directory, ``/dev/zero``), raises :class:`EstimateError` naming it.
    """
    if profile is not None:
        from rigkit.estimate.params import load_params

        # a profile that cannot be used is unusable input for the whole batch (exit status 2),
        # not an error repeated on every line
        load_params(profile)
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            # bytes, decoded strictly: the text layer may escape bad bytes (C locale) instead
            if hasattr(sys.stdin, "buffer"):
                raw = read_stream_bytes(sys.stdin.buffer, where, limit=MAX_BATCH_BYTES)
            else:  # a text stream without bytes under it (a test's StringIO)
                raw = sys.stdin.read(MAX_BATCH_BYTES + 1).encode("utf-8")
        elif is_stream(source):  # a pipe: `--batch <(generate-cases)`
            with open(source, "rb") as fh:
                raw = read_stream_bytes(fh, where, limit=MAX_BATCH_BYTES)
        else:
            raw = read_file_bytes(source, limit=MAX_BATCH_BYTES)
        if len(raw) > MAX_BATCH_BYTES:
            raise UnreadableInput(where, "more than the input limit", hint="split the input")
        lines = raw.decode("utf-8").splitlines(keepends=True)
    except UnreadableInput as err:
        raise EstimateError(f"cannot read {err}") from None
    except OSError as err:
        raise EstimateError(f"cannot read {where}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise EstimateError(f"cannot read {where}: not UTF-8 text") from None
    result = run_batch_parallel(lines, out, profile)
    out.flush()
    return result
