"""A user's file as of any date (issue 13.5): the record rebuilt from the versions, the status
timeline, the versions, a manifest; in the console (compliance, admin) and from a shell."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import behind_the_services
from users import contract, services
from users.models import ChangeRequest, User, UserVersion
from users.selectors.client_file import NotYet, client_file

pytestmark = pytest.mark.django_db
DAY0 = dt.date(2026, 3, 2)


def noon(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def clock_of(day: dt.date):
    return lambda: noon(day)


EDITS = [
    {"first_name": "Anna"},
    {"counter_account": {"bank_account_number": "BE71096123456769"}},
    {"status": "WAITING_FOR_SIGNATURE"},
    {
        "address": {
            "line1": "Rue Haute 1",
            "city": "Bruxelles",
            "postal_code": "1000",
            "country_code": "BE",
        }
    },
    {"last_name": "Peeters", "language": "nl-BE"},
]


@pytest.fixture
def edited(admin_user, compliance_user):
    """A user created on DAY0 and edited five times, a day apart; the snapshot of each day.
    The counter account is four-eyes: proposed by the admin, approved by compliance the same
    day; a second account proposed on day 3 is rejected on day 4 (the record keeps the first)."""
    user = services.user_create(
        data={"first_name": "Ann", "last_name": "Janssens", "email": "ann@example.com"},
        actor=admin_user,
        clock=clock_of(DAY0),
    )
    snapshots = {DAY0: contract.snapshot(user)}
    for n, data in enumerate(EDITS, start=1):
        day = DAY0 + dt.timedelta(days=n)
        if "status" in data:
            user = services.user_change_status(
                user=user, status=data["status"], actor=admin_user, clock=clock_of(day)
            )
        else:
            user = services.user_update(user=user, data=data, actor=admin_user, clock=clock_of(day))
        if "counter_account" in data:
            request = ChangeRequest.objects.get(user=user, state=ChangeRequest.State.PENDING)
            services.change_request_approve(
                change_request=request, actor=compliance_user, clock=clock_of(day)
            )
            user = User.objects.get(pk=user.pk)
        if n == 3:
            services.user_update(
                user=user,
                data={"counter_account": {"bank_account_number": "NL91ABNA0417164300"}},
                actor=admin_user,
                change_reason="Client moved banks",
                clock=clock_of(day),
            )
        if n == 4:
            request = ChangeRequest.objects.get(user=user, state=ChangeRequest.State.PENDING)
            services.change_request_reject(
                change_request=request,
                actor=compliance_user,
                reason="Not the client's own account",
                clock=clock_of(day),
            )
        snapshots[day] = contract.snapshot(user)
    return user, snapshots


def test_the_file_of_each_day_is_the_record_of_that_day(edited, admin_user):
    user, snapshots = edited
    for number, (day, snapshot) in enumerate(snapshots.items(), start=1):
        file = client_file(user, as_of=day, generated_by=admin_user)
        record = {name: file["record"][name] for name in contract.TRACKED_FIELDS}
        assert record == snapshot, day
        assert file["record"]["version"] == number
        assert [v["version"] for v in file["versions"]] == list(range(1, number + 1))
    # A day between edits shows the last one before it; a later day, today's record.
    later = client_file(user, as_of=DAY0 + dt.timedelta(days=30), generated_by=None)
    assert later["record"]["version"] == user.version


def test_the_timeline_and_versions_name_who(edited, admin_user):
    user, _ = edited
    file = client_file(user, as_of=DAY0 + dt.timedelta(days=10), generated_by=admin_user)
    assert [(row["from"], row["to"]) for row in file["status_timeline"]] == [
        (None, "WAITING_FOR_VERIFICATION"),
        ("WAITING_FOR_VERIFICATION", "WAITING_FOR_SIGNATURE"),
    ]
    assert {row["author"]["id"] for row in file["versions"]} == {admin_user.pk}
    assert file["versions"][1]["changes"] == {"first_name": ["Ann", "Anna"]}
    assert file["generated_by"]["id"] == admin_user.pk


def test_four_eyes_requests_as_they_stood(edited, admin_user, compliance_user):
    user, _ = edited
    approved_day = client_file(user, as_of=DAY0 + dt.timedelta(days=2), generated_by=None)
    (approved,) = approved_day["change_requests"]
    assert approved["state"] == "APPROVED"
    assert approved["proposed_by"]["id"] == admin_user.pk
    assert approved["decided_by"]["id"] == compliance_user.pk
    assert approved_day["versions"][-1]["approved_by"]["id"] == compliance_user.pk
    pending_day = client_file(user, as_of=DAY0 + dt.timedelta(days=3), generated_by=None)
    second = pending_day["change_requests"][1]
    assert (second["state"], second["decided_by"], second["reason"]) == (
        "PENDING",
        None,
        "Client moved banks",
    )
    rejected_day = client_file(user, as_of=DAY0 + dt.timedelta(days=4), generated_by=None)
    second = rejected_day["change_requests"][1]
    assert second["state"] == "REJECTED"
    assert second["decision_reason"] == "Not the client's own account"
    assert rejected_day["record"]["counter_account"]["bank_account_number"] == "BE71096123456769"


def test_the_access_log_as_it_stood(edited, compliance_client, compliance_user):
    """Who saw the user, up to the file's day: a detail view today is in today's file only."""
    user, _ = edited
    compliance_client.get(reverse("users:user-detail", args=[user.pk]))
    then = client_file(user, as_of=DAY0 + dt.timedelta(days=10), generated_by=None)
    assert then["access_log"] == []
    now = client_file(user, as_of=timezone.localdate(), generated_by=None)
    assert [(row["kind"], row["by"]["id"]) for row in now["access_log"]] == [
        ("VIEWED_DETAIL", compliance_user.pk)
    ]


def test_the_manifest_hashes_each_section(edited):
    user, _ = edited
    file = client_file(user, as_of=DAY0 + dt.timedelta(days=10), generated_by=None)
    manifest = file["manifest"]
    for name, digest in manifest["sections"].items():
        text = json.dumps(file[name], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).hexdigest() == digest
    assert manifest["chain"] == {"rows": 8, "head": user.history_hash, "holds": True}


def test_a_tampered_history_says_so_in_the_manifest(edited):
    user, _ = edited
    with behind_the_services():
        UserVersion.objects.filter(user=user, version=2).update(changes={"first_name": ["A", "B"]})
    file = client_file(user, as_of=DAY0 + dt.timedelta(days=10), generated_by=None)
    assert file["manifest"]["chain"]["holds"] is False


def test_before_the_user_existed(edited):
    user, _ = edited
    with pytest.raises(NotYet, match="did not exist yet on 2026-03-01"):
        client_file(user, as_of=DAY0 - dt.timedelta(days=1), generated_by=None)


# --- the console ------------------------------------------------------------------------------


def url(user) -> str:
    return reverse("users:user-file", args=[user.pk])


def test_compliance_gets_the_form_then_the_page(edited, compliance_client):
    user, _ = edited
    response = compliance_client.get(url(user))
    assert response.status_code == 200
    assert f'value="{timezone.localdate().isoformat()}"' in response.content.decode()
    page = compliance_client.get(url(user), {"as_of": "2026-03-04", "format": "html"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Record at version 3" in html
    assert "BE71096123456769" in html
    last_name = contract.FIELD_LABELS["last_name"]
    assert f'<th scope="row">{last_name}</th><td>Janssens</td>' in html  # not yet Peeters
    assert "chain holds" in html


def test_the_json_download(edited, admin_client):
    user, _ = edited
    response = admin_client.get(url(user), {"as_of": "2026-03-07", "format": "json"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="client-file-{user.pk}-2026-03-07.json"'
    )
    file = json.loads(response.content)
    assert file["record"]["last_name"] == "Peeters"
    assert file["manifest"]["chain"]["holds"] is True


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("", "Choose the day the file is to show."),
        ("05/03/2026", "Type a date as YYYY-MM-DD."),
        ("2026-02-30", "Type a date as YYYY-MM-DD."),
        ("0001-01-01", "Choose a day from 1900 on."),
        ("2026-02-01", "The user did not exist yet on 2026-02-01."),
        ("2026-03-04\x00", "Type a date as YYYY-MM-DD."),
    ],
)
def test_bad_dates_are_refused_with_a_message(edited, compliance_client, as_of, message):
    user, _ = edited
    response = compliance_client.get(url(user), {"as_of": as_of})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_back_office_may_not(edited, back_office_client):
    user, _ = edited
    assert back_office_client.get(url(user), {"as_of": "2026-03-04"}).status_code == 403
    detail = back_office_client.get(reverse("users:user-detail", args=[user.pk]))
    assert "File as of a date" not in detail.content.decode()


def test_the_detail_links_it_for_compliance(edited, compliance_client):
    user, _ = edited
    detail = compliance_client.get(reverse("users:user-detail", args=[user.pk]))
    assert f'href="{url(user)}"' in detail.content.decode()


# --- the command ------------------------------------------------------------------------------


def test_the_command_writes_the_same_file(edited, tmp_path):
    user, _ = edited
    out = StringIO()
    call_command("export_client_file", user.pk, "--as-of", "2026-03-04", stdout=out)
    file = json.loads(out.getvalue())
    assert file["record"]["version"] == 3
    assert file["generated_by"] is None
    target = tmp_path / "file.json"
    call_command(
        "export_client_file",
        user.pk,
        "--as-of",
        "2026-03-04",
        "--output",
        str(target),
        stderr=StringIO(),
    )
    assert json.loads(target.read_text())["manifest"]["sections"] == file["manifest"]["sections"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--as-of", "2026-03-04"], "is not a user id"),
        (["U" + "0" * 26, "--as-of", "2026-03-04"], "No user"),
        (["{user}", "--as-of", "yesterday"], "is not a date as YYYY-MM-DD"),
        (["{user}", "--as-of", "2020-01-01"], "did not exist yet"),
    ],
)
def test_the_command_refuses_bad_input(edited, args, message):
    user, _ = edited
    args = [arg.format(user=user.pk) for arg in args]
    with pytest.raises(CommandError, match=message):
        call_command("export_client_file", *args, stdout=StringIO())
