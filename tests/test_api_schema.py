"""Property-based tests of the JSON API against its own OpenAPI document (schemathesis).

For every operation, schemathesis generates requests from /api/openapi.json (bounded number of
examples) and sends them, authenticated, to the app in-process. Every response must be a
non-5xx with a status code, content type and body that the schema documents.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import VALID_IBANS, make_user
from users.services import tokens

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", WSGIHandler())

# Not schemathesis' `positive_data_acceptance` ("valid request rejected"): a JSON Schema says
# each value's shape, not the rules over values and fields (an IBAN's checksum, a phone's
# validity, create_idp_user needing an email, the employment rules, a read-only field's stored
# value, the query language), so some schema-valid requests are refused 422 by design. What a
# schema can say it says (issue 11.6: the tests at the end of this file).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def keep_test_connection():
    """Requests reach the raw WSGI handler, whose request signals would close the database
    connection that holds the test's transaction; Django's test client unhooks them too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_auth(admin_user) -> dict[str, str]:
    _, raw = tokens.issue_token(user=admin_user, name="schemathesis")
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def known_ids(admin_user) -> list[str]:
    """Real users for path ids, so PATCH/GET/DELETE reach the services, not only 404s."""
    return [
        make_user(actor=admin_user).pk,
        make_user(
            actor=admin_user,
            counter_account={"bank_account_number": VALID_IBANS[0]},
            feature_flags=["ROBO_ADVISOR"],
            readable_by=[admin_user.pk],
            address={
                "line1": "Rue 1",
                "city": "Bruxelles",
                "postal_code": "1000",
                "country_code": "BE",
            },
        ).pk,
        make_user(actor=admin_user, date_of_birth="1980-01-01", metadata={"crm": "42"}).pk,
    ]


def test_schema_documents_every_operation():
    operations = {
        (op.method.upper(), op.path)
        for op in (result.ok() for result in schema.get_all_operations())
    }
    assert operations == {
        ("POST", "/api/users/"),
        ("GET", "/api/users/"),
        ("GET", "/api/users/{user_id}"),
        ("PATCH", "/api/users/{user_id}"),
        ("DELETE", "/api/users/{user_id}"),
        ("GET", "/api/change-requests/{request_id}"),
    }


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,  # no .hypothesis/ example store in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, api_auth, known_ids):
    if case.path_parameters and "user_id" in case.path_parameters:
        generated = str(case.path_parameters["user_id"])
        # Mostly real users; sometimes the generated id, which must be a clean 404.
        pick = sum(map(ord, generated)) % (len(known_ids) + 1)
        if pick < len(known_ids):
            case.path_parameters["user_id"] = known_ids[pick]
    response = case.call(headers=api_auth)
    case.validate_response(response, checks=CHECKS, headers=api_auth)


def _input_schemas(client) -> dict:
    return client.get("/api/openapi.json").json()["components"]["schemas"]


def _nullable(prop: dict) -> bool:
    return any(option.get("type") == "null" for option in prop.get("anyOf", []))


def test_schema_says_status_may_not_be_null(client, db):
    """Issue 11.6: `status: null` was schema-valid, then refused 422 by the services."""
    for name in ("UserIn", "UserPatch"):
        status = _input_schemas(client)[name]["properties"]["status"]
        assert not _nullable(status), name


@pytest.mark.parametrize(
    ("schema_name", "required"),
    [
        ("AddressIn", ["line1", "city", "postal_code", "country_code"]),
        ("TaxResidencyIn", ["country_code", "proof_type", "value"]),
        ("CounterAccountIn", ["bank_account_number"]),
    ],
)
def test_schema_requires_the_parts_the_validators_require(client, db, schema_name, required):
    """Issue 11.6: a nested object's required parts are required, non-null and not blank."""
    schema = _input_schemas(client)[schema_name]
    assert schema["required"] == required
    for key, prop in schema["properties"].items():
        if key in required:
            assert prop["type"] == "string"
            assert prop["pattern"] == r"\S"
            assert not _nullable(prop)
        else:
            assert _nullable(prop)
