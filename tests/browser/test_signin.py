"""Signing in for real in Chromium: the password, then enrolment or the second factor, with an
authenticator app (pyotp computes its codes from the key on the page) and with a passkey
(Chromium's virtual authenticator over CDP)."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.factories import make_console_user
from users.models import Role
from users.services import factors


def password(page: Page, url, user) -> None:
    page.goto(url("users:board"))
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.locator(".usermenu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))


def test_enrol_an_authenticator_app_then_sign_in_with_a_recovery_code(page: Page, url, screenshot):
    user = make_console_user(Role.COMPLIANCE)
    password(page, url, user)
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code did not load"
    screenshot("enrol")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    assert len(codes) == factors.RECOVERY_CODES
    screenshot("recovery-codes")
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page).to_have_url(re.compile(r"/board/$"))
    expect(page.get_by_role("heading", name="Status board")).to_be_visible()

    sign_out(page)
    password(page, url, user)
    expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
    # No navigation before the second factor.
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    page.get_by_label(re.compile("Code from your authenticator app")).fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/board/$"))


@pytest.fixture
def virtual_authenticator(page: Page, settings, live_server):
    """A platform authenticator with user verification, answering every ceremony at once."""
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url.replace("127.0.0.1", "localhost")]
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": added["authenticatorId"]})


def test_enrol_a_passkey_and_sign_in_with_it(page: Page, url, virtual_authenticator, screenshot):
    cdp, authenticator = virtual_authenticator
    user = make_console_user(Role.BACK_OFFICE)
    password(page, url, user)
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    page.get_by_role("button", name="Create a passkey").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert (
        len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"])
        == 1
    )
    page.get_by_role("link", name="I have saved them, continue").click()
    expect(page).to_have_url(re.compile(r"/board/$"))
    assert factors.factor_summary(user)["passkeys"] == 1

    sign_out(page)
    password(page, url, user)
    expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
    screenshot("verify-with-passkey")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/board/$"))
    expect(page.get_by_role("heading", name="Status board")).to_be_visible()
