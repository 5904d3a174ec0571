"""Who may do what in the console, the API, the admin and the commands.

One function per question; every front end asks here and none decides on its own. `can_*` /
`may_*` / `sees_*` answer with a bool; `check_*` raise `PermissionDenied` with a message the API
returns as it is (the console shows its 403 page).

A role is a group whose Django permissions (the table in `users/migrations/0002_roles.py`) say
what it may do; this module is the only place that reads them (`has_perm`), so a rule changes in
that table or here, nowhere else. Object-level access (a user's `readable_by` /
`modifiable_by`) adds reading or editing that one record, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from users.contract import ACCESS_LIST_FIELDS, FIELDS, MASKED_COLUMNS, TRACKED_FIELDS, CleanContext
from users.models import (
    RECOMMENDED_MOVES,
    ChangeRequest,
    FeatureFlag,
    Role,
    SavedView,
    Status,
    User,
    is_recommended_move,
)


def can_use_console(user: User, *, holds_console_flag: bool | None = None) -> bool:
    """The contract's login rule: the CONSOLE flag, not deleted, a usable password and a role.

    `holds_console_flag` is for a caller that read the CONSOLE grant with the user
    (`ConsoleBackend.get_user`); otherwise the user's flags are read.
    """
    if holds_console_flag is None:
        holds_console_flag = FeatureFlag.CONSOLE in user.flag_names()
    return (
        user.is_active
        and not user.deleted
        and user.has_usable_password()
        and holds_console_flag
        and bool(user.role_names())
    )


def _has(actor: User, codename: str) -> bool:
    return actor.has_perm(f"users.{codename}")


def _refuse_unless(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


# --- object-level access ---------------------------------------------------------------------
# One rule for the console and the API: a role permission, or being named on the record.


def _listed_in(user: User, relation: str, actor: User) -> bool:
    # Iterates the relation so that a prefetched list costs no query.
    return any(other.pk == actor.pk for other in getattr(user, relation).all())


def can_view(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `readable_by` / `modifiable_by`."""
    return (
        sees_everyone(actor)
        or _listed_in(user, "readable_by", actor)
        or _listed_in(user, "modifiable_by", actor)
    )


def can_edit(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `modifiable_by`."""
    return edits_everyone(actor) or _listed_in(user, "modifiable_by", actor)


def sees_everyone(actor: User) -> bool:
    """Whether `actor` reads every user by role (else only those whose lists name them): the
    list, the board and their bulk actions are for those who do."""
    return _has(actor, "view_user")


def edits_everyone(actor: User) -> bool:
    """Whether `actor` edits every user's record by role (else only where `modifiable_by`
    names them)."""
    return _has(actor, "change_user")


# --- actions -----------------------------------------------------------------------------------


def may_create(actor: User) -> bool:
    return _has(actor, "add_user")


def _is_admin(user: User) -> bool:
    # The admin role (or a superuser): what `User.is_staff` derives.
    return user.is_staff


def _delete_refusal(actor: User, user: User | None, *, permission: str, verb: str) -> str | None:
    """Why `actor` may not delete (or restore) `user`, or None. Nobody deletes or restores
    themselves (an API token neither: it acts as its user); only admins touch an admin."""
    if not _has(actor, permission):
        return f"Your role may not {verb} users."
    if user is None:
        return None
    if user.pk == actor.pk:
        return f"You may not {verb} yourself."
    if _is_admin(user) and not _is_admin(actor):
        return f"Only an admin may {verb} an admin."
    return None


def may_delete(actor: User, user: User | None = None) -> bool:
    """Whether `actor` may delete users at all, or (with `user`) this one."""
    return _delete_refusal(actor, user, permission="delete_user", verb="delete") is None


def may_restore(actor: User, user: User | None = None) -> bool:
    """Whether `actor` may restore users at all, or (with `user`) this one."""
    return _delete_refusal(actor, user, permission="restore_user", verb="restore") is None


def may_export(actor: User) -> bool:
    return _has(actor, "export_users")


def may_view_history(actor: User) -> bool:
    """Status and version history, and the diff between two versions."""
    return _has(actor, "view_history")


def may_export_client_file(actor: User) -> bool:
    """A user's whole file as of a date (record, timeline, versions, manifest): compliance and
    admins, who answer regulators."""
    return _has(actor, "export_client_file")


def may_view_access_log(actor: User) -> bool:
    """Who opened, exported and read which users (issue 13.4): compliance and admins
    (permission view_access_log, migration 0014)."""
    return actor.is_active and _has(actor, "view_access_log")


def may_reveal(actor: User, user: User | None = None) -> bool:
    """Reveal a masked value (IBAN, identity and tax numbers, date of birth; `contract.MASKED`)
    with a purpose, each reveal logged: compliance and admins (permission
    reveal_personal_data, migration 0016), of a user they may see. Back office works with the
    masks: it finds users by a full IBAN and replaces masked values on the edit form without
    seeing the old ones, and its export carries the masks."""
    if not (actor.is_active and _has(actor, "reveal_personal_data")):
        return False
    return user is None or can_view(actor, user)


def may_view_dashboard(actor: User) -> bool:
    """The onboarding dashboard (issue 14.6): compliance and admins, who run the onboarding
    (permission view_dashboard, migration 0022)."""
    return actor.is_active and _has(actor, "view_dashboard")


def masked_columns(actor: User, columns: Iterable[str]) -> tuple[str, ...]:
    """The `columns` (model columns, e.g. the export's) that show masks to `actor`: every
    masked one, unless they may reveal."""
    if may_reveal(actor):
        return ()
    return tuple(column for column in columns if column in MASKED_COLUMNS)


def may_manage_flags(actor: User) -> bool:
    return _has(actor, "manage_feature_flags")


def may_manage_roles(actor: User) -> bool:
    return _has(actor, "manage_roles")


def may_manage_sessions(actor: User, user: User) -> bool:
    """See and sign out `user`'s sessions: one's own, or anyone's for an admin (who may take
    roles away, which ends sessions anyway)."""
    return actor.pk == user.pk or _has(actor, "manage_roles")


def may_manage_tokens(actor: User) -> bool:
    """Issue and revoke API tokens (the console's tokens page)."""
    return _has(actor, "manage_api_tokens")


def may_use_admin(actor: User) -> bool:
    """The Django admin, the raw fallback: admins (`User.is_staff` derives from the role)."""
    return actor.is_active and actor.is_staff


def may_add_note(actor: User, user: User | None = None) -> bool:
    """Write a case note on `user` (issue 14.2): who moves statuses (compliance, admins), on a
    user they may see."""
    if not may_change_status(actor):
        return False
    return user is None or can_view(actor, user)


def check_add_note(actor: User, user: User) -> None:
    """`may_add_note` raising `PermissionDenied` with the reason."""
    _refuse_unless(
        may_add_note(actor, user), "Your role may not write case notes (compliance and admins do)."
    )


def may_manage_reason_codes(actor: User) -> bool:
    """Add, rename, reorder and retire the reason codes moves take (issue 14.3): admins."""
    return actor.is_active and _is_admin(actor)


def may_view_security_log(actor: User) -> bool:
    """The security log page and its CSV: admins."""
    return actor.is_active and _is_admin(actor)


def may_unlock(actor: User) -> bool:
    """Lift a sign-in lockout (an account's or an address's): admins."""
    return actor.is_active and _is_admin(actor)


def may_reset_factors(actor: User, user: User) -> bool:
    """Remove another person's second factors (a lost phone): admins; one's own are changed on
    one's own factors page."""
    return actor.is_active and _is_admin(actor) and user.pk != actor.pk


def may_change_access_lists(actor: User) -> bool:
    """Who else may read or edit a record is for role editors only: a `modifiable_by` entry
    lets one edit the record, never add others to it."""
    return edits_everyone(actor)


def may_change_status(actor: User) -> bool:
    """Whether `actor` may move users at all (which moves: `may_move`)."""
    return _has(actor, "change_status")


def _may_move_off_flow(actor: User) -> bool:
    return may_change_status(actor) and _has(actor, "change_status_off_flow")


def check_delete(actor: User, user: User | None = None) -> None:
    """`may_delete` raising `PermissionDenied` with the reason."""
    refusal = _delete_refusal(actor, user, permission="delete_user", verb="delete")
    if refusal is not None:
        raise PermissionDenied(refusal)


def check_restore(actor: User, user: User | None = None) -> None:
    """`may_restore` raising `PermissionDenied` with the reason."""
    refusal = _delete_refusal(actor, user, permission="restore_user", verb="restore")
    if refusal is not None:
        raise PermissionDenied(refusal)


# --- status moves ------------------------------------------------------------------------------


def check_move(actor: User, from_status: str | None, to_status: str) -> None:
    """Refuse a move `actor` may not make; `from_status` None is a creation.

    A new user starting in an initial status needs no status permission (it is part of
    creating it); any other move needs `change_status`, and one off the recommended flow also
    `change_status_off_flow`. A "move" to the current status is none: past `change_status` it is
    left to the service, which refuses it (code "unchanged") for every front end alike.
    """
    if from_status is None and is_recommended_move(None, to_status):
        return
    _refuse_unless(may_change_status(actor), "Your role may not change a user's status.")
    if to_status != from_status and not is_recommended_move(from_status, to_status):
        _refuse_unless(
            _may_move_off_flow(actor),
            "Your role may not move a user off the recommended status flow.",
        )


def may_move(actor: User, from_status: str | None, to_status: str) -> bool:
    """`check_move` as a question."""
    try:
        check_move(actor, from_status, to_status)
    except PermissionDenied:
        return False
    return True


@dataclass(frozen=True)
class MoveOptions:
    """The moves offered from one status: on the flow first, then off it (which need a reason).

    The current status is in neither. `allowed`: whether the actor may move at all;
    `off_flow_allowed`: whether it may also make the off-flow moves.
    """

    recommended: tuple[Status, ...]
    off_flow: tuple[Status, ...]
    allowed: bool
    off_flow_allowed: bool


def move_options(actor: User, status: str) -> MoveOptions:
    """What the detail page and a board card offer from `status`."""
    recommended = tuple(Status(s) for s in RECOMMENDED_MOVES.get(status, ()))
    return MoveOptions(
        recommended=recommended,
        off_flow=tuple(s for s in Status if s != status and s not in recommended),
        allowed=may_change_status(actor),
        off_flow_allowed=_may_move_off_flow(actor),
    )


def move_targets(actor: User) -> tuple[Status, ...]:
    """The statuses a bulk move offers: each one `actor` may move some user to. The users'
    own statuses differ, so each move is still checked on its own (`check_move`)."""
    return tuple(
        to_status
        for to_status in Status
        if any(may_move(actor, s, to_status) for s in Status if s != to_status)
    )


# --- fields ------------------------------------------------------------------------------------

# The record's own fields: whoever may edit the user may edit these. The others have their own
# permission each.
_OWN_PERMISSION = {"status", "feature_flags", *ACCESS_LIST_FIELDS, "roles", "deleted"}
RECORD_FIELDS = frozenset(name for name in TRACKED_FIELDS if name not in _OWN_PERMISSION)


def editable_fields(actor: User, user: User) -> frozenset[str]:
    """The contract fields `actor` may change on `user` by an edit (form, PATCH, admin).

    Roles and `deleted` are not among them: they are changed by their own actions
    (`may_manage_roles`, `may_delete`, `may_restore`).
    """
    fields: set[str] = set()
    if can_edit(actor, user):
        fields |= RECORD_FIELDS
    if may_change_access_lists(actor):
        fields |= set(ACCESS_LIST_FIELDS)
    if may_change_status(actor):
        fields.add("status")
    if may_manage_flags(actor):
        fields.add("feature_flags")
    return frozenset(fields)


# --- writes: which parts of a change need which permission -------------------------------------

# Parts of a change checked by what they change (a value equal to the stored one needs nothing);
# `status_reason` and `status_reason_code` ride along with `status`.
_COMPARED = {
    "status",
    "status_reason",
    "status_reason_code",
    "feature_flags",
    *ACCESS_LIST_FIELDS,
    "roles",
}


def _ids(values: Iterable[Any] | None) -> list[Any]:
    return sorted(set(values or []))


def check_create(actor: User, data: Mapping[str, Any]) -> None:
    """Each part of a new user needs its permission: flags, a status off the start, the access
    lists and roles besides `add_user` itself."""
    _refuse_unless(may_create(actor), "Your role may not create users.")
    if data.get("feature_flags"):
        _refuse_unless(may_manage_flags(actor), "Your role may not grant feature flags.")
    if data.get("status"):
        check_move(actor, None, data["status"])
    for relation in ACCESS_LIST_FIELDS:
        if data.get(relation):
            _refuse_unless(
                may_change_access_lists(actor), f"Your role may not change who is in {relation}."
            )
    if data.get("roles"):
        _refuse_unless(may_manage_roles(actor), "Your role may not grant console roles.")


def _is_stored_value(user: User, data: Mapping[str, Any], name: str) -> bool:
    """Whether `data[name]` is what `user` stores, once normalised as the services would save
    it: a phone in another notation, a null for an empty text or an IBAN with spaces is no
    change. A value that does not validate is a change (the services say what is wrong)."""
    field = FIELDS.get(name)
    if field is None or not field.input:
        return False
    context = CleanContext(data=data, user=user, cleaned={})
    try:
        return field.cleaned(data[name], context) == field.value_of(user)
    except ValidationError:
        return False


def check_update(actor: User, user: User, data: Mapping[str, Any]) -> None:
    """Each part of a change needs its own permission; values equal to the stored ones need
    none, so that a client may send back what it read. The record's own fields are compared
    normalised (`_is_stored_value`), the others by what they change."""
    editable = editable_fields(actor, user)
    if any(
        name not in editable and not _is_stored_value(user, data, name)
        for name in data
        if name not in _COMPARED
    ):
        raise PermissionDenied("Your role may not change this user.")
    if "status" in data and data["status"] != user.status:
        check_move(actor, user.status, data["status"])
    if "feature_flags" in data and set(data["feature_flags"] or []) != user.flag_names():
        _refuse_unless("feature_flags" in editable, "Your role may not change feature flags.")
    for relation in ACCESS_LIST_FIELDS:
        if relation in data and _ids(data[relation]) != _ids(
            other.pk for other in getattr(user, relation).all()
        ):
            _refuse_unless(relation in editable, f"Your role may not change who is in {relation}.")
    if "roles" in data and set(data["roles"] or []) != user.role_names():
        _refuse_unless(may_manage_roles(actor), "Your role may not change console roles.")


# --- four-eyes approval ------------------------------------------------------------------------
# Which changes wait for a second person is a deployment's choice (`FOUR_EYES_GUARDED`); the
# services ask `split_guarded` on every write, whichever front end sent it.

GUARDABLE_KINDS = tuple(ChangeRequest.Kind.values)


def guarded_kinds() -> frozenset[str]:
    """The kinds of change that need a second person here (`FOUR_EYES_GUARDED`)."""
    kinds = frozenset(getattr(settings, "FOUR_EYES_GUARDED", GUARDABLE_KINDS))
    unknown = kinds - set(GUARDABLE_KINDS)
    if unknown:
        raise ValueError(f"FOUR_EYES_GUARDED: unknown kind {sorted(unknown)[0]!r}")
    return kinds


def split_guarded(
    changes: Mapping[str, list[Any]],
) -> tuple[dict[str, list[Any]], dict[str, dict[str, list[Any]]]]:
    """A change's diff (field → [old, new]) split into what applies at once and, per kind,
    what waits for approval: the counter account (any of its parts), any role grant or
    revocation, and granting the CONSOLE flag (revoking it, or other flags, apply at once)."""
    kinds = guarded_kinds()
    now = {name: list(pair) for name, pair in changes.items()}
    waiting: dict[str, dict[str, list[Any]]] = {}
    for kind, name in (
        (ChangeRequest.Kind.COUNTER_ACCOUNT, "counter_account"),
        (ChangeRequest.Kind.ROLES, "roles"),
    ):
        if kind in kinds and name in now:
            waiting[kind] = {name: now.pop(name)}
    if ChangeRequest.Kind.CONSOLE_FLAG in kinds and "feature_flags" in now:
        old, new = now["feature_flags"]
        old_set, new_set = set(old or []), set(new or [])
        if FeatureFlag.CONSOLE in new_set - old_set:
            rest = sorted(new_set - {FeatureFlag.CONSOLE})
            if set(rest) == old_set:
                del now["feature_flags"]
            else:
                now["feature_flags"] = [old, rest]
            waiting[ChangeRequest.Kind.CONSOLE_FLAG] = {
                "feature_flags": [rest, sorted({*rest, FeatureFlag.CONSOLE})]
            }
    return now, waiting


def may_see_approvals(actor: User) -> bool:
    """The Approvals page and its count: those who may decide requests."""
    return _has(actor, "approve_change")


# What a checker needs besides `approve_change`: the right to make that kind of change.
_KIND_PERMISSION = {
    ChangeRequest.Kind.ROLES: "manage_roles",
    ChangeRequest.Kind.CONSOLE_FLAG: "manage_feature_flags",
}


def decision_refusal(
    actor: User, request: ChangeRequest, *, last_changer_id: str | None = None
) -> str | None:
    """Why `actor` may not approve or reject `request`, or None. A checker has
    `approve_change` (admins and compliance), may make that kind of change (roles and CONSOLE:
    admins), is not the proposer, and for a counter account not the last person who changed
    it; nobody decides on their own record."""
    if not _has(actor, "approve_change"):
        return "Your role may not approve changes."
    permission = _KIND_PERMISSION.get(request.kind)
    if permission and not _has(actor, permission):
        return f"Your role may not approve a change of {ChangeRequest.Kind(request.kind).label}."
    if request.proposed_by_id is not None and request.proposed_by_id == actor.pk:
        return "You proposed this change: another person must approve it."
    if request.user_id == actor.pk:
        return "You may not approve a change of your own record."
    if (
        request.kind == ChangeRequest.Kind.COUNTER_ACCOUNT
        and last_changer_id is not None
        and last_changer_id == actor.pk
    ):
        return "You changed this counter account last: another person must approve it."
    return None


def may_decide(actor: User, request: ChangeRequest, *, last_changer_id: str | None = None) -> bool:
    """`decision_refusal` as a question (the Approve and Reject buttons)."""
    return decision_refusal(actor, request, last_changer_id=last_changer_id) is None


def check_decide(actor: User, request: ChangeRequest, *, last_changer_id: str | None = None):
    """`decision_refusal` raising `PermissionDenied` with the reason."""
    refusal = decision_refusal(actor, request, last_changer_id=last_changer_id)
    if refusal is not None:
        raise PermissionDenied(refusal)


def may_withdraw(actor: User, request: ChangeRequest) -> bool:
    """The proposer takes their own pending request back."""
    return request.proposed_by_id is not None and request.proposed_by_id == actor.pk


# --- assignment of onboarding cases (issue 14.1) ------------------------------------------------
# Those who move statuses (compliance, admins) work the cases: they take one ("Assign to me")
# and give back their own. Giving a case to someone else, taking over a colleague's case or
# unassigning it is an admin's call (the person who shares out the work), so nobody silently
# takes a case from a colleague.


def may_be_assignee(user: User) -> bool:
    """Whether `user` may hold cases: a person who may move statuses (compliance or admin) and
    may use the console (flag, password, not deleted)."""
    return can_use_console(user) and may_change_status(user)


def may_claim(actor: User) -> bool:
    """ "Assign to me", and giving back one's own case."""
    return actor.is_active and may_change_status(actor)


def may_assign_others(actor: User) -> bool:
    """Assign a case to someone else, take over a colleague's, unassign anyone's: admins."""
    return may_claim(actor) and _is_admin(actor)


def assignment_refusal(
    actor: User, user: User, *, current: User | None, assignee: User | None
) -> str | None:
    """Why `actor` may not change the case of `user` from `current` to `assignee` (None:
    unassigned), or None. Checked again by the service for every front end."""
    if not may_claim(actor):
        return "Your role may not assign cases."
    own = assignee is not None and assignee.pk == actor.pk
    giving_back = assignee is None and current is not None and current.pk == actor.pk
    taking_over = current is not None and current.pk != actor.pk
    if ((not own and not giving_back) or taking_over) and not may_assign_others(actor):
        if taking_over:
            return f"Already assigned to {current.display_name}: only an admin may take it over."
        return "Only an admin may assign a case to someone else."
    if assignee is not None:
        if assignee.pk == user.pk:
            return "Nobody is assigned their own record."
        if not may_be_assignee(assignee):
            return (
                f"{assignee.display_name} may not hold cases: compliance officers and admins "
                "with console access do."
            )
    return None


def check_assignment(
    actor: User, user: User, *, current: User | None, assignee: User | None
) -> None:
    """`assignment_refusal` raising `PermissionDenied` with the reason."""
    refusal = assignment_refusal(actor, user, current=current, assignee=assignee)
    if refusal is not None:
        raise PermissionDenied(refusal)


# --- saved views (issue 14.7) ------------------------------------------------------------------


def may_save_views(actor: User) -> bool:
    """Saved views are views of the list and the board: whoever may open those saves them."""
    return sees_everyone(actor)


def share_roles(actor: User) -> list[str]:
    """The roles `actor` may share a saved view with: the roles they hold, in the table's
    order."""
    held = actor.role_names()
    return [role for role in Role.values if role in held]


def check_share(actor: User, role: str | None) -> None:
    """A view is shared only with a role its owner holds (or with nobody)."""
    if role is None or role == "":
        return
    _refuse_unless(
        role in share_roles(actor),
        f"You may share a view only with a role you hold; you do not hold “{role}”.",
    )


def may_manage_view(actor: User, view: SavedView) -> bool:
    """Renaming, re-sharing and deleting a saved view are its owner's; others read it."""
    return view.owner_id == actor.pk


def check_manage_view(actor: User, view: SavedView) -> None:
    _refuse_unless(
        may_manage_view(actor, view), "Only its owner may rename or delete a saved view."
    )
