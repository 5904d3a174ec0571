"""Issue 10.2 (unlock): an admin lifts a sign-in lockout on the security log page (by the
address typed, which may name no account), or `manage.py unlock_account EMAIL` does when no
admin can sign in. django-axes' own reset clears the account; `--ip` / the IP field also the
per-address limit. Each unlock is an UNLOCKED row in the security log."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_console_user, pass_second_factor, sign_in, totp_device
from users import policy
from users.models import Role, SecurityEvent, User
from users.selectors.security import address_is_locked, locked_out_until
from users.services.factors import has_factor
from users.services.security import account_unlock
from users.views.common import FACTOR_VERIFIED_AT

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind
PASSWORD = "correct-horse-battery"
URL = "/security-log/unlock/"


def lock_out(email: str, *, times: int = 5, ip: str = "127.0.0.1") -> None:
    """Fail the password step `times` times for `email` from `ip`."""
    client = Client(REMOTE_ADDR=ip)
    for _ in range(times):
        client.post(reverse("login"), {"username": email, "password": "wrong-wrong"})


def can_sign_in(email: str, ip: str = "127.0.0.1") -> bool:
    client = Client(REMOTE_ADDR=ip)
    client.post(reverse("login"), {"username": email, "password": PASSWORD})
    return "_auth_user_id" in client.session


def test_policy_only_admins_unlock(admin_user, back_office_user, compliance_user):
    assert policy.may_unlock(User.objects.get(pk=admin_user.pk)) is True
    assert policy.may_unlock(User.objects.get(pk=back_office_user.pk)) is False
    assert policy.may_unlock(User.objects.get(pk=compliance_user.pk)) is False


def test_the_service_lifts_the_lockout_and_logs_it(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    lock_out(user.email.upper())
    assert locked_out_until(user.email) is not None
    assert not can_sign_in(user.email)
    cleared = account_unlock(username=f" {user.email.title()} ", actor=admin_user)
    assert cleared >= 1
    assert locked_out_until(user.email) is None
    assert not AccessAttempt.objects.filter(username=user.email.lower()).exists()
    row = SecurityEvent.objects.filter(kind=Kind.UNLOCKED).get()
    assert row.actor == admin_user
    assert row.subject == user
    assert row.username == user.email.lower()
    assert can_sign_in(user.email)


def test_an_unknown_account_is_unlocked_by_the_address_typed(admin_user):
    lock_out("ghost@nowhere.example")
    assert locked_out_until("ghost@nowhere.example") is not None
    account_unlock(username="ghost@nowhere.example", actor=admin_user)
    assert locked_out_until("ghost@nowhere.example") is None
    row = SecurityEvent.objects.get(kind=Kind.UNLOCKED)
    assert row.subject is None
    assert row.username == "ghost@nowhere.example"


@override_settings(SIGN_IN_ADDRESS_FAILURE_LIMIT=3)
def test_the_address_limit_is_cleared_only_when_asked(admin_user):
    lock_out("a@x.example", times=2, ip="198.51.100.9")
    lock_out("b@x.example", times=1, ip="198.51.100.9")
    assert address_is_locked("198.51.100.9")
    account_unlock(username="a@x.example", actor=admin_user)
    assert address_is_locked("198.51.100.9")
    account_unlock(username="a@x.example", actor=admin_user, ip_address="198.51.100.9")
    assert not address_is_locked("198.51.100.9")
    assert not AccessFailureLog.objects.filter(ip_address="198.51.100.9").exists()
    row = SecurityEvent.objects.filter(kind=Kind.UNLOCKED).first()
    assert row.detail["ip_address"] == "198.51.100.9"


def test_an_empty_address_is_refused():
    with pytest.raises(ValidationError, match="Type the address"):
        account_unlock(username="  ", actor=None)
    assert not SecurityEvent.objects.filter(kind=Kind.UNLOCKED).exists()


# --- the security log page --------------------------------------------------------------------


def test_a_locked_out_row_offers_unlock_and_the_button_unlocks(admin_client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    lock_out(user.email)
    page = admin_client.get("/security-log/", {"kind": Kind.LOCKED_OUT}).content.decode()
    assert f'aria-label="Unlock {user.email}"' in page
    response = admin_client.post(
        URL, {"username": user.email, "query": "kind=LOCKED_OUT"}, follow=True
    )
    assert response.redirect_chain[0][0] == "/security-log/?kind=LOCKED_OUT"
    assert f"Unlocked {user.email}" in response.content.decode()
    assert locked_out_until(user.email) is None
    assert SecurityEvent.objects.filter(kind=Kind.UNLOCKED, actor=admin_user).exists()
    page = admin_client.get("/security-log/", {"kind": Kind.LOCKED_OUT}).content.decode()
    assert f'aria-label="Unlock {user.email}"' not in page


def test_unlock_by_address_typed_with_an_ip(admin_client):
    lock_out("ghost@nowhere.example", ip="198.51.100.20")
    response = admin_client.post(
        URL, {"username": "ghost@nowhere.example", "ip_address": "198.51.100.20"}, follow=True
    )
    assert "Unlocked ghost@nowhere.example and 198.51.100.20" in response.content.decode()
    assert locked_out_until("ghost@nowhere.example") is None
    assert not AccessFailureLog.objects.filter(ip_address="198.51.100.20").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": ""}, "Type the address the account signs in with"),
        ({"username": "a\x00b@x.example"}, "Type the address the account signs in with"),
        ({"username": "a@x.example", "ip_address": "999.1.1.1"}, "is not an IP address"),
    ],
)
def test_bad_input_changes_nothing(admin_client, data, message):
    lock_out("a@x.example")
    response = admin_client.post(URL, data, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert locked_out_until("a@x.example") is not None
    assert not SecurityEvent.objects.filter(kind=Kind.UNLOCKED).exists()


def test_unlock_needs_an_admin(client, back_office_user):
    lock_out("a@x.example")
    sign_in(client, back_office_user)
    assert client.post(URL, {"username": "a@x.example"}).status_code == 403
    assert client.get(URL).status_code in (403, 405)
    assert locked_out_until("a@x.example") is not None


# --- the command ------------------------------------------------------------------------------


def test_the_command_unlocks_and_says_so():
    user = make_console_user(Role.ADMIN)
    lock_out(user.email)
    out = StringIO()
    call_command("unlock_account", user.email.upper(), stdout=out)
    assert "was locked out; unlocked" in out.getvalue()
    assert locked_out_until(user.email) is None
    row = SecurityEvent.objects.get(kind=Kind.UNLOCKED)
    assert row.actor is None
    assert row.subject == user
    assert can_sign_in(user.email)


def test_the_command_on_an_account_not_locked():
    out = StringIO()
    call_command("unlock_account", "free@x.example", stdout=out)
    assert "was not locked out" in out.getvalue()


def test_the_command_refuses_a_bad_ip():
    with pytest.raises(CommandError, match="is not an IP address"):
        call_command("unlock_account", "a@x.example", "--ip", "nope")
    assert not SecurityEvent.objects.filter(kind=Kind.UNLOCKED).exists()


# --- the user's detail page: unlock and factor reset (admins) ---------------------------------


def detail(client, user) -> str:
    return client.get(reverse("users:user-detail", args=[user.pk])).content.decode()


def test_detail_shows_the_lockout_and_unlocks(admin_client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    assert "Locked out until" not in detail(admin_client, user)
    lock_out(user.email)
    until = locked_out_until(user.email)
    page = detail(admin_client, user)
    assert f"Locked out until {timezone.localtime(until):%H:%M}" in page
    url = reverse("users:user-unlock", args=[user.pk])
    response = admin_client.post(url, headers={"HX-Request": "true", "HX-Target": "signin"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="signin"')
    assert "Unlocked: they may sign in again." in html
    assert "refresh-danger" in response.headers.get("HX-Trigger", "")
    assert locked_out_until(user.email) is None
    assert SecurityEvent.objects.get(kind=Kind.UNLOCKED).subject == user
    # Without JavaScript: a redirect back to the page.
    lock_out(user.email)
    assert admin_client.post(url)["Location"] == reverse("users:user-detail", args=[user.pk])
    assert locked_out_until(user.email) is None


def test_detail_sign_in_region_is_for_admins_only(client, back_office_user):
    user = make_console_user(Role.BACK_OFFICE)
    lock_out(user.email)
    sign_in(client, back_office_user)
    page = detail(client, user)
    assert "Locked out until" not in page
    assert reverse("users:user-factors-reset", args=[user.pk]) not in page
    assert client.post(reverse("users:user-unlock", args=[user.pk])).status_code == 403
    reset = reverse("users:user-factors-reset", args=[user.pk])
    assert client.get(reset).status_code == 403
    assert client.post(reset).status_code == 403
    assert locked_out_until(user.email) is not None


def test_factor_reset_confirms_then_steps_up_then_resets(client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    totp_device(user)
    sign_in(client, admin_user)
    url = reverse("users:user-factors-reset", args=[user.pk])
    assert url in detail(client, user)
    confirm = client.get(url).content.decode()
    assert "This signs them out and they must enrol again" in confirm
    fragment = client.get(url, headers={"HX-Request": "true", "HX-Target": "signin"})
    assert fragment.content.decode().lstrip().startswith('<section id="signin"')
    assert has_factor(user)
    # An old second-factor check: step-up first, back to the confirmation.
    session = client.session
    session[FACTOR_VERIFIED_AT] = time.time() - 10_000
    session.save()
    stepped = client.post(url)
    assert stepped["Location"].startswith(reverse("signin-verify"))
    assert "step_up=1" in stepped["Location"]
    assert has_factor(user)
    assert not SecurityEvent.objects.filter(kind=Kind.FACTOR_RESET).exists()
    pass_second_factor(client, admin_user)
    done = client.post(url)
    assert done["Location"] == reverse("users:user-detail", args=[user.pk])
    assert not has_factor(user)
    row = SecurityEvent.objects.get(kind=Kind.FACTOR_RESET)
    assert (row.actor, row.subject) == (admin_user, user)


def test_an_admin_does_not_reset_their_own_factors_here(client, admin_user):
    sign_in(client, admin_user)
    url = reverse("users:user-factors-reset", args=[admin_user.pk])
    assert url not in detail(client, admin_user)
    assert client.post(url).status_code == 403
    assert has_factor(admin_user)
