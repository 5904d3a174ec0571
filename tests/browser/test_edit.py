"""Create and edit in a real browser: blur validation, write-once, a stale save's conflict."""

from __future__ import annotations

import re

from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.factories import make_user
from users.models import Role, User


def field(page: Page, name: str):
    return page.locator(f"#field-{name}")


def test_create_with_a_bad_iban_then_fix_it(page: Page, sign_in, url, screenshot):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-create"))
    expect(page.get_by_label("First name")).to_be_focused()  # autofocus

    page.get_by_label("First name").fill("Iban")
    page.get_by_label("Last name").fill("Tester")
    page.get_by_label("Account number").fill("BE01234567891234")
    page.get_by_label("Account number").press("Tab")  # blur: checked through htmx
    expect(field(page, "bank_account_number").locator(".errorlist")).to_have_text(
        "IBAN check digits are wrong."
    )
    expect(page.get_by_label("Account number")).to_have_attribute("aria-invalid", "true")
    screenshot("error-on-blur")

    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_be_visible()
    expect(field(page, "bank_account_number").locator(".errorlist")).to_have_text(
        "IBAN check digits are wrong."
    )
    expect(page.get_by_label("Account number")).to_be_focused()  # the problem gets the keyboard
    expect(page.get_by_label("Account number")).to_have_value("BE01234567891234")
    assert not User.objects.filter(last_name="Tester").exists()
    screenshot("error-on-submit")

    page.get_by_label("Account number").fill("BE71 0961 2345 6769")
    page.get_by_label("Account number").press("Tab")
    hint = field(page, "bank_account_number").locator(".field-ok")
    expect(hint).to_contain_text("BE71 0961 2345 6769")
    expect(hint).to_contain_text("GKCCBEBB")
    expect(field(page, "bank_account_number").locator(".errorlist")).to_have_count(0)
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_have_count(0)  # all fixed
    screenshot("iban-hint")
    hint.get_by_role("button", name="Use this BIC").click()
    expect(page.get_by_label("Bank id", exact=True)).to_have_value("GKCCBEBB")

    page.get_by_label("Phone").fill("+32 470 12 34 99")
    page.get_by_label("Phone").press("Tab")
    expect(field(page, "phone").locator(".field-ok")).to_contain_text("+32470123499")

    page.get_by_label("Last name").press("Enter")  # Enter submits
    expect(page).to_have_url(re.compile(r"/users/U[0-9A-Z]{26}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Iban Tester")
    expect(page.locator("#h-account").locator("xpath=../..")).to_contain_text("GKCCBEBB")
    created = User.objects.get(last_name="Tester")
    assert created.bank_account_number == "BE71096123456769"
    assert created.bank_id == "GKCCBEBB"
    assert created.phone == "+32470123499"


def test_email_is_read_only_on_edit(page: Page, sign_in, url):
    actor = sign_in(Role.BACK_OFFICE)
    subject = make_user(actor=actor, email="fixed@example.com")
    page.goto(url("users:user-edit", subject.pk))
    expect(page.get_by_label("First name")).to_be_focused()
    email = page.get_by_label("Email")
    expect(email).to_have_value("fixed@example.com")
    expect(email).to_have_attribute("readonly", "")
    expect(field(page, "email")).to_contain_text("write-once")
    email.press("End")
    email.type("x")  # typing into a read-only input changes nothing
    expect(email).to_have_value("fixed@example.com")


def test_edit_in_two_tabs_gets_the_conflict_on_the_stale_one(
    page: Page, browser_context, sign_in, url, screenshot
):
    actor = sign_in(Role.BACK_OFFICE)
    subject = make_user(actor=actor, first_name="Grace", last_name="Hopper")
    edit = url("users:user-edit", subject.pk)
    other = browser_context.new_page()
    page.goto(edit)
    other.goto(edit)

    other.get_by_label("Last name").fill("Brewster")
    other.get_by_role("button", name="Save changes").click()
    expect(other).to_have_url(url("users:user-detail", subject.pk))
    other.close()

    page.get_by_label("First name").fill("Amazing Grace")
    page.get_by_role("button", name="Save changes").click()
    conflict = page.locator(".conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Someone else changed Grace Brewster")  # the current name
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit Grace Brewster")
    expect(conflict.locator('tr[data-field="last_name"]')).to_contain_text("Hopper")
    expect(conflict.locator('tr[data-field="last_name"]')).to_contain_text("Brewster")
    expect(conflict).to_be_focused()
    # Their change is in the form now; the user's own edit is kept.
    expect(page.get_by_label("Last name")).to_have_value("Brewster")
    expect(page.get_by_label("First name")).to_have_value("Amazing Grace")
    assert User.objects.get(pk=subject.pk).first_name == "Grace"
    screenshot("conflict")

    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(url("users:user-detail", subject.pk))
    saved = User.objects.get(pk=subject.pk)
    assert (saved.first_name, saved.last_name) == ("Amazing Grace", "Brewster")
    assert reverse("users:user-detail", args=[subject.pk]) in page.url


WIDTHS = """() => Object.fromEntries(
  [...document.querySelectorAll('#user-form .field')].map(
    (el) => [el.id, Math.round(el.getBoundingClientRect().width)]))"""


def test_phone_error_clears_once_the_residency_makes_it_valid(page: Page, sign_in, url, screenshot):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-create"))
    page.get_by_label("Phone").fill("0470 12 34 56")
    page.get_by_label("Phone").press("Tab")
    expect(field(page, "phone").locator(".errorlist")).to_be_visible()
    expect(page.get_by_label("Phone")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Residency country").fill("BE")
    page.get_by_label("Residency country").press("Tab")
    expect(field(page, "phone").locator(".errorlist")).to_have_count(0)
    expect(field(page, "phone").locator(".field-ok")).to_contain_text("+32470123456")
    expect(page.get_by_label("Phone")).not_to_have_attribute("aria-invalid", "true")
    # The phone input is still checked on its own afterwards.
    page.get_by_label("Phone").fill("12")
    page.get_by_label("Phone").press("Tab")
    expect(field(page, "phone").locator(".errorlist")).to_be_visible()


def test_field_widths_do_not_jump_after_validation(page: Page, sign_in, url, screenshot):
    sign_in(Role.BACK_OFFICE)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(url("users:user-create"))
    before = page.evaluate(WIDTHS)
    page.get_by_label("City").fill("Brussels")
    page.get_by_label("Account number").fill("BE01234567891234")
    page.get_by_label("Phone").fill("0470 12 34 56")
    page.get_by_label("Nationalities").fill("XX, YY")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_be_visible()
    assert page.evaluate(WIDTHS) == before
    # Fields checked on their own as the user leaves them, wide ones included.
    for label, value in (("Also readable by", "nobody"), ("Tax number", "1"), ("Language", "?")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Tab")
    expect(field(page, "readable_by").locator(".errorlist")).to_be_visible()
    expect(field(page, "language").locator(".errorlist")).to_be_visible()
    expect(field(page, "tax_value")).not_to_have_class(re.compile("htmx-request"))
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_be_visible()
    expect(field(page, "address_line1").locator(".errorlist")).to_have_text(
        "Street and number is required when the address is given."
    )
    after = page.evaluate(WIDTHS)
    screenshot("form-with-errors")
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}


def test_type_a_country_name_and_it_is_stored_as_its_code(page: Page, sign_in, url, screenshot):
    sign_in(Role.BACK_OFFICE)
    page.goto(url("users:user-create"))
    page.get_by_label("First name").fill("Anna")
    page.get_by_label("Last name").fill("Gruber")
    country = page.get_by_label("Residency country")
    expect(country).to_have_attribute("list", "country-options")
    expect(page.locator('#country-options option[value="AT — Austria"]')).to_have_count(1)
    country.fill("Austria")
    expect(country).to_have_value("Austria")  # not cut to "Au"
    country.press("Tab")
    expect(field(page, "residency_country").locator(".field-ok")).to_have_text("✓ Austria")
    screenshot("country-confirmed")
    page.get_by_label("Tax country").fill("Narnia")
    page.get_by_label("Tax country").press("Tab")
    expect(field(page, "tax_country_code").locator(".errorlist")).to_contain_text(
        "Not a country: 'Narnia'"
    )
    page.get_by_label("Tax country").fill("")
    page.get_by_label("Tax country").press("Tab")
    page.get_by_role("button", name="Create user").click()
    expect(page).to_have_url(re.compile(r"/users/U[0-9A-Z]{26}/$"))
    assert User.objects.get(last_name="Gruber").residency_country == "AT"
