"""The status board: a column per status, cards waiting longest first, moves by drag or menu.

`users/board.html` is the page. Its `board` partial (id `board`) holds every column and is what
a move returns; its `column` partial (id `column-<STATUS>`) is what "Load more" returns. The
list's filters and search (same query parameters) narrow the board too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.html import escape
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from users import policy, selectors, sla
from users.filters import ASSIGNEE_ME, ASSIGNEE_NONE
from users.models import REASON_CODE_STATUSES, Status, User, is_user_id
from users.rendering import Card, FlagBadges, url_for_each
from users.selectors.assignment import OPEN_STATUSES, assignable_people, open_cases_by_assignee
from users.selectors.change_requests import users_with_open_requests
from users.selectors.reason_codes import active_reason_codes
from users.services.assignment import case_claim
from users.views import saved_views
from users.views.common import (
    HtmxHttpRequest,
    ListState,
    htmx_target,
    list_state,
    move_user,
    parse_version,
    require,
    vary_on_htmx,
)

TEMPLATE = "users/board.html"
COLUMN_SIZE = 25
COLUMN_MAX = 500


def _limit(params: QueryDict, status: str) -> int:
    try:
        value = int(params.get(f"limit_{status}", COLUMN_SIZE))
    except ValueError:
        return COLUMN_SIZE
    return max(COLUMN_SIZE, min(value, COLUMN_MAX))


# Units of `time_in_status`, largest first.
_UNITS = (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60))


def time_in_status(seconds: float) -> str:
    """How long a card has waited, in its two largest units: "2 y 41 d", "3 d 4 h", "12 min".

    Compact for a card (the exact moment is in its title), and ~20x cheaper than Django's
    calendar-aware timesince, which the board would call 125 times per request.
    """
    parts: list[str] = []
    remaining = max(0, int(seconds))  # a clock a little ahead is "< 1 min", not "-1 y"
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount} {unit}")
        elif parts:
            break  # adjacent units only: "3 d", not "3 d 5 min"
        if len(parts) == 2:
            break
    return " ".join(parts) if parts else "< 1 min"


def _cards(
    columns: dict[str, list[selectors.CardRow]], moved: frozenset[str] = frozenset()
) -> dict[str, list[Card]]:
    """The cards of every column (status -> rows), drawn with one set of helpers; `moved`:
    the cards just moved, highlighted."""
    now = timezone.now()
    detail_url = url_for_each("users:user-detail")
    move_url = url_for_each("users:board-move")
    assign_url = url_for_each("users:board-assign")
    badges = FlagBadges(f"{TEMPLATE}#flag-badges")
    tz = timezone.get_current_timezone()
    pending = users_with_open_requests(row.id for rows in columns.values() for row in rows)
    cards: dict[str, list[Card]] = {}
    for status, rows in columns.items():
        cards[status] = []
        for row in rows:
            waited = now - row.status_changed_at
            since = row.status_changed_at.astimezone(tz)
            # Ids are [0-9A-Z] and the URLs are made of them; only the name can hold markup.
            cards[status].append(
                Card(
                    pk=SafeString(row.id),
                    display_name=escape(row.display_name),
                    version=SafeString(row.version),
                    detail_url=SafeString(detail_url(row.id)),
                    move_url=SafeString(move_url(row.id)),
                    since=SafeString(time_in_status(waited.total_seconds())),
                    since_title=SafeString(f"{since:%Y-%m-%d %H:%M}"),
                    sla=sla.state(status, row.status_changed_at, now),
                    flags_html=badges(row.flags),
                    pending=row.id in pending,
                    assignee=escape(row.assignee_name),
                    assign_url=SafeString(assign_url(row.id)),
                    moved=row.id in moved,
                )
            )
    return cards


def _move_menu(options: policy.MoveOptions) -> str:
    """The <option>s of a card's move menu: the same for every card of a column, so rendered
    once per column instead of once per card."""
    return render_to_string(
        f"{TEMPLATE}#move-options",
        {
            "recommended_moves": options.recommended,
            "off_flow_moves": options.off_flow,
            "can_move_off_flow": options.off_flow_allowed,
        },
    )


# How many moved cards stay pinned at the top of their columns (until the next reload).
PINNED_MAX = 20


def pinned_ids(raw: str) -> list[str]:
    """The moved cards a board request carries (`pinned`, ids separated by spaces): user ids
    only, each once, at most PINNED_MAX; anything else is dropped."""
    ids: list[str] = []
    for pk in raw.split():
        if is_user_id(pk) and pk not in ids:
            ids.append(pk)
    return ids[:PINNED_MAX]


def workload(
    request: HtmxHttpRequest, params: QueryDict, state: ListState, counts: dict[str, int]
) -> list[dict[str, Any]]:
    """The strip "Open cases by assignee": each person's open cases, and the unassigned, under
    the board's other filters, each a link to the board filtered on them (issue 14.5).

    Without an assignee filter the columns' `counts` say how many cases are open, so only the
    assigned ones are counted (`open_cases_by_assignee`); with one, the counts are the
    filter's, and the strip counts the board without it.
    """
    if not state.is_valid:
        return []
    chosen = params.get("assignee", "")
    if chosen:
        others = params.copy()
        others.pop("assignee", None)
        base = list_state(others, request.user)
        found = open_cases_by_assignee(base.queryset)
    else:
        base = state
        open_total = sum(counts.get(status, 0) for status in OPEN_STATUSES)
        found = open_cases_by_assignee(state.queryset, open_total=open_total)
    mine = request.user.pk
    entries = []
    for entry in found:
        value = entry.assignee_id or ASSIGNEE_NONE
        entries.append(
            {
                "name": entry.name,
                "count": f"{entry.count:,}",
                "query": base.querystring(assignee=value),
                "current": chosen == value or (chosen == ASSIGNEE_ME and value == mine),
            }
        )
    return entries


def board_context(
    request: HtmxHttpRequest,
    params: QueryDict,
    *,
    pinned: list[str] | None = None,
    failed_card: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The board's page and regions. `pinned`: cards just moved (newest first), shown first
    in their columns and highlighted; `failed_card`: a card whose move was refused, shown with
    its menu open and the error (`card_errors`) in it."""
    pinned = pinned or []
    state = list_state(params, request.user)
    # No filter and no search: every live user, whose counts the database keeps ready.
    counts = (
        selectors.status_counts(state.queryset, all_live=not state.params())
        if state.is_valid
        else {}
    )
    query = state.querystring()
    moves = {status: policy.move_options(request.user, status) for status in Status}
    # What the actor may do is the same from every column; only the targets differ.
    can_move = moves[Status.WAITING_FOR_VERIFICATION].allowed
    can_move_off_flow = moves[Status.WAITING_FOR_VERIFICATION].off_flow_allowed
    limits = {status.value: _limit(params, status.value) for status in Status}
    # Columns opened further with "Load more" stay open through moves and reloads: their
    # limits are part of the board's URL and of what a move comes back to.
    expanded = {f"limit_{s}": n for s, n in limits.items() if n > COLUMN_SIZE}
    board_query = state.querystring(**expanded)
    shown = [*pinned, failed_card] if failed_card and failed_card not in pinned else pinned
    cards_of = _cards(
        selectors.board_columns(state.queryset, limits, pinned=shown) if state.is_valid else {},
        frozenset(pinned),
    )
    columns = []
    for status in Status:
        limit = limits[status.value]
        cards = cards_of.get(status.value, [])
        count = counts.get(status.value, 0)
        options = moves[status]
        columns.append(
            {
                "status": status.value,
                "label": status.label,
                "count": count,
                "count_display": f"{count:,}",
                "cards": cards,
                "recommended_values": " ".join(options.recommended),
                "move_options": _move_menu(options) if can_move and cards else "",
                "more_query": (
                    state.querystring(**{**expanded, f"limit_{status.value}": limit + COLUMN_SIZE})
                    if count > len(cards) and limit < COLUMN_MAX
                    else None
                ),
                "remaining": count - len(cards),
                # After "Load more", the keyboard focus goes to the first card it brought.
                "first_new": limit - COLUMN_SIZE if limit > COLUMN_SIZE else None,
            }
        )
    reason_codes = active_reason_codes() if can_move else []
    return {
        "state": state,
        "filter": state.filterset,
        "columns": columns,
        "reason_codes": reason_codes,
        # The codes' <option>s, drawn once for every card's menu.
        "reason_code_options": render_to_string(
            f"{TEMPLATE}#reason-code-options", {"reason_codes": reason_codes}
        )
        if can_move
        else "",
        "coded_statuses": " ".join(REASON_CODE_STATUSES),
        "query": query,
        "board_query": board_query,
        "kept_statuses": [v for v in params.getlist("status") if v in Status.values],
        "sla_targets": [
            (Status(status).label, f"{hours:g}") for status, hours in sla.targets().items()
        ],
        "can_move": can_move,
        "can_move_off_flow": can_move_off_flow,
        # "Assign to me" on unassigned cards (issue 14.1).
        "can_claim": policy.may_claim(request.user),
        "card_csrf_token": get_token(request) if can_move else "",
        "board_errors": [],
        "card_errors": [],
        "pinned": " ".join(pinned),
        "failed_card": failed_card,
        # Read when a template draws the strip (the board, the page), not for one column.
        "workload": SimpleLazyObject(lambda: workload(request, params, state, counts)),
        # Called by the filter form only: a region alone costs no query for it.
        "assignee_people": assignable_people,
        **extra,
    }


@require_GET
@login_required
def board(request: HtmxHttpRequest) -> HttpResponse:
    require(policy.sees_everyone(request.user))
    context = board_context(request, request.GET, pinned=pinned_ids(request.GET.get("pinned", "")))
    target = htmx_target(request) or ""
    query = context["board_query"]
    url = f"{request.path}?{query}" if query else request.path
    if target == "board":
        return vary_on_htmx(push_url(render(request, f"{TEMPLATE}#board", context), url))
    if target.startswith("column-"):
        status = target.removeprefix("column-")
        column = next((c for c in context["columns"] if c["status"] == status), None)
        if column is not None:
            # The address bar keeps the longer column, so a move or a reload keeps it too.
            response = render(request, f"{TEMPLATE}#column", {**context, "column": column})
            return vary_on_htmx(push_url(response, url))
    context["saved_views"] = saved_views.block(request, "board", context["query"])
    return vary_on_htmx(render(request, TEMPLATE, context))


def _board_params(request: HtmxHttpRequest) -> QueryDict:
    """The board a move returns to: the page the request came from.

    Without JavaScript that is the form's `query`, written when the page was drawn. With htmx
    it is the address bar (HX-Current-URL): "Load more" lengthens one column after the other
    cards' forms were drawn, and only the address bar has followed it.
    """
    current = urlsplit(request.htmx.current_url or "") if request.htmx else None
    if current is not None and current.path == reverse("users:board"):
        return QueryDict(current.query)
    return QueryDict(request.POST.get("query", ""))


def _back_to_board(
    request: HtmxHttpRequest, params: QueryDict, user: User, errors: list[str], success: str
) -> HttpResponse:
    """Without JavaScript: the outcome of a card's action as messages, back to the board with
    the same filters."""
    for error in errors:
        messages.error(request, f"{user.display_name}: {error}")
    if not errors:
        messages.success(request, success)
    url = reverse("users:board")
    return redirect(f"{url}?{params.urlencode()}" if params else url)


def _refused_in_card(
    request: HtmxHttpRequest,
    params: QueryDict,
    pinned: list[str],
    user: User,
    errors: list[str],
    **typed: str,
) -> dict[str, Any]:
    """The board after a refused card action: the card's menu open with the error in it (the
    card shown even past the cards of its column), what was `typed` still there; a card the
    filters no longer show has its error above the board instead."""
    context = board_context(
        request, params, pinned=pinned, failed_card=user.pk, card_errors=errors, **typed
    )
    if not any(card.pk == user.pk for c in context["columns"] for card in c["cards"]):
        context["board_errors"] = [f"{user.display_name}: {error}" for error in errors]
    return context


@require_POST
@login_required
def board_move(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """Move one card, if `policy.check_move` allows it; an off-flow move also needs a reason
    (the service refuses a move without one)."""
    require(policy.may_change_status(request.user))
    user = get_object_or_404(User, pk=pk)
    params = _board_params(request)
    user, errors = move_user(
        request,
        user,
        target=request.POST.get("status", ""),
        reason=request.POST.get("reason", "").strip(),
        reason_code=request.POST.get("reason_code", ""),
        note=request.POST.get("note", ""),
        expected_version=parse_version(request.POST.get("version")),
    )
    if not request.htmx:
        success = f"{user.display_name} moved to {Status(user.status).label}."
        return _back_to_board(request, params, user, errors, success)
    pinned = pinned_ids(request.POST.get("pinned", ""))
    if errors:
        context = _refused_in_card(
            request,
            params,
            pinned,
            user,
            errors,
            card_reason=request.POST.get("reason", "").strip(),
        )
    else:
        # The moved card stays in sight, first in its new column, until the next reload.
        message = f"{user.display_name} moved to {Status(user.status).label}."
        pinned = [user.pk, *(pk for pk in pinned if pk != user.pk)][:PINNED_MAX]
        context = board_context(request, params, pinned=pinned, board_message=message)
    response = render(request, f"{TEMPLATE}#board", context)
    if not errors:
        trigger_client_event(response, "user-moved", {"id": user.pk, "status": user.status})
    return response


@require_POST
@login_required
def board_assign(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """ "Assign to me" on a card (issue 14.1): the case must still be unassigned; a case taken
    meanwhile is refused in the card, naming who has it. Returns the board like a move."""
    require(policy.may_claim(request.user))
    user = get_object_or_404(User, pk=pk)
    params = _board_params(request)
    errors: list[str] = []
    try:
        claimed = case_claim(user=user, actor=request.user, expected_assignee=None)
    except ValidationError as exc:
        errors = list(exc.messages)
    except PermissionDenied as exc:
        errors = [str(exc)]
    if not request.htmx:
        return _back_to_board(
            request, params, user, errors, f"{user.display_name} assigned to you."
        )
    pinned = pinned_ids(request.POST.get("pinned", ""))
    if errors:
        context = _refused_in_card(request, params, pinned, user, errors)
    else:
        message = f"{claimed.display_name} assigned to you."
        context = board_context(request, params, pinned=pinned, board_message=message)
    return render(request, f"{TEMPLATE}#board", context)
