"""Reads of the access log: the page (keyset pages, newest first), its CSV, and the latest
accesses to one user (the detail's "Accessed by" panel)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from users.models import AccessEvent, User
from users.selectors.logs import LogPage, iter_log, log_page
from users.selectors.people import with_people

LOG_PAGE_SIZE = 50
PANEL_LIMIT = 20


def access_log() -> QuerySet[AccessEvent]:
    """Every access, newest first (the `access_event_at` index), with who and whose record."""
    return AccessEvent.objects.select_related("actor", "subject").order_by("-at", "-id")


def recent_accesses(user: User, *, limit: int = PANEL_LIMIT) -> list[AccessEvent]:
    """The latest `limit` accesses to `user`'s record, newest first (one query; the
    `access_event_subject` index)."""
    rows = with_people(AccessEvent.objects.filter(subject=user), "actor")
    return list(rows.order_by("-at", "-id")[:limit])


def access_log_page(
    events: QuerySet[AccessEvent], *, after: str | None = None, size: int | None = None
) -> LogPage:
    """The `size` accesses of `events` (newest first) older than the row `after`."""
    return log_page(events, after=after, size=size or LOG_PAGE_SIZE)


def iter_access_log(events: QuerySet[AccessEvent], *, chunk: int = 2000) -> Iterator[AccessEvent]:
    """Every access of `events`, newest first, in keyset chunks (the CSV export)."""
    return iter_log(events, chunk=chunk)
