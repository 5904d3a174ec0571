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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from users import chain, contract, policy, validators
from users.contract import FIELD_LABELS, TRACKED_FIELDS, UNIQUE_FIELDS, WRITE_ONCE_FIELDS
from users.models import (
    OTHER_REASON_CODE,
    ChangeRequest,
    FeatureFlag,
    FeatureFlagGrant,
    ReasonCode,
    Role,
    SecurityEvent,
    Status,
    StatusChange,
    User,
    UserVersion,
    is_recommended_move,
    needs_reason_code,
)
from users.selectors.history import version_diff
from users.services import move_stats, notes
from users.services.proposals import propose
from users.services.security import security_event
from users.services.sessions import end_sessions

# Where the services read the time; seeders replaying history pass a clock of their own.
Clock = Callable[[], dt.datetime]

# What `data` may carry in user_create / user_update.
_ACCEPTED = frozenset(contract.INPUT_FIELDS) | frozenset(contract.INPUT_EXTRAS)
STATUS_REASON_MAX_LENGTH = 2000


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


def creation_changes(values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Version 1's diff: each tracked field that is set, from its empty value to `values`'."""
    before = contract.empty_record()
    return {
        name: [before[name], value]
        for name, value in values.items()
        if name in before and not contract.is_empty(value)
    }


def user_snapshot(user: User) -> dict[str, Any]:
    """The tracked fields as JSON values: what versions store and diffs compare."""
    return contract.snapshot(user)


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
    for name in sorted(set(data) - _ACCEPTED):
        errors[name] = [ValidationError("Unknown field.", code="unknown_field")]
    cleaned: dict[str, Any] = {}
    context = contract.CleanContext(data=data, user=user, cleaned=cleaned)
    for name in contract.INPUT_FIELDS:
        if name not in data:
            continue
        try:
            cleaned[name] = contract.FIELDS[name].cleaned(data[name], context)
        except ValidationError as exc:
            errors.update(_prefixed(name, exc))
    if "status_reason" in data:
        try:
            cleaned["status_reason"] = validators.text(
                data["status_reason"], max_length=STATUS_REASON_MAX_LENGTH, field="Reason"
            )
        except ValidationError as exc:
            errors["status_reason"] = exc.error_list
    if "status_reason_code" in data:
        try:
            cleaned["status_reason_code"] = clean_reason_code(data["status_reason_code"])
        except ValidationError as exc:
            errors["status_reason_code"] = exc.error_list
    _check_users_exist(cleaned, errors)
    _check_record_rules(context, errors)
    if user is not None:
        _check_write_once(user, cleaned, errors)
    _check_unique(user, cleaned, errors)
    if "status" in cleaned and not (
        errors.get("status_reason") or errors.get("status_reason_code")
    ):
        from_status = user.status if user is not None else None
        if cleaned["status"] != from_status:
            try:
                check_status_move(
                    from_status=from_status,
                    to_status=cleaned["status"],
                    reason=cleaned.get("status_reason") or "",
                    reason_code=cleaned.get("status_reason_code") or "",
                )
            except ValidationError as exc:
                errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _check_record_rules(
    context: contract.CleanContext, errors: dict[str, list[ValidationError]]
) -> None:
    """The registry's rules over several fields, for those the input touches."""
    for names, rule in contract.RECORD_RULES:
        if not any(name in context.cleaned for name in names) or any(n in errors for n in names):
            continue
        try:
            rule(**{name: context.current(name) for name in names})
        except ValidationError as exc:
            errors.update(exc.error_dict)


def _check_users_exist(cleaned: dict[str, Any], errors: dict[str, list[ValidationError]]) -> None:
    for name in contract.ACCESS_LIST_FIELDS:
        ids = cleaned.get(name)
        if ids and name not in errors:
            found = set(User.objects.filter(pk__in=ids).values_list("pk", flat=True))
            missing = sorted(set(ids) - found)
            if missing:
                errors[name] = [ValidationError(f"No user with id {missing[0]}.", code="user_id")]


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
    for name in UNIQUE_FIELDS:
        value = cleaned.get(name)
        # Email is unique whatever its case (a constraint on LOWER(email)).
        lookup = f"{name}__iexact" if contract.FIELDS[name].kind == contract.Kind.EMAIL else name
        if value and name not in errors and others.filter(**{lookup: value}).exists():
            errors[name] = [_duplicate(name)]


def _duplicate(name: str) -> ValidationError:
    return ValidationError(f"{FIELD_LABELS[name]} is already used by another user.", code="unique")


def clean_reason_code(value: Any) -> str:
    """A reason code as sent ("" for none), upper-cased; refused unless it is on the active
    list (`ReasonCode`): unknown with `reason_code_unknown`, deactivated with
    `reason_code_inactive`."""
    code = validators.text(value, max_length=64, field="Reason code").upper()
    if not code:
        return ""
    found = ReasonCode.objects.filter(pk=code).first()
    if found is None:
        raise ValidationError(
            f"{code[:40]!r} is not a reason code; choose one from the list.",
            code="reason_code_unknown",
        )
    if not found.active:
        raise ValidationError(
            f"The reason code {found.label!r} ({code}) is no longer in use; choose another.",
            code="reason_code_inactive",
        )
    return code


def check_status_move(
    *, from_status: str | None, to_status: str, reason: str, reason_code: str = ""
) -> bool:
    """Whether a move (from None: a creation) is off the recommended flow.

    A move into VERIFICATION_FAILED or INACTIVE, or off the flow, without a reason code is
    refused with `status_reason_code` / `reason_code_required`; the code OTHER without words
    with `status_reason` / `reason_required`. `reason_code` is one `clean_reason_code` passed.
    """
    off_flow = not is_recommended_move(from_status, to_status)
    start = Status(from_status).label if from_status else "the start"
    move = f"A move from {start} to {Status(to_status).label}"
    if needs_reason_code(from_status, to_status) and not reason_code:
        why = "is off the recommended flow" if off_flow else "needs a reason"
        raise ValidationError(
            {
                "status_reason_code": ValidationError(
                    f"{move} {why}: choose a reason code.", code="reason_code_required"
                )
            }
        )
    if reason_code == OTHER_REASON_CODE and not reason:
        raise ValidationError(
            {
                "status_reason": ValidationError(
                    "The reason code Other needs the reason in words.", code="reason_required"
                )
            }
        )
    return off_flow


# --- applying a change -------------------------------------------------------------------------


def _assign(user: User, name: str, value: Any) -> None:
    contract.FIELDS[name].assign(user, value)


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
        old_roles, new_roles = set(changes["roles"][0] or []), set(changes["roles"][1])
        groups = Group.objects.filter(name__in=new_roles)
        user.groups.remove(*Group.objects.filter(name__in=Role.values))
        user.groups.add(*groups)
        user._role_names = new_roles
        # Role changes are in the security log too (issue 10.7), whichever front end made them.
        for kind, names in (
            (SecurityEvent.Kind.ROLE_GRANTED, new_roles - old_roles),
            (SecurityEvent.Kind.ROLE_REVOKED, old_roles - new_roles),
        ):
            for name in sorted(names):
                security_event(kind=kind, actor=actor, subject=user, detail={"role": name})
    for name in contract.ACCESS_LIST_FIELDS:
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
    status_reason_code: str = "",
    approved_by: User | None = None,
) -> User:
    """Save the row, its relations, the version record and (if any) the status history row;
    `approved_by` is the checker of a guarded change applied on approval (`actor` its maker)."""
    status_change = None
    if "status" in changes:
        from_status, to_status = changes["status"]
        off_flow = check_status_move(
            from_status=from_status,
            to_status=to_status,
            reason=status_reason,
            reason_code=status_reason_code,
        )
        entered = None if create else user.status_changed_at
        user.status_changed_at = now
        user.status_reason_code = status_reason_code
        status_change = StatusChange(
            user=user,
            from_status=from_status or "",
            to_status=to_status,
            changed_at=now,
            changed_by=actor,
            reason=status_reason,
            reason_code_id=status_reason_code or None,
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
    # The history chain (users/chain.py): this version links to the user's last row, its status
    # change (if any) to the version, and the user's row keeps the new head.
    author_id = actor.pk if actor is not None else None
    version_hash = chain.link(
        chain.GENESIS if create else user.history_hash,
        chain.version_content(
            user_id=user.pk,
            version=user.version,
            at=now,
            author_id=author_id,
            changes=changes,
            approved_by_id=approved_by.pk if approved_by is not None else None,
        ),
    )
    user.history_hash = version_hash
    if status_change is not None:
        status_change.version = user.version
        status_change.chain_hash = user.history_hash = chain.link(
            version_hash,
            chain.status_content(
                user_id=user.pk,
                version=user.version,
                from_status=status_change.from_status,
                to_status=status_change.to_status,
                at=now,
                by_id=author_id,
                reason=status_change.reason,
                off_flow=status_change.off_flow,
                reason_code=status_change.reason_code_id,
            ),
        )
    _save(user, create=create)
    _apply_relations(user, changes, actor=actor, now=now)
    UserVersion.objects.create(
        user=user,
        version=user.version,
        created_at=now,
        author=actor,
        changes=changes,
        approved_by=approved_by,
        chain_hash=version_hash,
    )
    if status_change is not None:
        status_change.save()
        move_stats.record_move(
            user=user,
            move=move_stats.Move(
                at=now,
                from_status=status_change.from_status,
                to_status=status_change.to_status,
                since=entered,
                changed_by=author_id or "",
                reason_code=status_reason_code,
            ),
        )
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
        .prefetch_related(*contract.ACCESS_LIST_FIELDS)
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


# --- the services ------------------------------------------------------------------------------


@transaction.atomic
def user_create(
    *,
    data: Mapping[str, Any],
    actor: User | None,
    password: str | None = None,
    roles: Iterable[str] = (),
    is_superuser: bool = False,
    user_id: str | None = None,
    clock: Clock = timezone.now,
) -> User:
    """Create a user from contract fields; version 1 records every field that was set.

    `user_id` is for a caller that needs the id before the row exists (an invitation stores
    it as idp_user_id in the same version); by default a new one is made.

    `status` defaults to WAITING_FOR_VERIFICATION; a start outside the two initial statuses
    needs `status_reason_code` (see `check_status_move`).
    """
    cleaned = clean_user_data({k: v for k, v in data.items() if v is not None}, user=None)
    role_names = sorted(set(roles))
    unknown_roles = set(role_names) - set(Role.values)
    if unknown_roles:
        raise ValidationError(
            {"roles": ValidationError(f"Unknown role {sorted(unknown_roles)[0]!r}.", code="choice")}
        )
    status_reason = cleaned.pop("status_reason", "") or ""
    status_reason_code = cleaned.pop("status_reason_code", "") or ""
    cleaned.setdefault("status", Status.WAITING_FOR_VERIFICATION)
    if role_names:
        cleaned["roles"] = role_names

    user = User(is_superuser=is_superuser)
    if user_id is not None:
        user.pk = user_id  # chosen by a caller that stores the id in the record itself
    user._flag_names = set()
    user._role_names = set()
    changes = creation_changes(cleaned)
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
        now=clock(),
        create=True,
        status_reason=status_reason,
        status_reason_code=status_reason_code,
    )


def _locked_for_edit(
    user: User, expected_version: int | None, *, allow_deleted: bool = False
) -> User:
    """The stored row, locked, after the version and deleted checks every edit shares."""
    current = _lock(user)
    _check_version(current, expected_version)
    if not allow_deleted:
        validators.not_deleted(current.deleted)
    return current


def _apply(
    current: User,
    cleaned: dict[str, Any],
    *,
    actor: User | None,
    now: dt.datetime,
    change_reason: str = "",
    approved_by: User | None = None,
) -> User:
    """Write what differs from the locked row `current`; `cleaned` was checked against it.

    What the four-eyes policy guards (`policy.split_guarded`) is not written but proposed as a
    change request, with `change_reason`; the returned user carries the requests filed
    (`proposed_changes`). A change applied on approval passes its checker as `approved_by`
    and is not guarded again.
    """
    status_reason = cleaned.pop("status_reason", "") or ""
    status_reason_code = cleaned.pop("status_reason_code", "") or ""
    before = user_snapshot(current)
    changes = _changes(before, cleaned)
    waiting: dict[str, dict[str, list[Any]]] = {}
    if approved_by is None:
        changes, waiting = policy.split_guarded(changes)
    saved = current
    if changes:
        for name, (_, new) in changes.items():
            _assign(current, name, new)
        saved = _commit_version(
            current,
            changes=changes,
            actor=actor,
            now=now,
            create=False,
            status_reason=status_reason,
            status_reason_code=status_reason_code,
            approved_by=approved_by,
        )
        reason = _sessions_end_reason(changes)
        if reason:
            end_sessions(user=saved, actor=actor, reason=reason)
    saved.proposed_changes = [
        propose(user=saved, kind=kind, changes=diff, actor=actor, now=now, reason=change_reason)
        for kind, diff in waiting.items()
    ]
    return saved


def proposed_changes(user: User) -> list[ChangeRequest]:
    """The change requests the write that returned `user` filed instead of applying."""
    return list(getattr(user, "proposed_changes", []))


def _sessions_end_reason(changes: Mapping[str, list[Any]]) -> str:
    """Why a change ends the user's sessions ("" when it does not): the CONSOLE flag or a role
    taken away, or the user deleted. A re-grant then finds no session to revive."""
    if "deleted" in changes and changes["deleted"][1]:
        return "deleted"
    if "feature_flags" in changes:
        old, new = set(changes["feature_flags"][0] or []), set(changes["feature_flags"][1] or [])
        if FeatureFlag.CONSOLE in old - new:
            return "console_revoked"
    if "roles" in changes:
        old, new = set(changes["roles"][0] or []), set(changes["roles"][1] or [])
        if old - new:
            return "role_removed"
    return ""


@transaction.atomic
def user_update(
    *,
    user: User,
    data: Mapping[str, Any],
    actor: User | None,
    expected_version: int | None = None,
    change_reason: str = "",
    clock: Clock = timezone.now,
) -> User:
    """Change any contract fields (nested objects replaced whole). Unchanged values are no-ops.

    Refuses a write-once change, a duplicate, a move without the reason code it needs, a
    deleted user, and (with `expected_version`) a stale edit (`StaleVersion`).
    Returns the user as stored; the version is bumped only when something changed. Guarded
    fields (four-eyes) are proposed with `change_reason` instead (`proposed_changes`).
    """
    current = _locked_for_edit(user, expected_version)
    cleaned = clean_user_data(data, user=current)
    return _apply(current, cleaned, actor=actor, now=clock(), change_reason=change_reason)


@transaction.atomic
def user_change_status(
    *,
    user: User,
    status: str,
    actor: User | None,
    reason: str = "",
    reason_code: str = "",
    note: str = "",
    expected_version: int | None = None,
    clock: Clock = timezone.now,
) -> User:
    """Move a user to `status`. Into VERIFICATION_FAILED or INACTIVE, and off the recommended
    flow (marked off-flow), only with an active `reason_code`; the code OTHER also with a
    `reason` in words (`check_status_move`). A `note` is added to the case with the move, at
    its time (`services.notes`); a bad note refuses the move too."""
    current = _locked_for_edit(user, expected_version)
    note_text = notes.clean_note_text(note, required=False)
    if note_text and actor is not None:
        policy.check_add_note(actor, current)
    if status == current.status:
        raise ValidationError(
            {
                "status": ValidationError(
                    f"The user is already {Status(current.status).label.lower()}.", code="unchanged"
                )
            }
        )
    cleaned = clean_user_data(
        {"status": status, "status_reason": reason, "status_reason_code": reason_code},
        user=current,
    )
    now = clock()
    moved = _apply(current, cleaned, actor=actor, now=now)
    if note_text:
        notes.write_note(user=moved, text=note_text, actor=actor, at=now)
    return moved


@transaction.atomic
def user_set_flags(
    *,
    user: User,
    flags: Iterable[str],
    actor: User | None,
    expected_version: int | None = None,
    change_reason: str = "",
    clock: Clock = timezone.now,
) -> User:
    """Replace the user's feature flags; each grant/revoke is a version with author and time."""
    current = _locked_for_edit(user, expected_version)
    cleaned = clean_user_data({"feature_flags": list(flags)}, user=current)
    return _apply(current, cleaned, actor=actor, now=clock(), change_reason=change_reason)


@transaction.atomic
def user_set_flag(
    *,
    user: User,
    flag: str,
    enabled: bool,
    actor: User | None,
    expected_version: int | None = None,
    change_reason: str = "",
    clock: Clock = timezone.now,
) -> User:
    """Grant or revoke one flag, leaving the others as they are now."""
    current = _locked_for_edit(user, expected_version)
    flags = current.flag_names() | {flag} if enabled else current.flag_names() - {flag}
    cleaned = clean_user_data({"feature_flags": sorted(flags)}, user=current)
    return _apply(current, cleaned, actor=actor, now=clock(), change_reason=change_reason)


@transaction.atomic
def user_set_roles(
    *,
    user: User,
    roles: Iterable[str],
    actor: User | None,
    expected_version: int | None = None,
    change_reason: str = "",
    clock: Clock = timezone.now,
) -> User:
    """Replace the user's console roles (admin only, checked by the caller)."""
    role_names = sorted(set(roles))
    unknown = set(role_names) - set(Role.values)
    if unknown:
        raise ValidationError(
            {"roles": ValidationError(f"Unknown role {sorted(unknown)[0]!r}.", code="choice")}
        )
    current = _locked_for_edit(user, expected_version)
    return _apply(
        current, {"roles": role_names}, actor=actor, now=clock(), change_reason=change_reason
    )


@transaction.atomic
def user_delete(
    *,
    user: User,
    actor: User | None,
    expected_version: int | None = None,
    clock: Clock = timezone.now,
) -> User:
    """Soft delete: the user is kept, hidden from default lists, restorable by an admin.

    Deleting a deleted user changes nothing and returns it (DELETE is idempotent). With an
    `actor`, the policy's rule is enforced here too (nobody deletes themselves; only an admin
    an admin), whichever front end called.
    """
    current = _locked_for_edit(user, expected_version, allow_deleted=True)
    if actor is not None:
        policy.check_delete(actor, current)
    return _apply(current, {"deleted": True}, actor=actor, now=clock())


@transaction.atomic
def user_restore(
    *,
    user: User,
    actor: User | None,
    expected_version: int | None = None,
    clock: Clock = timezone.now,
) -> User:
    """Undo a soft delete; the restore is a version like any other change (the policy's rule
    enforced with an `actor`, as for `user_delete`)."""
    current = _locked_for_edit(user, expected_version, allow_deleted=True)
    if actor is not None:
        policy.check_restore(actor, current)
    if not current.deleted:
        raise ValidationError(
            {"deleted": ValidationError("This user is not deleted.", code="not_deleted")}
        )
    return _apply(current, {"deleted": False}, actor=actor, now=clock())


@transaction.atomic
def user_set_password(
    *,
    user: User,
    password: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    except_key: str | None = None,
) -> User:
    """Auth internals: not versioned, never in history (contract). Ends the user's sessions;
    a person changing their own password passes their session's key as `except_key`."""
    current = _lock(user)
    current.set_password(password)
    current.save(update_fields=["password"])
    end_sessions(
        user=current, actor=actor, reason="password_set", request=request, except_key=except_key
    )
    return current
