"""Shapes of the JSON API's bodies (django-ninja / pydantic), generated from the contract's
registry (`users.contract`): a field added there is in the API, documented, without an edit here.

They only shape data and document it in the OpenAPI schema: types, nesting and which keys exist.
Every rule (IBAN, phone, write-once, uniqueness, status moves) is checked by `users.services`,
so the API refuses exactly what the console refuses, with the same messages.
"""

from __future__ import annotations

import datetime as dt
import operator
from functools import reduce
from types import NoneType, UnionType
from typing import Any, get_args, get_origin

from django.core.exceptions import ValidationError
from ninja import Schema
from pydantic import ConfigDict, Field, create_model

from users import contract

MAX_INT = 2**31 - 1


class _Input(Schema):
    # A misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")


def _camel(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def _nested(field: contract.Field, *, suffix: str, base: type[Schema]) -> type[Schema]:
    """The schema of a nested object (`AddressIn`, `CounterAccountOut`) from its parts.

    In input, a part the object is refused without (`Part.required`) is required, not null and
    not blank, as the validators have it: the schema accepts no object they refuse for it.
    """
    parts: dict[str, Any] = {}
    for part in field.parts:
        kind = part.choices if part.choices else str
        examples = [part.example] if part.example is not None else None
        if part.required and base is _Input:
            # The validators strip a part before they check it is there: "  " is missing.
            blank = {} if part.choices else {"pattern": r"\S"}
            parts[part.key] = (
                kind,
                Field(description=part.help or None, examples=examples, **blank),
            )
        else:
            parts[part.key] = (
                kind | None,
                Field(None, description=part.help or None, examples=examples),
            )
    return create_model(f"{_camel(field.name)}{suffix}", __base__=base, **parts)


def _value_type(field: contract.Field, *, out: bool) -> Any:
    """The JSON type of a field's value: as sent (`out=False`, all optional) or as returned."""
    K = contract.Kind
    match field.kind:
        case K.DATE:
            return dt.date | None
        case K.DATETIME:
            return dt.datetime
        case K.INT:
            return int
        case K.BOOL:
            return bool
        case K.CHOICE:
            # An unset choice reads as null; the status is always set.
            return field.choices if out and field.name == "status" else field.choices | None
        case K.CHOICES | K.FLAGS:
            return list[field.choices]
        case K.COUNTRIES | K.USER_IDS:
            return list[str]
        case K.MAP:
            return dict[str, str]
        case K.COUNTER_ACCOUNT | K.OBJECT:
            nested = (
                _nested(field, suffix="Out", base=_Output)
                if out
                else _nested(field, suffix="In", base=_Input)
            )
            return nested | None
    return str if out and field.name == "id" else str | None


def _accepts_null(field: contract.Field) -> bool:
    """Whether the services take null for `field` (as its empty value); `status` they do not."""
    try:
        field.cleaned(None, contract.CleanContext(data={field.name: None}, user=None, cleaned={}))
    except ValidationError:
        return False
    return True


def _non_null(type_: Any) -> Any:
    """`type_` without None: `Status | None` -> `Status`."""
    kept = [arg for arg in get_args(type_) if arg is not NoneType]
    return reduce(operator.or_, kept) if get_origin(type_) is UnionType and kept else type_


def _input_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in contract.INPUT_FIELDS:
        field = contract.FIELDS[name]
        examples = [field.example] if field.example is not None else None
        value_type = _value_type(field, out=False)
        # Optional (may be left out) everywhere; null only where the services take it.
        fields[name] = (
            value_type | None if _accepts_null(field) else _non_null(value_type),
            Field(None, description=field.help or None, examples=examples),
        )
        if name == "status":
            fields["status_reason"] = (
                str | None,
                Field(
                    None,
                    description="Why the status moves, in words (≤ 2000); required with the "
                    "reason code OTHER.",
                ),
            )
            fields["status_reason_code"] = (
                str | None,
                Field(
                    None,
                    description="The reason code of the move, from the active list an admin "
                    "maintains; required into VERIFICATION_FAILED or INACTIVE and off the "
                    "recommended flow.",
                    examples=["DOCUMENT_EXPIRED"],
                ),
            )
    return fields


UserIn = create_model(
    "UserIn",
    __base__=_Input,
    __doc__="A user to create. Every field is optional; `status` defaults to "
    "WAITING_FOR_VERIFICATION.",
    **_input_fields(),
)


def _read_only_fields() -> dict[str, Any]:
    """The read-only fields a GET returns, typed as returned: a PATCH may send them back."""
    fields: dict[str, Any] = {}
    for name in contract.READ_ONLY_API_FIELDS:
        if name == "version":
            continue  # the expected version, declared on UserPatch itself
        field = contract.FIELDS[name]
        fields[name] = (
            _value_type(field, out=True),
            Field(None, description="Read-only: accepted when equal to the stored value."),
        )
    return fields


class _UserPatch(UserIn):
    version: int | None = Field(
        None,
        ge=1,
        le=MAX_INT,
        description="The version the change was made from; a stale one is refused with 409.",
    )
    pending_changes: list[dict[str, Any]] | None = Field(
        None,
        description="Read-only, ignored: accepted so that a body read by GET may be sent back.",
    )


UserPatch = create_model(
    "UserPatch",
    __base__=_UserPatch,
    __doc__="A partial update: only the keys sent change; nested objects are replaced whole. "
    "A body read by GET may be sent back as it is: the read-only fields are accepted when "
    "they equal the stored values.",
    **_read_only_fields(),
)


class _Output(Schema):
    pass


def _output_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in contract.API_FIELDS:
        field = contract.FIELDS[name]
        examples = [field.example] if field.example is not None else None
        fields[name] = (_value_type(field, out=True), Field(examples=examples))
    return fields


UserOut = create_model("UserOut", __base__=Schema, **_output_fields())


class ChangeRequestOut(Schema):
    """A guarded change waiting for (or decided by) a second person: four-eyes approval."""

    id: int
    user_id: str
    kind: str = Field(description="`counter_account`, `roles` or `console_flag`.")
    fields: list[str] = Field(description="The contract fields the change touches.")
    changes: dict[str, list[Any]] = Field(
        description="Field → [old, new], old as stored when it was proposed.",
        examples=[{"counter_account": [None, {"bank_account_number": "BE71096123456769"}]}],
    )
    reason: str
    proposed_by: str | None = Field(description="User id of the maker.")
    proposed_at: dt.datetime
    expires_at: dt.datetime
    state: str = Field(
        description="PENDING, APPROVED, REJECTED, WITHDRAWN, EXPIRED (past expires_at) or VOID "
        "(replaced by a newer proposal, or the fields changed before approval)."
    )
    decided_by: str | None = Field(description="User id of the checker (or of whoever closed it).")
    decided_at: dt.datetime | None
    decision_reason: str
    applied_version: int | None = Field(description="The version that applied it, if approved.")


class _UserWithPending(Schema):
    pending_changes: list[ChangeRequestOut] = Field(
        description="Guarded changes (counter account, roles, CONSOLE flag) waiting for a "
        "second person's approval; the record shows the values before them."
    )


UserDetailOut = create_model("UserDetailOut", __base__=_UserWithPending, **_output_fields())


class UserPage(Schema):
    count: int = Field(description="How many users match, over all pages.")
    next: str | None = Field(description="URL of the next page, null on the last one.")
    offset: int
    results: list[UserOut]


class ErrorItem(Schema):
    loc: list[str | int] = Field(examples=[["body", "counter_account", "bank_account_number"]])
    msg: str
    type: str
    ctx: dict[str, Any] | None = Field(
        None, description="Extra facts, e.g. `position` of a query syntax error."
    )


class ValidationErrors(Schema):
    detail: list[ErrorItem]


class Conflict(Schema):
    """Write-once, duplicate, stale version or reused idempotency key."""

    detail: list[ErrorItem]
    current_version: int | None = Field(
        None, description="For a stale version: the version stored now."
    )
    changes: dict[str, list[Any]] | None = Field(
        None, description="For a stale version: field → [old, new] since your version."
    )


class Message(Schema):
    detail: str
