"""The security log: one row per sign-in, failure, lockout, unlock, factor change, session
ending, token and role change. Rows are only ever added."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from users.models import SecurityEvent, User

Kind = SecurityEvent.Kind


def client_of(request: HttpRequest | None) -> dict[str, Any]:
    """The address and browser a request came from, as the log stores them."""
    if request is None:
        return {}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": (request.META.get("HTTP_USER_AGENT") or "")[:300],
    }


def security_event(
    *,
    kind: SecurityEvent.Kind | str,
    request: HttpRequest | None = None,
    actor: User | None = None,
    subject: User | None = None,
    username: str = "",
    detail: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append one event. `actor` did it, `subject` is whom it concerns (often the same)."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    return SecurityEvent.objects.create(
        kind=Kind(kind),
        actor=actor,
        subject=subject,
        username=(username or "")[:254],
        detail=detail or {},
        **client_of(request),
    )
