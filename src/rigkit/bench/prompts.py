"""Prompts for the load generator: random prompts of a target token length, or a dataset file.

Random prompts need no tokenizer. They are built from common English words at an assumed
``words_per_token`` (0.75 to start, the usual figure for English text) and every prompt starts
differently, so a server's prefix cache cannot shortcut prefill. Once a server reports the real
prompt token count (``usage``/``timings``), :meth:`RandomPrompts.calibrate` corrects the ratio so
later prompts land near the target; the results always report the measured input tokens.

Dataset files are JSON (a list) or JSONL (one item a line). An item is a string, or an object
with ``prompt`` (a string), ``messages`` (OpenAI chat messages) or ``conversations`` (ShareGPT:
the first ``human``/``user`` turn is the prompt); ``max_tokens``/``output_tokens`` sets the
generation length for that item.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigkit.errors import BenchError
from rigkit.inputs import UnreadableInput, read_text_file

_WORD_TEXT = (
    "the of and to in is was for on that with as by at from his her an it be this are have "
    "not but which or one all were we when there can been has more if no out so said what up "
    "its about into than them only other new some could time these two may then do first any "
    "my now such like our over man me even most made after also did many before must through "
    "back years where much your way well down should because each just those people how too "
    "little state good very make world still own see men work long get here between both life "
    "being under never day same another know while last might us great old year off come since "
    "against go came right used take three system power memory card board cable water river "
    "mountain garden window paper letter music number market family school light story question"
)
_WORDS = tuple(_WORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Prompt:
    """One request's input: plain text (completions) and/or chat messages."""

    text: str
    messages: tuple[dict[str, str], ...] | None = None
    max_tokens: int | None = None

    def chat_messages(self) -> list[dict[str, str]]:
        if self.messages:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.text}]


class RandomPrompts:
    """Endless random prompts of about ``tokens`` tokens each."""

    def __init__(self, tokens: int, *, seed: int = 0, words_per_token: float = 0.75) -> None:
        if tokens < 1:
            raise BenchError(f"prompt length must be at least 1 token, not {tokens}")
        self.tokens = tokens
        self.words_per_token = words_per_token
        self._rng = random.Random(seed)
        self._n = 0

    def words(self) -> int:
        """Words per prompt at the current words-per-token ratio (at least 1)."""
        return max(1, round(self.tokens * self.words_per_token))

    def calibrate(self, words: int, measured_tokens: int) -> None:
        """Set the ratio from a prompt of ``words`` words the server counted as ``measured_tokens``."""
        if words > 0 and measured_tokens > 0:
            self.words_per_token = words / measured_tokens

    def make(self) -> Prompt:
        self._n += 1
        n = self.words()
        rng = self._rng
        # A unique numbered head keeps prefixes distinct even for very short prompts.
        head = f"{self._n}"
        body = " ".join(rng.choice(_WORDS) for _ in range(n - 1))
        return Prompt(text=f"{head} {body}".strip())

    def __iter__(self) -> Iterator[Prompt]:
        while True:
            yield self.make()


def _item_to_prompt(item: Any, where: str) -> Prompt:
    if isinstance(item, str):
        return Prompt(text=item)
    if not isinstance(item, dict):
        raise BenchError(
            f"{where}: an item must be a string or an object, not {type(item).__name__}"
        )
    max_tokens = item.get("max_tokens", item.get("output_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise BenchError(f"{where}: max_tokens must be a positive integer, not {max_tokens!r}")
    if isinstance(item.get("prompt"), str):
        return Prompt(text=item["prompt"], max_tokens=max_tokens)
    msgs = item.get("messages")
    if isinstance(msgs, list) and msgs:
        clean: list[dict[str, str]] = []
        for m in msgs:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise BenchError(f"{where}: each message needs a string 'content'")
            clean.append({"role": str(m.get("role", "user")), "content": m["content"]})
        text = "\n".join(m["content"] for m in clean)
        return Prompt(text=text, messages=tuple(clean), max_tokens=max_tokens)
    conv = item.get("conversations")
    if isinstance(conv, list):
        for turn in conv:
            if isinstance(turn, dict) and turn.get("from") in ("human", "user"):
                value = turn.get("value")
                if isinstance(value, str) and value:
                    return Prompt(text=value, max_tokens=max_tokens)
    raise BenchError(
        f"{where}: no prompt found",
        hint="give 'prompt', 'messages' or ShareGPT 'conversations' with a human turn",
    )


def load_dataset(path: Path) -> list[Prompt]:
    """Read prompts from a JSON list or a JSONL file."""
    try:
        # ShareGPT's largest public file is about 0.7 GB
        text = read_text_file(path, limit=2 * 1024**3)
    except UnreadableInput as err:  # missing, a directory or device, too big, not UTF-8 text
        raise BenchError(f"cannot read dataset {err}") from None
    items: list[tuple[Any, str]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as err:
            raise BenchError(f"{path}: not valid JSON: {err}") from None
        items = [(it, f"{path}: item {i + 1}") for i, it in enumerate(data)]
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((json.loads(line), f"{path}:{lineno}"))
            except ValueError as err:
                raise BenchError(f"{path}:{lineno}: not valid JSON: {err}") from None
    prompts = [_item_to_prompt(it, where) for it, where in items]
    if not prompts:
        raise BenchError(f"dataset {path} has no prompts")
    return prompts
