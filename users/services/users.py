"""Every write to a User. Views, the API, the admin and management commands call these.

Each service is atomic and writes the version record (number, author, time, field-level diff) in
the same transaction as the change, so nothing that writes a User can bypass the history. Errors:

- `ValidationError` with an error dict keyed by contract field (nested parts dotted:
  `counter_account.bank_id`, `address.city`). Codes tell the API what kind of refusal it is:
  `write_once` and `unique` are business-rule conflicts (409), the rest invalid input (422).
- `StaleVersion` when an edit was made from an older version than the stored one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from users import validators
from users.contract import FIELD_LABELS, TRACKED_FIELDS
from users.models import (
    FeatureFlagGrant,
    Role,
    Status,
    StatusChange,
    User,
    UserVersion,
    is_recommended_move,
)
from users.selectors.history import version_diff

WRITE_ONCE_FIELDS = ("email", "phone")
# What `data` may carry in user_create / user_update. `status_reason` rides along with `status`.
INPUT_FIELDS = frozenset(TRACKED_FIELDS) - {"deleted", "roles"} | {"status_reason"}
UNIQUE_FIELDS = ("email", "phone", "external_id")


# eq=False keeps the exception hashable, as tracebacks and loggers expect.
@dataclass(eq=False)
class StaleVersion(Exception):
    """An edit was made from `expected_version`, but the record is at `current.version`.

    `changes` is what happened meanwhile, field → [old, new], so the user can see it and
    re-apply their own change on top.
    """

    current: User
    expected_version: int
    changes: dict[str, list[Any]] = field(default_factory=dict)

    def __str__(self) -> str:
        fields = ", ".join(FIELD_LABELS.get(name, name) for name in self.changes) or "nothing"
        return (
            f"This user was changed by someone else since version {self.expected_version} "
            f"(now version {self.current.version}; changed: {fields}). Nothing was saved."
        )


# --- reading the record as JSON values ---------------------------------------------------------


def user_snapshot(user: User) -> dict[str, Any]:
    """The tracked fields as JSON values: what versions store and diffs compare."""
    return {
        "external_id": user.external_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone": user.phone,
        "brokerage_user_id": user.brokerage_user_id,
        "idp_user_id": user.idp_user_id,
        "language": user.language,
        "counter_account": user.counter_account,
        "feature_flags": sorted(user.flag_names()) if user.pk else [],
        "status": user.status,
        "date_of_birth": user.date_of_birth.isoformat() if user.date_of_birth else None,
        "residency_country": user.residency_country,
        "nationalities": list(user.nationalities or []),
        "address": user.address,
        "tax_residency": user.tax_residency,
        "identity": user.identity,
        "metadata": dict(user.metadata or {}),
        "readable_by": _related_ids(user, "readable_by"),
        "modifiable_by": _related_ids(user, "modifiable_by"),
        "roles": sorted(user.role_names()) if user.pk else [],
        "deleted": user.deleted,
    }


def _related_ids(user: User, name: str) -> list[str]:
    if not user.pk:
        return []
    cache = getattr(user, "_prefetched_objects_cache", {})
    if name in cache:
        return sorted(u.pk for u in cache[name])
    return sorted(getattr(user, name).values_list("pk", flat=True))


def _empty_value(name: str) -> Any:
    return {
        "nationalities": [],
        "metadata": {},
        "feature_flags": [],
        "readable_by": [],
        "modifiable_by": [],
        "roles": [],
        "deleted": False,
    }.get(name, None if name in _NULLABLE else "")


_NULLABLE = {
    "external_id",
    "email",
    "phone",
    "counter_account",
    "date_of_birth",
    "address",
    "tax_residency",
    "status",
}


def _is_empty(value: Any) -> bool:
    return value in (None, "", [], {})


# --- cleaning input ----------------------------------------------------------------------------


def _prefixed(prefix: str, exc: ValidationError) -> dict[str, list[ValidationError]]:
    if hasattr(exc, "error_dict"):
        return {f"{prefix}.{key}": errors for key, errors in exc.error_dict.items()}
    return {prefix: exc.error_list}


def clean_user_data(data: Mapping[str, Any], *, user: User | None) -> dict[str, Any]:
    """Validate and normalise `data` (contract field names) into snapshot values.

    Checks everything a service would refuse in `data` itself, against `user` as given (None for
    a new user): field rules, write-once, uniqueness and whether a status move needs a reason.
    Raises one `ValidationError` with every problem found, keyed by field. The services call it
    again on the locked row, so a form may call it first to show errors next to its fields.
    """
    errors: dict[str, list[ValidationError]] = {}
    unknown = sorted(set(data) - INPUT_FIELDS)
    for name in unknown:
        errors[name] = [ValidationError("Unknown field.", code="unknown_field")]

    def run(name: str, func, *args, **kwargs) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            errors.update(_prefixed(name, exc))
            return None

    cleaned: dict[str, Any] = {}
    simple_text = {
        "first_name": 128,
        "last_name": 128,
        "brokerage_user_id": 64,
        "idp_user_id": 64,
        "identity": 64,
    }
    for name, max_length in simple_text.items():
        if name in data:
            cleaned[name] = run(
                name, validators.text, data[name], max_length=max_length, field=FIELD_LABELS[name]
            )
    if "external_id" in data:
        value = run(
            "external_id", validators.text, data["external_id"], max_length=64, field="External id"
        )
        cleaned["external_id"] = value or None
    if "email" in data:
        cleaned["email"] = run("email", validators.email, data["email"])
    if "residency_country" in data:
        cleaned["residency_country"] = run(
            "residency_country",
            validators.country,
            data["residency_country"],
            field="Residency country",
        )
    if "phone" in data:
        region = cleaned.get("residency_country") or (user.residency_country if user else "")
        cleaned["phone"] = run("phone", validators.phone, data["phone"], region=region)
    if "language" in data:
        cleaned["language"] = run("language", validators.language, data["language"])
    if "counter_account" in data:
        columns = run("counter_account", validators.counter_account, data["counter_account"])
        if columns is not None:
            cleaned["counter_account"] = (
                {k: (v or None) if k.startswith("bank_id") else v for k, v in columns.items()}
                if columns["bank_account_number"]
                else None
            )
    if "feature_flags" in data:
        cleaned["feature_flags"] = run(
            "feature_flags", validators.feature_flags, data["feature_flags"]
        )
    if "status" in data:
        status = data["status"]
        if status not in Status.values:
            errors["status"] = [
                ValidationError(
                    f"Unknown status {status!r}; known: {', '.join(Status.values)}.", code="choice"
                )
            ]
        else:
            cleaned["status"] = status
    if "status_reason" in data:
        cleaned["status_reason"] = run(
            "status_reason",
            validators.text,
            data["status_reason"],
            max_length=2000,
            field="Reason",
        )
    if "date_of_birth" in data:
        value = run("date_of_birth", validators.date_of_birth, data["date_of_birth"])
        cleaned["date_of_birth"] = value.isoformat() if value else None
    if "nationalities" in data:
        cleaned["nationalities"] = run("nationalities", validators.countries, data["nationalities"])
    if "address" in data:
        cleaned["address"] = run("address", validators.address, data["address"])
    if "tax_residency" in data:
        cleaned["tax_residency"] = run(
            "tax_residency", validators.tax_residency, data["tax_residency"]
        )
    if "metadata" in data:
        cleaned["metadata"] = run("metadata", validators.metadata, data["metadata"])
    for name in ("readable_by", "modifiable_by"):
        if name in data:
            ids = run(name, validators.user_ids, data[name], field=FIELD_LABELS[name])
            if ids:
                missing = set(ids) - set(
                    User.objects.filter(pk__in=ids).values_list("pk", flat=True)
                )
                if missing:
                    errors[name] = [
                        ValidationError(f"No user with id {sorted(missing)[0]}.", code="user_id")
                    ]
            cleaned[name] = ids or []
    if user is not None:
        _check_write_once(user, cleaned, errors)
    _check_unique(user, cleaned, errors)
    if "status" in cleaned and not errors.get("status_reason"):
        from_status = user.status if user is not None else None
        if cleaned["status"] != from_status:
            try:
                check_status_move(
                    from_status=from_status,
                    to_status=cleaned["status"],
                    reason=cleaned.get("status_reason") or "",
                )
            except ValidationError as exc:
                errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _check_write_once(
    user: User, cleaned: dict[str, Any], errors: dict[str, list[ValidationError]]
) -> None:
    for name in WRITE_ONCE_FIELDS:
        stored = getattr(user, name)
        if name in cleaned and name not in errors and stored and cleaned[name] != stored:
            errors[name] = [
                ValidationError(
                    f"{FIELD_LABELS[name]} is write-once: it was set to {stored} and cannot "
                    "be changed.",
                    code="write_once",
                )
            ]


def _check_unique(
    user: User | None, cleaned: dict[str, Any], errors: dict[str, list[ValidationError]]
) -> None:
    """Friendly pre-check; the database constraints still decide a race (see `_save`)."""
    others = User.objects.all()
    if user is not None:
        others = others.exclude(pk=user.pk)
    lookups = {"email": "email__iexact", "phone": "phone", "external_id": "external_id"}
    for name, lookup in lookups.items():
        value = cleaned.get(name)
        if value and name not in errors and others.filter(**{lookup: value}).exists():
            errors[name] = [_duplicate(name)]


def _duplicate(name: str) -> ValidationError:
    return ValidationError(f"{FIELD_LABELS[name]} is already used by another user.", code="unique")


def check_status_move(*, from_status: str | None, to_status: str, reason: str) -> bool:
    """Whether a move (from None: a creation) is off the recommended flow.

    An off-flow move without a reason is refused with `status_reason` / `reason_required`.
    """
    off_flow = not is_recommended_move(from_status, to_status)
    if off_flow and not reason:
        start = Status(from_status).label if from_status else "the start"
        raise ValidationError(
            {
                "status_reason": ValidationError(
                    f"A move from {start} to {Status(to_status).label} is off the recommended "
                    "flow: give a reason.",
                    code="reason_required",
                )
            }
        )
    return off_flow


# --- applying a change -------------------------------------------------------------------------

_COLUMNS = {
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "brokerage_user_id",
    "idp_user_id",
    "language",
    "status",
    "residency_country",
    "nationalities",
    "address",
    "tax_residency",
    "identity",
    "metadata",
    "deleted",
}


def _assign(user: User, name: str, value: Any) -> None:
    if name in _COLUMNS:
        if name in ("address", "tax_residency"):
            value = value or None
        setattr(user, name, value)
    elif name == "counter_account":
        value = value or {}
        user.bank_account_number = value.get("bank_account_number") or ""
        user.bank_account_number_type = value.get("bank_account_number_type") or ""
        user.bank_id = value.get("bank_id") or ""
        user.bank_id_type = value.get("bank_id_type") or ""
    elif name == "date_of_birth":
        user.date_of_birth = dt.date.fromisoformat(value) if value else None


def _save(user: User, *, create: bool) -> None:
    """Insert or update the row; a unique race lost at the database becomes a field error."""
    try:
        with transaction.atomic():
            user.save(force_insert=create)
    except IntegrityError as exc:
        name = _unique_field(exc)
        if name is None:
            raise
        raise ValidationError({name: _duplicate(name)}) from exc


def _unique_field(exc: IntegrityError) -> str | None:
    """Which unique field a violation is about, from the constraint name, never the values."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:  # PostgreSQL (psycopg) names the constraint
        if sqlstate != "23505":  # unique_violation
            return None
        where = (cause.diag.constraint_name or "").lower()
    else:  # SQLite: "UNIQUE constraint failed: users_user.email" / "... index 'name'"
        where = str(exc).split("\n")[0].lower()
        if not where.startswith("unique constraint failed"):
            return None
    for name in UNIQUE_FIELDS:
        if name in where:
            return name
    return None


def _apply_relations(
    user: User, changes: dict[str, list[Any]], *, actor: User | None, now: dt.datetime
) -> None:
    if "feature_flags" in changes:
        old, new = set(changes["feature_flags"][0] or []), set(changes["feature_flags"][1])
        if old - new:
            FeatureFlagGrant.objects.filter(user=user, flag__in=old - new).delete()
        FeatureFlagGrant.objects.bulk_create(
            FeatureFlagGrant(user=user, flag=flag, granted_at=now, granted_by=actor)
            for flag in sorted(new - old)
        )
        user._flag_names = new
    if "roles" in changes:
        groups = Group.objects.filter(name__in=changes["roles"][1])
        user.groups.remove(*Group.objects.filter(name__in=Role.values))
        user.groups.add(*groups)
        user._role_names = set(changes["roles"][1])
    for name in ("readable_by", "modifiable_by"):
        if name in changes:
            getattr(user, name).set(changes[name][1])
            getattr(user, "_prefetched_objects_cache", {}).pop(name, None)


def _commit_version(
    user: User,
    *,
    changes: dict[str, list[Any]],
    actor: User | None,
    now: dt.datetime,
    create: bool,
    status_reason: str = "",
) -> User:
    """Save the row, its relations, the version record and (if any) the status history row."""
    status_change = None
    if "status" in changes:
        from_status, to_status = changes["status"]
        off_flow = check_status_move(
            from_status=from_status, to_status=to_status, reason=status_reason
        )
        user.status_changed_at = now
        status_change = StatusChange(
            user=user,
            from_status=from_status or "",
            to_status=to_status,
            changed_at=now,
            changed_by=actor,
            reason=status_reason,
            off_flow=off_flow,
        )
    if create:
        user.creation_datetime = now
        user.status_changed_at = user.status_changed_at or now
        user.version = 1
    else:
        user.version += 1
    user.version_datetime = now
    user.version_authored_by_user = actor
    _save(user, create=create)
    _apply_relations(user, changes, actor=actor, now=now)
    UserVersion.objects.create(
        user=user, version=user.version, created_at=now, author=actor, changes=changes
    )
    if status_change is not None:
        status_change.version = user.version
        status_change.save()
    return user


def _changes(before: dict[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {
        name: [before[name], after[name]]
        for name in TRACKED_FIELDS
        if name in after and after[name] != before[name]
    }


def _lock(user: User) -> User:
    """Re-read the row under a lock: the version check and the write see the same state."""
    return (
        User.objects.select_for_update()
        .prefetch_related("readable_by", "modifiable_by")
        .get(pk=user.pk)
    )


def _check_version(current: User, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != current.version:
        raise StaleVersion(
            current=current,
            expected_version=expected_version,
            changes=version_diff(
                current, from_version=expected_version, to_version=current.version
            ),
        )


def _refuse_deleted(user: User) -> None:
    if user.deleted:
        raise ValidationError(
            {"deleted": ValidationError("This user is deleted; restore it first.", code="deleted")}
        )


# --- the services ------------------------------------------------------------------------------


@transaction.atomic
def user_create(
    *,
    data: Mapping[str, Any],
    actor: User | None,
    password: str | None = None,
    roles: Iterable[str] = (),
    is_superuser: bool = False,
) -> User:
    """Create a user from contract fields; version 1 records every field that was set.

    `status` defaults to WAITING_FOR_VERIFICATION; a start outside the two initial statuses
    needs `status_reason`.
    """
    cleaned = clean_user_data({k: v for k, v in data.items() if v is not None}, user=None)
    role_names = sorted(set(roles))
    unknown_roles = set(role_names) - set(Role.values)
    if unknown_roles:
        raise ValidationError(
            {"roles": ValidationError(f"Unknown role {sorted(unknown_roles)[0]!r}.", code="choice")}
        )
    status_reason = cleaned.pop("status_reason", "") or ""
    cleaned.setdefault("status", Status.WAITING_FOR_VERIFICATION)
    if role_names:
        cleaned["roles"] = role_names

    user = User(is_superuser=is_superuser)
    user._flag_names = set()
    user._role_names = set()
    before = {name: _empty_value(name) for name in TRACKED_FIELDS}
    before["status"] = None
    changes = {
        name: [before[name], value]
        for name, value in cleaned.items()
        if name in TRACKED_FIELDS and not _is_empty(value)
    }
    for name, value in cleaned.items():
        _assign(user, name, value)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    return _commit_version(
        user,
        changes=changes,
        actor=actor,
        now=timezone.now(),
        create=True,
        status_reason=status_reason,
    )


def _locked_for_edit(
    user: User, expected_version: int | None, *, allow_deleted: bool = False
) -> User:
    """The stored row, locked, after the version and deleted checks every edit shares."""
    current = _lock(user)
    _check_version(current, expected_version)
    if not allow_deleted:
        _refuse_deleted(current)
    return current


def _apply(current: User, cleaned: dict[str, Any], *, actor: User | None) -> User:
    """Write what differs from the locked row `current`; `cleaned` was checked against it."""
    status_reason = cleaned.pop("status_reason", "") or ""
    before = user_snapshot(current)
    changes = _changes(before, cleaned)
    if not changes:
        return current
    for name, (_, new) in changes.items():
        _assign(current, name, new)
    return _commit_version(
        current,
        changes=changes,
        actor=actor,
        now=timezone.now(),
        create=False,
        status_reason=status_reason,
    )


@transaction.atomic
def user_update(
    *,
    user: User,
    data: Mapping[str, Any],
    actor: User | None,
    expected_version: int | None = None,
) -> User:
    """Change any contract fields (nested objects replaced whole). Unchanged values are no-ops.

    Refuses a write-once change, a duplicate, an off-flow status without `status_reason`, a
    deleted user, and (with `expected_version`) a stale edit (`StaleVersion`).
    Returns the user as stored; the version is bumped only when something changed.
    """
    current = _locked_for_edit(user, expected_version)
    cleaned = clean_user_data(data, user=current)
    return _apply(current, cleaned, actor=actor)


@transaction.atomic
def user_change_status(
    *,
    user: User,
    status: str,
    actor: User | None,
    reason: str = "",
    expected_version: int | None = None,
) -> User:
    """Move a user to `status`. Off the recommended flow only with a reason (marked off-flow)."""
    current = _locked_for_edit(user, expected_version)
    if status == current.status:
        raise ValidationError(
            {
                "status": ValidationError(
                    f"The user is already {Status(current.status).label.lower()}.", code="unchanged"
                )
            }
        )
    cleaned = clean_user_data({"status": status, "status_reason": reason}, user=current)
    return _apply(current, cleaned, actor=actor)


@transaction.atomic
def user_set_flags(
    *,
    user: User,
    flags: Iterable[str],
    actor: User | None,
    expected_version: int | None = None,
) -> User:
    """Replace the user's feature flags; each grant/revoke is a version with author and time."""
    current = _locked_for_edit(user, expected_version)
    cleaned = clean_user_data({"feature_flags": list(flags)}, user=current)
    return _apply(current, cleaned, actor=actor)


@transaction.atomic
def user_set_flag(
    *,
    user: User,
    flag: str,
    enabled: bool,
    actor: User | None,
    expected_version: int | None = None,
) -> User:
    """Grant or revoke one flag, leaving the others as they are now."""
    current = _locked_for_edit(user, expected_version)
    flags = current.flag_names() | {flag} if enabled else current.flag_names() - {flag}
    cleaned = clean_user_data({"feature_flags": sorted(flags)}, user=current)
    return _apply(current, cleaned, actor=actor)


@transaction.atomic
def user_set_roles(
    *, user: User, roles: Iterable[str], actor: User | None, expected_version: int | None = None
) -> User:
    """Replace the user's console roles (admin only, checked by the caller)."""
    role_names = sorted(set(roles))
    unknown = set(role_names) - set(Role.values)
    if unknown:
        raise ValidationError(
            {"roles": ValidationError(f"Unknown role {sorted(unknown)[0]!r}.", code="choice")}
        )
    current = _locked_for_edit(user, expected_version)
    return _apply(current, {"roles": role_names}, actor=actor)


@transaction.atomic
def user_delete(*, user: User, actor: User | None, expected_version: int | None = None) -> User:
    """Soft delete: the user is kept, hidden from default lists, restorable by an admin.

    Deleting a deleted user changes nothing and returns it (DELETE is idempotent).
    """
    current = _locked_for_edit(user, expected_version, allow_deleted=True)
    return _apply(current, {"deleted": True}, actor=actor)


@transaction.atomic
def user_restore(*, user: User, actor: User | None, expected_version: int | None = None) -> User:
    """Undo a soft delete; the restore is a version like any other change."""
    current = _locked_for_edit(user, expected_version, allow_deleted=True)
    if not current.deleted:
        raise ValidationError(
            {"deleted": ValidationError("This user is not deleted.", code="not_deleted")}
        )
    return _apply(current, {"deleted": False}, actor=actor)


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    """Auth internals: not versioned, never in history (contract)."""
    current = _lock(user)
    current.set_password(password)
    current.save(update_fields=["password"])
    return current
