"""The errors of item operations; each message says what to fix."""

from __future__ import annotations


class ReelrouteError(Exception):
    """Base class of reelroute's own errors."""


class InvalidInput(ReelrouteError):
    """Input was refused; nothing was written. `problems` lists every reason, one per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class NotFound(ReelrouteError):
    """The item, group or photo does not exist."""


class InvalidTransition(ReelrouteError):
    """The item is not in a state that allows this operation (e.g. retry a pending item)."""


class StaleAttempt(ReelrouteError):
    """The caller's attempt no longer holds the item: another attempt claimed it, or it ended.

    The write was not applied; the caller must stop working on the item.
    """


class Conflict(ReelrouteError):
    """What was asked for clashes with what exists (a group of that name, a concurrent write
    that got there first). Nothing was written."""


class DatabaseUnavailable(ReelrouteError):
    """The database cannot be reached or refused the connection; nothing is lost, try again."""
