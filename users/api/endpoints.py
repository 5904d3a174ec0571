"""The JSON API of the contract (seeds 000/001), mounted at /api/: its endpoints.

Each endpoint parses, asks `users.policy`, calls a service or a selector, and returns the same
JSON for every response; `users.api.errors` maps the outcomes onto HTTP statuses.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Header, Query
from ninja import Status as HttpStatus
from ninja.errors import ValidationError as NinjaValidationError

from users import contract, policy, selectors, services
from users.api import errors
from users.api.auth import ApiKey, BearerToken
from users.api.errors import ConsoleApi, StrictJsonParser, error_item, query_error
from users.api.schemas import (
    MAX_INT,
    ChangeRequestOut,
    Conflict,
    Message,
    UserDetailOut,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
    ValidationErrors,
)
from users.contract import FIELD_LABELS
from users.models import AccessEvent, ChangeRequest, User, is_user_id
from users.query import QueryError, parse_orderby, parse_query, referenced_fields
from users.selectors import change_requests as change_request_selectors
from users.services import idempotency, invitations
from users.services.access import access_record

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

api = ConsoleApi(
    title="User console API",
    version="1",
    description=(
        "Create, read, update, delete and query the platform's users. Authenticate with a token "
        "issued in the console (API tokens page) or with `manage.py issue_api_token`: "
        "`Authorization: Bearer <token>` or `X-API-Key: <token>`. The token acts as its user, "
        "with that user's roles.\n\n"
        "Query language (`query=`): `email eq 'jane*'`, `last_name eq '*doe*'`, "
        "`phone eq '\\+32470*'`, `creation_datetime in ['20240101' to '20250101']`, "
        "`status in ['ACTIVE','INACTIVE']`, `deleted eq true`, `notes eq '*passport*'` (any "
        "case note), `status_reason_code eq 'DOCUMENT_EXPIRED'` (the current status's reason "
        "code), combined with `and` / `or` and parentheses. `orderby=last_name desc, first_name`."
    ),
    urls_namespace="api",
    auth=[BearerToken(), ApiKey()],
    parser=StrictJsonParser(),
)
errors.install(api)


# --- reading users -------------------------------------------------------------------------------


def with_relations(users: QuerySet[User]) -> QuerySet[User]:
    """Everything `user_out` reads, in a fixed number of queries per page (no N+1)."""
    only_id = User.objects.only("id")
    return users.prefetch_related(
        "flag_grants",
        Prefetch("readable_by", queryset=only_id),
        Prefetch("modifiable_by", queryset=only_id),
    )


def _get_visible(actor: User, user_id: str) -> User:
    if not is_user_id(user_id):
        raise Http404(f"No user with id {user_id[:40]!r}.")
    user = with_relations(selectors.visible_users(actor)).filter(pk=user_id).first()
    if user is None:
        raise Http404(f"No user with id {user_id}.")
    return user


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


def user_out(user: User) -> dict[str, Any]:
    """The contract's JSON for one user: every field the registry puts in the API."""
    return {
        name: _empty_to_none(contract.FIELDS[name].value_of(user)) for name in contract.API_FIELDS
    }


def _fresh(user: User) -> dict[str, Any]:
    """The stored record after a write, read the way a GET reads it."""
    return user_out(with_relations(User.objects.filter(pk=user.pk)).get())


def change_request_out(request: ChangeRequest) -> dict[str, Any]:
    """One change request as the API shows it (its state as of now: overdue is EXPIRED)."""
    return {
        "id": request.pk,
        "user_id": request.user_id,
        "kind": request.kind,
        "fields": sorted(request.changes),
        "changes": request.changes,
        "reason": request.reason,
        "proposed_by": request.proposed_by_id,
        "proposed_at": request.proposed_at,
        "expires_at": request.expires_at,
        "state": request.state_at(timezone.now()),
        "decided_by": request.decided_by_id,
        "decided_at": request.decided_at,
        "decision_reason": request.decision_reason,
        "applied_version": request.applied_version,
    }


def user_detail_out(user: User) -> dict[str, Any]:
    """A user read alone: the record and its pending changes (four-eyes)."""
    pending = change_request_selectors.open_requests_for(user)
    return {**user_out(user), "pending_changes": [change_request_out(r) for r in pending]}


# --- endpoints -----------------------------------------------------------------------------------

ERRORS = {
    400: Message,
    401: Message,
    403: Message,
    404: Message,
    409: Conflict,
    422: ValidationErrors,
}


def _errors(*codes: int) -> dict[int, Any]:
    return {code: ERRORS[code] for code in codes}


@api.post(
    "/users/",
    response={201: UserOut, **_errors(400, 401, 403, 409, 422)},
    url_name="user-create",
    summary="Create a user",
    tags=["users"],
)
def create_user(
    request: HttpRequest,
    response: HttpResponse,
    payload: UserIn,
    create_idp_user: bool = Query(
        False,
        description="Also create a console login: mails a set-password link and sets "
        "idp_user_id. email and phone are then required.",
    ),
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Replays within 24 h return the first response; another body is a 409.",
    ),
    x_idempotency_key: str | None = Header(
        None, alias="X-Idempotency-Key", description="Same as Idempotency-Key."
    ),
):
    actor: User = request.auth
    data = payload.model_dump(exclude_unset=True, mode="json")
    policy.check_create(actor, data)
    if create_idp_user:
        _check_idp_fields(data)

    header = "Idempotency-Key" if idempotency_key is not None else "X-Idempotency-Key"
    key = idempotency_key if idempotency_key is not None else x_idempotency_key

    def work() -> tuple[int, dict[str, Any]]:
        if create_idp_user:
            user = invitations.user_invite(
                data=data, actor=actor, link=lambda uid, token: _invitation_url(request, uid, token)
            )
        else:
            user = services.user_create(data=data, actor=actor)
        return 201, _fresh(user)

    if key is None:
        with transaction.atomic():
            status, body = work()
    else:
        if not idempotency.is_valid_key(key):
            raise NinjaValidationError(
                [
                    error_item(
                        ["header", header],
                        f"An idempotency key is 1 to {idempotency.IDEMPOTENCY_KEY_MAX_LENGTH} "
                        "printable ASCII characters without spaces.",
                        "idempotency_key",
                    )
                ]
            )
        fingerprint = idempotency.fingerprint(
            path=request.path, data=data, options={"create_idp_user": create_idp_user}
        )
        with transaction.atomic():
            row, replay = idempotency.claim_key(
                actor=actor, key=key, fingerprint=fingerprint, header=header
            )
            if replay is not None:
                status, body = replay
                response["Idempotent-Replayed"] = "true"
            else:
                status, body = work()
                idempotency.record_response(row, status=status, body=body)
    if status == 201:
        response["Location"] = reverse("api:user-detail", kwargs={"user_id": body["id"]})
    return HttpStatus(status, body)


def _invitation_url(request: HttpRequest, uidb64: str, token: str) -> str:
    return request.build_absolute_uri(
        reverse("users:invite-accept", kwargs={"uidb64": uidb64, "token": token})
    )


def _check_idp_fields(data: dict[str, Any]) -> None:
    errors = [
        error_item(
            ["body", name],
            f"{FIELD_LABELS[name]} is required with create_idp_user=true: the login "
            "is created with it.",
            "missing",
        )
        for name in ("email", "phone")
        if not (data.get(name) or "").strip()
    ]
    if data.get("idp_user_id"):
        errors.append(
            error_item(
                ["body", "idp_user_id"],
                "With create_idp_user=true the console sets idp_user_id; leave it out.",
                "idp_user_id_set",
            )
        )
    if errors:
        raise NinjaValidationError(errors)


@api.get(
    "/users/",
    response={200: UserPage, **_errors(401, 403, 422)},
    url_name="user-list",
    summary="Query users",
    tags=["users"],
)
def list_users(
    request: HttpRequest,
    query: str = Query(
        "",
        description="Filter, e.g. `email eq 'jane*' and status in ['ACTIVE','INACTIVE']`. "
        "Deleted users are left out unless the query names `deleted`.",
    ),
    orderby: str = Query("", description="e.g. `last_name desc, first_name`."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0, le=MAX_INT),
):
    actor: User = request.auth
    try:
        condition = parse_query(query)
    except QueryError as exc:
        raise query_error("query", exc) from None
    try:
        ordering = parse_orderby(orderby)
    except QueryError as exc:
        raise query_error("orderby", exc) from None
    users = selectors.visible_users(actor).filter(condition)
    if "deleted" not in referenced_fields(condition):
        users = users.filter(deleted=False)
    if ordering:
        # A unique last key keeps pages stable when the sort keys tie.
        users = users.order_by(*ordering, "id")
    count = users.count()
    page = list(with_relations(users)[offset : offset + limit]) if offset < count else []
    next_url = None
    if offset + limit < count:
        params = request.GET.copy()
        params["offset"] = str(offset + limit)
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    access_record(
        kind=AccessEvent.Kind.API_LIST,
        actor=actor,
        request=request,
        query=request.GET.urlencode(),
        row_count=len(page),
        subject_ids=[user.pk for user in page],
        detail={"count": count},
    )
    return {
        "count": count,
        "next": next_url,
        "offset": offset,
        "results": [user_out(user) for user in page],
    }


@api.get(
    "/users/{user_id}",
    response={200: UserDetailOut, **_errors(401, 404)},
    url_name="user-detail",
    summary="Get a user",
    description="The record, with `pending_changes`: guarded changes waiting for approval.",
    tags=["users"],
)
def get_user(request: HttpRequest, user_id: str):
    user = _get_visible(request.auth, user_id)
    access_record(kind=AccessEvent.Kind.API_READ, actor=request.auth, subject=user, request=request)
    return user_detail_out(user)


@api.patch(
    "/users/{user_id}",
    response={200: UserDetailOut, 202: UserDetailOut, **_errors(400, 401, 403, 404, 409, 422)},
    url_name="user-update",
    summary="Update a user (partial)",
    description="Guarded fields (four-eyes: by default the counter account, roles and granting "
    "the CONSOLE flag) are not applied but proposed for a second person's approval in the "
    "console: the other fields apply, and the answer is `202 Accepted` with the user as it now "
    "is and the request(s) in `pending_changes`. A token never approves.",
    tags=["users"],
)
def update_user(request: HttpRequest, user_id: str, payload: UserPatch):
    actor: User = request.auth
    user = _get_visible(actor, user_id)
    data = payload.model_dump(exclude_unset=True, mode="json")
    expected_version = data.pop("version", None)
    data.pop("pending_changes", None)  # read-only: what a GET returned, sent back
    _check_read_only(user, payload, data)
    policy.check_update(actor, user, data)
    with transaction.atomic():
        updated = services.user_update(
            user=user, data=data, actor=actor, expected_version=expected_version
        )
        proposed = services.proposed_changes(updated)
    fresh = with_relations(User.objects.filter(pk=updated.pk)).get()
    return HttpStatus(202 if proposed else 200, user_detail_out(fresh))


@api.get(
    "/change-requests/{request_id}",
    response={200: ChangeRequestOut, **_errors(401, 404, 422)},
    url_name="change-request-detail",
    summary="Get a change request",
    description="A guarded change (four-eyes) of a user the caller may read. Approving and "
    "rejecting are for a person in the console, never for a token.",
    tags=["change requests"],
)
def get_change_request(request: HttpRequest, request_id: int):
    found = (
        change_request_selectors.change_request(request_id) if 0 < request_id <= MAX_INT else None
    )
    if found is None or not selectors.visible_users(request.auth).filter(pk=found.user_id).exists():
        raise Http404(f"No change request {request_id}.")
    return change_request_out(found)


def _check_read_only(user: User, payload: UserPatch, data: dict[str, Any]) -> None:
    """Take the read-only fields out of `data`: each must be what a GET returns now.

    So a client may PATCH back the body it read. Values are compared as the schema parses
    them, a datetime as an instant whatever its notation, to the millisecond a GET shows.
    """
    sent = [n for n in contract.READ_ONLY_API_FIELDS if n != "version" and n in data]
    if not sent:
        return  # the usual PATCH: nothing to compare, no stored body to build
    stored = UserOut.model_validate(user_out(user))
    refused = []
    for name in sent:
        del data[name]
        if _as_shown(getattr(payload, name)) != _as_shown(getattr(stored, name)):
            shown = json.dumps(getattr(stored, name), cls=DjangoJSONEncoder)
            refused.append(
                error_item(
                    ["body", name],
                    f"{FIELD_LABELS[name]} ({name}) is read-only: send it as stored ({shown}) "
                    "or leave it out.",
                    "read_only",
                )
            )
    if refused:
        raise NinjaValidationError(refused)


def _as_shown(value: Any) -> Any:
    # The API's JSON (DjangoJSONEncoder) writes datetimes to the millisecond.
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


@api.delete(
    "/users/{user_id}",
    response={200: UserOut, **_errors(401, 403, 404, 409, 422)},
    url_name="user-delete",
    summary="Delete a user (soft)",
    tags=["users"],
)
def delete_user(
    request: HttpRequest,
    user_id: str,
    version: int | None = Query(
        None, ge=1, le=MAX_INT, description="Refuse with 409 unless the user is at this version."
    ),
):
    actor: User = request.auth
    user = _get_visible(actor, user_id)
    policy.check_delete(actor, user)
    deleted = services.user_delete(user=user, actor=actor, expected_version=version)
    return _fresh(deleted)
