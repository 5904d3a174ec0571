"""`users.policy`, table-driven: role x action, role x contract field, role x status move.

The roles are the console's three, plus the object-level cases: a person with no role named in
a user's `readable_by` (reader) or `modifiable_by` (editor), a person with no role and on no list,
and a custom role that may move statuses but not off the flow (none of the three is like that, so
without it the off-flow gate would be tested by nobody). The expected cells are written out
here, not computed from the policy: a table that reads its answers from the code cannot fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

from tests.factories import make_console_user, make_user
from users import policy
from users.contract import TRACKED_FIELDS
from users.models import FeatureFlag, Role, Status, User

pytestmark = pytest.mark.django_db

BACK_OFFICE, COMPLIANCE, ADMIN = Role.BACK_OFFICE, Role.COMPLIANCE, Role.ADMIN
READER, EDITOR, NO_ROLE, MOVER = "reader", "editor", "no_role", "mover"
ROLES = (BACK_OFFICE, COMPLIANCE, ADMIN, READER, EDITOR, NO_ROLE, MOVER)
EVERYONE = frozenset(ROLES)
WFV, WFS = Status.WAITING_FOR_VERIFICATION, Status.WAITING_FOR_SIGNATURE
FAILED, ACTIVE, INACTIVE = Status.VERIFICATION_FAILED, Status.ACTIVE, Status.INACTIVE


def _without_role() -> User:
    person = make_console_user(BACK_OFFICE)
    person.groups.clear()
    return person


def _mover() -> User:
    person = _without_role()
    group = Group.objects.create(name="status_mover")
    group.permissions.set(Permission.objects.filter(codename__in=["view_user", "change_status"]))
    person.groups.add(group)
    return person


def cast(role: str) -> tuple[User, User]:
    """(actor, subject): the subject's lists name the actor when the role is object-level."""
    if role in (BACK_OFFICE, COMPLIANCE, ADMIN):
        actor = make_console_user(role)
    elif role == MOVER:
        actor = _mover()
    else:
        actor = _without_role()
    subject = make_user(
        actor=None,
        readable_by=[actor.pk] if role == READER else [],
        modifiable_by=[actor.pk] if role == EDITOR else [],
    )
    # Fresh rows: no permission cache from building them.
    return User.objects.get(pk=actor.pk), User.objects.get(pk=subject.pk)


# --- role x action -----------------------------------------------------------------------------

Question = Callable[[User, User], bool]

ACTIONS: dict[str, tuple[Question, frozenset[str]]] = {
    # action: (the question, the roles it answers yes for)
    "view": (policy.can_view, frozenset({BACK_OFFICE, COMPLIANCE, ADMIN, READER, EDITOR, MOVER})),
    "see everyone": (
        lambda a, s: policy.sees_everyone(a),
        frozenset({BACK_OFFICE, COMPLIANCE, ADMIN, MOVER}),
    ),
    "edit": (policy.can_edit, frozenset({BACK_OFFICE, ADMIN, EDITOR})),
    "edit everyone": (lambda a, s: policy.edits_everyone(a), frozenset({BACK_OFFICE, ADMIN})),
    "create": (lambda a, s: policy.may_create(a), frozenset({BACK_OFFICE, ADMIN})),
    "delete": (lambda a, s: policy.may_delete(a), frozenset({BACK_OFFICE, ADMIN})),
    "restore": (lambda a, s: policy.may_restore(a), frozenset({ADMIN})),
    "export": (lambda a, s: policy.may_export(a), frozenset({BACK_OFFICE, COMPLIANCE, ADMIN})),
    "history": (
        lambda a, s: policy.may_view_history(a),
        frozenset({BACK_OFFICE, COMPLIANCE, ADMIN}),
    ),
    "flags": (lambda a, s: policy.may_manage_flags(a), frozenset({ADMIN})),
    "roles": (lambda a, s: policy.may_manage_roles(a), frozenset({ADMIN})),
    # Role editors only: a modifiable_by entry never lets one change who else gets in.
    "access lists": (
        lambda a, s: policy.may_change_access_lists(a),
        frozenset({BACK_OFFICE, ADMIN}),
    ),
    "tokens": (lambda a, s: policy.may_manage_tokens(a), frozenset({ADMIN})),
    "change status": (
        lambda a, s: policy.may_change_status(a),
        frozenset({COMPLIANCE, ADMIN, MOVER}),
    ),
    "move recommended": (
        lambda a, s: policy.may_move(a, WFV, WFS),
        frozenset({COMPLIANCE, ADMIN, MOVER}),
    ),
    "move off-flow": (lambda a, s: policy.may_move(a, WFV, ACTIVE), frozenset({COMPLIANCE, ADMIN})),
    # Where a new user starts: an initial status is part of creating it, anything else is a
    # status move off the flow.
    "initial status recommended": (lambda a, s: policy.may_move(a, None, WFS), EVERYONE),
    "initial status off-flow": (
        lambda a, s: policy.may_move(a, None, ACTIVE),
        frozenset({COMPLIANCE, ADMIN}),
    ),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_role_action(role, action):
    actor, subject = cast(role)
    question, allowed = ACTIONS[action]
    assert question(actor, subject) is (role in allowed), f"{action} as {role}"


# The refusals that raise: (action, the check, its message when refused, who passes).
NOT_STATUS = "Your role may not change a user's status."
NOT_OFF_FLOW = "Your role may not move a user off the recommended status flow."
Check = Callable[[User, User], Any]
CHECKS: dict[str, tuple[Check, str, frozenset[str]]] = {
    "create": (
        lambda a, s: policy.check_create(a, {"first_name": "New"}),
        "Your role may not create users.",
        frozenset({BACK_OFFICE, ADMIN}),
    ),
    "delete": (
        lambda a, s: policy.check_delete(a),
        "Your role may not delete users.",
        frozenset({BACK_OFFICE, ADMIN}),
    ),
    "edit": (
        lambda a, s: policy.check_update(a, s, {"first_name": "Changed"}),
        "Your role may not change this user.",
        frozenset({BACK_OFFICE, ADMIN, EDITOR}),
    ),
    "flags": (
        lambda a, s: policy.check_update(a, s, {"feature_flags": [FeatureFlag.ROBO_ADVISOR]}),
        "Your role may not change feature flags.",
        frozenset({ADMIN}),
    ),
    "roles": (
        lambda a, s: policy.check_update(a, s, {"roles": [COMPLIANCE]}),
        "Your role may not change console roles.",
        frozenset({ADMIN}),
    ),
    "access lists": (
        # A list unlike the stored one, whoever is on it.
        lambda a, s: policy.check_update(a, s, {"readable_by": [a.pk, s.pk]}),
        "Your role may not change who is in readable_by.",
        frozenset({BACK_OFFICE, ADMIN}),
    ),
    "move recommended": (
        lambda a, s: policy.check_move(a, WFV, WFS),
        NOT_STATUS,
        frozenset({COMPLIANCE, ADMIN, MOVER}),
    ),
    "status by update": (
        lambda a, s: policy.check_update(a, s, {"status": WFS}),
        NOT_STATUS,
        frozenset({COMPLIANCE, ADMIN, MOVER}),
    ),
    "initial status recommended": (
        lambda a, s: policy.check_move(a, None, WFS),
        "",
        EVERYONE,
    ),
}
# Refused for lack of change_status, or (the mover) for lack of the off-flow permission.
OFF_FLOW_CHECKS: dict[str, Check] = {
    "move off-flow": lambda a, s: policy.check_move(a, WFV, ACTIVE),
    "initial status off-flow": lambda a, s: policy.check_move(a, None, ACTIVE),
}


@pytest.mark.parametrize("action", sorted(CHECKS))
@pytest.mark.parametrize("role", ROLES)
def test_role_check(role, action):
    actor, subject = cast(role)
    check, message, allowed = CHECKS[action]
    if role in allowed:
        assert check(actor, subject) is None
    else:
        with pytest.raises(PermissionDenied) as refused:
            check(actor, subject)
        assert str(refused.value) == message


@pytest.mark.parametrize("action", sorted(OFF_FLOW_CHECKS))
@pytest.mark.parametrize("role", ROLES)
def test_role_off_flow_check(role, action):
    actor, subject = cast(role)
    check = OFF_FLOW_CHECKS[action]
    if role in (COMPLIANCE, ADMIN):
        assert check(actor, subject) is None
        return
    with pytest.raises(PermissionDenied) as refused:
        check(actor, subject)
    assert str(refused.value) == (NOT_OFF_FLOW if role == MOVER else NOT_STATUS)


# --- role x contract field ---------------------------------------------------------------------

# The contract's fields by what an edit of them needs.
RECORD = (
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "brokerage_user_id",
    "idp_user_id",
    "language",
    "counter_account",
    "date_of_birth",
    "residency_country",
    "nationalities",
    "address",
    "tax_residency",
    "identity",
    "metadata",
    "employment_status",
    "income_range",
    "sources_of_wealth",
    "industry",
)
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "record": RECORD,
    "status": ("status",),
    "feature flags": ("feature_flags",),
    "access lists": ("readable_by", "modifiable_by"),
}
EDITABLE: dict[str, frozenset[str]] = {
    BACK_OFFICE: frozenset({"record", "access lists"}),
    COMPLIANCE: frozenset({"status"}),
    ADMIN: frozenset(FIELD_GROUPS),
    READER: frozenset(),
    EDITOR: frozenset({"record"}),  # the record, never who else may read or edit it
    NO_ROLE: frozenset(),
    MOVER: frozenset({"status"}),
}


def test_the_field_groups_cover_the_contract():
    """Every field an edit may carry is in a group above (roles and deleted have their own
    actions), so a new contract field cannot be missing from the table."""
    listed = [name for names in FIELD_GROUPS.values() for name in names]
    assert sorted(listed) == sorted(set(TRACKED_FIELDS) - {"roles", "deleted"})


@pytest.mark.parametrize("group", sorted(FIELD_GROUPS))
@pytest.mark.parametrize("role", ROLES)
def test_role_field(role, group):
    actor, subject = cast(role)
    editable = policy.editable_fields(actor, subject)
    assert isinstance(editable, frozenset)
    expected = group in EDITABLE[role]
    for name in FIELD_GROUPS[group]:
        assert (name in editable) is expected, f"{name} for {role}"


def test_editable_fields_name_contract_fields_only(admin_user):
    subject = make_user(actor=admin_user)
    assert policy.editable_fields(admin_user, subject) == set(TRACKED_FIELDS) - {"roles", "deleted"}


# --- status moves: what is offered -------------------------------------------------------------

RECOMMENDED = {
    WFV: (WFS, FAILED),
    FAILED: (WFS, INACTIVE),
    WFS: (ACTIVE,),
    ACTIVE: (INACTIVE,),
    INACTIVE: (ACTIVE,),
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("role", [BACK_OFFICE, COMPLIANCE, ADMIN, MOVER])
def test_move_options(role, status):
    actor, _ = cast(role)
    options = policy.move_options(actor, status)
    assert options.recommended == RECOMMENDED[status]
    assert status not in options.recommended
    assert status not in options.off_flow  # a move to the current status is never offered
    assert set(options.recommended) | set(options.off_flow) == set(Status) - {status}
    assert not set(options.recommended) & set(options.off_flow)
    assert options.allowed is (role in (COMPLIANCE, ADMIN, MOVER))
    assert options.off_flow_allowed is (role in (COMPLIANCE, ADMIN))
    # What is offered is what is allowed.
    for target in options.recommended:
        assert policy.may_move(actor, status, target) is options.allowed
    for target in options.off_flow:
        assert policy.may_move(actor, status, target) is (
            options.allowed and options.off_flow_allowed
        )


@pytest.mark.parametrize(
    ("role", "targets"),
    [
        (BACK_OFFICE, ()),
        (COMPLIANCE, tuple(Status)),
        (ADMIN, tuple(Status)),
        # Nothing on the flow leads to WAITING_FOR_VERIFICATION: only off-flow moves do.
        (MOVER, (WFS, FAILED, ACTIVE, INACTIVE)),
    ],
)
def test_bulk_move_targets(role, targets):
    actor, _ = cast(role)
    assert policy.move_targets(actor) == targets


def test_a_move_to_the_current_status_is_left_to_the_service():
    """No permission beyond change_status: nothing would move, and the service refuses it
    (code "unchanged") the same way for the detail page, the board and the bulk action."""
    mover, _ = cast(MOVER)
    for status in Status:
        policy.check_move(mover, status, status)
        assert policy.may_move(mover, status, status)
    back_office, _ = cast(BACK_OFFICE)
    with pytest.raises(PermissionDenied, match="may not change a user's status"):
        policy.check_move(back_office, ACTIVE, ACTIVE)


# --- writes: values equal to the stored ones need no permission --------------------------------


def test_sending_back_the_stored_values_needs_no_extra_permission(admin_user):
    compliance = make_console_user(COMPLIANCE)
    reader = make_console_user(BACK_OFFICE)
    subject = make_user(
        actor=admin_user, feature_flags=[FeatureFlag.ROBO_ADVISOR], readable_by=[reader.pk]
    )
    compliance = User.objects.get(pk=compliance.pk)
    subject = User.objects.get(pk=subject.pk)
    stored = {
        "status": subject.status,
        "feature_flags": [FeatureFlag.ROBO_ADVISOR],
        "readable_by": [reader.pk],
        "modifiable_by": [],
        "roles": [],
    }
    policy.check_update(compliance, subject, stored)
    # The record's own fields are compared normalised, as the services would store them
    # (issue 11.5): a null for an empty text, the phone in another notation.
    policy.check_update(
        compliance,
        subject,
        {**stored, "first_name": f" {subject.first_name} ", "identity": None},
    )
    with pytest.raises(PermissionDenied, match="may not change this user"):
        policy.check_update(compliance, subject, {**stored, "first_name": "Someone else"})
    with pytest.raises(PermissionDenied, match="may not change this user"):
        policy.check_update(compliance, subject, {"phone": "not a phone"})


def test_an_object_level_editor_may_not_change_the_lists_even_by_update(admin_user):
    actor, subject = cast(EDITOR)
    policy.check_update(actor, subject, {"first_name": "X", "modifiable_by": [actor.pk]})
    with pytest.raises(PermissionDenied) as refused:
        policy.check_update(actor, subject, {"modifiable_by": []})
    assert str(refused.value) == "Your role may not change who is in modifiable_by."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"feature_flags": [FeatureFlag.ROBO_ADVISOR]}, "Your role may not grant feature flags."),
        ({"status": ACTIVE, "status_reason": "known"}, NOT_STATUS),
        ({"roles": [COMPLIANCE]}, "Your role may not grant console roles."),
    ],
)
def test_create_checks_each_part(back_office_user, data, message):
    policy.check_create(back_office_user, {"first_name": "New", "status": WFS})
    policy.check_create(back_office_user, {"feature_flags": [], "roles": []})
    with pytest.raises(PermissionDenied) as refused:
        policy.check_create(back_office_user, data)
    assert str(refused.value) == message


def test_create_with_access_lists_needs_a_role_editor(admin_user):
    creator = _without_role()
    group = Group.objects.create(name="creator")
    group.permissions.set(Permission.objects.filter(codename__in=["view_user", "add_user"]))
    creator.groups.add(group)
    creator = User.objects.get(pk=creator.pk)
    policy.check_create(creator, {"first_name": "New", "readable_by": []})
    with pytest.raises(PermissionDenied) as refused:
        policy.check_create(creator, {"modifiable_by": [admin_user.pk]})
    assert str(refused.value) == "Your role may not change who is in modifiable_by."


def test_a_superuser_may_do_everything(admin_user):
    superuser = User.objects.create_superuser(email="root@bank.example", password="x" * 12)
    superuser = User.objects.get(pk=superuser.pk)
    subject = make_user(actor=admin_user)
    for action, (question, _) in ACTIONS.items():
        assert question(superuser, subject), action
