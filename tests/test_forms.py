"""UserForm: browser input to contract data, and the services' errors back onto inputs."""

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict

from tests.factories import VALID_IBANS, make_user
from users import contract
from users.forms import UserForm, metadata_to_text, parse_metadata

pytestmark = pytest.mark.django_db


def bound(data: dict, user=None) -> UserForm:
    query = QueryDict(mutable=True)
    for key, value in data.items():
        if isinstance(value, list):  # a checklist sends one value per ticked box
            query.setlist(key, value)
        else:
            query[key] = value
    return UserForm(query, user=user)


def test_metadata_lines_round_trip():
    text = "crm=42\n\nsegment = gold\nnote=a=b"
    assert parse_metadata(text) == {"crm": "42", "segment": "gold", "note": "a=b"}
    assert parse_metadata(metadata_to_text({"a": "1", "b": "x=y"})) == {"a": "1", "b": "x=y"}


@pytest.mark.parametrize(
    ("text", "message"),
    [("crm=1\nbroken", "Line 2 has no '='"), ("a=1\na=2", "Line 2 repeats the key 'a'")],
)
def test_metadata_lines_with_mistakes_say_which_line(text, message):
    with pytest.raises(ValidationError, match=message):
        parse_metadata(text)


def test_metadata_rules_come_from_the_validators():
    form = bound({"metadata": "k" * 41 + "=v"})
    assert not form.is_valid()
    assert "must be 1 to 40 characters" in form.errors["metadata"][0]


def test_contract_data_builds_nested_objects_and_leaves_empty_groups_out():
    form = bound(
        {
            "first_name": " Ada ",
            "bank_account_number": VALID_IBANS[1],
            "address_line1": "",
            "address_city": "",
            "tax_country_code": "BE",
            "tax_proof_type": "TIN",
            "tax_value": "1",
            "metadata": "a=1",
        }
    )
    assert form.is_valid(), form.errors
    data = form.contract_data()
    assert data["first_name"] == "Ada"
    assert data["counter_account"]["bank_account_number"] == VALID_IBANS[1]
    assert data["address"] is None
    assert data["tax_residency"] == {"country_code": "BE", "proof_type": "TIN", "value": "1"}
    assert data["metadata"] == {"a": "1"}


def test_edit_sends_only_the_inputs_present(user):
    form = bound({"expected_version": str(user.version), "last_name": "X"}, user=user)
    assert form.is_valid(), form.errors
    assert form.contract_data() == {"last_name": "X"}


@pytest.mark.parametrize(
    ("key", "input_name"),
    [
        ("counter_account.bank_id", "bank_id"),
        ("counter_account", "bank_account_number"),
        ("address.city", "address_city"),
        ("address", "address_line1"),
        ("tax_residency.value", "tax_value"),
        ("status_reason", "status"),
        ("email", "email"),
        ("address.nope", None),
        ("roles", None),
    ],
)
def test_service_error_keys_map_to_inputs(key, input_name):
    assert contract.input_for(tuple(key.split("."))) == input_name


def test_unmapped_service_errors_are_shown_for_the_form():
    form = bound({"first_name": "A"})
    form.is_valid()
    form.add_service_errors(ValidationError({"roles": ValidationError("Unknown role 'x'.")}))
    assert form.non_field_errors() == ["Unknown role 'x'."]


def test_write_once_inputs_are_read_only_once_set(user):
    form = UserForm(user=user)
    assert form.fields["email"].widget.attrs["readonly"] is True
    assert form.fields["phone"].widget.attrs["readonly"] is True
    blank = make_user(email=None, phone=None)
    form = UserForm(user=blank)
    assert "readonly" not in form.fields["email"].widget.attrs


def test_initial_values_render_the_stored_record(admin_user):
    subject = make_user(
        actor=admin_user,
        counter_account={"bank_account_number": VALID_IBANS[0], "bank_id": "GKCCBEBB"},
        nationalities=["BE", "NL"],
        metadata={"crm": "42"},
        address={"line1": "L1", "city": "C", "postal_code": "1000", "country_code": "BE"},
    )
    initial = UserForm.initial_for(subject)
    assert initial["bank_id"] == "GKCCBEBB"
    assert initial["nationalities"] == "BE, NL"
    assert initial["metadata"] == "crm=42"
    assert initial["address_city"] == "C"
    assert initial["expected_version"] == subject.version
    # Sending the initial values back unchanged is valid and changes nothing.
    form = bound(
        {k: v if isinstance(v, list) else "" if v is None else str(v) for k, v in initial.items()},
        user=subject,
    )
    assert form.is_valid(), form.errors


def test_check_input_reports_only_that_inputs_errors():
    form = bound({"bank_account_number": "12345", "bank_account_number_type": "ABA"})
    assert form.check_input("bank_account_number") == ([], None)
    errors, _hint = form.check_input("bank_id")
    assert errors == ["An ABA account needs its 9-digit routing number."]


def test_check_input_hints():
    form = bound(
        {
            "bank_account_number": VALID_IBANS[0],
            "phone": "0470 12 34 56",
            "residency_country": "be",
            "nationalities": "be nl",
        }
    )
    _, iban = form.check_input("bank_account_number")
    assert iban["bic"] == "GKCCBEBB"
    assert iban["offer_bic"] is True
    _, phone = form.check_input("phone")
    assert phone["text"] == "E.164: +32470123456"
    _, country = form.check_input("residency_country")
    assert country["text"] == "Belgium"
    _, nationalities = form.check_input("nationalities")
    assert nationalities["text"] == "Belgium, Netherlands"


def test_check_input_sees_uniqueness(user):
    form = bound({"email": user.email})
    errors, _ = form.check_input("email")
    assert errors == ["Email is already used by another user."]
