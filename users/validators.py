"""Field rules of the contract, in one place.

Each function takes raw input and returns the normalised value, or raises `ValidationError` with
a message that says exactly what is wrong and a stable `code`. Services, forms, the admin and the
API all call these; none of them re-implements a rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import langcodes
import phonenumbers
import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import models
from django.utils import timezone
from schwifty import BIC, IBAN, registry
from schwifty import exceptions as schwifty_errors
from stdnum.us import rtn

from users.models import (
    EMPLOYED_STATUSES,
    PHONE_REGEX,
    BankAccountNumberType,
    BankIdType,
    EmploymentStatus,
    FeatureFlag,
    is_user_id,
)

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500

_email_validator = EmailValidator(message="Enter a valid email address, like jane.doe@example.com.")
_phone_re = re.compile(PHONE_REGEX)
_aba_account_re = re.compile(r"^[0-9]{4,17}$")


def not_deleted(deleted: bool) -> None:
    """A deleted user is read-only until restored: every service that changes one refuses."""
    if deleted:
        raise ValidationError(
            {"deleted": ValidationError("This user is deleted; restore it first.", code="deleted")}
        )


def text(value: Any, *, max_length: int, field: str = "Value") -> str:
    """A trimmed string no longer than `max_length`; None becomes ""."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text.", code="type")
    if "\x00" in value:
        # PostgreSQL refuses NUL in text: without this check the database would fail the save.
        raise ValidationError(f"{field} contains a NUL character.", code="null_characters")
    value = value.strip()
    if len(value) > max_length:
        raise ValidationError(
            f"{field} has {len(value)} characters; at most {max_length} are allowed.",
            code="max_length",
        )
    return value


def first_nul(params: Any) -> tuple[str, str] | None:
    """(key, text) of the first URL parameter whose name or a value holds a NUL, else None.

    `params` is a QueryDict (anything with `.lists()`). PostgreSQL refuses NUL in text, so a
    parameter holding one must be refused before it reaches a query.
    """
    for key, values in params.lists():
        for text in (key, *values):
            if "\x00" in text:
                return key, text
    return None


def email(value: Any) -> str | None:
    value = text(value, max_length=254, field="Email")
    if not value:
        return None
    _email_validator(value)
    return value


def phone(value: Any, *, region: str | None = None) -> str | None:
    """A valid phone number in E.164. National input is read in `region` (residency country)."""
    raw = text(value, max_length=32, field="Phone")
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if raw.startswith("+"):
                raise ValidationError(
                    f"{raw} does not start with a known country code.", code="phone_country"
                ) from exc
            raise ValidationError(
                "Give the number in international form (+32 470 12 34 56), or set the "
                "residency country so that a national number can be read.",
                code="phone_region",
            ) from exc
        raise ValidationError(f"{raw} is not a phone number.", code="phone_invalid") from exc
    region_code = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code)
    )
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in (
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.TOO_LONG,
        phonenumbers.ValidationResult.INVALID_LENGTH,
    ):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region_code)
        lengths = metadata.general_desc.possible_length if metadata else ()
        expected = " or ".join(str(n) for n in lengths) if lengths else "a different number of"
        got = len(phonenumbers.national_significant_number(number))
        raise ValidationError(
            f"+{number.country_code} numbers have {expected} digits after the country code; "
            f"this one has {got}.",
            code="phone_length",
        )
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            f"{raw} is not a valid phone number for "
            f"{_country_name(region_code) or '+' + str(number.country_code)}.",
            code="phone_invalid",
        )
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _phone_re.match(formatted):  # pragma: no cover - phonenumbers' E.164 always matches
        raise ValidationError(f"{formatted} is not an E.164 number.", code="phone_invalid")
    return formatted


def language(value: Any) -> str:
    """A BCP 47 tag such as en, en-US, nl-BE or el; normalised to its standard casing."""
    tag = text(value, max_length=35, field="Language")
    if not tag:
        return ""
    if "_" in tag:
        raise ValidationError(
            f"{tag} is not a BCP 47 tag: use a hyphen, as in {tag.replace('_', '-')}.",
            code="language",
        )
    if not langcodes.tag_is_valid(tag):
        raise ValidationError(
            f"{tag} is not a BCP 47 language tag (examples: en, en-US, nl-BE, el).",
            code="language",
        )
    return langcodes.standardize_tag(tag)


def _country_name(code: str | None) -> str | None:
    country = pycountry.countries.get(alpha_2=code) if code else None
    return country.name if country else None


def country(value: Any, *, field: str = "Country") -> str:
    """An ISO 3166-1 alpha-2 code (upper case)."""
    code = text(value, max_length=8, field=field)
    if not code:
        return ""
    if not re.fullmatch(r"[A-Za-z]{2}", code):
        raise ValidationError(
            f"{field} must be a two-letter ISO 3166-1 code such as BE; got {code!r}.",
            code="country",
        )
    code = code.upper()
    if _country_name(code) is None:
        raise ValidationError(f"{code} is not an ISO 3166-1 country code.", code="country")
    return code


# Languages whose country names a person may type, besides English (the console's users
# work in Belgium and its neighbours).
COUNTRY_NAME_LANGUAGES = ("fr", "nl", "de")


def _fold(text: str) -> str:
    """Case and accents ignored: "Österreich" and "osterreich" read the same."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@functools.cache
def _country_names() -> dict[str, str]:
    """Folded name, official name, common name (English and COUNTRY_NAME_LANGUAGES) and
    alpha-3 code -> alpha-2 code, from pycountry's ISO 3166-1 data and translations."""
    translations = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for language in COUNTRY_NAME_LANGUAGES
    ]
    names: dict[str, str] = {}
    for entry in pycountry.countries:
        code = entry.alpha_2
        english = [
            getattr(entry, attr)
            for attr in ("name", "official_name", "common_name")
            if getattr(entry, attr, None)
        ]
        for name in english:
            names.setdefault(_fold(name), code)
        for translation in translations:
            for name in english:
                names.setdefault(_fold(translation.gettext(name)), code)
        names.setdefault(_fold(entry.alpha_3), code)
    return names


def country_options() -> list[tuple[str, str]]:
    """(code, English name) of every ISO 3166-1 country, by name: the form's suggestions."""
    return sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])


def country_from_input(value: Any, *, field: str = "Country") -> str:
    """A country as a person types it: a code (`AT`, `at`), a name in English or a neighbour's
    language, case and accents ignored (`Austria`, `Österreich`, `Belgique`), or a suggestion
    as the form offers it (`AT — Austria`); the ISO 3166-1 alpha-2 code, or "" when empty.

    The API keeps taking codes only (`country`); this reading is for the console's form.
    """
    raw = text(value, max_length=128, field=field)
    if not raw:
        return ""
    code, sep, _name = raw.partition(" — ")
    if sep and re.fullmatch(r"[A-Za-z]{2}", code.strip()):
        raw = code.strip()
    if re.fullmatch(r"[A-Za-z]{2}", raw) and _country_name(raw.upper()):
        return raw.upper()
    found = _country_names().get(_fold(raw))
    if found is None:
        raise ValidationError(
            f"Not a country: {raw!r}. Type a name (Belgium) or an ISO code (BE).",
            code="country",
        )
    return found


def countries(value: Any, *, field: str = "Nationalities") -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{field} must be a list of country codes.", code="type")
    cleaned: list[str] = []
    for item in value:
        code = country(item, field=field)
        if code and code not in cleaned:
            cleaned.append(code)
    return cleaned


def choice(
    value: Any, choices: type[models.TextChoices], *, field: str, required: bool = False
) -> str:
    """One of `choices` (its stored value); empty is "" unless `required`."""
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or value not in choices.values:
        raise ValidationError(
            f"Unknown {field.lower()} {value!r}; known: {', '.join(choices.values)}.",
            code="choice",
        )
    return value


def choice_list(value: Any, choices: type[models.TextChoices], *, field: str) -> list[str]:
    """Distinct values of `choices`, in the order of the choices; empty is []."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(f"{field} must be a list.", code="type")
    for item in value:
        choice(item, choices, field=field, required=True)
    return [known for known in choices.values if known in value]


def date_of_birth(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not a date; use YYYY-MM-DD.", code="date") from exc
    if not isinstance(value, dt.date):
        raise ValidationError("Date of birth must be a date (YYYY-MM-DD).", code="date")
    if value > timezone.localdate():
        raise ValidationError("Date of birth cannot be in the future.", code="date_future")
    if value.year < 1900:
        raise ValidationError("Date of birth must be in 1900 or later.", code="date_past")
    return value


# --- counter account -------------------------------------------------------------------------


def iban(value: Any) -> IBAN:
    raw = text(value, max_length=64, field="IBAN")
    compact = re.sub(r"\s", "", raw).upper()
    if not compact:
        raise ValidationError("Enter an IBAN.", code="required")
    if not re.fullmatch(r"[A-Z0-9]+", compact):
        raise ValidationError("An IBAN has only letters and digits.", code="iban_invalid")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", compact):
        raise ValidationError(
            "An IBAN starts with a two-letter country code and two check digits, "
            "like BE71 0961 2345 6769.",
            code="iban_format",
        )
    country_code = compact[:2]
    if _iban_length(country_code) is None:
        raise ValidationError(
            f"IBAN country {country_code!r} does not use IBANs.", code="iban_country"
        )
    try:
        return IBAN(compact)
    except schwifty_errors.InvalidChecksumDigits as exc:
        raise ValidationError("IBAN check digits are wrong.", code="iban_checksum") from exc
    except schwifty_errors.InvalidCountryCode as exc:
        raise ValidationError(
            f"IBAN country {country_code!r} does not use IBANs.", code="iban_country"
        ) from exc
    except schwifty_errors.InvalidLength as exc:
        spec_length = _iban_length(country_code)
        expected = f" {country_code} IBANs have {spec_length} characters." if spec_length else ""
        raise ValidationError(
            f"IBAN length is wrong: it has {len(compact)} characters.{expected}",
            code="iban_length",
        ) from exc
    except schwifty_errors.InvalidBBANChecksum as exc:
        raise ValidationError(
            "IBAN account number fails its national checksum.", code="iban_bban_checksum"
        ) from exc
    except schwifty_errors.InvalidStructure as exc:
        raise ValidationError(
            f"IBAN does not follow the {country_code} account number format.",
            code="iban_format",
        ) from exc
    except schwifty_errors.SchwiftyException as exc:
        raise ValidationError(f"IBAN is not valid: {exc}.", code="iban_invalid") from exc


def _iban_length(country_code: str) -> int | None:
    try:
        return registry.get_iban_spec(country_code).iban_length
    except schwifty_errors.SchwiftyException:
        return None


def bic(value: Any) -> BIC:
    raw = text(value, max_length=16, field="BIC")
    try:
        return BIC(raw)
    except schwifty_errors.InvalidLength as exc:
        raise ValidationError("A BIC has 8 or 11 characters.", code="bic_length") from exc
    except schwifty_errors.InvalidCountryCode as exc:
        raise ValidationError(
            f"BIC country {raw[4:6].upper()!r} is not a country.", code="bic_country"
        ) from exc
    except schwifty_errors.SchwiftyException as exc:
        raise ValidationError(f"BIC is not valid: {exc}.", code="bic_invalid") from exc


def aba_routing_number(value: Any) -> str:
    raw = text(value, max_length=16, field="Routing number")
    if not re.fullmatch(r"[0-9]{9}", raw):
        raise ValidationError("An ABA routing number has 9 digits.", code="aba_routing_length")
    if not rtn.is_valid(raw):
        raise ValidationError("ABA routing number checksum is wrong.", code="aba_routing_checksum")
    return raw


def iban_details(value: str) -> dict[str, str | None]:
    """What schwifty knows of a valid IBAN's bank: shown to the user, offered as the BIC."""
    number = iban(value)
    bank_bic = number.bic
    return {
        "iban": number.compact,
        "formatted": number.formatted,
        "country_code": number.country_code,
        "bic": str(bank_bic) if bank_bic else None,
        "bank_name": number.bank_name if bank_bic else None,
    }


COUNTER_ACCOUNT_KEYS = (
    "bank_account_number",
    "bank_account_number_type",
    "bank_id",
    "bank_id_type",
)


def counter_account(value: Any) -> dict[str, str]:
    """The counter account as its four columns; an empty value clears it.

    Errors are keyed by sub-field so that forms and the API can point at the exact input.
    """
    empty = dict.fromkeys(COUNTER_ACCOUNT_KEYS, "")
    if value in (None, "", {}):
        return empty
    if not isinstance(value, Mapping):
        raise ValidationError("Counter account must be an object.", code="type")
    unknown = set(value) - set(COUNTER_ACCOUNT_KEYS)
    if unknown:
        raise ValidationError(
            {
                key: ValidationError("Unknown counter account field.", code="unknown")
                for key in sorted(unknown)
            }
        )
    errors: dict[str, ValidationError] = {}
    number_raw = text(value.get("bank_account_number"), max_length=64, field="Account number")
    number_type = text(value.get("bank_account_number_type"), max_length=8, field="Type").upper()
    bank_id_raw = text(value.get("bank_id"), max_length=16, field="Bank id")
    bank_id_type = text(value.get("bank_id_type"), max_length=8, field="Bank id type").upper()

    if not number_raw:
        if number_type or bank_id_raw or bank_id_type:
            errors["bank_account_number"] = ValidationError(
                "Enter the account number, or clear the whole counter account.", code="required"
            )
        if errors:
            raise ValidationError(errors)
        return empty
    if not number_type:
        # An IBAN announces itself by its country prefix; anything else must say its type.
        number_type = "IBAN" if re.match(r"^[A-Za-z]{2}", number_raw) else ""
    if number_type not in BankAccountNumberType.values:
        errors["bank_account_number_type"] = ValidationError(
            "Account number type must be IBAN or ABA.", code="choice"
        )
    if bank_id_type and bank_id_type not in BankIdType.values:
        errors["bank_id_type"] = ValidationError("Bank id type must be BIC or ABA.", code="choice")
    if errors:
        raise ValidationError(errors)

    result = dict(empty, bank_account_number_type=number_type)
    if number_type == BankAccountNumberType.IBAN:
        try:
            number = iban(number_raw)
            result["bank_account_number"] = number.compact
        except ValidationError as exc:
            errors["bank_account_number"] = exc
            number = None
        bank_id_type = bank_id_type or (BankIdType.BIC if bank_id_raw else "")
        if bank_id_raw:
            if bank_id_type != BankIdType.BIC:
                errors["bank_id_type"] = ValidationError(
                    "An IBAN account is identified by a BIC.", code="bank_id_type"
                )
            else:
                try:
                    bank_bic = bic(bank_id_raw)
                    if number is not None and bank_bic.country_code != number.country_code:
                        errors["bank_id"] = ValidationError(
                            f"BIC country {bank_bic.country_code} does not match the IBAN "
                            f"country {number.country_code}.",
                            code="bic_country_mismatch",
                        )
                    result["bank_id"] = str(bank_bic)
                    result["bank_id_type"] = BankIdType.BIC.value
                except ValidationError as exc:
                    errors["bank_id"] = exc
    else:  # ABA
        digits = re.sub(r"[\s-]", "", number_raw)
        if not _aba_account_re.fullmatch(digits):
            errors["bank_account_number"] = ValidationError(
                "An ABA account number has 4 to 17 digits.", code="aba_account"
            )
        result["bank_account_number"] = digits
        if not bank_id_raw:
            errors["bank_id"] = ValidationError(
                "An ABA account needs its 9-digit routing number.", code="required"
            )
        elif bank_id_type and bank_id_type != BankIdType.ABA:
            errors["bank_id_type"] = ValidationError(
                "An ABA account is identified by an ABA routing number.", code="bank_id_type"
            )
        else:
            try:
                result["bank_id"] = aba_routing_number(bank_id_raw)
                result["bank_id_type"] = BankIdType.ABA.value
            except ValidationError as exc:
                errors["bank_id"] = exc
    if errors:
        raise ValidationError(errors)
    return result


# --- nested objects ---------------------------------------------------------------------------


def _nested(
    value: Any,
    *,
    name: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    countries_in: tuple[str, ...] = (),
    max_length: int = 128,
    labels: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """A nested object's parts, each refused in the words of its label (the registry's part
    labels when the caller passes them: "Street and number", not "Line1")."""
    if value in (None, "", {}):
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be an object.", code="type")
    errors: dict[str, ValidationError] = {}
    for key in sorted(set(value) - set(required) - set(optional)):
        errors[key] = ValidationError(f"Unknown {name.lower()} field.", code="unknown")
    result: dict[str, str] = {}
    for key in (*required, *optional):
        label = (labels or {}).get(key) or key.replace("_", " ").capitalize()
        try:
            item = text(value.get(key), max_length=max_length, field=label)
            if key in countries_in:
                item = country(item)
        except ValidationError as exc:
            errors[key] = exc
            continue
        if not item and key in required:
            errors[key] = ValidationError(
                f"{label} is required when the {name.lower()} is given.",
                code="required",
            )
        elif item:
            result[key] = item
    if errors:
        raise ValidationError(errors)
    return result


def address(value: Any, *, labels: Mapping[str, str] | None = None) -> dict[str, str] | None:
    return _nested(
        value,
        name="Address",
        required=("line1", "city", "postal_code", "country_code"),
        optional=("line2",),
        countries_in=("country_code",),
        labels=labels,
    )


def tax_residency(value: Any, *, labels: Mapping[str, str] | None = None) -> dict[str, str] | None:
    return _nested(
        value,
        name="Tax residency",
        required=("country_code", "proof_type", "value"),
        countries_in=("country_code",),
        labels=labels,
    )


def employment(
    *, employment_status: str, income_range: str, sources_of_wealth: list[str], industry: str
) -> None:
    """Seed 002's employmentInfo rule, over the four fields as they will be stored.

    Once any of them is given, the employment status, the income range and at least one
    source of wealth are required; the industry too for the full-time, part-time and
    self-employed.
    """
    if not (employment_status or income_range or sources_of_wealth or industry):
        return
    errors: dict[str, ValidationError] = {}
    if not employment_status:
        errors["employment_status"] = ValidationError(
            "Give the employment status: it comes with the income range and the sources of wealth.",
            code="required",
        )
    if not income_range:
        errors["income_range"] = ValidationError(
            "Give the income range: it comes with the employment status.", code="required"
        )
    if not sources_of_wealth:
        errors["sources_of_wealth"] = ValidationError(
            "Give at least one source of wealth: it comes with the employment status.",
            code="required",
        )
    if employment_status in EMPLOYED_STATUSES and not industry:
        label = EmploymentStatus(employment_status).label.lower()
        errors["industry"] = ValidationError(
            f"Give the industry: it is required for the {label}.", code="required"
        )
    if errors:
        raise ValidationError(errors)


def metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("Metadata must be an object of key → text.", code="type")
    if len(value) > METADATA_MAX_KEYS:
        raise ValidationError(
            f"Metadata has {len(value)} keys; at most {METADATA_MAX_KEYS} are allowed.",
            code="metadata_keys",
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > METADATA_MAX_KEY_LENGTH:
            raise ValidationError(
                f"Metadata key {key!r} must be 1 to {METADATA_MAX_KEY_LENGTH} characters.",
                code="metadata_key",
            )
        if not isinstance(item, str):
            raise ValidationError(f"Metadata value of {key!r} must be text.", code="metadata_value")
        if "\x00" in key or "\x00" in item:
            raise ValidationError(
                f"Metadata {key!r} contains a NUL character.", code="null_characters"
            )
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise ValidationError(
                f"Metadata value of {key!r} has {len(item)} characters; at most "
                f"{METADATA_MAX_VALUE_LENGTH} are allowed.",
                code="metadata_value",
            )
    return dict(value)


def feature_flags(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError("Feature flags must be a list.", code="type")
    unknown = [flag for flag in value if flag not in FeatureFlag.values]
    if unknown:
        raise ValidationError(
            f"Unknown feature flag {unknown[0]!r}; known: {', '.join(FeatureFlag.values)}.",
            code="feature_flag",
        )
    return sorted(set(value))


def user_ids(value: Any, *, field: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple | set):
        raise ValidationError(f"{field} must be a list of user ids.", code="type")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str) or not is_user_id(item):
            raise ValidationError(f"{item!r} is not a user id (U + 26 characters).", code="user_id")
        if item not in ids:
            ids.append(item)
    return sorted(ids)
