"""API tokens (users/tokens.py), the console page that issues and revokes them, and the command."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from users import services
from users.models import ApiToken, Role
from users.services import tokens


def test_issue_stores_only_a_hash(admin_user):
    token, raw = tokens.issue_token(user=admin_user, name="  CRM  ")
    assert raw.startswith("ucs_")
    assert len(raw) > 40
    assert token.name == "CRM"
    assert token.prefix == raw[:12]
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.prefix, token.token_hash, token.name}
    assert tokens.authenticate_token(raw) == admin_user


def test_issue_refuses_bad_names_and_non_console_users(admin_user):
    with pytest.raises(ValidationError) as info:
        tokens.issue_token(user=admin_user, name=" ")
    assert "name" in info.value.message_dict
    with pytest.raises(ValidationError):
        tokens.issue_token(user=admin_user, name="x" * 101)
    investor = make_user()
    with pytest.raises(ValidationError) as info:
        tokens.issue_token(user=investor, name="x")
    assert info.value.message_dict["user"][0].endswith("would be refused.")
    assert not ApiToken.objects.exists()


@pytest.mark.usefixtures("without_four_eyes")
def test_authenticate_refuses_unknown_revoked_and_lost_access(admin_user, back_office_user):
    assert tokens.authenticate_token(None) is None
    assert tokens.authenticate_token("") is None
    assert tokens.authenticate_token("ucs_" + "x" * 43) is None
    assert tokens.authenticate_token("not-ours") is None
    token, raw = tokens.issue_token(user=back_office_user, name="x")
    assert tokens.authenticate_token(f"  {raw} ") == back_office_user
    services.user_set_roles(user=back_office_user, roles=[], actor=admin_user)
    assert tokens.authenticate_token(raw) is None
    services.user_set_roles(user=back_office_user, roles=[Role.BACK_OFFICE], actor=admin_user)
    assert tokens.authenticate_token(raw) == back_office_user
    services.user_delete(user=back_office_user, actor=admin_user)
    assert tokens.authenticate_token(raw) is None
    services.user_restore(user=back_office_user, actor=admin_user)
    revoked = tokens.revoke_token(token=token, actor=admin_user)
    assert revoked.revoked_by == admin_user
    assert tokens.authenticate_token(raw) is None
    again = tokens.revoke_token(token=token, actor=back_office_user)
    assert again.revoked_at == revoked.revoked_at
    assert again.revoked_by == admin_user


def test_last_used_is_recorded_at_most_once_a_minute(admin_user):
    token, raw = tokens.issue_token(user=admin_user, name="x")
    assert token.last_used_at is None
    tokens.authenticate_token(raw)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    tokens.authenticate_token(raw)
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    tokens.authenticate_token(raw)
    token.refresh_from_db()
    assert token.last_used_at > first - dt.timedelta(seconds=1)


# --- the console page --------------------------------------------------------------------------


def test_page_needs_manage_api_tokens(back_office_client):
    url = reverse("users:api-tokens")
    assert Client().get(url).status_code == 302  # to the sign-in page
    assert back_office_client.get(url).status_code == 403
    assert back_office_client.post(url, {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_page_issues_a_token_shown_once(admin_client, admin_user):
    """Post/redirect/get: the POST issues and redirects, the page after it shows the secret
    once (never stored by a cache); a reload shows the list only and issues nothing."""
    url = reverse("users:api-tokens")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"No tokens yet." in page.content
    response = admin_client.post(url, {"name": "CRM integration"})
    assert response.status_code == 302
    assert response["Location"] == url
    assert ApiToken.objects.count() == 1

    shown = admin_client.get(url)
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    secret = shown.context["secret"]
    assert secret.encode() in shown.content
    assert b'id="new-token-secret"' in shown.content
    assert tokens.authenticate_token(secret) == admin_user

    # The reload: listed by prefix only, and no second token.
    again = admin_client.get(url)
    assert secret.encode() not in again.content
    assert b'id="new-token-secret"' not in again.content
    assert shown.context["new_token"].prefix.encode() in again.content
    assert b"CRM integration" in again.content
    assert ApiToken.objects.count() == 1


def test_a_new_secret_is_shown_only_to_its_session(admin_client, admin_user):
    admin_client.post(reverse("users:api-tokens"), {"name": "CRM integration"})
    other = Client()
    sign_in(other, admin_user)
    page = other.get(reverse("users:api-tokens"))
    assert page.context.get("secret") is None
    assert admin_client.get(reverse("users:api-tokens")).context["secret"]


def test_page_shows_name_errors(admin_client):
    response = admin_client.post(reverse("users:api-tokens"), {"name": ""})
    assert response.status_code == 422
    assert b"Give the token a name." in response.content
    assert not ApiToken.objects.exists()


def test_page_revokes_any_token_after_a_confirmation(admin_client, admin_user, back_office_user):
    token, raw = tokens.issue_token(user=back_office_user, name="Back office script")
    url = reverse("users:api-token-revoke", args=[token.pk])
    page = admin_client.get(reverse("users:api-tokens"))
    assert f'href="{url}"'.encode() in page.content  # a link to the question, not a POST form

    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Revoke token “Back office script”?" in html
    assert f'<form class="stack" method="post" action="{url}">' in html
    assert "Yes, revoke" in html
    assert "it has never been used" in html
    assert tokens.authenticate_token(raw) == back_office_user  # asking revokes nothing

    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_by == admin_user
    assert tokens.authenticate_token(raw) is None
    # Asking again about a revoked token says so instead of asking.
    again = admin_client.get(url, follow=True)
    assert "was already revoked" in again.content.decode()
    assert "Revoke token “Back office script”?" not in again.content.decode()
    assert admin_client.get(reverse("users:api-token-revoke", args=[9999])).status_code == 404
    assert admin_client.post(reverse("users:api-token-revoke", args=[9999])).status_code == 404


def test_revoke_needs_the_permission(back_office_client, admin_user):
    token, raw = tokens.issue_token(user=admin_user, name="x")
    url = reverse("users:api-token-revoke", args=[token.pk])
    assert back_office_client.get(url).status_code == 403
    assert back_office_client.post(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the sign-in page
    assert tokens.authenticate_token(raw) == admin_user


# --- the command -------------------------------------------------------------------------------


def test_command_prints_a_working_token(db):
    user = make_console_user(Role.BACK_OFFICE, email="Script@Bank.example")
    out, err = StringIO(), StringIO()
    call_command(
        "issue_api_token", "script@bank.example", "--name", "Nightly sync", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    assert tokens.authenticate_token(raw) == user
    assert ApiToken.objects.get().name == "Nightly sync"
    assert "cannot be shown again" in err.getvalue()


def test_command_refuses_unknown_or_non_console_users(db):
    with pytest.raises(CommandError, match="No user with email"):
        call_command("issue_api_token", "nobody@example.com", stdout=StringIO())
    investor = make_user(email="investor@example.com")
    with pytest.raises(CommandError, match="may not use the console"):
        call_command("issue_api_token", investor.email, stdout=StringIO())
    assert not ApiToken.objects.exists()


# --- invitations ---------------------------------------------------------------------------------


def test_invitation_link_with_a_bad_token_is_refused(client, user):
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    for path in (
        reverse("users:invite-accept", args=[uid, "bad-token"]),
        reverse("users:invite-accept", args=["!!!", "bad-token"]),
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert b"This link does not work" in response.content
    assert not user.has_usable_password()
