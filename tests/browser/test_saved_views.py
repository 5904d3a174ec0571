"""Saved views in a browser (issue 14.7): save the filtered list, sign out, sign in again (the
real form, with the second factor) and reopen it from the sidebar; save a board filtered with
htmx; rename and delete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.factories import make_console_user, make_user
from users.models import Role, SavedView


@pytest.fixture
def people(admin_user):
    return {
        "be": [
            make_user(
                actor=admin_user, first_name="Marc", last_name=f"Peeters{n}", residency_country="BE"
            )
            for n in range(2)
        ],
        "nl": make_user(
            actor=admin_user, first_name="Anna", last_name="de Vries", residency_country="NL"
        ),
    }


def sign_out(page: Page) -> None:
    page.locator(".usermenu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))


def rows(page: Page):
    return page.locator("#results tbody tr")


def test_save_a_view_and_reopen_it_after_signing_in_again(
    page: Page, sign_in, sign_in_with_form, url, people
):
    me = make_console_user(Role.COMPLIANCE, password=PASSWORD)
    sign_in(me)
    page.goto(url("users:user-list"))
    expect(rows(page)).to_have_count(5)  # three clients, the admin and me
    page.get_by_label("Residency country").select_option("BE")
    expect(rows(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"/users/\?residency_country=BE$"))

    block = page.locator("#saved-views")
    block.get_by_text("Save this view…").click()
    block.get_by_label("Name").fill("Belgian clients")
    block.get_by_label("Share with").select_option(Role.COMPLIANCE)
    block.get_by_role("button", name="Save view").click()
    expect(block.get_by_role("status")).to_have_text("Saved “Belgian clients”.")
    link = block.get_by_role("link", name="Belgian clients", exact=True)
    expect(link).to_have_attribute("aria-current", "page")
    expect(block.locator(".savedview .count")).to_have_text("2")
    view = SavedView.objects.get()
    assert (view.query, view.shared_with_role.name) == ("residency_country=BE", Role.COMPLIANCE)

    sign_out(page)
    sign_in_with_form(me)
    page.goto(url("users:user-list"))
    expect(rows(page)).to_have_count(5)
    page.locator("#saved-views").get_by_role("link", name="Belgian clients", exact=True).click()
    expect(page).to_have_url(re.compile(r"/users/\?residency_country=BE$"))
    expect(page.get_by_label("Residency country")).to_have_value("BE")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_contain_text("Peeters")

    # A colleague of the same role sees it, read-only.
    colleague = make_console_user(Role.COMPLIANCE, password=PASSWORD)
    sign_out(page)
    sign_in(colleague)
    page.goto(url("users:user-list"))
    shared = page.locator("#saved-views")
    expect(shared.get_by_role("link", name="Belgian clients", exact=True)).to_be_visible()
    expect(shared.get_by_role("link", name=re.compile("^Rename"))).to_have_count(0)


def test_save_the_board_as_filtered_then_rename_and_delete(page: Page, sign_in, url, people):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:board"))
    page.get_by_label("Residency country").select_option("NL")
    expect(page).to_have_url(re.compile(r"/board/\?residency_country=NL$"))

    block = page.locator("#saved-views")
    block.get_by_text("Save this view…").click()
    block.get_by_label("Name").fill("Dutch")
    block.get_by_role("button", name="Save view").click()
    expect(block.get_by_role("status")).to_have_text("Saved “Dutch”.")
    # Saved as the address bar said after the htmx filter change, not as the page was drawn.
    assert SavedView.objects.get().query == "residency_country=NL"
    expect(block.locator(".savedview .count")).to_have_text("1")

    block.get_by_text("Save this view…").click()
    block.get_by_label("Name").fill("Everyone")
    block.get_by_role("button", name="Save view").click()
    expect(block.get_by_role("status")).to_have_text("Saved “Everyone”.")

    block.get_by_role("link", name="Rename “Dutch”").click()
    name = block.get_by_label("New name")
    expect(name).to_be_focused()
    name.fill("Everyone")
    block.get_by_role("button", name="Save", exact=True).click()
    expect(block.get_by_role("alert")).to_contain_text("You already have a view named “Everyone”")
    block.get_by_label("New name").fill("Netherlands")
    block.get_by_role("button", name="Save", exact=True).click()
    expect(block.get_by_role("status")).to_have_text("Saved as “Netherlands”.")

    block.get_by_role("link", name="Delete “Netherlands”").click()
    expect(block.get_by_role("alertdialog")).to_contain_text("Delete “Netherlands”?")
    block.get_by_role("link", name="Cancel").click()
    expect(block.get_by_role("link", name="Rename “Netherlands”")).to_be_focused()
    block.get_by_role("link", name="Delete “Netherlands”").click()
    block.get_by_role("button", name="Yes, delete").click()
    expect(block.get_by_role("status")).to_have_text("Deleted “Netherlands”.")
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Everyone"]
