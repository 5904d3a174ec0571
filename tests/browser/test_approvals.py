"""Four-eyes approval in Chromium (issue 12): the back office changes an IBAN and is told it
waits; an admin sees the badge, opens the diff, approves; the detail shows the new IBAN and the
history names both people. With JavaScript on and off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import VALID_IBANS, make_user
from users.models import ChangeRequest, Role, User, UserVersion

NEW_IBAN = VALID_IBANS[1]  # DE89370400440532013000
NEW_IBAN_MASKED = "DE89 •••• •••• •••• •••• 00"  # what those who may not reveal see


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_back_office_proposes_an_iban_and_an_admin_approves_it(
    browser, browser_context, page: Page, sign_in, url, screenshot, javascript
):
    # Two people, two browsers: the back office, then the admin (the `page` fixture's context,
    # where every console and CSP error fails the test).
    back_office = sign_in(Role.BACK_OFFICE)
    maker_context = browser.new_context(
        base_url=url("/"), java_script_enabled=javascript, viewport={"width": 1440, "height": 900}
    )
    maker_context.add_cookies(browser_context.cookies())
    browser_context.clear_cookies()
    admin = sign_in(Role.ADMIN)
    checker_context = None
    if not javascript:
        checker_context = browser.new_context(
            base_url=url("/"), java_script_enabled=False, viewport={"width": 1440, "height": 900}
        )
        checker_context.add_cookies(browser_context.cookies())
        page = checker_context.new_page()
    # Opened by the back office (the admin must not be the account's last changer).
    subject = make_user(
        actor=back_office,
        first_name="Iris",
        last_name="Payout",
        counter_account={"bank_account_number": VALID_IBANS[0]},
    )
    try:
        maker = maker_context.new_page()
        maker.goto(url("users:user-edit", subject.pk))
        maker.get_by_label("Account number").fill(NEW_IBAN)
        maker.get_by_label("Reason for the change").fill("Client's letter of 3 May")
        maker.get_by_label("Last name").fill("Payout-Smith")
        maker.get_by_role("button", name="Save changes").click()
        expect(maker).to_have_url(url("users:user-detail", subject.pk))
        expect(
            maker.get_by_text("Waiting for approval by a second person: Counter account.")
        ).to_be_visible()
        # The other field is saved; the account is not, and the proposer may withdraw it.
        expect(maker.get_by_role("heading", level=1)).to_contain_text("Iris Payout-Smith")
        pending = maker.locator("#pending")
        # Back office may not reveal: its own proposal reads masked (issue 13.3).
        expect(pending).to_contain_text(NEW_IBAN_MASKED)
        expect(pending).not_to_contain_text(NEW_IBAN)
        expect(pending.get_by_role("button", name="Withdraw")).to_be_visible()
        expect(pending.get_by_role("button", name="Approve")).to_have_count(0)

        page.goto(url("users:user-list"))
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Approvals 1 waiting")).to_be_visible()
        nav.get_by_role("link", name="Approvals").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Approvals")
        request = page.locator(".pending-change")
        expect(request).to_have_count(1)
        expect(request).to_contain_text(back_office.display_name)
        if javascript:
            screenshot("approvals")
        request.get_by_role("link", name="Iris Payout-Smith").click()

        pending = page.locator("#pending")
        expect(pending.locator("tr[data-field='counter_account'] td.new")).to_contain_text(NEW_IBAN)
        expect(pending).to_contain_text("Client's letter of 3 May")
        expect(page).to_have_url(url("users:user-detail", subject.pk) + "#pending")
        if javascript:
            # From the top of the page (the link scrolled to the region), for the README.
            page.goto(url("users:user-detail", subject.pk))
            screenshot("pending-change")
        pending.get_by_role("button", name="Approve").click()

        expect(page.get_by_text("Approved: Counter account of Iris Payout-Smith")).to_be_visible()
        expect(page.locator("#pending")).not_to_contain_text("Approve")
        account = page.get_by_role("region", name="Counter account", exact=True)
        expect(account).to_contain_text(NEW_IBAN_MASKED)  # the page masks it until revealed
        if not javascript:  # the history follows the page: a link draws it in place
            page.get_by_role("link", name="Show the history").click()
        history = page.locator("#history")
        latest = history.locator("table.versions tbody tr").first
        expect(latest).to_contain_text(back_office.display_name)
        expect(latest).to_contain_text(f"approved by {admin.display_name}")
        approved = history.locator("table.four-eyes-history tr[data-action='approved']")
        expect(approved).to_contain_text(admin.display_name)
        expect(approved).to_contain_text(f"proposed by {back_office.display_name}")
        expect(nav.get_by_role("link", name="Approvals", exact=True)).to_be_visible()
    finally:
        maker_context.close()
        if checker_context is not None:
            checker_context.close()
    stored = User.objects.get(pk=subject.pk)
    assert stored.bank_account_number == NEW_IBAN
    version = UserVersion.objects.get(user=stored, version=stored.version)
    assert (version.author, version.approved_by) == (back_office, admin)
    assert ChangeRequest.objects.get(user=stored).state == ChangeRequest.State.APPROVED
