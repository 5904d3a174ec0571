"""Staff sign-in: the password, then a second factor (TOTP, recovery code, passkey), enrolment,
throttling, step-up for sensitive actions."""

from __future__ import annotations

import statistics
import time
from unittest import mock
from urllib.parse import urlencode

import pyotp
import pytest
from django.contrib.auth.hashers import identify_hasher
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import (
    current_code,
    make_console_user,
    pass_second_factor,
    sign_in,
    totp_device,
)
from users.models import ApiToken, FeatureFlag, Role, SecurityEvent, User
from users.services import factors
from users.views.common import FACTOR_VERIFIED_AT
from users.views.signin import NEUTRAL_REFUSAL

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"
Kind = SecurityEvent.Kind


def password_step(client, user, next_url: str = "/users/"):
    return client.post(
        f"{reverse('login')}?next={next_url}", {"username": user.email, "password": PASSWORD}
    )


def kinds() -> list[str]:
    return list(SecurityEvent.objects.order_by("at", "id").values_list("kind", flat=True))


def test_password_only_does_not_reach_the_console(client):
    user = make_console_user(Role.BACK_OFFICE)
    totp_device(user)
    response = password_step(client, user)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('signin-verify')}?next=%2Fusers%2F"
    for url in (reverse("users:user-list"), reverse("users:board"), "/admin/"):
        refused = client.get(url)
        assert refused.status_code == 302
        assert refused["Location"].startswith(reverse("signin-verify"))
    # htmx gets a response it follows as a full page load, not a page to swap in.
    htmx = client.get(reverse("users:user-list"), headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx["HX-Redirect"].startswith(reverse("signin-verify"))


def test_totp_code_from_an_app_signs_in_and_is_logged(client):
    user = make_console_user(Role.BACK_OFFICE)
    device = totp_device(user)
    password_step(client, user)
    session_before = client.session.session_key
    response = client.post(
        reverse("signin-verify"), {"code": current_code(device), "next": "/users/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/users/"
    assert client.get("/users/").status_code == 200
    assert client.session.session_key != session_before  # a new key once verified
    event = SecurityEvent.objects.get(kind=Kind.SIGN_IN)
    assert (event.actor, event.subject, event.detail) == (user, user, {"factor": "totp"})


def test_a_wrong_code_is_refused_and_logged(client):
    user = make_console_user(Role.BACK_OFFICE)
    device = totp_device(user)
    password_step(client, user)
    wrong = f"{(int(current_code(device)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("signin-verify"), {"code": wrong})
    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert client.get("/users/").status_code == 302
    assert Kind.SECOND_FACTOR_FAILED in kinds()


def test_after_a_wrong_code_the_next_try_waits_and_says_how_long(client):
    """django-otp's throttle: 1 s after one wrong code, 2 s after two, ... per device."""
    user = make_console_user(Role.BACK_OFFICE)
    device = totp_device(user)
    password_step(client, user)
    client.post(reverse("signin-verify"), {"code": "000000"})
    response = client.post(reverse("signin-verify"), {"code": current_code(device)})
    assert response.status_code == 400
    assert "Too many wrong codes in a row: wait 1 seconds" in response.content.decode()
    assert client.get("/users/").status_code == 302


def test_a_totp_code_signs_in_once(client):
    user = make_console_user(Role.BACK_OFFICE)
    device = totp_device(user)
    code = current_code(device)
    password_step(client, user)
    assert client.post(reverse("signin-verify"), {"code": code}).status_code == 302
    client.post(reverse("logout"))
    password_step(client, user)
    assert client.post(reverse("signin-verify"), {"code": code}).status_code == 400


def test_enrolment_is_forced_then_totp_then_recovery_codes_once(client):
    user = make_console_user(Role.COMPLIANCE)
    response = password_step(client, user, "/board/")
    assert response["Location"] == f"{reverse('signin-enrol')}?next=%2Fboard%2F"
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml;charset=utf-8,' in html  # the QR code, no request
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = factors.totp_secret(device)
    assert secret[:4] in html
    code = pyotp.TOTP(secret).now()  # what any authenticator app computes from the key
    done = client.post(reverse("signin-enrol"), {"code": code, "next": "/board/"})
    assert done.status_code == 302
    assert done["Location"].startswith(reverse("signin-recovery-codes"))
    codes_page = client.get(done["Location"])
    codes = StaticToken.objects.filter(device__user=user).values_list("token", flat=True)
    assert len(codes) == factors.RECOVERY_CODES
    assert all(code in codes_page.content.decode() for code in codes)
    assert codes_page["Cache-Control"].count("no-store") == 1
    # Shown once: a reload goes on to the page.
    assert client.get(done["Location"])["Location"] == "/board/"
    assert client.get("/board/").status_code == 200
    # The role the user was created with is logged too (ROLE_GRANTED), then their sign-in.
    assert kinds() == [Kind.ROLE_GRANTED, Kind.FACTOR_ENROLLED, Kind.SIGN_IN]
    # What the detail page and the account page count: confirmed devices only.
    assert factors.factor_summary(user) == {
        "totp": 1,
        "passkeys": 0,
        "recovery_codes": factors.RECOVERY_CODES,
    }
    assert factors.factor_summary(make_console_user(Role.BACK_OFFICE)) == {
        "totp": 0,
        "passkeys": 0,
        "recovery_codes": 0,
    }


def test_a_wrong_enrolment_code_enrols_nothing(client):
    user = make_console_user(Role.COMPLIANCE)
    password_step(client, user)
    client.get(reverse("signin-enrol"))
    response = client.post(reverse("signin-enrol"), {"code": "000000"})
    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert not factors.has_factor(user)
    assert client.get("/users/")["Location"].startswith(reverse("signin-enrol"))


def test_a_recovery_code_works_once(client):
    user = make_console_user(Role.ADMIN)
    totp_device(user)
    codes = factors.recovery_codes_renew(user=user)
    password_step(client, user)
    assert client.post(reverse("signin-verify"), {"code": codes[0].upper()}).status_code == 302
    assert client.get("/users/").status_code == 200
    client.post(reverse("logout"))
    password_step(client, user)
    again = client.post(reverse("signin-verify"), {"code": codes[0]})
    assert again.status_code == 400
    assert client.get("/users/").status_code == 302
    used = SecurityEvent.objects.get(kind=Kind.RECOVERY_CODE_USED)
    assert used.detail == {"left": factors.RECOVERY_CODES - 1}


def test_the_second_factor_can_be_switched_off_only_by_setting_it(client, settings):
    user = make_console_user(Role.BACK_OFFICE)
    settings.CONSOLE_MFA_REQUIRED = False
    response = password_step(client, user)
    assert response["Location"] == "/users/"
    assert client.get("/users/").status_code == 200


def test_the_default_is_on():
    from django.conf import settings

    assert settings.CONSOLE_MFA_REQUIRED is True


def test_factors_reset_ends_verification_and_forces_enrolment(client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    sign_in(client, user)
    assert client.get("/users/").status_code == 200
    factors.factors_reset(user=user, actor=admin_user)
    assert not factors.has_factor(user)
    # The reset ends the user's sessions (issue 10.3): back to the password, then enrolment.
    assert client.get("/users/")["Location"].startswith(reverse("login"))
    assert password_step(client, user)["Location"].startswith(reverse("signin-enrol"))
    event = SecurityEvent.objects.get(kind=Kind.FACTOR_RESET)
    assert (event.actor, event.subject) == (admin_user, user)


def test_argon2_is_the_first_hasher_and_old_hashes_upgrade():
    from console import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_an_old_pbkdf2_hash_is_rehashed_with_argon2_at_sign_in(client, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    from django.contrib.auth.hashers import make_password

    user = make_console_user(Role.BACK_OFFICE)
    type(user).objects.filter(pk=user.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )
    password_step(client, user)
    user.refresh_from_db()
    assert identify_hasher(user.password).algorithm == "argon2"


# --- step-up ---------------------------------------------------------------------------------


def age_the_check(client, seconds: int) -> None:
    session = client.session
    session[FACTOR_VERIFIED_AT] = time.time() - seconds
    session.save()


def test_issuing_a_token_asks_for_the_factor_again_after_five_minutes(client, admin_user):
    sign_in(client, admin_user)
    age_the_check(client, 301)
    response = client.post(reverse("users:api-tokens"), {"name": "CRM"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin-verify"))
    assert "step_up=1" in response["Location"]
    assert not ApiToken.objects.exists()
    page = client.get(response["Location"])
    assert "Confirm it is you" in page.content.decode()
    device = totp_device(admin_user)
    back_to = f"{reverse('users:api-tokens')}?name=CRM"
    assert urlencode({"next": back_to}) in response["Location"]
    back = client.post(response["Location"], {"code": current_code(device), "next": back_to})
    assert back["Location"] == back_to
    assert 'value="CRM"' in client.get(back["Location"]).content.decode()
    assert client.post(reverse("users:api-tokens"), {"name": "CRM"}).status_code == 302
    assert ApiToken.objects.filter(name="CRM").exists()
    assert Kind.STEP_UP in kinds()


def test_a_recent_check_needs_no_step_up(client, admin_user):
    sign_in(client, admin_user)
    age_the_check(client, 120)
    client.post(reverse("users:api-tokens"), {"name": "CRM"})
    assert ApiToken.objects.filter(name="CRM").exists()


def test_revoking_ones_own_console_flag_asks_for_confirmation(client, admin_user):
    sign_in(client, admin_user)
    url = reverse("users:user-flag", args=[admin_user.pk])
    asked = client.post(url, {"flag": "CONSOLE", "enabled": "0"}, headers={"HX-Request": "true"})
    assert asked.status_code == 200
    assert "Revoke your own console access?" in asked.content.decode()
    assert FeatureFlag.CONSOLE in admin_user.flag_names()
    age_the_check(client, 301)
    stepped = client.post(url, {"flag": "CONSOLE", "enabled": "0", "confirm": "1"})
    assert stepped["Location"].startswith(reverse("signin-verify"))
    assert FeatureFlag.CONSOLE in admin_user.flag_names()
    pass_second_factor(client, admin_user)
    done = client.post(url, {"flag": "CONSOLE", "enabled": "0", "confirm": "1"})
    assert done.status_code == 302
    assert FeatureFlag.CONSOLE not in User.objects.get(pk=admin_user.pk).flag_names()


def test_revoking_someone_elses_console_flag_needs_no_confirmation(client, admin_user):
    other = make_console_user(Role.BACK_OFFICE)
    sign_in(client, admin_user)
    client.post(reverse("users:user-flag", args=[other.pk]), {"flag": "CONSOLE", "enabled": "0"})
    assert FeatureFlag.CONSOLE not in User.objects.get(pk=other.pk).flag_names()


def test_authenticated_pages_and_the_api_are_not_stored(client, admin_user):
    sign_in(client, admin_user)
    for url in ("/users/", "/board/", f"/users/{admin_user.pk}/"):
        assert "no-store" in client.get(url)["Cache-Control"]
    assert "no-store" in client.get("/api/users/")["Cache-Control"]


def test_the_sign_in_message_is_the_same_for_every_refusal(client):
    user = make_console_user(Role.BACK_OFFICE)
    wrong = client.post(reverse("login"), {"username": user.email, "password": "nope-nope"})
    unknown = client.post(reverse("login"), {"username": "nobody@bank.example", "password": "x"})
    assert wrong.status_code == unknown.status_code == 200
    assert NEUTRAL_REFUSAL in wrong.content.decode()
    assert NEUTRAL_REFUSAL in unknown.content.decode()
    failures = SecurityEvent.objects.filter(kind=Kind.SIGN_IN_FAILED)
    assert sorted(failures.values_list("username", flat=True)) == sorted(
        [user.email, "nobody@bank.example"]
    )


# --- one's own factors ---------------------------------------------------------------------


def test_a_person_adds_an_authenticator_app_to_a_passkey_only_account(client):
    user = make_console_user(Role.BACK_OFFICE)
    factors.recovery_codes_renew(user=user)  # no authenticator app (a passkey, say)
    sign_in(client, user, second_factor=False)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = StaticDevice.objects.get(user=user).persistent_id
    session[FACTOR_VERIFIED_AT] = time.time()
    session.save()
    page = client.get(reverse("account-factors"))
    assert page.status_code == 200
    assert "Add the authenticator app" in page.content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    done = client.post(reverse("account-factors"), {"code": current_code(device)})
    assert done.status_code == 302
    assert TOTPDevice.objects.get(pk=device.pk).confirmed


def test_new_recovery_codes_replace_the_old_ones_after_step_up(client):
    user = make_console_user(Role.COMPLIANCE)
    sign_in(client, user)
    old = factors.recovery_codes_renew(user=user)
    age_the_check(client, 301)
    stepped = client.post(reverse("account-factors"), {"action": "recovery-codes"})
    assert stepped["Location"].startswith(reverse("signin-verify"))
    pass_second_factor(client, user)
    done = client.post(reverse("account-factors"), {"action": "recovery-codes"})
    assert done["Location"].startswith(reverse("signin-recovery-codes"))
    new = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(new) == factors.RECOVERY_CODES
    assert not new & set(old)


def test_five_failures_in_any_spelling_of_the_address_lock_the_account(client):
    user = make_console_user(Role.BACK_OFFICE)
    for spelling in (
        user.email.upper(),
        f" {user.email}",
        user.email.title(),
        user.email,
        user.email,
    ):
        client.post(reverse("login"), {"username": spelling, "password": "wrong-wrong"})
    refused = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert refused.status_code == 200
    assert NEUTRAL_REFUSAL in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert Kind.LOCKED_OUT in kinds()


def test_the_passkey_script_starts_only_after_its_translations(client):
    # django-otp-webauthn's own tag loads the catalog "async": on a slow server its module ran
    # first and failed with "gettext is not defined". Deferred scripts keep document order.
    user = make_console_user(Role.COMPLIANCE)
    password_step(client, user)
    html = client.get(reverse("signin-enrol")).content.decode()
    catalog = f'<script defer src="{reverse("otp_webauthn:js-i18n-catalog")}"></script>'
    assert catalog in html
    assert html.index(catalog) < html.index("otp_webauthn_register.js")
    assert "async" not in html


# --- no timing difference between known and unknown accounts (issue 10 acceptance) -----------

ARGON2 = ["django.contrib.auth.hashers.Argon2PasswordHasher"]


def refusal_paths(client) -> dict[str, dict[str, str]]:
    known = make_console_user(Role.BACK_OFFICE)
    invited = make_console_user(Role.BACK_OFFICE)
    invited.set_unusable_password()
    invited.save(update_fields=["password"])
    return {
        "known, wrong password": {"username": known.email, "password": "wrong-password-1"},
        "unknown address": {"username": "nobody@bank.example", "password": "wrong-password-1"},
        "invited, no password yet": {"username": invited.email, "password": "wrong-password-1"},
    }


def test_every_refusal_costs_one_argon2_hash(client, settings):
    # The cost of a sign-in is the password hash; each refusal computes exactly one, so a known
    # address, an unknown one and one without a password answer in the same time.
    from django.contrib.auth.hashers import Argon2PasswordHasher

    settings.PASSWORD_HASHERS = ARGON2
    paths = refusal_paths(client)
    calls: list[str] = []
    real_encode, real_verify = Argon2PasswordHasher.encode, Argon2PasswordHasher.verify

    def counted_encode(self, *args, **kwargs):
        calls.append("encode")
        return real_encode(self, *args, **kwargs)

    def counted_verify(self, *args, **kwargs):
        calls.append("verify")
        return real_verify(self, *args, **kwargs)

    with (
        mock.patch.object(Argon2PasswordHasher, "encode", counted_encode),
        mock.patch.object(Argon2PasswordHasher, "verify", counted_verify),
    ):
        for name, data in paths.items():
            calls.clear()
            response = client.post(reverse("login"), data)
            assert NEUTRAL_REFUSAL in response.content.decode(), name
            assert len(calls) == 1, f"{name}: {calls}"


def test_no_measurable_timing_difference_between_known_and_unknown_accounts(client, settings):
    settings.PASSWORD_HASHERS = ARGON2
    settings.AXES_ENABLED = False  # many tries in a row; lockout is tested above
    paths = refusal_paths(client)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(7):  # interleaved, so a busy moment of the machine hits every path alike
        for name, data in paths.items():
            started = time.perf_counter()
            client.post(reverse("login"), data)
            samples[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(times) for name, times in samples.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    # A path without its hash would be ~10x faster; 2x leaves room for a busy CI machine.
    assert slowest < fastest * 2, medians
