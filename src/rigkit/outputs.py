"""Output paths a command is about to write, checked before any work is done.

A command never replaces a file that is already there unless it was given ``--force``: a report
directory may hold last month's results, a profile may be the only copy of a calibration. It never
writes through a symbolic link at a target name: the link may point anywhere (another user's
file, a system file), far outside the directory the user named. With ``--force`` the link itself
is replaced (removed here, so the command writes a plain file in its place); without, it is
refused like any file already there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from rigkit.errors import RigkitError


def check_out_dir(out: Path, names: Iterable[str], *, force: bool, option: str = "--out") -> Path:
    """Refuse ``out`` when it is not a directory, or when it already holds one of ``names`` and
    ``force`` is not set. The directory itself need not exist yet. Returns ``out``."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise RigkitError(f"{option} {out} is a file, not a directory", hint="give a directory")
    names = list(names)
    if force:
        _drop_links([out / name for name in names])
        return out
    taken = [name for name in names if os.path.lexists(out / name)]
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise RigkitError(
            f"{option} {out} already has {shown}",
            hint=f"pass --force to replace them, or choose another {option}",
        )
    return out


def check_file_target(path: Path, option: str) -> Path:
    """Refuse a file path that cannot be written: a directory, or a file in a directory that does
    not exist. Checked before a long run, so its results are not lost at the end."""
    path = path.expanduser()
    _refuse_links([path], option)
    if path.is_dir():
        raise RigkitError(f"{option} {path} is a directory", hint="give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise RigkitError(
            f"cannot write {option} {path}: directory {parent} does not exist",
            hint="create the directory first",
        )
    return path


def check_out_file(path: Path, *, force: bool, option: str = "--out") -> Path:
    """Refuse a file path that :func:`check_file_target` refuses, or one that exists when
    ``force`` is not set."""
    if force:
        _drop_links([path.expanduser()])
    path = check_file_target(path, option)
    if not force and os.path.lexists(path):
        raise RigkitError(
            f"{option} {path} already exists",
            hint=f"pass --force to replace it, or choose another {option}",
        )
    return path


def replace_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a new file beside ``path`` with ``write(fh)`` and rename it over ``path``: a symlink
    at ``path`` is replaced, never followed, a reader never sees half a file, and on an error the
    temporary file is removed and ``path`` stays as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _drop_links(paths: Iterable[Path]) -> None:
    """Remove the symbolic links among ``paths`` (not what they point to): ``--force`` replaces
    the link with the command's own file instead of writing through it."""
    for path in paths:
        if path.is_symlink():
            path.unlink()


def _refuse_links(paths: Iterable[Path], option: str) -> None:
    """Refuse a target name that is a symbolic link (dangling or not): writing would follow it."""
    for path in paths:
        if path.is_symlink():
            raise RigkitError(
                f"{option}: {path} is a symbolic link (to {os.readlink(path)}); "
                "rigkit does not write through links",
                hint="remove the link, or choose another path",
            )
