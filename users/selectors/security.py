"""Reads of the sign-in throttle (django-axes' tables) and of the security log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from users.models import SecurityEvent
from users.selectors.logs import LogPage, iter_log, log_page


def address_is_locked(ip_address: str | None) -> bool:
    """Whether this address failed SIGN_IN_ADDRESS_FAILURE_LIMIT sign-ins within the cool-off
    time, whatever the accounts. (django-axes locks per account; its failure log, one row per
    failure, gives the count per address.)"""
    if not ip_address:
        return False
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = AccessFailureLog.objects.filter(ip_address=ip_address, attempt_time__gte=since)
    return failures.count() >= settings.SIGN_IN_ADDRESS_FAILURE_LIMIT


# --- the security log page ---------------------------------------------------------------------

LOG_PAGE_SIZE = 50


def security_log() -> QuerySet[SecurityEvent]:
    """Every event, newest first (the `security_event_at` index), with who did it and whom it
    concerns."""
    return SecurityEvent.objects.select_related("actor", "subject").order_by("-at", "-id")


def security_log_page(
    events: QuerySet[SecurityEvent], *, after: str | None = None, size: int = LOG_PAGE_SIZE
) -> LogPage:
    """The `size` events of `events` (newest first) older than the event `after`."""
    return log_page(events, after=after, size=size)


def iter_security_log(
    events: QuerySet[SecurityEvent], *, chunk: int = 2000
) -> Iterator[SecurityEvent]:
    """Every event of `events`, newest first, in keyset chunks (the CSV export)."""
    return iter_log(events, chunk=chunk)


def throttle_username(typed: str) -> str:
    """The account key django-axes counts failures under: the typed address as the backend
    looks it up (console.auth.axes_username)."""
    return (typed or "").strip().lower()


def locked_out_until(username: str) -> dt.datetime | None:
    """When the account's sign-in lockout ends, or None when it is not locked: AXES_FAILURE_LIMIT
    failures within AXES_COOLOFF_TIME (django-axes' AccessAttempt rows, one per client)."""
    key = throttle_username(username)
    if not key:
        return None
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    counted = AccessAttempt.objects.filter(username=key, attempt_time__gte=since).aggregate(
        failures=Sum("failures_since_start"), last=Max("attempt_time")
    )
    if (counted["failures"] or 0) < settings.AXES_FAILURE_LIMIT:
        return None
    return counted["last"] + settings.AXES_COOLOFF_TIME


def locked_usernames(usernames: Iterable[str]) -> set[str]:
    """Which of these typed addresses (as given) are locked out now (one query; the log page's
    rows)."""
    given = {name: throttle_username(name) for name in usernames}
    keys = set(given.values()) - {""}
    if not keys:
        return set()
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (
        AccessAttempt.objects.filter(username__in=keys, attempt_time__gte=since)
        .values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )
    locked = {row["username"] for row in rows}
    return {name for name, key in given.items() if key in locked}
