"""Tamper evidence (issue 13.2): each history row carries the hash of its content and of the row
before it, one chain per user; `manage.py verify_audit` names the first row that no longer holds."""

from __future__ import annotations

import datetime as dt
import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection

from tests.factories import behind_the_services, make_user
from users import chain
from users.models import StatusChange, User, UserVersion
from users.selectors.audit import verify_history
from users.services import user_change_status, user_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def edited(admin_user) -> User:
    """A user with three versions and two status changes (creation, one move)."""
    user = make_user(actor=admin_user, first_name="Ann")
    user_update(user=user, data={"first_name": "Anna"}, actor=admin_user)
    user_change_status(user=user, status="WAITING_FOR_SIGNATURE", actor=admin_user)
    return User.objects.get(pk=user.pk)


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def history(user: User) -> list:
    return [
        row
        for row, _ in chain.in_chain_order(
            UserVersion.objects.filter(user=user), StatusChange.objects.filter(user=user)
        )
    ]


def test_every_row_links_to_the_one_before(edited):
    rows = history(edited)
    kinds = [(type(row).__name__, row.version) for row in rows]
    assert kinds == [
        ("UserVersion", 1),
        ("StatusChange", 1),
        ("UserVersion", 2),
        ("UserVersion", 3),
        ("StatusChange", 3),
    ]
    previous = chain.GENESIS
    for row, content in chain.in_chain_order(
        UserVersion.objects.filter(user=edited), StatusChange.objects.filter(user=edited)
    ):
        assert row.chain_hash == chain.link(previous, content)
        previous = row.chain_hash
    assert edited.history_hash == rows[-1].chain_hash


def test_a_clean_database_verifies(edited, admin_user):
    out = verify()
    users = User.objects.count()
    rows = UserVersion.objects.count() + StatusChange.objects.count()
    assert f"History verified: {rows} rows in {users} users' chains hold." in out
    assert "Digest of the chains' heads: " in out


def test_json_values_hash_as_they_read_back():
    """Tuples are lists and a whole float is its integer (jsonb prints 1e20 as digits), so a
    row hashes the same before and after the database."""
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)

    def content(changes):
        return chain.version_content(
            user_id="U1", version=1, at=at, author_id=None, changes=changes
        )

    written = content({"x": (None, 1e20), "y": [0.1, {"b": 1, "a": 2.0}]})
    read_back = content({"y": [0.1, {"a": 2, "b": 1}], "x": [None, 10**20]})
    assert chain.link("", written) == chain.link("", read_back)
    assert chain.link("", written) != chain.link("", content({"x": [None, 1]}))


def expect_break(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        verify()


def test_a_changed_version_row_is_named(edited):
    target = UserVersion.objects.get(user=edited, version=2)
    with behind_the_services():
        UserVersion.objects.filter(pk=target.pk).update(changes={"first_name": ["Ann", "Eve"]})
    expect_break(rf"users_userversion id={target.pk} \(user {edited.pk}, version 2\): its content")


def test_a_changed_status_row_is_named(edited):
    target = StatusChange.objects.get(user=edited, version=3)
    with behind_the_services():
        StatusChange.objects.filter(pk=target.pk).update(reason="backdated")
    expect_break(rf"users_statuschange id={target.pk} \(user {edited.pk}, version 3\)")


def test_a_removed_version_is_named(edited):
    with behind_the_services():
        UserVersion.objects.filter(user=edited, version=2).delete()
    expect_break(rf"users_userversion id=\d+ \(user {edited.pk}, version 3\): version 2 is missing")


def test_rows_removed_at_the_end_are_noticed(edited):
    with behind_the_services():
        StatusChange.objects.filter(user=edited, version=3).delete()
    expect_break(rf"users_user id={edited.pk} \(user {edited.pk}, version 3\): the chain's head")


def test_a_rewritten_record_version_is_noticed(edited):
    with behind_the_services():
        User.objects.filter(pk=edited.pk).update(version=4)
    expect_break(r"the record is at version 4, its history at 3")


def test_every_broken_user_is_counted_and_others_still_verify(edited, admin_user):
    other = make_user(actor=admin_user)
    with behind_the_services():
        UserVersion.objects.filter(user=edited, version=1).update(
            created_at=dt.datetime.now(dt.UTC)
        )
    result = verify_history()
    assert [b.user_id for b in result.breaks] == [edited.pk]
    assert other.pk not in {b.user_id for b in result.breaks}


@pytest.mark.postgres
def test_altered_with_triggers_disabled_then_named(edited):
    """The issue's case: a database superuser switches the triggers off and edits a row."""
    target = UserVersion.objects.get(user=edited, version=2)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER waits for no pending check
        cursor.execute("ALTER TABLE users_userversion DISABLE TRIGGER USER")
        cursor.execute("UPDATE users_userversion SET author_id = NULL WHERE id = %s", [target.pk])
        cursor.execute("ALTER TABLE users_userversion ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    expect_break(rf"users_userversion id={target.pk} \(user {edited.pk}, version 2\)")


def test_the_seeders_chains_verify(db):
    call_command(
        "seed_users", count=60, batch=16, seed=3, until=dt.date(2026, 6, 1), stdout=StringIO()
    )
    result = verify_history()
    assert result.ok, result.breaks[:3]
    assert result.users == 60
    assert not User.objects.filter(history_hash="").exists()


def test_the_migration_chains_history_written_before_it(edited, admin_user):
    """Migration 0012 fills the hashes of rows written before the chain existed."""
    other = make_user(actor=admin_user)
    expected = {row.pk: row.chain_hash for row in history(edited)}
    with behind_the_services():
        UserVersion.objects.update(chain_hash="")
        StatusChange.objects.update(chain_hash="")
        User.objects.update(history_hash="")
    assert not verify_history().ok
    migration = importlib.import_module("users.migrations.0012_history_chain")
    # What fill_chains uses of a schema editor (a real one cannot open inside a test's
    # transaction on SQLite).
    editor = SimpleNamespace(connection=connection, execute=connection.cursor().execute)
    migration.fill_chains(django_apps, editor)
    assert verify_history().ok
    assert {row.pk: row.chain_hash for row in history(edited)} == expected
    assert User.objects.get(pk=other.pk).history_hash
