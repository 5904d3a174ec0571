"""Assigning onboarding cases (issue 14.1): the services, the policy and the history rows."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from tests.factories import make_console_user, make_user
from users import policy
from users.models import CaseAssignment, FeatureFlag, Role, User
from users.services import assignment, user_delete, user_set_flag


def fresh(user: User) -> User:
    return User.objects.select_related("assignee").get(pk=user.pk)


def code_of(exc: ValidationError) -> str:
    return exc.value.error_dict["assignee"][0].code  # type: ignore[attr-defined]


@pytest.fixture
def chloe(db):
    return make_console_user(Role.COMPLIANCE, first_name="Chloé", last_name="Compliance")


@pytest.fixture
def ann(db):
    return make_console_user(Role.COMPLIANCE, first_name="Ann", last_name="Example")


def test_claim_assigns_and_writes_a_history_row(chloe, user):
    version = user.version
    claimed = assignment.case_claim(user=user, actor=chloe)
    stored = fresh(user)
    assert claimed.assignee == chloe
    assert stored.assignee == chloe
    assert stored.assigned_at is not None
    # The workload is no field of the record: no new version.
    assert stored.version == version
    row = CaseAssignment.objects.get(user=user)
    assert (row.assignee, row.previous_assignee, row.assigned_by) == (chloe, None, chloe)
    assert row.at == stored.assigned_at


def test_a_claimed_case_is_refused_naming_who_has_it(chloe, ann, user):
    assignment.case_claim(user=user, actor=ann)
    with pytest.raises(ValidationError) as exc:
        assignment.case_claim(user=user, actor=chloe)
    assert exc.value.messages == ["Already assigned to Ann Example."]
    assert code_of(exc) == "already_assigned"
    assert fresh(user).assignee == ann
    assert CaseAssignment.objects.filter(user=user).count() == 1


def test_claiming_ones_own_case_again_changes_nothing(chloe, user):
    assignment.case_claim(user=user, actor=chloe)
    with pytest.raises(ValidationError) as exc:
        assignment.case_claim(user=user, actor=chloe, expected_assignee=chloe.pk)
    assert exc.value.messages == ["Already assigned to you."]
    assert code_of(exc) == "unchanged"
    assert CaseAssignment.objects.filter(user=user).count() == 1


def test_giving_back_ones_own_case(chloe, user):
    assignment.case_claim(user=user, actor=chloe)
    assignment.case_unassign(user=user, actor=chloe, expected_assignee=chloe.pk)
    stored = fresh(user)
    assert stored.assignee is None
    assert stored.assigned_at is None
    latest = CaseAssignment.objects.filter(user=user).first()
    assert (latest.assignee, latest.previous_assignee, latest.assigned_by) == (None, chloe, chloe)


def test_an_unassignment_meanwhile_is_refused(admin_user, chloe, user):
    assignment.case_claim(user=user, actor=chloe)
    assignment.case_unassign(user=user, actor=admin_user, expected_assignee=chloe.pk)
    with pytest.raises(ValidationError) as exc:
        assignment.case_unassign(user=user, actor=chloe, expected_assignee=chloe.pk)
    assert code_of(exc) == "assignment_changed"
    assert "Unassigned meanwhile" in exc.value.messages[0]


def test_compliance_may_not_take_over_or_give_a_case_to_someone_else(chloe, ann, user):
    assignment.case_claim(user=user, actor=ann)
    with pytest.raises(PermissionDenied, match="only an admin may take it over"):
        assignment.case_claim(user=user, actor=chloe, expected_assignee=ann.pk)
    with pytest.raises(PermissionDenied, match="only an admin may take it over"):
        assignment.case_unassign(user=user, actor=chloe, expected_assignee=ann.pk)
    other = make_user()
    with pytest.raises(PermissionDenied, match="Only an admin may assign a case to someone else"):
        assignment.case_assign(user=other, assignee=ann, actor=chloe, expected_assignee=None)
    assert fresh(user).assignee == ann
    assert fresh(other).assignee is None
    assert CaseAssignment.objects.count() == 1


def test_an_admin_assigns_takes_over_and_unassigns(admin_user, chloe, ann, user):
    assignment.case_assign(user=user, assignee=chloe, actor=admin_user, expected_assignee=None)
    assignment.case_assign(user=user, assignee=ann, actor=admin_user, expected_assignee=chloe.pk)
    assert fresh(user).assignee == ann
    assignment.case_claim(user=user, actor=admin_user, expected_assignee=ann.pk)
    assignment.case_unassign(user=user, actor=admin_user, expected_assignee=admin_user.pk)
    rows = list(
        CaseAssignment.objects.filter(user=user)
        .order_by("id")
        .values_list("previous_assignee", "assignee", "assigned_by")
    )
    assert rows == [
        (None, chloe.pk, admin_user.pk),
        (chloe.pk, ann.pk, admin_user.pk),
        (ann.pk, admin_user.pk, admin_user.pk),
        (admin_user.pk, None, admin_user.pk),
    ]


def test_back_office_may_not_claim(back_office_user, user):
    with pytest.raises(PermissionDenied, match="Your role may not assign cases"):
        assignment.case_claim(user=user, actor=back_office_user)
    assert fresh(user).assignee is None


def test_only_console_compliance_and_admins_hold_cases(admin_user, back_office_user, chloe, user):
    for refused in (back_office_user, make_user()):
        with pytest.raises(PermissionDenied, match="may not hold cases"):
            assignment.case_assign(
                user=user, assignee=refused, actor=admin_user, expected_assignee=None
            )
    # Without the CONSOLE flag, no more cases.
    user_set_flag(user=chloe, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user)
    with pytest.raises(PermissionDenied, match="may not hold cases"):
        assignment.case_assign(user=user, assignee=chloe, actor=admin_user, expected_assignee=None)
    assert not CaseAssignment.objects.exists()


def test_nobody_is_assigned_their_own_record(admin_user, chloe):
    with pytest.raises(PermissionDenied, match="their own record"):
        assignment.case_claim(user=chloe, actor=chloe)
    with pytest.raises(PermissionDenied, match="their own record"):
        assignment.case_assign(user=chloe, assignee=chloe, actor=admin_user, expected_assignee=None)


def test_a_deleted_users_case_is_not_assigned(admin_user, chloe, user):
    user_delete(user=user, actor=admin_user)
    with pytest.raises(ValidationError) as exc:
        assignment.case_claim(user=user, actor=chloe)
    assert exc.value.error_dict["deleted"][0].code == "deleted"
    assert fresh(user).assignee is None


@pytest.mark.parametrize(
    ("role", "claim", "others"),
    [
        (Role.ADMIN, True, True),
        (Role.COMPLIANCE, True, False),
        (Role.BACK_OFFICE, False, False),
    ],
)
def test_policy_table(db, role, claim, others):
    actor = make_console_user(role)
    assert policy.may_claim(actor) is claim
    assert policy.may_assign_others(actor) is others
    assert policy.may_be_assignee(actor) is claim


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_assignment_history_is_append_only(chloe, user):
    assignment.case_claim(user=user, actor=chloe)
    row = CaseAssignment.objects.get(user=user)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseAssignment.objects.filter(pk=row.pk).update(assignee=None)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseAssignment.objects.filter(pk=row.pk).delete()
    assert CaseAssignment.objects.get(pk=row.pk).assignee == chloe


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_assigning_needs_no_new_version_under_the_database_guard(chloe, user):
    """The version trigger lets the assignee change alone: it is no versioned column."""
    version = user.version
    assignment.case_claim(user=user, actor=chloe)
    assert fresh(user).version == version


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_people_claiming_at_once_one_wins_the_other_is_told_who():
    """Both pass the barrier together; the user's row lock serves them one after the other,
    and the second finds the case taken: one assignment, one "Already assigned to …"."""
    admin = make_console_user(Role.ADMIN)
    claimers = [
        make_console_user(Role.COMPLIANCE, first_name="Ann", last_name="Example"),
        make_console_user(Role.COMPLIANCE, first_name="Chloé", last_name="Compliance"),
    ]
    user = make_user(actor=admin)
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[object] = []

    def claim(actor: User) -> None:
        try:
            barrier.wait()
            outcomes.append(assignment.case_claim(user=user, actor=actor).assignee_id)
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(actor,)) for actor in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    refusals = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(winners) == 1, outcomes
    assert len(refusals) == 1, outcomes
    winner = next(actor for actor in claimers if actor.pk == winners[0])
    assert refusals[0].messages == [f"Already assigned to {winner.display_name}."]
    assert refusals[0].error_dict["assignee"][0].code == "already_assigned"
    assert fresh(user).assignee_id == winner.pk
    assert CaseAssignment.objects.filter(user=user).count() == 1
