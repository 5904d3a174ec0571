"""Case notes and reason codes in a browser (issue 14.2, 14.3): a note added with a move, on the
board and on the detail page, shows in the timeline with the move's reason code."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import make_user
from users.models import CaseNote, Role, Status, StatusChange, User


@pytest.fixture
def waiting(admin_user) -> User:
    return make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")


def test_add_a_note_with_a_move_on_the_board(page: Page, sign_in, url, waiting, screenshot):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:board"))
    page.locator(f"[data-card='{waiting.pk}']").drag_to(
        page.locator(f"#column-{Status.VERIFICATION_FAILED}")
    )
    dialog = page.locator("#reason-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Wanda Waiting → Verification failed")
    dialog.get_by_label("Reason code").select_option(label="Identity document expired")
    dialog.get_by_label("Case note").fill("Passport expired in January; asked for the new one.")
    screenshot("dialog")
    dialog.get_by_role("button", name="Move").click()
    expect(page.locator(f"#column-{Status.VERIFICATION_FAILED}")).to_contain_text("Wanda Waiting")

    change = StatusChange.objects.get(user=waiting, to_status=Status.VERIFICATION_FAILED)
    note = CaseNote.objects.get(user=waiting)
    assert change.reason_code_id == "DOCUMENT_EXPIRED"
    assert note.created_at == change.changed_at

    page.goto(url("users:user-detail", waiting.pk))
    entries = page.locator("#history .timeline > li")
    # Newest first: the note written with the move, then the move with its code's label.
    expect(entries.nth(0)).to_contain_text("Passport expired in January")
    expect(entries.nth(1)).to_contain_text("Verification failed")
    expect(entries.nth(1)).to_contain_text("Identity document expired")


def test_add_a_note_with_a_move_and_alone_on_the_detail(page: Page, sign_in, url, waiting):
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:user-detail", waiting.pk))
    status = page.locator("#status")
    status.locator("#move-reason-code").select_option("NAME_MISMATCH")
    status.locator("#move-case-note").fill("Maiden name on the ID card.")
    status.get_by_role("button", name="→ Verification failed").click()
    expect(page.locator("#status")).to_contain_text("Moved to Verification failed")
    timeline = page.locator("#history .timeline")
    expect(timeline).to_contain_text("Maiden name on the ID card.")
    expect(timeline).to_contain_text("Name does not match the document")

    # A note alone, from its own panel: the timeline refreshes itself.
    page.locator("#note").get_by_label("Add a note").fill("Marriage certificate requested.")
    page.locator("#note").get_by_role("button", name="Add note").click()
    expect(page.locator("#note")).to_contain_text("Note added to the case.")
    expect(page.locator("#history .timeline > li").first).to_contain_text(
        "Marriage certificate requested."
    )
    assert list(
        CaseNote.objects.filter(user=waiting).order_by("created_at").values_list("text", flat=True)
    ) == ["Maiden name on the ID card.", "Marriage certificate requested."]
