"""The onboarding dashboard in Chromium (issue 14.6): compliance opens it from the navigation,
picks a period, and follows a chart's bar to the list filtered on that status."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.factories import make_user
from users import services
from users.models import Role, Status


def test_compliance_follows_a_chart_to_the_filtered_list(
    page: Page, sign_in, url, admin_user, screenshot
):
    signing = [make_user(actor=admin_user, first_name=f"Sig{i}") for i in range(2)]
    for user in signing:
        services.user_change_status(
            user=user, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user
        )
    make_user(actor=admin_user, first_name="Still")

    sign_in(Role.COMPLIANCE)
    page.goto(url("users:user-list"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Onboarding dashboard")).to_be_visible()
    page.get_by_role("link", name="Last 7 days").click()
    expect(page).to_have_url(re.compile(r"/dashboard/\?days=7$"))
    funnel = page.locator("#chart-funnel-title").locator("..")
    expect(funnel).to_have_attribute("role", "group")
    # The table beside the chart has the same numbers: two users wait for a signature now.
    table = page.get_by_role("table", name="Users per status")
    row = table.get_by_role("row", name=re.compile("Waiting for signature"))
    expect(row.get_by_role("cell").first).to_have_text("2")
    screenshot("dashboard")

    # The funnel's bar of users waiting for a signature opens the list filtered on it.
    funnel.get_by_role("link", name="Waiting for signature: now: 2").click()
    expect(page).to_have_url(re.compile(r"/users/\?status=WAITING_FOR_SIGNATURE$"))
    results = page.locator("#results")
    expect(results.get_by_text("Sig0")).to_be_visible()
    expect(results.get_by_text("Sig1")).to_be_visible()
    expect(results.get_by_text("Still")).to_have_count(0)
