"""The write services (users/services/): state after, version record, history; refusals change
nothing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from tests.factories import VALID_IBANS, make_user
from users import contract, selectors, services
from users.models import (
    FeatureFlag,
    FeatureFlagGrant,
    Role,
    Status,
    StatusChange,
    User,
    UserVersion,
)
from users.services import users as service_users

pytestmark = pytest.mark.django_db


def refused(func, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        func(**kwargs)
    return info.value


def errors_of(exc: ValidationError) -> dict[str, list[tuple[str, str]]]:
    """field -> [(code, message)] for exact assertions."""
    return {
        key: [(e.code, e.message % (e.params or {})) for e in errors]
        for key, errors in exc.error_dict.items()
    }


def latest_version(user: User) -> UserVersion:
    return UserVersion.objects.filter(user=user).latest("version")


class Unchanged:
    """Asserts that a refused call left the stored user and its history exactly as they were."""

    def __init__(self, user: User):
        self.user = User.objects.get(pk=user.pk)
        self.snapshot = services.user_snapshot(self.user)
        self.versions = UserVersion.objects.filter(user=user).count()
        self.status_changes = StatusChange.objects.filter(user=user).count()

    def check(self) -> None:
        stored = User.objects.get(pk=self.user.pk)
        assert stored.version == self.user.version
        assert stored.version_datetime == self.user.version_datetime
        assert services.user_snapshot(stored) == self.snapshot
        assert UserVersion.objects.filter(user=stored).count() == self.versions
        assert StatusChange.objects.filter(user=stored).count() == self.status_changes


FULL_DATA = {
    "external_id": "BANK-0001",
    "first_name": "Ana",
    "last_name": "Peeters",
    "email": "Ana.Peeters@example.com",
    "phone": "0470 12 34 56",
    "brokerage_user_id": "BRK-1",
    "idp_user_id": "idp|1",
    "language": "nl-be",
    "counter_account": {"bank_account_number": "BE71 0961 2345 6769", "bank_id": "GKCCBEBB"},
    "feature_flags": ["ROBO_ADVISOR"],
    "date_of_birth": "1985-04-12",
    "residency_country": "be",
    "nationalities": ["BE", "nl"],
    "address": {
        "line1": "Rue Neuve 1",
        "city": "Brussels",
        "postal_code": "1000",
        "country_code": "BE",
    },
    "tax_residency": {"country_code": "BE", "proof_type": "TIN", "value": "85041212345"},
    "identity": "85.04.12-123.45",
    "metadata": {"segment": "retail"},
}


# --- create ----------------------------------------------------------------------------------


def test_create_stores_normalised_values_and_version_1(admin_user):
    user = services.user_create(data=FULL_DATA, actor=admin_user)

    user = User.objects.get(pk=user.pk)
    assert len(user.id) == 27
    assert user.id.startswith("U")
    assert user.phone == "+32470123456"  # national input read with the residency country
    assert user.language == "nl-BE"
    assert user.residency_country == "BE"
    assert user.nationalities == ["BE", "NL"]
    assert user.counter_account == {
        "bank_account_number": "BE71096123456769",
        "bank_account_number_type": "IBAN",
        "bank_id": "GKCCBEBB",
        "bank_id_type": "BIC",
    }
    assert user.date_of_birth == dt.date(1985, 4, 12)
    assert user.status == Status.WAITING_FOR_VERIFICATION
    assert user.flag_names() == {"ROBO_ADVISOR"}
    assert user.version == 1
    assert user.version_authored_by_user == admin_user
    assert user.creation_datetime == user.version_datetime == user.status_changed_at
    assert not user.has_usable_password()

    version = UserVersion.objects.get(user=user)
    assert version.version == 1
    assert version.author == admin_user
    assert version.created_at == user.version_datetime
    assert version.changes["email"] == [None, "Ana.Peeters@example.com"]
    assert version.changes["status"] == [None, "WAITING_FOR_VERIFICATION"]
    assert version.changes["feature_flags"] == [[], ["ROBO_ADVISOR"]]
    assert version.changes["counter_account"][1]["bank_account_number"] == "BE71096123456769"
    assert "first_name" in version.changes
    assert "readable_by" not in version.changes  # unset fields are not part of the creation

    change = StatusChange.objects.get(user=user)
    assert (change.from_status, change.to_status, change.off_flow) == (
        "",
        "WAITING_FOR_VERIFICATION",
        False,
    )
    assert change.changed_by == admin_user
    assert change.version == 1

    grant = FeatureFlagGrant.objects.get(user=user)
    assert (grant.flag, grant.granted_by, grant.granted_at) == (
        "ROBO_ADVISOR",
        admin_user,
        user.version_datetime,
    )


def test_create_minimal_user():
    user = services.user_create(data={}, actor=None)
    assert user.version == 1
    assert user.email is None
    assert user.phone is None
    assert user.external_id is None
    assert latest_version(user).changes == {"status": [None, "WAITING_FOR_VERIFICATION"]}


def test_create_existing_customer_starts_waiting_for_signature():
    user = services.user_create(data={"status": "WAITING_FOR_SIGNATURE"}, actor=None)
    change = StatusChange.objects.get(user=user)
    assert change.to_status == "WAITING_FOR_SIGNATURE"
    assert not change.off_flow


def test_create_off_flow_start_needs_a_reason(admin_user):
    exc = refused(
        services.user_create, data={"email": "x@example.com", "status": "ACTIVE"}, actor=None
    )
    assert errors_of(exc) == {
        "status_reason_code": [
            (
                "reason_code_required",
                "A move from the start to Active is off the recommended flow: choose a reason "
                "code.",
            )
        ]
    }
    assert not User.objects.filter(email="x@example.com").exists()

    user = services.user_create(
        data={
            "status": "ACTIVE",
            "status_reason_code": "MIGRATED",
            "status_reason": "Migrated from the old platform",
        },
        actor=admin_user,
    )
    change = StatusChange.objects.get(user=user)
    assert change.off_flow
    assert change.reason == "Migrated from the old platform"
    assert change.reason_code_id == "MIGRATED"
    assert user.status_reason_code == "MIGRATED"


def test_create_with_password_roles_and_superuser():
    user = services.user_create(
        data={"email": "ops@bank.example", "feature_flags": ["CONSOLE"]},
        actor=None,
        password="s3cret-enough-pass",
        roles=[Role.COMPLIANCE],
    )
    assert user.check_password("s3cret-enough-pass")
    assert user.role_names() == {"compliance"}
    assert latest_version(user).changes["roles"] == [[], ["compliance"]]
    # Password hashes are auth internals, never in the versioned record.
    assert "password" not in latest_version(user).changes


def test_create_refuses_invalid_input_with_every_error_and_writes_nothing():
    before = User.objects.count()
    exc = refused(
        services.user_create,
        data={
            "email": "not-an-email",
            "phone": "+123456789",
            "counter_account": {"bank_account_number": "BE01234567891234"},
            "language": "english",
            "residency_country": "XX",
            "date_of_birth": (timezone.localdate() + dt.timedelta(days=1)).isoformat(),
            "address": {"line1": "Somewhere"},
            "metadata": {"k": 1},
            "favourite_colour": "blue",
        },
        actor=None,
    )
    errors = errors_of(exc)
    assert errors["email"] == [
        ("invalid", "Enter a valid email address, like jane.doe@example.com.")
    ]
    assert errors["phone"] == [
        ("phone_length", "+1 numbers have 10 digits after the country code; this one has 8.")
    ]
    assert errors["counter_account.bank_account_number"] == [
        ("iban_checksum", "IBAN check digits are wrong.")
    ]
    assert errors["language"][0][0] == "language"
    assert errors["residency_country"] == [("country", "XX is not an ISO 3166-1 country code.")]
    assert errors["date_of_birth"] == [("date_future", "Date of birth cannot be in the future.")]
    assert set(errors) >= {"address.city", "address.postal_code", "address.country_code"}
    assert errors["metadata"] == [("metadata_value", "Metadata value of 'k' must be text.")]
    assert errors["favourite_colour"] == [("unknown_field", "Unknown field.")]
    assert User.objects.count() == before
    assert not UserVersion.objects.exists()


def test_create_refuses_unknown_role():
    exc = refused(services.user_create, data={}, actor=None, roles=["root"])
    assert errors_of(exc) == {"roles": [("choice", "Unknown role 'root'.")]}
    assert not User.objects.exists()


# --- uniqueness ------------------------------------------------------------------------------


def test_email_unique_case_insensitively():
    make_user(email="jane@example.com")
    exc = refused(services.user_create, data={"email": "JANE@Example.com"}, actor=None)
    assert errors_of(exc) == {"email": [("unique", "Email is already used by another user.")]}
    assert User.objects.count() == 1


def test_phone_and_external_id_unique():
    make_user(phone="+32470000001", external_id="BANK-1")
    exc = refused(
        services.user_create,
        data={"phone": "0470 00 00 01", "residency_country": "BE", "external_id": "BANK-1"},
        actor=None,
    )
    assert errors_of(exc) == {
        "phone": [("unique", "Phone is already used by another user.")],
        "external_id": [("unique", "External id is already used by another user.")],
    }
    assert User.objects.count() == 1


def test_update_refuses_duplicate_external_id(admin_user):
    make_user(external_id="TAKEN")
    user = make_user(external_id="MINE")
    unchanged = Unchanged(user)
    exc = refused(services.user_update, user=user, data={"external_id": "TAKEN"}, actor=admin_user)
    assert errors_of(exc) == {
        "external_id": [("unique", "External id is already used by another user.")]
    }
    unchanged.check()


def test_database_constraint_decides_a_race_as_a_validation_error(monkeypatch):
    """Both pre-checks passed (simulated): the loser's insert becomes a field error, not a 500."""
    make_user(email="race@example.com")
    monkeypatch.setattr(service_users, "_check_unique", lambda user, cleaned, errors: None)
    exc = refused(services.user_create, data={"email": "Race@Example.com"}, actor=None)
    assert errors_of(exc) == {"email": [("unique", "Email is already used by another user.")]}
    exc = refused(services.user_create, data={"external_id": make_user().external_id}, actor=None)
    assert errors_of(exc) == {
        "external_id": [("unique", "External id is already used by another user.")]
    }
    assert User.objects.count() == 2


@pytest.mark.postgres
# serialized_rollback puts back what migrations made (role groups) after the flush.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("second_email", ["race@example.com", "RACE@example.com"])
def test_concurrent_creates_with_the_same_email(monkeypatch, second_email):
    """Two requests create the same email at once: one wins, the other gets a ValidationError.

    A barrier holds both threads after their friendly pre-check, so both reach the INSERT and
    the database constraint (plain or case-insensitive) has to decide.
    """
    barrier = threading.Barrier(2, timeout=10)
    real_save = service_users._save

    def save_after_both_checked(user, *, create):
        barrier.wait()
        real_save(user, create=create)

    monkeypatch.setattr(service_users, "_save", save_after_both_checked)
    outcomes: list[object] = []

    def create(email: str) -> None:
        try:
            outcomes.append(services.user_create(data={"email": email}, actor=None))
        except Exception as exc:  # recorded, and asserted below: any other type is a failure
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=create, args=(email,))
        for email in ("race@example.com", second_email)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [o for o in outcomes if isinstance(o, User)]
    losers = [o for o in outcomes if not isinstance(o, User)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert type(losers[0]) is ValidationError
    assert errors_of(losers[0]) == {"email": [("unique", "Email is already used by another user.")]}
    assert User.objects.filter(email__iexact="race@example.com").count() == 1
    assert UserVersion.objects.count() == 1


# --- update and write-once -------------------------------------------------------------------


@pytest.mark.usefixtures("without_four_eyes")
def test_update_records_a_version_with_the_diff(admin_user, back_office_user):
    user = make_user(actor=admin_user, first_name="Jane", metadata={"a": "1"})
    updated = services.user_update(
        user=user,
        data={
            "first_name": "Janet",
            "metadata": {"b": "2"},
            "counter_account": {"bank_account_number": VALID_IBANS[1]},
        },
        actor=back_office_user,
        expected_version=1,
    )

    stored = User.objects.get(pk=user.pk)
    assert stored.first_name == "Janet"
    assert stored.metadata == {"b": "2"}  # nested objects are replaced whole
    assert stored.bank_account_number == VALID_IBANS[1]
    assert stored.version == updated.version == 2
    assert stored.version_authored_by_user == back_office_user
    version = latest_version(stored)
    assert version.version == 2
    assert version.author == back_office_user
    assert version.created_at == stored.version_datetime
    assert version.changes == {
        "first_name": ["Jane", "Janet"],
        "counter_account": [
            None,
            {
                "bank_account_number": VALID_IBANS[1],
                "bank_account_number_type": "IBAN",
                "bank_id": None,
                "bank_id_type": None,
            },
        ],
        "metadata": [{"a": "1"}, {"b": "2"}],
    }
    assert selectors.version_diff(stored, from_version=1, to_version=2) == version.changes


def test_update_with_unchanged_values_is_a_no_op(admin_user):
    user = make_user(first_name="Jane")
    unchanged = Unchanged(user)
    result = services.user_update(
        user=user, data={"first_name": " Jane ", "email": user.email}, actor=admin_user
    )
    assert result.version == 1
    unchanged.check()


@pytest.mark.usefixtures("without_four_eyes")
def test_update_clears_optional_values(admin_user):
    user = make_user(counter_account={"bank_account_number": VALID_IBANS[0]}, language="en")
    user = services.user_update(
        user=user,
        data={"counter_account": None, "language": "", "external_id": ""},
        actor=admin_user,
    )
    stored = User.objects.get(pk=user.pk)
    assert stored.counter_account is None
    assert stored.bank_account_number == ""
    assert stored.external_id is None
    assert latest_version(stored).changes["external_id"][1] is None


@pytest.mark.parametrize(
    ("name", "new_value"),
    [("email", "other@example.com"), ("phone", "+32470999999")],
)
def test_write_once_fields_cannot_change(admin_user, name, new_value):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(services.user_update, user=user, data={name: new_value}, actor=admin_user)
    stored_value = getattr(user, name)
    label = name.capitalize()
    assert errors_of(exc) == {
        name: [
            (
                "write_once",
                f"{label} is write-once: it was set to {stored_value} and cannot be changed.",
            )
        ]
    }
    unchanged.check()


def test_write_once_cannot_be_cleared_either(admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(services.user_update, user=user, data={"email": ""}, actor=admin_user)
    assert errors_of(exc)["email"][0][0] == "write_once"
    unchanged.check()


def test_write_once_field_can_be_set_while_empty(admin_user):
    user = services.user_create(data={"first_name": "No", "last_name": "Contact"}, actor=None)
    user = services.user_update(
        user=user, data={"email": "late@example.com", "phone": "+32470555555"}, actor=admin_user
    )
    assert (user.email, user.phone, user.version) == ("late@example.com", "+32470555555", 2)
    assert latest_version(user).changes == {
        "email": [None, "late@example.com"],
        "phone": [None, "+32470555555"],
    }


def test_update_refuses_invalid_input_and_changes_nothing(admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(
        services.user_update,
        user=user,
        data={
            "first_name": "Valid",
            "counter_account": {
                "bank_account_number": "BE71096123456769",
                "bank_id": "DEUTDEFF",
            },
        },
        actor=admin_user,
    )
    assert errors_of(exc) == {
        "counter_account.bank_id": [
            ("bic_country_mismatch", "BIC country DE does not match the IBAN country BE.")
        ]
    }
    unchanged.check()


def test_update_national_phone_uses_stored_residency_country(admin_user):
    user = services.user_create(data={"residency_country": "FR"}, actor=None)
    user = services.user_update(user=user, data={"phone": "06 12 34 56 78"}, actor=admin_user)
    assert user.phone == "+33612345678"


def test_update_readable_and_modifiable_by(admin_user, back_office_user):
    user = make_user()
    user = services.user_update(
        user=user,
        data={"readable_by": [back_office_user.pk], "modifiable_by": [admin_user.pk]},
        actor=admin_user,
    )
    assert list(user.readable_by.values_list("pk", flat=True)) == [back_office_user.pk]
    assert latest_version(user).changes == {
        "readable_by": [[], [back_office_user.pk]],
        "modifiable_by": [[], [admin_user.pk]],
    }
    unchanged = Unchanged(user)
    missing = "U" + "0" * 26
    exc = refused(
        services.user_update, user=user, data={"readable_by": [missing]}, actor=admin_user
    )
    assert errors_of(exc) == {"readable_by": [("user_id", f"No user with id {missing}.")]}
    unchanged.check()


# --- stale versions --------------------------------------------------------------------------


def test_stale_version_is_refused_with_what_changed_meanwhile(admin_user, back_office_user):
    user = make_user(first_name="Jane", last_name="Doe")
    services.user_update(user=user, data={"last_name": "Smith"}, actor=admin_user)
    services.user_set_flag(user=user, flag="STORYTELLER", enabled=True, actor=admin_user)
    unchanged = Unchanged(user)

    with pytest.raises(services.StaleVersion) as info:
        services.user_update(
            user=user,
            data={"first_name": "Janet"},
            actor=back_office_user,
            expected_version=1,
        )
    stale = info.value
    assert stale.expected_version == 1
    assert stale.current.version == 3
    assert stale.changes == {
        "last_name": ["Doe", "Smith"],
        "feature_flags": [[], ["STORYTELLER"]],
    }
    assert str(stale) == (
        "This user was changed by someone else since version 1 (now version 3; changed: "
        "Last name, Feature flags). Nothing was saved."
    )
    unchanged.check()


@pytest.mark.parametrize(
    "call",
    [
        lambda user, actor: services.user_change_status(
            user=user, status="WAITING_FOR_SIGNATURE", actor=actor, expected_version=1
        ),
        lambda user, actor: services.user_set_flags(
            user=user, flags=["CONSOLE"], actor=actor, expected_version=1
        ),
        lambda user, actor: services.user_set_roles(
            user=user, roles=["admin"], actor=actor, expected_version=1
        ),
        lambda user, actor: services.user_delete(user=user, actor=actor, expected_version=1),
    ],
    ids=["status", "flags", "roles", "delete"],
)
def test_every_service_checks_the_expected_version(admin_user, call):
    user = make_user()
    services.user_update(user=user, data={"first_name": "Changed"}, actor=admin_user)
    unchanged = Unchanged(user)
    with pytest.raises(services.StaleVersion) as info:
        call(user, admin_user)
    assert info.value.changes == {"first_name": ["Jane", "Changed"]}
    unchanged.check()


def test_current_expected_version_is_accepted(admin_user):
    user = make_user()
    user = services.user_update(
        user=user, data={"first_name": "A"}, actor=admin_user, expected_version=1
    )
    user = services.user_update(
        user=user, data={"first_name": "B"}, actor=admin_user, expected_version=2
    )
    assert user.version == 3


def test_version_diff_between_any_two_versions(admin_user):
    user = make_user(first_name="A", last_name="X")
    services.user_update(user=user, data={"first_name": "B"}, actor=admin_user)
    services.user_update(user=user, data={"first_name": "C", "last_name": "Y"}, actor=admin_user)
    services.user_update(user=user, data={"first_name": "A"}, actor=admin_user)
    assert selectors.version_diff(user, from_version=1, to_version=4) == {"last_name": ["X", "Y"]}
    assert selectors.version_diff(user, from_version=2, to_version=3) == {
        "first_name": ["B", "C"],
        "last_name": ["X", "Y"],
    }
    assert selectors.version_diff(user, from_version=3, to_version=1) == {
        "first_name": ["C", "A"],
        "last_name": ["Y", "X"],
    }


# --- status ----------------------------------------------------------------------------------

RECOMMENDED = [
    ("WAITING_FOR_VERIFICATION", "WAITING_FOR_SIGNATURE"),
    ("WAITING_FOR_VERIFICATION", "VERIFICATION_FAILED"),
    ("VERIFICATION_FAILED", "WAITING_FOR_SIGNATURE"),
    ("VERIFICATION_FAILED", "INACTIVE"),
    ("WAITING_FOR_SIGNATURE", "ACTIVE"),
    ("ACTIVE", "INACTIVE"),
    ("INACTIVE", "ACTIVE"),
]


def user_in(status: str, actor: User) -> User:
    user = make_user(actor=actor)
    if status != Status.WAITING_FOR_VERIFICATION:
        user = services.user_change_status(
            user=user, status=status, actor=actor, reason="test setup", reason_code="OTHER"
        )
    return user


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [(a, b) for a, b in RECOMMENDED if b not in (Status.VERIFICATION_FAILED, Status.INACTIVE)],
)
def test_recommended_move_recorded_without_reason(compliance_user, from_status, to_status):
    user = user_in(from_status, compliance_user)
    version = user.version

    user = services.user_change_status(user=user, status=to_status, actor=compliance_user)

    stored = User.objects.get(pk=user.pk)
    assert stored.status == to_status
    assert stored.version == version + 1
    assert stored.status_changed_at == stored.version_datetime
    change = StatusChange.objects.filter(user=stored).latest("changed_at", "id")
    assert (change.from_status, change.to_status) == (from_status, to_status)
    assert (change.changed_by, change.reason, change.off_flow) == (compliance_user, "", False)
    assert change.version == stored.version
    assert change.changed_at == stored.version_datetime
    assert latest_version(stored).changes == {"status": [from_status, to_status]}


OFF_FLOW = [
    (a, b) for a in Status.values for b in Status.values if a != b and (a, b) not in RECOMMENDED
]


@pytest.mark.parametrize(("from_status", "to_status"), OFF_FLOW)
def test_off_flow_move_needs_a_reason(compliance_user, from_status, to_status):
    user = user_in(from_status, compliance_user)
    unchanged = Unchanged(user)

    exc = refused(
        services.user_change_status,
        user=user,
        status=to_status,
        actor=compliance_user,
        reason="A reason in words alone is not enough",
    )
    assert errors_of(exc) == {
        "status_reason_code": [
            (
                "reason_code_required",
                f"A move from {Status(from_status).label} to {Status(to_status).label} is off "
                "the recommended flow: choose a reason code.",
            )
        ]
    }
    unchanged.check()

    user = services.user_change_status(
        user=user,
        status=to_status,
        actor=compliance_user,
        reason="  Documents re-checked  ",
        reason_code="manual_override",
    )
    change = StatusChange.objects.filter(user=user).latest("changed_at", "id")
    assert (change.from_status, change.to_status) == (from_status, to_status)
    assert change.off_flow
    assert change.reason == "Documents re-checked"
    assert change.reason_code_id == "MANUAL_OVERRIDE"
    assert change.changed_by == compliance_user
    assert User.objects.get(pk=user.pk).status == to_status


def test_status_through_user_update_with_reason(admin_user):
    user = make_user()
    user = services.user_update(
        user=user,
        data={
            "status": "ACTIVE",
            "status_reason": "Signed on paper",
            "status_reason_code": "SIGNED_ON_PAPER",
            "first_name": "Ann",
        },
        actor=admin_user,
    )
    assert user.status == "ACTIVE"
    assert latest_version(user).changes == {
        "first_name": ["Jane", "Ann"],
        "status": ["WAITING_FOR_VERIFICATION", "ACTIVE"],
    }
    change = StatusChange.objects.filter(user=user).latest("changed_at", "id")
    assert change.off_flow
    assert change.reason == "Signed on paper"


def test_status_through_user_update_off_flow_without_reason_changes_nothing(admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(
        services.user_update,
        user=user,
        data={"status": "ACTIVE", "first_name": "Ann"},
        actor=admin_user,
    )
    assert errors_of(exc)["status_reason_code"][0][0] == "reason_code_required"
    unchanged.check()


def test_status_unchanged_and_unknown_are_refused(compliance_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(
        services.user_change_status,
        user=user,
        status="WAITING_FOR_VERIFICATION",
        actor=compliance_user,
    )
    assert errors_of(exc) == {
        "status": [("unchanged", "The user is already waiting for verification.")]
    }
    exc = refused(services.user_change_status, user=user, status="BANNED", actor=compliance_user)
    assert errors_of(exc)["status"][0][0] == "choice"
    unchanged.check()


def test_status_history_keeps_every_move_in_order(compliance_user):
    user = make_user()
    for status in ("WAITING_FOR_SIGNATURE", "ACTIVE", "INACTIVE", "ACTIVE"):
        code = "INACTIVITY" if status == "INACTIVE" else ""
        user = services.user_change_status(
            user=user, status=status, actor=compliance_user, reason_code=code
        )
    moves = list(
        StatusChange.objects.filter(user=user)
        .order_by("version")
        .values_list("from_status", "to_status", "version")
    )
    assert moves == [
        ("", "WAITING_FOR_VERIFICATION", 1),
        ("WAITING_FOR_VERIFICATION", "WAITING_FOR_SIGNATURE", 2),
        ("WAITING_FOR_SIGNATURE", "ACTIVE", 3),
        ("ACTIVE", "INACTIVE", 4),
        ("INACTIVE", "ACTIVE", 5),
    ]


# --- flags and roles -------------------------------------------------------------------------


@pytest.mark.usefixtures("without_four_eyes")
def test_set_flags_grants_and_revokes_with_author(admin_user):
    user = make_user(feature_flags=["ROBO_ADVISOR"])
    user = services.user_set_flags(user=user, flags=["SELF_INVESTOR", "CONSOLE"], actor=admin_user)
    assert user.flag_names() == {"SELF_INVESTOR", "CONSOLE"}
    grants = FeatureFlagGrant.objects.filter(user=user)
    assert {g.flag for g in grants} == {"SELF_INVESTOR", "CONSOLE"}
    assert {g.granted_by for g in grants} == {admin_user}
    version = latest_version(user)
    assert version.version == 2
    assert version.author == admin_user
    assert version.changes == {"feature_flags": [["ROBO_ADVISOR"], ["CONSOLE", "SELF_INVESTOR"]]}


@pytest.mark.usefixtures("without_four_eyes")
def test_set_flag_one_at_a_time(admin_user):
    user = make_user()
    user = services.user_set_flag(user=user, flag="CONSOLE", enabled=True, actor=admin_user)
    user = services.user_set_flag(user=user, flag="STORYTELLER", enabled=True, actor=admin_user)
    user = services.user_set_flag(user=user, flag="CONSOLE", enabled=False, actor=admin_user)
    assert User.objects.get(pk=user.pk).flag_names() == {"STORYTELLER"}
    assert user.version == 4
    assert latest_version(user).changes == {
        "feature_flags": [["CONSOLE", "STORYTELLER"], ["STORYTELLER"]]
    }
    # Granting a flag the user holds is a no-op, not a new version.
    assert (
        services.user_set_flag(
            user=user, flag="STORYTELLER", enabled=True, actor=admin_user
        ).version
        == 4
    )


def test_set_flags_refuses_unknown_flag(admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(services.user_set_flags, user=user, flags=["TRADING"], actor=admin_user)
    assert errors_of(exc)["feature_flags"][0][0] == "feature_flag"
    unchanged.check()


@pytest.mark.usefixtures("without_four_eyes")
def test_set_roles_is_versioned(admin_user):
    user = make_user()
    user = services.user_set_roles(user=user, roles=["compliance", "back_office"], actor=admin_user)
    assert User.objects.get(pk=user.pk).role_names() == {"compliance", "back_office"}
    assert latest_version(user).changes == {"roles": [[], ["back_office", "compliance"]]}
    user = services.user_set_roles(user=user, roles=["admin"], actor=admin_user)
    assert User.objects.get(pk=user.pk).role_names() == {"admin"}
    assert latest_version(user).changes == {"roles": [["back_office", "compliance"], ["admin"]]}
    unchanged = Unchanged(user)
    exc = refused(services.user_set_roles, user=user, roles=["root"], actor=admin_user)
    assert errors_of(exc) == {"roles": [("choice", "Unknown role 'root'.")]}
    unchanged.check()


@pytest.mark.usefixtures("without_four_eyes")
def test_roles_never_touch_other_groups(admin_user):
    from django.contrib.auth.models import Group

    other = Group.objects.create(name="newsletter")
    user = make_user()
    user.groups.add(other)
    services.user_set_roles(user=user, roles=["admin"], actor=admin_user)
    assert set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True)) == {
        "admin",
        "newsletter",
    }


# --- delete and restore ----------------------------------------------------------------------


def test_soft_delete_and_restore(admin_user, back_office_user):
    user = make_user()
    user = services.user_delete(user=user, actor=back_office_user, expected_version=1)
    stored = User.objects.get(pk=user.pk)  # kept
    assert stored.deleted
    assert stored.version == 2
    assert latest_version(stored).changes == {"deleted": [False, True]}
    assert latest_version(stored).author == back_office_user

    # Deleting again is idempotent: same record, no new version.
    assert services.user_delete(user=stored, actor=back_office_user).version == 2

    # A deleted user is frozen until restored.
    unchanged = Unchanged(stored)
    for call in (
        lambda: services.user_update(user=stored, data={"first_name": "X"}, actor=admin_user),
        lambda: services.user_change_status(
            user=stored, status="WAITING_FOR_SIGNATURE", actor=admin_user
        ),
        lambda: services.user_set_flags(user=stored, flags=["CONSOLE"], actor=admin_user),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        assert errors_of(info.value) == {
            "deleted": [("deleted", "This user is deleted; restore it first.")]
        }
    unchanged.check()

    restored = services.user_restore(user=stored, actor=admin_user, expected_version=2)
    stored = User.objects.get(pk=user.pk)
    assert not stored.deleted
    assert stored.version == restored.version == 3
    assert latest_version(stored).changes == {"deleted": [True, False]}
    assert latest_version(stored).author == admin_user


def test_restore_of_a_live_user_is_refused(admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(services.user_restore, user=user, actor=admin_user)
    assert errors_of(exc) == {"deleted": [("not_deleted", "This user is not deleted.")]}
    unchanged.check()


# --- passwords and the record ----------------------------------------------------------------


def test_password_change_is_not_versioned():
    user = make_user()
    services.user_set_password(user=user, password="another-long-pass")
    stored = User.objects.get(pk=user.pk)
    assert stored.check_password("another-long-pass")
    assert stored.version == 1
    assert UserVersion.objects.filter(user=user).count() == 1


def test_snapshot_is_the_contract_json():
    user = services.user_create(data=FULL_DATA, actor=None)
    snapshot = services.user_snapshot(User.objects.get(pk=user.pk))
    assert set(snapshot) == set(contract.TRACKED_FIELDS)
    assert snapshot["date_of_birth"] == "1985-04-12"
    assert snapshot["feature_flags"] == ["ROBO_ADVISOR"]
    assert snapshot["deleted"] is False


@pytest.mark.usefixtures("without_four_eyes")
def test_every_version_has_a_diff_and_numbers_are_consecutive(admin_user):
    user = make_user(actor=admin_user)
    user = services.user_update(user=user, data={"first_name": "B"}, actor=admin_user)
    user = services.user_change_status(
        user=user, status="VERIFICATION_FAILED", actor=admin_user, reason_code="NAME_MISMATCH"
    )
    user = services.user_set_flag(
        user=user, flag=FeatureFlag.CONSOLE, enabled=True, actor=admin_user
    )
    user = services.user_set_roles(user=user, roles=["back_office"], actor=admin_user)
    user = services.user_delete(user=user, actor=admin_user)
    user = services.user_restore(user=user, actor=admin_user)
    versions = list(UserVersion.objects.filter(user=user).order_by("version"))
    assert [v.version for v in versions] == list(range(1, 8))
    assert [sorted(v.changes) for v in versions[1:]] == [
        ["first_name"],
        ["status"],
        ["feature_flags"],
        ["roles"],
        ["deleted"],
        ["deleted"],
    ]
    assert all(v.author == admin_user for v in versions)
    assert User.objects.get(pk=user.pk).version == 7


def test_a_clock_of_its_own_stamps_every_row_a_change_writes():
    """Seeders replay history through the services with their own clock, not a patched one."""
    when = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
    user = services.user_create(data={"first_name": "Ann"}, actor=None, clock=lambda: when)
    later = when + dt.timedelta(days=2)
    user = services.user_change_status(
        user=user,
        status=Status.VERIFICATION_FAILED,
        actor=None,
        reason_code="DOCUMENT_EXPIRED",
        clock=lambda: later,
    )
    assert user.creation_datetime == when
    assert user.version_datetime == user.status_changed_at == later
    assert list(UserVersion.objects.filter(user=user).values_list("created_at", flat=True)) == [
        later,
        when,
    ]
    assert StatusChange.objects.filter(user=user).latest("changed_at").changed_at == later
