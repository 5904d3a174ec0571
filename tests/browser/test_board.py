"""The status board in a browser: moves by drag and by keyboard, reasons for off-flow moves."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.factories import make_user
from users.models import Role, Status, StatusChange, User


@pytest.fixture
def waiting(admin_user) -> User:
    return make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")


def card(page: Page, user: User):
    return page.locator(f"[data-card='{user.pk}']")


def column(page: Page, status: str):
    return page.locator(f"#column-{status}")


def test_move_a_card_by_drag_along_the_flow(page: Page, sign_in, url, waiting):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    expect(column(page, Status.WAITING_FOR_VERIFICATION)).to_contain_text("Wanda Waiting")
    expect(column(page, Status.WAITING_FOR_SIGNATURE).locator(".count")).to_have_text("0")

    card(page, waiting).drag_to(column(page, Status.WAITING_FOR_SIGNATURE))

    expect(column(page, Status.WAITING_FOR_SIGNATURE)).to_contain_text("Wanda Waiting")
    expect(column(page, Status.WAITING_FOR_SIGNATURE).locator(".count")).to_have_text("1")
    expect(page.locator("#board .board-errors")).to_contain_text("moved to Waiting for signature")
    # Keyboard users land on the result.
    expect(page.locator("#board .board-errors")).to_be_focused()
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_SIGNATURE


def test_off_flow_drag_asks_for_a_reason(page: Page, sign_in, url, waiting):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    card(page, waiting).drag_to(column(page, Status.ACTIVE))

    dialog = page.locator("#reason-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Wanda Waiting → Active")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog.locator("[data-reason-code-error]")).to_be_visible()
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION

    # Other asks for words too, before anything is sent.
    dialog.get_by_label("Reason code").select_option("OTHER")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog.locator("[data-reason-error]")).to_be_visible()
    expect(dialog.locator("[data-reason-code-error]")).to_be_hidden()

    dialog.get_by_label("Reason code").select_option("MANUAL_OVERRIDE")
    dialog.get_by_role("textbox", name="Reason").fill("KYC documents checked at the branch")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog).to_be_hidden()
    expect(column(page, Status.ACTIVE)).to_contain_text("Wanda Waiting")
    change = StatusChange.objects.get(user=waiting, to_status=Status.ACTIVE)
    assert change.off_flow
    assert change.reason == "KYC documents checked at the branch"
    assert change.reason_code_id == "MANUAL_OVERRIDE"


def test_a_recommended_drag_into_failed_asks_for_a_reason_code(page: Page, sign_in, url, waiting):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    card(page, waiting).drag_to(column(page, Status.VERIFICATION_FAILED))
    dialog = page.locator("#reason-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason code").select_option("DOCUMENT_EXPIRED")
    dialog.get_by_role("button", name="Move").click()
    expect(column(page, Status.VERIFICATION_FAILED)).to_contain_text("Wanda Waiting")
    change = StatusChange.objects.get(user=waiting, to_status=Status.VERIFICATION_FAILED)
    assert (change.reason_code_id, change.off_flow) == ("DOCUMENT_EXPIRED", False)


def test_move_a_card_with_the_keyboard(page: Page, sign_in, url, waiting, screenshot):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    menu = card(page, waiting).locator("summary")
    menu.focus()
    page.keyboard.press("Enter")
    select = card(page, waiting).get_by_label("Move to")
    expect(select).to_be_visible()
    screenshot("menu-open")
    # Recommended moves come first.
    expect(select.locator("option").first).to_have_text("Waiting for signature")

    # Off the flow without a reason: refused, nothing changes, the error says why.
    select.select_option(Status.INACTIVE)
    card(page, waiting).get_by_role("button", name="Move").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("reason")
    # The refreshed board has settled once the message has the focus (app.js); a keypress
    # before that could land on the card being replaced.
    expect(page.locator("#board .board-errors")).to_be_focused()
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION

    card(page, waiting).locator("summary").press("Enter")
    card(page, waiting).get_by_label("Move to").select_option(Status.INACTIVE)
    card(page, waiting).get_by_label("Reason code").select_option("CLIENT_REQUEST")
    reason = card(page, waiting).get_by_role("textbox", name="Reason")
    reason.fill("Customer asked to pause onboarding")
    reason.press("Enter")
    expect(column(page, Status.INACTIVE)).to_contain_text("Wanda Waiting")
    waiting.refresh_from_db()
    assert waiting.status == Status.INACTIVE


def test_board_applies_the_list_filters_and_loads_more(page: Page, sign_in, url, admin_user):
    for n in range(27):
        make_user(actor=admin_user, first_name="Bulk", last_name=f"Person{n:02d}")
    make_user(actor=admin_user, first_name="Other", last_name="Someone")
    # One card has waited past the SLA.
    old = make_user(actor=admin_user, first_name="Olga", last_name="Overdue")
    User.objects.filter(pk=old.pk).update(status_changed_at=timezone.now() - dt.timedelta(days=9))

    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:board", q="bulk"))
    waiting = column(page, Status.WAITING_FOR_VERIFICATION)
    expect(waiting.locator(".count")).to_have_text("27")
    expect(waiting.locator("[data-card]")).to_have_count(25)
    expect(waiting).not_to_contain_text("Other Someone")
    waiting.get_by_role("link", name="Load more").click()
    expect(waiting.locator("[data-card]")).to_have_count(27)

    page.locator("#board-q").fill("")
    # Everyone waiting: the 27, Other and Olga; the test's two console users are staff, whom
    # the board leaves out.
    expect(waiting.locator(".count")).to_have_text("29")
    # Longest waiting first, marked past the SLA.
    first = waiting.locator("[data-card]").first
    expect(first).to_contain_text("Olga Overdue")
    expect(first.locator(".sla")).to_be_visible()
    # Back office may look but not move.
    expect(page.locator(".movemenu")).to_have_count(0)


def test_refused_htmx_request_is_reported(page: Page, sign_in, url, waiting, page_problems):
    """A 403 on an htmx request is not swapped in; the page says so instead of doing nothing."""
    # Chromium logs the failed load and htmx its error event; both expected here.
    page_problems.allow(r"\b403\b")
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    # The role loses the permission while the page is open.
    Group.objects.get(name=Role.COMPLIANCE).permissions.remove(
        Permission.objects.get(codename="change_status")
    )
    card(page, waiting).locator("summary").click()
    card(page, waiting).get_by_role("button", name="Move").click()
    expect(page.locator("#messages")).to_contain_text("You do not have permission")
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION


def test_a_column_opened_with_load_more_stays_open_after_a_move(
    page: Page, sign_in, url, admin_user
):
    for n in range(27):
        make_user(actor=admin_user, first_name="Bulk", last_name=f"Person{n:02d}")
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board", q="bulk"))
    waiting = column(page, Status.WAITING_FOR_VERIFICATION)
    waiting.get_by_role("link", name="Load more").click()
    expect(waiting.locator("[data-card]")).to_have_count(27)
    expect(page).to_have_url(re.compile(r"limit_WAITING_FOR_VERIFICATION=50"))

    moving = waiting.locator("[data-card]").last
    name = moving.get_attribute("data-name")
    moving.locator("summary").click()
    moving.get_by_role("button", name="Move").click()
    expect(page.locator("#board .board-errors")).to_contain_text(f"{name} moved to")
    # 26 left, all shown: the column did not fall back to its first 25.
    expect(waiting.locator("[data-card]")).to_have_count(26)
    page.reload()
    expect(waiting.locator("[data-card]")).to_have_count(26)
