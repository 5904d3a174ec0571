"""The security log in Chromium: an admin opens it from the navigation, filters by kind (htmx
swaps the results) and unlocks a locked-out account from its row."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.factories import make_console_user
from users.models import Role, SecurityEvent
from users.selectors.security import locked_out_until


def test_admin_filters_by_kind_and_unlocks_a_locked_account(page: Page, sign_in, url, screenshot):
    locked = make_console_user(Role.BACK_OFFICE)
    client = Client()
    client.post(reverse("login"), {"username": "someone@else.example", "password": "nope-nope"})
    for _ in range(5):
        client.post(reverse("login"), {"username": locked.email, "password": "wrong-wrong"})
    assert locked_out_until(locked.email) is not None

    sign_in("admin")
    page.goto(url("users:user-list"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Security log").click()
    expect(page.get_by_role("heading", name="Security log", exact=True)).to_be_visible()
    results = page.locator("#log-results")
    expect(results.get_by_text("someone@else.example")).to_be_visible()

    page.get_by_label("Kind").select_option(SecurityEvent.Kind.LOCKED_OUT.value)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"kind=LOCKED_OUT"))
    expect(results.get_by_text("someone@else.example")).to_have_count(0)
    unlock = results.get_by_role("button", name=f"Unlock {locked.email}")
    expect(unlock).to_be_visible()
    screenshot("filtered")

    unlock.click()
    expect(page.get_by_text(f"Unlocked {locked.email}")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/security-log/\?kind=LOCKED_OUT$"))
    expect(results.get_by_role("button", name=f"Unlock {locked.email}")).to_have_count(0)
    assert locked_out_until(locked.email) is None
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.UNLOCKED).exists()
