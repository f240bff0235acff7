"""Errors raised by rigkit's library, with messages written for people.

The CLI turns every :class:`RigkitError` into one line on stderr and exit status 2.
"""

from __future__ import annotations


class RigkitError(Exception):
    """Base class: the input or environment cannot be used. ``str(err)`` is the user message."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class SpecError(RigkitError):
    """A spec file is malformed or inconsistent. Carries file, line and field when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = ""
        if file:
            where = file
            if line is not None:
                where += f":{line}"
            where += ": "
        if field:
            where += f"{field}: "
        super().__init__(where + message, hint=hint)
        #: every problem found in the same run, this one first (see :meth:`all_of`)
        self.problems: tuple[SpecError, ...] = (self,)

    @staticmethod
    def all_of(errors: list[SpecError]) -> SpecError:
        """One error that reports every one of ``errors`` (at least one): the first's file, line,
        field and hint, and ``str()`` one line per problem, so a spec with four mistakes takes one
        run to fix, not four. The CLI prints each line as its own ``rigkit: error:`` line."""
        first = errors[0]
        if len(errors) == 1:
            return first
        combined = SpecError(first.message, hint=first.hint)
        combined.file, combined.line, combined.field = first.file, first.line, first.field
        combined.problems = tuple(p for e in errors for p in e.problems)
        return combined

    def __str__(self) -> str:
        if len(self.problems) > 1:
            return "\n".join(RigkitError.__str__(p) for p in self.problems)
        return super().__str__()


class CatalogError(RigkitError):
    """The catalog data is invalid, or an id is not in it."""


class UnknownIdError(CatalogError):
    """An id is not in the catalog; the hint lists the closest ids."""


class EstimateError(RigkitError):
    """An estimate cannot be evaluated for this configuration."""


class MonitorError(RigkitError):
    """The monitor cannot start or read its source/store."""


class BenchError(RigkitError):
    """A benchmark or QA run cannot be set up."""
