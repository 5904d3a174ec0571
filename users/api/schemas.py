"""Shapes of the JSON API's bodies (django-ninja / pydantic).

They only shape data and document it in the OpenAPI schema: types, nesting and which keys exist.
Every rule (IBAN, phone, write-once, uniqueness, status moves) is checked by `users.services`,
so the API refuses exactly what the console refuses, with the same messages.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from users.models import FeatureFlag, Status

MAX_INT = 2**31 - 1


class _Input(Schema):
    # A misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")


class CounterAccountIn(_Input):
    bank_account_number: str | None = Field(
        None,
        description="IBAN, or a US account number (4 to 17 digits).",
        examples=["BE71096123456769"],
    )
    bank_account_number_type: str | None = Field(
        None, description="`IBAN` or `ABA`; an IBAN is recognised without it.", examples=["IBAN"]
    )
    bank_id: str | None = Field(
        None, description="BIC for an IBAN, 9-digit routing number for ABA.", examples=["GEBABEBB"]
    )
    bank_id_type: str | None = Field(None, description="`BIC` or `ABA`.", examples=["BIC"])


class AddressIn(_Input):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = Field(None, description="ISO 3166-1 alpha-2.", examples=["BE"])


class TaxResidencyIn(_Input):
    country_code: str | None = Field(None, examples=["BE"])
    proof_type: str | None = Field(None, examples=["NATIONAL_ID"])
    value: str | None = None


class UserIn(_Input):
    """A user to create. Every field is optional; `status` defaults to WAITING_FOR_VERIFICATION."""

    external_id: str | None = Field(None, description="The bank's reference, ≤ 64, unique.")
    first_name: str | None = Field(None, description="≤ 128 characters.")
    last_name: str | None = Field(None, description="≤ 128 characters.")
    email: str | None = Field(None, description="Unique (case-insensitive) and write-once.")
    phone: str | None = Field(
        None, description="A valid number, stored E.164; unique and write-once."
    )
    brokerage_user_id: str | None = None
    idp_user_id: str | None = None
    language: str | None = Field(None, description="BCP 47 tag.", examples=["en-US"])
    counter_account: CounterAccountIn | None = Field(None, description="Replaced whole.")
    feature_flags: list[FeatureFlag] | None = Field(
        None, description="Needs the manage_feature_flags permission."
    )
    status: Status | None = Field(
        None, description="A move off the recommended flow needs `status_reason`."
    )
    status_reason: str | None = Field(None, description="Why the status moves (≤ 2000).")
    date_of_birth: dt.date | None = None
    residency_country: str | None = Field(None, examples=["BE"])
    nationalities: list[str] | None = Field(None, examples=[["BE"]])
    address: AddressIn | None = Field(None, description="Replaced whole.")
    tax_residency: TaxResidencyIn | None = Field(None, description="Replaced whole.")
    identity: str | None = Field(None, description="National identity number, ≤ 64.")
    metadata: dict[str, str] | None = Field(None, description="≤ 50 keys of ≤ 40 characters.")
    readable_by: list[str] | None = Field(
        None, description="User ids that may read this user (needs change_user)."
    )
    modifiable_by: list[str] | None = Field(
        None, description="User ids that may modify this user (needs change_user)."
    )


class UserPatch(UserIn):
    """A partial update: only the keys sent change; nested objects are replaced whole."""

    version: int | None = Field(
        None,
        ge=1,
        le=MAX_INT,
        description="The version the change was made from; a stale one is refused with 409.",
    )


class CounterAccountOut(Schema):
    bank_account_number: str
    bank_account_number_type: str
    bank_id: str | None
    bank_id_type: str | None


class AddressOut(Schema):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country_code: str | None = None


class TaxResidencyOut(Schema):
    country_code: str | None = None
    proof_type: str | None = None
    value: str | None = None


class UserOut(Schema):
    id: str = Field(examples=["U01ARZ3NDEKTSV4RRFFQ69G5FAV"])
    external_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    brokerage_user_id: str | None
    idp_user_id: str | None
    language: str | None
    counter_account: CounterAccountOut | None
    feature_flags: list[FeatureFlag]
    status: Status
    date_of_birth: dt.date | None
    residency_country: str | None
    nationalities: list[str]
    address: AddressOut | None
    tax_residency: TaxResidencyOut | None
    identity: str | None
    metadata: dict[str, str]
    readable_by: list[str]
    modifiable_by: list[str]
    creation_datetime: dt.datetime
    version: int
    version_datetime: dt.datetime
    version_authored_by_user_id: str | None
    deleted: bool


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
