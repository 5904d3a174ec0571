"""What the database refuses by itself (issue 13.1): write-once email and phone, a version per
change, append-only history. PostgreSQL triggers (django-pgtrigger, migration 0011); on SQLite
the migration does nothing and the services stay the guard (`test_services.py`)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from tests.factories import make_user, phone_number
from users import contract
from users.models import VERSIONED_COLUMNS, SecurityEvent, StatusChange, User, UserVersion
from users.services import user_change_status, user_update
from users.services.security import security_event

pytestmark = pytest.mark.django_db


def test_versioned_columns_are_the_registrys_tracked_columns():
    """The trigger's column list is written out in models.py (the registry sits above it):
    it must name exactly the columns of the tracked fields, so a new field cannot slip past."""
    tracked = [
        column for name in contract.TRACKED_FIELDS for column in contract.FIELDS[name].columns
    ]
    assert sorted(VERSIONED_COLUMNS) == sorted(tracked)


def test_every_history_table_and_the_user_declare_their_triggers():
    names = {model: {t.name for t in model._meta.triggers} for model in (User, UserVersion)}
    assert names[User] == {"email_phone_write_once", "version_per_change"}
    for model in (UserVersion, StatusChange, SecurityEvent):
        assert {t.name for t in model._meta.triggers} == {"append_only"}


def refused(message: str):
    """The statement fails with an IntegrityError naming the rule; the transaction survives."""
    return pytest.raises(IntegrityError, match=message)


def reread(user: User) -> User:
    return User.objects.get(pk=user.pk)


@pytest.fixture
def contact(admin_user):
    return make_user(actor=admin_user, email="ann@example.com", phone=phone_number(900007))


@pytest.mark.postgres
def test_orm_update_of_a_set_email_is_refused(contact):
    with refused("write-once"), transaction.atomic():
        User.objects.filter(pk=contact.pk).update(
            email="other@example.com", version=F("version") + 1
        )
    assert reread(contact).email == "ann@example.com"


@pytest.mark.postgres
def test_orm_update_of_a_set_phone_is_refused(contact):
    with refused("write-once"), transaction.atomic():
        User.objects.filter(pk=contact.pk).update(
            phone=phone_number(900008), version=F("version") + 1
        )
    assert reread(contact).phone == contact.phone


@pytest.mark.postgres
def test_an_empty_email_may_still_be_set_with_a_version(admin_user):
    user = make_user(actor=admin_user, first_name="No", last_name="Mail", email=None)
    assert user.email is None
    user_update(user=user, data={"email": "late@example.com"}, actor=admin_user)
    assert reread(user).email == "late@example.com"


@pytest.mark.postgres
def test_orm_update_of_a_tracked_field_without_a_version_is_refused(contact):
    with refused("raises its version by exactly one"), transaction.atomic():
        User.objects.filter(pk=contact.pk).update(first_name="Sneaky")
    assert reread(contact).first_name == contact.first_name


@pytest.mark.postgres
def test_a_plain_save_of_a_changed_field_is_refused(contact):
    contact.bank_account_number = "BE71096123456769"
    contact.bank_account_number_type = "IBAN"
    with refused("raises its version by exactly one"), transaction.atomic():
        contact.save()
    assert reread(contact).bank_account_number != "BE71096123456769"


@pytest.mark.postgres
@pytest.mark.parametrize("step", [0, 2, -1])
def test_a_version_that_does_not_rise_by_one_is_refused(contact, step):
    with refused("raises its version by exactly one"), transaction.atomic():
        User.objects.filter(pk=contact.pk).update(first_name="Changed", version=F("version") + step)
    assert reread(contact).version == contact.version


@pytest.mark.postgres
def test_untracked_columns_change_without_a_version(contact):
    """Sign-in bookkeeping (last_login, the password hash) is not part of the record's history."""
    User.objects.filter(pk=contact.pk).update(last_login=contact.creation_datetime)
    contact.set_password("a-new-password-2026")
    contact.save(update_fields=["password"])
    assert reread(contact).version == contact.version


@pytest.mark.postgres
def test_the_services_still_write(contact, admin_user):
    user_update(user=contact, data={"first_name": "Anna"}, actor=admin_user)
    user_change_status(user=contact, status="WAITING_FOR_SIGNATURE", actor=admin_user)
    assert reread(contact).version == contact.version + 2


@pytest.mark.postgres
def test_a_version_row_cannot_be_updated_or_deleted(contact):
    version = UserVersion.objects.filter(user=contact).first()
    with refused("append-only"), transaction.atomic():
        UserVersion.objects.filter(pk=version.pk).update(changes={})
    with refused("append-only"), transaction.atomic():
        version.delete()
    assert UserVersion.objects.get(pk=version.pk).changes == version.changes


@pytest.mark.postgres
def test_a_status_change_row_cannot_be_updated_or_deleted(contact, admin_user):
    user_change_status(user=contact, status="WAITING_FOR_SIGNATURE", actor=admin_user)
    row = StatusChange.objects.filter(user=contact).first()
    with refused("append-only"), transaction.atomic():
        StatusChange.objects.filter(pk=row.pk).update(reason="rewritten")
    with refused("append-only"), transaction.atomic():
        StatusChange.objects.filter(pk=row.pk).delete()
    assert StatusChange.objects.get(pk=row.pk).reason == row.reason


@pytest.mark.postgres
def test_a_security_event_cannot_be_updated_or_deleted(contact):
    event = security_event(kind="SIGN_IN", actor=contact, subject=contact)
    with refused("append-only"), transaction.atomic():
        SecurityEvent.objects.filter(pk=event.pk).update(kind="SIGN_OUT")
    with refused("append-only"), transaction.atomic():
        event.delete()
    assert SecurityEvent.objects.get(pk=event.pk).kind == "SIGN_IN"


@pytest.mark.postgres
def test_the_refusals_are_installed_in_the_database():
    """Not only declared: the migration created them (a guard against a skipped migration)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE 'pgtrigger_%' AND NOT t.tgisinternal"
        )
        installed = {(table, name.split("_")[1]) for table, name in cursor.fetchall()}
    assert {table for table, _ in installed} >= {
        "users_user",
        "users_userversion",
        "users_statuschange",
        "users_securityevent",
    }
