"""Monitor data sources behind one interface (:class:`~rigkit.monitor.sources.base.Source`).

``open_source("nvml")`` reads the machine (NVML + kernel log + host + smartctl);
``open_source("replay:FILE")`` plays a recording (``replay:idle-4x4090`` names a packaged file).
Heavy imports stay inside the functions so that importing this package is cheap.
"""

from __future__ import annotations

from rigkit.errors import MonitorError
from rigkit.monitor.sources.base import Source, SourceExhausted

__all__ = ["Source", "SourceExhausted", "open_source"]


def open_source(text: str, *, speed: float = 1.0, loop: bool = False) -> Source:
    """A source from its command-line form: ``nvml``, ``host`` or ``replay:FILE``."""
    kind, _, arg = text.partition(":")
    if kind == "replay":
        if not arg:
            raise MonitorError("--source replay needs a file: replay:FILE or replay:idle-4x4090")
        from rigkit.monitor.sources.replay import ReplaySource

        return ReplaySource(arg, speed=speed, loop=loop)
    if kind in ("nvml", "live"):
        from rigkit.monitor.sources.composite import CompositeSource

        live: Source = CompositeSource.default()
        return live
    if kind == "host":
        from rigkit.monitor.sources.composite import CompositeSource

        host_only: Source = CompositeSource.default(gpus=False)
        return host_only
    raise MonitorError(
        f"unknown source {text!r}", hint="use nvml, host, or replay:FILE (e.g. replay:idle-4x4090)"
    )
