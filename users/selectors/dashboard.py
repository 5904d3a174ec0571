"""Reads for the onboarding dashboard (issue 14.6): the funnel, conversions, time in status,
the SLA per week, moves per reviewer, top reason codes (issue 14.3's codes).

Everything about moves comes from the summary `StatusMoveDaily` (a row per day, move, person
and reason code; `users.services.move_stats` keeps it), never from the history tables: a
period of a year is at most a few thousand small rows, grouped by the database into a few
dozen. The users per status now come from the board's maintained counters
(`selectors.board.status_counts`); the open cases at risk or past their SLA from one count over
the board's (status, status_changed_at) index of the recent entries only (see `sla_open`).

Median and p90 are read from the histogram of the time spent in a status, so they are
approximate: each is the upper edge of the bucket the nearest-rank value falls in
(MOVE_DURATION_EDGES_HOURS: 1 h, 2 h, 4 h, 8 h, 12 h, 1 d, 1.5 d, 2 d, 3 d, ...), i.e. "at most".
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from users import sla
from users.models import MOVE_DURATION_EDGES_HOURS, Status, StatusMoveDaily, User
from users.selectors.board import onboarding_cases, status_counts
from users.selectors.people import NAME_FIELDS
from users.selectors.reason_codes import reason_code_labels

# A period longer than this is refused (the weekly chart would be a wall).
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class Period:
    """Days `start` to `end`, both included, in the console's time zone."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @classmethod
    def last(cls, days: int, *, today: dt.date | None = None) -> Period:
        today = today or timezone.localdate()
        return cls(today - dt.timedelta(days=days - 1), today)


def duration_label(bucket: int) -> str:
    """A histogram bucket as its upper edge: "≤ 12 h", "≤ 1.5 d"; the last "> 365 d"."""
    edges = MOVE_DURATION_EDGES_HOURS
    if bucket >= len(edges):
        return f"> {edges[-1] // 24} d"
    hours = edges[bucket]
    if hours < 24:
        return f"≤ {hours} h"
    days = hours / 24
    return f"≤ {days:g} d"


def percentile_bucket(histogram: list[int], q: float) -> int | None:
    """The bucket holding the nearest-rank `q` quantile of a histogram (None when empty)."""
    total = sum(histogram)
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return bucket
    return len(histogram) - 1  # unreachable: seen ends at total


@dataclass
class FunnelStep:
    status: str
    label: str
    now: int  # onboarding cases in the status now
    entered: int  # moves into it (creations included) during the period


@dataclass
class Conversion:
    from_status: str  # "" for a creation
    to_status: str
    count: int
    share: float | None  # of every move out of from_status in the period (None for creations)

    @property
    def from_label(self) -> str:
        return Status(self.from_status).label if self.from_status else "New user"

    @property
    def to_label(self) -> str:
        return Status(self.to_status).label


@dataclass
class TimeInStatus:
    status: str
    label: str
    moves: int  # moves out of the status in the period
    histogram: list[int]
    median: int | None  # bucket
    p90: int | None

    @property
    def median_label(self) -> str:
        return "" if self.median is None else duration_label(self.median)

    @property
    def p90_label(self) -> str:
        return "" if self.p90 is None else duration_label(self.p90)


@dataclass
class SlaWeek:
    week: dt.date  # its Monday
    moves: int  # moves out of a status with an SLA target
    at_risk: int
    breached: int


@dataclass
class SlaOpen:
    status: str
    label: str
    target_hours: float
    at_risk: int
    breached: int


@dataclass
class Reviewer:
    user_id: str  # "" for moves without a person (imports)
    name: str
    moves: int


@dataclass
class ReasonCount:
    code: str
    label: str
    moves: int


@dataclass
class Dashboard:
    period: Period
    funnel: list[FunnelStep]
    conversions: list[Conversion]
    time_in_status: list[TimeInStatus]
    sla_weeks: list[SlaWeek]
    sla_open: list[SlaOpen]
    reviewers: list[Reviewer]
    reasons: list[ReasonCount] = field(default_factory=list)

    @property
    def moves(self) -> int:
        return sum(c.count for c in self.conversions if c.from_status)


_BUCKETS = StatusMoveDaily.BUCKET_COLUMNS


def _in(period: Period):
    return StatusMoveDaily.objects.filter(day__gte=period.start, day__lte=period.end).order_by()


def _moves_by_pair(period: Period) -> list[dict]:
    """One row per (from, to) in the period with every counter summed."""
    return list(
        _in(period)
        .values("from_status", "to_status")
        .annotate(
            n=Sum("count"),
            risk=Sum("at_risk"),
            late=Sum("breached"),
            **{column: Sum(column) for column in _BUCKETS},
        )
    )


def _funnel(
    pairs: list[dict], now: dict[str, int]
) -> tuple[list[FunnelStep], list[Conversion], list[TimeInStatus]]:
    entered: dict[str, int] = defaultdict(int)
    out: dict[str, int] = defaultdict(int)
    histograms: dict[str, list[int]] = {s: [0] * len(_BUCKETS) for s in Status.values}
    for row in pairs:
        entered[row["to_status"]] += row["n"]
        if row["from_status"]:
            out[row["from_status"]] += row["n"]
            histogram = histograms[row["from_status"]]
            for i, column in enumerate(_BUCKETS):
                histogram[i] += row[column] or 0
    funnel = [
        FunnelStep(status, Status(status).label, now.get(status, 0), entered[status])
        for status in Status.values
    ]
    order = {status: i for i, status in enumerate(Status.values)}
    conversions = sorted(
        (
            Conversion(
                row["from_status"],
                row["to_status"],
                row["n"],
                row["n"] / out[row["from_status"]] if row["from_status"] else None,
            )
            for row in pairs
        ),
        key=lambda c: (c.from_status != "", order.get(c.from_status, -1), -c.count),
    )
    times = [
        TimeInStatus(
            status,
            Status(status).label,
            out[status],
            histograms[status],
            percentile_bucket(histograms[status], 0.5),
            percentile_bucket(histograms[status], 0.9),
        )
        for status in Status.values
    ]
    return funnel, conversions, times


def _sla_weeks(period: Period) -> list[SlaWeek]:
    """Per week (Monday to Sunday; the first and last may be cut by the period), the moves out
    of a status with an SLA target, and how many of them left at risk or past the target."""
    weeks: dict[dt.date, SlaWeek] = {}
    monday = period.start - dt.timedelta(days=period.start.weekday())
    while monday <= period.end:
        weeks[monday] = SlaWeek(monday, 0, 0, 0)
        monday += dt.timedelta(days=7)
    rows = (
        _in(period)
        .filter(from_status__in=list(sla.targets()))
        .values("day")
        .annotate(n=Sum("count"), risk=Sum("at_risk"), late=Sum("breached"))
    )
    for row in rows:
        week = weeks[row["day"] - dt.timedelta(days=row["day"].weekday())]
        week.moves += row["n"]
        week.at_risk += row["risk"]
        week.breached += row["late"]
    return list(weeks.values())


def sla_open(
    now: dt.datetime | None = None, *, waiting: dict[str, int] | None = None
) -> list[SlaOpen]:
    """Onboarding cases (staff left out) waiting now in a status with a target, at risk (past
    75 %) or past it.

    Past the target are all those in the status (`waiting`, the board's maintained counts)
    but the ones that entered it since `target` business hours ago; so only those recent
    entries are counted, over the (status, status_changed_at) index: a range of a few days,
    whatever the number of old cases (a count of the breached ones themselves would read
    every one of them).
    """
    now = now or timezone.now()
    targets = {s: hours for s, hours in sla.targets().items() if hours}
    if not targets:
        return []
    if waiting is None:
        waiting = status_counts(User.objects.filter(deleted=False), all_live=True)
    parts = []
    for status, hours in targets.items():
        breached_by = sla.back(now, hours=hours)
        at_risk_by = sla.back(now, hours=hours * settings.SLA_AT_RISK)
        parts.append(
            onboarding_cases(
                User.objects.filter(deleted=False, status=status, status_changed_at__gt=breached_by)
            )
            .order_by()
            .values("status")
            .annotate(
                recent=Count("pk"),
                fresh=Count("pk", filter=Q(status_changed_at__gt=at_risk_by)),
            )
        )
    combined = parts[0].union(*parts[1:], all=True).order_by() if len(parts) > 1 else parts[0]
    recent = {row["status"]: row for row in combined}
    rows = []
    for status in Status.values:
        if status not in targets:
            continue
        counts = recent.get(status, {"recent": 0, "fresh": 0})
        rows.append(
            SlaOpen(
                status,
                Status(status).label,
                targets[status],
                at_risk=counts["recent"] - counts["fresh"],
                breached=max(0, waiting.get(status, 0) - counts["recent"]),
            )
        )
    return rows


def _reviewers(period: Period) -> list[Reviewer]:
    rows = list(
        _in(period)
        .exclude(from_status="")
        .values("changed_by")
        .annotate(n=Sum("count"))
        .order_by("-n", "changed_by")
    )
    ids = [row["changed_by"] for row in rows if row["changed_by"]]
    people = {user.pk: user for user in User.objects.filter(pk__in=ids).only(*NAME_FIELDS)}
    reviewers = []
    for row in rows:
        person = people.get(row["changed_by"])
        if row["changed_by"] and person is None:
            name = row["changed_by"]
        else:
            name = person.display_name if person else "No person (imports, system)"
        reviewers.append(Reviewer(row["changed_by"], name, row["n"]))
    return reviewers


TOP_REASONS = 10


def _reasons(period: Period) -> list[ReasonCount]:
    """The reason codes most moves of the period carried (at most TOP_REASONS), with their
    labels (a retired code keeps its label)."""
    rows = list(
        _in(period)
        .exclude(reason_code="")
        .values("reason_code")
        .annotate(n=Sum("count"))
        .order_by("-n", "reason_code")[:TOP_REASONS]
    )
    labels = reason_code_labels()
    return [
        ReasonCount(
            row["reason_code"], labels.get(row["reason_code"], row["reason_code"]), row["n"]
        )
        for row in rows
    ]


def dashboard(period: Period, *, now: dt.datetime | None = None) -> Dashboard:
    """Everything the dashboard shows for `period`, in a handful of small queries."""
    pairs = _moves_by_pair(period)
    waiting = status_counts(User.objects.filter(deleted=False), all_live=True)
    funnel, conversions, times = _funnel(pairs, waiting)
    return Dashboard(
        period=period,
        funnel=funnel,
        conversions=conversions,
        time_in_status=times,
        sla_weeks=_sla_weeks(period),
        sla_open=sla_open(now, waiting=waiting),
        reviewers=_reviewers(period),
        reasons=_reasons(period),
    )
