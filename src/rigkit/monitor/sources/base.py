"""The small interface every monitor source implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rigkit.monitor.sample import Sample


class SourceExhausted(Exception):
    """A finite source (a replay file) has no more samples. Not an error."""


@runtime_checkable
class Source(Protocol):
    """A data source: ``read()`` returns one :class:`Sample` (raises :class:`SourceExhausted` at
    the end of a finite source), ``close()`` releases handles and worker threads."""

    name: str

    def read(self) -> Sample: ...

    def close(self) -> None: ...
