"""Console sessions: started at sign-in, touched while the person works, ended for good.

Each signed-in session has a `ConsoleSession` row beside Django's session row (same key; the
session engine is the database one). Ending a session deletes Django's row, so its cookie opens
nothing any more, and marks the record ended: a flag or role granted back later finds no session
to revive. API tokens are separate and are never revoked here.

The session itself keeps the time of the last activity (`LAST_ACTIVITY`, for the idle timeout of
`console.middleware.IdleTimeoutMiddleware`) and of the last write of `last_seen`
(`LAST_SEEN_WRITTEN`), so a request costs no extra query but once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from users.models import ConsoleSession, SecurityEvent, User
from users.services.security import Kind, client_of, security_event

LAST_ACTIVITY = "console_last_activity"
LAST_SEEN_WRITTEN = "console_last_seen_written"
# How often, at most, `last_seen` is written and the stored activity time moved on.
TOUCH_SECONDS = 60

NOTHING_ELSE_REVOKED = "API tokens are not revoked"


def session_record(
    *, session_key: str, user: User, ip_address: str | None = None, user_agent: str = ""
) -> ConsoleSession:
    """The record of a session that was just signed in (a reused key starts afresh)."""
    now = timezone.now()
    record, _ = ConsoleSession.objects.update_or_create(
        session_key=session_key,
        defaults={
            "user": user,
            "started": now,
            "last_seen": now,
            "ip_address": ip_address,
            "user_agent": (user_agent or "")[:300],
            "ended_at": None,
        },
    )
    return record


def session_start(*, request: HttpRequest) -> ConsoleSession:
    """The request's session passed sign-in (the second factor, or the password when the
    second factor is off): record it and start its idle clock."""
    if request.session.session_key is None:
        request.session.save()
    now = time.time()
    request.session[LAST_ACTIVITY] = now
    request.session[LAST_SEEN_WRITTEN] = now
    return session_record(
        session_key=request.session.session_key,
        user=request.user,
        **client_of(request),
    )


def session_touch(
    *, request: HttpRequest, active: bool, signed_in: bool = True, now: float | None = None
) -> None:
    """A request of an authenticated session: move the activity time on when it is `active`
    (a person's request, not a background poll) and, once it is `signed_in` (past the second
    factor), the record's `last_seen` at most once a minute."""
    now = time.time() if now is None else now
    session = request.session
    if active:
        last = session.get(LAST_ACTIVITY)
        if last is None or now - last >= touch_granularity():
            session[LAST_ACTIVITY] = now
    elif session.get(LAST_ACTIVITY) is None:
        session[LAST_ACTIVITY] = now
    written = session.get(LAST_SEEN_WRITTEN)
    if not signed_in or (written is not None and now - written < TOUCH_SECONDS):
        return
    session[LAST_SEEN_WRITTEN] = now
    key = session.session_key
    if key is None:
        return
    seen = timezone.now()
    updated = ConsoleSession.objects.filter(session_key=key, ended_at__isnull=True).update(
        last_seen=seen
    )
    if not updated and not ConsoleSession.objects.filter(session_key=key).exists():
        # A session signed in before these records existed: record it from now on.
        session_record(session_key=key, user=request.user, **client_of(request))


def touch_granularity() -> int:
    """How stale the stored activity time may get before a request moves it on: a minute, or
    every request for a short idle timeout (tests)."""
    return min(TOUCH_SECONDS, settings.SESSION_IDLE_SECONDS // 15)


def session_keep_alive(*, request: HttpRequest) -> None:
    """ "Stay signed in": counts as activity now, whatever the touch interval."""
    now = time.time()
    request.session[LAST_ACTIVITY] = now
    session_touch(request=request, active=True, now=now)


def session_rekeyed(*, old_key: str | None, new_key: str | None) -> None:
    """The session got a new key (Django cycles it at a password change): its record follows."""
    if old_key and new_key and old_key != new_key:
        ConsoleSession.objects.filter(session_key=old_key).update(session_key=new_key)


def idle_seconds_left(request: HttpRequest, *, now: float | None = None) -> float | None:
    """Seconds before the session's idle end; None when it has no activity time yet."""
    last = request.session.get(LAST_ACTIVITY)
    if last is None:
        return None
    now = time.time() if now is None else now
    return settings.SESSION_IDLE_SECONDS - (now - last)


def session_end_current(*, request: HttpRequest, reason: str) -> None:
    """End the request's own session: "idle" (the timeout; a SESSION_ENDED event) or
    "sign_out" (the person signed out; SIGN_OUT). The record is marked ended and the session
    flushed (its row deleted, a new empty one for the next page)."""
    key = request.session.session_key
    if key:
        ConsoleSession.objects.filter(session_key=key, ended_at__isnull=True).update(
            ended_at=timezone.now()
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        idle = reason == "idle"
        security_event(
            kind=Kind.SESSION_ENDED if idle else Kind.SIGN_OUT,
            request=request,
            actor=None if idle else user,
            subject=user,
            detail={"reason": reason, "sessions": 1},
        )
    logout(request)


@transaction.atomic
def end_sessions(
    *,
    user: User,
    actor: User | None,
    reason: str,
    request: HttpRequest | None = None,
    except_key: str | None = None,
    session_ids: Iterable[int] | None = None,
    kind: SecurityEvent.Kind = Kind.SESSION_ENDED,
) -> int:
    """End every active session of `user` (but `except_key`, the caller's own when they keep
    it; only `session_ids` when given): Django's session rows are deleted, the records marked
    ended, one SESSION_ENDED event (SIGN_OUT when a person signs out their own) written when
    any ended. Nothing else is revoked (API tokens stay). Returns how many."""
    records = ConsoleSession.objects.select_for_update().filter(user=user, ended_at__isnull=True)
    if except_key:
        records = records.exclude(session_key=except_key)
    if session_ids is not None:
        records = records.filter(pk__in=list(session_ids))
    keys = list(records.values_list("session_key", flat=True))
    if not keys:
        return 0
    Session.objects.filter(session_key__in=keys).delete()
    ConsoleSession.objects.filter(session_key__in=keys).update(ended_at=timezone.now())
    detail: dict[str, Any] = {
        "reason": reason,
        "sessions": len(keys),
        "not_revoked": NOTHING_ELSE_REVOKED,
    }
    if except_key:
        detail["kept_current"] = True
    security_event(kind=kind, request=request, actor=actor, subject=user, detail=detail)
    return len(keys)
