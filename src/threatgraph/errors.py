"""The error hierarchy. Every error carries a user-facing message; the CLI maps classes to exit codes.

>>> err = InputError("model.ttl: line 3: bad syntax", hint="fix the Turtle")
>>> str(err)
'model.ttl: line 3: bad syntax\\n  hint: fix the Turtle'
>>> err.exit_code
2
"""

from __future__ import annotations


class ThreatgraphError(Exception):
    """Base class. ``str()`` is a complete user-facing message (what, where, and how to fix)."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(ThreatgraphError):
    """Bad user input: unreadable or malformed files, unknown IDs, invalid options (exit 2)."""

    exit_code = 2


class RuleError(ThreatgraphError):
    """A derivation rule or named query is broken (bad header, bad SPARQL). A bug in the rule set (exit 3)."""

    exit_code = 3


class StoreError(ThreatgraphError):
    """The store (embedded or remote) failed or refused an operation (exit 3)."""

    exit_code = 3


class ImportFailed(InputError):
    """A knowledge import failed; the store is left as it was (exit 2)."""


class MissingDependency(InputError):
    """An optional feature's dependency (an extra, a Java runtime) is not installed (exit 2)."""
