"""The security log page (admins): the events newest first, filtered by kind, person, address
and dates, a page at a time, and the filtered rows as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from users import policy
from users.filters import SecurityEventFilter
from users.models import SecurityEvent
from users.selectors.export import EXPORT_FORMULA_START
from users.selectors.security import (
    iter_security_log,
    locked_out_until,
    locked_usernames,
    security_log,
    security_log_page,
)
from users.services.security import account_unlock
from users.views.common import HtmxHttpRequest, htmx_target, require, vary_on_htmx

TEMPLATE = "users/security_log.html"
EXPORT_COLUMNS = (
    "at",
    "kind",
    "actor",
    "subject",
    "username",
    "ip_address",
    "user_agent",
    "detail",
)
_FORMULA_FIRST = frozenset("".join(EXPORT_FORMULA_START))


def _filters(request: HtmxHttpRequest) -> SecurityEventFilter:
    return SecurityEventFilter(request.GET, queryset=security_log())


def _filter_query(request: HtmxHttpRequest) -> str:
    """The filters of this request as a query string (the page and export links keep them)."""
    return urlencode([(k, v) for k, v in request.GET.items() if k != "after" and v])


@never_cache
@require_GET
@login_required
def security_log_page_view(request: HtmxHttpRequest) -> HttpResponse:
    require(policy.may_view_security_log(request.user))
    filters = _filters(request)
    page = None
    if filters.is_valid():
        page = security_log_page(filters.qs, after=request.GET.get("after"))
        if page.lost_cursor:
            messages.info(request, "That page of the log is gone; showing the newest events.")
    locked = set()
    if page is not None:
        locked = locked_usernames(
            event.username for event in page.events if event.kind == SecurityEvent.Kind.LOCKED_OUT
        )
    context = {
        "locked": locked,
        "filter": filters,
        "form": filters.form,
        "page": page,
        "query": _filter_query(request),
        "kinds": SecurityEvent.Kind.choices,
        "may_unlock": policy.may_unlock(request.user),
        "address_limit": settings.SIGN_IN_ADDRESS_FAILURE_LIMIT,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    template = f"{TEMPLATE}#results" if htmx_target(request) == "log-results" else TEMPLATE
    return vary_on_htmx(render(request, template, context))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with one of these as a formula (as the users' export).
    if text and text[0] in _FORMULA_FIRST:
        return "'" + text
    return text


def _rows(events) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for chunk in itertools.batched(iter_security_log(events), 500, strict=False):
        yield "".join(
            writer.writerow(
                [
                    event.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                    event.kind,
                    _cell(event.actor.email if event.actor else ""),
                    _cell(event.subject.email if event.subject else ""),
                    _cell(event.username),
                    event.ip_address or "",
                    _cell(event.user_agent),
                    _cell(json.dumps(event.detail, sort_keys=True) if event.detail else ""),
                ]
            )
            for event in chunk
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@login_required
def security_log_export(request: HtmxHttpRequest) -> HttpResponse:
    """The filtered events as CSV, newest first, streamed."""
    require(policy.may_view_security_log(request.user))
    filters = _filters(request)
    if not filters.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('users:security-log')}?{_filter_query(request)}")
    response = StreamingHttpResponse(_rows(filters.qs), content_type="text/csv; charset=utf-8")
    filename = f"security-log-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def security_log_unlock(request: HtmxHttpRequest) -> HttpResponse:
    """Lift the lockout of the address typed (an account or not), and with an IP address also
    that address's limit; back to the log with the filters it was sent from."""
    require(policy.may_unlock(request.user))
    back = reverse("users:security-log")
    query = request.POST.get("query", "")
    if query and query.isprintable() and len(query) <= 2000:
        back = f"{back}?{query}"
    username = request.POST.get("username", "").strip()
    ip_address = request.POST.get("ip_address", "").strip()
    if not username or len(username) > 254 or not username.isprintable():
        messages.error(request, "Type the address the account signs in with; nothing changed.")
        return redirect(back)
    if ip_address:
        try:
            validate_ipv46_address(ip_address)
        except ValidationError:
            messages.error(request, f"{ip_address[:45]!r} is not an IP address; nothing changed.")
            return redirect(back)
    was_locked = locked_out_until(username) is not None
    account_unlock(
        username=username, actor=request.user, request=request, ip_address=ip_address or None
    )
    what = f"{username} and {ip_address}" if ip_address else username
    if was_locked or ip_address:
        messages.success(request, f"Unlocked {what}: they may sign in again.")
    else:
        messages.info(request, f"{username} was not locked out; its failures were cleared.")
    return redirect(back)
