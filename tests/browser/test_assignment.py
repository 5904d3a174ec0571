"""Assignment and the board's behaviour in a browser (issue 14.1, 14.5): assign to me and see
the assignee on the card; a moved card stays first in its column, highlighted, until reload."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.factories import make_user
from users.models import Role, Status, User
from users.services import user_change_status


def card(page: Page, user: User):
    return page.locator(f"[data-card='{user.pk}']")


def column(page: Page, status: str):
    return page.locator(f"#column-{status}")


def test_assign_to_me_on_the_detail_then_see_it_on_the_board(page: Page, sign_in, url, admin_user):
    case = make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")
    other = make_user(actor=admin_user, first_name="Otto", last_name="Other")
    me = sign_in(Role.COMPLIANCE)
    page.goto(url("users:user-detail", case.pk))
    panel = page.locator("#assignment")
    expect(panel).to_contain_text("Unassigned")
    panel.get_by_role("button", name="Assign to me").click()
    expect(panel.get_by_role("status")).to_have_text(f"Assigned to {me.display_name}.")
    expect(panel).to_contain_text(f"Assigned to {me.display_name}")
    # The timeline refreshed itself with the change.
    expect(page.locator("#history .timeline")).to_contain_text(f"Assigned to {me.display_name}")
    assert User.objects.get(pk=case.pk).assignee_id == me.pk

    page.goto(url("users:board"))
    expect(card(page, case).locator(".bcard-assignee")).to_have_text(
        f"Assigned to {me.display_name}"
    )
    expect(card(page, other).locator(".bcard-assignee")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Open cases by assignee")).to_contain_text(
        f"{me.display_name} 1"
    )
    # "Mine": only the case assigned to me.
    page.get_by_label("Assignee", exact=True).select_option("me")
    expect(card(page, other)).to_have_count(0)
    expect(card(page, case)).to_be_visible()
    expect(page).to_have_url(url("users:board", assignee="me"))


def test_assign_to_me_on_a_board_card(page: Page, sign_in, url, admin_user):
    case = make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")
    me = sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    expect(card(page, case).locator(".bcard-assignee")).to_have_count(0)
    card(page, case).locator("summary").click()
    card(page, case).get_by_role("button", name="Assign to me").click()
    expect(page.locator("#board .board-errors")).to_have_text("Wanda Waiting assigned to you.")
    expect(page.locator("#board .board-errors")).to_be_focused()
    expect(card(page, case).locator(".bcard-assignee")).to_have_text(
        f"Assigned to {me.display_name}"
    )
    expect(card(page, case).get_by_role("button", name="Assign to me")).to_have_count(0)
    assert User.objects.get(pk=case.pk).assignee_id == me.pk


def test_a_moved_card_stays_first_in_its_column_highlighted(page: Page, sign_in, url, admin_user):
    # 26 cards already wait longer in the target column than the one about to arrive.
    for n in range(26):
        older = make_user(actor=admin_user, first_name="Older", last_name=f"S{n:02d}")
        user_change_status(user=older, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    mover = make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    target = column(page, Status.WAITING_FOR_SIGNATURE)
    expect(target.locator("[data-card]")).to_have_count(25)

    card(page, mover).locator("summary").click()
    card(page, mover).get_by_label("Move to").select_option(Status.WAITING_FOR_SIGNATURE)
    card(page, mover).get_by_role("button", name="Move").click()

    expect(page.locator("#board .board-errors")).to_contain_text("moved to Waiting for signature")
    first = target.locator("[data-card]").first
    expect(first).to_have_attribute("data-card", mover.pk)
    expect(first).to_have_class("bcard is-moved")
    expect(target.locator(".count")).to_have_text("27")

    # Until the next reload: then the column is in its own order, the newcomer past the 25.
    page.reload()
    expect(target.locator("[data-card]")).to_have_count(25)
    expect(card(page, mover)).to_have_count(0)
    expect(target.locator(".is-moved")).to_have_count(0)
