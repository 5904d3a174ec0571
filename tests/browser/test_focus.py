"""Focus after htmx swaps (issue 11 point 13, WCAG 2.4.3): a region replaced under the keyboard
focus hands the focus to something sensible in its successor, never to <body>.

- the same control when it is still there (a flag switch keeps its id: htmx restores it);
- after an action (POST), the region's error, else its message ("Moved to Active");
- after a navigation inside a region (a sort or page link), the same link in the new region.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.factories import make_user
from users.models import FeatureFlag, Role, Status, User

SETTLED = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


def test_flag_toggle_keeps_the_focus_on_the_switch(page: Page, sign_in, url, admin_user):
    sign_in(Role.ADMIN)
    subject = make_user(actor=admin_user)
    page.goto(url("users:user-detail", subject.pk))
    switch = page.locator('#flags [data-flag="ROBO_ADVISOR"]')
    switch.focus()
    page.keyboard.press("Enter")
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_be_focused()
    # The keyboard goes on from there: Space turns it off again (once htmx has settled the new
    # region and taken over its form; a press before that posts the form without htmx).
    page.wait_for_function(SETTLED)
    page.keyboard.press("Space")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_be_focused()
    # The other regions refresh after a change and leave the focus where it is.
    expect(page.locator("#summary")).to_contain_text("Version 3")
    expect(page.locator("#history .versions tbody tr")).to_have_count(3)
    expect(switch).to_be_focused()
    assert FeatureFlag.ROBO_ADVISOR not in User.objects.get(pk=subject.pk).flag_names()


def test_status_move_puts_the_focus_on_its_result(page: Page, sign_in, url, admin_user):
    sign_in(Role.COMPLIANCE)
    subject = make_user(actor=admin_user)
    page.goto(url("users:user-detail", subject.pk))
    status = page.locator("#status")
    status.get_by_role("button", name="→ Waiting for signature").focus()
    page.keyboard.press("Enter")
    message = page.locator("#status").get_by_role("status")
    expect(message).to_have_text("Moved to Waiting for signature.")
    expect(message).to_be_focused()
    assert User.objects.get(pk=subject.pk).status == Status.WAITING_FOR_SIGNATURE

    # A refusal: the error has the focus.
    page.wait_for_function(SETTLED)
    page.locator("#status").get_by_text("Off-flow move…").click()
    # Other with blank words passes the browser's checks, not the server's.
    page.locator("#status").locator("#offflow-reason-code").select_option("OTHER")
    page.locator("#offflow-reason").fill(" ")
    page.locator("#status").get_by_role("button", name="Move off the flow").press("Enter")
    error = page.locator("#status").get_by_role("alert")
    expect(error).to_be_visible()
    expect(error).to_be_focused()


def test_board_move_puts_the_focus_on_its_result(page: Page, sign_in, url, admin_user):
    waiting = make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    card = page.locator(f"[data-card='{waiting.pk}']")
    card.locator("summary").press("Enter")
    card.get_by_role("button", name="Move").press("Enter")
    expect(page.locator("#board .board-errors")).to_contain_text("moved to")
    expect(page.locator("#board .board-errors")).to_be_focused()


def test_bulk_action_puts_the_focus_on_its_report(page: Page, sign_in, url, admin_user):
    for n in range(2):
        make_user(actor=admin_user, first_name="Bulk", last_name=f"Person{n}")
    sign_in(Role.ADMIN)
    page.goto(url("users:user-list", q="bulk"))
    page.get_by_label("Select all on this page").check()
    page.locator("#bulk-flag").select_option(FeatureFlag.ROBO_ADVISOR)
    page.get_by_role("button", name="Grant").press("Enter")
    report = page.locator("#results .bulk-report")
    expect(report).to_contain_text("2 users")
    expect(report).to_be_focused()


def test_sort_and_page_links_keep_the_focus(page: Page, sign_in, url, admin_user, monkeypatch):
    from users.views import list as list_views

    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    for n in range(5):
        make_user(actor=admin_user, first_name="Paged", last_name=f"Person{n}")
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-list"))
    sort = page.locator("#results").get_by_role("link", name="Name")
    sort.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(sort).to_be_focused()

    page.wait_for_function(SETTLED)
    following = page.locator("#results").get_by_role("link", name="Next")
    following.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(following).to_be_focused()


def test_cancelling_a_confirmation_returns_to_what_opened_it(page: Page, sign_in, url, admin_user):
    sign_in(Role.BACK_OFFICE)
    subject = make_user(actor=admin_user)
    page.goto(url("users:user-detail", subject.pk))
    page.get_by_role("link", name="Delete user…").press("Enter")
    expect(page.get_by_role("button", name="Yes, delete")).to_be_focused()  # autofocus
    page.wait_for_function(SETTLED)
    page.get_by_role("link", name="Cancel").press("Enter")
    expect(page.get_by_role("link", name="Delete user…")).to_be_focused()
    assert not User.objects.get(pk=subject.pk).deleted


def test_load_more_puts_the_focus_on_the_first_new_card(page: Page, sign_in, url, admin_user):
    for n in range(27):
        make_user(actor=admin_user, first_name="Bulk", last_name=f"Person{n:02d}")
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:board", q="bulk"))
    column = page.locator(f"#column-{Status.WAITING_FOR_VERIFICATION}")
    column.get_by_role("link", name="Load more").press("Enter")
    expect(column.locator("[data-card]")).to_have_count(27)
    expect(column.locator("[data-card]").nth(25).locator("a.bcard-name")).to_be_focused()
