"""Input files a command reads (specs, profiles, rules, catalogs, batch cases), read safely.

A path on the command line can name anything: ``/dev/zero`` never ends, a FIFO with no writer
blocks the reader forever, a directory or a binary file is not text. :func:`read_text_file`
reads only regular files, up to a size cap, as UTF-8 without NUL bytes, and says in one line what
is wrong otherwise. :func:`read_stream_bytes` caps a stream (standard input, a pipe) the same way.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, Final

from rigkit.errors import RigkitError

#: largest spec, profile, rules or catalog file read (the largest packaged file is 24 KB)
MAX_TEXT_BYTES: Final = 4 * 1024 * 1024


class UnreadableInput(RigkitError):
    """An input file cannot be used. ``reason`` is the short text after the path."""

    def __init__(self, path: str, reason: str, *, hint: str | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}", hint=hint)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB"


def read_file_bytes(path: str | os.PathLike[str], *, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), or :class:`UnreadableInput`.

    The file is opened without blocking (a FIFO with no writer would block ``open`` itself) and
    its type checked on the open descriptor, so a path swapped between check and read is caught.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableInput(name, "no such file") from None
    except OSError as exc:  # no permission, a dangling link, a name too long
        raise UnreadableInput(name, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableInput(name, f"{_kind(st.st_mode)}, not a file", hint="give a file")
        if st.st_size > limit:
            raise UnreadableInput(
                name, f"{st.st_size:,} bytes, more than the {_mib(limit)} this input may have"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)  # a file still growing stops at the cap
    except OSError as exc:
        raise UnreadableInput(name, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableInput(name, f"more than the {_mib(limit)} this input may have")
    return data


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text without NUL bytes, or :class:`UnreadableInput` naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableInput(
            f"{name}:{line}", "not a text file (not UTF-8)", hint="save it as UTF-8 text"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise UnreadableInput(f"{name}:{line}", "not a text file (a NUL byte)")
    return text


def read_text_file(path: str | os.PathLike[str], *, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_file_bytes`)."""
    return decode_text(read_file_bytes(path, limit=limit), os.fspath(path))


def read_stream_bytes(stream: BinaryIO, name: str, *, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream`` (standard input, a pipe); more is refused."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UnreadableInput(
            name, f"more than the {_mib(limit)} this input may have", hint="split the input"
        )
    return data


def is_stream(path: str | os.PathLike[str]) -> bool:
    """True for a pipe (``<(cmd)``, a FIFO): read as a stream, without a size known ahead."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


__all__ = [
    "MAX_TEXT_BYTES",
    "UnreadableInput",
    "decode_text",
    "is_stream",
    "read_file_bytes",
    "read_stream_bytes",
    "read_text_file",
]
