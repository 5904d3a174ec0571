"""A session that ends mid-work (issue 10.4): htmx gets a 401 with `HX-Redirect` to the sign-in
page, back to the page the person was on; never a sign-in page swapped into a region."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from tests.factories import (
    make_console_user,
    make_user,
    pass_second_factor,
    sign_in,
    totp_device,
)
from users import services
from users.forms import UserForm
from users.models import FeatureFlag, Role, Status, User

pytestmark = pytest.mark.django_db

HOST = "http://testserver"


def htmx_from(page: str, target: str | None = None) -> dict[str, str]:
    """The headers htmx sends from `page` (a path on this host)."""
    headers = {"HX-Request": "true", "HX-Current-URL": f"{HOST}{page}"}
    if target:
        headers["HX-Target"] = target
    return headers


def assert_sent_to_sign_in(response, back: str) -> None:
    assert response.status_code == 401
    target = urlsplit(response["HX-Redirect"])
    assert target.path == reverse("login")
    assert parse_qs(target.query) == {"next": [back]}
    assert b"<form" not in response.content
    assert "Location" not in response


def end_session(client: Client) -> None:
    """The session row is gone (expired, deleted); the browser still sends its cookie."""
    Session.objects.all().delete()


def form_post(user: User, **changes: str) -> dict[str, str]:
    data = {k: ("" if v is None else v) for k, v in UserForm.initial_for(user).items()}
    data.update(changes)
    return data


@pytest.fixture
def edited(admin_user) -> User:
    return make_user(actor=admin_user, first_name="Edith")


def test_field_hints_without_a_session(back_office_client, edited):
    page = reverse("users:user-edit", args=[edited.pk])
    end_session(back_office_client)
    response = back_office_client.post(
        reverse("users:user-validate-field"),
        {"_field": "first_name", "first_name": "Eve"},
        headers=htmx_from(page, "field-first_name"),
    )
    assert_sent_to_sign_in(response, page)


def test_edit_form_post_without_a_session_changes_nothing(back_office_client, edited):
    page = reverse("users:user-edit", args=[edited.pk])
    end_session(back_office_client)
    response = back_office_client.post(
        page, form_post(edited, first_name="Eve"), headers=htmx_from(page, "user-form")
    )
    assert_sent_to_sign_in(response, page)
    assert User.objects.get(pk=edited.pk).first_name == "Edith"


def test_board_move_without_a_session(compliance_client, edited):
    page = reverse("users:board") + "?q=Edith"
    end_session(compliance_client)
    response = compliance_client.post(
        reverse("users:board-move", kwargs={"pk": edited.pk}),
        {"status": Status.ACTIVE, "expected_version": edited.version},
        headers=htmx_from(page),
    )
    assert_sent_to_sign_in(response, page)
    assert User.objects.get(pk=edited.pk).status == edited.status


def test_flag_switch_without_a_session(admin_client, edited):
    page = reverse("users:user-detail", args=[edited.pk])
    end_session(admin_client)
    response = admin_client.post(
        reverse("users:user-flag", args=[edited.pk]),
        {"flag": FeatureFlag.ROBO_ADVISOR, "enabled": "1"},
        headers=htmx_from(page, "flags"),
    )
    assert_sent_to_sign_in(response, page)
    assert not User.objects.get(pk=edited.pk).flag_grants.exists()


def test_region_refresh_after_the_cookie_was_removed(admin_user, edited):
    """No session cookie at all: a GET of a region (the refreshes after a change)."""
    page = reverse("users:user-detail", args=[edited.pk])
    response = Client().get(page, headers=htmx_from(page, "history"))
    assert_sent_to_sign_in(response, page)


def test_console_flag_revoked_mid_session(back_office_client, back_office_user, admin_user):
    """The session row stays, but its user no longer may use the console: get_user is None."""
    page = reverse("users:user-list")
    services.user_set_flag(
        user=back_office_user, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user
    )
    response = back_office_client.get(page + "?q=x", headers=htmx_from(page, "results"))
    assert_sent_to_sign_in(response, page)


def test_the_region_url_is_never_the_way_back(back_office_client, edited):
    """Without HX-Current-URL (or with another host's), sign-in leads to the home page, not
    to a fragment URL."""
    page = reverse("users:user-detail", args=[edited.pk])
    end_session(back_office_client)
    bare = back_office_client.get(page, headers={"HX-Request": "true", "HX-Target": "history"})
    assert bare.status_code == 401
    assert bare["HX-Redirect"] == reverse("login")
    foreign = back_office_client.get(
        page,
        headers={
            "HX-Request": "true",
            "HX-Target": "history",
            "HX-Current-URL": "https://evil.example/users/",
        },
    )
    assert foreign.status_code == 401
    assert foreign["HX-Redirect"] == reverse("login")


def test_plain_requests_still_go_to_the_sign_in_page(client, edited):
    page = reverse("users:user-edit", args=[edited.pk])
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={page}"


def test_revoking_ones_own_console_flag_is_one_redirect(client, admin_user):
    """No refresh events for the other regions (each would be sent to sign-in): one
    HX-Redirect, to the detail page, which sends the person to sign in."""
    sign_in(client, admin_user)
    page = reverse("users:user-detail", args=[admin_user.pk])
    response = client.post(
        reverse("users:user-flag", args=[admin_user.pk]),
        {"flag": "CONSOLE", "enabled": "0", "confirm": "1"},
        headers=htmx_from(page, "flags"),
    )
    assert response["HX-Redirect"] == page
    assert "HX-Trigger" not in response
    assert FeatureFlag.CONSOLE not in User.objects.get(pk=admin_user.pk).flag_names()
    after = client.get(page, headers=htmx_from(page, "history"))
    assert_sent_to_sign_in(after, page)


def test_password_only_session_is_still_sent_to_the_second_factor(client):
    """The second-factor gate comes first, with its own HX-Redirect, back to the page the
    request came from."""
    person = make_console_user(Role.BACK_OFFICE)
    totp_device(person)
    sign_in(client, person, second_factor=False)
    page = reverse("users:user-create")
    response = client.post(
        reverse("users:user-validate-field"),
        {"_field": "first_name", "first_name": "Eve"},
        headers=htmx_from(page, "field-first_name"),
    )
    assert response.status_code == 401
    target = urlsplit(response["HX-Redirect"])
    assert target.path == reverse("signin-verify")
    assert parse_qs(target.query) == {"next": [page]}
    pass_second_factor(client, person)
    assert client.get(reverse("users:user-list")).status_code == 200


# --- CSRF failures ----------------------------------------------------------------------------

SESSION_ENDED = "Your session ended or the page was open too long."


def test_save_with_every_cookie_gone_says_the_session_ended(edited):
    """The browser lost every cookie (session and CSRF): the plain form POST."""
    page = reverse("users:user-edit", args=[edited.pk])
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        page, form_post(edited, first_name="Eve"), headers={"Referer": f"{HOST}{page}"}
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "You do not have permission" not in html
    assert "You do not have access" not in html
    assert SESSION_ENDED in html
    assert "your typed changes are kept in this browser" in html
    assert f'href="{reverse("login")}?next={page.replace("/", "%2F")}"' in html
    assert User.objects.get(pk=edited.pk).first_name == "Edith"


def test_csrf_failure_of_a_signed_in_person_changes_nothing(back_office_user, edited):
    page = reverse("users:user-edit", args=[edited.pk])
    client = Client(enforce_csrf_checks=True)
    sign_in(client, back_office_user)
    response = client.post(page, form_post(edited, first_name="Eve"))
    assert response.status_code == 403
    assert SESSION_ENDED in response.content.decode()
    assert 'href="/login/"' in response.content.decode()
    assert User.objects.get(pk=edited.pk).first_name == "Edith"


def test_csrf_failure_links_back_to_this_host_only(edited):
    page = reverse("users:user-edit", args=[edited.pk])
    client = Client(enforce_csrf_checks=True)
    response = client.post(page, {}, headers={"Referer": "https://evil.example/phish/"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "evil.example" not in html
    assert 'href="/login/"' in html


def test_htmx_csrf_failure_is_a_redirect_not_a_page_in_a_region(edited):
    page = reverse("users:user-edit", args=[edited.pk])
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("users:user-validate-field"),
        {"_field": "first_name", "first_name": "Eve"},
        headers=htmx_from(page, "field-first_name"),
    )
    assert response.status_code == 403
    target = urlsplit(response["HX-Redirect"])
    assert target.path == reverse("login")
    assert parse_qs(target.query) == {"next": [page]}
    assert response.content == b""


def test_the_edit_and_create_forms_are_kept_by_keep_js(back_office_client, edited):
    """keep.js comes from a file (the CSP allows no inline script) and acts on data-keep."""
    for page in (reverse("users:user-edit", args=[edited.pk]), reverse("users:user-create")):
        html = back_office_client.get(page).content.decode()
        assert 'src="/static/console/keep.js"' in html
        assert 'id="user-form" class="userform" method="post"' in html
        assert "data-keep" in html
        assert "<script>" not in html
