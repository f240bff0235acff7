"""Parse the packaged YAML data files once per content, not once per run.

Parsing the catalog's YAML is most of the time a short command such as ``rigkit plan`` spends on
its data. The parsed result (plain dicts, lists, strings and numbers) is kept as a ``marshal``
file in the user's cache directory, keyed by a hash of the YAML text, so an edited file is parsed
again and a stale entry can never be read. Anything the cache cannot do (no writable cache
directory, a value marshal cannot store, a damaged entry) falls back to parsing the text.

``RIGKIT_NO_CACHE=1`` turns the cache off; ``RIGKIT_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from rigkit.yamlerrors import load_checked

# marshal's format may change between Python versions: the version is part of the key
_TAG = f"py{sys.version_info[0]}{sys.version_info[1]}-m{marshal.version}-yaml{yaml.__version__}-checked"


def cache_dir() -> Path | None:
    """Where parsed data files are kept, or None when caching is off."""
    if os.environ.get("RIGKIT_NO_CACHE"):
        return None
    explicit = os.environ.get("RIGKIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rigkit" / "yaml"


def load_yaml(text: str) -> Any:
    """:func:`rigkit.yamlerrors.load_checked` of ``text``, from the cache when this exact text was
    parsed before.

    Raises ``yaml.YAMLError`` for text that is not valid YAML or that the checks refuse.
    """
    folder = cache_dir()
    if folder is None:
        return load_checked(text)
    key = hashlib.blake2b(f"{_TAG}\n{text}".encode(), digest_size=16).hexdigest()
    path = folder / f"{key}.marshal"
    try:
        return marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        pass  # not cached yet (or unreadable): parse it
    data = load_checked(text)
    try:
        blob = marshal.dumps(data)
    except ValueError:  # e.g. a YAML date: keep parsing this file each time
        return data
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)  # atomic: a parallel reader sees the old state or the whole file
    except OSError:
        pass  # read-only home or full disk: the parse above still stands
    return data
