"""Issue 13.4: the access log. Every access to users' records writes one row (the detail page,
the file as of a date, the CSV export, the API's get and list), the rows are append-only, the
detail shows "Accessed by" to compliance and admins, and /access-log/ filters and exports."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from tests.factories import behind_the_services, make_console_user, make_user, sign_in
from tests.test_api import api_for
from users.models import ACCESS_IDS_CAP, AccessEvent, Role
from users.services.access import access_record

pytestmark = pytest.mark.django_db
Kind = AccessEvent.Kind
URL = "/access-log/"


def only_row() -> AccessEvent:
    (row,) = AccessEvent.objects.all()
    return row


def at(row: AccessEvent, when: dt.datetime) -> AccessEvent:
    with behind_the_services():
        AccessEvent.objects.filter(pk=row.pk).update(at=when)
    row.refresh_from_db()
    return row


# --- every kind of access writes its row ------------------------------------------------------


def test_opening_the_detail_writes_one_row(compliance_client, compliance_user, user):
    response = compliance_client.get(reverse("users:user-detail", args=[user.pk]))
    assert response.status_code == 200
    row = only_row()
    assert (row.kind, row.actor_id, row.subject_id) == (
        Kind.VIEWED_DETAIL,
        compliance_user.pk,
        user.pk,
    )
    assert row.ip_address == "127.0.0.1"
    assert row.query == ""
    assert row.row_count is None


def test_a_region_refreshing_itself_is_not_a_new_access(admin_client, user):
    url = reverse("users:user-detail", args=[user.pk])
    response = admin_client.get(url, headers={"HX-Request": "true", "HX-Target": "status"})
    assert response.status_code == 200
    assert not AccessEvent.objects.exists()


def test_a_missing_user_writes_nothing(admin_client):
    response = admin_client.get(reverse("users:user-detail", args=["U" + "0" * 26]))
    assert response.status_code == 404
    assert not AccessEvent.objects.exists()


def test_the_file_as_of_a_date_writes_one_row(compliance_client, compliance_user, user):
    url = reverse("users:user-file", args=[user.pk])
    assert compliance_client.get(url).status_code == 200  # the form alone: no record shown
    assert not AccessEvent.objects.exists()
    response = compliance_client.get(url, {"as_of": "2100-01-01", "format": "json"})
    assert response.status_code == 200
    row = only_row()
    assert (row.kind, row.actor_id, row.subject_id) == (
        Kind.VIEWED_FILE,
        compliance_user.pk,
        user.pk,
    )
    assert row.detail == {"as_of": "2100-01-01", "format": "json"}


def test_the_export_writes_its_filter_columns_and_count(admin_client, admin_user):
    for index in range(3):
        make_user(actor=admin_user, first_name=f"Exported{index}")
    make_user(actor=admin_user, first_name="Other")
    response = admin_client.get(reverse("users:user-export"), {"q": "Exported"})
    assert not AccessEvent.objects.exists()  # written when the stream ends
    body = b"".join(response.streaming_content).decode()
    row = only_row()
    header = body.splitlines()[0].split(",")
    assert (row.kind, row.actor_id, row.subject_id) == (Kind.EXPORTED, admin_user.pk, None)
    assert row.query == "q=Exported"
    assert row.columns == header
    assert row.row_count == 3 == len(body.splitlines()) - 1
    assert row.detail == {"complete": True}


def test_an_export_cut_short_is_logged_with_what_was_sent(admin_client, admin_user):
    make_user(actor=admin_user)
    response = admin_client.get(reverse("users:user-export"), {"variant": "excel"})
    next(iter(response.streaming_content))  # the byte order mark, then the client goes away:
    # the server closes the stream (here the test client's closing wrapper around it).
    response._iterator.close()
    row = only_row()
    assert row.kind == Kind.EXPORTED
    assert row.detail == {"complete": False, "variant": "excel"}
    assert row.row_count == 0


def test_the_api_get_writes_one_row(admin_user, user):
    api = api_for(admin_user)
    assert api.get(f"/api/users/{user.pk}").status_code == 200
    row = only_row()
    assert (row.kind, row.actor_id, row.subject_id) == (Kind.API_READ, admin_user.pk, user.pk)


def test_the_api_list_writes_the_ids_returned_and_the_query(admin_user):
    made = [make_user(actor=admin_user, first_name=f"Listed{i}") for i in range(3)]
    api = api_for(admin_user)
    response = api.get("/api/users/", query="first_name eq 'Listed*'", limit=2)
    assert response.status_code == 200
    returned = [item["id"] for item in response.json()["results"]]
    row = only_row()
    assert row.kind == Kind.API_LIST
    assert row.actor_id == admin_user.pk
    assert row.subject_id is None
    assert row.subject_ids == returned
    assert set(returned) <= {u.pk for u in made}
    assert row.row_count == 2
    assert row.detail == {"count": 3}
    assert "query=first_name+eq+%27Listed%2A%27" in row.query
    assert "limit=2" in row.query


def test_the_ids_are_capped(admin_user):
    ids = [f"U{index:026d}" for index in range(ACCESS_IDS_CAP + 5)]
    row = access_record(kind=Kind.API_LIST, actor=admin_user, subject_ids=ids, row_count=len(ids))
    assert row.subject_ids == ids[:ACCESS_IDS_CAP]
    assert row.row_count == ACCESS_IDS_CAP + 5


def test_a_reveal_fits_the_log(admin_user, user):
    """Point 13.3 (masking) writes "revealed field X for purpose Y" as such a row."""
    row = access_record(
        kind=Kind.REVEALED,
        actor=admin_user,
        subject=user,
        field="bank_account_number",
        purpose="Client called about a transfer",
    )
    row.refresh_from_db()
    assert (row.field, row.purpose) == ("bank_account_number", "Client called about a transfer")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_logging_a_detail_view_is_one_insert(django_assert_num_queries):
    # Outside a transaction, as a request runs: the chain's previous hash and both hashes are
    # computed by the INSERT itself (inside one, a savepoint wraps it, for a lost race).
    admin = make_console_user(Role.ADMIN)
    user = make_user()
    with django_assert_num_queries(1):
        first = access_record(kind=Kind.VIEWED_DETAIL, actor=admin, subject=user)
    second = access_record(kind=Kind.VIEWED_DETAIL, actor=admin, subject=user)
    assert (first.previous_hash, second.previous_hash) == ("", first.chain_hash)


# --- append-only --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_remove_a_row(admin_user, user):
    row = access_record(kind=Kind.VIEWED_DETAIL, actor=admin_user, subject=user)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AccessEvent.objects.filter(pk=row.pk).update(purpose="nothing to see")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AccessEvent.objects.filter(pk=row.pk).delete()
    assert AccessEvent.objects.get(pk=row.pk).purpose == ""


# --- the "Accessed by" panel --------------------------------------------------------------------


def panel_of(html: str) -> str:
    return html.split('id="accessed-by"')[1].split("</section>")[0]


def test_compliance_and_admins_see_who_accessed_the_user(client, user, admin_user):
    viewer = make_console_user(Role.BACK_OFFICE, email="looker@bank.example")
    access_record(kind=Kind.REVEALED, actor=viewer, subject=user, field="phone", purpose="KYC call")
    detail = reverse("users:user-detail", args=[user.pk])
    for person in (make_console_user(Role.COMPLIANCE), admin_user):
        sign_in(client, person)
        # The page draws the panel's frame; the rows follow it: htmx fetches the panel as soon
        # as the page has loaded, and without JavaScript a link opens the page drawn whole.
        later = panel_of(client.get(detail).content.decode())
        assert 'hx-trigger="load, refresh-accesses from:body"' in later
        assert f'href="{detail}?full=1#h-accessed-by"' in later
        assert "looker@bank.example" not in later
        region = client.get(detail, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="accessed-by")
        full = client.get(detail, {"full": "1"})
        for panel in (panel_of(region.content.decode()), panel_of(full.content.decode())):
            assert "looker@bank.example" in panel
            assert "KYC call" in panel
            assert "Revealed a field" in panel
            assert f'href="{URL}?subject={user.pk}"' in panel
            # The latest view of the page is the newest row.
            assert panel.index(person.email) < panel.index("looker@bank.example")


def test_back_office_does_not_see_the_panel(back_office_client, user):
    html = back_office_client.get(reverse("users:user-detail", args=[user.pk])).content.decode()
    assert 'id="accessed-by"' not in html
    assert f'href="{URL}"' not in html


def test_the_panel_shows_the_latest_twenty(admin_client, admin_user, user):
    old = access_record(kind=Kind.REVEALED, actor=admin_user, subject=user, purpose="oldest")
    at(old, timezone.now() - dt.timedelta(days=1))
    for _ in range(20):
        access_record(kind=Kind.VIEWED_DETAIL, actor=admin_user, subject=user)
    detail = reverse("users:user-detail", args=[user.pk])
    panel = panel_of(admin_client.get(detail, {"full": "1"}).content.decode())
    assert "oldest" not in panel
    assert panel.count("<tr>") == 1 + 20
    assert "The latest 20" in panel


# --- the access log page and its CSV ------------------------------------------------------------


def page_html(client, **query) -> str:
    response = client.get(URL, query)
    assert response.status_code == 200
    return response.content.decode().split('id="log-results"')[1]


def test_the_url_names():
    assert reverse("users:access-log") == URL
    assert reverse("users:access-log-export") == "/access-log/export.csv"


def test_only_compliance_and_admins_open_the_page(client, back_office_user, compliance_user):
    sign_in(client, back_office_user)
    assert client.get(URL).status_code == 403
    assert client.get(reverse("users:access-log-export")).status_code == 403
    sign_in(client, compliance_user)
    assert client.get(URL).status_code == 200
    assert f'href="{URL}"' in client.get(reverse("users:user-list")).content.decode()


@pytest.fixture
def log(admin_user):
    now = timezone.now()
    ann = make_user(actor=admin_user, email="ann@x.example", first_name="Ann")
    bob = make_user(actor=admin_user, email="bob@x.example", first_name="Bob")
    viewer = make_console_user(Role.BACK_OFFICE, email="viewer@bank.example")
    rows = {
        "old": at(
            access_record(kind=Kind.VIEWED_DETAIL, actor=viewer, subject=ann),
            now - dt.timedelta(days=10),
        ),
        "export": at(
            access_record(
                kind=Kind.EXPORTED,
                actor=admin_user,
                query="q=%3Dcmd",
                columns=["id", "email"],
                row_count=2,
            ),
            now - dt.timedelta(hours=2),
        ),
        "api": at(
            access_record(kind=Kind.API_LIST, actor=admin_user, subject_ids=[bob.pk], row_count=1),
            now - dt.timedelta(hours=1),
        ),
        "reveal": access_record(
            kind=Kind.REVEALED, actor=viewer, subject=bob, field="phone", purpose="=HYPERLINK()"
        ),
    }
    return {"ann": ann, "bob": bob, "viewer": viewer, **rows}


def test_newest_first(admin_client, log):
    html = page_html(admin_client)
    order = [
        html.index(text)
        for text in ("Revealed a field", "Queried users", "Exported users", "Opened the detail")
    ]
    assert order == sorted(order)


def test_filter_by_kind(admin_client, log):
    html = page_html(admin_client, kind=Kind.EXPORTED)
    assert "Exported users" in html
    assert "Opened the detail" not in html
    assert "q=%3Dcmd" in html
    assert "id, email" in html


def test_filter_by_person(admin_client, log):
    html = page_html(admin_client, person="viewer@")
    assert "Opened the detail" in html
    assert "Revealed a field" in html
    assert "Exported users" not in html


def test_filter_by_subject_id_finds_the_record_and_the_api_pages(admin_client, log):
    html = page_html(admin_client, subject=log["bob"].pk)
    assert "Revealed a field" in html
    assert "Queried users" in html
    assert "Opened the detail" not in html
    assert "Exported users" not in html
    html = page_html(admin_client, subject="ann@")
    assert "Opened the detail" in html
    assert "Revealed a field" not in html


def test_filter_by_dates(admin_client, log):
    today = timezone.localdate()
    html = page_html(admin_client, at_before=(today - dt.timedelta(days=5)).isoformat())
    assert "Opened the detail" in html
    assert "Revealed a field" not in html
    html = page_html(admin_client, at_after=today.isoformat())
    assert "Opened the detail" not in html


def test_a_bad_filter_says_what_is_wrong(admin_client, log):
    html = page_html(admin_client, kind="NOPE", at_after="yesterday")
    assert 'role="alert"' in html
    assert "Kind:" in html


def test_the_next_page_continues_where_the_first_ended(admin_client, admin_user, user, monkeypatch):
    monkeypatch.setattr("users.selectors.access.LOG_PAGE_SIZE", 2)
    for purpose in ("p1", "p2", "p3"):
        access_record(kind=Kind.REVEALED, actor=admin_user, subject=user, purpose=purpose)
    response = admin_client.get(URL)
    first = response.context["page"]
    assert [e.purpose for e in first.events] == ["p3", "p2"]
    second = admin_client.get(URL, {"after": first.next_after}).context["page"]
    assert [e.purpose for e in second.events] == ["p1"]
    assert second.next_after is None


def test_the_csv_has_the_filtered_rows_with_formulas_defused(admin_client, log):
    response = admin_client.get(reverse("users:access-log-export"), {"kind": Kind.REVEALED})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["at", "kind", "actor", "subject"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["kind"] == "REVEALED"
    assert row["actor"] == "viewer@bank.example"
    assert row["subject"] == log["bob"].pk
    assert row["field"] == "phone"
    assert row["purpose"] == "'=HYPERLINK()"


def test_the_csv_of_an_export_row(admin_client, log):
    response = admin_client.get(reverse("users:access-log-export"), {"kind": Kind.EXPORTED})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["query"], row["columns"], row["row_count"]) == ("q=%3Dcmd", "id email", "2")


def test_a_bad_filter_on_the_csv_goes_back_to_the_page(admin_client):
    response = admin_client.get(reverse("users:access-log-export"), {"kind": "NOPE"})
    assert response.status_code == 302
    assert response["Location"].startswith(URL)
