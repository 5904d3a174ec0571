"""Signing in and out in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from users.models import Role


def test_sign_in_and_out(page: Page, sign_in_with_form, url):
    page.goto(url("users:home"))
    # Not signed in: the sign-in page, remembering where we were going.
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    user = sign_in_with_form(Role.COMPLIANCE)
    expect(page.locator(".usermenu-name")).to_have_text(user.display_name)
    expect(page.locator(".usermenu-roles")).to_have_text("Compliance")

    page.locator(".usermenu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(url("users:home"))
    expect(page).to_have_url(re.compile(r"/login/\?next="))


def test_wrong_password_shows_an_error(page: Page, url, admin_user):
    page.goto(url("login"))
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not open the console")
    expect(page.get_by_label("Email")).to_have_value(admin_user.email)


def test_slash_focuses_the_global_search(page: Page, sign_in, url):
    sign_in(Role.BACK_OFFICE)
    # A page without an autofocused field: "/" typed into a field must stay a character.
    page.goto(url("password_change_done"))
    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
