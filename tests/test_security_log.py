"""Issue 10.7: the security log page (admins): newest first, a page at a time, filters by kind,
person, address and dates (bad input says what is wrong), and the filtered rows as CSV."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import behind_the_services, make_console_user, sign_in
from users.models import Role, SecurityEvent
from users.selectors import security as selectors
from users.services.security import security_event

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind
URL = "/security-log/"


def event(kind, *, at=None, **kwargs) -> SecurityEvent:
    row = security_event(kind=kind, **kwargs)
    if at is not None:
        with behind_the_services():
            SecurityEvent.objects.filter(pk=row.pk).update(at=at)
        row.refresh_from_db()
    return row


def page_html(client, **query) -> str:
    response = client.get(URL, query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_url_names():
    assert reverse("users:security-log") == URL
    assert reverse("users:security-log-export") == "/security-log/export.csv"


def test_only_admins_open_the_page_and_the_csv(client, back_office_user, compliance_user):
    for person in (back_office_user, compliance_user):
        sign_in(client, person)
        assert client.get(URL).status_code == 403
        assert client.get(reverse("users:security-log-export")).status_code == 403
        assert "Security log" not in client.get(reverse("users:user-list")).content.decode()


def test_admins_see_the_navigation_link(admin_client):
    page = admin_client.get(reverse("users:user-list")).content.decode()
    assert f'href="{URL}"' in page


def test_newest_first_with_who_and_whom(admin_client, admin_user):
    now = timezone.now()
    subject = make_console_user(Role.BACK_OFFICE, email="target@bank.example")
    event(Kind.SIGN_IN_FAILED, username="nobody@x.example", at=now - dt.timedelta(hours=2))
    event(Kind.FACTOR_RESET, actor=admin_user, subject=subject, at=now - dt.timedelta(hours=1))
    html = page_html(admin_client).split('id="log-results"')[1]
    assert html.index("Factors reset") < html.index("Sign-in failed")
    assert "target@bank.example" in html
    assert "nobody@x.example" in html


def test_filter_by_kind(admin_client):
    event(Kind.SIGN_IN_FAILED, username="failed@x.example")
    event(Kind.LOCKED_OUT, username="locked@x.example")
    html = page_html(admin_client, kind=Kind.LOCKED_OUT)
    assert "locked@x.example" in html
    assert "failed@x.example" not in html


def test_filter_by_person_matches_actor_subject_or_typed_address(admin_client, admin_user):
    subject = make_console_user(Role.BACK_OFFICE, email="carol@bank.example")
    event(Kind.ROLE_GRANTED, actor=admin_user, subject=subject)
    event(Kind.SIGN_IN_FAILED, username="CAROL@bank.example")
    event(Kind.SIGN_IN_FAILED, username="dave@bank.example")
    html = page_html(admin_client, person="carol")
    assert "Role granted" in html
    assert "CAROL@bank.example" in html
    assert "dave@bank.example" not in html


def test_filter_by_address_and_dates(admin_client, rf):
    request = rf.get("/", REMOTE_ADDR="203.0.113.7")
    now = timezone.now()
    event(Kind.SIGN_IN_FAILED, username="there@x.example", request=request)
    event(Kind.SIGN_IN_FAILED, username="elsewhere@x.example")
    html = page_html(admin_client, address="203.0.113.7")
    assert "there@x.example" in html
    assert "elsewhere@x.example" not in html
    event(Kind.SIGN_IN_FAILED, username="old@x.example", at=now - dt.timedelta(days=10))
    since = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    html = page_html(admin_client, at_after=since)
    assert "there@x.example" in html
    assert "old@x.example" not in html
    until = (timezone.localdate() - dt.timedelta(days=5)).isoformat()
    html = page_html(admin_client, at_before=until)
    assert "old@x.example" in html
    assert "there@x.example" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "NOPE"}, "Select a valid choice"),
        ({"address": "not-an-ip"}, "valid IPv4 or IPv6 address"),
        ({"at_after": "2026-13-45"}, "Enter a valid date"),
        ({"person": "a\x00b"}, "Null characters are not allowed"),
        ({"after": "abc"}, "showing the newest events"),
    ],
)
def test_bad_input_gets_a_clear_message(admin_client, query, message):
    event(Kind.SIGN_IN_FAILED, username="shown@x.example")
    html = page_html(admin_client, **query)
    assert message in html


def test_the_results_region_alone_for_htmx(admin_client):
    event(Kind.LOCKED_OUT, username="locked@x.example")
    response = admin_client.get(
        URL, {"kind": Kind.LOCKED_OUT}, headers={"HX-Request": "true", "HX-Target": "log-results"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="log-results"')
    assert "locked@x.example" in html
    assert "<html" not in html


def test_pages_by_keyset(admin_client):
    with behind_the_services():
        SecurityEvent.objects.all().delete()  # the fixture's own admin's role grant, newest
    now = timezone.now()
    for n in range(selectors.LOG_PAGE_SIZE + 3):
        event(Kind.SIGN_IN_FAILED, username=f"u{n:03d}@x.example", at=now - dt.timedelta(minutes=n))
    first = page_html(admin_client)
    assert "u000@x.example" in first
    assert f"u{selectors.LOG_PAGE_SIZE - 1:03d}@x.example" in first
    assert f"u{selectors.LOG_PAGE_SIZE:03d}@x.example" not in first
    page = selectors.security_log_page(selectors.security_log())
    assert f"after={page.next_after}" in first
    second = page_html(admin_client, after=page.next_after)
    assert f"u{selectors.LOG_PAGE_SIZE:03d}@x.example" in second
    assert "u000@x.example" not in second
    assert "Older events" not in second


def test_keyset_breaks_ties_on_the_same_instant():
    at = timezone.now()
    rows = [event(Kind.SIGN_IN, at=at) for _ in range(5)]
    seen = []
    page = selectors.security_log_page(selectors.security_log(), size=2)
    while True:
        seen += [row.pk for row in page.events]
        if page.next_after is None:
            break
        page = selectors.security_log_page(
            selectors.security_log(), after=str(page.next_after), size=2
        )
    assert seen == sorted((row.pk for row in rows), reverse=True)


def test_csv_export_of_the_filtered_rows(admin_client, admin_user):
    event(Kind.LOCKED_OUT, username="=cmd|' /C calc'!A0")
    event(Kind.LOCKED_OUT, username="second@x.example", detail={"failures": 5})
    event(Kind.SIGN_IN, actor=admin_user, subject=admin_user)
    response = admin_client.get(reverse("users:security-log-export"), {"kind": Kind.LOCKED_OUT})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "at,kind,actor,subject,username,ip_address,user_agent,detail"
    assert len(lines) == 3
    assert all(",LOCKED_OUT," in line for line in lines[1:])
    assert "second@x.example" in lines[1]  # newest first
    assert '"{""failures"": 5}"' in lines[1]
    assert "'=cmd" in lines[2]  # a formula is defused


def test_csv_export_with_bad_filters_goes_back_with_a_message(admin_client):
    response = admin_client.get(
        reverse("users:security-log-export"), {"address": "nope"}, follow=True
    )
    assert response.redirect_chain[0][0].startswith(URL)
    assert "Fix the filters before exporting." in response.content.decode()


def test_the_export_link_inside_the_swapped_region_keeps_the_filters(admin_client):
    response = admin_client.get(
        URL, {"kind": Kind.LOCKED_OUT}, headers={"HX-Request": "true", "HX-Target": "log-results"}
    )
    assert 'href="/security-log/export.csv?kind=LOCKED_OUT"' in response.content.decode()
