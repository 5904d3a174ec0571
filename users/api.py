"""The JSON API of the contract (seeds 000/001), mounted at /api/.

Parse → permission check → service/selector → the same JSON for every response. Rules live in
`users.services`; this module maps their outcomes onto HTTP:

- malformed JSON 400; unauthenticated 401; not allowed 403; unknown (or invisible) id 404;
- invalid input 422 as `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`, the shape
  django-ninja gives its own schema errors, with service errors keyed by the same field paths;
- business-rule refusals (write-once, duplicate, stale version, deleted user, reused
  idempotency key) 409 in the same shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from ninja import Header, NinjaAPI, Query
from ninja import Status as HttpStatus
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import APIKeyHeader, HttpBearer

from users import selectors, services, tokens
from users.api_schemas import (
    MAX_INT,
    Conflict,
    Message,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
    ValidationErrors,
)
from users.models import (
    INITIAL_STATUSES,
    IdempotencyKey,
    Role,
    User,
    is_recommended_move,
    is_user_id,
)
from users.query import QueryError, parse_orderby, parse_query, referenced_fields

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
IDEMPOTENCY_TTL = dt.timedelta(hours=24)
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Service error codes that are business-rule refusals (409) rather than invalid input (422).
CONFLICT_CODES = frozenset({"write_once", "unique", "deleted", "not_deleted", "unchanged"})
_idempotency_key_re = re.compile(r"[\x21-\x7e]{1,255}")


# --- authentication ----------------------------------------------------------------------------


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return tokens.authenticate_token(token)


class ApiKey(APIKeyHeader):
    """`X-API-Key: <token>`: the same tokens, for clients that cannot set Authorization."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        return tokens.authenticate_token(key)


# --- the API object: JSON parsing and error shapes ---------------------------------------------


class StrictJsonParser(Parser):
    """JSON as RFC 8259 has it (no NaN/Infinity); remembers why a body failed to parse."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            return json.loads(request.body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            # ninja turns any parse failure into a bare 400; the handler below says why.
            request._json_error = str(exc) or exc.__class__.__name__  # type: ignore[attr-defined]
            raise


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class ConsoleApi(NinjaAPI):
    def validation_error_from_error_contexts(self, error_contexts) -> NinjaValidationError:
        """ninja's 422 without its internal names: `["body", "email"]`, not `["body", "payload",
        "email"]`, so that schema errors and service errors point at fields the same way."""
        errors: list[dict[str, Any]] = []
        for context in error_contexts:
            model = context.model
            source = model.__ninja_param_source__
            reverse_map = getattr(model, "__ninja_flatten_map_reverse__", {})
            single = getattr(model, "__read_from_single_attr__", None)
            for error in context.pydantic_validation_error.errors(include_url=False):
                loc = tuple(reverse_map.get(error["loc"], error["loc"]))
                if single and loc[:1] == (single,):
                    loc = loc[1:]
                errors.append({"loc": [source, *loc], "msg": error["msg"], "type": error["type"]})
        return NinjaValidationError(errors)


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
        "`status in ['ACTIVE','INACTIVE']`, `deleted eq true`, combined with `and` / `or` and "
        "parentheses. `orderby=last_name desc, first_name`."
    ),
    urls_namespace="api",
    auth=[BearerToken(), ApiKey()],
    parser=StrictJsonParser(),
)


def _error(loc: list[str | int], msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": loc, "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = ctx
    return item


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request,
        {
            "detail": "Authentication required: send a valid API token as "
            "'Authorization: Bearer <token>' or 'X-API-Key: <token>'."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = str(exc)
    json_error = getattr(request, "_json_error", None)
    if exc.status_code == 400 and json_error:
        detail = f"The request body is not valid JSON: {json_error}."
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    detail = str(exc) or "Your role does not allow this."
    return api.create_response(request, {"detail": detail}, status=403)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


def service_errors(exc: DjangoValidationError, *, source: str = "body") -> list[dict[str, Any]]:
    """A service `ValidationError` as API error items; dotted keys become `loc` paths."""
    items: list[dict[str, Any]] = []
    error_dict = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: [exc]}
    for key, errors in error_dict.items():
        loc: list[str | int] = [source] if key == NON_FIELD_ERRORS else [source, *key.split(".")]
        for error in errors:
            for leaf in error.error_list:
                message = leaf.message % leaf.params if leaf.params else leaf.message
                items.append(_error(loc, str(message), leaf.code or "invalid"))
    return items


@api.exception_handler(DjangoValidationError)
def _invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    items = service_errors(exc)
    conflict = all(item["type"] in CONFLICT_CODES for item in items)
    return api.create_response(request, {"detail": items}, status=409 if conflict else 422)


@api.exception_handler(services.StaleVersion)
def _stale(request: HttpRequest, exc: services.StaleVersion) -> HttpResponse:
    source = "query" if request.method == "DELETE" else "body"
    body = {
        "detail": [_error([source, "version"], str(exc), "stale_version")],
        "current_version": exc.current.version,
        "changes": exc.changes,
    }
    return api.create_response(request, body, status=409)


class IdempotencyConflict(Exception):
    def __init__(self, message: str, header: str) -> None:
        super().__init__(message)
        self.header = header


@api.exception_handler(IdempotencyConflict)
def _idempotency_conflict(request: HttpRequest, exc: IdempotencyConflict) -> HttpResponse:
    body = {"detail": [_error(["header", exc.header], str(exc), "idempotency_key_reused")]}
    return api.create_response(request, body, status=409)


def _query_error(param: str, exc: QueryError) -> NinjaValidationError:
    return NinjaValidationError(
        [_error(["query", param], str(exc), "query_syntax", position=exc.position)]
    )


# --- reading users -------------------------------------------------------------------------------


def with_relations(users: QuerySet[User]) -> QuerySet[User]:
    """Everything `user_out` reads, in a fixed number of queries per page (no N+1)."""
    only_id = User.objects.only("id")
    return users.prefetch_related(
        "flag_grants",
        Prefetch("readable_by", queryset=only_id),
        Prefetch("modifiable_by", queryset=only_id),
        Prefetch("groups", queryset=Group.objects.only("name")),
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
    """The contract's JSON for one user: the service snapshot plus the record's metadata."""
    if "groups" in getattr(user, "_prefetched_objects_cache", {}):
        user._role_names = {g.name for g in user.groups.all() if g.name in Role.values}
    snapshot = services.user_snapshot(user)
    snapshot.pop("roles")  # console access is not part of the contract's record
    body = {name: _empty_to_none(value) for name, value in snapshot.items()}
    body.update(
        id=user.pk,
        creation_datetime=user.creation_datetime.isoformat(),
        version=user.version,
        version_datetime=user.version_datetime.isoformat(),
        version_authored_by_user_id=user.version_authored_by_user_id,
        deleted=user.deleted,
    )
    return body


def _fresh(user: User) -> dict[str, Any]:
    """The stored record after a write, read the way a GET reads it."""
    return user_out(with_relations(User.objects.filter(pk=user.pk)).get())


# --- permissions for writes ----------------------------------------------------------------------


def _require(actor: User, codename: str, message: str) -> None:
    if not actor.has_perm(f"users.{codename}"):
        raise PermissionDenied(message)


def _check_status_permission(actor: User, from_status: str | None, to_status: str) -> None:
    _require(actor, "change_status", "Your role may not change a user's status.")
    recommended = (
        to_status in INITIAL_STATUSES
        if from_status is None
        else is_recommended_move(from_status, to_status)
    )
    if not recommended:
        _require(
            actor,
            "change_status_off_flow",
            "Your role may not move a user off the recommended status flow.",
        )


def _check_access_lists(actor: User, data: dict[str, Any], user: User | None) -> None:
    for relation in ("readable_by", "modifiable_by"):
        if relation not in data:
            continue
        current = sorted(o.pk for o in getattr(user, relation).all()) if user else []
        if sorted(set(data[relation] or [])) != current:
            # As in the console's edit form: role editors only, never an object-level editor.
            _require(actor, "change_user", f"Your role may not change who is in {relation}.")


def check_create_permissions(actor: User, data: dict[str, Any]) -> None:
    _require(actor, "add_user", "Your role may not create users.")
    if data.get("feature_flags"):
        _require(actor, "manage_feature_flags", "Your role may not grant feature flags.")
    status = data.get("status")
    if status and status not in INITIAL_STATUSES:
        _check_status_permission(actor, None, status)
    _check_access_lists(actor, data, None)


# Fields a role with change_user (or a modifiable_by entry) may edit.
_STATUS_FIELDS = {"status", "status_reason"}
_GATED_FIELDS = _STATUS_FIELDS | {"feature_flags", "readable_by", "modifiable_by"}


def check_update_permissions(actor: User, user: User, data: dict[str, Any]) -> None:
    """Each part of a PATCH needs its own permission; values equal to the stored ones need none
    (a client may send back what it read)."""
    if set(data) - _GATED_FIELDS and not (selectors.can_edit(actor, user)):
        raise PermissionDenied("Your role may not change this user.")
    if "status" in data and data["status"] != user.status:
        _check_status_permission(actor, user.status, data["status"])
    if "feature_flags" in data and set(data["feature_flags"] or []) != user.flag_names():
        _require(actor, "manage_feature_flags", "Your role may not change feature flags.")
    _check_access_lists(actor, data, user)


# --- idempotency -------------------------------------------------------------------------------


def _fingerprint(request: HttpRequest, data: dict[str, Any], options: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"path": request.path, "options": options, "body": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_key(
    actor: User, key: str, fingerprint: str, header: str
) -> tuple[IdempotencyKey, tuple[int, Any] | None]:
    """Insert the key row (or find the first request's), inside the caller's transaction.

    A concurrent request with the same key blocks on the unique constraint until the first
    commits, then gets IntegrityError and reads the stored response: one user, one response.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                user=actor, key=key, request_hash=fingerprint, created_at=now
            )
        return row, None
    except IntegrityError:
        pass
    row = IdempotencyKey.objects.select_for_update().get(user=actor, key=key)
    if row.created_at < now - IDEMPOTENCY_TTL:
        # Expired: the key starts a new request.
        row.request_hash, row.created_at = fingerprint, now
        row.status_code = row.response_body = None
        row.save()
        return row, None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            f"{header} {key!r} was used within the last 24 hours for a different request; "
            "use a new key for a new request.",
            header,
        )
    if row.status_code is None:  # pragma: no cover - the first request commits with its response
        raise IdempotencyConflict(f"The request with {header} {key!r} is still running.", header)
    return row, (row.status_code, row.response_body)


# --- invitations (create_idp_user=true) --------------------------------------------------------


def _send_invitation(request: HttpRequest, user: User) -> None:
    """Mail a set-password link once the user is committed; the link dies once used."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    url = request.build_absolute_uri(
        reverse("users:invite-accept", kwargs={"uidb64": uid, "token": token})
    )
    days = max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)
    message = EmailMessage(
        subject="Your user console login",
        body=(
            f"Hello {user.first_name or user.email},\n\n"
            "A login to the user console was created for you. Choose your password here:\n\n"
            f"{url}\n\n"
            f"The link works once and expires in {days} days. If you did not expect this "
            "message, ignore it.\n"
        ),
        to=[user.email],
    )
    transaction.on_commit(message.send)


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
    check_create_permissions(actor, data)
    if create_idp_user:
        _check_idp_fields(data)

    header = "Idempotency-Key" if idempotency_key is not None else "X-Idempotency-Key"
    key = idempotency_key if idempotency_key is not None else x_idempotency_key

    def work() -> tuple[int, dict[str, Any]]:
        user = services.user_create(data=data, actor=actor)
        if create_idp_user:
            user = services.user_update(user=user, data={"idp_user_id": user.pk}, actor=actor)
            _send_invitation(request, user)
        return 201, _fresh(user)

    if key is None:
        with transaction.atomic():
            status, body = work()
    else:
        if not _idempotency_key_re.fullmatch(key):
            raise NinjaValidationError(
                [
                    _error(
                        ["header", header],
                        f"An idempotency key is 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable "
                        "ASCII characters without spaces.",
                        "idempotency_key",
                    )
                ]
            )
        fingerprint = _fingerprint(request, data, {"create_idp_user": create_idp_user})
        with transaction.atomic():
            row, replay = _claim_key(actor, key, fingerprint, header)
            if replay is not None:
                status, body = replay
                response["Idempotent-Replayed"] = "true"
            else:
                status, body = work()
                row.status_code, row.response_body = status, body
                row.save(update_fields=["status_code", "response_body"])
    if status == 201:
        response["Location"] = reverse("api:user-detail", kwargs={"user_id": body["id"]})
    return HttpStatus(status, body)


def _check_idp_fields(data: dict[str, Any]) -> None:
    errors = [
        _error(
            ["body", name],
            f"{services.FIELD_LABELS[name]} is required with create_idp_user=true: the login "
            "is created with it.",
            "missing",
        )
        for name in ("email", "phone")
        if not (data.get(name) or "").strip()
    ]
    if data.get("idp_user_id"):
        errors.append(
            _error(
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
        raise _query_error("query", exc) from None
    try:
        ordering = parse_orderby(orderby)
    except QueryError as exc:
        raise _query_error("orderby", exc) from None
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
    return {
        "count": count,
        "next": next_url,
        "offset": offset,
        "results": [user_out(user) for user in page],
    }


@api.get(
    "/users/{user_id}",
    response={200: UserOut, **_errors(401, 404)},
    url_name="user-detail",
    summary="Get a user",
    tags=["users"],
)
def get_user(request: HttpRequest, user_id: str):
    return user_out(_get_visible(request.auth, user_id))


@api.patch(
    "/users/{user_id}",
    response={200: UserOut, **_errors(400, 401, 403, 404, 409, 422)},
    url_name="user-update",
    summary="Update a user (partial)",
    tags=["users"],
)
def update_user(request: HttpRequest, user_id: str, payload: UserPatch):
    actor: User = request.auth
    user = _get_visible(actor, user_id)
    data = payload.model_dump(exclude_unset=True, mode="json")
    expected_version = data.pop("version", None)
    check_update_permissions(actor, user, data)
    with transaction.atomic():
        updated = services.user_update(
            user=user, data=data, actor=actor, expected_version=expected_version
        )
    return _fresh(updated)


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
    _require(actor, "delete_user", "Your role may not delete users.")
    deleted = services.user_delete(user=user, actor=actor, expected_version=version)
    return _fresh(deleted)
