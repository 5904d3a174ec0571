"""Who may do what in the console, the API, the admin and the commands.

One function per question; every front end asks here and none decides on its own.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from users.models import FeatureFlag, User, is_recommended_move


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


# --- object-level access ---------------------------------------------------------------------
# One rule for the console and the API: a role permission, or being named on the record.


def _listed_in(user: User, relation: str, actor: User) -> bool:
    # Iterates the relation so that a prefetched list costs no query.
    return any(other.pk == actor.pk for other in getattr(user, relation).all())


def can_view(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `readable_by` / `modifiable_by`."""
    return (
        actor.has_perm("users.view_user")
        or _listed_in(user, "readable_by", actor)
        or _listed_in(user, "modifiable_by", actor)
    )


def can_edit(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `modifiable_by`."""
    return actor.has_perm("users.change_user") or _listed_in(user, "modifiable_by", actor)


def sees_everyone(actor: User) -> bool:
    """Whether `actor` reads every user by role (else only those whose lists name them)."""
    return actor.has_perm("users.view_user")


# --- writes: which parts of a change need which permission -------------------------------------


def require(actor: User, codename: str, message: str) -> None:
    if not actor.has_perm(f"users.{codename}"):
        raise PermissionDenied(message)


def _check_status_permission(actor: User, from_status: str | None, to_status: str) -> None:
    require(actor, "change_status", "Your role may not change a user's status.")
    if not is_recommended_move(from_status, to_status):
        require(
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
            require(actor, "change_user", f"Your role may not change who is in {relation}.")


def check_create_permissions(actor: User, data: dict[str, Any]) -> None:
    require(actor, "add_user", "Your role may not create users.")
    if data.get("feature_flags"):
        require(actor, "manage_feature_flags", "Your role may not grant feature flags.")
    status = data.get("status")
    if status and not is_recommended_move(None, status):
        _check_status_permission(actor, None, status)
    _check_access_lists(actor, data, None)


# Fields a role with change_user (or a modifiable_by entry) may edit.
_STATUS_FIELDS = {"status", "status_reason"}
_GATED_FIELDS = _STATUS_FIELDS | {"feature_flags", "readable_by", "modifiable_by"}


def check_update_permissions(actor: User, user: User, data: dict[str, Any]) -> None:
    """Each part of a PATCH needs its own permission; values equal to the stored ones need none
    (a client may send back what it read)."""
    if set(data) - _GATED_FIELDS and not (can_edit(actor, user)):
        raise PermissionDenied("Your role may not change this user.")
    if "status" in data and data["status"] != user.status:
        _check_status_permission(actor, user.status, data["status"])
    if "feature_flags" in data and set(data["feature_flags"] or []) != user.flag_names():
        require(actor, "manage_feature_flags", "Your role may not change feature flags.")
    _check_access_lists(actor, data, user)
