"""Write the replay format (JSON Lines) from any source, and make the synthetic demo replays.

``record(source, path)`` is what ``rigkit monitor record`` runs. ``synthetic_samples`` generates the
packaged ``idle-4x4090`` / ``loaded-4x4090`` files (and the 8-GPU load of the overhead benchmark):
they are SYNTHETIC, not measured, with values chosen from published RTX 4090 behaviour (see
src/rigkit/monitor/data/README.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal

from rigkit.errors import MonitorError
from rigkit.monitor.sample import DiskSample, GpuSample, HostSample, Sample
from rigkit.monitor.sources.base import Source, SourceExhausted

log = logging.getLogger(__name__)

Profile = Literal["idle", "loaded"]

#: 2026-01-01T00:00:00Z: the first ``t`` of the synthetic replays.
SYNTHETIC_T0 = 1767225600.0


def dumps_sample(sample: Sample) -> str:
    """One replay line (no newline), compact separators."""
    return json.dumps(sample.to_dict(), separators=(",", ":"), allow_nan=False)


def check_output(path: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse an output path that a recording cannot (or must not) replace: a directory, a file in
    a directory that does not exist, or an existing file unless ``overwrite``. Returns the path."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise MonitorError(f"cannot write replay file {out}: it is a directory")
    parent = out.parent
    if not parent.is_dir():
        raise MonitorError(
            f"cannot write replay file {out}: directory {parent} does not exist",
            hint="create the directory first or choose another --out",
        )
    if not overwrite and (out.exists() or out.is_symlink()):
        raise MonitorError(
            f"replay file {out} already exists",
            hint="pass --force to replace it; it is replaced only when the recording completes",
        )
    return out


class Recorder:
    """Writes samples to a replay file; each line is flushed so a crash loses at most one line.

    ``atomic=True`` writes to a temporary file beside ``path`` (``.NAME.PID.tmp``) and moves it onto
    ``path`` in one step (:func:`os.replace`) on :meth:`commit`; :meth:`discard`, or leaving a
    ``with`` block by an exception, removes it instead, so ``path`` is never left half written and
    a file already there stays as it was unless the recording completes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        header: str | None = None,
        append: bool = False,
        atomic: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        if atomic and append:
            raise MonitorError("a replay file is appended to in place or replaced, not both")
        self.atomic = atomic
        self._tmp: Path | None = None
        self._done = False
        try:
            if atomic:
                self._tmp = self._make_temp()
                self._fh: IO[str] = self._tmp.open("w", encoding="utf-8")
            else:
                self._fh = self.path.open("a" if append else "w", encoding="utf-8")
        except OSError as err:
            self._remove_temp()
            raise MonitorError(f"cannot write replay file {self.path}: {err.strerror}") from err
        self.count = 0
        if header:
            for line in header.splitlines():
                self._fh.write(f"# {line}\n")
            self._fh.flush()

    def _make_temp(self) -> Path:
        """A new file beside ``path`` (same file system, so the final rename is atomic), created
        with the permissions a plain ``open`` would give (0666 less the umask). Temporary files
        that an earlier recording to ``path`` left behind (killed with ``kill -9``, or the machine
        went down) are removed first."""
        remove_stale_temps(self.path)
        for k in range(100):
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{k}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self._tmp = tmp
            return tmp
        raise MonitorError(f"cannot write replay file {self.path}: no free temporary name")

    def write(self, sample: Sample) -> None:
        self._fh.write(dumps_sample(sample) + "\n")
        self._fh.flush()
        self.count += 1

    def commit(self) -> None:
        """Finish the file: for an atomic recorder, sync it and move it onto ``path``."""
        if self._done:
            return
        self._done = True
        if self._tmp is None:
            self._fh.close()
            return
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self._fh.close()
            self._remove_temp()
            raise MonitorError(f"cannot write replay file {self.path}: {err.strerror}") from err
        self._tmp = None
        _sync_dir(self.path.parent)

    def discard(self) -> None:
        """Give up: an atomic recorder removes its temporary file (``path`` is not touched); a
        plain one keeps what it wrote."""
        if self._done:
            return
        self._done = True
        self._fh.close()
        self._remove_temp()

    def _remove_temp(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def close(self) -> None:
        """Commit (kept for callers that write a plain file and close it)."""
        self.commit()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.PID.K.tmp``) of recordings to ``path`` whose process is
    gone; a recording still running keeps its file. Returns what was removed."""
    removed: list[Path] = []
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text, _, k = name[len(prefix) : -len(".tmp")].partition(".")
        if not (pid_text.isdigit() and k.isdigit()) or _pid_alive(int(pid_text)):
            continue
        try:
            if not entry.is_file() or entry.is_symlink():
                continue
            entry.unlink()
        except OSError as err:
            log.warning("cannot remove %s left by an earlier recording: %s", entry, err.strerror)
            continue
        log.info("removed %s, left by an earlier recording that did not finish", entry)
        removed.append(entry)
    return removed


def _sync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform opens directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def record(
    source: Source,
    path: str | Path,
    *,
    interval_s: float = 1.0,
    duration_s: float | None = None,
    count: int | None = None,
    header: str | None = None,
    overwrite: bool = False,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Read ``source`` every ``interval_s`` seconds (a replay paces itself: interval 0) and write
    each sample to ``path``; stops after ``count`` samples, ``duration_s`` seconds, the end of a
    finite source, or when ``stop`` is set. Returns the number of samples written.

    The file appears at ``path`` only when the recording ends normally (written beside it, then
    renamed). An existing ``path`` is refused unless ``overwrite``; on an error it stays as it was.
    Stopped by ``stop`` before the first sample, nothing is written and 0 is returned.
    """
    out = check_output(path, overwrite=overwrite)
    start = clock()
    with Recorder(out, header=header, atomic=True) as rec:
        next_due = start
        while count is None or rec.count < count:
            if stop is not None and stop.is_set():
                break
            if duration_s is not None and clock() - start >= duration_s:
                break
            try:
                sample = source.read()
            except SourceExhausted:
                break
            rec.write(sample)
            if interval_s > 0:
                next_due += interval_s
                delay = next_due - clock()
                if delay > 0:
                    if stop is not None:
                        stop.wait(delay)
                    else:
                        sleep(delay)
                else:
                    next_due = clock()
        if rec.count == 0 and stop is not None and stop.is_set():
            rec.discard()
            log.info("stopped before the first sample: nothing written to %s", out)
            return 0
        log.info("recorded %d samples to %s", rec.count, rec.path)
        return rec.count


# -- synthetic replays ----------------------------------------------------------------------------

_SLOWDOWN_C = 88  # nominal; NVML reports the card's own value, check with `nvidia-smi -q`
_SHUTDOWN_C = 93
_HOT_OFFSET_C = (0.0, 3.0, 4.0, 1.0, 2.0, 3.5, 4.5, 1.5)  # inner cards of a stack run warmer


def synthetic_samples(
    profile: Profile,
    *,
    gpus: int = 4,
    seconds: int = 240,
    seed: int = 4090,
    t0: float = SYNTHETIC_T0,
) -> Iterator[Sample]:
    """SYNTHETIC 1 Hz samples of an RTX 4090 box, idle or serving an LLM.

    idle: model loaded, no requests: P8 state, 20-30 W, SM 210 MHz, memory 405 MHz, 32-38 C, fans at
    their 30 % floor, PCIe link trained down to gen 1 (it drops at idle), no throttle reason but idle.
    loaded: llama.cpp layer split decode at 250-350 W with a 5 s prefill burst every 30 s up to the
    450 W power limit (sw_power_cap), SM 2520-2745 MHz, memory 10501 MHz, PCIe gen 4 x16, warming
    from 45 C towards 65-75 C with a first-order lag (tau 90 s), fans following temperature to 50-70 %.
    """
    rng = random.Random(f"{seed}-{profile}-{gpus}")
    temps = [34.0 + _HOT_OFFSET_C[i % 8] / 2 if profile == "idle" else 45.0 for i in range(gpus)]
    for k in range(seconds):
        t = t0 + k
        gs = []
        for i in range(gpus):
            hot = _HOT_OFFSET_C[i % 8]
            if profile == "idle":
                power = 21.0 + rng.uniform(0.0, 8.0)
                target = 31.0 + hot / 2 + power * 0.05
                util, sm, mem_clk, gen = rng.choice((0, 0, 0, 1)), 210, 405, 1
                reasons: tuple[str, ...] = ("idle",)
                mem_used = 10950 + i * 4
            else:
                phase = k % 30
                prefill = phase < 5
                power = rng.uniform(440.0, 450.0) if prefill else rng.uniform(250.0, 350.0)
                target = 30.0 + hot + power * 0.115
                util = rng.randint(97, 100) if prefill else rng.randint(62, 96)
                sm = (
                    rng.choice((2505, 2520, 2535))
                    if prefill
                    else rng.choice((2610, 2655, 2700, 2745))
                )
                mem_clk, gen = 10501, 4
                reasons = ("sw_power_cap",) if prefill and power >= 445.0 else ()
                mem_used = 21000 + i * 96
            temps[i] += (target - temps[i]) * (1 - math.exp(-1 / 90))
            temp = round(temps[i] + rng.uniform(-0.4, 0.4))
            fan = 30 if temp < 50 else min(75, round(30 + (temp - 50) * 1.6))
            gs.append(
                GpuSample(
                    index=i,
                    name="NVIDIA GeForce RTX 4090",
                    uuid=f"GPU-00000000-0000-4000-8000-{4090 + i:012d}",
                    pci_bus_id=f"00000000:{(0x01, 0x21, 0x41, 0x61, 0x81, 0xA1, 0xC1, 0xE1)[i % 8]:02X}:00.0",
                    temperature_c=temp,
                    slowdown_temp_c=_SLOWDOWN_C,
                    shutdown_temp_c=_SHUTDOWN_C,
                    thermal_margin_c=_SLOWDOWN_C - temp,
                    power_w=round(power, 1),
                    power_limit_w=450,
                    default_power_limit_w=450,
                    min_power_limit_w=150,
                    fan_pct=fan,
                    sm_clock_mhz=sm,
                    mem_clock_mhz=mem_clk,
                    util_pct=util,
                    mem_used_mib=mem_used,
                    mem_total_mib=24564,
                    pcie_gen=gen,
                    pcie_width=16,
                    pcie_max_gen=4,
                    pcie_max_width=16,
                    throttle_reasons=reasons,
                    xid=(),
                )
            )
        if profile == "idle":
            cpu, load1, mem = 41 + rng.randint(0, 3), round(rng.uniform(0.2, 0.9), 2), 8.4
            disk_t = (39, 41)
        else:
            cpu = min(68, 55 + k // 20) + rng.randint(-1, 1)
            load1 = round(min(12.1, 4.0 + k * 0.05) + rng.uniform(-0.3, 0.3), 2)
            mem, disk_t = 41.0, (46, 48)
        host = HostSample(
            cpu_temp_c=cpu,
            load1=load1,
            mem_used_pct=mem,
            disks=(
                DiskSample(
                    "nvme0n1",
                    temp_c=disk_t[0],
                    wear_pct=3,
                    free_pct=60,
                    media_errors=0,
                    critical_warning=0,
                ),
                DiskSample(
                    "nvme1n1",
                    temp_c=disk_t[1],
                    wear_pct=3,
                    free_pct=60,
                    media_errors=0,
                    critical_warning=0,
                ),
            ),
        )
        yield Sample(t=t, gpus=tuple(gs), host=host, source=f"synthetic:{profile}", wall_time=t)


SYNTHETIC_HEADER = (
    "SYNTHETIC replay: generated by rigkit.monitor.record.synthetic_samples('{profile}', gpus={gpus}),"
    " not measured.\nValues follow published RTX 4090 behaviour; see src/rigkit/monitor/data/README.md."
)


def write_synthetic(
    path: str | Path, profile: Profile, *, gpus: int = 4, seconds: int = 240
) -> int:
    """Write a synthetic replay file, labelled as such in its first lines."""
    with Recorder(path, header=SYNTHETIC_HEADER.format(profile=profile, gpus=gpus)) as rec:
        for s in synthetic_samples(profile, gpus=gpus, seconds=seconds):
            rec.write(s)
        return rec.count
