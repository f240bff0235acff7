"""`rigkit qa`: acceptance checks of a built machine against its spec.

Each check family (``checks/``) reads its sources through a :class:`QaContext` and returns
:class:`CheckResult` objects; :func:`run_qa` runs them into a :class:`QaReport`; ``baseline`` stores
and compares runs; ``report`` writes the Markdown/HTML certification report.
"""

from __future__ import annotations

from rigkit.bench.qa.result import CheckResult, CommandResult, QaContext, Status
from rigkit.bench.qa.runner import CHECKS, QaReport, parse_checks, run_qa

__all__ = [
    "CHECKS",
    "CheckResult",
    "CommandResult",
    "QaContext",
    "QaReport",
    "Status",
    "parse_checks",
    "run_qa",
]
