"""What the database itself guarantees, even for a write that skips the services."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import make_user
from users.models import (
    RECOMMENDED_MOVES,
    USER_ID_REGEX,
    FeatureFlagGrant,
    Role,
    Status,
    StatusChange,
    User,
    UserVersion,
    is_recommended_move,
    new_user_id,
)

pytestmark = pytest.mark.django_db


def raw_user(**fields) -> User:
    """A row saved straight through the ORM, bypassing every rule of the services."""
    now = timezone.now()
    user = User(creation_datetime=now, version_datetime=now, status_changed_at=now, **fields)
    user.save(force_insert=True)
    return user


def refused_by_database(**fields) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_user(**fields)


def test_new_user_id_is_u_plus_ulid_and_sortable():
    ids = [new_user_id() for _ in range(3)]
    assert all(re.fullmatch(USER_ID_REGEX, i) and len(i) == 27 for i in ids)
    assert len(set(ids)) == 3


def test_raw_row_with_defaults_is_valid():
    user = raw_user()
    assert user.status == Status.WAITING_FOR_VERIFICATION
    assert user.version == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "not-a-user-id"},
        {"status": "BANNED"},
        {"phone": "0470123456"},
        {"phone": "+0470123456"},
        {"residency_country": "be"},
        {"bank_account_number": "BE71096123456769"},  # a number without its type
        {"bank_account_number_type": "IBAN"},  # a type without a number
        {"bank_id": "GKCCBEBB"},
        {"bank_account_number": "BE71096123456769", "bank_account_number_type": "XYZ"},
        {"version": 0},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_check_constraints(fields):
    refused_by_database(**fields)


def test_email_unique_case_insensitively_in_the_database():
    raw_user(email="jane@example.com")
    refused_by_database(email="JANE@example.com")
    refused_by_database(email="jane@example.com")


def test_phone_and_external_id_unique_in_the_database_but_many_may_lack_them():
    raw_user(phone="+32470123456", external_id="BANK-1")
    refused_by_database(phone="+32470123456")
    refused_by_database(external_id="BANK-1")
    raw_user()
    raw_user()  # NULL is "not set": any number of users may lack email, phone, external id
    assert User.objects.filter(email__isnull=True, phone__isnull=True).count() == 2


def test_off_flow_status_change_needs_a_reason_in_the_database():
    user = make_user()
    with pytest.raises(IntegrityError), transaction.atomic():
        StatusChange.objects.create(
            user=user,
            version=2,
            from_status=Status.WAITING_FOR_VERIFICATION,
            to_status=Status.ACTIVE,
            changed_at=timezone.now(),
            off_flow=True,
        )


def test_one_grant_per_flag_and_known_flags_only():
    user = make_user(feature_flags=["CONSOLE"])
    with pytest.raises(IntegrityError), transaction.atomic():
        FeatureFlagGrant.objects.create(user=user, flag="CONSOLE", granted_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        FeatureFlagGrant.objects.create(user=user, flag="TRADING", granted_at=timezone.now())


def test_one_record_per_version():
    user = make_user()
    with pytest.raises(IntegrityError), transaction.atomic():
        UserVersion.objects.create(user=user, version=1, created_at=timezone.now())


def test_recommended_moves_are_the_onboarding_diagram():
    assert is_recommended_move("WAITING_FOR_VERIFICATION", "WAITING_FOR_SIGNATURE")
    assert is_recommended_move("ACTIVE", "INACTIVE")
    assert is_recommended_move("INACTIVE", "ACTIVE")
    assert not is_recommended_move("WAITING_FOR_VERIFICATION", "ACTIVE")
    assert not is_recommended_move("ACTIVE", "WAITING_FOR_SIGNATURE")
    assert set(RECOMMENDED_MOVES) == set(Status.values)


@pytest.mark.parametrize(
    ("to_status", "recommended"),
    [
        ("WAITING_FOR_VERIFICATION", True),  # a new customer
        ("WAITING_FOR_SIGNATURE", True),  # an existing customer of the bank
        ("VERIFICATION_FAILED", False),
        ("ACTIVE", False),
        ("INACTIVE", False),
    ],
)
def test_from_none_is_the_start_where_only_the_initial_statuses_are_recommended(
    to_status, recommended
):
    assert is_recommended_move(None, to_status) is recommended


def test_a_move_to_the_same_status_is_never_recommended():
    for status in Status.values:
        assert not is_recommended_move(status, status)


def test_display_name_and_counter_account():
    user = make_user(
        first_name="Ana",
        last_name="Peeters",
        counter_account={"bank_account_number": "BE71096123456769", "bank_id": "GKCCBEBB"},
    )
    assert str(user) == "Ana Peeters"
    assert user.counter_account == {
        "bank_account_number": "BE71096123456769",
        "bank_account_number_type": "IBAN",
        "bank_id": "GKCCBEBB",
        "bank_id_type": "BIC",
    }
    nameless = raw_user(email="only@example.com")
    assert nameless.display_name == "only@example.com"
    assert raw_user().display_name.startswith("U")
    assert nameless.counter_account is None


def test_is_staff_derives_from_the_admin_role(admin_user, back_office_user):
    assert admin_user.is_staff
    assert admin_user.has_role(Role.ADMIN)
    assert not back_office_user.is_staff
    assert back_office_user.has_perm("users.change_user")
    assert not back_office_user.has_perm("users.manage_feature_flags")


ROLE_PERMISSIONS = {
    Role.BACK_OFFICE: {
        "view_user",
        "add_user",
        "change_user",
        "delete_user",
        "export_users",
        "view_history",  # read-only (issue 11.9)
    },
    Role.COMPLIANCE: {
        "view_user",
        "change_status",
        "change_status_off_flow",
        "view_history",
        "export_users",
        "export_client_file",  # a user's file as of a date (issue 13.5)
        "approve_change",  # a checker of counter accounts (four-eyes, migration 0014)
        "view_access_log",  # who opened, exported and read users (issue 13.4)
        "reveal_personal_data",  # masked values, with a purpose (issue 13.3)
        "view_dashboard",  # the onboarding dashboard (issue 14.6, migration 0022)
    },
    Role.ADMIN: {
        "view_user",
        "add_user",
        "change_user",
        "delete_user",
        "export_users",
        "change_status",
        "change_status_off_flow",
        "view_history",
        "manage_feature_flags",
        "restore_user",
        "manage_roles",
        "manage_api_tokens",
        "export_client_file",
        "approve_change",  # four-eyes (migration 0014)
        "view_access_log",
        "reveal_personal_data",
        "view_dashboard",
    },
}


@pytest.mark.parametrize("role", Role.values)
def test_roles_are_groups_with_their_permissions(role):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name=role)
    assert set(group.permissions.values_list("codename", flat=True)) == ROLE_PERMISSIONS[role]
