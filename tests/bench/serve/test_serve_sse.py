"""SSE line parsing, text extraction and token counting (usage, then timings, then eval_count)."""

from __future__ import annotations

import pytest

from rigkit.bench.sse import (
    DONE,
    SKIP,
    MalformedSSE,
    chunk_finish_reason,
    chunk_text,
    parse_line,
    server_timings,
    token_counts,
)


def test_parse_line_kinds() -> None:
    assert parse_line(b"\n") is SKIP
    assert parse_line(b": keep-alive\n") is SKIP
    assert parse_line(b"event: message\n") is SKIP
    assert parse_line(b"data: [DONE]\n") is DONE
    assert parse_line(b"data:[DONE]\r\n") is DONE
    assert parse_line(b'data: {"a": 1}\n') == {"a": 1}
    assert parse_line(b'data:{"a":2}') == {"a": 2}
    with pytest.raises(MalformedSSE):
        parse_line(b"data: {not json\n")
    with pytest.raises(MalformedSSE):
        parse_line(b"data: [1, 2]\n")


def test_chunk_text_completions_and_chat() -> None:
    assert chunk_text({"choices": [{"text": " hi"}]}) == " hi"
    assert chunk_text({"choices": [{"delta": {"content": "yo"}}]}) == "yo"
    assert chunk_text({"choices": [{"delta": {"reasoning_content": "think"}}]}) == "think"
    assert chunk_text({"choices": [{"delta": {"role": "assistant", "content": ""}}]}) == ""
    assert chunk_text({"choices": [], "usage": {"completion_tokens": 3}}) == ""
    assert chunk_finish_reason({"choices": [{"text": "", "finish_reason": "length"}]}) == "length"
    assert chunk_finish_reason({"choices": [{"text": "x", "finish_reason": None}]}) is None


def test_token_counts_prefers_usage_then_timings_then_eval_count() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 30}
    t = server_timings(
        {"timings": {"prompt_n": 11, "prompt_ms": 5.0, "predicted_n": 29, "predicted_ms": 90.0}}
    )
    assert t is not None
    assert t.predicted_per_token_ms == pytest.approx(90.0 / 29)
    ollama = {"prompt_eval_count": 13, "eval_count": 31}
    c = token_counts(usage, t, ollama)
    assert (c.prompt_tokens, c.output_tokens, c.source) == (12, 30, "usage")
    c = token_counts(None, t, ollama)
    assert (c.prompt_tokens, c.output_tokens, c.source) == (11, 29, "timings")
    c = token_counts(None, None, ollama)
    assert (c.prompt_tokens, c.output_tokens, c.source) == (13, 31, "eval_count")
    c = token_counts(None, None, None)
    assert (c.prompt_tokens, c.output_tokens, c.source) == (None, None, "none")
    # usage without completion_tokens falls through to timings
    c = token_counts({"prompt_tokens": 5}, t, None)
    assert c.source == "timings"


def test_server_timings_incomplete() -> None:
    assert server_timings({}) is None
    assert server_timings({"timings": {"prompt_n": 1}}) is None
    assert server_timings({"timings": {"prompt_n": 1, "predicted_n": True}}) is None


def test_line_splitter_joins_lines_split_across_reads() -> None:
    from rigkit.bench.loadgen import _Lines, _Stream

    times: list[float] = []
    st = _Stream(times)
    lines = _Lines(st)
    # one event split over two reads, then two events in one read, then usage and [DONE]
    assert not lines.data(b'data: {"choices": [{"te', 1.0)
    assert not lines.data(b'xt": "a"}]}\n\ndata: {"choices": [{"text": "b"}]}\n\n', 2.0)
    assert not lines.data(b'data: {"choices": [{"text": "c", "finish_reason": "length"}]}\n\n', 3.0)
    assert not lines.data(
        b': keep-alive\n\ndata: {"choices": [], "usage": {"completion_tokens": 3}}\n\n', 4.0
    )
    assert lines.data(b"data: [DONE]\n\n", 5.0)
    # "a" completes at the second read (t=2), "b" arrived in the same read, "c" at t=3
    assert times == [2.0, 2.0, 3.0]
    assert st.done and st.finished
    assert st.usage == {"completion_tokens": 3}
    assert lines.done_at == 5.0


def test_line_splitter_error_event_and_malformed_line() -> None:
    from rigkit.bench.loadgen import _Lines, _Stream

    st = _Stream([])
    assert _Lines(st).data(b'data: {"error": {"message": "out of memory"}}\n\n', 1.0)
    assert st.error == "server_error"
    assert "out of memory" in st.message
    with pytest.raises(MalformedSSE):
        _Lines(_Stream([])).data(b"data: {oops\n\n", 1.0)


def test_line_splitter_last_line_without_newline_at_eof() -> None:
    from rigkit.bench.loadgen import _Lines, _Stream

    st = _Stream([])
    lines = _Lines(st)
    assert not lines.data(b'data: {"choices": [{"text": "x", "finish_reason": "stop"}]}', 1.0)
    assert not st.finished
    lines.eof(2.0)
    assert st.finished  # the unterminated last line was still read at the end of the body
