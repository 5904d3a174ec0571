"""The idle warning in Chromium (issue 10 point 3): it appears shortly before the idle end,
"Stay signed in" keeps the session past the original end, and without it the page goes to
the sign-in page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from users.models import Role

IDLE = 6  # seconds; the warning shows max(1, IDLE // 3) = 2 seconds before the end


@pytest.fixture
def short_idle(settings):
    settings.SESSION_IDLE_SECONDS = IDLE


def test_the_warning_appears_and_stay_signed_in_keeps_the_session(
    page, sign_in, url, short_idle, screenshot
):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-list"))
    warning = page.get_by_role("alertdialog", name="Your session is about to end")
    expect(warning).to_be_hidden()
    expect(warning).to_be_visible(timeout=IDLE * 1000)
    screenshot("warning")
    stay = warning.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    stay.click()
    expect(warning).to_be_hidden()
    # The warning comes back only 4 seconds after the keep-alive: past the original end.
    expect(warning).to_be_visible(timeout=IDLE * 1000)
    stay.click()
    expect(warning).to_be_hidden()
    page.goto(url("users:user-list"))
    expect(page).to_have_url(re.compile(r"/users/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Users"))


def test_without_stay_signed_in_the_page_goes_to_sign_in(page, sign_in, url, short_idle):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-list"))
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Fusers%2F$"), timeout=IDLE * 2000)
    expect(page.get_by_label("Password")).to_be_visible()
    page.goto(url("users:user-list"))
    expect(page).to_have_url(re.compile(r"/login/"))
