"""Every field rule of the contract, with valid and invalid input (users/validators.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from users import validators


def refused(func, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        func(*args, **kwargs)
    return info.value


def field_messages(exc: ValidationError) -> dict[str, list[str]]:
    return {
        key: [e.message % (e.params or {}) for e in errors]
        for key, errors in exc.error_dict.items()
    }


# --- text ------------------------------------------------------------------------------------


def test_text_trims_and_turns_none_into_empty():
    assert validators.text("  Jane  ", max_length=10) == "Jane"
    assert validators.text(None, max_length=10) == ""


def test_text_refuses_too_long_and_non_text():
    exc = refused(validators.text, "x" * 11, max_length=10, field="First name")
    assert exc.messages == ["First name has 11 characters; at most 10 are allowed."]
    assert exc.code == "max_length"
    exc = refused(validators.text, 42, max_length=10, field="First name")
    assert exc.messages == ["First name must be text."]


# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["jane.doe@example.com", "  a+b@sub.example.co.uk "])
def test_email_valid(value):
    assert validators.email(value) == value.strip()


def test_email_empty_is_none():
    assert validators.email("") is None
    assert validators.email(None) is None


@pytest.mark.parametrize("value", ["jane", "jane@", "@example.com", "jane doe@example.com"])
def test_email_invalid(value):
    exc = refused(validators.email, value)
    assert exc.messages == ["Enter a valid email address, like jane.doe@example.com."]


# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "stored"),
    [
        ("+32470123456", None, "+32470123456"),
        ("+32 470 12 34 56", None, "+32470123456"),
        ("0470 12 34 56", "BE", "+32470123456"),  # national input read in the residency country
        ("+1 202 555 0123", None, "+12025550123"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+44 7911 123456", "BE", "+447911123456"),  # international input ignores the region
    ],
)
def test_phone_valid_stored_e164(raw, region, stored):
    assert validators.phone(raw, region=region) == stored


def test_phone_seed_placeholder_is_refused_with_the_length_rule():
    exc = refused(validators.phone, "+123456789")
    assert exc.code == "phone_length"
    assert exc.messages == ["+1 numbers have 10 digits after the country code; this one has 8."]


def test_phone_too_long_names_the_lengths():
    exc = refused(validators.phone, "+3247012345678901")
    assert exc.messages == [
        "+32 numbers have 8 or 9 digits after the country code; this one has 14."
    ]


def test_phone_possible_but_not_valid():
    exc = refused(validators.phone, "+32 2 000 00 00")
    assert exc.code == "phone_invalid"
    assert exc.messages == ["+32 2 000 00 00 is not a valid phone number for Belgium."]


def test_phone_national_number_without_region():
    exc = refused(validators.phone, "0470 12 34 56")
    assert exc.code == "phone_region"
    assert "international form" in exc.messages[0]


def test_phone_unknown_country_code_and_garbage():
    assert refused(validators.phone, "+999123").messages == [
        "+999123 does not start with a known country code."
    ]
    assert refused(validators.phone, "call me").messages == ["call me is not a phone number."]


def test_phone_empty_is_none():
    assert validators.phone("") is None
    assert validators.phone(None) is None


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("en", "en"), ("en-US", "en-US"), ("en-us", "en-US"), ("nl-BE", "nl-BE"), ("el", "el")],
)
def test_language_valid_bcp47(raw, tag):
    assert validators.language(raw) == tag


def test_language_underscore_suggests_hyphen():
    exc = refused(validators.language, "nl_BE")
    assert exc.messages == ["nl_BE is not a BCP 47 tag: use a hyphen, as in nl-BE."]


@pytest.mark.parametrize("raw", ["english", "zz", "en-", "123"])
def test_language_invalid(raw):
    exc = refused(validators.language, raw)
    assert exc.code == "language"
    assert exc.messages == [f"{raw} is not a BCP 47 language tag (examples: en, en-US, nl-BE, el)."]


# --- countries -------------------------------------------------------------------------------


def test_country_normalised_upper_case():
    assert validators.country("be") == "BE"
    assert validators.country("") == ""


def test_country_unknown_and_wrong_shape():
    assert refused(validators.country, "XX").messages == ["XX is not an ISO 3166-1 country code."]
    exc = refused(validators.country, "BEL", field="Residency country")
    assert exc.messages == [
        "Residency country must be a two-letter ISO 3166-1 code such as BE; got 'BEL'."
    ]


def test_countries_list_deduplicated_and_from_text():
    assert validators.countries(["BE", "fr", "BE"]) == ["BE", "FR"]
    assert validators.countries("BE, nl") == ["BE", "NL"]
    assert validators.countries(None) == []


def test_countries_refuses_bad_items_and_types():
    assert refused(validators.countries, ["BE", "ZZ"]).messages == [
        "ZZ is not an ISO 3166-1 country code."
    ]
    assert refused(validators.countries, 32).messages == [
        "Nationalities must be a list of country codes."
    ]


# --- date of birth ---------------------------------------------------------------------------


def test_date_of_birth_valid():
    assert validators.date_of_birth("1990-02-03") == dt.date(1990, 2, 3)
    assert validators.date_of_birth(timezone.localdate()) == timezone.localdate()
    assert validators.date_of_birth("") is None


def test_date_of_birth_in_the_future():
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    exc = refused(validators.date_of_birth, tomorrow.isoformat())
    assert exc.code == "date_future"
    assert exc.messages == ["Date of birth cannot be in the future."]


def test_date_of_birth_not_a_date():
    assert refused(validators.date_of_birth, "1990-13-02").messages == [
        "'1990-13-02' is not a date; use YYYY-MM-DD."
    ]
    assert refused(validators.date_of_birth, "1850-01-01").code == "date_past"
    assert refused(validators.date_of_birth, 19900101).code == "date"


# --- IBAN, BIC, ABA --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "compact"),
    [
        ("BE71096123456769", "BE71096123456769"),
        ("be71 0961 2345 6769", "BE71096123456769"),
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("GB33BUKB20201555555555", "GB33BUKB20201555555555"),
        ("FR1420041010050500013M02606", "FR1420041010050500013M02606"),
    ],
)
def test_iban_valid_stored_compact_upper(raw, compact):
    assert validators.iban(raw).compact == compact


def test_iban_seed_placeholder_has_wrong_check_digits():
    exc = refused(validators.iban, "BE01234567891234")
    assert exc.code == "iban_checksum"
    assert exc.messages == ["IBAN check digits are wrong."]


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (
            "BE7109612345676",
            "iban_length",
            "IBAN length is wrong: it has 15 characters. BE IBANs have 16 characters.",
        ),
        ("US12345678901234", "iban_country", "IBAN country 'US' does not use IBANs."),
        ("BE71-0961-2345-6769", "iban_invalid", "An IBAN has only letters and digits."),
        (
            "hello",
            "iban_format",
            "An IBAN starts with a two-letter country code and two check digits, "
            "like BE71 0961 2345 6769.",
        ),
        (
            "GB33BUKB2020155555555X",
            "iban_format",
            "IBAN does not follow the GB account number format.",
        ),
        ("", "required", "Enter an IBAN."),
    ],
)
def test_iban_invalid(raw, code, message):
    exc = refused(validators.iban, raw)
    assert exc.code == code
    assert exc.messages == [message]


def test_iban_details_offers_the_bic_schwifty_knows():
    details = validators.iban_details("BE71 0961 2345 6769")
    assert details["iban"] == "BE71096123456769"
    assert details["formatted"] == "BE71 0961 2345 6769"
    assert details["country_code"] == "BE"
    assert details["bic"] == "GKCCBEBB"
    assert details["bank_name"]


@pytest.mark.parametrize("raw", ["GKCCBEBB", "gkcc be bb", "COBADEFFXXX"])
def test_bic_valid(raw):
    assert str(validators.bic(raw)) == raw.replace(" ", "").upper()


def test_bic_invalid():
    assert refused(validators.bic, "GKCCBE").messages == ["A BIC has 8 or 11 characters."]
    assert refused(validators.bic, "GKCCXXBB").messages == ["BIC country 'XX' is not a country."]


def test_aba_routing_number():
    assert validators.aba_routing_number("021000021") == "021000021"
    assert refused(validators.aba_routing_number, "021000022").messages == [
        "ABA routing number checksum is wrong."
    ]
    assert refused(validators.aba_routing_number, "02100002").messages == [
        "An ABA routing number has 9 digits."
    ]


# --- counter account -------------------------------------------------------------------------


def test_counter_account_iban_with_bic():
    assert validators.counter_account(
        {"bank_account_number": "be71 0961 2345 6769", "bank_id": "gkccbebb"}
    ) == {
        "bank_account_number": "BE71096123456769",
        "bank_account_number_type": "IBAN",
        "bank_id": "GKCCBEBB",
        "bank_id_type": "BIC",
    }


def test_counter_account_iban_without_bic():
    assert validators.counter_account(
        {"bank_account_number": "NL91ABNA0417164300", "bank_account_number_type": "IBAN"}
    ) == {
        "bank_account_number": "NL91ABNA0417164300",
        "bank_account_number_type": "IBAN",
        "bank_id": "",
        "bank_id_type": "",
    }


def test_counter_account_empty_clears():
    assert validators.counter_account(None) == dict.fromkeys(validators.COUNTER_ACCOUNT_KEYS, "")
    assert validators.counter_account({}) == dict.fromkeys(validators.COUNTER_ACCOUNT_KEYS, "")


def test_counter_account_bic_country_must_match_iban():
    exc = refused(
        validators.counter_account,
        {"bank_account_number": "BE71096123456769", "bank_id": "DEUTDEFF"},
    )
    assert field_messages(exc) == {
        "bank_id": ["BIC country DE does not match the IBAN country BE."]
    }
    assert exc.error_dict["bank_id"][0].code == "bic_country_mismatch"


def test_counter_account_seed_iban_is_refused_on_its_field():
    exc = refused(
        validators.counter_account,
        {"bank_account_number": "BE01234567891234", "bank_account_number_type": "IBAN"},
    )
    assert field_messages(exc) == {"bank_account_number": ["IBAN check digits are wrong."]}


def test_counter_account_aba_valid():
    assert validators.counter_account(
        {
            "bank_account_number": "1234-5678-9",
            "bank_account_number_type": "aba",
            "bank_id": "021000021",
            "bank_id_type": "ABA",
        }
    ) == {
        "bank_account_number": "123456789",
        "bank_account_number_type": "ABA",
        "bank_id": "021000021",
        "bank_id_type": "ABA",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {
                "bank_account_number": "123",
                "bank_account_number_type": "ABA",
                "bank_id": "021000021",
            },
            {"bank_account_number": ["An ABA account number has 4 to 17 digits."]},
        ),
        (
            {"bank_account_number": "123456789", "bank_account_number_type": "ABA"},
            {"bank_id": ["An ABA account needs its 9-digit routing number."]},
        ),
        (
            {
                "bank_account_number": "123456789",
                "bank_account_number_type": "ABA",
                "bank_id": "021000022",
            },
            {"bank_id": ["ABA routing number checksum is wrong."]},
        ),
        (
            {
                "bank_account_number": "123456789",
                "bank_account_number_type": "ABA",
                "bank_id": "GKCCBEBB",
                "bank_id_type": "BIC",
            },
            {"bank_id_type": ["An ABA account is identified by an ABA routing number."]},
        ),
        (
            {
                "bank_account_number": "BE71096123456769",
                "bank_id": "021000021",
                "bank_id_type": "ABA",
            },
            {"bank_id_type": ["An IBAN account is identified by a BIC."]},
        ),
        (
            {"bank_account_number": "123456789"},
            {"bank_account_number_type": ["Account number type must be IBAN or ABA."]},
        ),
        (
            {"bank_account_number": "BE71096123456769", "bank_id_type": "SWIFT"},
            {"bank_id_type": ["Bank id type must be BIC or ABA."]},
        ),
        (
            {"bank_account_number_type": "IBAN", "bank_id": "GKCCBEBB"},
            {
                "bank_account_number": [
                    "Enter the account number, or clear the whole counter account."
                ]
            },
        ),
        (
            {"bank_account_number": "BE71096123456769", "iban": "x"},
            {"iban": ["Unknown counter account field."]},
        ),
    ],
)
def test_counter_account_invalid(value, expected):
    assert field_messages(refused(validators.counter_account, value)) == expected


def test_counter_account_must_be_an_object():
    assert refused(validators.counter_account, "BE71096123456769").messages == [
        "Counter account must be an object."
    ]


# --- address and tax residency ---------------------------------------------------------------

ADDRESS = {"line1": "Rue Neuve 1", "city": "Brussels", "postal_code": "1000", "country_code": "be"}


def test_address_valid_with_and_without_line2():
    assert validators.address(ADDRESS) == {**ADDRESS, "country_code": "BE"}
    assert validators.address({**ADDRESS, "line2": "Box 3"})["line2"] == "Box 3"
    assert validators.address(None) is None
    assert validators.address({}) is None


def test_address_required_parts():
    exc = refused(validators.address, {"line1": "Rue Neuve 1", "line2": "Box 3"})
    assert field_messages(exc) == {
        "city": ["City is required when the address is given."],
        "postal_code": ["Postal code is required when the address is given."],
        "country_code": ["Country code is required when the address is given."],
    }


def test_address_unknown_part_and_bad_country():
    exc = refused(validators.address, {**ADDRESS, "country_code": "XX", "zip": "1000"})
    assert field_messages(exc) == {
        "zip": ["Unknown address field."],
        "country_code": ["XX is not an ISO 3166-1 country code."],
    }


def test_tax_residency_valid_and_required_parts():
    value = {"country_code": "nl", "proof_type": "TIN", "value": "123456782"}
    assert validators.tax_residency(value) == {**value, "country_code": "NL"}
    exc = refused(validators.tax_residency, {"country_code": "NL"})
    assert field_messages(exc) == {
        "proof_type": ["Proof type is required when the tax residency is given."],
        "value": ["Value is required when the tax residency is given."],
    }
    assert refused(validators.tax_residency, ["NL"]).messages == [
        "Tax residency must be an object."
    ]


# --- metadata --------------------------------------------------------------------------------


def test_metadata_at_the_limits_is_accepted():
    value = {f"{i:040d}": "v" * 500 for i in range(50)}
    assert validators.metadata(value) == value
    assert validators.metadata(None) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({f"k{i}": "v" for i in range(51)}, "Metadata has 51 keys; at most 50 are allowed."),
        ({"k" * 41: "v"}, f"Metadata key {'k' * 41!r} must be 1 to 40 characters."),
        ({"": "v"}, "Metadata key '' must be 1 to 40 characters."),
        ({"k": "v" * 501}, "Metadata value of 'k' has 501 characters; at most 500 are allowed."),
        ({"k": 1}, "Metadata value of 'k' must be text."),
        (["k"], "Metadata must be an object of key → text."),
    ],
)
def test_metadata_limits(value, message):
    assert refused(validators.metadata, value).messages == [message]


# --- flags and user ids ----------------------------------------------------------------------


def test_feature_flags():
    assert validators.feature_flags(["STORYTELLER", "CONSOLE", "CONSOLE"]) == [
        "CONSOLE",
        "STORYTELLER",
    ]
    assert refused(validators.feature_flags, ["CONSOLE", "TRADING"]).messages == [
        "Unknown feature flag 'TRADING'; known: CONSOLE, ROBO_ADVISOR, SELF_INVESTOR, STORYTELLER."
    ]


def test_user_ids():
    uid = "U01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert validators.user_ids([uid, uid], field="Readable by") == [uid]
    assert refused(validators.user_ids, ["42"], field="Readable by").messages == [
        "'42' is not a user id (U + 26 characters)."
    ]


def test_nested_parts_are_refused_in_the_words_of_their_labels():
    exc = refused(
        validators.address,
        {"city": "Brussels", "line1": "x" * 200},
        labels={"line1": "Street and number", "postal_code": "Postal code"},
    )
    messages = field_messages(exc)
    assert messages["line1"] == ["Street and number has 200 characters; at most 128 are allowed."]
    assert messages["postal_code"] == ["Postal code is required when the address is given."]


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Austria", "AT"),
        ("austria", "AT"),
        ("AT", "AT"),
        ("at", "AT"),
        ("  Belgique ", "BE"),
        ("Österreich", "AT"),
        ("osterreich", "AT"),
        ("BE — Belgium", "BE"),
        ("Pays-Bas", "NL"),
        ("aut", "AT"),
        ("", ""),
    ],
)
def test_country_from_input_reads_names_and_codes(typed, code):
    assert validators.country_from_input(typed) == code


def test_country_from_input_refuses_an_unknown_name():
    exc = refused(validators.country_from_input, "Atlantis")
    assert exc.messages == ["Not a country: 'Atlantis'. Type a name (Belgium) or an ISO code (BE)."]
    # The API's reading stays codes only.
    assert refused(validators.country, "Austria").code == "country"
