"""The access log page (compliance and admins, issue 13.4): who opened, exported and read which
users, newest first, filtered by kind, person, whose record and dates, a page at a time, and the
filtered rows as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from users import policy
from users.filters import AccessEventFilter
from users.models import AccessEvent
from users.selectors.access import access_log, access_log_page, iter_access_log
from users.selectors.export import EXPORT_FORMULA_START
from users.views.common import HtmxHttpRequest, htmx_target, require, vary_on_htmx

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
_FORMULA_FIRST = frozenset("".join(EXPORT_FORMULA_START))


def _filters(request: HtmxHttpRequest) -> AccessEventFilter:
    return AccessEventFilter(request.GET, queryset=access_log())


def _filter_query(request: HtmxHttpRequest) -> str:
    """The filters of this request as a query string (the page and export links keep them)."""
    return urlencode([(k, v) for k, v in request.GET.items() if k != "after" and v])


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
        "query": _filter_query(request),
    }
    template = f"{TEMPLATE}#results" if htmx_target(request) == "log-results" else TEMPLATE
    return vary_on_htmx(render(request, template, context))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with one of these as a formula (as the users' export).
    if text and text[0] in _FORMULA_FIRST:
        return "'" + text
    return text


def _row(event: AccessEvent) -> list[str]:
    return [
        event.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        event.kind,
        _cell(event.actor.email if event.actor else ""),
        _cell(event.subject_id or ""),
        _cell(event.field),
        _cell(event.purpose),
        _cell(event.query),
        _cell(" ".join(event.columns)),
        "" if event.row_count is None else str(event.row_count),
        " ".join(event.subject_ids),
        event.ip_address or "",
        _cell(json.dumps(event.detail, sort_keys=True) if event.detail else ""),
    ]


def _rows(events) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for chunk in itertools.batched(iter_access_log(events), 500, strict=False):
        yield "".join(writer.writerow(_row(event)) for event in chunk)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@login_required
def access_log_export(request: HtmxHttpRequest) -> HttpResponse:
    """The filtered accesses as CSV, newest first, streamed."""
    require(policy.may_view_access_log(request.user))
    filters = _filters(request)
    if not filters.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('users:access-log')}?{_filter_query(request)}")
    response = StreamingHttpResponse(_rows(filters.qs), content_type="text/csv; charset=utf-8")
    filename = f"access-log-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
