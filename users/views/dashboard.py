"""The onboarding dashboard (`/dashboard/`, issue 14.6; compliance and admins).

The period comes from the URL (`?days=30`, or `?start=YYYY-MM-DD&end=YYYY-MM-DD`); the figures
from `selectors.dashboard`, which reads the maintained summary, never the history. Each chart is
an SVG drawn by the template from the geometry worked out here (no script, no inline style:
the CSP), with its numbers in a table beside it; every bar and number links to the users behind
it on the list or the board.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from users import policy, sla
from users.forms import DashboardPeriodForm
from users.models import MOVE_BUCKETS, Status
from users.selectors.dashboard import (
    MAX_PERIOD_DAYS,
    Dashboard,
    Period,
    duration_label,
)
from users.selectors.dashboard import (
    dashboard as read_dashboard,
)
from users.views.common import HtmxHttpRequest, require

TEMPLATE = "users/dashboard.html"
DEFAULT_DAYS = 30

# Horizontal bar charts: the label column, the bars, the value after them (SVG user units).
LABEL_WIDTH = 290
BAR_AREA = 250
CHART_WIDTH = LABEL_WIDTH + BAR_AREA + 70
ROW_HEIGHT = 26
BAR_HEIGHT = 16


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar, its label and value, every attribute already text: a dashboard draws a hundred
    of them, and the template engine localising each number cost more than the queries."""

    label: str
    value: str  # as shown
    href: str
    name: str  # the link's accessible name: context, then the label and value drawn
    css: str
    y: str
    width: str
    label_x: str
    text_y: str
    value_x: str
    x: str = str(LABEL_WIDTH)


def _bar(label: str, value: str, href: str, *, y: int, width: int, css: str, name: str) -> Bar:
    return Bar(
        label=label,
        value=value,
        href=href,
        # The visible text stays in the name, in order (WCAG 2.5.3), after any context.
        name=f"{name}{label}: {value}",
        css=css,
        y=str(y),
        width=str(width),
        label_x=str(LABEL_WIDTH - 8),
        text_y=str(y + BAR_HEIGHT - 4),
        value_x=str(LABEL_WIDTH + width + 6),
    )


@dataclass(frozen=True)
class Chart:
    """One SVG chart: its accessible title, size, and bars."""

    id: str
    title: str
    bars: list[Bar]
    width: int
    height: int
    axis_y: int = 0


def list_url(**params: str | list[str]) -> str:
    return f"{reverse('users:user-list')}?{urlencode(params, doseq=True)}"


def board_url(**params: str | list[str]) -> str:
    return f"{reverse('users:board')}?{urlencode(params, doseq=True)}"


def _scale(value: float, top: float) -> int:
    return 0 if not top or not value else max(2, round(BAR_AREA * value / top))


def _hbars(
    chart_id: str,
    title: str,
    rows: list[tuple],
    *,
    top: float | None = None,
) -> Chart:
    """A horizontal bar chart; rows are (label, value, shown value, link, css class[, accessible
    name]); the longest bar is `top` (the largest value by default)."""
    if top is None:
        top = max((row[1] for row in rows), default=0)
    bars = [
        _bar(
            label,
            shown,
            href,
            y=4 + i * ROW_HEIGHT,
            width=_scale(value, top),
            css=css,
            name=name[0] if name else "",
        )
        for i, (label, value, shown, href, css, *name) in enumerate(rows)
    ]
    return Chart(chart_id, title, bars, CHART_WIDTH, max(32, 8 + len(rows) * ROW_HEIGHT))


def _funnel_chart(board: Dashboard) -> Chart:
    rows = []
    for step in board.funnel:
        href = list_url(status=step.status)
        rows.append((f"{step.label}: now", step.now, f"{step.now:,}", href, "bar-now"))
        rows.append(
            (
                "entered",
                step.entered,
                f"{step.entered:,}",
                href,
                "bar-entered",
                f"{step.label}, ",
            )
        )
    return _hbars("chart-funnel", "Users per status now, and moves into each status", rows)


def _conversion_chart(board: Dashboard) -> Chart:
    rows = [
        (
            f"{c.from_label} → {c.to_label}",
            c.count,
            f"{c.count:,}",
            list_url(status=c.to_status),
            "bar-conversion",
        )
        for c in board.conversions
    ]
    return _hbars("chart-conversions", "Moves between statuses in the period", rows)


def _time_chart(board: Dashboard) -> Chart:
    """Median and p90 per status on the buckets' scale (roughly logarithmic: bucket i ends at
    i + 1 of MOVE_BUCKETS), so an hour and a month both show."""
    rows = []
    for time in board.time_in_status:
        if time.median is None or time.p90 is None:
            continue
        href = list_url(status=time.status)
        for name, bucket, css in (
            ("median", time.median, "bar-median"),
            ("p90", time.p90, "bar-p90"),
        ):
            rows.append((f"{time.label}: {name}", bucket + 1, duration_label(bucket), href, css))
    return _hbars(
        "chart-time",
        "Time in a status before moving on: median and p90 (approximate)",
        rows,
        top=MOVE_BUCKETS,
    )


# Weekly columns.
WEEK_CHART_HEIGHT = 160
WEEK_AREA_WIDTH = 520


@dataclass(frozen=True, slots=True)
class Column:
    """One week's column (attributes as text, as for `Bar`)."""

    label: str
    href: str
    x: str
    width: str
    risk_y: str
    risk_height: str
    late_y: str
    late_height: str
    moves_y: str
    moves_height: str
    tick: str  # the week's date under the axis (every few weeks), or ""
    tick_x: str
    tick_y: str = str(WEEK_CHART_HEIGHT + 20)
    hit_height: str = str(WEEK_CHART_HEIGHT)  # the whole column's height: a target to click


def _week_chart(board: Dashboard) -> tuple[Chart, list[Column]]:
    weeks = board.sla_weeks
    top = max((w.moves for w in weeks), default=0)
    step = min(60, max(6, WEEK_AREA_WIDTH // max(1, len(weeks))))
    href = board_url(status=[s for s in Status.values if s in sla.targets()])
    columns = []
    every = max(1, -(-len(weeks) // 8))  # at most eight dates under the axis
    for i, week in enumerate(weeks):
        late = round(WEEK_CHART_HEIGHT * week.breached / top) if top else 0
        risk = round(WEEK_CHART_HEIGHT * week.at_risk / top) if top else 0
        moves = round(WEEK_CHART_HEIGHT * week.moves / top) if top else 0
        x, width = 10 + i * step, max(4, step - 4)
        columns.append(
            Column(
                label=f"Week of {week.week:%Y-%m-%d}: {week.moves} moves out, "
                f"{week.at_risk} at risk, {week.breached} breached",
                href=href,
                x=str(x),
                width=str(width),
                late_y=str(WEEK_CHART_HEIGHT + 4 - late),
                late_height=str(late),
                risk_y=str(WEEK_CHART_HEIGHT + 4 - late - risk),
                risk_height=str(risk),
                moves_y=str(WEEK_CHART_HEIGHT + 4 - moves),
                moves_height=str(moves),
                tick=f"{week.week:%d %b}" if i % every == 0 else "",
                tick_x=str(x + width // 2),
            )
        )
    chart = Chart(
        "chart-sla",
        "SLA per week: moves out of a status with a target, and how many left it past 75 % of "
        "the target (at risk) or past it (breached)",
        [],
        20 + len(weeks) * step,
        WEEK_CHART_HEIGHT + 24,
        axis_y=WEEK_CHART_HEIGHT + 4,
    )
    return chart, columns


def _reviewer_chart(board: Dashboard) -> Chart:
    rows = [
        (
            r.name,
            r.moves,
            f"{r.moves:,}",
            reverse("users:user-detail", args=[r.user_id]) if r.user_id else list_url(),
            "bar-reviewer",
        )
        for r in board.reviewers
    ]
    return _hbars("chart-reviewers", "Status moves per person in the period", rows)


def _reason_chart(board: Dashboard) -> Chart:
    rows = [
        (
            reason.label,
            reason.moves,
            f"{reason.moves:,}",
            list_url(status_reason_code=reason.code),
            "bar-reason",
        )
        for reason in board.reasons
    ]
    return _hbars("chart-reasons", "Top reason codes of the moves in the period", rows)


def _period(form: DashboardPeriodForm) -> Period:
    data = form.cleaned_data
    if data.get("start"):
        return Period(data["start"], data["end"])
    return Period.last(data.get("days") or DEFAULT_DAYS)


@never_cache
@require_GET
@login_required
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The dashboard for the period in the URL (the last 30 days by default); a period that
    cannot be read is refused with its reason (400) and nothing is counted."""
    require(policy.may_view_dashboard(request.user))
    form = DashboardPeriodForm(request.GET, max_days=MAX_PERIOD_DAYS)
    if not form.is_valid():
        return render(request, TEMPLATE, {"form": form, "board": None}, status=400)
    board = read_dashboard(_period(form))
    week_chart, week_columns = _week_chart(board)
    context = {
        "form": form,
        "board": board,
        "today": timezone.localdate(),
        "chosen_days": None if form.cleaned_data.get("start") else board.period.days,
        "period_choices": DashboardPeriodForm.DAYS,
        "funnel_chart": _funnel_chart(board),
        "conversion_chart": _conversion_chart(board),
        "time_chart": _time_chart(board),
        "week_chart": week_chart,
        "week_columns": week_columns,
        "reviewer_chart": _reviewer_chart(board),
        "reason_chart": _reason_chart(board),
        "sla_targets": [
            (Status(status).label.lower(), hours) for status, hours in sla.targets().items()
        ],
        "sla_board_url": board_url(status=[s for s in Status.values if s in sla.targets()]),
        "list_url": reverse("users:user-list"),
    }
    return render(request, TEMPLATE, context)
