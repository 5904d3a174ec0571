"""The API's error shapes, and the one adapter from service errors to them.

- malformed JSON 400; unauthenticated 401; not allowed 403; unknown (or invisible) id 404;
- invalid input 422 as `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`, the shape
  django-ninja gives its own schema errors, with service errors keyed by the same field paths;
- business-rule refusals (write-once, duplicate, stale version, deleted user, reused
  idempotency key) 409 in the same shape.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from users import contract, services
from users.query import QueryError
from users.services.idempotency import IdempotencyConflict

# Service error codes that are business-rule refusals (409) rather than invalid input (422).
CONFLICT_CODES = frozenset({"write_once", "unique", "deleted", "not_deleted", "unchanged"})


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


def error_item(loc: list[str | int], msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": loc, "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = ctx
    return item


def service_errors(exc: DjangoValidationError, *, source: str = "body") -> list[dict[str, Any]]:
    """A service `ValidationError` as API error items; dotted keys become `loc` paths."""
    items: list[dict[str, Any]] = []
    for loc, errors in contract.errors_by_target(exc, lambda path: [source, *path]):
        for error in errors:
            for leaf in error.error_list:
                message = leaf.message % leaf.params if leaf.params else leaf.message
                items.append(error_item(loc, str(message), leaf.code or "invalid"))
    return items


def query_error(param: str, exc: QueryError) -> NinjaValidationError:
    return NinjaValidationError(
        [error_item(["query", param], str(exc), "query_syntax", position=exc.position)]
    )


def install(api: NinjaAPI) -> None:
    """Give `api` the handlers that turn exceptions into the contract's error responses."""

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
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
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        detail = str(exc)
        json_error = getattr(request, "_json_error", None)
        if exc.status_code == 400 and json_error:
            detail = f"The request body is not valid JSON: {json_error}."
        return api.create_response(request, {"detail": detail}, status=exc.status_code)

    @api.exception_handler(PermissionDenied)
    def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        detail = str(exc) or "Your role does not allow this."
        return api.create_response(request, {"detail": detail}, status=403)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)

    @api.exception_handler(DjangoValidationError)
    def invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        items = service_errors(exc)
        conflict = all(item["type"] in CONFLICT_CODES for item in items)
        return api.create_response(request, {"detail": items}, status=409 if conflict else 422)

    @api.exception_handler(services.StaleVersion)
    def stale(request: HttpRequest, exc: services.StaleVersion) -> HttpResponse:
        source = "query" if request.method == "DELETE" else "body"
        body = {
            "detail": [error_item([source, "version"], str(exc), "stale_version")],
            "current_version": exc.current.version,
            "changes": exc.changes,
        }
        return api.create_response(request, body, status=409)

    @api.exception_handler(IdempotencyConflict)
    def idempotency_conflict(request: HttpRequest, exc: IdempotencyConflict) -> HttpResponse:
        body = {"detail": [error_item(["header", exc.header], str(exc), "idempotency_key_reused")]}
        return api.create_response(request, body, status=409)
