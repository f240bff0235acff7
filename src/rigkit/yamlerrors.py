"""YAML syntax errors as one line a person can act on: ``FILE:LINE: not valid YAML: PROBLEM``.

PyYAML's own message spans several lines with a picture of the spot; every reader of YAML input
(specs, catalog data, rules files, profiles) reports through :func:`yaml_problem` instead.
"""

from __future__ import annotations

import yaml


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, ``not valid YAML: PROBLEM (CONTEXT that starts on line N)``)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None, "not valid YAML: " + " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join((exc.problem or exc.context or "malformed YAML").split())
    if exc.problem and exc.context and exc.context_mark is not None:
        problem += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    return (mark.line + 1 if mark is not None else None), f"not valid YAML: {problem}"


def yaml_error_text(where: str, exc: yaml.YAMLError) -> str:
    """``WHERE:LINE: not valid YAML: PROBLEM`` (``WHERE: ...`` when the line is not known)."""
    line, text = yaml_problem(exc)
    return f"{where}:{line}: {text}" if line is not None else f"{where}: {text}"
