"""Revealing a masked value in a real browser (issue 13.3): the IBAN is masked on the detail
page; "Reveal" asks why, shows the number in place, and the reveal is in "Accessed by"."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.factories import VALID_IBANS, make_user
from users.models import AccessEvent, Role


def test_reveal_an_iban_with_a_purpose_then_see_it_in_accessed_by(
    page: Page, sign_in, url, screenshot
):
    compliance = sign_in(Role.COMPLIANCE)
    subject = make_user(
        actor=compliance,
        first_name="Iris",
        last_name="Masked",
        counter_account={"bank_account_number": VALID_IBANS[0]},
    )
    page.goto(url("users:user-detail", subject.pk))
    masked = page.locator("#masked-bank_account_number")
    expect(masked).to_contain_text("BE71 •••• •••• 6769")
    expect(page.locator("main")).not_to_contain_text("0961")

    masked.get_by_role("link", name="Reveal account number").click()
    form = page.locator("form#masked-bank_account_number")
    expect(form.get_by_label("Purpose")).to_be_focused()
    form.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("link", name="Reveal account number")).to_be_focused()
    page.get_by_role("link", name="Reveal account number").click()
    # No purpose: the browser asks for one (the server would too), nothing is revealed.
    form.get_by_role("button", name="Reveal account number").click()
    expect(form.get_by_label("Purpose")).to_be_focused()
    expect(page.locator("main")).not_to_contain_text("0961")
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.REVEALED).exists()

    form.get_by_label("Purpose").select_option(label="Payout or counter account check")
    form.get_by_label("Details").fill("Client called about a missing payout")
    form.get_by_role("button", name="Reveal account number").click()
    revealed = page.locator("#masked-bank_account_number")
    expect(revealed).to_contain_text("BE71 0961 2345 6769")
    expect(revealed).to_contain_text("revealed · logged")
    expect(revealed).to_be_focused()  # the keyboard is where the value now is

    accessed = page.locator("#accessed-by")
    row = accessed.locator("tbody tr").filter(has_text="Revealed a field")
    expect(row).to_contain_text("bank_account_number")
    expect(row).to_contain_text("Payout or counter account check: Client called about a missing")
    expect(row).to_contain_text(compliance.email)
    screenshot("revealed")

    # A new page view shows the mask again.
    page.reload()
    expect(page.locator("#masked-bank_account_number")).to_contain_text("BE71 •••• •••• 6769")


def test_back_office_sees_masks_and_no_reveal(page: Page, sign_in, url):
    back_office = sign_in(Role.BACK_OFFICE)
    subject = make_user(actor=back_office, identity="85073003361", date_of_birth="1985-07-30")
    page.goto(url("users:user-detail", subject.pk))
    expect(page.locator("#masked-identity")).to_have_text("•••• 361")
    expect(page.locator("#masked-date_of_birth")).to_have_text("1985-••-••")
    expect(page.get_by_role("link", name="Reveal identity")).to_have_count(0)
