"""The detail screen in a real browser: flags, refusals, status moves, version diff, delete."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.factories import VALID_IBANS, make_user
from users import services
from users.models import FeatureFlag, Role, Status, User, UserVersion


def rich_user(actor: User) -> User:
    return make_user(
        actor=actor,
        first_name="Ada",
        last_name="Lovelace",
        counter_account={"bank_account_number": VALID_IBANS[0]},
        residency_country="BE",
        nationalities=["BE", "GB"],
        language="en-GB",
        date_of_birth="1985-12-10",
        address={
            "line1": "Rue de la Loi 16",
            "city": "Brussels",
            "postal_code": "1000",
            "country_code": "BE",
        },
        metadata={"crm": "42"},
    )


def test_admin_toggles_a_flag_and_history_follows(page: Page, sign_in, url, screenshot):
    admin = sign_in(Role.ADMIN)
    subject = rich_user(admin)
    page.goto(url("users:user-detail", subject.pk))
    switch = page.locator('#flags [data-flag="ROBO_ADVISOR"]')
    expect(switch).to_have_attribute("aria-checked", "false")

    switch.click()
    expect(page.locator('#flags [data-flag="ROBO_ADVISOR"]')).to_have_attribute(
        "aria-checked", "true"
    )
    expect(page.locator("#flags")).to_contain_text("Robo Advisor granted")
    # The other regions refreshed themselves: the version moved on, the history lists it.
    expect(page.locator("#summary")).to_contain_text("Version 2")
    expect(page.locator("#history .versions tbody tr").first).to_contain_text("Feature flags")
    version = UserVersion.objects.get(user=subject, version=2)
    assert version.author == admin
    assert version.changes == {"feature_flags": [[], [FeatureFlag.ROBO_ADVISOR]]}
    screenshot("granted")

    page.locator('#flags [data-flag="ROBO_ADVISOR"]').click()
    expect(page.locator('#flags [data-flag="ROBO_ADVISOR"]')).to_have_attribute(
        "aria-checked", "false"
    )
    expect(page.locator("#summary")).to_contain_text("Version 3")


def test_back_office_is_refused_flags(page: Page, sign_in, url, page_problems, admin_user):
    sign_in(Role.BACK_OFFICE)
    subject = rich_user(admin_user)
    page.goto(url("users:user-detail", subject.pk))
    switch = page.locator('#flags [data-flag="CONSOLE"]')
    expect(switch).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#flags")).to_contain_text("Only admins grant and revoke flags")
    expect(page.locator("#flags form")).to_have_count(0)

    # Crafting the request does not help: the server refuses it, not just the page.
    page_problems.allow(r"status of 403")
    status = page.evaluate(
        """async ([url, token]) => {
            const body = new URLSearchParams({flag: "ROBO_ADVISOR", enabled: "1"});
            const response = await fetch(url, {method: "POST", body,
                headers: {"X-CSRFToken": token, "HX-Request": "true"}});
            return response.status;
        }""",
        [reverse("users:user-flag", args=[subject.pk]), csrf_token(page)],
    )
    assert status == 403
    assert not subject.flag_grants.exists()


def csrf_token(page: Page) -> str:
    for cookie in page.context.cookies():
        if cookie["name"] == "csrftoken":
            return cookie["value"]
    raise AssertionError("no CSRF cookie")


def test_open_a_version_diff(page: Page, sign_in, url, screenshot):
    compliance = sign_in(Role.COMPLIANCE)
    subject = rich_user(compliance)
    services.user_update(user=subject, data={"first_name": "Augusta Ada"}, actor=compliance)
    services.user_update(user=subject, data={"language": "fr-BE"}, actor=compliance)
    services.user_change_status(
        user=subject,
        status=Status.ACTIVE,
        actor=compliance,
        reason="Signed at the branch",
        reason_code="SIGNED_ON_PAPER",
    )
    page.goto(url("users:user-detail", subject.pk))
    timeline = page.locator("#history .timeline")
    expect(timeline).to_contain_text("Signed at the branch")
    expect(timeline).to_contain_text("off-flow")

    page.get_by_label("Compare version").fill("1")
    page.get_by_label("with", exact=True).fill("3")
    page.get_by_role("button", name="Show diff").click()
    diff = page.locator("#diff")
    expect(diff).to_contain_text("Version 1 → 3")
    expect(diff.locator('tr[data-field="first_name"]')).to_contain_text("Ada")
    expect(diff.locator('tr[data-field="first_name"]')).to_contain_text("Augusta Ada")
    expect(diff.locator('tr[data-field="language"]')).to_contain_text("fr-BE")
    expect(diff.locator('tr[data-field="status"]')).to_have_count(0)
    screenshot("diff")

    # One version's own diff from the table.
    page.locator("#history .versions tbody tr").first.get_by_role("link", name="diff").click()
    expect(diff).to_contain_text("Version 3 → 4")
    expect(diff.locator('tr[data-field="status"] td.new')).to_have_text("Active")  # a label


def test_status_move_with_reason_off_flow(page: Page, sign_in, url, screenshot):
    compliance = sign_in(Role.COMPLIANCE)
    subject = rich_user(compliance)
    page.goto(url("users:user-detail", subject.pk))
    status = page.locator("#status")
    expect(status.get_by_role("button", name="→ Waiting for signature")).to_be_visible()

    status.get_by_text("Off-flow move…").click()
    status.get_by_label("Move to").select_option(Status.ACTIVE)
    status.locator("#offflow-reason-code").select_option("SIGNED_ON_PAPER")
    status.locator("#offflow-reason").fill("Existing client, signed on paper")
    status.get_by_role("button", name="Move off the flow").click()
    expect(page.locator("#status")).to_contain_text("Moved to Active")
    expect(page.locator("#summary .badge").first).to_have_text("Active")
    expect(page.locator("#history .timeline li").first).to_contain_text(
        "Existing client, signed on paper"
    )
    expect(page.locator("#history .timeline li").first).to_contain_text("Signed on paper")
    saved = User.objects.get(pk=subject.pk)
    assert saved.status == Status.ACTIVE
    assert saved.status_changes.get(to_status=Status.ACTIVE).off_flow
    screenshot("moved")

    # The next recommended step works from the refreshed panel (its version is current).
    # Into Inactive: a reason code (the recommended form's select).
    page.locator("#move-reason-code").select_option("CLIENT_REQUEST")
    page.locator("#status").get_by_role("button", name="→ Inactive").click()
    expect(page.locator("#status")).to_contain_text("Moved to Inactive")


def test_delete_with_confirmation_then_restore(page: Page, sign_in, url, browser_context):
    admin = sign_in(Role.ADMIN)
    subject = rich_user(admin)
    page.goto(url("users:user-detail", subject.pk))
    page.get_by_role("link", name="Delete user…").click()
    expect(page.locator("#danger")).to_contain_text("Delete this user?")
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.locator("#summary")).to_contain_text("This user is deleted")
    assert User.objects.get(pk=subject.pk).deleted
    page.get_by_role("button", name="Restore user").click()
    expect(page.locator("#summary .badge-deleted")).to_have_count(0)
    assert not User.objects.get(pk=subject.pk).deleted


def test_detail_and_edit_work_without_javascript(browser, browser_context, sign_in, url):
    """The same screens with scripts off: plain forms, full pages, redirects."""
    admin = sign_in(Role.ADMIN)
    subject = rich_user(admin)
    context = browser.new_context(
        base_url=url("/"), java_script_enabled=False, viewport={"width": 1440, "height": 900}
    )
    context.add_cookies(browser_context.cookies())
    page = context.new_page()
    try:
        page.goto(url("users:user-detail", subject.pk))
        page.locator("#status").get_by_role("button", name="→ Waiting for signature").click()
        expect(page.get_by_text("Moved to Waiting for signature.")).to_be_visible()

        page.locator('#flags [data-flag="SELF_INVESTOR"]').click()
        expect(page.locator('#flags [data-flag="SELF_INVESTOR"]')).to_have_attribute(
            "aria-checked", "true"
        )

        page.get_by_role("link", name="Delete user…").click()
        expect(page).to_have_url(url("users:user-delete", subject.pk))
        page.get_by_role("button", name="Yes, delete").click()
        expect(page.locator("#summary")).to_contain_text("This user is deleted")
        page.get_by_role("button", name="Restore user").click()
        expect(page.get_by_text("User restored.")).to_be_visible()

        page.get_by_role("link", name="Edit").click()
        page.get_by_label("Account number").fill("BE01234567891234")
        page.get_by_role("button", name="Save changes").click()
        expect(page.locator("#field-bank_account_number")).to_contain_text(
            "IBAN check digits are wrong."
        )
        page.get_by_label("Account number").fill(VALID_IBANS[0])
        page.get_by_label("Last name").fill("Byron")
        page.get_by_role("button", name="Save changes").click()
        expect(page).to_have_url(url("users:user-detail", subject.pk))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Ada Byron")
    finally:
        context.close()
    saved = User.objects.get(pk=subject.pk)
    assert saved.status == Status.WAITING_FOR_SIGNATURE
    assert FeatureFlag.SELF_INVESTOR in saved.flag_names()
    assert not saved.deleted
    assert saved.last_name == "Byron"


@pytest.mark.parametrize("width", [1000, 1280])
def test_versions_table_shows_every_row_whole(page: Page, sign_in, url, screenshot, width):
    admin = sign_in(Role.ADMIN)
    admin.first_name, admin.last_name = "Maximiliana-Josephina", "Vandenberghe-Oosterlinck"
    admin.save(update_fields=["first_name", "last_name"])
    subject = rich_user(admin)
    for number in range(12):
        services.user_update(
            user=subject,
            data={
                "first_name": f"Ada {number}",
                "language": "fr-BE" if number % 2 else "nl-BE",
                "metadata": {"crm": str(number)},
                "nationalities": ["BE", "FR"] if number % 2 else ["BE", "NL"],
                "address": {
                    "line1": f"Rue de la Loi {number}",
                    "city": "Brussels",
                    "postal_code": "1000",
                    "country_code": "BE",
                },
            },
            actor=admin,
        )
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url("users:user-detail", subject.pk))
    wrap = page.locator("#history .versions-wrap")
    expect(wrap.locator("tbody tr")).to_have_count(13)
    screenshot(f"versions-{width}")
    clipped = page.evaluate(
        """() => {
          const wrap = document.querySelector('#history .versions-wrap');
          const box = wrap.getBoundingClientRect();
          const cells = [...wrap.querySelectorAll('tbody td')];
          return {
            sideways: wrap.scrollWidth - wrap.clientWidth,
            cut: cells.filter((td) => td.getBoundingClientRect().right > box.right + 0.5
                                   || td.scrollWidth > td.clientWidth + 1).length,
          };
        }"""
    )
    assert clipped == {"sideways": 0, "cut": 0}
    # Every row can be brought into view inside its panel, the last one included.
    last = wrap.locator("tbody tr").last
    last.scroll_into_view_if_needed()
    expect(last).to_be_in_viewport()
    header = wrap.locator("thead th").first.bounding_box()
    row = last.bounding_box()
    assert row["y"] >= header["y"] + header["height"] - 1  # not under the sticky header
