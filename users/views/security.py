"""The security log page (admins): the events newest first, filtered by kind, person, address
and dates, a page at a time, and the filtered rows as CSV."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from users import policy
from users.filters import SecurityEventFilter
from users.models import SecurityEvent
from users.selectors.security import (
    iter_security_log,
    locked_out_until,
    locked_usernames,
    security_log,
    security_log_page,
)
from users.services.security import account_unlock
from users.views.common import HtmxHttpRequest, htmx_target, require, vary_on_htmx
from users.views.logs import cell, csv_response, detail_cell, filter_query, instant

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


def _filters(request: HtmxHttpRequest) -> SecurityEventFilter:
    return SecurityEventFilter(request.GET, queryset=security_log())


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
        "query": filter_query(request),
        "kinds": SecurityEvent.Kind.choices,
        "may_unlock": policy.may_unlock(request.user),
        "address_limit": settings.SIGN_IN_ADDRESS_FAILURE_LIMIT,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    template = f"{TEMPLATE}#results" if htmx_target(request) == "log-results" else TEMPLATE
    return vary_on_htmx(render(request, template, context))


def _row(event: SecurityEvent) -> list[str]:
    return [
        instant(event.at),
        event.kind,
        cell(event.actor.email if event.actor else ""),
        cell(event.subject.email if event.subject else ""),
        cell(event.username),
        event.ip_address or "",
        cell(event.user_agent),
        detail_cell(event.detail),
    ]


@require_GET
@login_required
def security_log_export(request: HtmxHttpRequest) -> HttpResponse:
    """The filtered events as CSV, newest first, streamed."""
    require(policy.may_view_security_log(request.user))
    filters = _filters(request)
    if not filters.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('users:security-log')}?{filter_query(request)}")
    rows = (_row(event) for event in iter_security_log(filters.qs))
    return csv_response(name="security-log", columns=EXPORT_COLUMNS, rows=rows)


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
