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


def close_request(
    request: ChangeRequest,
    *,
    state: str,
    actor: User | None,
    now: dt.datetime,
    reason: str = "",
    applied_version: int | None = None,
) -> ChangeRequest:
    """Decide `request`: its end state, who, when, why, and the version an approval made."""
    request.state = state
    request.decided_by = actor
    request.decided_at = now
    request.decision_reason = reason
    request.applied_version = applied_version
    request.save(
        update_fields=["state", "decided_by", "decided_at", "decision_reason", "applied_version"]
    )
    return request


def expire_if_due(request: ChangeRequest, now: dt.datetime) -> bool:
    """Expire `request` if it is past its time (decided at its expiry); whether it was."""
    if request.expires_at > now:
        return False
    request.state = ChangeRequest.State.EXPIRED
    request.decided_at = request.expires_at
    request.save(update_fields=["state", "decided_at"])
    return True


def _close_older(user: User, kind: str, *, now: dt.datetime, actor: User | None) -> None:
    """The pending request of the same user and kind gives way: void (replaced), or expired
    when it already was past its time."""
    for older in ChangeRequest.objects.select_for_update().filter(
        user=user, kind=kind, state=ChangeRequest.State.PENDING
    ):
        if not expire_if_due(older, now):
            close_request(
                older,
                state=ChangeRequest.State.VOID,
                actor=actor,
                now=now,
                reason="Replaced by a newer proposal.",
            )


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
