"""The security log: one row per sign-in, failure, lockout, unlock, factor change, session
ending, token and role change. Rows are only ever added."""

from __future__ import annotations

from typing import Any

from axes.models import AccessFailureLog
from axes.utils import reset as axes_reset
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from users.models import SecurityEvent, User
from users.selectors.security import throttle_username

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


@transaction.atomic
def account_unlock(
    *,
    username: str,
    actor: User | None,
    request: HttpRequest | None = None,
    ip_address: str | None = None,
) -> int:
    """Lift the sign-in lockout of the account `username` names (whether or not it exists: a
    lockout counts the address typed), through django-axes' own reset; with `ip_address`, also
    that address's limit (SIGN_IN_ADDRESS_FAILURE_LIMIT: its failures within the cool-off
    time). Logs UNLOCKED; returns how many throttle rows were cleared."""
    key = throttle_username(username)
    if not key:
        raise ValidationError({"username": "Type the address the account signs in with."})
    cleared = axes_reset(username=key)
    if ip_address:
        since = timezone.now() - settings.AXES_COOLOFF_TIME
        failures = AccessFailureLog.objects.filter(ip_address=ip_address, attempt_time__gte=since)
        cleared += failures.delete()[0]
    security_event(
        kind=Kind.UNLOCKED,
        request=request,
        actor=actor,
        subject=User.objects.filter(email__iexact=key).first(),
        username=key,
        detail={"cleared": cleared, **({"ip_address": ip_address} if ip_address else {})},
    )
    return cleared
