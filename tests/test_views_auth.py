"""Sign in, sign out, password change, and the error pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from users.models import Role, User, UserVersion
from users.views.signin import NEUTRAL_REFUSAL

PASSWORD = "correct-horse-battery"


def test_login_page_renders_without_inline_script_or_style(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'type="password"' in html
    assert "<script>" not in html
    assert "style=" not in html
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


def test_anonymous_user_is_sent_to_sign_in(client, db):
    response = client.get(reverse("users:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_password_leads_to_the_second_factor(client, back_office_user):
    """The password opens the second-factor step only (enrolment for a user without one)."""
    response = client.post(
        reverse("login"), {"username": back_office_user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('signin-enrol')}?next=%2F"
    assert client.session["_auth_user_id"] == back_office_user.pk
    assert client.get(reverse("users:user-list"))["Location"].startswith(reverse("signin-enrol"))


def test_wrong_password_is_refused_with_a_message(client, back_office_user):
    response = client.post(
        reverse("login"), {"username": back_office_user.email, "password": "nope-nope-nope"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert NEUTRAL_REFUSAL in response.content.decode()


def test_user_without_console_access_cannot_sign_in(client, admin_user):
    outsider = make_user(actor=admin_user)
    outsider.set_password(PASSWORD)
    User.objects.filter(pk=outsider.pk).update(password=outsider.password)
    response = client.post(reverse("login"), {"username": outsider.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_post_and_ends_the_session(back_office_client):
    assert back_office_client.get(reverse("logout")).status_code == 405
    response = back_office_client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in back_office_client.session


def test_base_layout_shows_who_is_signed_in_and_nav_by_role(client, db):
    compliance = make_console_user(Role.COMPLIANCE, first_name="Carla", last_name="Check")
    sign_in(client, compliance)
    html = client.get(reverse("password_change")).content.decode()
    assert "Carla Check" in html
    assert "Compliance" in html
    assert 'action="/logout/"' in html
    assert reverse("admin:index") not in html  # only admins see the admin site link
    assert 'data-hotkey="/"' in html
    assert '"allowEval":false' in html
    assert "X-CSRFToken" in html


def test_password_change_keeps_session_and_writes_no_version(client, back_office_user):
    sign_in(client, back_office_user)
    versions = UserVersion.objects.filter(user=back_office_user).count()
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-passphrase-42",
            "new_password2": "a-much-better-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    back_office_user.refresh_from_db()
    assert back_office_user.check_password("a-much-better-passphrase-42")
    # The session survives the new password hash.
    assert client.get(reverse("password_change_done")).status_code == 200
    # Auth internals are not versioned (contract).
    assert UserVersion.objects.filter(user=back_office_user).count() == versions


def test_password_change_signs_out_other_sessions(client, back_office_user):
    other = Client()
    sign_in(other, back_office_user)
    assert other.get(reverse("password_change_done")).status_code == 200
    sign_in(client, back_office_user)
    client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-passphrase-42",
            "new_password2": "a-much-better-passphrase-42",
        },
    )
    assert client.get(reverse("password_change_done")).status_code == 200
    response = other.get(reverse("password_change_done"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_password_change_does_not_overwrite_concurrent_edits(client, back_office_user, admin_user):
    sign_in(client, back_office_user)
    # Another admin renames this user after the request loaded it: the password change must not
    # write the old name back.
    from users import services

    services.user_update(user=back_office_user, data={"first_name": "Renamed"}, actor=admin_user)
    client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-passphrase-42",
            "new_password2": "a-much-better-passphrase-42",
        },
    )
    back_office_user.refresh_from_db()
    assert back_office_user.first_name == "Renamed"


def test_password_change_errors_change_nothing(client, back_office_user):
    sign_in(client, back_office_user)
    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": "short", "new_password2": "other"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your old password was entered incorrectly" in html
    back_office_user.refresh_from_db()
    assert back_office_user.check_password(PASSWORD)


@pytest.mark.parametrize("path", ["/no-such-page/"])
def test_404_page_uses_the_layout(back_office_client, path):
    response = back_office_client.get(path)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
