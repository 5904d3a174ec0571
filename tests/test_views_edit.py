"""Create and edit screens: services' errors on the right inputs, write-once, stale versions."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.factories import VALID_IBANS, make_console_user, make_user, sign_in
from users import services
from users.forms import UserForm
from users.models import Role, Status, User, UserVersion

pytestmark = pytest.mark.django_db

CREATE = "users:user-create"
VALIDATE = "users:user-validate-field"


def edit_url(user):
    return reverse("users:user-edit", args=[user.pk])


def form_post(user, **changes):
    """What the browser sends for the edit form of `user`, with `changes` applied."""
    data = {k: ("" if v is None else v) for k, v in UserForm.initial_for(user).items()}
    data.update(changes)
    return data


def htmx(target=None):
    headers = {"HTTP_HX_REQUEST": "true"}
    if target:
        headers["HTTP_HX_TARGET"] = target
    return headers


def snapshot(user):
    return services.user_snapshot(User.objects.get(pk=user.pk))


# --- create -----------------------------------------------------------------------------------


def test_create_page(back_office_client):
    response = back_office_client.get(reverse(CREATE))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="user-form"' in html
    assert "autofocus" in html
    assert 'type="date"' in html
    assert "<script>" not in html
    assert 'style="' not in html
    assert "hx-on" not in html


def test_create_with_all_groups(back_office_client, back_office_user):
    response = back_office_client.post(
        reverse(CREATE),
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "phone": "0470 12 34 56",
            "residency_country": "be",
            "nationalities": "be, nl",
            "language": "nl-be",
            "date_of_birth": "1990-12-10",
            "bank_account_number": "be71 0961 2345 6769",
            "bank_id": "GKCCBEBB",
            "address_line1": "Rue de la Loi 16",
            "address_postal_code": "1000",
            "address_city": "Brussels",
            "address_country_code": "BE",
            "tax_country_code": "BE",
            "tax_proof_type": "TIN",
            "tax_value": "12345",
            "metadata": "crm=42\nsegment = gold\n",
            "status": Status.WAITING_FOR_SIGNATURE,
        },
    )
    assert response.status_code == 302
    created = User.objects.get(email="ada@example.com")
    assert response.url == reverse("users:user-detail", args=[created.pk])
    assert created.phone == "+32470123456"
    assert created.nationalities == ["BE", "NL"]
    assert created.language == "nl-BE"
    assert created.counter_account == {
        "bank_account_number": "BE71096123456769",
        "bank_account_number_type": "IBAN",
        "bank_id": "GKCCBEBB",
        "bank_id_type": "BIC",
    }
    assert created.address["city"] == "Brussels"
    assert created.tax_residency == {"country_code": "BE", "proof_type": "TIN", "value": "12345"}
    assert created.metadata == {"crm": "42", "segment": "gold"}
    assert created.status == Status.WAITING_FOR_SIGNATURE
    assert UserVersion.objects.get(user=created).author == back_office_user


def test_a_creator_who_may_not_edit_access_lists_cannot_set_them_on_create(client, admin_user):
    """The API's rule on the create screen: one policy (`check_create`) for both."""
    creator = make_console_user(Role.BACK_OFFICE)
    # Back office without change_user: may create, may not say who else gets in.
    creator.groups.get().permissions.remove(Permission.objects.get(codename="change_user"))
    sign_in(client, creator)
    refused = client.post(reverse(CREATE), {"first_name": "Listed", "readable_by": admin_user.pk})
    assert refused.status_code == 403
    assert not User.objects.filter(first_name="Listed").exists()
    created = client.post(reverse(CREATE), {"first_name": "Unlisted", "readable_by": ""})
    assert created.status_code == 302
    assert User.objects.filter(first_name="Unlisted").exists()


def test_create_with_bad_iban_shows_the_validator_message_on_the_input(back_office_client):
    count = User.objects.count()
    response = back_office_client.post(
        reverse(CREATE), {"first_name": "Bad", "bank_account_number": "BE01234567891234"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="field-bank_account_number"' in html
    field_html = html[html.index('id="field-bank_account_number"') :]
    field_html = field_html[: field_html.index('id="field-bank_account_number_type"')]
    assert "has-error" in field_html
    assert "IBAN check digits are wrong." in field_html
    assert 'aria-invalid="true"' in field_html
    assert 'value="BE01234567891234"' in field_html  # the input is kept
    assert User.objects.count() == count


def test_create_errors_for_nested_parts_land_on_their_inputs(back_office_client):
    response = back_office_client.post(
        reverse(CREATE),
        {
            "bank_account_number": VALID_IBANS[0],
            "bank_id": "DEUTDEFF",
            "address_line1": "Main street 1",
            "metadata": "no equals sign",
        },
    )
    form = response.context["form"]
    assert "does not match the IBAN country" in form.errors["bank_id"][0]
    assert "City is required" in form.errors["address_city"][0]
    assert "Line 1 has no '='" in form.errors["metadata"][0]


def test_create_duplicate_email_is_a_form_error(back_office_client, user):
    response = back_office_client.post(reverse(CREATE), {"email": user.email.upper()})
    assert response.status_code == 200
    assert "already used by another user" in response.context["form"].errors["email"][0]


def test_create_htmx_success_redirects_client_and_error_returns_the_form_alone(
    back_office_client,
):
    bad = back_office_client.post(reverse(CREATE), {"phone": "+123456789"}, **htmx("user-form"))
    html = bad.content.decode()
    assert html.lstrip().startswith('<form id="user-form"')
    assert "<html" not in html
    good = back_office_client.post(reverse(CREATE), {"first_name": "Ok"}, **htmx("user-form"))
    assert good.status_code == 200
    created = User.objects.get(first_name="Ok")
    assert good.headers["HX-Redirect"] == reverse("users:user-detail", args=[created.pk])


def test_create_needs_add_user(compliance_client):
    assert compliance_client.get(reverse(CREATE)).status_code == 403
    assert compliance_client.post(reverse(CREATE), {"first_name": "X"}).status_code == 403
    assert not User.objects.filter(first_name="X").exists()


def test_create_cannot_start_off_flow(back_office_client):
    response = back_office_client.post(
        reverse(CREATE), {"first_name": "Y", "status": Status.ACTIVE}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["status"]
    assert not User.objects.filter(first_name="Y").exists()


# --- edit -------------------------------------------------------------------------------------


def test_edit_page_shows_write_once_fields_read_only(back_office_client, user):
    response = back_office_client.get(edit_url(user))
    assert response.status_code == 200
    html = response.content.decode()
    email_html = html[html.index('id="field-email"') : html.index('id="field-phone"')]
    assert "readonly" in email_html
    assert "write-once" in email_html
    assert "hx-post" not in email_html  # nothing to check on blur
    assert f'value="{user.email}"' in email_html
    assert f'name="expected_version" value="{user.version}"' in html


def test_edit_of_user_without_email_lets_it_be_set_once(back_office_client, back_office_user):
    subject = make_user(email=None, phone=None)
    html = back_office_client.get(edit_url(subject)).content.decode()
    email_html = html[html.index('id="field-email"') : html.index('id="field-phone"')]
    assert "readonly" not in email_html
    response = back_office_client.post(edit_url(subject), form_post(subject, email="new@x.com"))
    assert response.status_code == 302
    assert User.objects.get(pk=subject.pk).email == "new@x.com"


def test_edit_saves_and_records_the_author(back_office_client, back_office_user, user):
    response = back_office_client.post(
        edit_url(user), form_post(user, first_name="Janet", nationalities="FR")
    )
    assert response.status_code == 302
    saved = User.objects.get(pk=user.pk)
    assert saved.first_name == "Janet"
    assert saved.nationalities == ["FR"]
    version = UserVersion.objects.get(user=user, version=saved.version)
    assert version.author == back_office_user
    assert set(version.changes) == {"first_name", "nationalities"}


def test_edit_without_changes_makes_no_version(back_office_client, user):
    response = back_office_client.post(edit_url(user), form_post(user))
    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).version == user.version


def test_crafted_post_changing_write_once_email_gets_the_service_error(back_office_client, user):
    before = snapshot(user)
    response = back_office_client.post(
        edit_url(user), form_post(user, email="other@example.com", first_name="Changed")
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["email"]
    assert "write-once" in errors[0]
    assert user.email in errors[0]
    assert snapshot(user) == before


def test_crafted_post_changing_phone_gets_the_service_error(back_office_client, user):
    before = snapshot(user)
    response = back_office_client.post(edit_url(user), form_post(user, phone="+32470999999"))
    assert "Phone is write-once" in response.context["form"].errors["phone"][0]
    assert snapshot(user) == before


def test_edit_partial_post_changes_only_what_was_sent(back_office_client, user):
    response = back_office_client.post(
        edit_url(user), {"expected_version": user.version, "last_name": "Partial"}
    )
    assert response.status_code == 302
    saved = User.objects.get(pk=user.pk)
    assert saved.last_name == "Partial"
    assert saved.email == user.email


def test_edit_without_version_is_refused(back_office_client, user):
    response = back_office_client.post(edit_url(user), {"last_name": "NoVersion"})
    assert response.status_code == 200
    assert "reload the page" in response.content.decode()
    assert User.objects.get(pk=user.pk).last_name == user.last_name


def test_stale_edit_shows_the_conflict_and_rebases_the_input(back_office_client, admin_user, user):
    stale = form_post(user, last_name="Mine")
    services.user_update(user=user, data={"first_name": "Theirs"}, actor=admin_user)
    current = User.objects.get(pk=user.pk).version

    response = back_office_client.post(edit_url(user), stale)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Someone else changed Theirs " in html  # the name as it is now
    conflict = html[html.index('class="alert alert-warning conflict"') :]
    assert 'data-field="first_name"' in conflict
    assert "Jane" in conflict
    assert "Theirs" in conflict
    assert admin_user.display_name in conflict
    assert User.objects.get(pk=user.pk).last_name == user.last_name

    form = response.context["form"]
    assert form.data["last_name"] == "Mine"  # the user's own edit is kept
    assert form.data["first_name"] == "Theirs"  # the field they left alone takes the new value
    assert form.data["expected_version"] == str(current)

    # Saving the re-based form applies the user's change on top of the other one.
    assert back_office_client.post(edit_url(user), form.data).status_code == 302
    saved = User.objects.get(pk=user.pk)
    assert saved.last_name == "Mine"
    assert saved.first_name == "Theirs"


def test_stale_edit_of_the_same_field_keeps_the_users_input_and_says_so(
    back_office_client, admin_user, user
):
    stale = form_post(user, first_name="Mine")
    services.user_update(user=user, data={"first_name": "Theirs"}, actor=admin_user)
    response = back_office_client.post(edit_url(user), stale)
    html = response.content.decode()
    assert '<tr data-field="first_name" class="is-kept">' in html
    assert response.context["form"].data["first_name"] == "Mine"
    again = response.context["form"].data
    assert back_office_client.post(edit_url(user), again).status_code == 302
    assert User.objects.get(pk=user.pk).first_name == "Mine"


def test_stale_edit_takes_a_write_once_value_set_meanwhile(back_office_client, admin_user):
    subject = make_user(actor=admin_user, email=None)
    stale = form_post(subject, last_name="Mine")
    services.user_update(user=subject, data={"email": "set@example.com"}, actor=admin_user)
    response = back_office_client.post(edit_url(subject), stale)
    form = response.context["form"]
    assert form.data["email"] == "set@example.com"
    assert back_office_client.post(edit_url(subject), form.data).status_code == 302
    saved = User.objects.get(pk=subject.pk)
    assert saved.email == "set@example.com"
    assert saved.last_name == "Mine"


def test_stale_edit_over_htmx_returns_the_form_with_the_conflict(
    back_office_client, admin_user, user
):
    stale = form_post(user, last_name="Mine")
    services.user_update(user=user, data={"language": "fr"}, actor=admin_user)
    response = back_office_client.post(edit_url(user), stale, **htmx("user-form"))
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="user-form"')
    assert "alert-warning conflict" in html
    assert "Language" in html


def test_conflict_names_the_user_as_they_are_now_and_shows_labels(
    back_office_client, admin_user, user
):
    stale = form_post(user, last_name="Mine")
    services.user_update(
        user=user,
        data={
            "first_name": "Renamed",
            "employment_status": "RETIRED",
            "income_range": "UNDER_25K",
            "sources_of_wealth": ["PENSION"],
        },
        actor=admin_user,
    )
    now = User.objects.get(pk=user.pk).display_name
    assert now.startswith("Renamed")
    html = back_office_client.post(edit_url(user), stale).content.decode()
    assert f'<h2 id="conflict-title">Someone else changed {now} while' in html
    assert f'<h1 id="page-title">Edit {now}</h1>' in html
    row = html[html.index('data-field="employment_status"') :]
    assert "Retired" in row[: row.index("</tr>")]
    assert "RETIRED" not in row[: row.index("</tr>")]

    # Over htmx only the form is swapped; the page heading comes out of band.
    html = back_office_client.post(edit_url(user), stale, **htmx("user-form")).content.decode()
    assert html.lstrip().startswith('<form id="user-form"')
    assert f'<h1 id="page-title" hx-swap-oob="true">Edit {now}</h1>' in html


def test_edit_permissions(compliance_client, user):
    assert compliance_client.get(edit_url(user)).status_code == 403
    response = compliance_client.post(edit_url(user), form_post(user, first_name="Nope"))
    assert response.status_code == 403
    assert User.objects.get(pk=user.pk).first_name == user.first_name


def test_object_level_modifier_may_edit(admin_user):
    modifier = make_console_user(Role.COMPLIANCE)
    subject = make_user(actor=admin_user, modifiable_by=[modifier.pk])
    client = Client()
    sign_in(client, modifier)
    assert client.get(edit_url(subject)).status_code == 200
    # Their form has no access lists (see the next test), so the browser sends none.
    data = {k: v for k, v in form_post(subject, first_name="ByModifier").items()}
    del data["readable_by"], data["modifiable_by"]
    response = client.post(edit_url(subject), data)
    assert response.status_code == 302
    assert User.objects.get(pk=subject.pk).first_name == "ByModifier"


def test_editing_a_deleted_user_redirects_to_the_detail(back_office_client, admin_user, user):
    services.user_delete(user=user, actor=admin_user)
    response = back_office_client.get(edit_url(user))
    assert response.status_code == 302
    assert response.url == reverse("users:user-detail", args=[user.pk])


# --- validation on blur -----------------------------------------------------------------------


def validate(client, field, data, *, user=None):
    url = reverse(VALIDATE) + (f"?user={user.pk}" if user else "")
    return client.post(url, {**data, "_field": field}, **htmx(f"field-{field}"))


def test_blur_bad_iban_returns_the_field_with_its_error(back_office_client):
    response = validate(
        back_office_client, "bank_account_number", {"bank_account_number": "BE01234567891234"}
    )
    assert response.status_code == 200
    html = response.content.decode().strip()
    assert html.startswith('<div id="field-bank_account_number"')
    assert "IBAN check digits are wrong." in html
    assert 'aria-invalid="true"' in html


def test_blur_good_iban_shows_bank_and_offers_the_bic(back_office_client):
    html = validate(
        back_office_client, "bank_account_number", {"bank_account_number": VALID_IBANS[0]}
    ).content.decode()
    assert "BE71 0961 2345 6769" in html
    assert "GKCCBEBB" in html
    assert 'data-fill-bic="GKCCBEBB"' in html


def test_blur_does_not_complain_about_parts_not_reached_yet(back_office_client):
    # An ABA account needs its routing number, but that is the bank id input's error.
    html = validate(
        back_office_client,
        "bank_account_number",
        {"bank_account_number": "123456789", "bank_account_number_type": "ABA"},
    ).content.decode()
    assert "has-error" not in html
    html = validate(
        back_office_client,
        "bank_id",
        {"bank_account_number": "123456789", "bank_account_number_type": "ABA"},
    ).content.decode()
    assert "routing number" in html


def test_blur_phone_shows_e164_using_the_typed_residency(back_office_client):
    html = validate(
        back_office_client, "phone", {"phone": "0470 12 34 56", "residency_country": "BE"}
    ).content.decode()
    assert "E.164: +32470123456" in html
    html = validate(back_office_client, "phone", {"phone": "+123456789"}).content.decode()
    assert "has-error" in html


def test_blur_residency_country_checks_the_phone_again_out_of_band(back_office_client):
    # A national number is refused without a residency country...
    html = validate(back_office_client, "phone", {"phone": "0470 12 34 56"}).content.decode()
    assert "has-error" in html
    # ...and choosing the country answers for the phone too, its error gone.
    html = validate(
        back_office_client,
        "residency_country",
        {"phone": "0470 12 34 56", "residency_country": "BE"},
    ).content.decode()
    assert html.lstrip().startswith('<div id="field-residency_country"')
    phone = html[html.index('<div id="field-phone"') :]
    assert 'hx-swap-oob="true"' in phone[: phone.index(">")]
    assert "has-error" not in phone[: phone.index(">")]
    assert "E.164: +32470123456" in phone
    # Clearing the country brings the error back; an empty phone is left alone.
    html = validate(
        back_office_client, "residency_country", {"phone": "0470 12 34 56", "residency_country": ""}
    ).content.decode()
    phone = html[html.index('<div id="field-phone"') :]
    assert "has-error" in phone[: phone.index(">")]
    html = validate(
        back_office_client, "residency_country", {"phone": "", "residency_country": "BE"}
    ).content.decode()
    assert 'id="field-phone"' not in html


def test_blur_residency_leaves_a_write_once_phone_alone(back_office_client, user):
    assert user.phone  # set, so read-only on this form
    html = validate(
        back_office_client,
        "residency_country",
        {"phone": user.phone, "residency_country": "NL"},
        user=user,
    ).content.decode()
    assert 'id="field-phone"' not in html


def test_address_errors_use_the_parts_labels(back_office_client):
    html = validate(
        back_office_client, "address_line1", {"address_city": "Brussels"}
    ).content.decode()
    assert "Street and number is required when the address is given." in html
    assert "Line1" not in html
    response = back_office_client.post(
        reverse(CREATE), {"first_name": "Ada", "last_name": "L", "tax_country_code": "BE"}
    )
    form = response.context["form"]
    assert form.errors["tax_value"] == ["Tax number is required when the tax residency is given."]


def test_blur_on_edit_uses_the_user(back_office_client, user):
    response = validate(back_office_client, "first_name", {"first_name": "x" * 200}, user=user)
    assert "at most 128" in response.content.decode()


def test_blur_needs_permission_and_a_known_field(compliance_client, back_office_client, user):
    assert validate(back_office_client, "nope", {}).status_code == 400
    assert validate(back_office_client, "expected_version", {}).status_code == 400


def test_blur_permissions(compliance_client, user):
    assert validate(compliance_client, "first_name", {"first_name": "x"}).status_code == 403
    assert (
        validate(compliance_client, "first_name", {"first_name": "x"}, user=user).status_code == 403
    )


def test_validate_refuses_get(back_office_client):
    assert back_office_client.get(reverse(VALIDATE)).status_code == 405


def test_access_lists_are_edited_as_user_ids(back_office_client, back_office_user, admin_user):
    subject = make_user(actor=admin_user)
    reader = make_console_user(Role.COMPLIANCE)
    response = back_office_client.post(
        edit_url(subject), form_post(subject, readable_by=f"{reader.pk}, {back_office_user.pk}")
    )
    assert response.status_code == 302
    assert services.user_snapshot(User.objects.get(pk=subject.pk))["readable_by"] == sorted(
        [reader.pk, back_office_user.pk]
    )
    html = back_office_client.get(edit_url(subject)).content.decode()
    assert reader.pk in html

    unknown = "U" + "0" * 26
    response = back_office_client.post(edit_url(subject), form_post(subject, modifiable_by=unknown))
    assert response.status_code == 200
    assert f"No user with id {unknown}" in response.context["form"].errors["modifiable_by"][0]


def test_object_level_modifier_cannot_change_access_lists(admin_user):
    modifier = make_console_user(Role.COMPLIANCE)
    subject = make_user(actor=admin_user, modifiable_by=[modifier.pk])
    client = Client()
    sign_in(client, modifier)
    html = client.get(edit_url(subject)).content.decode()
    assert 'name="modifiable_by"' not in html
    data = {k: v for k, v in form_post(subject).items() if not k.endswith("_by")}
    response = client.post(edit_url(subject), {**data, "modifiable_by": ""})
    assert response.status_code == 403
    assert services.user_snapshot(User.objects.get(pk=subject.pk))["modifiable_by"] == [modifier.pk]


def test_edit_from_a_future_version_is_refused_clearly(back_office_client, user):
    response = back_office_client.post(
        edit_url(user), form_post(user, expected_version=user.version + 5, last_name="X")
    )
    assert response.status_code == 200
    assert "reload the page" in response.context["form"].non_field_errors()[0]
    assert User.objects.get(pk=user.pk).last_name == user.last_name


def test_a_wide_field_stays_wide_when_checked_on_its_own(back_office_client):
    page = back_office_client.get(reverse(CREATE)).content.decode()
    assert 'id="field-tax_value"\n     class="field span-2"' in page
    html = validate(back_office_client, "tax_value", {"tax_value": "1"}).content.decode()
    assert html.lstrip().startswith('<div id="field-tax_value"\n     class="field span-2')
    html = validate(back_office_client, "first_name", {"first_name": "Ada"}).content.decode()
    assert "span-2" not in html


def test_country_inputs_take_names_with_suggestions_and_store_codes(
    back_office_client, back_office_user
):
    page = back_office_client.get(reverse(CREATE)).content.decode()
    assert 'maxlength="2"' not in page
    assert '<datalist id="country-options">' in page
    assert '<option value="AT — Austria">' in page
    for name in ("residency_country", "address_country_code", "tax_country_code"):
        tag = page[page.index(f'name="{name}"') :]
        assert 'list="country-options"' in tag[: tag.index(">")]

    html = validate(
        back_office_client, "residency_country", {"residency_country": "Austria"}
    ).content.decode()
    assert "✓ Austria" in html
    assert "has-error" not in html[: html.index(">")]
    html = validate(
        back_office_client, "address_country_code", {"address_country_code": "Atlantis"}
    ).content.decode()
    assert "Not a country: &#x27;Atlantis&#x27;" in html

    response = back_office_client.post(
        reverse(CREATE),
        {
            "first_name": "Anna",
            "last_name": "Gruber",
            "residency_country": "austria",
            "address_line1": "Ring 1",
            "address_city": "Wien",
            "address_postal_code": "1010",
            "address_country_code": "Österreich",
            "tax_country_code": "BE — Belgium",
            "tax_proof_type": "TIN",
            "tax_value": "12345",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    created = User.objects.get(last_name="Gruber")
    assert created.residency_country == "AT"
    assert services.user_snapshot(created)["address"]["country_code"] == "AT"
    assert services.user_snapshot(created)["tax_residency"]["country_code"] == "BE"


def test_an_unknown_country_name_is_refused_and_nothing_is_saved(back_office_client):
    response = back_office_client.post(
        reverse(CREATE), {"first_name": "Nobody", "last_name": "X", "residency_country": "Narnia"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["residency_country"] == [
        "Not a country: 'Narnia'. Type a name (Belgium) or an ISO code (BE)."
    ]
    assert not User.objects.filter(first_name="Nobody").exists()


def test_phone_is_read_in_a_residency_country_typed_as_a_name(back_office_client):
    html = validate(
        back_office_client, "phone", {"phone": "0470 12 34 56", "residency_country": "Belgique"}
    ).content.decode()
    assert "E.164: +32470123456" in html
    response = validate(
        back_office_client, "phone", {"phone": "0470 12 34 56", "residency_country": "Narnia"}
    )
    assert response.status_code == 200
    assert "has-error" in response.content.decode()
