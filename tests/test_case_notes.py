"""Case notes (issue 14.2): append-only notes on a user, written alone or with a status move,
shown in the detail's timeline between the moves, searchable (`notes eq '*passport*'`) and part
of the client file."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user
from tests.test_services import Unchanged, errors_of, refused
from users import policy, query, services
from users.models import CASE_NOTE_MAX_LENGTH, CaseNote, Status, User
from users.selectors.client_file import client_file

pytestmark = pytest.mark.django_db
WFV, WFS, FAILED = (
    Status.WAITING_FOR_VERIFICATION,
    Status.WAITING_FOR_SIGNATURE,
    Status.VERIFICATION_FAILED,
)


def at(day: int, hour: int = 12) -> dt.datetime:
    return timezone.make_aware(dt.datetime(2026, 3, day, hour))


def htmx(target: str) -> dict:
    return {"headers": {"HX-Request": "true", "HX-Target": target}}


# --- who ------------------------------------------------------------------------------------


def test_those_who_move_statuses_write_notes(admin_user, compliance_user, back_office_user):
    assert policy.may_add_note(compliance_user)
    assert policy.may_add_note(admin_user)
    assert not policy.may_add_note(back_office_user)


# --- the service ----------------------------------------------------------------------------


def test_a_note_records_who_when_and_what(compliance_user, user):
    note = services.case_note_add(
        user=user,
        text="  Passport checked against the scan.  ",
        actor=compliance_user,
        clock=lambda: at(3),
    )
    stored = CaseNote.objects.get(pk=note.pk)
    assert (stored.user, stored.author, stored.created_at, stored.text) == (
        user,
        compliance_user,
        at(3),
        "Passport checked against the scan.",
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("   ", "required"),
        ("x" * (CASE_NOTE_MAX_LENGTH + 1), "max_length"),
        ("a\x00b", "null_characters"),
    ],
)
def test_a_bad_note_is_refused(compliance_user, user, text, code):
    exc = refused(services.case_note_add, user=user, text=text, actor=compliance_user)
    assert errors_of(exc)["note"][0][0] == code
    assert not CaseNote.objects.exists()


def test_back_office_may_not_write_notes(back_office_user, user):
    with pytest.raises(PermissionDenied):
        services.case_note_add(user=user, text="Hello", actor=back_office_user)
    assert not CaseNote.objects.exists()


def test_a_deleted_user_takes_no_notes(admin_user, compliance_user, user):
    services.user_delete(user=user, actor=admin_user)
    exc = refused(services.case_note_add, user=user, text="Late", actor=compliance_user)
    assert errors_of(exc)["deleted"][0][0] == "deleted"


def test_a_note_with_a_move_has_the_moves_time(compliance_user, user):
    moved = services.user_change_status(
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="DOCUMENT_EXPIRED",
        note="Passport expired in January.",
        clock=lambda: at(5),
    )
    note = CaseNote.objects.get(user=user)
    change = moved.status_changes.get(to_status=FAILED)
    assert note.created_at == change.changed_at == at(5)
    assert (note.author, note.text) == (compliance_user, "Passport expired in January.")


def test_a_bad_note_refuses_the_move_too(compliance_user, user):
    unchanged = Unchanged(user)
    exc = refused(
        services.user_change_status,
        user=user,
        status=WFS,
        actor=compliance_user,
        note="x" * (CASE_NOTE_MAX_LENGTH + 1),
    )
    assert errors_of(exc)["note"][0][0] == "max_length"
    unchanged.check()
    assert not CaseNote.objects.exists()


def test_a_refused_move_writes_no_note(compliance_user, user):
    refused(
        services.user_change_status,
        user=user,
        status=FAILED,
        actor=compliance_user,
        note="Should not stay",
    )  # no reason code
    assert not CaseNote.objects.exists()


@pytest.mark.postgres
def test_notes_are_append_only_in_the_database(compliance_user, user):
    note = services.case_note_add(user=user, text="Original", actor=compliance_user)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseNote.objects.filter(pk=note.pk).update(text="Rewritten")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseNote.objects.filter(pk=note.pk).delete()
    assert CaseNote.objects.get(pk=note.pk).text == "Original"


def test_notes_declare_the_append_only_trigger():
    assert {t.name for t in CaseNote._meta.triggers} == {"append_only"}


# --- the detail page --------------------------------------------------------------------------


def test_add_a_note_from_the_detail(compliance_client, compliance_user, user):
    url = reverse("users:user-note", args=[user.pk])
    response = compliance_client.post(url, {"note": "Called the client."}, **htmx("note"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="note"')
    assert "Note added to the case." in html
    assert "refresh-history" in response.headers["HX-Trigger"]
    assert CaseNote.objects.get(user=user).text == "Called the client."

    # Without JavaScript: back to the page, with a message.
    response = compliance_client.post(url, {"note": "Second call."}, follow=True)
    assert "Note added to the case." in response.content.decode()
    assert CaseNote.objects.filter(user=user).count() == 2


def test_an_empty_note_is_refused_on_the_page(compliance_client, user):
    url = reverse("users:user-note", args=[user.pk])
    response = compliance_client.post(url, {"note": " "}, **htmx("note"))
    assert response.status_code == 200
    assert "Write the note first: it is empty." in response.content.decode()
    assert "HX-Trigger" not in response.headers
    assert not CaseNote.objects.exists()


def test_back_office_gets_no_form_and_may_not_post(back_office_client, user):
    html = back_office_client.get(reverse("users:user-detail", args=[user.pk])).content.decode()
    assert 'id="case-note"' not in html
    response = back_office_client.post(reverse("users:user-note", args=[user.pk]), {"note": "x"})
    assert response.status_code == 403
    assert not CaseNote.objects.exists()


def test_the_timeline_shows_notes_between_the_moves_in_time_order(
    compliance_client, compliance_user, user
):
    services.case_note_add(user=user, text="First look: scan blurred.", actor=compliance_user)
    services.user_change_status(
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="DOCUMENT_UNREADABLE",
        note="Asked for a new scan.",
    )
    services.case_note_add(user=user, text="New scan received.", actor=compliance_user)
    services.user_change_status(user=user, status=WFS, actor=compliance_user)
    response = compliance_client.get(
        reverse("users:user-detail", args=[user.pk]), **htmx("history")
    )
    html = response.content.decode()
    timeline = html[html.index('class="timeline"') :]
    order = [
        timeline.index("Waiting for signature</span>"),
        timeline.index("New scan received."),
        timeline.index("Asked for a new scan."),
        timeline.index("Identity document unreadable"),
        timeline.index("First look: scan blurred."),
    ]
    assert order == sorted(order)


def test_a_move_with_a_note_from_the_detail_and_the_board(compliance_client, admin_user):
    first, second = make_user(actor=admin_user), make_user(actor=admin_user)
    compliance_client.post(
        reverse("users:user-status", args=[first.pk]),
        {"status": WFS, "note": "Documents complete."},
        **htmx("status"),
    )
    assert CaseNote.objects.get(user=first).text == "Documents complete."
    compliance_client.post(
        reverse("users:board-move", args=[second.pk]),
        {"status": FAILED, "reason_code": "NAME_MISMATCH", "note": "Maiden name on the ID."},
        **htmx("board"),
    )
    assert User.objects.get(pk=second.pk).status == FAILED
    assert CaseNote.objects.get(user=second).text == "Maiden name on the ID."


# --- the query language ---------------------------------------------------------------------


@pytest.fixture
def noted(compliance_user, admin_user):
    passport = make_user(actor=admin_user, last_name="Passport")
    services.case_note_add(user=passport, text="Checked the PASSPORT twice.", actor=compliance_user)
    services.case_note_add(user=passport, text="Passport fine.", actor=compliance_user)
    other = make_user(actor=admin_user, last_name="Other")
    services.case_note_add(user=other, text="Utility bill received.", actor=compliance_user)
    quiet = make_user(actor=admin_user, last_name="Quiet")
    return passport, other, quiet


def matching(text: str) -> set[str]:
    return set(User.objects.filter(query.parse_query(text)).values_list("pk", flat=True))


def test_notes_are_searchable_whatever_the_case(noted):
    passport, other, quiet = noted
    assert matching("notes eq '*passport*'") == {passport.pk}
    assert matching("notes eq 'passport*'") == {passport.pk}
    assert matching("notes eq '*RECEIVED.'") == {other.pk}
    assert matching("notes eq 'utility bill received.'") == {other.pk}
    assert matching("notes in ['*bill*', '*twice*']") == {passport.pk, other.pk}
    everyone = set(User.objects.values_list("pk", flat=True))
    assert matching("notes eq null") == everyone - {passport.pk, other.pk}
    assert quiet.pk in matching("notes eq null")


def test_notes_take_no_ordering_or_ranges():
    with pytest.raises(query.QueryError, match="compares numbers and dates"):
        query.parse_query("notes gt 'a'")
    with pytest.raises(query.QueryError, match="notes"):
        query.parse("notes eq 'a' orderby notes")


def test_the_list_finds_users_by_their_notes(compliance_client, noted):
    passport, _, _ = noted
    response = compliance_client.get(
        reverse("users:user-list"), {"q": "notes eq '*passport*'", "mode": "advanced"}
    )
    assert [row.pk for row in response.context["users"]] == [passport.pk]


# --- the client file ------------------------------------------------------------------------


def test_the_client_file_has_the_notes_up_to_its_day(compliance_user, admin_user):
    user = services.user_create(data={"first_name": "Ann"}, actor=admin_user, clock=lambda: at(2))
    services.case_note_add(user=user, text="Day three.", actor=compliance_user, clock=lambda: at(3))
    services.case_note_add(user=user, text="Day five.", actor=compliance_user, clock=lambda: at(5))
    file = client_file(user, as_of=dt.date(2026, 3, 4), generated_by=None)
    assert [(note["text"], note["by"]["id"]) for note in file["case_notes"]] == [
        ("Day three.", compliance_user.pk)
    ]
    later = client_file(user, as_of=dt.date(2026, 3, 6), generated_by=None)
    assert [note["text"] for note in later["case_notes"]] == ["Day three.", "Day five."]
    # The notes have their own hash in the manifest, so a changed note shows.
    assert "case_notes" in file["manifest"]["sections"]
    assert file["manifest"]["sections"]["case_notes"] != later["manifest"]["sections"]["case_notes"]


def test_the_client_file_page_and_command_show_the_notes(
    compliance_client, compliance_user, admin_user
):
    user = services.user_create(data={"first_name": "Ann"}, actor=admin_user, clock=lambda: at(2))
    services.case_note_add(
        user=user, text="Seen at the branch.", actor=compliance_user, clock=lambda: at(3)
    )
    page = compliance_client.get(
        reverse("users:user-file", args=[user.pk]), {"as_of": "2026-03-04"}
    )
    assert "Seen at the branch." in page.content.decode()
    out = StringIO()
    call_command("export_client_file", user.pk, "--as-of", "2026-03-04", stdout=out)
    assert json.loads(out.getvalue())["case_notes"][0]["text"] == "Seen at the branch."


def test_notes_validation_error_is_keyed_note():
    with pytest.raises(ValidationError) as info:
        services.notes.clean_note_text("")
    assert set(info.value.error_dict) == {"note"}
