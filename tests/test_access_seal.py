"""The access log's tamper evidence (issue 13.2): seals over stretches of its rows, each linked
to the one before; `manage.py verify_audit` recomputes them and names a seal that no longer
holds, and `manage.py seal_access_log` seals what was written since the last seal."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import behind_the_services, make_user
from users import chain
from users.models import AccessEvent, AccessSeal
from users.selectors.audit import verify_access_log
from users.services.access import access_log_seal, access_record

Kind = AccessEvent.Kind


@pytest.fixture
def logged(admin_user):
    """Five accesses, two minutes old (settled), and one just now (not yet)."""
    subject = make_user(actor=admin_user)
    rows = [
        access_record(kind=Kind.VIEWED_DETAIL, actor=admin_user, subject=subject) for _ in range(5)
    ]
    with behind_the_services():
        AccessEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
            at=timezone.now() - dt.timedelta(minutes=2)
        )
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
    assert f"Access log verified: {len(logged['rows'])} rows in 1 seals hold; 1 rows" in out


def test_a_changed_row_breaks_its_seal(logged):
    seal = access_log_seal()
    with behind_the_services():
        AccessEvent.objects.filter(pk=logged["rows"][2].pk).update(purpose="nothing to see")
    with pytest.raises(CommandError, match=rf"users_accessseal id={seal.pk} .*content"):
        verify()


def test_a_removed_row_breaks_its_seal(logged):
    access_log_seal()
    with behind_the_services():
        AccessEvent.objects.filter(pk=logged["rows"][0].pk).delete()
    result = verify_access_log()
    assert not result.ok
    assert "5 rows were sealed, 4 are there" in result.breaks[0]


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
