"""The design-rule registry: small pure functions ``(build) -> Iterator[Finding]`` with stable codes.

A rule that compares the build with the catalog (the cheapest comparable cloud instance, a UPS
that fits the circuit) takes it as a second argument, ``(build, catalog)``: :func:`run_rules`
passes the catalog it is given, so a test hands it a small one. A rule is registered with
:func:`rule`; codes are never reused and the registry refuses duplicates. The docstring of each
rule says what it checks, why, and how to fix it (``rigkit rules`` prints it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.loader import Catalog


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


CATEGORIES = (
    "pcie",
    "power",
    "psu",
    "circuit",
    "thermal",
    "hvac",
    "ups",
    "clearance",
    "memory",
    "compat",
    "interconnect",
    "storage",
    "network",
    "cost",
)


@dataclass(frozen=True)
class Finding:
    rule: str  # code, e.g. PWR001
    category: str
    severity: Severity
    message: str  # with the numbers that triggered it
    fix: str  # a concrete remedy
    data: dict[str, Any] = field(default_factory=dict)  # the numbers, for JSON and tests

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "data": dict(self.data),
        }


#: ``(build) -> findings``, or ``(build, catalog) -> findings`` for a rule that reads the catalog
RuleFunc = Callable[..., Iterator[Finding]]
_F = TypeVar("_F", bound=RuleFunc)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    category: str
    severity: Severity  # default severity of its findings
    func: RuleFunc
    reads_catalog: bool = False  # func takes (build, catalog)

    def check(self, build: Build, catalog: Catalog) -> Iterator[Finding]:
        """The rule's findings on ``build`` (with ``catalog`` when it compares with it)."""
        return self.func(build, catalog) if self.reads_catalog else self.func(build)

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "")

    def finding(
        self,
        message: str,
        fix: str,
        *,
        severity: Severity | None = None,
        **data: Any,
    ) -> Finding:
        return Finding(self.code, self.category, severity or self.severity, message, fix, data)


_REGISTRY: dict[str, Rule] = {}


def rule(code: str, name: str, category: str, severity: Severity) -> Callable[[_F], _F]:
    """Register a rule. Inside it, build findings with ``RULES[code].finding(...)`` or
    :func:`finding`."""
    if category not in CATEGORIES:
        raise ValueError(f"rule {code}: unknown category {category!r}")

    def deco(func: _F) -> _F:
        if code in _REGISTRY:
            raise ValueError(f"duplicate rule code {code}")
        params = list(inspect.signature(func).parameters)
        if params not in (["build"], ["build", "catalog"]):
            raise ValueError(f"rule {code}: takes (build) or (build, catalog), not {params}")
        _REGISTRY[code] = Rule(code, name, category, severity, func, len(params) == 2)
        return func

    return deco


def finding(
    code: str, message: str, fix: str, *, severity: Severity | None = None, **data: Any
) -> Finding:
    """Make a finding for a registered rule ``code``."""
    return _REGISTRY[code].finding(message, fix, severity=severity, **data)


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code (imports the rule modules once)."""
    import rigkit.design.rules  # noqa: F401  (registers the rules)

    return sorted(_REGISTRY.values(), key=lambda r: r.code)


def run_rules(build: Build, catalog: Catalog) -> list[Finding]:
    """Run every rule on the build (those that compare with it, on ``catalog``); findings sorted
    by severity, then code."""
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    out: list[Finding] = []
    for r in all_rules():
        out.extend(r.check(build, catalog))
    return sorted(out, key=lambda f: (order[f.severity], f.rule))
