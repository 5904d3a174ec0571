"""The user list in a browser: live search, bookmarkable filters, query errors, bulk moves."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import VALID_IBANS, make_user
from users import services
from users.models import Role, Status, StatusChange


@pytest.fixture
def people(admin_user):
    marc = make_user(
        actor=admin_user,
        first_name="Marc",
        last_name="Peeters",
        phone="+32470123456",
        residency_country="BE",
        counter_account={"bank_account_number": VALID_IBANS[0], "bank_account_number_type": "IBAN"},
    )
    anna = make_user(
        actor=admin_user, first_name="Anna", last_name="de Vries", residency_country="NL"
    )
    services.user_change_status(user=anna, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    services.user_change_status(user=anna, status=Status.ACTIVE, actor=admin_user)
    jan = make_user(
        actor=admin_user, first_name="Jan", last_name="Janssens", residency_country="BE"
    )
    return {"marc": marc, "anna": anna, "jan": jan}


def rows(page: Page):
    return page.locator("#results tbody tr")


def test_live_search_recognises_what_was_typed(page: Page, sign_in, url, people):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-list"))
    expect(page.locator("#result-count")).to_contain_text("users")

    search = page.locator("#search-q")
    page.keyboard.press("/")
    expect(search).to_be_focused()
    # Typing is enough: the results follow after the debounce, no Enter needed.
    search.press_sequentially("peeters", delay=20)
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Marc Peeters")
    expect(page).to_have_url(re.compile(r"/users/\?q=peeters$"))

    # A phone number in another format, and an IBAN with spaces, find the same person.
    search.fill("0032 470 12 34 56")
    expect(page.locator(".search-kind")).to_contain_text("phone")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Marc Peeters")
    search.fill("be71 0961 2345 6769")
    expect(page.locator(".search-kind")).to_contain_text("IBAN")
    expect(rows(page).first).to_contain_text("Marc Peeters")

    # Two words match first and last name in either order.
    search.fill("vries anna")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Anna de Vries")

    search.fill("nobody-by-this-name")
    expect(page.locator(".empty-title")).to_have_text("No users match")


def test_filter_then_reload_the_bookmarked_url(page: Page, sign_in, url, people):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:user-list"))
    page.get_by_label("Residency country").select_option("BE")
    expect(page).to_have_url(re.compile(r"residency_country=BE"))
    expect(rows(page)).to_have_count(2)
    page.locator("#results").get_by_role("link", name="Name").click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(rows(page).first).to_contain_text("Jan Janssens")
    page.locator("#results").get_by_role("link", name="Name").click()
    expect(page).to_have_url(re.compile(r"sort=-name"))
    expect(rows(page).first).to_contain_text("Marc Peeters")

    bookmarked = page.url
    page.goto("about:blank")
    page.goto(bookmarked)
    expect(page.get_by_label("Residency country")).to_have_value("BE")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_contain_text("Marc Peeters")
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("Name")

    # A filter change keeps the sort.
    page.locator(".filters").get_by_text("Active", exact=True).click()
    expect(page).to_have_url(re.compile(r"status=ACTIVE"))
    expect(page).to_have_url(re.compile(r"sort=-name"))
    expect(page.locator(".empty-title")).to_have_text("No users match")


def test_query_mode_points_at_the_error(page: Page, sign_in, url, people):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-list"))
    page.get_by_text("Query", exact=True).click()
    page.locator("#search-q").fill("residency_country eq 'NL' and")
    error = page.locator(".query-error")
    expect(error).to_be_visible()
    expect(error.locator(".caret")).to_have_text(re.compile(r"^ {29}\^$"))

    page.locator("#search-q").fill("residency_country eq 'NL' orderby last_name desc")
    expect(error).to_have_count(0)
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Anna de Vries")


def test_bulk_move_reports_each_refusal(page: Page, sign_in, url, people):
    sign_in(Role.ADMIN)
    page.goto(url("users:user-list", residency_country="BE"))
    expect(rows(page)).to_have_count(2)
    page.get_by_label("Select all on this page").check()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected")
    # Both are waiting for verification: going straight to Active is off the flow.
    page.locator("#bulk-status").select_option(Status.ACTIVE)
    page.get_by_role("button", name="Move", exact=True).click()
    report = page.locator(".bulk-report")
    expect(report).to_contain_text("2 not changed")
    expect(report).to_contain_text("reason")
    page.locator("#bulk-reason-code").select_option("MANUAL_OVERRIDE")
    page.locator("#bulk-reason").fill("Verified by phone with the branch")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(report).to_contain_text("2 users moved to Active")
    assert (
        StatusChange.objects.filter(
            to_status=Status.ACTIVE, off_flow=True, reason="Verified by phone with the branch"
        ).count()
        == 2
    )


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_next_and_previous_pages(
    browser, browser_context, page: Page, sign_in, url, admin_user, monkeypatch, javascript
):
    from users.views import list as list_views

    for n in range(6):
        make_user(actor=admin_user, first_name=f"Paged{n:02d}", last_name="Person")
    monkeypatch.setattr(list_views, "PAGE_SIZE", 3)
    sign_in(Role.BACK_OFFICE)
    context = None
    if not javascript:
        context = browser.new_context(base_url=url("/"), java_script_enabled=False)
        context.add_cookies(browser_context.cookies())
        page = context.new_page()
    try:
        walk_pages(page, url)
    finally:
        if context is not None:
            context.close()


def walk_pages(page: Page, url) -> None:
    names = page.locator("#results tbody td.name a")
    page.goto(url("users:user-list"))
    expect(names).to_have_count(3)
    first = names.all_inner_texts()

    # Next continues from the last row shown, and the address bar says so.
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"/users/\?page=2&after=U[0-9A-Z]{26}$"))
    expect(page.locator(".pagination .current")).to_contain_text("Page 2")
    second = names.all_inner_texts()
    assert len(second) == 3
    assert not set(first) & set(second)

    # A reload shows the same rows; Previous goes back to the plain first page.
    page.reload()
    expect(names).to_have_text(second)
    page.get_by_role("link", name="Previous").click()
    expect(page).to_have_url(url("users:user-list"))
    expect(names).to_have_text(first)
