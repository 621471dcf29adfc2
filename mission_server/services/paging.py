"""Keyset paging, shared by every list of the service (and so every list tool and resource).

A list has one total order: its sort key, then its primary key (``Keyset``). A page is read as
"the first ``limit`` rows after the last row of the previous page" in that order, never with an
offset, so:

- a row is never returned twice, nor skipped, however many rows are inserted while a client
  pages (the key of the rows already seen does not move);
- in an oldest-first list (events, scheduled calls), rows appended while paging appear on
  later pages;
- in a newest-first list (missions, runs, assistants, conversations, deliveries), rows
  inserted after the first page was read are newer than everything paged, so they are not
  seen: read the first page again to see them. (A row created in the very instant of rows
  already paged sorts among them by id, and may or may not be seen.)
- in a list in key order (phone numbers, do-not-call targets), a row inserted past the cursor
  is seen, one inserted before it is not.

The sort keys are immutable columns (creation times, ids, the event sequence), so an update
of a row cannot move it across pages either.

A cursor is opaque to clients: URL-safe base64 of the list's name, a digest of the filters the
first page was read with, and the last row's key. A cursor of another list, of the same list
with other filters, or a string that is not a cursor is refused with an error naming
``cursor`` (cursors are not signed: one edited to name another key just starts there). A page
size outside ``1..MAX_LIMIT`` is refused with an error naming ``limit``.

A known limit, on PostgreSQL only: the event sequence is allocated when a row is inserted, not
when its transaction commits. Two transactions appending events to the same run that commit in
the opposite order of their inserts could let a reader who is at the very end of the log step
past the slower one. (SQLite has one writer at a time, so its commit order is the sequence.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import Field
from sqlalchemy import and_, or_
from sqlalchemy.sql import ColumnElement

from mission_server.domain.validation import require_int
from mission_server.errors import ValidationError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

#: The description of every ``next_cursor`` output field.
NEXT_CURSOR_DOC = "null on the last page."
#: The description of every ``cursor`` and ``limit`` argument (``cursor`` omitted: the first
#: page, as its name says).
CURSOR_DOC = "A next_cursor, same filters."
LIMIT_DOC = f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}."

#: The kinds a key column may have, as the cursor stores them.
KeyKind = type[datetime] | type[str] | type[int]


def next_cursor_field() -> Any:
    """The ``next_cursor`` field of a page model (a new ``FieldInfo`` for each model). It has
    no default: every page says it, null on the last one (an optional field with no value
    would be left out of a tool result: ``mcp.schemas``)."""
    return Field(description=NEXT_CURSOR_DOC)


class Page(list[T]):
    """One page of a list: its rows (it is a ``list``), and ``next_cursor``, the cursor of the
    next page or ``None`` on the last one."""

    def __init__(self, items: Iterable[T] = (), next_cursor: str | None = None) -> None:
        super().__init__(items)
        self.next_cursor = next_cursor

    def map(self, fn: Callable[[T], R]) -> Page[R]:
        """The same page with ``fn`` applied to each row."""
        return Page((fn(item) for item in self), self.next_cursor)


def page_limit(value: Any, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The page size asked for: ``default`` when omitted.

    Raises:
        ValidationError: naming ``limit``, when it is not an integer in ``1..maximum``.
    """
    if value is None:
        return default
    return require_int(value, "limit", minimum=1, maximum=maximum)


def _scope_digest(scope: Sequence[Any]) -> str:
    text = json.dumps(list(scope), default=str, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _bad_cursor(name: str, cursor: Any) -> ValidationError:
    rule = f"must be a next_cursor from a previous page of {name}"
    return ValidationError("cursor", rule, cursor)


class Keyset:
    """The total order of one list and its cursors.

    ``columns`` are the sort key, ending with a unique column, each with the kind of its value
    (``datetime``, ``str`` or ``int``); the order is ascending or, with ``descending``,
    descending on every column. ``name`` is the list's name, as errors and cursors carry it.
    """

    def __init__(
        self,
        name: str,
        *columns: tuple[Any, KeyKind],
        descending: bool = False,
    ) -> None:
        if not columns:
            raise ValueError("a keyset needs at least one column")
        self.name = name
        self.columns = [column for column, _ in columns]
        self.kinds = [kind for _, kind in columns]
        self.descending = descending

    # ----------------------------------------------------------------- SQL

    def order_by(self) -> list[Any]:
        """The ``ORDER BY`` clauses of the order."""
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, key: Sequence[Any]) -> ColumnElement[bool]:
        """The condition "comes after the row with ``key``" in the order (a ``WHERE`` clause,
        or a ``HAVING`` clause when the columns are aggregates)."""
        terms = []
        for i, column in enumerate(self.columns):
            equal = [self.columns[j] == key[j] for j in range(i)]
            beyond = column < key[i] if self.descending else column > key[i]
            terms.append(and_(*equal, beyond))
        return or_(*terms)

    def apply(self, query: Any, cursor: str | None, scope: Sequence[Any] = ()) -> Any:
        """``query`` ordered, and (with a ``cursor``) past its row.

        Raises:
            ValidationError: naming ``cursor``, when it is not one of this list's with these
                filters.
        """
        query = query.order_by(*self.order_by())
        key = self.decode(cursor, scope)
        return query if key is None else query.where(self.after(key))

    # ----------------------------------------------------------------- cursors

    def encode(self, key: Sequence[Any], scope: Sequence[Any] = ()) -> str:
        values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
        text = json.dumps(
            {"l": self.name, "s": _scope_digest(scope), "k": values}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode(self, cursor: Any, scope: Sequence[Any] = ()) -> list[Any] | None:
        """The key a cursor carries (``None`` for no cursor: the first page).

        Raises:
            ValidationError: naming ``cursor``, when it is not one of this list's with these
                filters (the rule says which).
        """
        if cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str) or len(cursor) > 2000:
            raise _bad_cursor(self.name, cursor)
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw.decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise _bad_cursor(self.name, cursor) from None
        if not isinstance(data, dict) or not {"l", "s", "k"} <= data.keys():
            raise _bad_cursor(self.name, cursor)
        if data["l"] != self.name:
            raise ValidationError(
                "cursor",
                f"is a next_cursor of {shown_name(data['l'])}, not of {self.name}",
                cursor,
            )
        if data["s"] != _scope_digest(scope):
            raise ValidationError(
                "cursor",
                f"was issued for other filters: page {self.name} with the filters of the "
                "first page, or start again without a cursor",
                cursor,
            )
        values = data["k"]
        if not isinstance(values, list) or len(values) != len(self.kinds):
            raise _bad_cursor(self.name, cursor)
        key = [_value(kind, value) for kind, value in zip(self.kinds, values, strict=True)]
        if any(v is None for v in key):
            raise _bad_cursor(self.name, cursor)
        return key

    # ----------------------------------------------------------------- pages

    def page(
        self,
        rows: Sequence[T],
        limit: int,
        key_of: Callable[[T], Sequence[Any]],
        scope: Sequence[Any] = (),
    ) -> Page[T]:
        """The page of ``rows`` (read with ``limit + 1``: one more than the page tells
        whether there is a next page)."""
        chosen = list(rows[:limit])
        more = len(rows) > limit and chosen
        return Page(chosen, self.encode(key_of(chosen[-1]), scope) if more else None)


def shown_name(value: Any) -> str:
    return value if isinstance(value, str) and value.isidentifier() else "another list"


def _value(kind: KeyKind, value: Any) -> Any:
    """A cursor's key value as its column's kind, or ``None`` when it is not one."""
    if kind is datetime:
        if not isinstance(value, str):
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else None
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def every(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """Every row of a list, page after page: ``fetch(cursor)`` reads one page (for the
    service's own callers, which need a run's whole log or all its calls)."""
    rows: list[T] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        rows.extend(page)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor
