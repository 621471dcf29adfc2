"""Exceptions raised by the system of record."""

from __future__ import annotations


class StateError(Exception):
    """Base class for errors raised by ``state``."""


class NotFound(StateError, LookupError):
    """No record with that id exists."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class IllegalTransition(StateError):
    """A status change that the record's state machine does not allow."""

    def __init__(self, kind: str, key: object, current: str, requested: str, allowed: set[str]):
        self.kind = kind
        self.current = current
        self.requested = requested
        allowed_text = ", ".join(sorted(allowed)) if allowed else "none (terminal status)"
        super().__init__(
            f"{kind} {key!r} cannot move from {current!r} to {requested!r}; "
            f"allowed from {current!r}: {allowed_text}"
        )


class DatabaseUnavailable(StateError):
    """The database cannot be reached or opened. The message names it without its password
    and gives the driver's reason in one line."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(f"cannot reach the database at {where}: {reason}")
