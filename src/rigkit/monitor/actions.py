"""What the thermal responder does to the machine, and where it does it: off the sampling loop.

The responder (:mod:`rigkit.monitor.respond`) decides; an :class:`ActionRunner` carries the
decisions out on threads of its own, one *lane* per tier (and per GPU for tier 1), so that:

* the agent's sampling loop never waits for an action (a power-limit call on a sick GPU, a
  ``systemctl stop`` that takes 30 s);
* an action that hangs holds only its own lane: tier 2 (stop workloads) and tier 3 (shut down) go
  ahead on time even while a tier-1 power-limit call has not returned;
* every action ends in an outcome event ("lowered ...", "failed to ...") that the agent stores, and
  an action still running after ``overdue_s`` is reported once as overdue.

Actuators: :class:`SystemActuator` (NVML through :class:`rigkit.nvml.Nvml`, systemctl, docker,
poweroff) and :class:`RecordingActuator` (tests, demos).
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rigkit.errors import MonitorError
from rigkit.nvml import Nvml, NvmlCallError, NvmlUnavailable

log = logging.getLogger(__name__)

#: An action still running after this long is reported (once) as overdue.
OVERDUE_S = 60.0


class Actuator(Protocol):
    """What the responder can do to the machine. Failures raise MonitorError."""

    def set_power_limit(self, gpu_index: int, watts: float) -> None: ...

    def stop_unit(self, name: str) -> None: ...

    def stop_container(self, name: str) -> None: ...

    def shutdown(self) -> None: ...


@dataclass
class RecordingActuator:
    """Records calls instead of acting (tests, demos). ``fail`` names calls that raise;
    ``hang`` names calls that wait until ``release`` is set."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    hang: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)

    def _do(self, what: str, arg: Any) -> None:
        if what in self.hang:
            self.release.wait()
        if what in self.fail:
            raise MonitorError(f"{what} failed (simulated)")
        self.calls.append((what, arg))

    def set_power_limit(self, gpu_index: int, watts: float) -> None:
        self._do("set_power_limit", (gpu_index, watts))

    def stop_unit(self, name: str) -> None:
        self._do("stop_unit", name)

    def stop_container(self, name: str) -> None:
        self._do("stop_container", name)

    def shutdown(self) -> None:
        self._do("shutdown", None)


def run_command(argv: Sequence[str], timeout: float) -> None:
    """Run ``argv`` (found on PATH) to completion within ``timeout``; MonitorError otherwise."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise MonitorError(f"{argv[0]} not found on PATH; cannot run {' '.join(argv)}")
    try:
        proc = subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise MonitorError(f"{' '.join(argv)} did not finish within {timeout:g} s") from err
    except OSError as err:
        raise MonitorError(f"{' '.join(argv)} could not start: {err}") from err
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise MonitorError(
            f"{' '.join(argv)} exited with {proc.returncode}: {msg[-1] if msg else ''}"
        )


class SystemActuator:
    """Acts on the real machine: power limits through NVML (root), systemctl, docker, poweroff.

    ``gpus`` is the NVML session for power limits; without one, a session is opened here, so a
    missing driver is an error at start-up, not during an emergency."""

    def __init__(
        self,
        gpus: Nvml | None = None,
        *,
        timeout_s: float = 30.0,
        run: Callable[[Sequence[str], float], None] = run_command,
    ) -> None:
        if gpus is None:
            try:
                gpus = Nvml()
            except NvmlUnavailable as err:
                raise MonitorError(
                    f"--enforce cannot set power limits: {err.message}", hint=err.hint
                ) from err
        self.gpus = gpus
        self.timeout_s = timeout_s
        self._run = run

    def set_power_limit(self, gpu_index: int, watts: float) -> None:
        try:
            self.gpus.set_power_limit(gpu_index, watts)
        except NvmlCallError as err:
            raise MonitorError(err.message, hint=err.hint) from err

    def stop_unit(self, name: str) -> None:
        self._run(["systemctl", "stop", name], self.timeout_s)

    def stop_container(self, name: str) -> None:
        self._run(["docker", "stop", name], self.timeout_s)

    def shutdown(self) -> None:
        self._run(["systemctl", "poweroff"], self.timeout_s)


@dataclass(frozen=True)
class Outcome:
    """How one action ended: ``error`` None means it succeeded; ``overdue`` it is still running."""

    key: Any
    error: str | None
    seconds: float
    overdue: bool = False


class _Lane:
    def __init__(self, name: str, done: queue.SimpleQueue[Outcome]) -> None:
        self.jobs: queue.SimpleQueue[tuple[Any, Callable[[], None]]] = queue.SimpleQueue()
        self.done = done
        self.lock = threading.Lock()
        self.running: tuple[Any, float] | None = None  # (key, monotonic start)
        self.reported_overdue: Any = None
        self.pending = 0
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            key, fn = self.jobs.get()
            start = time.monotonic()
            with self.lock:
                self.running = (key, start)
            error: str | None = None
            try:
                fn()
            except MonitorError as err:
                error = str(err)
            except Exception as err:  # thread boundary: an actuator bug is an outcome, not a crash
                log.exception("response action failed")
                error = f"{type(err).__name__}: {err}"
            # the outcome is queued before the action stops counting as pending, so a caller
            # that waits for nothing to be pending finds every outcome in the queue
            self.done.put(Outcome(key, error, time.monotonic() - start))
            with self.lock:
                self.running = None
                self.pending -= 1


class ActionRunner:
    """Runs actions on per-lane daemon threads; :meth:`outcomes` hands back how they ended."""

    def __init__(self, overdue_s: float = OVERDUE_S) -> None:
        self.overdue_s = overdue_s
        self._lanes: dict[str, _Lane] = {}
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()

    def submit(self, lane: str, key: Any, fn: Callable[[], None]) -> None:
        """Queue ``fn`` on ``lane`` (created on first use); ``key`` comes back in its Outcome."""
        if lane not in self._lanes:
            self._lanes[lane] = _Lane(f"rigkit-respond-{lane}", self._done)
        ln = self._lanes[lane]
        with ln.lock:
            ln.pending += 1
        ln.jobs.put((key, fn))

    def outcomes(self, wait_s: float = 0.0) -> list[Outcome]:
        """Actions finished since the last call, and actions newly overdue. With ``wait_s``,
        wait up to that long for every queued action to finish first."""
        deadline = time.monotonic() + wait_s
        while wait_s > 0 and self.pending() and time.monotonic() < deadline:
            time.sleep(0.005)
        out: list[Outcome] = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic()
        for ln in self._lanes.values():
            with ln.lock:
                running = ln.running
                if running is None or ln.reported_overdue is running[0]:
                    continue
                if now - running[1] >= self.overdue_s:
                    ln.reported_overdue = running[0]
                    out.append(Outcome(running[0], None, now - running[1], overdue=True))
        return out

    def pending(self) -> int:
        """Actions queued or running."""
        return sum(ln.pending for ln in self._lanes.values())
