"""The access log page (compliance and admins, issue 13.4): who opened, exported and read which
users, newest first, filtered by kind, person, whose record and dates, a page at a time, and the
filtered rows as CSV."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from users import policy
from users.filters import AccessEventFilter
from users.models import AccessEvent
from users.selectors.access import access_log, access_log_page, iter_access_log
from users.views.common import HtmxHttpRequest, htmx_target, require, vary_on_htmx
from users.views.logs import cell, csv_response, detail_cell, filter_query, instant

TEMPLATE = "users/access_log.html"
EXPORT_COLUMNS = (
    "at",
    "kind",
    "actor",
    "subject",
    "field",
    "purpose",
    "query",
    "columns",
    "row_count",
    "subject_ids",
    "ip_address",
    "detail",
)


def _filters(request: HtmxHttpRequest) -> AccessEventFilter:
    return AccessEventFilter(request.GET, queryset=access_log())


@never_cache
@require_GET
@login_required
def access_log_page_view(request: HtmxHttpRequest) -> HttpResponse:
    require(policy.may_view_access_log(request.user))
    filters = _filters(request)
    page = None
    if filters.is_valid():
        page = access_log_page(filters.qs, after=request.GET.get("after"))
        if page.lost_cursor:
            messages.info(request, "That page of the log is gone; showing the newest accesses.")
    context = {
        "filter": filters,
        "form": filters.form,
        "page": page,
        "query": filter_query(request),
    }
    template = f"{TEMPLATE}#results" if htmx_target(request) == "log-results" else TEMPLATE
    return vary_on_htmx(render(request, template, context))


def _row(event: AccessEvent) -> list[str]:
    return [
        instant(event.at),
        event.kind,
        cell(event.actor.email if event.actor else ""),
        cell(event.subject_id or ""),
        cell(event.field),
        cell(event.purpose),
        cell(event.query),
        cell(" ".join(event.columns)),
        "" if event.row_count is None else str(event.row_count),
        " ".join(event.subject_ids),
        event.ip_address or "",
        detail_cell(event.detail),
    ]


@require_GET
@login_required
def access_log_export(request: HtmxHttpRequest) -> HttpResponse:
    """The filtered accesses as CSV, newest first, streamed."""
    require(policy.may_view_access_log(request.user))
    filters = _filters(request)
    if not filters.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('users:access-log')}?{filter_query(request)}")
    rows = (_row(event) for event in iter_access_log(filters.qs))
    return csv_response(name="access-log", columns=EXPORT_COLUMNS, rows=rows)
