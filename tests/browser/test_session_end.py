"""The session ends while editing (issue 10.4): Save sends the person to sign in, signing in
again brings them back to the edit page with what they typed, and it saves."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import BrowserContext, Page, expect

from tests.factories import make_user
from users import services
from users.models import User

RESTORED_NOTE = "Your unsaved changes were restored; check them and save."


def end_by_deleting_the_session(context: BrowserContext) -> None:
    Session.objects.all().delete()


def end_by_clearing_every_cookie(context: BrowserContext) -> None:
    context.clear_cookies()


@pytest.mark.parametrize("end", [end_by_deleting_the_session, end_by_clearing_every_cookie])
def test_typed_edit_survives_the_end_of_the_session(
    page: Page, browser_context, page_problems, url, sign_in, sign_in_with_form, end
):
    # The refused htmx request (401, or 403 for the CSRF token without its cookie).
    page_problems.allow(r"Failed to load resource: the server responded with a status of 40[13]")
    person = sign_in("back_office")
    subject = make_user(first_name="Before")
    edit = url("users:user-edit", subject.pk)
    page.goto(edit)
    page.get_by_label("First name").fill("Typed while signed out")
    end(browser_context)
    page.get_by_role("button", name="Save changes").click()

    expect(page).to_have_url(re.compile(r"/login/\?next=" + re.escape(f"%2Fusers%2F{subject.pk}")))
    assert User.objects.get(pk=subject.pk).first_name == "Before"
    sign_in_with_form(person, here=True)

    expect(page).to_have_url(edit)
    expect(page.get_by_text(RESTORED_NOTE)).to_be_visible()
    expect(page.get_by_label("First name")).to_have_value("Typed while signed out")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(url("users:user-detail", subject.pk))
    assert User.objects.get(pk=subject.pk).first_name == "Typed while signed out"
    # Nothing is left to restore: the edit page opens with the saved values and no note.
    page.goto(edit)
    expect(page.get_by_label("First name")).to_have_value("Typed while signed out")
    expect(page.get_by_text(RESTORED_NOTE)).to_have_count(0)


def test_restored_edit_of_a_record_changed_meanwhile_shows_the_conflict(
    page: Page, page_problems, url, sign_in, sign_in_with_form
):
    page_problems.allow(r"Failed to load resource: the server responded with a status of 401")
    person = sign_in("back_office")
    subject = make_user(first_name="Before", last_name="Original")
    page.goto(url("users:user-edit", subject.pk))
    page.get_by_label("First name").fill("Mine")
    Session.objects.all().delete()
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    services.user_update(user=subject, data={"last_name": "Theirs"}, actor=None)
    sign_in_with_form(person, here=True)

    expect(page.get_by_label("First name")).to_have_value("Mine")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Someone else changed Before Theirs while you were editing"  # the name as it is now
    )
    stored = User.objects.get(pk=subject.pk)
    assert (stored.first_name, stored.last_name) == ("Before", "Theirs")


def test_discarding_restored_changes(page: Page, page_problems, url, sign_in, sign_in_with_form):
    page_problems.allow(r"Failed to load resource: the server responded with a status of 401")
    person = sign_in("back_office")
    subject = make_user(first_name="Before")
    page.goto(url("users:user-edit", subject.pk))
    page.get_by_label("First name").fill("Unwanted")
    Session.objects.all().delete()
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    sign_in_with_form(person, here=True)

    expect(page.get_by_label("First name")).to_have_value("Unwanted")
    page.get_by_role("button", name="Discard restored changes").click()
    expect(page.get_by_text(RESTORED_NOTE)).to_have_count(0)
    expect(page.get_by_label("First name")).to_have_value("Before")
