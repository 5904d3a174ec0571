"""Reads of console sessions: a user's active sessions, and a browser's readable name."""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from users.models import ConsoleSession, User

# Most specific first: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"OPR/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
    ("Chrome", r"(?:Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
)
_SYSTEMS = (
    ("iOS", r"iPhone|iPad|iPod"),
    ("Android", r"Android"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux"),
)


def browser_label(user_agent: str) -> str:
    """'Firefox 128 on Windows' from a User-Agent header; 'Unknown browser' when unreadable."""
    agent = user_agent or ""
    browser = next(
        (
            f"{name} {match.group(1)}"
            for name, pattern in _BROWSERS
            if (match := re.search(pattern, agent))
        ),
        "",
    )
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, agent)), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")


def active_sessions(user: User) -> QuerySet[ConsoleSession]:
    """The user's sessions that have not ended and are within the absolute lifetime, most
    recently seen first."""
    oldest = timezone.now() - timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return ConsoleSession.objects.filter(
        user=user, ended_at__isnull=True, started__gte=oldest
    ).order_by("-last_seen", "-id")
