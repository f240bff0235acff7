"""Batch mode: one JSON case per line in, one JSON result per line out, in order.

Each case is an object with the keys of :func:`rigkit.estimate.estimate` (model, quant, gpu, gpus,
engine, split, prompt, gen, batch, ctx, cpu, ram_gb, disk_read_gb_s). A case that cannot be
evaluated gives ``{"error": "...", **case}`` on its line instead of a result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from rigkit.errors import RigkitError
from rigkit.estimate.core import estimate

CASE_KEYS = frozenset(
    {"model", "quant", "gpu", "gpus", "engine", "split", "prompt", "gen", "batch", "ctx", "cpu", "ram_gb", "disk_read_gb_s"}
)
REQUIRED = ("model", "quant", "gpu")


def run_case(case: Any, profile: str | Path | None = None) -> dict[str, Any]:
    """The result dict for one case, or ``{"error": ..., **case}``."""
    if not isinstance(case, dict):
        return {"error": f"a case must be a JSON object, got {type(case).__name__}"}
    unknown = sorted(set(case) - CASE_KEYS)
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


def run_batch(lines: Iterable[str], out: TextIO, profile: str | Path | None = None) -> tuple[int, int]:
    """Evaluate JSON Lines ``lines``, writing one line per non-blank input line. Returns (ok, errors)."""
    ok = err = 0
    dumps = json.dumps
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as e:
            res: dict[str, Any] = {"error": f"line {n}: not JSON: {e.msg}", "line": n}
        else:
            res = run_case(case, profile)
        if "error" in res:
            err += 1
        else:
            ok += 1
        out.write(dumps(res))
        out.write("\n")
    return ok, err
