"""XID errors from the kernel log (``NVRM: Xid (PCI:0000:01:00): 79, pid=..., ...``).

Some XIDs reach only the kernel log, not NVML's event set. :class:`KernelLogXids` reads new lines
since its last poll from ``/dev/kmsg`` (non-blocking; needs root or ``kernel.dmesg_restrict=0``),
from ``journalctl -k -f`` (a long-running child process read without blocking; for users in the
``systemd-journal`` or ``adm`` group), from a text file that grows, or from lines handed to
:meth:`feed`. :func:`open_kernel_log` picks /dev/kmsg, then journalctl. :func:`bus_key` maps the PCI address in the line to the GPU's
NVML bus id.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

XID_RE = re.compile(
    r"NVRM: Xid \(PCI:(?P<bus>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)\): (?P<xid>\d+)"
)


@dataclass(frozen=True)
class XidRecord:
    """One XID line: the GPU's PCI address (as written) and the XID code."""

    bus_id: str
    xid: int
    line: str


def bus_key(bus_id: str) -> tuple[int, int, int]:
    """(domain, bus, device) of a PCI address: ``0000:01:00`` (kernel log) and
    ``00000000:01:00.0`` (NVML) give the same key."""
    parts = bus_id.split(".")[0].split(":")
    if len(parts) == 2:
        parts = ["0", *parts]
    if len(parts) != 3:
        raise ValueError(f"not a PCI address: {bus_id!r}")
    return int(parts[0], 16), int(parts[1], 16), int(parts[2], 16)


def parse_xid_lines(lines: Iterable[str]) -> list[XidRecord]:
    """XID records in ``lines`` (other lines are ignored)."""
    out = []
    for line in lines:
        m = XID_RE.search(line)
        if m:
            out.append(XidRecord(m.group("bus"), int(m.group("xid")), line.rstrip("\n")))
    return out


class KernelLogXids:
    """New XID lines since the last :meth:`poll`.

    ``path`` None reads ``/dev/kmsg`` starting at its end (only new messages). A regular file is
    tailed from its end at start-up unless ``from_start=True``. Unreadable logs disable the reader
    with one warning (XIDs then come from NVML events only).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        from_start: bool = False,
        command: list[str] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else Path("/dev/kmsg")
        self.enabled = True
        self._fd: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pos = 0
        self._partial = ""
        self._kmsg = command is None and (path is None or str(path) == "/dev/kmsg")
        try:
            if command is not None:
                self.path = Path(command[0])
                self._proc = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                )
                assert self._proc.stdout is not None
                self._fd = self._proc.stdout.fileno()
                flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                fcntl.fcntl(self._fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            elif self._kmsg:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
                os.lseek(self._fd, 0, os.SEEK_END)
            else:
                self._pos = 0 if from_start else self.path.stat().st_size
        except OSError as err:
            log.warning(
                "kernel log %s not readable (%s): XIDs from NVML only", self.path, err.strerror
            )
            self.enabled = False

    def feed(self, lines: Iterable[str]) -> list[XidRecord]:
        """Parse lines obtained elsewhere (e.g. from journalctl)."""
        return parse_xid_lines(lines)

    def poll(self) -> list[XidRecord]:
        if not self.enabled:
            return []
        if self._proc is not None:
            return parse_xid_lines(self._read_pipe())
        if self._kmsg:
            return parse_xid_lines(self._read_kmsg())
        return parse_xid_lines(self._read_file())

    def _read_pipe(self) -> list[str]:
        assert self._fd is not None and self._proc is not None
        chunks = []
        for _ in range(1000):  # bounded
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not data:  # the child exited
                if self._proc.poll() is not None:
                    log.warning(
                        "%s exited (status %s): XIDs from NVML only",
                        self.path,
                        self._proc.returncode,
                    )
                    self.enabled = False
                break
            chunks.append(data)
        text = self._partial + b"".join(chunks).decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines

    def _read_kmsg(self) -> list[str]:
        assert self._fd is not None
        lines = []
        for _ in range(10000):  # bounded
            try:
                record = os.read(self._fd, 8192)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EPIPE:  # overwritten before we read it; continue
                    continue
                log.warning("reading %s failed (%s); XIDs from NVML only", self.path, err.strerror)
                self.enabled = False
                break
            if not record:
                break
            # "<prio>,<seq>,<usec>,<flags>;message"
            text = record.decode("utf-8", "replace")
            lines.append(text.split(";", 1)[1] if ";" in text else text)
        return lines

    def _read_file(self) -> list[str]:
        try:
            size = self.path.stat().st_size
            if size < self._pos:  # truncated / rotated
                self._pos = 0
            with self.path.open("rb") as fh:
                fh.seek(self._pos)
                data = fh.read()
                self._pos = fh.tell()
        except OSError as err:
            log.warning("reading %s failed (%s)", self.path, err.strerror)
            return []
        text = self._partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        return lines

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            assert self._proc.stdout is not None
            self._proc.stdout.close()
            self._proc = None
            self._fd = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


JOURNALCTL_ARGS = ["-k", "-f", "-n", "0", "-o", "cat", "--no-pager"]


def open_kernel_log() -> KernelLogXids | None:
    """/dev/kmsg when readable, else ``journalctl -k -f``, else None (XIDs from NVML only)."""
    reader = KernelLogXids()
    if reader.enabled:
        return reader
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return None
    reader = KernelLogXids(command=[journalctl, *JOURNALCTL_ARGS])
    return reader if reader.enabled else None
