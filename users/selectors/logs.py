"""What the security log and the access log read alike: keyset pages of an append-only log,
newest first by (`at`, `id`), and every row of a filter in keyset chunks for the CSV."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class LogPage:
    """One page of a log. `next_after`: the cursor of the next (older) page, None on the last;
    `lost_cursor`: the cursor asked for named no row (the first page is shown instead)."""

    events: list[Any]
    next_after: int | None
    lost_cursor: bool = False


def log_page(events: QuerySet, *, after: str | None, size: int) -> LogPage:
    """The `size` rows of `events` (newest first) older than the row `after` (keyset: a log
    only grows, so an offset would shift and count every row before it)."""
    lost = False
    if after:
        cursor = None
        if after.isdigit() and len(after) <= 18:
            cursor = events.model._default_manager.filter(pk=int(after)).values("at", "id").first()
        if cursor is None:
            lost = True
        else:
            events = events.filter(Q(at__lt=cursor["at"]) | Q(at=cursor["at"], id__lt=cursor["id"]))
    rows = list(events[: size + 1])
    next_after = rows[size - 1].pk if len(rows) > size else None
    return LogPage(events=rows[:size], next_after=next_after, lost_cursor=lost)


def iter_log(events: QuerySet, *, chunk: int = 2000) -> Iterator[Any]:
    """Every row of `events`, newest first, read in keyset chunks (the CSV exports)."""
    page = log_page(events, after=None, size=chunk)
    while True:
        yield from page.events
        if page.next_after is None:
            return
        page = log_page(events, after=str(page.next_after), size=chunk)
