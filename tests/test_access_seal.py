"""The access log's tamper evidence (issue 13.2): each row carries the hash of its content and
of the previous row of the same actor, and seals over stretches of its rows fix the chains'
heads, each seal linked to the one before; `manage.py verify_audit` walks the chains, recomputes
the seals and names a row or a seal that no longer holds, and `manage.py seal_access_log` seals
what was written since the last seal."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import threading
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.factories import behind_the_services, make_console_user, make_user
from users import chain
from users.models import AccessEvent, AccessSeal, Role
from users.selectors.audit import verify_access_log
from users.services.access import access_log_seal, access_record

Kind = AccessEvent.Kind


@pytest.fixture
def logged(admin_user):
    """Five accesses, two minutes old (settled), and one just now (not yet)."""
    subject = make_user(actor=admin_user)
    two_minutes_ago = timezone.now() - dt.timedelta(minutes=2)
    rows = [
        access_record(
            kind=Kind.VIEWED_DETAIL,
            actor=admin_user,
            subject=subject,
            clock=lambda: two_minutes_ago,
        )
        for _ in range(5)
    ]
    fresh = access_record(kind=Kind.API_READ, actor=admin_user, subject=subject)
    return {"subject": subject, "rows": rows, "fresh": fresh}


def verify() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def test_a_seal_covers_the_settled_rows_and_links_them(logged):
    seal = access_log_seal()
    rows = logged["rows"]
    assert (seal.first_id, seal.last_id, seal.row_count) == (1, rows[-1].pk, len(rows))
    head = chain.GENESIS
    for row in AccessEvent.objects.filter(pk__lte=seal.last_id).order_by("pk"):
        head = chain.link(head, chain.access_content(row))
    assert seal.chain_hash == head
    assert access_log_seal() is None  # the fresh row is not settled yet
    second = access_log_seal(settle_seconds=0)
    assert (second.first_id, second.previous_hash) == (seal.last_id + 1, seal.chain_hash)
    assert second.last_id == logged["fresh"].pk


def test_verify_audit_passes_and_counts_what_is_not_sealed_yet(logged):
    access_log_seal()
    assert verify_access_log().unsealed == 1
    out = verify()
    assert "Access log verified: 6 rows in 1 people's chains hold, and 5 rows in 1 seals" in out
    assert "; 1 rows written since the last seal" in out


def test_a_changed_row_breaks_its_seal(logged):
    seal = access_log_seal()
    changed = logged["rows"][2]
    with behind_the_services():
        AccessEvent.objects.filter(pk=changed.pk).update(purpose="nothing to see")
    result = verify_access_log()
    assert f"users_accessevent id={changed.pk} " in result.breaks[0]
    assert result.breaks[0].endswith("its content was changed")
    assert result.breaks[1].startswith(f"users_accessseal id={seal.pk} ")
    with pytest.raises(CommandError, match=rf"users_accessevent id={changed.pk} .*content"):
        verify()


def test_a_removed_row_breaks_its_seal(logged):
    access_log_seal()
    with behind_the_services():
        AccessEvent.objects.filter(pk=logged["rows"][0].pk).delete()
    result = verify_access_log()
    assert not result.ok
    # The chain names the row after it; the seal counts one row fewer.
    assert result.breaks[0].startswith(f"users_accessevent id={logged['rows'][1].pk} ")
    assert "changed or removed" in result.breaks[0]
    assert "5 rows were sealed, 4 are there" in result.breaks[1]


def test_each_row_carries_its_hash_over_the_previous_row_of_the_same_person(logged, user):
    rows = list(AccessEvent.objects.order_by("pk"))
    previous = chain.GENESIS
    for row in rows:
        assert row.previous_hash == previous
        assert row.chain_hash == chain.link(previous, chain.access_row_content(row))
        previous = row.chain_hash
    # Another person's accesses are a chain of their own, from the start.
    other = make_console_user(Role.COMPLIANCE)
    theirs = access_record(kind=Kind.VIEWED_DETAIL, actor=other, subject=user, clock=lambda: at)
    assert theirs.previous_hash == chain.GENESIS
    mine = access_record(kind=Kind.VIEWED_DETAIL, actor=rows[0].actor, subject=user)
    assert mine.previous_hash == rows[-1].chain_hash
    # What the INSERT hashed in SQL is what Python computes from the row read back.
    for row in AccessEvent.objects.filter(pk__in=[theirs.pk, mine.pk]):
        assert row.chain_hash == chain.link(row.previous_hash, chain.access_row_content(row))
    assert verify_access_log().ok


at = timezone.now()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_persons_accesses_at_once_stay_one_chain():
    """Eight of one person's accesses at once all read the same previous row; the unique
    (actor, previous hash) lets one through at a time, the others are written again after it:
    eight rows, one unbroken chain."""
    admin = make_console_user(Role.ADMIN)
    subject = make_user(actor=admin)
    barrier = threading.Barrier(8, timeout=10)
    outcomes: list[object] = []

    def look() -> None:
        try:
            barrier.wait()
            outcomes.append(access_record(kind=Kind.VIEWED_DETAIL, actor=admin, subject=subject))
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(outcome, AccessEvent) for outcome in outcomes), outcomes
    rows = list(AccessEvent.objects.filter(actor=admin).order_by("pk"))
    assert len(rows) == 8
    assert not list(chain.access_chain_breaks(rows))


def test_a_removed_seal_breaks_the_next(logged):
    first = access_log_seal()
    access_log_seal(settle_seconds=0)
    with behind_the_services():
        AccessSeal.objects.filter(pk=first.pk).delete()
    assert "the seal before it was changed or removed" in verify_access_log().breaks[0]


def test_one_seal_per_stretch(logged):
    seal = access_log_seal()
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessSeal.objects.create(
            first_id=seal.first_id, last_id=seal.last_id, row_count=1, chain_hash="x"
        )


def test_the_command_seals_everything_settled(logged):
    out = io.StringIO()
    call_command("seal_access_log", "--settle", "0", stdout=out)
    assert "Sealed access rows 1.." in out.getvalue()
    assert verify_access_log().unsealed == 0
    out = io.StringIO()
    call_command("seal_access_log", stdout=out)
    assert out.getvalue().strip() == "Nothing to seal."
    with pytest.raises(CommandError, match="--settle is a number of seconds"):
        call_command("seal_access_log", "--settle", "-1")


@pytest.mark.postgres
def test_seals_are_append_only_in_the_database(logged):
    seal = access_log_seal()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AccessSeal.objects.filter(pk=seal.pk).update(chain_hash="0" * 64)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AccessSeal.objects.filter(pk=seal.pk).delete()


def test_the_migration_chains_access_rows_written_before_it(logged, user):
    """Migration 0023 fills the hashes of access rows written before the chain existed."""
    other = make_console_user(Role.COMPLIANCE)
    access_record(kind=Kind.VIEWED_DETAIL, actor=other, subject=user)
    expected = dict(AccessEvent.objects.values_list("pk", "chain_hash"))
    with behind_the_services():  # hashes that mean nothing (the columns are unique per actor)
        for pk in expected:
            AccessEvent.objects.filter(pk=pk).update(previous_hash=f"stale {pk}", chain_hash="")
    assert not verify_access_log().ok
    migration = importlib.import_module("users.migrations.0023_access_chain")
    # What chain_earlier_rows uses of a schema editor (a real one cannot open inside a test's
    # transaction on SQLite).
    editor = SimpleNamespace(connection=connection, execute=connection.cursor().execute)
    migration.chain_earlier_rows(django_apps, editor)
    assert dict(AccessEvent.objects.values_list("pk", "chain_hash")) == expected
    assert verify_access_log().ok
