"""The onboarding SLA: how long a user may wait in a status, counted in business hours.

A business hour is an hour of a weekday (Monday to Friday) in the console's time zone; weekends
do not count. Each status may have a target (`SLA_TARGET_HOURS`; by default 48 business hours
in `WAITING_FOR_VERIFICATION`, 24 in `VERIFICATION_FAILED`, none while `WAITING_FOR_SIGNATURE`
waits on the client, none once onboarded). A user past `SLA_AT_RISK` (75 %) of the target is
"at risk", past the target "breached".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

AT_RISK = "at_risk"
BREACHED = "breached"
LABELS = {AT_RISK: "SLA at risk", BREACHED: "SLA breached"}


def targets() -> Mapping[str, float]:
    """Status -> target in business hours (statuses without a target are absent)."""
    return settings.SLA_TARGET_HOURS


def _day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.UTC)


def business_seconds(
    start: dt.datetime, end: dt.datetime, *, tz: dt.tzinfo | None = None, cap: float | None = None
) -> float:
    """Seconds of weekdays (in `tz`, the console's by default) between two instants; with `cap`,
    counting stops once it is reached (a card waiting a year costs a few days' arithmetic)."""
    tz = tz or timezone.get_default_timezone()
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    total = 0.0
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        if day.weekday() < 5:
            # Real elapsed time within the local day (a DST day is 23 or 25 hours long); the
            # subtraction is in UTC, never between two wall-clock times.
            lower = max(start, _day_start(day, tz))
            upper = min(end, _day_start(day + dt.timedelta(days=1), tz))
            if upper > lower:
                total += (upper - lower).total_seconds()
        if cap is not None and total >= cap:
            return total
        day += dt.timedelta(days=1)
    return total


def back(end: dt.datetime, *, hours: float, tz: dt.tzinfo | None = None) -> dt.datetime:
    """The instant `hours` business hours before `end` (weekends skipped)."""
    tz = tz or timezone.get_default_timezone()
    end = end.astimezone(dt.UTC)
    left = hours * 3600
    day = end.astimezone(tz).date()
    while True:
        lower = _day_start(day, tz)
        upper = min(end, _day_start(day + dt.timedelta(days=1), tz))
        if day.weekday() < 5 and upper > lower:
            available = (upper - lower).total_seconds()
            if available >= left:
                return upper - dt.timedelta(seconds=left)
            left -= available
        day -= dt.timedelta(days=1)


def state(status: str, since: dt.datetime, now: dt.datetime) -> str:
    """ "" (within the target, or no target), `AT_RISK` or `BREACHED`."""
    target = targets().get(status)
    if not target:
        return ""
    limit = target * 3600
    spent = business_seconds(since, now, cap=limit)
    if spent >= limit:
        return BREACHED
    if spent >= limit * settings.SLA_AT_RISK:
        return AT_RISK
    return ""


def check_targets(app_configs=None, **kwargs) -> list:
    """System check: every status named in SLA_TARGET_HOURS exists (a typo would otherwise
    leave a status without its SLA, silently)."""
    from django.core.checks import Error

    from users.models import Status

    unknown = sorted(set(targets()) - set(Status.values))
    if not unknown:
        return []
    return [
        Error(
            f"SLA_TARGET_HOURS names unknown statuses: {', '.join(unknown)}.",
            hint=f"Use some of {', '.join(Status.values)}.",
            id="users.E001",
        )
    ]
