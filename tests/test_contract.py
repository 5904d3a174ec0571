"""The field registry (users/contract.py): every front end's field list is the registry's."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from users import contract, query
from users.admin import FORM_FIELDS, UserAdmin
from users.api.schemas import UserIn, UserOut, UserPatch
from users.forms import UserForm
from users.models import User
from users.views.list import EXPORT_COLUMNS


def test_api_bodies_are_the_registry_fields():
    assert list(UserIn.model_fields) == [*_with_reason(contract.INPUT_FIELDS)]
    # A PATCH takes back what a GET returned: the read-only fields too (`version` is the
    # version the change was made from).
    # ... and the pending changes a GET carries (four-eyes), ignored.
    assert set(UserPatch.model_fields) == {
        *UserIn.model_fields,
        *contract.READ_ONLY_API_FIELDS,
        "pending_changes",
    }
    assert set(contract.READ_ONLY_API_FIELDS) == {
        "id",
        "creation_datetime",
        "version",
        "version_datetime",
        "version_authored_by_user_id",
        "deleted",
    }
    assert list(UserOut.model_fields) == list(contract.API_FIELDS)


def _with_reason(names):
    for name in names:
        yield name
        if name == "status":
            yield "status_reason"
            yield "status_reason_code"


def test_api_refuses_a_key_the_registry_does_not_have():
    with pytest.raises(ValueError, match="favourite_colour"):
        UserIn.model_validate({"favourite_colour": "blue"})


@pytest.mark.parametrize("name", [f.name for f in contract.FIELDS.values() if f.column])
def test_lengths_are_read_from_the_model(name):
    field = contract.FIELDS[name]
    assert field.max_length == getattr(User._meta.get_field(field.column), "max_length", None)


def test_text_longer_than_the_column_is_refused_with_the_column_length():
    field = contract.FIELDS["first_name"]
    context = contract.CleanContext(data={}, user=None, cleaned={})
    with pytest.raises(ValidationError, match="at most 128"):
        field.cleaned("x" * 129, context)


def test_query_fields_are_the_queryable_registry_fields():
    queryable = {f.name for f in contract.FIELDS.values() if f.queryable}
    parts = {p.key for f in contract.FIELDS.values() for p in f.parts if p.queryable}
    # ... and what is no contract field: the reason code of the current status (issue 14.3).
    extra = set(query.EXTRA_FIELDS)
    assert extra == {"status_reason_code"}
    assert set(query.FIELDS) == queryable | parts | extra
    sortable = {f.name for f in contract.FIELDS.values() if f.queryable and f.sortable}
    extra_sortable = {name for name, spec in query.EXTRA_FIELDS.items() if spec.sortable}
    assert set(query.SORTABLE_FIELDS) == sortable | parts | extra_sortable


def test_export_columns_are_columns_of_exported_fields():
    json_parts = contract.export_json_parts()
    for column in EXPORT_COLUMNS:
        if column in json_parts:  # a key of a JSON object column, e.g. the address's city
            field, key = json_parts[column]
            assert key in {p.key for f in contract.FIELDS.values() for p in f.parts}
            User._meta.get_field(field)
        elif column != "feature_flags":
            User._meta.get_field(column)  # raises for a column the model lacks
    exported = {f.name for f in contract.FIELDS.values() if f.exported}
    assert "counter_account" in exported
    assert "bank_account_number" in EXPORT_COLUMNS


def test_the_form_and_the_admin_edit_every_input_field():
    form = UserForm()
    for name in contract.form_fields():
        assert name in form.fields, name
    for name, inputs in contract.INPUT_GROUPS.items():
        assert set(inputs) <= set(form.fields), name
    admin_names = {n for _, options in UserAdmin.fieldsets for n in options["fields"]}
    assert set(FORM_FIELDS) <= admin_names


@pytest.mark.parametrize(
    ("key", "form_input", "admin_field"),
    [
        ("counter_account.bank_id", "bank_id", "bank_id"),
        ("counter_account", "bank_account_number", "bank_account_number"),
        ("address.city", "address_city", "address"),
        ("tax_residency", "tax_country_code", "tax_residency"),
        ("status_reason", "status", "status_reason"),
        ("status_reason_code", "status", "status_reason_code"),
        ("email", "email", "email"),
        ("nope", None, None),
    ],
)
def test_one_adapter_places_service_errors_for_each_front_end(key, form_input, admin_field):
    exc = ValidationError({key: ValidationError("Wrong.", code="x")})
    path = tuple(key.split("."))
    assert contract.errors_by_target(exc, contract.input_for)[0][0] == form_input
    assert contract.errors_by_target(exc, contract.column_for)[0][0] == admin_field
    assert contract.errors_by_target(exc, lambda p: ["body", *p])[0][0] == ["body", *path]


def test_an_error_about_the_whole_input_has_an_empty_path():
    exc = ValidationError("Broken.")
    assert contract.errors_by_target(exc, lambda path: path) == [((), exc.error_list)]


@pytest.mark.parametrize("name", [f.name for f in contract.FIELDS.values() if f.parts])
def test_required_parts_are_what_the_validators_require(name):
    """`Part.required` (which the API's schema says) is the validators' rule: an object with
    only one part set is refused for each other required part missing, and for no other."""
    field = contract.FIELDS[name]
    required = {part.key for part in field.parts if part.required}
    assert required
    for part in field.parts:
        context = contract.CleanContext(data={}, user=None, cleaned={})
        try:
            field.cleaned({part.key: part.example or "x"}, context)
        except ValidationError as exc:
            missing = {
                key for key, errors in exc.error_dict.items() if errors[0].code == "required"
            }
        else:
            missing = set()
        assert missing == required - {part.key}, part.key
