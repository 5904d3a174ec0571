"""Guarded changes become change requests (four-eyes): the part of every write that files them.

`users.services.users` calls `propose` for what `policy.split_guarded` holds back, so every
front end (console, API, Django admin, commands) proposes instead of applying; deciding a
request is `users.services.change_requests`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from users.models import ChangeRequest, User

REASON_MAX_LENGTH = 2000


def _close_older(user: User, kind: str, *, now: dt.datetime, actor: User | None) -> None:
    """The pending request of the same user and kind gives way: void (replaced), or expired
    when it already was past its time."""
    for older in ChangeRequest.objects.select_for_update().filter(
        user=user, kind=kind, state=ChangeRequest.State.PENDING
    ):
        if older.expires_at <= now:
            older.state = ChangeRequest.State.EXPIRED
            older.decided_at = older.expires_at
        else:
            older.state = ChangeRequest.State.VOID
            older.decided_at = now
            older.decided_by = actor
            older.decision_reason = "Replaced by a newer proposal."
        older.save(update_fields=["state", "decided_at", "decided_by", "decision_reason"])


def propose(
    *,
    user: User,
    kind: str,
    changes: dict[str, list[Any]],
    actor: User | None,
    now: dt.datetime,
    reason: str = "",
) -> ChangeRequest:
    """File `changes` (field → [old, new], old as stored at `user.version`) as a pending
    request; an older pending one of the same user and kind is voided. Runs inside the
    caller's transaction, with `user`'s row locked."""
    _close_older(user, kind, now=now, actor=actor)
    return ChangeRequest.objects.create(
        user=user,
        kind=kind,
        changes=changes,
        base_version=user.version,
        reason=(reason or "")[:REASON_MAX_LENGTH],
        proposed_by=actor if actor is not None and actor.is_authenticated else None,
        proposed_at=now,
        expires_at=now + dt.timedelta(hours=settings.FOUR_EYES_TTL_HOURS),
    )
