"""Input for the console's create and edit screens.

The forms only turn what a browser sends (flat inputs, `key=value` lines) into the contract's
shape; every rule is checked by `services.clean_user_data` and the validators it calls, and the
errors it raises (keyed by contract field, nested parts dotted) are mapped back onto the inputs.
Nothing here saves.
"""

from __future__ import annotations

import contextlib
import re
from html import escape
from typing import Any

import pycountry
from django import forms
from django.core.exceptions import ValidationError
from django.utils.safestring import mark_safe

from users import contract, services, validators
from users.models import INITIAL_STATUSES, BankAccountNumberType, BankIdType, Status, User

# Nested contract objects and the inputs that edit them, as input name -> key in the object.
GROUPS: dict[str, dict[str, str]] = contract.INPUT_GROUPS
INPUT_TO_GROUP = {name: group for group, inputs in GROUPS.items() for name in inputs}
# Contract fields edited by one input of the same name.
SIMPLE_FIELDS = contract.form_fields()
# Inputs two grid columns wide, on the page and when one is checked on its own (the width must
# not change when a field is swapped after validation).
WIDE_INPUTS = frozenset(
    {
        "address_line1",
        "address_line2",
        "readable_by",
        "modifiable_by",
        "bank_account_number",
        "tax_value",
        "sources_of_wealth",
        "metadata",
        "status",
    }
)
# Inputs whose check reads another input: when the first changes, the second is checked again
# (a national phone number becomes valid, or stops being, with the residency country).
DEPENDENT_INPUTS: dict[str, tuple[str, ...]] = {"residency_country": ("phone",)}
# Lists typed as comma- or space-separated values.
LIST_FIELDS = tuple(
    name
    for name in SIMPLE_FIELDS
    if contract.FIELDS[name].kind in (contract.Kind.COUNTRIES, contract.Kind.USER_IDS)
)


def _text(label: str, **attrs: Any) -> forms.CharField:
    # No max_length or other rule here: the validators own them, and their messages are clearer.
    return forms.CharField(
        label=label, required=False, strip=True, widget=forms.TextInput(attrs=attrs)
    )


# The inputs a country is typed into: a name or a code, with suggestions from a <datalist>
# (works without JavaScript); the form reads them as ISO codes before the services see them.
COUNTRY_INPUTS = ("residency_country", "address_country_code", "tax_country_code")
COUNTRY_DATALIST = "country-options"


def _country(label: str) -> forms.CharField:
    return _text(label, autocomplete="off", spellcheck="false", list=COUNTRY_DATALIST)


def metadata_to_text(metadata: dict[str, str] | None) -> str:
    return "\n".join(f"{key}={value}" for key, value in (metadata or {}).items())


def parse_metadata(raw: str) -> dict[str, str]:
    """`key=value` lines into a dict; the validators then check sizes and counts."""
    result: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise ValidationError(
                f"Line {number} has no '=': write one key=value pair per line.",
                code="metadata_line",
            )
        key, value = line.split("=", 1)
        key = key.strip()
        if key in result:
            raise ValidationError(
                f"Line {number} repeats the key {key!r}; each key may appear once.",
                code="metadata_duplicate",
            )
        result[key] = value.strip()
    return result


def country_name(code: str) -> str | None:
    country = pycountry.countries.get(alpha_2=code) if code else None
    return country.name if country else None


class UserForm(forms.Form):
    """Create (`user=None`) or edit a user. `contract_data()` is what the services receive."""

    identity = _text("National identity number", autocomplete="off")
    nationalities = _text(
        "Nationalities", placeholder="BE, NL", autocomplete="off", **{"class": "medium"}
    )
    email = forms.CharField(
        label="Email",
        required=False,
        strip=True,
        help_text="Write-once: cannot be changed once saved.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    phone = forms.CharField(
        label="Phone",
        required=False,
        strip=True,
        help_text="Write-once. International form, or national with the residency country.",
        widget=forms.TextInput(
            attrs={"type": "tel", "placeholder": "+32 470 12 34 56", "autocomplete": "off"}
        ),
    )
    language = _text("Language", placeholder="e.g. nl-BE", autocomplete="off")

    bank_account_number = _text(
        "Account number", placeholder="BE71 0961 2345 6769", autocomplete="off", spellcheck="false"
    )
    bank_account_number_type = forms.ChoiceField(
        label="Account type",
        required=False,
        choices=[("", "Detect"), *BankAccountNumberType.choices],
    )
    bank_id = _text("Bank id", autocomplete="off", spellcheck="false")
    bank_id_type = forms.ChoiceField(
        label="Bank id type", required=False, choices=[("", "Detect"), *BankIdType.choices]
    )

    address_line1 = _text("Street and number", autocomplete="off")
    address_line2 = _text("Line 2", autocomplete="off")
    address_postal_code = _text("Postal code", autocomplete="off", **{"class": "short"})
    address_city = _text("City", autocomplete="off")
    address_country_code = _country("Country")

    tax_country_code = _country("Tax country")
    tax_proof_type = _text("Proof type", placeholder="e.g. TIN", autocomplete="off")
    tax_value = _text("Tax number", autocomplete="off")

    metadata = forms.CharField(
        label="Metadata",
        required=False,
        strip=False,
        help_text="One key=value per line.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    readable_by = forms.CharField(
        label="Also readable by",
        required=False,
        help_text="User ids, comma-separated: people who may read this record beyond their role.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    modifiable_by = forms.CharField(
        label="Also modifiable by",
        required=False,
        help_text="User ids, comma-separated: people who may edit this record beyond their role.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    status = forms.ChoiceField(
        label="Starts in",
        required=False,
        choices=[(status.value, status.label) for status in map(Status, INITIAL_STATUSES)],
        help_text="Existing customers of the bank start waiting for their signature.",
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, user: User | None = None, manage_access: bool = True, **kwargs: Any
    ) -> None:
        self.user = user
        if user is not None and "initial" not in kwargs and not args and "data" not in kwargs:
            kwargs["initial"] = self.initial_for(user)
        super().__init__(*args, **kwargs)
        self.manage_access = manage_access
        if not manage_access:
            # Object-level editors change the record, not who else may read or edit it.
            del self.fields["readable_by"]
            del self.fields["modifiable_by"]
        if user is None:
            del self.fields["expected_version"]
        else:
            del self.fields["status"]
            self.fields["expected_version"].required = True
            self.fields["expected_version"].error_messages["required"] = (
                "The form lost the version it was made from; reload the page."
            )
            for name in contract.WRITE_ONCE_FIELDS:
                if getattr(user, name):
                    field = self.fields[name]
                    field.widget.attrs["readonly"] = True
                    field.widget.attrs["aria-readonly"] = "true"
                    field.help_text = "Write-once: set, and can never be changed."
                    field.widget.attrs.pop("placeholder", None)
            for name, mask in self.masks().items():
                if name in self.fields:
                    # The input starts empty: the stored value is never sent to the browser.
                    field = self.fields[name]
                    field.widget.attrs["placeholder"] = mask
                    field.help_text = (
                        f"Masked ({mask}): leave empty to keep it, or type the whole new value."
                    )
        if not self.is_bound:
            # Only a fresh page takes the focus: htmx honours autofocus in swapped content, and a
            # re-rendered field or form must not pull the cursor away from where the user is.
            self.fields["first_name"].widget.attrs["autofocus"] = True

    def masks(self) -> dict[str, str]:
        """The masked inputs of the user's stored values (`contract.MASKED`), input -> mask."""
        return {} if self.user is None else contract.masks_of(self.user)

    def _kept(self, name: str) -> bool:
        """A masked input left empty on an edit: the stored value stays (it was never shown)."""
        return (
            self.user is not None
            and name in contract.MASKED
            and not (self.data.get(name) or "").strip()
            and contract.MASKED[name].of(self.user) not in (None, "")
        )

    @staticmethod
    def initial_for(user: User) -> dict[str, Any]:
        snapshot = services.user_snapshot(user)
        initial: dict[str, Any] = {}
        for name in SIMPLE_FIELDS:
            kind, value = contract.FIELDS[name].kind, snapshot[name]
            if name in LIST_FIELDS:
                initial[name] = ", ".join(value)
            elif kind == contract.Kind.MAP:
                initial[name] = metadata_to_text(value)
            elif kind == contract.Kind.CHOICES:
                initial[name] = value
            else:
                initial[name] = value or ""
        for group, inputs in GROUPS.items():
            values = snapshot[group] or {}
            for name, key in inputs.items():
                initial[name] = values.get(key) or ""
        for name in contract.MASKED:
            initial[name] = ""  # masked: shown as a placeholder, kept when left empty
        initial["expected_version"] = user.version
        return initial

    # --- building the contract's data ------------------------------------------------------

    def _present(self, name: str) -> bool:
        # On edit, only inputs the browser sent are changed (a crafted POST may send a few);
        # a create takes the whole form.
        return self.user is None or name in self.data

    def _value(self, name: str) -> str:
        if self._kept(name):
            return str(contract.MASKED[name].of(self.user))
        if hasattr(self, "cleaned_data") and name in self.cleaned_data:
            value = self.cleaned_data[name] or ""
        else:
            value = (self.data.get(name) or "").strip()
        if name in COUNTRY_INPUTS:
            # "Austria", "at", "AT — Austria": the code; an unknown name is refused here.
            return validators.country_from_input(value, field=self.fields[name].label)
        return value

    def contract_value(self, field: str) -> Any:
        """One contract field's value as the services take it (nested objects whole)."""
        if field in GROUPS:
            values = {key: self._value(name) for name, key in GROUPS[field].items()}
            return values if any(values.values()) else None
        kind = contract.FIELDS[field].kind
        if kind == contract.Kind.MAP:
            return parse_metadata(self.data.get(field) or "")
        if kind == contract.Kind.USER_IDS:
            return [part for part in re.split(r"[\s,]+", self._value(field)) if part]
        if kind == contract.Kind.CHOICES:
            if hasattr(self, "cleaned_data") and field in self.cleaned_data:
                return list(self.cleaned_data[field] or [])
            return [value for value in self.data.getlist(field) if value]
        return self._value(field)

    def contract_fields(self) -> list[str]:
        # Only inputs this form has: a crafted POST cannot reach a field the form left out.
        fields = [name for name in SIMPLE_FIELDS if name in self.fields and self._present(name)]
        fields += [group for group, inputs in GROUPS.items() if any(map(self._present, inputs))]
        return fields

    def contract_data(self) -> dict[str, Any]:
        data = {}
        for field in self.contract_fields():
            try:
                data[field] = self.contract_value(field)
            except ValidationError:
                continue  # already reported by clean()
        if self.user is None and self._value("status"):
            data["status"] = self._value("status")
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            parse_metadata(self.data.get("metadata") or "")
        except ValidationError as exc:
            self.add_error("metadata", exc)
        for name in COUNTRY_INPUTS:
            if name in self.fields:
                try:
                    self._value(name)
                except ValidationError as exc:
                    self.add_error(name, exc)
        try:
            services.clean_user_data(self.contract_data(), user=self.user)
        except ValidationError as exc:
            self.add_service_errors(exc)
        return cleaned

    # --- errors from the services ----------------------------------------------------------

    def add_service_errors(self, exc: ValidationError) -> None:
        for name, errors in contract.errors_by_target(exc, contract.input_for):
            if name is None or name not in self.fields:
                self.add_error(None, errors)
            elif name not in self.errors or not any(e.message in self.errors[name] for e in errors):
                self.add_error(name, errors)

    # --- one field at a time (validation on blur) ------------------------------------------

    def check_input(self, name: str) -> tuple[list[str], dict[str, Any] | None]:
        """Validate the contract field behind one input; (its errors, a hint when valid).

        Only that input's own errors are returned: a half-filled group must not shout about
        parts the user has not reached yet.
        """
        if name not in self.fields or name in ("expected_version",):
            return [], None
        field = INPUT_TO_GROUP.get(name, name)
        if field == "status" or self._kept(name):
            return [], None  # a masked value left as it is: nothing to say, nothing to show
        try:
            data = {field: self.contract_value(field)}
        except ValidationError as exc:
            return list(exc.messages), None
        if field == "phone" and "residency_country" in self.data:
            # National numbers are read in the residency country being typed, not the stored one.
            # Not a country (yet): that input says so; the phone is read without it.
            with contextlib.suppress(ValidationError):
                data["residency_country"] = self._value("residency_country")
        try:
            cleaned = services.clean_user_data(data, user=self.user)
        except ValidationError as exc:
            messages = [
                message
                for target, errors in contract.errors_by_target(exc, contract.input_for)
                if target == name
                for error in errors
                for message in error.messages
            ]
            return messages, None
        return [], self._hint(name, field, cleaned.get(field))

    def _hint(self, name: str, field: str, value: Any) -> dict[str, Any] | None:
        if name == "bank_account_number" and value:
            if value["bank_account_number_type"] != BankAccountNumberType.IBAN:
                return None
            details = validators.iban_details(value["bank_account_number"])
            current_bic = self._value("bank_id").upper()
            return {
                "kind": "iban",
                "text": details["formatted"],
                "bank_name": details["bank_name"],
                "bic": details["bic"],
                "offer_bic": bool(details["bic"]) and current_bic != details["bic"],
            }
        if name == "phone" and value:
            return {"kind": "phone", "text": f"E.164: {value}"}
        if name in ("residency_country", "address_country_code", "tax_country_code"):
            code = value if name == "residency_country" else (value or {}).get("country_code")
            if code:
                return {"kind": "country", "text": country_name(code)}
        if name == "nationalities" and value:
            return {"kind": "countries", "text": ", ".join(country_name(c) or c for c in value)}
        if name == "language" and value and value != self._value("language"):
            return {"kind": "language", "text": f"Saved as {value}"}
        return None


class ChecklistWidget(forms.CheckboxSelectMultiple):
    """Checkboxes that say "none ticked" too: an empty hidden input goes first, so an edit that
    unticks every box still sends the field (the form changes only the inputs it was sent)."""

    def render(self, name, value, attrs=None, renderer=None):
        hidden = f'<input type="hidden" name="{escape(name)}" value="">'
        return mark_safe(hidden + super().render(name, value, attrs, renderer))


class ChecklistField(forms.MultipleChoiceField):
    widget = ChecklistWidget

    def to_python(self, value: Any) -> list[str]:
        return [item for item in super().to_python(value) if item]


def form_field(field: contract.Field) -> forms.Field:
    """An input for a contract field the form does not declare itself, by the field's kind.

    Rules stay with the validators; the input only shapes what a browser sends.
    """
    match field.kind:
        case contract.Kind.CHOICE:
            choices = [("", "—"), *field.choices.choices]
            return forms.ChoiceField(label=field.label, required=False, choices=choices)
        case contract.Kind.CHOICES:
            return ChecklistField(label=field.label, required=False, choices=field.choices.choices)
        case contract.Kind.COUNTRY:
            return _country(field.label)
        case contract.Kind.DATE:
            return forms.CharField(
                label=field.label, required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
    return _text(field.label, autocomplete="off")


def _registry_order(declared: dict[str, forms.Field]) -> dict[str, forms.Field]:
    """The form's inputs in the registry's order, a generated one for each contract field the
    form does not declare itself; inputs that are no contract field (status, version) last."""
    inputs: dict[str, forms.Field] = {}
    for name in contract.INPUT_FIELDS:
        if name in GROUPS:
            inputs.update((part, declared[part]) for part in GROUPS[name])
        elif name in SIMPLE_FIELDS:
            inputs[name] = declared.get(name) or form_field(contract.FIELDS[name])
    return inputs | {name: field for name, field in declared.items() if name not in inputs}


UserForm.base_fields = _registry_order(UserForm.base_fields)


class ClientFileForm(forms.Form):
    """The day a user's file is asked for, and whether as a printable page or JSON."""

    as_of = forms.DateField(
        label="As of",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": "Choose the day the file is to show.",
            "invalid": "Type a date as YYYY-MM-DD.",
        },
    )
    format = forms.ChoiceField(
        choices=[("html", "Printable page"), ("json", "JSON")], required=False, initial="html"
    )

    def clean_as_of(self):
        value = self.cleaned_data["as_of"]
        if value.year < 1900:
            raise ValidationError("Choose a day from 1900 on.", code="too_early")
        return value


class DashboardPeriodForm(forms.Form):
    """The dashboard's period: the last 7, 30, 90 or 365 days, or from one day to another
    (both included; at most `MAX_PERIOD_DAYS`). Dates win over `days` when given."""

    DAYS = (7, 30, 90, 365)

    days = forms.TypedChoiceField(
        label="Period",
        choices=[(n, f"Last {n} days") for n in DAYS],
        coerce=int,
        required=False,
        error_messages={"invalid_choice": "Choose the last 7, 30, 90 or 365 days."},
    )
    start = forms.DateField(
        label="From",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Type the first day as YYYY-MM-DD."},
    )
    end = forms.DateField(
        label="To",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Type the last day as YYYY-MM-DD."},
    )

    def __init__(self, *args: Any, max_days: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_days = max_days

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if bool(start) != bool(end):
            raise ValidationError(
                "Give both the first and the last day, or neither.", code="half_range"
            )
        if start and end:
            if start.year < 1900:
                raise ValidationError("Choose a first day from 1900 on.", code="too_early")
            if end < start:
                raise ValidationError("The last day is before the first.", code="reversed")
            if (end - start).days + 1 > self.max_days:
                raise ValidationError(f"Choose at most {self.max_days} days.", code="too_long")
        return data
