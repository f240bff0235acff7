"""Helpers for the provision tests: the project's YAML read back as Ansible would see it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
REF = ROOT / "examples" / "reference-4x4090.yaml"
BIN = Path(sys.executable).parent


class UnsafeLoader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's ``!unsafe`` tag as the plain string it marks."""


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


UnsafeLoader.add_constructor("!unsafe", _unsafe)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=UnsafeLoader)


def ansible_tool(name: str) -> Path:
    """An Ansible command from this venv; the test is skipped (with the reason) without it."""
    tool = BIN / name
    if not tool.exists():
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return tool


def ansible_env(tmp: Path) -> dict[str, str]:
    """Environment for ansible runs: this venv first on PATH, a private temp and no colour."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp / "ansible-local")
    env["ANSIBLE_REMOTE_TEMP"] = str(tmp / "ansible-remote")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["NO_COLOR"] = "1"
    env["ANSIBLE_HOME"] = str(tmp / "ansible-home")
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "0"
    # the local "remote" Python: this one (interpreter discovery may find a pyenv shim)
    env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    return env


def which(name: str) -> str | None:
    return shutil.which(name)
