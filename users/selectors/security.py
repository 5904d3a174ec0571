"""Reads of the sign-in throttle (django-axes' tables) and of the security log."""

from __future__ import annotations

from axes.models import AccessFailureLog
from django.conf import settings
from django.utils import timezone


def address_is_locked(ip_address: str | None) -> bool:
    """Whether this address failed SIGN_IN_ADDRESS_FAILURE_LIMIT sign-ins within the cool-off
    time, whatever the accounts. (django-axes locks per account; its failure log, one row per
    failure, gives the count per address.)"""
    if not ip_address:
        return False
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = AccessFailureLog.objects.filter(ip_address=ip_address, attempt_time__gte=since)
    return failures.count() >= settings.SIGN_IN_ADDRESS_FAILURE_LIMIT
