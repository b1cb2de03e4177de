"""One exception root for everything a user can be told about.

Every error that reaches a user is a `RunbookError` subclass with a message written for
a person; the CLI prints it and exits with the class's `exit_code`, never a traceback.
"""

from __future__ import annotations


class RunbookError(Exception):
    """Root of every error runbook reports to a user."""

    exit_code = 1


class UsageError(RunbookError):
    """The command was called wrongly (unknown kind, missing catalog, bad option)."""

    exit_code = 2


class DocumentError(RunbookError):
    """One or more documents are invalid; carries every problem found, not just the first (under
    `heading`, a line saying what could not be done because of them, when given)."""

    exit_code = 1

    def __init__(self, problems, heading: str = ""):
        self.problems = list(problems)
        lines = [p.format() for p in self.problems]
        super().__init__("\n".join([heading, *lines] if heading else lines))


class RecordError(RunbookError):
    """An incident's record is too damaged to load (its snapshot, its events or its opened event gone)."""

    exit_code = 1


class NotFoundError(RunbookError):
    """A document, incident or other named thing does not exist."""

    exit_code = 3


class CommandError(RunbookError):
    """The command does not fit the incident's current state (already acknowledged, wrong step...)."""

    exit_code = 5


class ReasonNeeded(CommandError):
    """A command that must say why was given no reason (lowering the severity)."""


class PluginError(RunbookError):
    """No plugin could do what was asked; carries each plugin's failure."""

    exit_code = 4

    def __init__(self, message: str, failures=()):
        self.failures = list(failures)
        details = "".join(f"\n  {f.format()}" for f in self.failures)
        super().__init__(message + details)
