"""Four-eyes approval (issue 12): guarded changes become requests that a second person decides.

The services, whichever front end calls them: proposing, approving (once, by someone else),
voiding on a concurrent change, rejecting, withdrawing and expiring.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from tests.factories import VALID_IBANS, make_console_user, make_user
from users import selectors, services
from users.models import ChangeRequest, FeatureFlag, Role, SecurityEvent, User, UserVersion
from users.selectors import change_requests as cr_selectors

pytestmark = pytest.mark.django_db

State = ChangeRequest.State
ACCOUNT = {"bank_account_number": VALID_IBANS[0]}
NEW_ACCOUNT = {"bank_account_number": VALID_IBANS[1]}


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def propose_iban(user: User, actor: User, account=NEW_ACCOUNT, **data) -> ChangeRequest:
    saved = services.user_update(
        user=user, data={"counter_account": account, **data}, actor=actor, change_reason="moved"
    )
    [request] = services.proposed_changes(saved)
    return request


@pytest.fixture
def second_admin(db):
    return make_console_user(Role.ADMIN)


# --- proposing -----------------------------------------------------------------------------------


def test_an_iban_change_is_proposed_not_applied(back_office_user, user):
    before = fresh(user)
    request = propose_iban(user, back_office_user, first_name="Janet")
    after = fresh(user)
    assert after.bank_account_number == ""  # unchanged until approval
    assert after.first_name == "Janet"  # the unguarded field applies at once
    assert after.version == before.version + 1
    assert request.state == State.PENDING
    assert request.kind == ChangeRequest.Kind.COUNTER_ACCOUNT
    assert request.proposed_by == back_office_user
    assert request.base_version == after.version
    assert request.reason == "moved"
    assert request.changes == {
        "counter_account": [
            None,
            {
                "bank_account_number": VALID_IBANS[1],
                "bank_account_number_type": "IBAN",
                "bank_id": None,
                "bank_id_type": None,
            },
        ]
    }
    assert request.expires_at - request.proposed_at == dt.timedelta(hours=72)
    # The version holds the unguarded field only.
    assert set(UserVersion.objects.get(user=user, version=after.version).changes) == {"first_name"}


@override_settings(FOUR_EYES_TTL_HOURS=5)
def test_the_time_to_live_is_a_setting(back_office_user, user):
    request = propose_iban(user, back_office_user)
    assert request.expires_at - request.proposed_at == dt.timedelta(hours=5)


@override_settings(FOUR_EYES_GUARDED=[])
def test_a_deployment_may_guard_nothing(back_office_user, user):
    saved = services.user_update(user=user, data={"counter_account": ACCOUNT}, actor=None)
    assert fresh(user).bank_account_number == VALID_IBANS[0]
    assert services.proposed_changes(saved) == []


@override_settings(FOUR_EYES_GUARDED=["roles"])
def test_a_deployment_chooses_what_is_guarded(admin_user, user):
    services.user_update(user=user, data={"counter_account": ACCOUNT}, actor=admin_user)
    assert fresh(user).bank_account_number == VALID_IBANS[0]
    services.user_set_roles(user=user, roles=[Role.COMPLIANCE], actor=admin_user)
    assert fresh(user).role_names() == set()
    assert ChangeRequest.objects.get(user=user).kind == ChangeRequest.Kind.ROLES


def test_a_newer_proposal_voids_the_older(back_office_user, user):
    first = propose_iban(user, back_office_user)
    second = propose_iban(user, back_office_user, account=ACCOUNT)
    first.refresh_from_db()
    assert first.state == State.VOID
    assert first.decision_reason == "Replaced by a newer proposal."
    assert second.state == State.PENDING
    assert [r.pk for r in cr_selectors.open_requests_for(user)] == [second.pk]


def test_granting_console_is_proposed_other_flags_apply(admin_user, user):
    saved = services.user_set_flags(
        user=user, flags=[FeatureFlag.CONSOLE, FeatureFlag.ROBO_ADVISOR], actor=admin_user
    )
    assert fresh(user).flag_names() == {FeatureFlag.ROBO_ADVISOR}
    [request] = services.proposed_changes(saved)
    assert request.kind == ChangeRequest.Kind.CONSOLE_FLAG
    assert request.changes == {"feature_flags": [["ROBO_ADVISOR"], ["CONSOLE", "ROBO_ADVISOR"]]}


def test_revoking_console_applies_at_once(admin_user, back_office_user):
    services.user_set_flag(
        user=back_office_user, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user
    )
    assert FeatureFlag.CONSOLE not in fresh(back_office_user).flag_names()
    assert not ChangeRequest.objects.exists()


def test_role_grants_and_revocations_are_proposed(admin_user, back_office_user):
    saved = services.user_set_roles(user=back_office_user, roles=[], actor=admin_user)
    assert fresh(back_office_user).role_names() == {Role.BACK_OFFICE}
    [request] = services.proposed_changes(saved)
    assert request.changes == {"roles": [["back_office"], []]}


def test_creating_a_user_is_not_guarded(admin_user):
    # A new record holds no money yet, and the first admin (createsuperuser) has nobody to ask.
    created = make_user(actor=admin_user, counter_account=ACCOUNT)
    assert created.bank_account_number == VALID_IBANS[0]


# --- approving -----------------------------------------------------------------------------------


def test_approval_applies_one_version_naming_maker_and_checker(
    back_office_user, compliance_user, user
):
    request = propose_iban(user, back_office_user)
    base = fresh(user).version
    decided = services.change_request_approve(change_request=request, actor=compliance_user)
    after = fresh(user)
    assert decided.state == State.APPROVED
    assert decided.decided_by == compliance_user
    assert decided.applied_version == after.version == base + 1
    assert after.bank_account_number == VALID_IBANS[1]
    version = UserVersion.objects.get(user=user, version=after.version)
    assert version.author == back_office_user
    assert version.approved_by == compliance_user
    assert set(version.changes) == {"counter_account"}
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.CHANGE_APPROVED)
    assert (event.actor, event.subject) == (compliance_user, after)


def test_self_approval_is_refused(admin_user, user):
    request = propose_iban(user, admin_user)
    with pytest.raises(PermissionDenied, match="another person must approve"):
        services.change_request_approve(change_request=request, actor=admin_user)
    request.refresh_from_db()
    assert request.state == State.PENDING
    assert fresh(user).bank_account_number == ""


def test_back_office_may_not_approve(back_office_user, admin_user, user):
    request = propose_iban(user, admin_user)
    with pytest.raises(PermissionDenied, match="may not approve"):
        services.change_request_approve(change_request=request, actor=back_office_user)
    assert fresh(user).bank_account_number == ""


def test_compliance_may_not_approve_a_role_grant(admin_user, compliance_user, user):
    saved = services.user_set_roles(user=user, roles=[Role.ADMIN], actor=admin_user)
    [request] = services.proposed_changes(saved)
    with pytest.raises(PermissionDenied, match="Console roles"):
        services.change_request_approve(change_request=request, actor=compliance_user)
    assert fresh(user).role_names() == set()


def test_the_counter_accounts_last_changer_may_not_approve(
    back_office_user, admin_user, second_admin, compliance_user, user
):
    first = propose_iban(user, admin_user, account=ACCOUNT)
    services.change_request_approve(change_request=first, actor=compliance_user)
    request = propose_iban(user, back_office_user)
    with pytest.raises(PermissionDenied, match="changed this counter account last"):
        services.change_request_approve(change_request=request, actor=admin_user)
    assert services.change_request_approve(change_request=request, actor=second_admin).state == (
        State.APPROVED
    )


def test_nobody_approves_a_change_of_their_own_record(back_office_user, admin_user, second_admin):
    saved = services.user_set_roles(
        user=second_admin, roles=[Role.ADMIN, Role.COMPLIANCE], actor=admin_user
    )
    [request] = services.proposed_changes(saved)
    with pytest.raises(PermissionDenied, match="your own record"):
        services.change_request_approve(change_request=request, actor=second_admin)


def test_approving_a_role_grant_applies_and_logs_it(admin_user, second_admin, user):
    saved = services.user_set_roles(user=user, roles=[Role.COMPLIANCE], actor=admin_user)
    [request] = services.proposed_changes(saved)
    services.change_request_approve(change_request=request, actor=second_admin)
    assert fresh(user).role_names() == {Role.COMPLIANCE}
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ROLE_GRANTED, subject=user).exists()


def test_approving_console_keeps_flags_changed_meanwhile(admin_user, second_admin, user):
    saved = services.user_set_flags(user=user, flags=[FeatureFlag.CONSOLE], actor=admin_user)
    [request] = services.proposed_changes(saved)
    services.user_set_flag(user=user, flag=FeatureFlag.STORYTELLER, enabled=True, actor=admin_user)
    services.change_request_approve(change_request=request, actor=second_admin)
    assert fresh(user).flag_names() == {FeatureFlag.CONSOLE, FeatureFlag.STORYTELLER}


def test_approval_after_a_concurrent_edit_of_the_field_is_void(
    back_office_user, compliance_user, user
):
    request = propose_iban(user, back_office_user)
    # The field changed another way meanwhile (here: while the deployment guarded nothing).
    with override_settings(FOUR_EYES_GUARDED=[]):
        services.user_update(user=user, data={"counter_account": ACCOUNT}, actor=None)
    version = fresh(user).version
    decided = services.change_request_approve(change_request=request, actor=compliance_user)
    assert decided.state == State.VOID
    assert decided.decision_reason.startswith("Counter account changed since the proposal")
    after = fresh(user)
    assert after.bank_account_number == VALID_IBANS[0]
    assert after.version == version  # nothing applied


def test_approval_of_a_deleted_users_change_is_void(back_office_user, compliance_user, user):
    request = propose_iban(user, back_office_user)
    services.user_delete(user=user, actor=None)
    decided = services.change_request_approve(change_request=request, actor=compliance_user)
    assert decided.state == State.VOID
    assert fresh(user).bank_account_number == ""


def test_a_decided_request_is_already_decided(back_office_user, compliance_user, admin_user, user):
    request = propose_iban(user, back_office_user)
    services.change_request_approve(change_request=request, actor=compliance_user)
    version = fresh(user).version
    with pytest.raises(ValidationError) as info:
        services.change_request_approve(change_request=request, actor=admin_user)
    assert info.value.error_dict["change_request"][0].code == "already_decided"
    assert "already decided" in info.value.messages[0]
    assert fresh(user).version == version


# --- rejecting, withdrawing, expiring ------------------------------------------------------------


def test_rejection_needs_a_reason(back_office_user, compliance_user, user):
    request = propose_iban(user, back_office_user)
    with pytest.raises(ValidationError, match="Say why"):
        services.change_request_reject(change_request=request, actor=compliance_user, reason=" ")
    decided = services.change_request_reject(
        change_request=request, actor=compliance_user, reason="Not the client's bank"
    )
    assert (decided.state, decided.decision_reason) == (State.REJECTED, "Not the client's bank")
    assert fresh(user).bank_account_number == ""
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.CHANGE_REJECTED).count() == 1


def test_the_proposer_may_not_reject_but_withdraw(back_office_user, compliance_user, user):
    request = propose_iban(user, back_office_user)
    with pytest.raises(PermissionDenied):
        services.change_request_reject(change_request=request, actor=back_office_user, reason="x")
    with pytest.raises(PermissionDenied, match="Only the person who proposed"):
        services.change_request_withdraw(change_request=request, actor=compliance_user)
    decided = services.change_request_withdraw(change_request=request, actor=back_office_user)
    assert decided.state == State.WITHDRAWN
    assert fresh(user).bank_account_number == ""


def test_expiry(back_office_user, compliance_user, user):
    request = propose_iban(user, back_office_user)
    later = timezone.now() + dt.timedelta(hours=73)
    # Lazy: past its time it no longer reads as open, before anything writes it.
    assert cr_selectors.open_requests_for(user, now=later) == []
    assert request.state_at(later) == State.EXPIRED
    decided = services.change_request_approve(
        change_request=request, actor=compliance_user, clock=lambda: later
    )
    assert decided.state == State.EXPIRED
    assert decided.decided_at == request.expires_at
    assert fresh(user).bank_account_number == ""


def test_expire_sweep_and_command(back_office_user, user, capsys):
    from django.core.management import call_command

    request = propose_iban(user, back_office_user)
    ChangeRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    call_command("expire_change_requests")
    assert "Expired 1 change request(s)." in capsys.readouterr().out
    request.refresh_from_db()
    assert request.state == State.EXPIRED
    assert services.change_requests_expire() == 0


def test_a_proposal_after_an_overdue_one_marks_it_expired(back_office_user, user):
    first = propose_iban(user, back_office_user)
    ChangeRequest.objects.filter(pk=first.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    propose_iban(user, back_office_user, account=ACCOUNT)
    first.refresh_from_db()
    assert first.state == State.EXPIRED


# --- two checkers at once ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_checkers_approving_at_once_apply_once():
    """Both checkers pass the barrier together; the user's row lock serves them one after the
    other, and the second finds the request decided: one version, one "already decided"."""
    maker = make_console_user(Role.BACK_OFFICE)
    checkers = [make_console_user(Role.ADMIN), make_console_user(Role.COMPLIANCE)]
    user = make_user(actor=maker)
    request = propose_iban(user, maker)
    version = fresh(user).version
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[object] = []

    def approve(checker: User) -> None:
        try:
            barrier.wait()
            outcomes.append(
                services.change_request_approve(change_request=request.pk, actor=checker).state
            )
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(checker,)) for checker in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    states = [o for o in outcomes if o == State.APPROVED]
    refusals = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(states) == 1, outcomes
    assert len(refusals) == 1, outcomes
    assert refusals[0].error_dict["change_request"][0].code == "already_decided"
    assert fresh(user).version == version + 1
    assert UserVersion.objects.filter(user=user, approved_by__isnull=False).count() == 1
    assert (
        selectors.recent_versions(user, limit=1)[0].changes["counter_account"][1][
            "bank_account_number"
        ]
        == (VALID_IBANS[1])
    )


# --- every front end proposes --------------------------------------------------------------------


def test_a_management_command_proposes_a_guarded_change(back_office_user, user, capsys):
    from django.core.management import call_command

    call_command(
        "update_user",
        user.email,
        "--set",
        "first_name=Janet",
        "--set",
        f'counter_account={{"bank_account_number": "{VALID_IBANS[2]}"}}',
        "--set",
        'roles=["compliance"]',
        "--by",
        back_office_user.email,
        "--reason",
        "client letter",
    )
    out = capsys.readouterr().out
    after = fresh(user)
    assert after.first_name == "Janet"
    assert after.bank_account_number == ""
    assert after.role_names() == set()
    requests = ChangeRequest.objects.filter(user=user, state=State.PENDING).order_by("kind")
    assert [(r.kind, r.proposed_by, r.reason) for r in requests] == [
        (ChangeRequest.Kind.COUNTER_ACCOUNT, back_office_user, "client letter"),
        (ChangeRequest.Kind.ROLES, back_office_user, "client letter"),
    ]
    assert out.count("Waiting for approval by a second person") == 2


def test_the_command_refuses_bad_input_and_changes_nothing(user):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="IBAN"):
        call_command(
            "update_user", user.pk, "--set", 'counter_account={"bank_account_number": "BE00"}'
        )
    with pytest.raises(CommandError, match="FIELD=VALUE"):
        call_command("update_user", user.pk, "--set", "oops")
    assert fresh(user).version == 1
    assert not ChangeRequest.objects.exists()
