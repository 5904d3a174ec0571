"""Four-eyes approval in the console: the Approvals page, and deciding a change request
(approve after step-up, reject with a reason, withdraw one's own).

Every decision is a plain form POST answered by a redirect with a message, to the page it was
sent from (the user's detail or the Approvals page): the same with or without JavaScript.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from users import policy, services
from users.models import ChangeRequest, User
from users.selectors import change_requests as change_request_selectors
from users.views.common import (
    HtmxHttpRequest,
    diff_rows,
    htmx_target,
    needs_step_up,
    redirect_or_client_redirect,
    require,
    step_up_redirect,
    vary_on_htmx,
)

TEMPLATE = "users/approvals.html"
# The age filter's choices: proposed at least this many hours ago.
AGE_CHOICES = ((0, "Any age"), (1, "Over 1 hour"), (24, "Over 24 hours"), (48, "Over 48 hours"))


# --- presenting a request ------------------------------------------------------------------------


def presented(
    actor: User, requests: list[ChangeRequest], *, last_changers: dict[str, str | None]
) -> list[dict[str, Any]]:
    """What the detail page and the Approvals page show of each request: the diff, and which
    buttons `actor` gets (the policy's answer; the services ask again). Those who may reveal
    masked values see a request's account numbers in full: comparing them is the check."""
    masked = not policy.may_reveal(actor)
    return [
        {
            "request": request,
            "rows": diff_rows(request.changes, masked=masked),
            "can_decide": policy.may_decide(
                actor, request, last_changer_id=last_changers.get(request.kind)
            ),
            "can_withdraw": policy.may_withdraw(actor, request),
            # Why not, for those who decide others' requests (e.g. "you proposed this").
            "refusal": policy.may_see_approvals(actor)
            and policy.decision_refusal(
                actor, request, last_changer_id=last_changers.get(request.kind)
            ),
        }
        for request in requests
    ]


def pending_context(actor: User, user: User) -> dict[str, Any]:
    """The detail page's pending-changes region: `user`'s open requests."""
    requests = change_request_selectors.open_requests_for(user)
    last_changers = {
        request.kind: change_request_selectors.last_changer_id(user, request.kind)
        for request in requests
        if request.kind == ChangeRequest.Kind.COUNTER_ACCOUNT and policy.may_see_approvals(actor)
    }
    return {"pending": presented(actor, requests, last_changers=last_changers)}


# How each way a request ends reads in the history.
_ENDED = {
    ChangeRequest.State.APPROVED: "approved",
    ChangeRequest.State.REJECTED: "rejected",
    ChangeRequest.State.WITHDRAWN: "withdrawn",
    ChangeRequest.State.EXPIRED: "expired",
    ChangeRequest.State.VOID: "void",
}


def four_eyes_events(user: User, *, limit: int) -> list[dict[str, Any]]:
    """The user's history of guarded changes, newest first: each proposal, and how it ended
    (approved, rejected, withdrawn, expired, void), with who and when. An overdue pending
    request shows as expired at its `expires_at`, before the sweep writes it."""
    now = timezone.now()
    events: list[dict[str, Any]] = []
    for request in change_request_selectors.requests_of(user)[:limit]:
        what = request.get_kind_display()
        events.append(
            {
                "at": request.proposed_at,
                "action": "proposed",
                "what": what,
                "who": request.proposed_by,
                "rows": diff_rows(request.changes),
                "note": request.reason,
                "request": request,
            }
        )
        state = request.state_at(now)
        if state != ChangeRequest.State.PENDING:
            events.append(
                {
                    "at": request.decided_at or request.expires_at,
                    "action": _ENDED[state],
                    "what": what,
                    "who": request.decided_by,
                    "maker": request.proposed_by,
                    "rows": [],
                    "note": request.decision_reason,
                    "version": request.applied_version,
                    "request": request,
                }
            )
    events.sort(key=lambda event: (event["at"], event["action"] != "proposed"), reverse=True)
    return events


def proposed_message(requests: list[ChangeRequest]) -> str:
    """What a form that proposed guarded changes says about them."""
    kinds = ", ".join(request.get_kind_display() for request in requests)
    return f"Waiting for approval by a second person: {kinds}."


# --- the Approvals page --------------------------------------------------------------------------


def _int(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0


@require_GET
@login_required
def approvals(request: HtmxHttpRequest) -> HttpResponse:
    """Pending change requests, oldest first, filtered by kind, proposer and age."""
    require(policy.may_see_approvals(request.user))
    kind = request.GET.get("kind", "")
    if kind not in ChangeRequest.Kind.values:
        kind = ""
    proposer = request.GET.get("proposer", "")
    age = _int(request.GET.get("age"))
    now = timezone.now()
    rows = list(
        change_request_selectors.approvals(
            kind=kind, proposer_id=proposer, older_than_hours=age or None, now=now
        )[:200]
    )
    # Who last changed each counter account listed (its last changer may not approve).
    account_changers = change_request_selectors.last_changer_ids(
        (row.user_id for row in rows if row.kind == ChangeRequest.Kind.COUNTER_ACCOUNT),
        ChangeRequest.Kind.COUNTER_ACCOUNT,
    )
    items = [
        item
        for row in rows
        for item in presented(
            request.user, [row], last_changers={row.kind: account_changers.get(row.user_id)}
        )
    ]
    context = {
        "items": items,
        "kinds": ChangeRequest.Kind.choices,
        "kind": kind,
        "proposers": change_request_selectors.proposers(now),
        "proposer": proposer,
        "ages": AGE_CHOICES,
        "age": age,
        "back": request.get_full_path(),
    }
    template = (
        f"{TEMPLATE}#approvals-results" if htmx_target(request) == "approvals-results" else TEMPLATE
    )
    return vary_on_htmx(render(request, template, context))


# --- deciding ------------------------------------------------------------------------------------


def _load(pk: int, actor: User) -> ChangeRequest:
    found = change_request_selectors.change_request(pk)
    if found is None or not policy.can_view(actor, found.user):
        raise Http404("No such change request.")
    return found


def _back(request: HtmxHttpRequest, change_request: ChangeRequest) -> str:
    """Where a decision returns: the page named by `next` (this site only), else the user."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("users:user-detail", args=[change_request.user_id])


def _what(change_request: ChangeRequest) -> str:
    return f"{change_request.get_kind_display()} of {change_request.user.display_name}"


@require_POST
@login_required
def change_request_approve(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Approve (applies the change), after a second-factor check within STEP_UP_SECONDS."""
    change_request = _load(pk, request.user)
    require(policy.may_see_approvals(request.user))
    back = _back(request, change_request)
    if needs_step_up(request):
        # Back to the page the Approve button was on, where the person presses it again.
        return step_up_redirect(request, back)
    try:
        decided = services.change_request_approve(change_request=change_request, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect_or_client_redirect(request, back)
    if decided.state == ChangeRequest.State.APPROVED:
        messages.success(
            request, f"Approved: {_what(decided)} applied as version {decided.applied_version}."
        )
    elif decided.state == ChangeRequest.State.EXPIRED:
        messages.error(request, f"Not applied: the change of {_what(decided)} had expired.")
    else:
        messages.error(
            request, f"Not applied: {decided.decision_reason} The request is void; nothing changed."
        )
    return redirect_or_client_redirect(request, back)


@require_POST
@login_required
def change_request_reject(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Reject with a reason (required)."""
    change_request = _load(pk, request.user)
    require(policy.may_see_approvals(request.user))
    back = _back(request, change_request)
    try:
        decided = services.change_request_reject(
            change_request=change_request,
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect_or_client_redirect(request, back)
    if decided.state == ChangeRequest.State.EXPIRED:
        messages.info(request, f"The change of {_what(decided)} had already expired.")
    else:
        messages.success(request, f"Rejected: {_what(decided)}.")
    return redirect_or_client_redirect(request, back)


@require_POST
@login_required
def change_request_withdraw(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The proposer takes their request back."""
    change_request = _load(pk, request.user)
    require(policy.may_withdraw(request.user, change_request))
    back = _back(request, change_request)
    try:
        services.change_request_withdraw(change_request=change_request, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect_or_client_redirect(request, back)
    messages.success(request, f"Withdrawn: {_what(change_request)}.")
    return redirect_or_client_redirect(request, back)


def approvals_url(**filters: Any) -> str:
    query = urlencode({k: v for k, v in filters.items() if v})
    return reverse("users:approvals") + (f"?{query}" if query else "")
