"""rigkit's modules import each other plainly: no sibling is treated as optional.

A fallback around an import of rigkit's own code (``importlib.import_module("rigkit...")``,
``try: from rigkit... except ImportError``, ``getattr(rigkit_module, "name", None)``) turns a bug
in that module into a silently missing feature: `plan` once dropped its capacity section that way.
This test walks the source tree (ast) and fails on any of the three between rigkit modules.

What stays allowed, because the other side is not rigkit's: a third-party module's optional parts
(``getattr(yaml, "CSafeLoader", yaml.SafeLoader)``, ``getattr(os, "O_DIRECT", 0)``), an optional
third-party package (``try: import pynvml except ImportError``, ``import_module("torch")``), and
``getattr`` on objects that are not modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}
_DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _rigkit_modules(src: Path) -> set[str]:
    """Dotted names of every module and package below ``src/rigkit``."""
    out = set()
    for path in (src / "rigkit").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.add(".".join(parts))
    return out


def _is_rigkit(name: str) -> bool:
    return name == "rigkit" or name.startswith(("rigkit.", "."))


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _const_prefix(node: ast.expr) -> str | None:
    """The literal start of a string argument ("rigkit.cli." of f"rigkit.cli.{name}")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    types = t.elts if isinstance(t, ast.Tuple) else [t] if t is not None else []
    return any((_dotted(x) or "").split(".")[-1] in _IMPORT_ERRORS for x in types)


def _imports_rigkit(stmts: list[ast.stmt]) -> bool:
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.ImportFrom) and (
                node.level > 0 or _is_rigkit(node.module or "")
            ):
                return True
            if isinstance(node, ast.Import) and any(_is_rigkit(a.name) for a in node.names):
                return True
    return False


def _module_aliases(tree: ast.Module, modules: set[str]) -> dict[str, str]:
    """Names in a file bound to a rigkit module (anywhere in it: flow-insensitive)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    root = a.name.split(".")[0]
                    out[a.asname or root] = a.name if a.asname else root
        elif isinstance(node, ast.ImportFrom) and _is_rigkit(node.module or "rigkit"):
            for a in node.names:
                full = f"{node.module}.{a.name}" if node.module else f"rigkit.{a.name}"
                if full in modules:
                    out[a.asname or a.name] = full
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            prefix = _const_prefix(node.value.args[0]) if node.value.args else None
            callee = _dotted(node.value.func) or ""
            if callee.split(".")[-1] in _DYNAMIC_IMPORTS and prefix and _is_rigkit(prefix):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = prefix
    return out


def fallbacks(source: str, file: str, modules: set[str]) -> list[str]:
    """``file:line: what`` for every optional-sibling construct in ``source``."""
    tree = ast.parse(source, file)
    aliases = _module_aliases(tree, modules)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = (_dotted(node.func) or "").split(".")[-1]
            first = node.args[0] if node.args else None
            if callee in _DYNAMIC_IMPORTS and first is not None:
                prefix = _const_prefix(first)
                if prefix is not None and _is_rigkit(prefix):
                    found.append(f"{file}:{node.lineno}: {callee}({prefix!r}...)")
            if callee in ("getattr", "hasattr") and first is not None:
                name = _dotted(first)
                root = name.split(".")[0] if name else None
                if name is not None and (name in aliases or (root in aliases and name in modules)):
                    found.append(f"{file}:{node.lineno}: {callee}() on rigkit module {name}")
        elif (
            isinstance(node, ast.Try)
            and _imports_rigkit(node.body)
            and any(_catches_import_error(h) for h in node.handlers)
        ):
            found.append(f"{file}:{node.lineno}: a rigkit import inside try/except ImportError")
    return found


def test_no_optional_sibling_in_rigkit() -> None:
    modules = _rigkit_modules(SRC)
    assert {"rigkit.spec", "rigkit.estimate.capacity", "rigkit.cli.plan"} <= modules
    found = []
    for path in sorted((SRC / "rigkit").rglob("*.py")):
        found += fallbacks(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)), modules)
    assert found == []


MODULES = {"rigkit", "rigkit.spec", "rigkit.estimate", "rigkit.estimate.capacity"}


def test_the_walk_finds_each_kind_of_fallback() -> None:
    cases = {
        # the shapes rigkit had: design/plan.py, cli/main.py, monitor/agent.py, bench/serve.py
        'cap = importlib.import_module("rigkit.estimate.capacity")\n': "import_module",
        'importlib.import_module(f"rigkit.cli.{name}").register(root)\n': "import_module",
        "try:\n    from rigkit.spec import load_build\nexcept ImportError:\n    pass\n": "try",
        "try:\n    import rigkit.spec\nexcept (ValueError, ModuleNotFoundError):\n    pass\n": "try",
        "try:\n    from . import spec\nexcept ImportError:\n    pass\n": "try",
        'from rigkit import spec as spec_mod\nfn = getattr(spec_mod, "load_build", None)\n': "getattr",
        'm = import_module("rigkit.spec")\nf = getattr(m, "load", None)\n': "import_module, getattr",
        'import rigkit.estimate.capacity as c\nhasattr(c, "plan_capacity")\n': "hasattr",
        'from rigkit.estimate import capacity\ngetattr(capacity, "roofline_png", None)\n': "getattr",
    }
    for source, kind in cases.items():
        found = fallbacks(source, "x.py", MODULES)
        kinds = kind.split(", ")
        assert len(found) == len(kinds), (source, found)
        assert all(k in f for k, f in zip(kinds, found, strict=True)), (source, found)


def test_third_party_fallbacks_and_plain_objects_are_allowed() -> None:
    allowed = (
        "import yaml\nLOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\n"
        "import os\nflags = getattr(os, 'O_DIRECT', 0)\n"
        "try:\n    import pynvml\nexcept ImportError:\n    pynvml = None\n"
        "torch = importlib.import_module('torch')\n"
        "from rigkit.spec import load_build\n"
        "build = load_build('x.yaml')\nname = getattr(build, 'name', None)\n"
        "try:\n    from rigkit.spec import load_build\nexcept ValueError:\n    pass\n"
    )
    assert fallbacks(allowed, "x.py", MODULES) == []
