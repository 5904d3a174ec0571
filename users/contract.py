"""The contract's fields (`shared/spec/user-contract.md`), each described once.

Everything that lists fields derives from `FIELDS`: the services' snapshots, diffs, cleaning and
assignment, the edit form and the admin's fieldsets, the query language's fields, the export's
columns, the API's schemas and the bulk seeder. Adding a field is a model column, its migration,
one `Field` here (and a validator if no existing kind fits), and its place in the templates.

A `Field` says what the field is (label, group, kind, choices), how a value is cleaned (the
validator for its kind), and what the record promises about it (write-once, unique, queryable,
sortable, exported, shown in the API, personal data). Maximum lengths are read from the model
(`User._meta`), never restated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models

from users import validators
from users.models import (
    EmploymentStatus,
    FeatureFlag,
    IncomeRange,
    Industry,
    Role,
    SourceOfWealth,
    Status,
    User,
)


class Group(StrEnum):
    """Where a field is shown: a panel of the detail page, a fieldset of the admin."""

    IDENTITY = "identity"
    CONTACT = "contact"
    COUNTER_ACCOUNT = "counter_account"
    KYC = "kyc"
    EMPLOYMENT = "employment"
    RECORD = "record"


GROUP_LABELS = {
    Group.IDENTITY: "Identity",
    Group.CONTACT: "Contact",
    Group.COUNTER_ACCOUNT: "Counter account",
    Group.KYC: "KYC",
    Group.EMPLOYMENT: "Employment and wealth",
    Group.RECORD: "Record",
}


class Kind(StrEnum):
    """What a value is; it picks the validator, the JSON shape and how the query reads it."""

    ID = "id"  # the primary key
    TEXT = "text"
    NAME = "name"  # text compared without case
    EMAIL = "email"
    PHONE = "phone"
    LANGUAGE = "language"
    COUNTRY = "country"
    COUNTRIES = "countries"
    DATE = "date"
    DATETIME = "datetime"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"  # one of `choices`
    CHOICES = "choices"  # a list of `choices`
    COUNTER_ACCOUNT = "counter_account"
    OBJECT = "object"  # a JSON object of text parts
    MAP = "map"  # key → text
    FLAGS = "flags"
    USER_IDS = "user_ids"
    ROLES = "roles"


@dataclass(frozen=True)
class Part:
    """One key of a nested object (`address.city`), and the form input that edits it."""

    key: str
    label: str
    input: str  # the edit form's input name
    column: str = ""  # the model column, for objects stored in columns (counter_account)
    example: str | None = None
    choices: type[models.TextChoices] | None = None
    kind: Kind = Kind.TEXT
    queryable: bool = False
    help: str = ""
    # The object is refused without it (the validators' rule; the API's schema says so).
    required: bool = False
    # Shown masked until revealed with a purpose (see `MASKED`).
    masked: bool = False


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    group: Group
    kind: Kind
    empty: Any = ""
    column: str = ""  # the model column; "" for relations and objects stored in columns
    choices: type[models.TextChoices] | None = None
    parts: tuple[Part, ...] = ()
    input: bool = True  # create and update may send it
    tracked: bool = True  # part of the versioned record: snapshots, diffs, history
    api: bool = True  # in the API's responses
    write_once: bool = False
    unique: bool = False
    queryable: bool = False
    sortable: bool = False
    exported: bool = False
    # Personal data a person could be identified or reached with.
    sensitive: bool = False
    # Shown masked (lists, board, the detail until revealed with a purpose, the export for
    # those who may not reveal); see `MASKED`.
    masked: bool = False
    in_form: bool = True  # edited on the edit form (status and flags have their own controls)
    listed: bool = False  # a column the list and the board load
    help: str = ""
    example: Any = None
    # Overrides for values that are not one column: (user) -> JSON value, (user, value) -> None.
    read: Callable[[User], Any] | None = None
    write: Callable[[User, Any], None] | None = None
    clean: Callable[[Any, CleanContext], Any] | None = None

    def __post_init__(self) -> None:
        if not self.column and not (self.parts and self.parts[0].column):
            # A field stored in the model field of its own name needs no `column`.
            try:
                model_field = User._meta.get_field(self.name)
            except FieldDoesNotExist:
                return
            if model_field.concrete and not model_field.is_relation:
                object.__setattr__(self, "column", self.name)

    @property
    def model_field(self) -> models.Field | None:
        return User._meta.get_field(self.column) if self.column else None

    @property
    def columns(self) -> tuple[str, ...]:
        """The model columns the field is stored in: an object stored in columns (the counter
        account) is its parts' columns; a relation or a derived value has none."""
        if self.parts and self.parts[0].column:
            return tuple(part.column for part in self.parts)
        return (self.column,) if self.column else ()

    @property
    def max_length(self) -> int | None:
        model_field = self.model_field
        return getattr(model_field, "max_length", None) if model_field else None

    @property
    def nullable(self) -> bool:
        model_field = self.model_field
        return bool(model_field and model_field.null)

    def value_of(self, user: User) -> Any:
        """The field's JSON value on `user`: what versions store and the API returns."""
        if self.read is not None:
            return self.read(user)
        value = getattr(user, self.column)
        match self.kind:
            case Kind.DATE | Kind.DATETIME:
                return value.isoformat() if value else None
            case Kind.COUNTRIES | Kind.CHOICES:
                return list(value or [])
            case Kind.MAP:
                return dict(value or {})
            case Kind.OBJECT:
                return value or None
        return value

    def assign(self, user: User, value: Any) -> None:
        """Set a JSON value (as `value_of` gives it) on the model's columns."""
        if self.write is not None:
            self.write(user, value)
        elif self.kind == Kind.DATE:
            setattr(user, self.column, dt.date.fromisoformat(value) if value else None)
        elif self.kind == Kind.OBJECT:
            setattr(user, self.column, value or None)
        elif self.column:
            setattr(user, self.column, value)

    def cleaned(self, value: Any, context: CleanContext) -> Any:
        """`value` checked and normalised into the field's JSON value; ValidationError if not."""
        if self.clean is not None:
            return self.clean(value, context)
        match self.kind:
            case Kind.TEXT | Kind.NAME:
                cleaned = validators.text(value, max_length=self.max_length, field=self.label)
                return cleaned or (None if self.nullable else "")
            case Kind.CHOICE:
                return validators.choice(value, self.choices, field=self.label)
            case Kind.CHOICES:
                return validators.choice_list(value, self.choices, field=self.label)
            case Kind.COUNTRY:
                return validators.country(value, field=self.label)
            case Kind.COUNTRIES:
                return validators.countries(value, field=self.label)
        raise NotImplementedError(f"No validator for {self.name} ({self.kind}).")


@dataclass
class CleanContext:
    """What a validator may need besides its value: the rest of the input and the stored user."""

    data: Mapping[str, Any]
    user: User | None
    cleaned: dict[str, Any]

    def current(self, name: str) -> Any:
        """The value `name` will have: as sent (cleaned), else as stored, else empty."""
        if name in self.cleaned:
            return self.cleaned[name]
        if name in self.data:
            try:
                return FIELDS[name].cleaned(self.data[name], self)
            except ValidationError:
                return FIELDS[name].empty
        return FIELDS[name].value_of(self.user) if self.user is not None else FIELDS[name].empty


# --- values that are not one column ------------------------------------------------------------

_ACCOUNT_COLUMNS = ("bank_account_number", "bank_account_number_type", "bank_id", "bank_id_type")


def _read_counter_account(user: User) -> dict[str, str | None] | None:
    return user.counter_account


def _write_counter_account(user: User, value: dict[str, Any] | None) -> None:
    value = value or {}
    for column in _ACCOUNT_COLUMNS:
        setattr(user, column, value.get(column) or "")


def _clean_counter_account(value: Any, context: CleanContext) -> dict[str, Any] | None:
    columns = validators.counter_account(value)
    if not columns["bank_account_number"]:
        return None
    # Stored "" reads back as None for the optional bank id (as the API shows it).
    return {k: (v or None) if k.startswith("bank_id") else v for k, v in columns.items()}


def _related_ids(name: str) -> Callable[[User], list[str]]:
    def read(user: User) -> list[str]:
        if not user.pk:
            return []
        cache = getattr(user, "_prefetched_objects_cache", {})
        if name in cache:
            return sorted(u.pk for u in cache[name])
        return sorted(getattr(user, name).values_list("pk", flat=True))

    return read


def _clean_user_ids(value: Any, context: CleanContext, *, label: str) -> list[str]:
    return validators.user_ids(value, field=label)


def _phone(value: Any, context: CleanContext) -> str | None:
    # A national number is read in the residency country being saved, else the stored one.
    return validators.phone(value, region=context.current("residency_country"))


def _date_of_birth(value: Any, context: CleanContext) -> str | None:
    cleaned = validators.date_of_birth(value)
    return cleaned.isoformat() if cleaned else None


def _status(value: Any, context: CleanContext) -> str:
    return validators.choice(value, Status, field="Status", required=True)


def _external_id(value: Any, context: CleanContext) -> str | None:
    return validators.text(value, max_length=64, field="External id") or None


def _plain(validator: Callable[[Any], Any]) -> Callable[[Any, CleanContext], Any]:
    return lambda value, context: validator(value)


def _object(
    validator: Callable[..., Any], parts: tuple[Part, ...]
) -> Callable[[Any, CleanContext], Any]:
    """A nested object's validator, told the parts' labels so its messages use them."""
    labels = {part.key: part.label for part in parts}
    return lambda value, context: validator(value, labels=labels)


_ADDRESS_PARTS = (
    Part("line1", "Street and number", "address_line1", required=True),
    Part("line2", "Line 2", "address_line2"),
    Part("city", "City", "address_city", required=True),
    Part("postal_code", "Postal code", "address_postal_code", required=True),
    Part("country_code", "Country", "address_country_code", example="BE", required=True),
)
_TAX_RESIDENCY_PARTS = (
    Part("country_code", "Tax country", "tax_country_code", example="BE", required=True),
    Part("proof_type", "Proof type", "tax_proof_type", example="NATIONAL_ID", required=True),
    Part("value", "Tax number", "tax_value", required=True, masked=True),
)


# --- the fields --------------------------------------------------------------------------------

_FIELDS = (
    Field(
        "id",
        "Id",
        Group.RECORD,
        Kind.ID,
        input=False,
        tracked=False,
        queryable=True,
        sortable=True,
        exported=True,
        example="U01ARZ3NDEKTSV4RRFFQ69G5FAV",
        listed=True,
    ),
    Field(
        "external_id",
        "External id",
        Group.IDENTITY,
        Kind.TEXT,
        empty=None,
        unique=True,
        queryable=True,
        sortable=True,
        exported=True,
        help="The bank's reference, ≤ 64, unique.",
        clean=_external_id,
        listed=True,
    ),
    Field(
        "first_name",
        "First name",
        Group.IDENTITY,
        Kind.NAME,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="≤ 128 characters.",
        listed=True,
    ),
    Field(
        "last_name",
        "Last name",
        Group.IDENTITY,
        Kind.NAME,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="≤ 128 characters.",
        listed=True,
    ),
    Field(
        "email",
        "Email",
        Group.CONTACT,
        Kind.EMAIL,
        empty=None,
        write_once=True,
        unique=True,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="Unique (case-insensitive) and write-once.",
        clean=_plain(validators.email),
        listed=True,
    ),
    Field(
        "phone",
        "Phone",
        Group.CONTACT,
        Kind.PHONE,
        empty=None,
        write_once=True,
        unique=True,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="A valid number, stored E.164; unique and write-once.",
        clean=_phone,
        listed=True,
    ),
    Field(
        "brokerage_user_id",
        "Brokerage user id",
        Group.IDENTITY,
        Kind.TEXT,
        queryable=True,
        sortable=True,
    ),
    Field(
        "idp_user_id",
        "IdP user id",
        Group.IDENTITY,
        Kind.TEXT,
        queryable=True,
        sortable=True,
    ),
    Field(
        "language",
        "Language",
        Group.IDENTITY,
        Kind.LANGUAGE,
        queryable=True,
        sortable=True,
        exported=True,
        help="BCP 47 tag.",
        example="en-US",
        clean=_plain(validators.language),
        listed=True,
    ),
    Field(
        "status",
        "Status",
        Group.RECORD,
        Kind.CHOICE,
        empty=None,
        choices=Status,
        queryable=True,
        sortable=True,
        exported=True,
        help="A move into VERIFICATION_FAILED or INACTIVE, or off the recommended flow, needs "
        "`status_reason_code` (and `status_reason` when the code is OTHER).",
        clean=_status,
        listed=True,
        in_form=False,
    ),
    Field(
        "status_changed_at",
        "In status since",
        Group.RECORD,
        Kind.DATETIME,
        input=False,
        tracked=False,
        api=False,  # derived from the status history, for the board and the export
        exported=True,
        listed=True,
    ),
    Field(
        "date_of_birth",
        "Date of birth",
        Group.KYC,
        Kind.DATE,
        empty=None,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        masked=True,
        clean=_date_of_birth,
    ),
    Field(
        "residency_country",
        "Residency country",
        Group.KYC,
        Kind.COUNTRY,
        queryable=True,
        sortable=True,
        exported=True,
        example="BE",
        listed=True,
    ),
    Field(
        "nationalities",
        "Nationalities",
        Group.KYC,
        Kind.COUNTRIES,
        empty=[],
        exported=True,
        example=["BE"],
    ),
    Field(
        "counter_account",
        "Counter account",
        Group.COUNTER_ACCOUNT,
        Kind.COUNTER_ACCOUNT,
        empty=None,
        sensitive=True,
        help="Replaced whole.",
        parts=(
            Part(
                "bank_account_number",
                "Account number",
                "bank_account_number",
                column="bank_account_number",
                example="BE71096123456769",
                queryable=True,
                required=True,
                masked=True,
                help="IBAN, or a US account number (4 to 17 digits).",
            ),
            Part(
                "bank_account_number_type",
                "Account type",
                "bank_account_number_type",
                column="bank_account_number_type",
                example="IBAN",
                help="`IBAN` or `ABA`; an IBAN is recognised without it.",
            ),
            Part(
                "bank_id",
                "Bank id",
                "bank_id",
                column="bank_id",
                example="GEBABEBB",
                help="BIC for an IBAN, 9-digit routing number for ABA.",
            ),
            Part(
                "bank_id_type",
                "Bank id type",
                "bank_id_type",
                column="bank_id_type",
                example="BIC",
                help="`BIC` or `ABA`.",
            ),
        ),
        exported=True,
        read=_read_counter_account,
        write=_write_counter_account,
        clean=_clean_counter_account,
    ),
    Field(
        "feature_flags",
        "Feature flags",
        Group.RECORD,
        Kind.FLAGS,
        empty=[],
        choices=FeatureFlag,
        queryable=True,
        exported=True,
        help="Needs the manage_feature_flags permission.",
        read=lambda user: sorted(user.flag_names()) if user.pk else [],
        clean=_plain(validators.feature_flags),
        in_form=False,
    ),
    Field(
        "address",
        "Address",
        Group.CONTACT,
        Kind.OBJECT,
        empty=None,
        sensitive=True,
        help="Replaced whole.",
        parts=_ADDRESS_PARTS,
        exported=True,
        clean=_object(validators.address, _ADDRESS_PARTS),
    ),
    Field(
        "tax_residency",
        "Tax residency",
        Group.KYC,
        Kind.OBJECT,
        empty=None,
        sensitive=True,
        help="Replaced whole.",
        parts=_TAX_RESIDENCY_PARTS,
        clean=_object(validators.tax_residency, _TAX_RESIDENCY_PARTS),
    ),
    Field(
        "identity",
        "Identity",
        Group.KYC,
        Kind.TEXT,
        sensitive=True,
        masked=True,
        help="National identity number, ≤ 64.",
    ),
    Field(
        "metadata",
        "Metadata",
        Group.RECORD,
        Kind.MAP,
        empty={},
        help="≤ 50 keys of ≤ 40 characters.",
        clean=_plain(validators.metadata),
    ),
    Field(
        "employment_status",
        "Employment status",
        Group.EMPLOYMENT,
        Kind.CHOICE,
        choices=EmploymentStatus,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="With income_range and sources_of_wealth; industry too when employed.",
    ),
    Field(
        "income_range",
        "Income range",
        Group.EMPLOYMENT,
        Kind.CHOICE,
        choices=IncomeRange,
        queryable=True,
        sortable=True,
        exported=True,
        sensitive=True,
        help="Yearly gross income, in euros.",
    ),
    Field(
        "sources_of_wealth",
        "Sources of wealth",
        Group.EMPLOYMENT,
        Kind.CHOICES,
        empty=[],
        choices=SourceOfWealth,
        exported=True,
        sensitive=True,
        example=["SALARY"],
    ),
    Field(
        "industry",
        "Industry",
        Group.EMPLOYMENT,
        Kind.CHOICE,
        choices=Industry,
        queryable=True,
        sortable=True,
        exported=True,
        help="Required for the full-time, part-time and self-employed.",
    ),
    Field(
        "readable_by",
        "Readable by",
        Group.RECORD,
        Kind.USER_IDS,
        empty=[],
        help="User ids that may read this user (needs change_user).",
        read=_related_ids("readable_by"),
        clean=lambda value, context: _clean_user_ids(value, context, label="Readable by"),
    ),
    Field(
        "modifiable_by",
        "Modifiable by",
        Group.RECORD,
        Kind.USER_IDS,
        empty=[],
        help="User ids that may modify this user (needs change_user).",
        read=_related_ids("modifiable_by"),
        clean=lambda value, context: _clean_user_ids(value, context, label="Modifiable by"),
    ),
    Field(
        "roles",
        "Roles",
        Group.RECORD,
        Kind.ROLES,
        empty=[],
        choices=Role,
        input=False,
        api=False,  # console access is not part of the contract's record
        read=lambda user: sorted(user.role_names()) if user.pk else [],
    ),
    Field(
        "creation_datetime",
        "Created",
        Group.RECORD,
        Kind.DATETIME,
        input=False,
        tracked=False,
        queryable=True,
        sortable=True,
        exported=True,
        listed=True,
    ),
    Field(
        "version",
        "Version",
        Group.RECORD,
        Kind.INT,
        input=False,
        tracked=False,
        queryable=True,
        sortable=True,
        exported=True,
        listed=True,
    ),
    Field(
        "version_datetime",
        "Version time",
        Group.RECORD,
        Kind.DATETIME,
        input=False,
        tracked=False,
        queryable=True,
        sortable=True,
    ),
    Field(
        "version_authored_by_user_id",
        "Version author",
        Group.RECORD,
        Kind.ID,
        column="version_authored_by_user",
        input=False,
        tracked=False,
        read=lambda user: user.version_authored_by_user_id,
    ),
    Field(
        "deleted",
        "Deleted",
        Group.RECORD,
        Kind.BOOL,
        empty=False,
        input=False,
        queryable=True,
        sortable=True,
        exported=True,
        listed=True,
    ),
)

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}

# The versioned record: every field a version may change, in the contract's order.
TRACKED_FIELDS = tuple(f.name for f in _FIELDS if f.tracked)
# What `data` may carry in the services' create and update. `status_reason` and
# `status_reason_code` ride with `status`.
INPUT_FIELDS = tuple(f.name for f in _FIELDS if f.input)
INPUT_EXTRAS = ("status_reason", "status_reason_code")
WRITE_ONCE_FIELDS = tuple(f.name for f in _FIELDS if f.write_once)
UNIQUE_FIELDS = tuple(f.name for f in _FIELDS if f.unique)
API_FIELDS = tuple(f.name for f in _FIELDS if f.api)
# What the API returns but no write may set (`version` included: a PATCH sends it as the
# version it was made from). A PATCH may send these back as read; a different value is refused.
READ_ONLY_API_FIELDS = tuple(f.name for f in _FIELDS if f.api and not f.input)
FIELD_LABELS = {f.name: f.label for f in _FIELDS}
# Rules over several fields, checked on the values they will have once saved (what the input
# says, else what is stored): (fields, validator taking them as keywords).
RECORD_RULES: tuple[tuple[tuple[str, ...], Callable[..., None]], ...] = (
    (("employment_status", "income_range", "sources_of_wealth", "industry"), validators.employment),
)
# Object-level access: the users named here may read / modify the record beyond their role.
ACCESS_LIST_FIELDS = tuple(f.name for f in _FIELDS if f.kind == Kind.USER_IDS)
# Objects edited as a group of inputs: field -> {input name: key in the object}.
INPUT_GROUPS = {f.name: {p.input: p.key for p in f.parts} for f in _FIELDS if f.parts and f.input}


# --- masked values (issue 13.3) ----------------------------------------------------------------
# A masked value is shown as its mask ("BE71 •••• •••• 6769") until someone allowed to reveal it
# gives a purpose; each reveal is an access-log row. The export shows the masks to those who may
# not reveal.

MASK = "••••"


def mask_account(value: str) -> str:
    """An account number: an IBAN keeps its first and last groups of four, "BE71 •••• •••• 6769";
    any other number (ABA) its last four digits, "•••• 6789"."""
    compact = "".join(str(value).split()).upper()
    if len(compact) > 8 and compact[:2].isalpha():
        groups = [compact[i : i + 4] for i in range(0, len(compact), 4)]
        return " ".join([groups[0], *[MASK] * (len(groups) - 2), groups[-1]])
    return f"{MASK} {compact[-4:]}" if len(compact) > 4 else MASK


def mask_identifier(value: str) -> str:
    """An identity or tax number: its last three characters when it has eight or more, else
    nothing of it ("•••• 789")."""
    text = str(value).strip()
    return f"{MASK} {text[-3:]}" if len(text) >= 8 else MASK


def mask_date(value: str | dt.date) -> str:
    """A date of birth: the year only, "1985-••-••"."""
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return f"{text[:4]}-••-••" if len(text) >= 4 else MASK


@dataclass(frozen=True)
class Masked:
    """One masked value: `name` is what a reveal and the access log call it (the edit form's
    input), `field` / `part` where it is in the contract, `column` its model column."""

    name: str
    label: str
    field: str
    part: str
    column: str
    mask: Callable[[Any], str]

    def of(self, user: User) -> Any:
        value = FIELDS[self.field].value_of(user)
        if self.part:
            return (value or {}).get(self.part)
        return value

    def masked(self, value: Any) -> Any:
        return value if value in (None, "") else self.mask(value)


def _mask_for(f: Field, part: Part | None) -> Callable[[Any], str]:
    if part is not None and f.kind == Kind.COUNTER_ACCOUNT:
        return mask_account
    if f.kind == Kind.DATE:
        return mask_date
    return mask_identifier


MASKED: dict[str, Masked] = {
    m.name: m
    for m in (
        [
            Masked(f.name, f.label, f.name, "", f.column, _mask_for(f, None))
            for f in _FIELDS
            if f.masked
        ]
        + [
            Masked(p.input, p.label, f.name, p.key, p.column, _mask_for(f, p))
            for f in _FIELDS
            for p in f.parts
            if p.masked
        ]
    )
}
# Masked values by the model column they are stored in (the export's columns).
MASKED_COLUMNS = {m.column: m for m in MASKED.values() if m.column}


def masks_of(user: User) -> dict[str, str]:
    """`user`'s masked values that are set, as their masks: name -> mask."""
    masks = {}
    for name, masked in MASKED.items():
        value = masked.of(user)
        if value not in (None, ""):
            masks[name] = masked.masked(value)
    return masks


def masked_value(field: str, value: Any) -> Any:
    """`field`'s JSON value with its masked values (or parts) masked: what a diff shows."""
    if value in (None, "", [], {}):
        return value
    for m in MASKED.values():
        if m.field != field:
            continue
        if not m.part:
            value = m.masked(value)
        elif isinstance(value, dict) and value.get(m.part):
            value = {**value, m.part: m.masked(value[m.part])}
    return value


def fields_in(group: Group) -> tuple[Field, ...]:
    return tuple(f for f in _FIELDS if f.group == group)


def empty_record() -> dict[str, Any]:
    """Every tracked field's empty value: what a creation diffs against."""
    return {name: FIELDS[name].empty for name in TRACKED_FIELDS}


def snapshot(user: User) -> dict[str, Any]:
    """The tracked fields of `user` as JSON values: what versions store and diffs compare."""
    return {name: FIELDS[name].value_of(user) for name in TRACKED_FIELDS}


def is_empty(value: Any) -> bool:
    return value in (None, "", [], {})


def _export_cells(f: Field) -> tuple[str, ...]:
    if f.parts and not f.parts[0].column:
        # An object stored as one JSON column (the address): a cell per part, named as its
        # edit form input (`address_city`).
        return tuple(part.input for part in f.parts)
    # A field of no column of its own (the flags) is one cell under its name.
    return f.columns or (f.name,)


def export_columns() -> tuple[str, ...]:
    """The CSV's columns: each exported field, an object stored in columns as its columns,
    an object stored as JSON as a column per part."""
    return tuple(column for f in _FIELDS if f.exported for column in _export_cells(f))


def export_json_parts() -> dict[str, tuple[str, str]]:
    """Export columns read from a key of a JSON object: column -> (model column, key)."""
    return {
        part.input: (f.column, part.key)
        for f in _FIELDS
        if f.exported and f.parts and not f.parts[0].column
        for part in f.parts
    }


def form_fields() -> tuple[str, ...]:
    """The contract fields the edit form edits with one input of the same name."""
    return tuple(f.name for f in _FIELDS if f.input and f.in_form and not f.parts)


def listed_columns() -> tuple[str, ...]:
    """The model columns the list and the board load (nothing else of the row is read)."""
    return tuple(f.column for f in _FIELDS if f.listed)


# --- where an error is shown -----------------------------------------------------------------
# Services raise ValidationError keyed by contract field, nested parts dotted
# (`counter_account.bank_id`, `address.city`). Each front end shows an error at its own place;
# these say where, from the registry, for all of them.


def errors_by_target(
    exc: ValidationError, target: Callable[[tuple[str, ...]], Any]
) -> list[tuple[Any, list[ValidationError]]]:
    """Each error of a service `ValidationError` with `target(path)`, its place in a front end.

    `path` is the key split at its dots: `("counter_account", "bank_id")`, `()` for an error
    about the whole input.
    """
    error_dict = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: [exc]}
    return [
        (target(() if key == NON_FIELD_ERRORS else tuple(key.split("."))), errors)
        for key, errors in error_dict.items()
    ]


def _part(path: tuple[str, ...]) -> tuple[Field | None, Part | None]:
    field = FIELDS.get(path[0]) if path else None
    if field is None or len(path) < 2:
        return field, None
    return field, next((part for part in field.parts if part.key == path[1]), None)


def input_for(path: tuple[str, ...]) -> str | None:
    """The edit form's input showing an error at `path` (`address.city` -> `address_city`)."""
    if path in (("status_reason",), ("status_reason_code",)):
        return "status"
    field, part = _part(path)
    if field is None or not field.input:
        return None
    if part is not None:
        return part.input
    if len(path) > 1:
        return None
    return field.parts[0].input if field.parts else field.name


def column_for(path: tuple[str, ...]) -> str | None:
    """The model form field (the admin's) showing an error at `path`: the part's own column
    for an object stored in columns, else the field's."""
    if path in (("status_reason",), ("status_reason_code",)):
        return path[0]
    field, part = _part(path)
    if field is None:
        return None
    if part is not None and part.column:
        return part.column
    return field.parts[0].column if field.parts and field.parts[0].column else field.name
