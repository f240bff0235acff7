"""Parsing of OpenAI-compatible streaming responses (server-sent events), kept cheap per line.

A stream is read line by line. Only ``data:`` lines are decoded with ``json.loads``; comments
(``:``), ``event:``/``id:``/``retry:`` fields and blank lines are skipped without allocation.

Token counts never come from counting chunks. They come, in this order, from:

1. ``usage`` (``prompt_tokens``/``completion_tokens``; requested with
   ``stream_options: {"include_usage": true}``),
2. llama.cpp's ``timings`` (``prompt_n``/``predicted_n``) in the final chunk,
3. Ollama's ``prompt_eval_count``/``eval_count``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DONE = object()
"""Returned by :func:`parse_line` for ``data: [DONE]``."""

_decode = json.JSONDecoder().decode

SKIP = object()
"""Returned by :func:`parse_line` for lines that carry no data (blank, comment, other fields)."""


class MalformedSSE(ValueError):
    """A ``data:`` line is not valid JSON (or not a JSON object)."""


def parse_line(line: bytes) -> dict[str, Any] | object:
    """Decode one SSE line: a chunk ``dict``, :data:`DONE`, or :data:`SKIP`.

    Raises :class:`MalformedSSE` when a ``data:`` payload is not a JSON object.
    """
    if not line.startswith(b"data:"):
        # blank line (event separator), ":" comment, "event:", "id:", "retry:"; a non-SSE line
        # from a misbehaving server is caught by the caller noticing no data at all.
        return SKIP
    payload = line[5:].strip()
    if not payload:
        return SKIP
    if payload == b"[DONE]":
        return DONE
    try:
        obj = _decode(payload.decode("utf-8", "replace"))
    except ValueError as err:
        raise MalformedSSE(f"data line is not JSON: {payload[:80]!r}") from err
    if not isinstance(obj, dict):
        raise MalformedSSE(f"data line is not a JSON object: {payload[:80]!r}")
    return obj


def chunk_text(chunk: dict[str, Any]) -> str:
    """The generated text a chunk carries ('' when none): completions ``text`` or chat ``delta``.

    Reasoning text (``delta.reasoning_content``) counts: it is generated tokens too.
    """
    choices = chunk.get("choices")
    if not choices:
        return ""
    first = choices[0]
    if not isinstance(first, dict):
        return ""
    text = first.get("text")
    if text:
        return str(text)
    delta = first.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning")
        if content:
            return str(content)
    return ""


def chunk_finish_reason(chunk: dict[str, Any]) -> str | None:
    """``finish_reason`` of the first choice, when the chunk has one."""
    choices = chunk.get("choices")
    if choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return str(reason) if reason else None
    return None


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Token counts reported by the server for one request, and where they came from."""

    prompt_tokens: int | None
    output_tokens: int | None
    source: str
    """``usage``, ``timings`` (llama.cpp), ``eval_count`` (Ollama) or ``none``."""


@dataclass(frozen=True, slots=True)
class ServerTimings:
    """llama.cpp's own per-request ``timings`` (milliseconds), kept to compare with the client."""

    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float

    @property
    def predicted_per_token_ms(self) -> float | None:
        return self.predicted_ms / self.predicted_n if self.predicted_n > 0 else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def server_timings(chunk: dict[str, Any]) -> ServerTimings | None:
    """llama.cpp ``timings`` from a chunk, when present and complete."""
    t = chunk.get("timings")
    if not isinstance(t, dict):
        return None
    prompt_n, predicted_n = _int(t.get("prompt_n")), _int(t.get("predicted_n"))
    prompt_ms, predicted_ms = t.get("prompt_ms"), t.get("predicted_ms")
    if prompt_n is None or predicted_n is None:
        return None
    if not isinstance(prompt_ms, int | float) or not isinstance(predicted_ms, int | float):
        return None
    return ServerTimings(prompt_n, float(prompt_ms), predicted_n, float(predicted_ms))


def token_counts(
    usage: dict[str, Any] | None,
    timings: ServerTimings | None,
    ollama: dict[str, Any] | None,
) -> TokenCounts:
    """Pick the server's token counts in the documented order of preference."""
    if usage is not None:
        out = _int(usage.get("completion_tokens"))
        if out is not None:
            return TokenCounts(_int(usage.get("prompt_tokens")), out, "usage")
    if timings is not None:
        return TokenCounts(timings.prompt_n, timings.predicted_n, "timings")
    if ollama is not None:
        out = _int(ollama.get("eval_count"))
        if out is not None:
            return TokenCounts(_int(ollama.get("prompt_eval_count")), out, "eval_count")
    return TokenCounts(None, None, "none")
