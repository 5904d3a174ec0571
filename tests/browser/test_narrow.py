"""Narrow screens (issue 11.14): at 900 and 1280 px wide the pages fit the window.

The page itself never scrolls sideways: the list's table scrolls inside its own panel (a
focusable, named region), its filters stack above it, and the board wraps its columns onto
more rows. Every key control stays visible or can be scrolled to. Each case saves a
screenshot of its width (artifacts/screenshots/test_*--<page>-<width>.png).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.factories import make_console_user, make_user, move_to
from users.models import FeatureFlag, Role, Status, User

WIDTHS = [900, 1280]
ROLES = [Role.ADMIN, Role.BACK_OFFICE, Role.COMPLIANCE]

# How each status is reached along the recommended flow from a new user.
PATHS = {
    Status.WAITING_FOR_VERIFICATION: [],
    Status.VERIFICATION_FAILED: [Status.VERIFICATION_FAILED],
    Status.WAITING_FOR_SIGNATURE: [Status.WAITING_FOR_SIGNATURE],
    Status.ACTIVE: [Status.WAITING_FOR_SIGNATURE, Status.ACTIVE],
    Status.INACTIVE: [Status.WAITING_FOR_SIGNATURE, Status.ACTIVE, Status.INACTIVE],
}


@pytest.fixture
def crowd(admin_user) -> list[User]:
    """Users with long names and emails, every flag, in every status (cards in every column)."""
    people = []
    for n in range(20):
        status = list(PATHS)[n % len(PATHS)]
        user = make_user(
            actor=admin_user,
            first_name=f"Maximiliana-Josephina {n}",
            last_name="Vandenberghe-Oosterlinck de la Fuente",
            email=f"maximiliana.josephina.vandenberghe-oosterlinck.{n}@investments.example.com",
            residency_country="BE",
            feature_flags=list(FeatureFlag.values),
        )
        for step in PATHS[status]:
            user = move_to(user, step, actor=admin_user)
        people.append(user)
    return people


def long_named(role: str) -> User:
    """Staff whose long name the top bar has to make room for."""
    return make_console_user(
        role, first_name="Alexandrina-Victoria", last_name="Saxe-Coburg-Gotha Hanover"
    )


def no_sideways_scroll(page: Page) -> None:
    sizes = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})"
    )
    assert sizes["page"] <= sizes["window"], f"the page scrolls sideways: {sizes}"


def reachable(page: Page, control: Locator) -> None:
    """Visible once scrolled to (the page down, or its panel sideways), inside the window."""
    expect(control).to_be_visible()
    control.scroll_into_view_if_needed()
    expect(control).to_be_in_viewport()
    box = control.bounding_box()
    width = page.evaluate("() => window.innerWidth")
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width + 0.5, (box, width)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("width", WIDTHS)
def test_user_list_fits(page: Page, sign_in, url, screenshot, crowd, role, width):
    sign_in(long_named(role))
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url("users:user-list"))
    results = page.locator("#results")
    expect(results.locator("tbody tr")).to_have_count(len(crowd) + 2)  # admin_user and the staff
    screenshot(f"list-{width}")
    no_sideways_scroll(page)

    # The filters, the search, the bulk bar, every column and the pagination can be reached.
    reachable(page, page.get_by_role("button", name="Apply filters"))
    reachable(page, page.get_by_label("Residency country"))
    reachable(page, page.locator("#search-q"))
    reachable(page, page.get_by_role("button", name="Search"))
    if role != Role.BACK_OFFICE:  # back office moves nobody and grants no flags: no bulk bar
        reachable(page, results.locator("[data-bulk-all]"))
        reachable(page, results.locator("#bulk-form button").last)
    reachable(page, results.get_by_role("link", name="Created"))
    reachable(page, results.locator("tbody tr").first.locator("td").last)
    reachable(page, results.get_by_role("link", name="Maximiliana-Josephina 0 Vandenberghe"))
    reachable(page, results.get_by_role("navigation", name="Pages"))
    if role != Role.COMPLIANCE:
        reachable(page, page.locator(".page-actions").get_by_role("link", name="New user"))
    reachable(page, page.locator(".usermenu summary"))
    no_sideways_scroll(page)

    # The table scrolls inside its panel, never past it: a named region a keyboard can scroll.
    region = results.get_by_role("region", name="Users")
    expect(region).to_have_attribute("tabindex", "0")
    panel = results.bounding_box()
    table = region.bounding_box()
    assert table["x"] >= panel["x"], (table, panel)
    assert table["x"] + table["width"] <= panel["x"] + panel["width"] + 0.5, (table, panel)
    if region.evaluate("(el) => el.scrollWidth > el.clientWidth"):
        region.evaluate("(el) => { el.scrollLeft = 0; }")
        region.focus()
        page.keyboard.press("ArrowRight")
        expect(region).not_to_have_js_property("scrollLeft", 0)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("width", WIDTHS)
def test_status_board_fits(page: Page, sign_in, url, screenshot, crowd, role, width):
    sign_in(long_named(role))
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url("users:board"))
    columns = page.locator("#board .column")
    expect(columns).to_have_count(len(Status))
    for status in Status:
        expect(page.locator(f"#column-{status} .bcard").first).to_be_visible()
    screenshot(f"board-{width}")
    no_sideways_scroll(page)

    # Every column is whole inside the window: the board wraps instead of scrolling.
    board = page.evaluate(
        "() => { const b = document.querySelector('#board .board');"
        " return {scroll: b.scrollWidth, client: b.clientWidth}; }"
    )
    assert board["scroll"] <= board["client"], board
    for status in Status:
        reachable(page, page.locator(f"#head-{status}"))
        reachable(page, page.locator(f"#column-{status} .bcard").first)
    reachable(page, page.locator("#board-q"))
    reachable(page, page.locator("#board-filters").get_by_role("button", name="Apply"))
    reachable(page, page.get_by_label("Residency country"))
    reachable(page, page.get_by_role("link", name="Open as list"))
    reachable(page, page.locator(".usermenu summary"))
    if role != Role.BACK_OFFICE:  # back office reads the board; it moves nobody
        menu = page.locator(f"#column-{Status.INACTIVE} .movemenu").first
        reachable(page, menu.locator("summary"))
        menu.locator("summary").click()
        reachable(page, menu.get_by_role("button", name="Move"))
    no_sideways_scroll(page)


def test_detail_and_edit_fit_at_900(page: Page, sign_in, url, screenshot, crowd):
    sign_in(long_named(Role.ADMIN))
    subject = crowd[3]
    page.set_viewport_size({"width": 900, "height": 900})
    page.goto(url("users:user-detail", subject.pk))
    expect(page.locator("#summary")).to_be_visible()
    screenshot("detail-900")
    no_sideways_scroll(page)
    reachable(page, page.get_by_role("link", name="Edit"))
    reachable(page, page.locator("#history .versions tbody tr").first)

    page.goto(url("users:user-edit", subject.pk))
    save = page.get_by_role("button", name="Save")
    expect(save).to_be_visible()
    screenshot("edit-900")
    no_sideways_scroll(page)
    reachable(page, page.get_by_label("First name"))
    reachable(page, save)
    no_sideways_scroll(page)
