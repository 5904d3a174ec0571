"""The status board: a column per status, cards waiting longest first, moves by drag or menu.

`users/board.html` is the page. Its `board` partial (id `board`) holds every column and is what
a move returns; its `column` partial (id `column-<STATUS>`) is what "Load more" returns. The
list's filters and search (same query parameters) narrow the board too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from users import selectors, services
from users.models import RECOMMENDED_MOVES, Status, User, is_recommended_move
from users.views.common import HtmxHttpRequest, htmx_target, list_state, require_perm, vary_on_htmx

TEMPLATE = "users/board.html"
COLUMN_SIZE = 25
COLUMN_MAX = 500


def _limit(params: QueryDict, status: str) -> int:
    try:
        value = int(params.get(f"limit_{status}", COLUMN_SIZE))
    except ValueError:
        return COLUMN_SIZE
    return max(COLUMN_SIZE, min(value, COLUMN_MAX))


def _card(user: User, now: dt.datetime, sla: dt.timedelta) -> User:
    """Decorate a user with what its card shows (time in status, SLA breach, move targets)."""
    waited = now - user.status_changed_at
    user.waited = waited
    user.overdue = waited > sla
    recommended = [Status(s) for s in RECOMMENDED_MOVES.get(user.status, ())]
    user.recommended_moves = recommended
    user.off_flow_moves = [s for s in Status if s != user.status and s not in recommended]
    user.recommended_values = " ".join(recommended)
    return user


def board_context(request: HtmxHttpRequest, params: QueryDict, **extra: Any) -> dict[str, Any]:
    state = list_state(params)
    now = timezone.now()
    sla = dt.timedelta(hours=settings.BOARD_SLA_HOURS)
    # No filter and no search: every live user, whose counts the database keeps ready.
    counts = (
        selectors.status_counts(state.queryset, all_live=not state.params())
        if state.is_valid
        else {}
    )
    query = state.querystring()
    columns = []
    for status in Status:
        limit = _limit(params, status.value)
        cards = (
            [
                _card(u, now, sla)
                for u in selectors.board_column(state.queryset, status, limit=limit)
            ]
            if state.is_valid
            else []
        )
        count = counts.get(status.value, 0)
        more = f"{query}&" if query else ""
        columns.append(
            {
                "status": status.value,
                "label": status.label,
                "count": count,
                "count_display": f"{count:,}",
                "cards": cards,
                "more_query": (
                    f"{more}limit_{status.value}={limit + COLUMN_SIZE}"
                    if count > len(cards) and limit < COLUMN_MAX
                    else None
                ),
                "remaining": count - len(cards),
            }
        )
    return {
        "state": state,
        "filter": state.filterset,
        "columns": columns,
        "query": query,
        "kept_statuses": [v for v in params.getlist("status") if v in Status.values],
        "sla_hours": settings.BOARD_SLA_HOURS,
        "can_move": request.user.has_perm("users.change_status"),
        "can_move_off_flow": request.user.has_perm("users.change_status_off_flow"),
        "board_errors": [],
        **extra,
    }


@require_GET
@login_required
def board(request: HtmxHttpRequest) -> HttpResponse:
    require_perm(request, "view_user")
    context = board_context(request, request.GET)
    target = htmx_target(request) or ""
    if target == "board":
        response = render(request, f"{TEMPLATE}#board", context)
        query = context["query"]
        return vary_on_htmx(
            push_url(response, f"{request.path}?{query}" if query else request.path)
        )
    if target.startswith("column-"):
        status = target.removeprefix("column-")
        column = next((c for c in context["columns"] if c["status"] == status), None)
        if column is not None:
            return vary_on_htmx(
                render(request, f"{TEMPLATE}#column", {**context, "column": column})
            )
    return vary_on_htmx(render(request, TEMPLATE, context))


def _version(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@require_POST
@login_required
def board_move(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Move one card: recommended moves need `change_status`; off-flow ones also
    `change_status_off_flow` and a reason (the service refuses a move without one)."""
    require_perm(request, "change_status")
    target = request.POST.get("status", "")
    user = get_object_or_404(User, pk=pk)
    if (
        target in Status.values
        and target != user.status
        and not is_recommended_move(user.status, target)
        and not request.user.has_perm("users.change_status_off_flow")
    ):
        raise PermissionDenied
    params = QueryDict(request.POST.get("query", ""))
    errors: list[str] = []
    try:
        user = services.user_change_status(
            user=user,
            status=target,
            actor=request.user,
            reason=request.POST.get("reason", "").strip(),
            expected_version=_version(request.POST.get("version")),
        )
    except services.StaleVersion as exc:
        errors = [f"{user.display_name}: {exc}"]
    except ValidationError as exc:
        errors = [f"{user.display_name}: {message}" for message in exc.messages]
    if not request.htmx:
        if errors:
            for error in errors:
                messages.error(request, error)
        else:
            messages.success(request, f"{user.display_name} moved to {Status(user.status).label}.")
        url = reverse("users:board")
        return redirect(f"{url}?{params.urlencode()}" if params else url)
    extra: dict[str, Any] = {"board_errors": errors}
    if not errors:
        extra["board_message"] = f"{user.display_name} moved to {Status(user.status).label}."
    response = render(request, f"{TEMPLATE}#board", board_context(request, params, **extra))
    if not errors:
        trigger_client_event(response, "user-moved", {"id": user.pk, "status": user.status})
    return response
