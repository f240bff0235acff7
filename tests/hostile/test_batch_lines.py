"""Hostile batch lines: each becomes one ``{"error": ...}`` line in place; the batch goes on.

Before: a non-string id raised AttributeError, a 400-digit integer OverflowError, a 5,000-digit
one ValueError, NaN ValueError, ``[`` x 100,000 RecursionError, and each aborted the whole batch,
losing every line after it (with worker processes, all of it). ``disk_read_gb_s: 5e-324`` wrote
``"load_time_s": Infinity`` (not JSON) and ``ram_gb: true`` was taken as a number.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's type (conftest is not importable by name)
    from conftest import RigkitCli

pytestmark = pytest.mark.timeout(60)

OK = {"model": "llama-3-8b", "quant": "q4_k_m", "gpu": "rtx-4090"}
GOOD = json.dumps(OK)

#: (line, text the error must hold)
BAD = [
    (json.dumps({**OK, "model": True}), "model must be a string (an id), got true"),
    (json.dumps({**OK, "quant": None}), "quant must be a string (an id), got null"),
    (json.dumps({**OK, "gpu": 7}), "gpu must be a string (an id), got 7"),
    (GOOD[:-1] + ', "gpus": 1' + "0" * 399 + "}", "not usable JSON: an integer of 400 digits"),
    (GOOD[:-1] + ', "ctx": ' + "9" * 5000 + "}", "not usable JSON: an integer of 5000 digits"),
    (GOOD[:-1] + ', "ctx": NaN}', "not usable JSON: NaN is not a JSON number"),
    (GOOD[:-1] + ', "ctx": Infinity}', "not usable JSON: Infinity is not a JSON number"),
    (GOOD[:-1] + ', "ram_gb": 1e400}', "a number out of range"),  # reads as inf
    ("[" * 100_000, "not usable JSON: nested too deeply"),
    (json.dumps({**OK, "disk_read_gb_s": 5e-324}), "disk_read_gb_s must be >= 0.001, got 5e-324"),
    (json.dumps({**OK, "ram_gb": True}), "ram_gb must be a number, got true"),
    (json.dumps({**OK, "gpus": True}), "gpus must be an integer, got true"),
    (json.dumps({**OK, "gpus": 2.5}), "gpus must be an integer, got 2.5"),
    (json.dumps({**OK, "gpus": -3}), "gpus must be >= 1, got -3"),
    (json.dumps({**OK, "prompt": 10**15}), "prompt must be <= 10000000"),
    (json.dumps({**OK, "batch": 0}), "batch must be >= 1, got 0"),
    (json.dumps({**OK, "nvlink": "yes"}), "nvlink must be true or false"),
    (json.dumps({**OK, "model": "x" * 100_000}), "model must be at most 200 characters"),
    (json.dumps([OK]), "a case must be a JSON object, got list"),
    ('"\\ud800"', "a case must be a JSON object, got str"),  # a lone surrogate: valid JSON text
    ("{not json", "not JSON"),
]


def test_every_bad_line_is_one_error_line_in_place(rigkit: RigkitCli) -> None:
    # a good case between every bad one: nothing after a bad line may be lost
    lines = [x for bad, _ in BAD for x in (bad, GOOD)]
    r = rigkit("estimate", "--batch", "-", stdin=("\n".join(lines) + "\n").encode())
    r.assert_clean()
    assert r.err == ""
    out = r.out.splitlines()
    assert len(out) == len(lines) == 2 * len(BAD)
    for k, (_, needle) in enumerate(BAD):
        bad = json.loads(out[2 * k])  # every output line is JSON (no Infinity, no NaN)
        assert needle in bad["error"], (k, bad["error"])
        good = json.loads(out[2 * k + 1])
        assert "error" not in good and good["model"] == "llama-3-8b" and good["fits"] is True


def test_json_out_never_holds_infinity(rigkit: RigkitCli) -> None:
    # the slowest disk allowed, 0.001 GB/s, still gives a finite load time: llama-3-8b q4_k_m is
    # about 4.9 GB, so about 4,900 s
    case = json.dumps({**OK, "disk_read_gb_s": 0.001})
    r = rigkit("estimate", "--batch", "-", stdin=(case + "\n").encode())
    r.assert_clean()
    (res,) = [json.loads(x) for x in r.out.splitlines()]
    assert 4000 < res["load_time_s"] < 6000


@pytest.mark.slow
def test_bad_lines_in_worker_processes_lose_nothing(rigkit: RigkitCli) -> None:
    # 2,100 lines: over the 2,000 where batch mode starts worker processes; every 100th is bad
    lines = [BAD[k % len(BAD)][0] if k % 100 == 0 else GOOD for k in range(2100)]
    r = rigkit("estimate", "--batch", "-", stdin=("\n".join(lines) + "\n").encode())
    r.assert_clean()
    out = [json.loads(x) for x in r.out.splitlines()]
    assert len(out) == 2100
    assert [k for k, x in enumerate(out) if "error" in x] == list(range(0, 2100, 100))
