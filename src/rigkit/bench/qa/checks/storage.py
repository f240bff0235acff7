"""Sequential read throughput of storage, against the spec's drives (RAID 0 volumes summed).

fio (JSON output) when it is installed; otherwise a reader in Python that opens the target with
O_DIRECT and reads into page-aligned (mmap-allocated) buffers from several threads. Where the file
system refuses O_DIRECT (tmpfs, some FUSE and network file systems) it reads through the page cache
after dropping the file's pages with posix_fadvise(DONTNEED). The result says which was used.

The target is a directory (a test file is written there and removed afterwards), or an existing
file or block device, which is only read.
"""

from __future__ import annotations

import concurrent.futures
import errno
import json
import mmap
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rigkit.bench.qa.result import CheckResult, QaContext, QaInputError, Value, grade, ratio_of
from rigkit.build import Build
from rigkit.errors import BenchError

CATEGORY = "storage"

BLOCK_BYTES = 4 << 20  # 4 MiB per read
THREADS = 4  # reads in flight
READ_FAIL_BELOW = 0.50
READ_WARN_BELOW = 0.80

METHOD_FIO = "fio"
METHOD_DIRECT = "direct-io"
METHOD_BUFFERED = "buffered+fadvise-dontneed"


@dataclass(frozen=True)
class ReadMeasurement:
    bytes_read: int
    seconds: float
    method: str
    note: str = ""

    @property
    def mb_s(self) -> float:
        return self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _open_direct(path: Path) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))


def _target_size(fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISBLK(st.st_mode):
        return os.lseek(fd, 0, os.SEEK_END)
    return st.st_size


def _read_all(fd: int, size: int, block: int, threads: int) -> int:
    """Read [0, size) in ``block`` pieces from ``threads`` workers; returns bytes read."""
    offsets = list(range(0, size, block))

    def worker(first: int) -> int:
        buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
        done = 0
        try:
            for off in offsets[first::threads]:
                n = os.preadv(fd, [buf], off)
                if n <= 0:
                    break
                done += n
        finally:
            buf.close()
        return done

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(worker, range(threads)))


def read_sequential(
    path: Path,
    limit_bytes: int,
    *,
    allow_direct: bool = True,
    block: int = BLOCK_BYTES,
    threads: int = THREADS,
) -> ReadMeasurement:
    """Read up to ``limit_bytes`` of ``path`` from the start and time it."""
    fd = -1
    method = METHOD_DIRECT
    note = ""
    if allow_direct:
        try:
            fd = _open_direct(path)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                raise
            note = f"O_DIRECT refused ({os.strerror(err.errno)})"
    else:
        note = "O_DIRECT not used"
    try:
        if fd >= 0:
            size = min(limit_bytes, _target_size(fd)) // block * block
            if size == 0:
                raise QaInputError(f"{path} is smaller than one {block >> 20} MiB read")
            try:
                start = time.perf_counter()
                done = _read_all(fd, size, block, threads)
                return ReadMeasurement(done, time.perf_counter() - start, method)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                note = f"O_DIRECT read refused ({os.strerror(err.errno)})"
                os.close(fd)
                fd = -1
        method = METHOD_BUFFERED
        fd = os.open(path, os.O_RDONLY)
        size = min(limit_bytes, _target_size(fd))
        if size == 0:
            raise QaInputError(f"{path} is empty")
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        start = time.perf_counter()
        done = _read_all(fd, size, block, threads)
        return ReadMeasurement(done, time.perf_counter() - start, method, note)
    finally:
        if fd >= 0:
            os.close(fd)


def write_test_file(directory: Path, size_bytes: int, block: int = BLOCK_BYTES) -> Path:
    """A file of incompressible data, flushed to the device, whose size is a multiple of block."""
    size_bytes = max(block, size_bytes // block * block)
    fd, name = tempfile.mkstemp(prefix="rigkit-qa-", suffix=".bin", dir=directory)
    try:
        for _ in range(size_bytes // block):
            os.write(fd, os.urandom(block))
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def parse_fio(text: str) -> float:
    """Read bandwidth in bytes/s from ``fio --output-format=json``."""
    start = text.find("{")
    if start < 0:
        raise ValueError("fio printed no JSON")
    data = json.loads(text[start:])
    read = data["jobs"][0]["read"]
    if "bw_bytes" in read:
        return float(read["bw_bytes"])
    return float(read["bw"]) * 1024.0  # KiB/s in older fio


def read_with_fio(ctx: QaContext, path: Path, limit_bytes: int) -> ReadMeasurement:
    argv = [
        "fio",
        "--name=rigkit-seqread",
        f"--filename={path}",
        "--rw=read",
        "--bs=1M",
        "--direct=1",
        "--ioengine=libaio",
        "--iodepth=32",
        f"--size={limit_bytes}",
        "--readonly",
        "--output-format=json",
    ]
    result = ctx.run(argv, 600.0)
    if result.returncode != 0:
        raise BenchError(f"fio failed: {result.stderr.strip()[-300:] or result.stdout[-300:]}")
    bw = parse_fio(result.stdout)
    seconds = limit_bytes / bw if bw > 0 else 0.0
    return ReadMeasurement(limit_bytes, seconds, METHOD_FIO)


def predicted_read(build: Build) -> tuple[float | None, str]:
    """Sequential read the spec promises (MB/s) and for which volume: the largest RAID 0 group
    (sum of its drives), else the drive with the models role, else the first drive."""
    if not build.drives:
        return None, ""
    groups: dict[str, list[float]] = {}
    for d in build.drives:
        if d.raid_group:
            groups.setdefault(d.raid_group, []).append(d.drive.seq_read_mb_s)
    if groups:
        name, reads = max(groups.items(), key=lambda kv: sum(kv[1]))
        return sum(reads), f"RAID 0 '{name}' ({len(reads)} drives)"
    drive = next((d for d in build.drives if d.role == "models"), build.drives[0])
    return drive.drive.seq_read_mb_s, f"{drive.drive.name} ({drive.role})"


def run(ctx: QaContext) -> list[CheckResult]:
    name = "storage-seq-read"
    target = ctx.storage_target
    if not target.exists():
        raise QaInputError(f"storage path {target} does not exist")
    limit = ctx.storage_mb * (1 << 20)
    made: Path | None = None
    try:
        if target.is_dir():
            made = write_test_file(target, limit)
            read_path = made
            limit = made.stat().st_size  # whole blocks only
        else:
            read_path = target
        fio_note = ""
        if ctx.which("fio") is not None:
            try:
                m = read_with_fio(ctx, read_path, limit)
            except (BenchError, ValueError, KeyError, IndexError) as err:
                fio_note = f"fio unusable ({err}); "
                m = read_sequential(read_path, limit)
        else:
            m = read_sequential(read_path, limit)
    except PermissionError as err:
        raise QaInputError(
            f"cannot use storage path {target}: permission denied",
            hint="reading a block device needs root; or give a directory you can write to",
        ) from err
    finally:
        if made is not None:
            made.unlink(missing_ok=True)
    method_text = {
        METHOD_FIO: "fio, direct I/O, 1 MiB blocks, queue depth 32",
        METHOD_DIRECT: f"O_DIRECT, {BLOCK_BYTES >> 20} MiB reads, {THREADS} in flight",
        METHOD_BUFFERED: "buffered reads after posix_fadvise(DONTNEED)",
    }[m.method]
    note = fio_note + (f"{m.note}; " if m.note else "")
    measured: dict[str, Value] = {
        "read_mb_s": round(m.mb_s, 1),
        "bytes": m.bytes_read,
        "seconds": round(m.seconds, 4),
        "method": m.method,
        "path": str(target),
    }
    if ctx.storage_path is None:
        note += f"no --storage-path given, measured the temp directory {target}; "
    want, volume = predicted_read(ctx.build) if ctx.build is not None else (None, "")
    ratio = ratio_of(m.mb_s, want)
    status = grade(ratio, READ_FAIL_BELOW, READ_WARN_BELOW)
    if ratio is None:
        reason = f"{note}{m.mb_s:.0f} MB/s ({method_text}); no spec drive to compare with"
    else:
        reason = (
            f"{note}{m.mb_s:.0f} MB/s, {ratio:.0%} of {want:g} MB/s for {volume} ({method_text})"
        )
    if status == "fail" and (m.method == METHOD_BUFFERED or ctx.storage_path is None):
        # a page-cache read is not a device measurement, and the temp directory need not be on
        # the volume the spec's figure is for
        status = "warn"
    return [
        CheckResult(
            name,
            CATEGORY,
            status,
            reason,
            measured,
            {"volume": volume} if volume else {},
            {"read_mb_s": want},
            ratio,
            "read_mb_s",
            ("read_mb_s",),
        )
    ]
