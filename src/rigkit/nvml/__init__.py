"""NVIDIA GPUs through NVML: the one module that imports ``pynvml``, and what NVML's codes mean.

* :class:`Nvml` (:mod:`rigkit.nvml.session`) opens NVML and makes every call on worker threads with a
  timeout; used by the monitor's NVML source, the qa probe and the thermal responder.
* :mod:`rigkit.nvml.codes`: XID classes and clock-event (throttle) reasons, one table for the alert
  rules and the qa soak check.
"""

from __future__ import annotations

from rigkit.nvml.codes import (
    APPLICATION_XIDS,
    CLOCK_EVENT_REASONS,
    CRITICAL_XIDS,
    HW_SLOWDOWN_REASONS,
    THROTTLE_REASONS,
    xid_class,
)
from rigkit.nvml.session import (
    GpuInfo,
    GpuReadout,
    Lost,
    Nvml,
    NvmlCallError,
    NvmlUnavailable,
)

__all__ = [
    "APPLICATION_XIDS",
    "CLOCK_EVENT_REASONS",
    "CRITICAL_XIDS",
    "HW_SLOWDOWN_REASONS",
    "THROTTLE_REASONS",
    "GpuInfo",
    "GpuReadout",
    "Lost",
    "Nvml",
    "NvmlCallError",
    "NvmlUnavailable",
    "xid_class",
]
