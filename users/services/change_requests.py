"""Deciding change requests (four-eyes): approve, reject, withdraw, expire.

A guarded change is filed by the write that meets it (`users.services.proposals`, from
`users.services.users`); here a second person decides. Approval applies the diff through the
same write path as one version whose author is the maker and whose `approved_by` is the
checker, or, when the fields changed since the proposal (or the user was deleted), voids the
request and applies nothing. Every decision locks the user's row first, then the request's, as
edits do, so two checkers at once are served one after the other: the second finds the request
decided ("already decided"), never a second version.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from users import contract, policy
from users.models import ChangeRequest, FeatureFlag, Role, SecurityEvent, User
from users.selectors.change_requests import last_changer_id
from users.services.proposals import REASON_MAX_LENGTH, close_request, expire_if_due
from users.services.security import security_event
from users.services.users import Clock, _apply, _lock, clean_user_data, user_snapshot

State = ChangeRequest.State


def _locked(change_request: ChangeRequest | int) -> tuple[User, ChangeRequest]:
    """The request's user, then the request itself, both locked (the edits' order)."""
    pk = change_request.pk if isinstance(change_request, ChangeRequest) else change_request
    found = ChangeRequest.objects.filter(pk=pk).values_list("user_id", flat=True).first()
    if found is None:
        raise ValidationError(
            {"change_request": ValidationError(f"No change request {pk}.", code="not_found")}
        )
    user = _lock(User(pk=found))
    # `of=("self",)`: PostgreSQL locks no outer-joined (nullable) proposer row.
    request = (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("proposed_by", "decided_by")
        .get(pk=pk)
    )
    return user, request


def _refuse_decided(request: ChangeRequest) -> None:
    if request.state != State.PENDING:
        raise ValidationError(
            {
                "change_request": ValidationError(
                    f"This change was already decided: it is {State(request.state).label.lower()}"
                    f"{' by ' + str(request.decided_by) if request.decided_by else ''}.",
                    code="already_decided",
                )
            }
        )


def _conflict(user: User, request: ChangeRequest) -> str:
    """Why the request no longer applies to the stored record ("" when it still does)."""
    if user.deleted:
        return "The user was deleted since the proposal."
    stored = user_snapshot(user)
    for name, (old, _new) in request.changes.items():
        if request.kind == ChangeRequest.Kind.CONSOLE_FLAG:
            if FeatureFlag.CONSOLE in (stored.get(name) or []):
                return "The user was granted the CONSOLE flag since the proposal."
        elif stored.get(name) != old:
            label = contract.FIELD_LABELS.get(name, name)
            return f"{label} changed since the proposal (now version {user.version})."
    return ""


def _new_values(user: User, request: ChangeRequest) -> dict[str, Any]:
    if request.kind == ChangeRequest.Kind.CONSOLE_FLAG:
        return {"feature_flags": sorted(user.flag_names() | {FeatureFlag.CONSOLE})}
    if request.kind == ChangeRequest.Kind.ROLES:
        roles = sorted(set(request.changes["roles"][1] or []))
        unknown = set(roles) - set(Role.values)
        if unknown:
            raise ValidationError({"roles": f"Unknown role {sorted(unknown)[0]!r}."})
        return {"roles": roles}
    return clean_user_data({name: new for name, (_old, new) in request.changes.items()}, user=user)


@transaction.atomic
def change_request_approve(
    *, change_request: ChangeRequest | int, actor: User, clock: Clock = timezone.now
) -> ChangeRequest:
    """Apply a pending request as one version (author: the proposer; `approved_by`: `actor`).

    Refused (`PermissionDenied`) to anyone `policy.decision_refusal` names: no approve
    permission, the proposer, the user themselves, the counter account's last changer.
    Refused (`ValidationError`, code `already_decided`) when it is no longer pending. Returns
    the request: APPROVED with `applied_version`, or EXPIRED (past its time), or VOID with the
    reason when the fields changed since the proposal; nothing is applied in those cases.
    """
    now = clock()
    user, request = _locked(change_request)
    _refuse_decided(request)
    policy.check_decide(actor, request, last_changer_id=last_changer_id(user, request.kind))
    if expire_if_due(request, now):
        return request
    conflict = _conflict(user, request)
    if conflict:
        return close_request(request, state=State.VOID, actor=actor, now=now, reason=conflict)
    try:
        values = _new_values(user, request)
    except ValidationError as exc:
        reason = "; ".join(exc.messages)
        return close_request(request, state=State.VOID, actor=actor, now=now, reason=reason)
    before = user.version
    saved = _apply(user, values, actor=request.proposed_by, now=now, approved_by=actor)
    if saved.version == before:
        reason = "Nothing left to change: the record already holds the proposed values."
        return close_request(request, state=State.VOID, actor=actor, now=now, reason=reason)
    close_request(
        request, state=State.APPROVED, actor=actor, now=now, applied_version=saved.version
    )
    security_event(
        kind=SecurityEvent.Kind.CHANGE_APPROVED,
        actor=actor,
        subject=saved,
        detail=_detail(request),
    )
    return request


def _detail(request: ChangeRequest) -> dict[str, Any]:
    """The log row's detail: the event's actor is the checker, this names the maker."""
    maker = request.proposed_by
    return {
        "change_request": request.pk,
        "kind": request.kind,
        "proposed_by": request.proposed_by_id,
        "maker": (maker.email or maker.display_name) if maker else "the system",
        "fields": sorted(request.changes),
    }


@transaction.atomic
def change_request_reject(
    *, change_request: ChangeRequest | int, actor: User, reason: str, clock: Clock = timezone.now
) -> ChangeRequest:
    """Refuse a pending request; a reason is required. Who may: as for approving."""
    now = clock()
    reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    user, request = _locked(change_request)
    _refuse_decided(request)
    policy.check_decide(actor, request, last_changer_id=last_changer_id(user, request.kind))
    if not reason:
        raise ValidationError(
            {"reason": ValidationError("Say why the change is rejected.", code="required")}
        )
    if expire_if_due(request, now):
        return request
    close_request(request, state=State.REJECTED, actor=actor, now=now, reason=reason)
    security_event(
        kind=SecurityEvent.Kind.CHANGE_REJECTED,
        actor=actor,
        subject=user,
        detail={**_detail(request), "reason": reason},
    )
    return request


@transaction.atomic
def change_request_withdraw(
    *, change_request: ChangeRequest | int, actor: User, clock: Clock = timezone.now
) -> ChangeRequest:
    """The proposer takes a pending request back."""
    now = clock()
    _user, request = _locked(change_request)
    _refuse_decided(request)
    if not policy.may_withdraw(actor, request):
        raise PermissionDenied("Only the person who proposed a change may withdraw it.")
    if expire_if_due(request, now):
        return request
    return close_request(request, state=State.WITHDRAWN, actor=actor, now=now)


@transaction.atomic
def change_requests_expire(*, clock: Clock = timezone.now) -> int:
    """Mark every pending request past its time as expired (at its `expires_at`); returns how
    many. Reads treat them as expired already; this writes it (`expire_change_requests`)."""
    return ChangeRequest.objects.filter(state=State.PENDING, expires_at__lte=clock()).update(
        state=State.EXPIRED, decided_at=F("expires_at")
    )
