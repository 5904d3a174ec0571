"""Masked personal data (issue 13.3): the IBAN or account number, identity and tax numbers and
the date of birth are shown masked in the list, the board, the detail page (until revealed with
a purpose, logged) and, for those who may not reveal, the export; the edit form never sends
them to the browser, yet keeps or replaces them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import VALID_IBANS, make_user, sign_in
from users import contract, services
from users.models import AccessEvent, Status, User

IBAN = VALID_IBANS[0]  # BE71096123456769
IDENTITY = "85073003361"
TAX_NUMBER = "BE-TIN-4455667788"
MASKED_IBAN = "BE71 •••• •••• 6769"
ROLES = ("back_office", "compliance", "admin")


@pytest.fixture
def client_of(request):
    """The signed-in client of a role, by name."""
    return lambda role: request.getfixturevalue(f"{role}_client")


@pytest.fixture
def person(admin_user):
    return make_user(
        actor=admin_user,
        first_name="Maskia",
        last_name="Private",
        date_of_birth="1985-07-30",
        identity=IDENTITY,
        residency_country="BE",
        counter_account={"bank_account_number": IBAN},
        tax_residency={"country_code": "BE", "proof_type": "TIN", "value": TAX_NUMBER},
        status=Status.WAITING_FOR_VERIFICATION,
    )


def secrets_in(html: str) -> list[str]:
    """Which of the person's masked values appear in `html`, in any usual form."""
    shown = [IBAN, "BE71 0961 2345 6769", IDENTITY, TAX_NUMBER, "1985-07-30", "30/07/1985"]
    return [value for value in shown if value in html]


def detail(client, user, **headers):
    return client.get(reverse("users:user-detail", args=[user.pk]), **headers)


def reveal_url(user, name):
    return reverse("users:user-reveal", args=[user.pk, name])


def htmx(target=None):
    headers = {"HTTP_HX_REQUEST": "true"}
    if target:
        headers["HTTP_HX_TARGET"] = target
    return headers


# --- the masks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mask"),
    [
        ("BE71096123456769", "BE71 •••• •••• 6769"),
        ("BE71 0961 2345 6769", "BE71 •••• •••• 6769"),
        ("FR7630006000011234567890189", "FR76 •••• •••• •••• •••• •••• 189"),
        ("123456789", "•••• 6789"),
        ("1234", "••••"),
    ],
)
def test_account_mask_keeps_the_country_and_the_last_digits(value, mask):
    assert contract.mask_account(value) == mask


def test_identifier_and_date_masks():
    assert contract.mask_identifier("85073003361") == "•••• 361"
    assert contract.mask_identifier("1234567") == "••••"  # too short to show any of it
    assert contract.mask_date("1985-07-30") == "1985-••-••"


def test_the_registry_names_the_masked_values():
    assert set(contract.MASKED) == {"bank_account_number", "identity", "date_of_birth", "tax_value"}
    assert contract.MASKED["tax_value"].field == "tax_residency"
    assert contract.MASKED["bank_account_number"].field == "counter_account"


def test_masked_value_masks_parts_of_objects_and_leaves_the_rest():
    value = {"bank_account_number": IBAN, "bank_id": "GKCCBEBB"}
    assert contract.masked_value("counter_account", value) == {
        "bank_account_number": MASKED_IBAN,
        "bank_id": "GKCCBEBB",
    }
    assert contract.masked_value("first_name", "Ann") == "Ann"
    assert contract.masked_value("identity", None) is None


# --- masked everywhere, for each role ----------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_detail_shows_masks_for_each_role(client_of, person, role):
    html = detail(client_of(role), person).content.decode()
    assert secrets_in(html) == []
    assert MASKED_IBAN in html
    assert "•••• 361" in html  # identity
    assert "1985-••-••" in html
    assert "•••• 788" in html  # tax number
    # Compliance and admins may reveal; back office works with the masks.
    assert ("Reveal" in html) == (role != "back_office")


@pytest.mark.parametrize("role", ROLES)
def test_list_and_board_never_show_masked_values(client_of, person, role):
    client = client_of(role)
    for url in (reverse("users:user-list"), reverse("users:board")):
        html = client.get(url, {"q": "Private"}).content.decode()
        assert "Maskia" in html
        assert secrets_in(html) == []


@pytest.mark.parametrize("role", ROLES)
def test_export_masks_for_those_who_may_not_reveal(client_of, person, role):
    response = client_of(role).get(reverse("users:user-export"), {"q": "Private"})
    body = b"".join(response.streaming_content).decode()
    (row,) = list(csv.DictReader(io.StringIO(body)))
    if role == "back_office":
        assert (row["bank_account_number"], row["date_of_birth"]) == (MASKED_IBAN, "1985-••-••")
        assert secrets_in(body) == []
    else:
        assert (row["bank_account_number"], row["date_of_birth"]) == (IBAN, "1985-07-30")
    event = AccessEvent.objects.get(kind=AccessEvent.Kind.EXPORTED)
    masked = ["date_of_birth", "bank_account_number"] if role == "back_office" else None
    assert event.detail.get("masked") == masked


def test_version_diff_on_the_detail_shows_masks(admin_client, admin_user, person):
    services.user_update(
        user=person,
        data={"identity": "99123112345"},
        actor=admin_user,
        expected_version=person.version,
    )
    url = reverse("users:user-diff", args=[person.pk])
    html = admin_client.get(url, {"from": 1, "to": 2}).content.decode()
    assert "•••• 361" in html
    assert "•••• 345" in html
    assert IDENTITY not in html
    assert "99123112345" not in html


# --- revealing -----------------------------------------------------------------------------------


def test_reveal_asks_for_a_purpose_and_logs_nothing_without_one(compliance_client, person):
    form = compliance_client.get(reveal_url(person, "bank_account_number"))
    assert form.status_code == 200
    assert "Purpose" in form.content.decode()
    assert secrets_in(form.content.decode()) == []
    response = compliance_client.post(reveal_url(person, "bank_account_number"), {"purpose": ""})
    assert response.status_code == 400
    assert "Choose why you need to see it." in response.content.decode()
    other = compliance_client.post(reveal_url(person, "identity"), {"purpose": "OTHER"})
    assert "Say why you need to see it." in other.content.decode()
    made_up = compliance_client.post(reveal_url(person, "identity"), {"purpose": "CURIOSITY"})
    assert "Choose why you need to see it." in made_up.content.decode()
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.REVEALED).exists()


def test_reveal_shows_the_value_once_and_writes_one_log_row(
    compliance_client, compliance_user, person
):
    response = compliance_client.post(
        reveal_url(person, "bank_account_number"),
        {"purpose": "PAYOUT_CHECK", "note": "ticket  4711"},
        **htmx("masked-bank_account_number"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<span id="masked-bank_account_number"')
    assert "BE71 0961 2345 6769" in html
    assert "refresh-accesses" in json.loads(response["HX-Trigger"])
    event = AccessEvent.objects.get(kind=AccessEvent.Kind.REVEALED)
    assert (event.actor, event.subject_id, event.field) == (
        compliance_user,
        person.pk,
        "bank_account_number",
    )
    assert event.purpose == "Payout or counter account check: ticket 4711"
    assert event.detail == {"purpose": "PAYOUT_CHECK"}
    # The page shows the mask again: the reveal was for that page view.
    assert secrets_in(detail(compliance_client, person).content.decode()) == []
    # ... and "Accessed by" lists the reveal with its purpose.
    panel = detail(compliance_client, person, **htmx("accessed-by")).content.decode()
    assert "Revealed a field" in panel
    assert "ticket 4711" in panel


def test_reveal_without_javascript_is_a_page_with_the_value(admin_client, person):
    response = admin_client.post(reveal_url(person, "date_of_birth"), {"purpose": "KYC_REVIEW"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1985-07-30" in html
    assert "Back to the user" in html
    assert "<html" in html


def test_back_office_may_not_reveal(back_office_client, person):
    for method in ("get", "post"):
        response = getattr(back_office_client, method)(reveal_url(person, "identity"))
        assert response.status_code == 403
    response = back_office_client.post(reveal_url(person, "identity"), {"purpose": "KYC_REVIEW"})
    assert response.status_code == 403
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.REVEALED).exists()


def test_reveal_of_an_unknown_or_empty_value_is_not_found(admin_client, admin_user, person):
    assert admin_client.get(reveal_url(person, "first_name")).status_code == 404
    bare = make_user(actor=admin_user)
    assert admin_client.get(reveal_url(bare, "identity")).status_code == 404


def test_cancel_brings_the_mask_back(admin_client, person):
    response = admin_client.get(
        reveal_url(person, "identity"), {"cancel": "1"}, **htmx("masked-identity")
    )
    html = response.content.decode().strip()
    assert html.startswith('<span id="masked-identity"')
    assert "•••• 361" in html


# --- editing masked values -------------------------------------------------------------------


def edit_url(user):
    return reverse("users:user-edit", args=[user.pk])


def test_edit_form_never_sends_the_stored_values(back_office_client, person):
    html = back_office_client.get(edit_url(person)).content.decode()
    assert secrets_in(html) == []
    assert f'placeholder="{MASKED_IBAN}"' in html
    assert "leave empty to keep it" in html
    # The counter account's note no longer says that clearing the number removes it.
    assert "The account number is masked: left empty, it stays" in html
    assert "Clear the account number to remove" not in html


def post_edit(client, user, **data):
    from users.forms import UserForm

    posted = {k: ("" if v is None else v) for k, v in UserForm.initial_for(user).items()}
    posted.update(data)
    return client.post(edit_url(user), posted)


def test_saving_with_masked_inputs_left_empty_keeps_them(back_office_client, person):
    response = post_edit(back_office_client, person, first_name="Maskia-Ann")
    assert response.status_code == 302
    saved = User.objects.get(pk=person.pk)
    assert saved.first_name == "Maskia-Ann"
    assert (saved.bank_account_number, saved.identity) == (IBAN, IDENTITY)
    assert str(saved.date_of_birth) == "1985-07-30"
    assert saved.tax_residency["value"] == TAX_NUMBER
    assert set(saved.versions.get(version=saved.version).changes) == {"first_name"}


def test_typing_a_new_masked_value_replaces_it(back_office_client, person):
    response = post_edit(back_office_client, person, identity="99123112345")
    assert response.status_code == 302
    assert User.objects.get(pk=person.pk).identity == "99123112345"


def test_a_refused_edit_shows_the_mask_not_the_value(back_office_client, person):
    response = post_edit(back_office_client, person, language="not a language!")
    assert response.status_code == 200
    assert secrets_in(response.content.decode()) == []


def test_checking_an_empty_masked_input_on_blur_shows_nothing(back_office_client, person):
    url = reverse("users:user-validate-field") + f"?user={person.pk}"
    response = back_office_client.post(
        url, {"bank_account_number": "", "_field": "bank_account_number"}, **htmx()
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "has-error" not in html
    assert secrets_in(html) == []


def test_a_checker_sees_a_proposed_account_in_full_the_proposer_its_mask(
    back_office_client, back_office_user, compliance_user, person
):
    """Comparing the numbers is the four-eyes check: those who may reveal see them in full on
    the request; everyone else sees the masks."""
    services.user_update(
        user=person,
        data={"counter_account": {"bank_account_number": VALID_IBANS[1]}},
        actor=back_office_user,
        expected_version=person.version,
    )
    new = VALID_IBANS[1]
    proposer = detail(back_office_client, person).content.decode()
    assert new not in proposer
    assert contract.mask_account(new) in proposer
    compliance_client = Client()
    sign_in(compliance_client, compliance_user)
    checker = compliance_client.get(reverse("users:approvals")).content.decode()
    assert new in checker
    assert IBAN in checker


def test_the_reveal_service_asks_that_the_actor_may_see_the_user(person):
    # The rule holds in the service, whichever front end calls it: the permission to reveal,
    # on a user one may see (by role, or named on the user's readable_by).
    from django.contrib.auth.models import Permission
    from django.core.exceptions import PermissionDenied

    from users.services.access import value_reveal

    revealer = make_user(email="revealer@bank.example")
    revealer.user_permissions.add(Permission.objects.get(codename="reveal_personal_data"))
    revealer = User.objects.get(pk=revealer.pk)  # the permission caches start empty
    with pytest.raises(PermissionDenied):
        value_reveal(actor=revealer, subject=person, name="identity", purpose="KYC_REVIEW")
    User.readable_by.through.objects.create(from_user_id=person.pk, to_user_id=revealer.pk)
    subject = User.objects.get(pk=person.pk)
    revealed = value_reveal(actor=revealer, subject=subject, name="identity", purpose="KYC_REVIEW")
    assert revealed == contract.MASKED["identity"].of(subject)
    assert revealed


def test_a_reveal_reason_with_a_nul_is_refused_and_logs_nothing(compliance_client, person):
    response = compliance_client.post(
        reveal_url(person, "identity"), {"purpose": "OTHER", "note": "why\x00not"}
    )
    assert response.status_code == 400
    assert "contains a NUL character" in response.content.decode()
    assert not AccessEvent.objects.filter(kind=AccessEvent.Kind.REVEALED).exists()
