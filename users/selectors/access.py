"""Reads of the access log: the page (keyset pages, newest first), its CSV, and the latest
accesses to one user (the detail's "Accessed by" panel)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from users.models import AccessEvent, User

LOG_PAGE_SIZE = 50
PANEL_LIMIT = 20


def access_log() -> QuerySet[AccessEvent]:
    """Every access, newest first (the `access_event_at` index), with who and whose record."""
    return AccessEvent.objects.select_related("actor", "subject").order_by("-at", "-id")


def recent_accesses(user: User, *, limit: int = PANEL_LIMIT) -> list[AccessEvent]:
    """The latest `limit` accesses to `user`'s record, newest first (one query; the
    `access_event_subject` index)."""
    rows = AccessEvent.objects.filter(subject=user).select_related("actor")
    return list(rows.order_by("-at", "-id")[:limit])


@dataclass(frozen=True)
class AccessPage:
    """One page of the log. `next_after`: the cursor of the next (older) page, None on the last;
    `lost_cursor`: the cursor asked for named no row (the first page is shown instead)."""

    events: list[AccessEvent]
    next_after: int | None
    lost_cursor: bool = False


def access_log_page(
    events: QuerySet[AccessEvent], *, after: str | None = None, size: int | None = None
) -> AccessPage:
    """The `size` rows of `events` (newest first) older than the row `after` (keyset: the log
    only grows, so an offset would shift and count every row before it)."""
    size = size or LOG_PAGE_SIZE
    lost = False
    if after:
        cursor = None
        if after.isdigit() and len(after) <= 18:
            cursor = AccessEvent.objects.filter(pk=int(after)).values("at", "id").first()
        if cursor is None:
            lost = True
        else:
            events = events.filter(Q(at__lt=cursor["at"]) | Q(at=cursor["at"], id__lt=cursor["id"]))
    rows = list(events[: size + 1])
    next_after = rows[size - 1].pk if len(rows) > size else None
    return AccessPage(events=rows[:size], next_after=next_after, lost_cursor=lost)


def iter_access_log(events: QuerySet[AccessEvent], *, chunk: int = 2000) -> Iterator[AccessEvent]:
    """Every row of `events`, newest first, read in keyset chunks (the CSV export)."""
    page = access_log_page(events, size=chunk)
    while True:
        yield from page.events
        if page.next_after is None:
            return
        page = access_log_page(events, after=str(page.next_after), size=chunk)
