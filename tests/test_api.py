"""The JSON API (users/api.py): the seeds' requests replayed, rules, permissions, errors.

Request bodies under "seed" are copied from /work/shared/seeds/000_*.txt and 001_*.txt as
printed, placeholders included; each placeholder that fails real validation is shown to give a
422 naming the field, then the same request with a valid value succeeds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client

from tests.factories import make_console_user, make_user, password_sign_in, sign_in
from users import services
from users.models import (
    ChangeRequest,
    FeatureFlag,
    IdempotencyKey,
    Role,
    Status,
    StatusChange,
    User,
    UserVersion,
)
from users.services import tokens
from users.services.idempotency import IDEMPOTENCY_TTL

VALID_PHONE = "+32470123456"
VALID_IE_IBAN = "IE29AIBK93115212345678"  # matches the seed's BIC IDQMIE2D (Ireland)


class Api:
    """A test client speaking JSON with a token, as an integration would."""

    def __init__(self, client: Client, token: str, *, header: str = "Authorization") -> None:
        self.client = client
        if header == "Authorization":
            self.headers = {"Authorization": f"Bearer {token}"}
        else:
            self.headers = {header: token}

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
        **query: Any,
    ):
        if query:
            path = f"{path}?{urlencode(query)}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return getattr(self.client, method)(
            path, data, content_type="application/json", headers={**self.headers, **(headers or {})}
        )

    def get(self, path: str, **query: Any):
        return self._send("get", path, **query)

    def post(self, path: str, body: Any = None, **kwargs: Any):
        return self._send("post", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any):
        return self._send("patch", path, body, **kwargs)

    def delete(self, path: str, **query: Any):
        return self._send("delete", path, **query)


def api_for(user: User, **kwargs: Any) -> Api:
    _, raw = tokens.issue_token(user=user, name="test")
    return Api(Client(), raw, **kwargs)


@pytest.fixture
def admin_api(admin_user) -> Api:
    return api_for(admin_user)


@pytest.fixture
def back_office_api(back_office_user) -> Api:
    return api_for(back_office_user)


@pytest.fixture
def compliance_api(compliance_user) -> Api:
    return api_for(compliance_user)


def locs(response) -> list[list[Any]]:
    return [item["loc"] for item in response.json()["detail"]]


def error_for(response, loc: list[Any]) -> dict[str, Any]:
    for item in response.json()["detail"]:
        if item["loc"] == loc:
            return item
    raise AssertionError(f"no error at {loc}: {response.json()}")


CONTRACT_FIELDS = {
    "id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "brokerage_user_id",
    "idp_user_id",
    "language",
    "counter_account",
    "feature_flags",
    "status",
    "date_of_birth",
    "residency_country",
    "nationalities",
    "address",
    "tax_residency",
    "identity",
    "metadata",
    "employment_status",
    "income_range",
    "sources_of_wealth",
    "industry",
    "readable_by",
    "modifiable_by",
    "creation_datetime",
    "version",
    "version_datetime",
    "version_authored_by_user_id",
    "deleted",
}


# --- seed 000: "Create and manage users" ------------------------------------------------------

SEED_000_CREATE = {
    "external_id": "your-bank-user-1",
    "email": "jane.doe@example.com",
    "phone": "+123456789",
    "brokerage_user_id": "12345678",
    "idp_user_id": "user_idp_identity",
    "language": "en-US",
}


def test_seed_000_create_placeholder_phone_is_422_then_valid_phone_creates(admin_api, admin_user):
    response = admin_api.post("/api/users/", SEED_000_CREATE)
    assert response.status_code == 422
    assert locs(response) == [["body", "phone"]]
    assert "10 digits" in error_for(response, ["body", "phone"])["msg"]
    assert not User.objects.filter(external_id="your-bank-user-1").exists()

    response = admin_api.post("/api/users/", {**SEED_000_CREATE, "phone": VALID_PHONE})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == CONTRACT_FIELDS
    assert response["Location"] == f"/api/users/{body['id']}"
    assert re.fullmatch(r"U[0-9A-HJKMNP-TV-Z]{26}", body["id"])
    assert body | {"id": None, "creation_datetime": None, "version_datetime": None} == {
        "id": None,
        "external_id": "your-bank-user-1",
        "first_name": None,
        "last_name": None,
        "email": "jane.doe@example.com",
        "phone": VALID_PHONE,
        "brokerage_user_id": "12345678",
        "idp_user_id": "user_idp_identity",
        "language": "en-US",
        "counter_account": None,
        "feature_flags": [],
        "status": "WAITING_FOR_VERIFICATION",
        "date_of_birth": None,
        "residency_country": None,
        "nationalities": [],
        "address": None,
        "tax_residency": None,
        "identity": None,
        "metadata": {},
        "employment_status": None,
        "income_range": None,
        "sources_of_wealth": [],
        "industry": None,
        "readable_by": [],
        "modifiable_by": [],
        "creation_datetime": None,
        "version": 1,
        "version_datetime": None,
        "version_authored_by_user_id": admin_user.pk,
        "deleted": False,
    }
    user = User.objects.get(pk=body["id"])
    assert user.versions.get().author == admin_user


# --- seed 001: "Manage users" -------------------------------------------------------------------

# The "Typical user" body exactly as the seed prints it: unquoted keys, a missing comma.
SEED_001_TYPICAL_AS_PRINTED = """{
"external_id": "unique_external_identity_id_2809",
"first_name": "Ashok",
"last_name": "Kumar",
"email": "ashok.kumar@example.com",
"phone": "+123456789",
"counter_account": {
bank_account_number: "BE01234567891234",
bank_account_type: "IBAN",
bank_id: "IDQMIE2D"
},
"feature_flags": [
"CONSOLE",
"ROBO_ADVISOR",
"SELF_INVESTOR"
],
"language": "en-US"
"status": "WAITING_FOR_VERIFICATION"
}"""

SEED_001_TYPICAL = {
    "external_id": "unique_external_identity_id_2809",
    "first_name": "Ashok",
    "last_name": "Kumar",
    "email": "ashok.kumar@example.com",
    "phone": "+123456789",
    "counter_account": {
        "bank_account_number": "BE01234567891234",
        "bank_account_type": "IBAN",
        "bank_id": "IDQMIE2D",
    },
    "feature_flags": ["CONSOLE", "ROBO_ADVISOR", "SELF_INVESTOR"],
    "language": "en-US",
    "status": "WAITING_FOR_VERIFICATION",
}


def test_seed_001_minimum_user(admin_api):
    response = admin_api.post("/api/users/", {})
    assert response.status_code == 201
    body = response.json()
    assert body["external_id"] is None  # the seed prints "null" in quotes; null is meant
    assert body["first_name"] is None
    assert body["last_name"] is None
    assert body["status"] == "WAITING_FOR_VERIFICATION"
    assert body["version"] == 1
    assert body["deleted"] is False


def test_seed_001_typical_user_as_printed_is_400(admin_api):
    response = admin_api.post("/api/users/", raw=SEED_001_TYPICAL_AS_PRINTED)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body is not valid JSON: ")
    assert "line 8" in response.json()["detail"]
    assert User.objects.count() == 1  # only the admin


def test_seed_001_typical_user_fixed_step_by_step(admin_api):
    # The seed's counter account key `bank_account_type` is not a field.
    response = admin_api.post("/api/users/", SEED_001_TYPICAL)
    assert response.status_code == 422
    assert locs(response) == [["body", "counter_account", "bank_account_type"]]
    assert error_for(response, locs(response)[0])["type"] == "extra_forbidden"

    # With the right key, the placeholder phone and IBAN fail real validation.
    body = json.loads(json.dumps(SEED_001_TYPICAL))
    body["counter_account"]["bank_account_number_type"] = body["counter_account"].pop(
        "bank_account_type"
    )
    response = admin_api.post("/api/users/", body)
    assert response.status_code == 422
    assert sorted(locs(response)) == [
        ["body", "counter_account", "bank_account_number"],
        ["body", "phone"],
    ]
    assert error_for(response, ["body", "counter_account", "bank_account_number"])["type"] == (
        "iban_checksum"
    )

    body["phone"] = VALID_PHONE
    body["counter_account"]["bank_account_number"] = VALID_IE_IBAN
    response = admin_api.post("/api/users/", body)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["counter_account"] == {
        "bank_account_number": VALID_IE_IBAN,
        "bank_account_number_type": "IBAN",
        "bank_id": "IDQMIE2D",
        "bank_id_type": "BIC",
    }
    assert created["feature_flags"] == ["CONSOLE", "ROBO_ADVISOR", "SELF_INVESTOR"]
    assert created["status"] == "WAITING_FOR_VERIFICATION"


SEED_001_CREATE_LOGIN = {
    "first_name": "Ashok",
    "last_name": "Kumar",
    "email": "ashok.kumar@example.com",
    "phone": "+12345667",
}


def test_seed_001_create_login(admin_api, django_capture_on_commit_callbacks, client):
    response = admin_api.post("/api/users/", SEED_001_CREATE_LOGIN, create_idp_user="true")
    assert response.status_code == 422
    assert locs(response) == [["body", "phone"]]
    assert len(mail.outbox) == 0

    # The curl variant of the same example adds an external id.
    body = {**SEED_001_CREATE_LOGIN, "external_id": "unique_external_entity_id"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            "/api/users/", {**body, "phone": VALID_PHONE}, create_idp_user="true"
        )
    assert response.status_code == 201
    created = response.json()
    assert created["idp_user_id"] == created["id"]
    assert created["version"] == 1  # the login's idp_user_id is part of the creation
    assert UserVersion.objects.get(user_id=created["id"]).changes["idp_user_id"] == [
        "",
        created["id"],
    ]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ashok.kumar@example.com"]
    link = re.search(r"http://testserver(/invite/\S+/)", message.body).group(1)

    # The invitation sets a password once; the link then stops working.
    page = client.get(link)
    assert page.status_code == 200
    assert b"Choose your password" in page.content
    done = client.post(
        link, {"new_password1": "a-long-new-pass-42", "new_password2": "a-long-new-pass-42"}
    )
    assert done.status_code == 200
    assert b"Password set" in done.content
    assert User.objects.get(pk=created["id"]).check_password("a-long-new-pass-42")
    assert client.get(link).status_code == 404


def test_create_login_requires_email_and_phone(admin_api):
    response = admin_api.post(
        "/api/users/", {"first_name": "A", "idp_user_id": "x"}, create_idp_user="true"
    )
    assert response.status_code == 422
    assert sorted(locs(response)) == [["body", "email"], ["body", "idp_user_id"], ["body", "phone"]]
    assert User.objects.count() == 1
    response = admin_api.post("/api/users/", {}, create_idp_user="maybe")
    assert response.status_code == 422
    assert locs(response) == [["query", "create_idp_user"]]


@pytest.mark.usefixtures("without_four_eyes")
def test_invitation_for_a_console_user_leads_to_sign_in(
    admin_api, django_capture_on_commit_callbacks, client
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            "/api/users/",
            {"email": "new.staff@bank.example", "phone": VALID_PHONE, "feature_flags": ["CONSOLE"]},
            create_idp_user="true",
        )
    user = User.objects.get(pk=response.json()["id"])
    services.user_set_roles(user=user, roles=[Role.BACK_OFFICE], actor=None)
    link = re.search(r"http://testserver(/invite/\S+/)", mail.outbox[0].body).group(1)
    done = client.post(
        link, {"new_password1": "a-long-new-pass-42", "new_password2": "a-long-new-pass-42"}
    )
    assert done.status_code == 302
    assert done["Location"] == "/login/"
    assert password_sign_in(client, "new.staff@bank.example", "a-long-new-pass-42")


SEED_001_GET_ID = "U01F8YW5NJXMF78PMFKXTE2R7Q7"


def test_seed_001_get_user(admin_api):
    assert admin_api.get(f"/api/users/{SEED_001_GET_ID}").status_code == 404
    user = make_user(
        first_name="Jane",
        last_name="Doe",
        email="jane.doe@example.com",
        counter_account={"bank_account_number": "BE71 0961 2345 6769", "bank_id": "GKCCBEBB"},
    )
    response = admin_api.get(f"/api/users/{user.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONTRACT_FIELDS | {"pending_changes"}
    assert body["pending_changes"] == []
    assert body["counter_account"] == {
        "bank_account_number": "BE71096123456769",
        "bank_account_number_type": "IBAN",
        "bank_id": "GKCCBEBB",
        "bank_id_type": "BIC",
    }
    assert admin_api.get("/api/users/not-an-id").status_code == 404


def test_seed_001_update_language(admin_api):
    user = make_user(language="en-US")
    response = admin_api.patch(f"/api/users/{user.pk}", {"language": "be-NL"})
    assert response.status_code == 200
    assert response.json()["language"] == "be-NL"
    assert response.json()["version"] == 2
    version = UserVersion.objects.get(user=user, version=2)
    assert version.changes == {"language": ["en-US", "be-NL"]}
    response = admin_api.patch(f"/api/users/{user.pk}", {"language": "english please"})
    assert response.status_code == 422
    assert locs(response) == [["body", "language"]]


SEED_001_UPDATE_COUNTER_ACCOUNT = {
    "external_id": "unique_external_entity_id",
    "first_name": "Ashok",
    "last_name": "Kumar",
    "email": "ashok.kumar@example.com",
    "phone": "+12345667",
    "counter_account": {
        "bank_account_number": "BE01234567891234",
        "bank_account_number_type": "IBAN",
        "bank_id": "IDQMIE2D",
        "bank_id_type": "BIC",
    },
}


def test_seed_001_update_counter_account(admin_api):
    # The seed PATCHes the collection; a user is patched at its own URL.
    assert admin_api.patch("/api/users/", SEED_001_UPDATE_COUNTER_ACCOUNT).status_code == 405
    user = make_user(email="ashok.kumar@example.com", phone=VALID_PHONE, external_id="old-ref")
    response = admin_api.patch(f"/api/users/{user.pk}", SEED_001_UPDATE_COUNTER_ACCOUNT)
    assert response.status_code == 422
    assert sorted(locs(response)) == [
        ["body", "counter_account", "bank_account_number"],
        ["body", "phone"],
    ]
    user.refresh_from_db()
    assert user.version == 1
    assert user.bank_account_number == ""

    # Valid values: email and phone repeat what is stored, so write-once is not in the way.
    body = json.loads(json.dumps(SEED_001_UPDATE_COUNTER_ACCOUNT))
    body["phone"] = VALID_PHONE
    body["counter_account"]["bank_account_number"] = VALID_IE_IBAN
    response = admin_api.patch(f"/api/users/{user.pk}", body)
    # Four-eyes: the counter account waits for a second person, the rest applies.
    assert response.status_code == 202, response.json()
    assert response.json()["counter_account"] is None
    assert response.json()["external_id"] == "unique_external_entity_id"
    assert set(UserVersion.objects.get(user=user, version=2).changes) == {
        "external_id",
        "first_name",
        "last_name",
    }
    [pending] = response.json()["pending_changes"]
    assert pending["fields"] == ["counter_account"]
    assert pending["changes"]["counter_account"][1]["bank_account_number"] == VALID_IE_IBAN


def test_seed_001_update_status(compliance_api, back_office_api, user):
    path = f"/api/users/{user.pk}"
    body = {"status": "WAITING_FOR_SIGNATURE"}
    response = back_office_api.patch(path, body)
    assert response.status_code == 403
    assert "status" in response.json()["detail"]
    response = compliance_api.patch(path, body)
    assert response.status_code == 200
    assert response.json()["status"] == "WAITING_FOR_SIGNATURE"
    change = StatusChange.objects.get(user=user, to_status=Status.WAITING_FOR_SIGNATURE)
    assert change.off_flow is False
    assert change.from_status == Status.WAITING_FOR_VERIFICATION


def test_off_flow_status_needs_a_reason_code(compliance_api, user):
    path = f"/api/users/{user.pk}"
    response = compliance_api.patch(path, {"status": "ACTIVE", "status_reason": "Signed on paper"})
    assert response.status_code == 422
    assert locs(response) == [["body", "status_reason_code"]]
    assert error_for(response, ["body", "status_reason_code"])["type"] == "reason_code_required"
    response = compliance_api.patch(
        path,
        {
            "status": "ACTIVE",
            "status_reason": "Signed on paper",
            "status_reason_code": "SIGNED_ON_PAPER",
        },
    )
    assert response.status_code == 200
    change = StatusChange.objects.get(user=user, to_status=Status.ACTIVE)
    assert change.off_flow is True
    assert (change.reason, change.reason_code_id) == ("Signed on paper", "SIGNED_ON_PAPER")


def test_seed_001_delete_user(back_office_api, admin_api, user):
    response = back_office_api.delete(f"/api/users/{user.pk}")
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    assert response.json()["version"] == 2
    again = admin_api.get(f"/api/users/{user.pk}")
    assert again.status_code == 200
    assert again.json()["deleted"] is True
    # Hidden from lists unless asked for; DELETE again changes nothing.
    assert user.pk not in [u["id"] for u in admin_api.get("/api/users/").json()["results"]]
    found = admin_api.get("/api/users/", query="deleted eq true").json()["results"]
    assert [u["id"] for u in found] == [user.pk]
    assert admin_api.delete(f"/api/users/{user.pk}").json()["version"] == 2
    # A deleted user is read-only: a change is a conflict.
    response = admin_api.patch(f"/api/users/{user.pk}", {"first_name": "Zed"})
    assert response.status_code == 409
    assert error_for(response, ["body", "deleted"])["type"] == "deleted"


def test_seed_001_query_users(admin_api):
    jane = make_user(email="jane.doe@example.com")
    make_user(email="john@example.com")
    # As the seed sends it: `?query=email+eq+'jane*'` (+ is a space in a query string).
    response = admin_api.client.get("/api/users/?query=email+eq+'jane*'", headers=admin_api.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["offset"] == 0
    assert body["next"] is None
    assert [u["id"] for u in body["results"]] == [jane.pk]


# --- write-once, stale versions, duplicates ----------------------------------------------------


def test_patch_email_or_phone_once_set_is_409(admin_api, user):
    path = f"/api/users/{user.pk}"
    for field, value in (("email", "other@example.com"), ("phone", "+32470999999")):
        response = admin_api.patch(path, {field: value})
        assert response.status_code == 409
        item = error_for(response, ["body", field])
        assert item["type"] == "write_once"
        assert "write-once" in item["msg"]
    response = admin_api.patch(path, {"email": None})
    assert response.status_code == 409
    user.refresh_from_db()
    assert user.version == 1


def test_email_can_be_set_once_when_empty(admin_api):
    user = make_user(email=None, phone=None)
    response = admin_api.patch(f"/api/users/{user.pk}", {"email": "Late@Example.com"})
    assert response.status_code == 200
    assert response.json()["email"] == "Late@Example.com"


def test_stale_version_is_409_with_the_changes(admin_api, user):
    path = f"/api/users/{user.pk}"
    services.user_update(user=user, data={"first_name": "Someone"}, actor=None)
    response = admin_api.patch(path, {"last_name": "Mine", "version": 1})
    assert response.status_code == 409
    body = response.json()
    assert body["current_version"] == 2
    assert body["changes"] == {"first_name": ["Jane", "Someone"]}
    assert body["detail"][0]["loc"] == ["body", "version"]
    assert body["detail"][0]["type"] == "stale_version"
    user.refresh_from_db()
    assert user.last_name != "Mine"
    response = admin_api.patch(path, {"last_name": "Mine", "version": 2})
    assert response.status_code == 200
    assert response.json()["version"] == 3
    assert admin_api.delete(path, version=1).status_code == 409


def test_duplicate_is_409(admin_api, user):
    response = admin_api.post("/api/users/", {"email": user.email.upper()})
    assert response.status_code == 409
    assert error_for(response, ["body", "email"])["type"] == "unique"
    response = admin_api.post("/api/users/", {"external_id": user.external_id, "phone": "12"})
    assert response.status_code == 422  # invalid input wins over the conflict
    assert sorted(locs(response)) == [["body", "external_id"], ["body", "phone"]]


# --- authentication and permissions -------------------------------------------------------------


def test_unauthenticated_is_401(client, admin_user, user):
    response = client.get("/api/users/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert (
        client.get(
            f"/api/users/{user.pk}", headers={"Authorization": "Bearer ucs_nope"}
        ).status_code
        == 401
    )
    assert client.get("/api/users/", headers={"Authorization": "Basic abc"}).status_code == 401
    sign_in(client, admin_user)  # a console session is not an API credential
    assert client.get("/api/users/").status_code == 401


def test_x_api_key_header_is_accepted(admin_user):
    api = api_for(admin_user, header="X-API-Key")
    assert api.get("/api/users/").status_code == 200


@pytest.mark.usefixtures("without_four_eyes")
def test_token_stops_working_when_revoked_or_user_loses_console(admin_user, back_office_user):
    token, raw = tokens.issue_token(user=back_office_user, name="x")
    api = Api(Client(), raw)
    assert api.get("/api/users/").status_code == 200
    services.user_set_flags(user=back_office_user, flags=[], actor=admin_user)
    assert api.get("/api/users/").status_code == 401
    services.user_set_flags(user=back_office_user, flags=[FeatureFlag.CONSOLE], actor=admin_user)
    assert api.get("/api/users/").status_code == 200
    tokens.revoke_token(token=token, actor=admin_user)
    assert api.get("/api/users/").status_code == 401


def test_acts_as_the_token_user(back_office_api, back_office_user):
    response = back_office_api.post("/api/users/", {"first_name": "New"})
    assert response.json()["version_authored_by_user_id"] == back_office_user.pk


def test_role_permissions(back_office_api, compliance_api, user):
    path = f"/api/users/{user.pk}"
    assert compliance_api.post("/api/users/", {}).status_code == 403
    assert compliance_api.patch(path, {"first_name": "X"}).status_code == 403
    assert compliance_api.delete(path).status_code == 403
    response = back_office_api.post("/api/users/", {"feature_flags": ["ROBO_ADVISOR"]})
    assert response.status_code == 403
    assert back_office_api.patch(path, {"feature_flags": ["ROBO_ADVISOR"]}).status_code == 403
    assert compliance_api.patch(path, {"readable_by": [user.pk]}).status_code == 403
    assert back_office_api.patch(path, {"readable_by": [user.pk]}).status_code == 200
    response = back_office_api.post("/api/users/", {"status": "ACTIVE", "status_reason": "x"})
    assert response.status_code == 403
    # Sending back the stored values needs no extra permission.
    response = back_office_api.patch(
        path,
        {"first_name": "Y", "feature_flags": [], "status": user.status, "readable_by": [user.pk]},
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.first_name == "Y"


def test_admin_manages_flags_and_access_lists(admin_api, back_office_user, user):
    path = f"/api/users/{user.pk}"
    response = admin_api.patch(
        path, {"feature_flags": ["ROBO_ADVISOR"], "readable_by": [back_office_user.pk]}
    )
    assert response.status_code == 200
    assert response.json()["feature_flags"] == ["ROBO_ADVISOR"]
    assert response.json()["readable_by"] == [back_office_user.pk]
    response = admin_api.patch(path, {"readable_by": ["U" + "0" * 26]})
    assert response.status_code == 422
    assert locs(response) == [["body", "readable_by"]]


def test_object_level_access_through_the_lists(admin_user, back_office_user):
    # Without view_user/change_user the lists are all a back-office user has.
    group = Group.objects.get(name=Role.BACK_OFFICE)
    group.permissions.remove(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    back_office_user = User.objects.get(pk=back_office_user.pk)  # drop the permission cache
    readable = make_user(actor=admin_user, readable_by=[back_office_user.pk])
    modifiable = make_user(actor=admin_user, modifiable_by=[back_office_user.pk])
    hidden = make_user(actor=admin_user)
    api = api_for(back_office_user)
    listed = api.get("/api/users/").json()
    assert {u["id"] for u in listed["results"]} == {readable.pk, modifiable.pk}
    assert listed["count"] == 2
    assert api.get(f"/api/users/{hidden.pk}").status_code == 404
    assert api.patch(f"/api/users/{hidden.pk}", {"first_name": "X"}).status_code == 404
    assert api.get(f"/api/users/{readable.pk}").status_code == 200
    assert api.patch(f"/api/users/{readable.pk}", {"first_name": "X"}).status_code == 403
    response = api.patch(f"/api/users/{modifiable.pk}", {"readable_by": [back_office_user.pk]})
    assert response.status_code == 403  # object-level editors do not manage the lists
    response = api.patch(f"/api/users/{modifiable.pk}", {"first_name": "X"})
    assert response.status_code == 200
    assert response.json()["first_name"] == "X"


# --- idempotency -----------------------------------------------------------------------------


def test_idempotent_replay_returns_the_first_response(admin_api):
    body = {"first_name": "Once", "email": "once@example.com"}
    first = admin_api.post("/api/users/", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = admin_api.post("/api/users/", body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert User.objects.filter(first_name="Once").count() == 1
    # Same JSON, other spacing and key order: still the same request.
    raw = json.dumps({"email": "once@example.com", "first_name": "Once"}, indent=4)
    assert admin_api.post("/api/users/", raw=raw, headers={"X-Idempotency-Key": "k-1"}).json() == (
        first.json()
    )


def test_same_key_other_body_is_409(admin_api):
    admin_api.post("/api/users/", {"first_name": "A"}, headers={"Idempotency-Key": "k-2"})
    response = admin_api.post(
        "/api/users/", {"first_name": "B"}, headers={"Idempotency-Key": "k-2"}
    )
    assert response.status_code == 409
    assert error_for(response, ["header", "Idempotency-Key"])["type"] == "idempotency_key_reused"
    assert not User.objects.filter(first_name="B").exists()


def test_refused_request_does_not_use_up_the_key(admin_api):
    bad = admin_api.post("/api/users/", {"phone": "+1"}, headers={"Idempotency-Key": "k-3"})
    assert bad.status_code == 422
    assert not IdempotencyKey.objects.exists()
    good = admin_api.post("/api/users/", {"phone": VALID_PHONE}, headers={"Idempotency-Key": "k-3"})
    assert good.status_code == 201


def test_keys_expire_after_24_hours_and_are_per_user(admin_api, admin_user, back_office_api):
    first = admin_api.post("/api/users/", {"first_name": "A"}, headers={"Idempotency-Key": "k-4"})
    other = back_office_api.post(
        "/api/users/", {"first_name": "A"}, headers={"Idempotency-Key": "k-4"}
    )
    assert other.json()["id"] != first.json()["id"]
    IdempotencyKey.objects.filter(user=admin_user).update(
        created_at=dt.datetime.now(dt.UTC) - IDEMPOTENCY_TTL - dt.timedelta(seconds=1)
    )
    later = admin_api.post("/api/users/", {"first_name": "A"}, headers={"Idempotency-Key": "k-4"})
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert User.objects.filter(first_name="A").count() == 3


def test_bad_idempotency_key_is_422(admin_api):
    response = admin_api.post("/api/users/", {}, headers={"Idempotency-Key": "has space"})
    assert response.status_code == 422
    assert locs(response) == [["header", "Idempotency-Key"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_create_one_user():
    from importlib import import_module

    from django.apps import apps

    import_module("users.migrations.0002_roles").create_roles(apps, None)
    admin = make_console_user(Role.ADMIN)
    _, raw = tokens.issue_token(user=admin, name="race")
    body = json.dumps({"first_name": "Racer", "external_id": "race-1"})
    barrier = threading.Barrier(6)
    statuses: list[int] = []
    ids: list[str] = []
    replayed: list[str] = []

    def post() -> None:
        try:
            barrier.wait()
            response = Client().post(
                "/api/users/",
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {raw}", "Idempotency-Key": "race-key"},
            )
            statuses.append(response.status_code)
            ids.append(response.json().get("id"))
            replayed.append(response.get("Idempotent-Replayed", ""))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 6
    assert len(set(ids)) == 1
    assert sorted(replayed) == [""] + ["true"] * 5
    assert User.objects.filter(external_id="race-1").count() == 1
    assert IdempotencyKey.objects.filter(key="race-key").count() == 1


# --- four-eyes: guarded fields are proposed ------------------------------------------------------


def test_patch_of_a_guarded_field_is_202_with_pending_changes(back_office_api, back_office_user):
    user = make_user(actor=back_office_user)
    response = back_office_api.patch(
        f"/api/users/{user.pk}",
        {"first_name": "Janet", "counter_account": {"bank_account_number": VALID_IE_IBAN}},
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["first_name"] == "Janet"  # applied
    assert body["counter_account"] is None  # waiting
    assert body["version"] == 2
    [pending] = body["pending_changes"]
    assert set(pending) >= {
        "id",
        "fields",
        "changes",
        "proposed_by",
        "proposed_at",
        "expires_at",
        "state",
    }
    assert pending["fields"] == ["counter_account"]
    assert pending["changes"]["counter_account"][0] is None
    assert pending["changes"]["counter_account"][1]["bank_account_number"] == VALID_IE_IBAN
    assert pending["proposed_by"] == back_office_user.pk
    assert pending["state"] == "PENDING"
    # The same pending change on GET, and the request on its own.
    assert back_office_api.get(f"/api/users/{user.pk}").json()["pending_changes"] == [pending]
    one = back_office_api.get(f"/api/change-requests/{pending['id']}")
    assert one.status_code == 200
    assert one.json() == {**pending}


def test_patch_granting_console_applies_other_flags_and_is_202(admin_api, admin_user):
    user = make_user(actor=admin_user)
    response = admin_api.patch(
        f"/api/users/{user.pk}", {"feature_flags": ["CONSOLE", "ROBO_ADVISOR"]}
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["feature_flags"] == ["ROBO_ADVISOR"]
    [pending] = body["pending_changes"]
    assert (pending["kind"], pending["fields"]) == ("console_flag", ["feature_flags"])
    assert pending["changes"] == {"feature_flags": [["ROBO_ADVISOR"], ["CONSOLE", "ROBO_ADVISOR"]]}


def test_patch_without_guarded_fields_is_200(back_office_api, back_office_user):
    user = make_user(actor=back_office_user)
    response = back_office_api.patch(f"/api/users/{user.pk}", {"first_name": "Janet"})
    assert response.status_code == 200
    assert response.json()["pending_changes"] == []


def test_a_body_read_with_pending_changes_may_be_sent_back(admin_api, admin_user):
    user = make_user(actor=admin_user)
    admin_api.patch(f"/api/users/{user.pk}", {"feature_flags": ["CONSOLE"]})
    body = admin_api.get(f"/api/users/{user.pk}").json()
    assert len(body["pending_changes"]) == 1
    response = admin_api.patch(f"/api/users/{user.pk}", body)
    assert response.status_code == 200, response.json()
    assert ChangeRequest.objects.filter(user=user, state="PENDING").count() == 1


def test_a_token_can_never_approve(admin_api, admin_user, back_office_api, back_office_user):
    user = make_user(actor=back_office_user)
    response = back_office_api.patch(
        f"/api/users/{user.pk}", {"counter_account": {"bank_account_number": VALID_IE_IBAN}}
    )
    request_id = response.json()["pending_changes"][0]["id"]
    # There is no approving in the API: no route, no method, whatever the token's role.
    for method, path in (
        ("post", f"/api/change-requests/{request_id}/approve"),
        ("post", f"/api/change-requests/{request_id}"),
        ("patch", f"/api/change-requests/{request_id}"),
        ("put", f"/api/change-requests/{request_id}"),
    ):
        sent = getattr(admin_api.client, method)(
            path,
            data={"state": "APPROVED"},
            content_type="application/json",
            headers=admin_api.headers,
        )
        assert sent.status_code in (404, 405), (method, path, sent.status_code)
    # Nor by sending the pending change back in a PATCH.
    body = admin_api.get(f"/api/users/{user.pk}").json()
    body["pending_changes"][0]["state"] = "APPROVED"
    admin_api.patch(f"/api/users/{user.pk}", body)
    assert ChangeRequest.objects.get(pk=request_id).state == "PENDING"
    assert User.objects.get(pk=user.pk).bank_account_number == ""


def test_unknown_change_request_is_404(back_office_api):
    assert back_office_api.get("/api/change-requests/999999").status_code == 404
    assert back_office_api.get(f"/api/change-requests/{2**40}").status_code == 404


# --- listing and querying ----------------------------------------------------------------------


def test_list_pages_with_next(admin_api, admin_user):
    for n in range(5):
        make_user(actor=admin_user, last_name=f"Page{n}")
    response = admin_api.get(
        "/api/users/", query="last_name eq 'Page*'", orderby="last_name desc", limit=2
    )
    body = response.json()
    assert body["count"] == 5
    assert body["offset"] == 0
    assert [u["last_name"] for u in body["results"]] == ["Page4", "Page3"]
    assert body["next"].startswith("http://testserver/api/users/?")
    second = admin_api.client.get(body["next"], headers=admin_api.headers).json()
    assert [u["last_name"] for u in second["results"]] == ["Page2", "Page1"]
    assert second["offset"] == 2
    last = admin_api.get("/api/users/", query="last_name eq 'Page*'", offset=4).json()
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert admin_api.get("/api/users/", offset=100).json()["results"] == []


def test_list_limits(admin_api):
    assert admin_api.get("/api/users/", limit=101).status_code == 422
    assert admin_api.get("/api/users/", limit=0).status_code == 422
    assert admin_api.get("/api/users/", offset=-1).status_code == 422
    assert admin_api.get("/api/users/", limit=100).status_code == 200


def test_list_orderby_several_keys(admin_api, admin_user):
    make_user(actor=admin_user, first_name="B", last_name="Same")
    make_user(actor=admin_user, first_name="A", last_name="Same")
    make_user(actor=admin_user, first_name="C", last_name="Other")
    body = admin_api.get(
        "/api/users/", query="last_name in ['Same','Other']", orderby="last_name desc, first_name"
    ).json()
    assert [(u["last_name"], u["first_name"]) for u in body["results"]] == [
        ("Same", "A"),
        ("Same", "B"),
        ("Other", "C"),
    ]


@pytest.mark.parametrize(
    ("param", "text", "position"),
    [
        ("query", "email eq 'jane", 9),
        ("query", "nickname eq 'x'", 0),
        ("query", "creation_datetime in ['20240101' to '2025-13-01']", 36),
        ("query", "status in ['ACTIVE' 'INACTIVE']", 20),
        ("orderby", "last_name sideways", 10),
        ("orderby", "feature_flags", 0),
    ],
)
def test_query_syntax_errors_are_422_with_position(admin_api, param, text, position):
    response = admin_api.get("/api/users/", **{param: text})
    assert response.status_code == 422
    item = error_for(response, ["query", param])
    assert item["type"] == "query_syntax"
    assert item["ctx"] == {"position": position}
    assert f"position {position}" in item["msg"]


def test_query_escaped_plus_and_wildcards(admin_api, admin_user):
    belgian = make_user(actor=admin_user, phone="+32470555555", email="x@bank.example")
    make_user(actor=admin_user, phone="+31612345678", email="y@other.example")
    found = admin_api.get("/api/users/", query=r"phone eq '\+32470555*'").json()["results"]
    assert [u["id"] for u in found] == [belgian.pk]
    found = admin_api.get("/api/users/", query="email eq '*@bank.example' and phone eq '*5555*'")
    assert [u["id"] for u in found.json()["results"]] == [belgian.pk]


def test_list_has_no_n_plus_one(admin_api, admin_user, django_assert_max_num_queries):
    for _n in range(3):
        make_user(actor=admin_user, feature_flags=["ROBO_ADVISOR"], readable_by=[admin_user.pk])
    with django_assert_max_num_queries(12) as few:
        admin_api.get("/api/users/", limit=100)
    for _n in range(10):
        make_user(actor=admin_user, feature_flags=["ROBO_ADVISOR"], readable_by=[admin_user.pk])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_api.get("/api/users/", limit=100)
    assert response.json()["count"] == 14
    assert all(u["feature_flags"] == ["ROBO_ADVISOR"] for u in response.json()["results"][:13])


# --- malformed input never makes a 500 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("", 422),
        ("null", 422),
        ("[]", 422),
        ('"text"', 422),
        ("{", 400),
        ('{"first_name": NaN}', 400),
        ("[" * 100_000 + "]" * 100_000, 400),
        ('{"first_name": 7}', 422),
        ('{"first_name": "a\\u0000b"}', 422),
        ('{"metadata": {"k\\u0000": "v"}}', 422),
        ('{"counter_account": "BE71096123456769"}', 422),
        ('{"date_of_birth": "1990-02-30"}', 422),
        ('{"date_of_birth": "2999-01-01"}', 422),
        ('{"status": "DONE"}', 422),
        ('{"nationalities": ["BE", 1]}', 422),
        ('{"unknown": 1}', 422),
    ],
)
def test_bad_bodies_are_4xx(admin_api, raw, status):
    response = admin_api.post("/api/users/", raw=raw)
    assert response.status_code == status, response.content
    assert User.objects.count() == 1
    if status == 422:
        assert all(item["loc"][0] == "body" for item in response.json()["detail"])


def test_patch_version_out_of_range_is_422(admin_api, user):
    response = admin_api.patch(f"/api/users/{user.pk}", {"version": 10**30})
    assert response.status_code == 422
    assert locs(response) == [["body", "version"]]


def test_purge_removes_only_expired_keys(admin_api, admin_user):
    admin_api.post("/api/users/", {}, headers={"Idempotency-Key": "old"})
    admin_api.post("/api/users/", {}, headers={"Idempotency-Key": "new"})
    IdempotencyKey.objects.filter(key="old").update(
        created_at=dt.datetime.now(dt.UTC) - IDEMPOTENCY_TTL - dt.timedelta(minutes=1)
    )
    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 expired idempotency key(s)."
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


# --- PATCH back what you read (issue 11.5) -------------------------------------------------


@pytest.fixture
def full_user(admin_user, back_office_user) -> User:
    """A user with every kind of value set, so that each is sent back in its stored form."""
    return make_user(
        actor=admin_user,
        first_name="Marc",
        last_name="Peeters",
        external_id="CRM-7",
        email="marc@example.com",
        phone=VALID_PHONE,
        residency_country="BE",
        language="nl-BE",
        date_of_birth="1980-02-03",
        nationalities=["BE", "FR"],
        counter_account={"bank_account_number": "BE71 0961 2345 6769"},
        address={
            "line1": "Rue 1",
            "city": "Bruxelles",
            "postal_code": "1000",
            "country_code": "BE",
        },
        tax_residency={"country_code": "BE", "proof_type": "NATIONAL_ID", "value": "85"},
        metadata={"crm": "42"},
        feature_flags=[FeatureFlag.ROBO_ADVISOR],
        readable_by=[back_office_user.pk],
    )


@pytest.mark.parametrize("role", ["admin", "back_office", "compliance"])
def test_patch_back_what_you_read_is_accepted_and_changes_nothing(
    full_user, admin_user, back_office_user, compliance_user, role
):
    api = api_for(
        {"admin": admin_user, "back_office": back_office_user, "compliance": compliance_user}[role]
    )
    path = f"/api/users/{full_user.pk}"
    read = api.get(path).json()
    response = api.patch(path, read)
    assert response.status_code == 200, response.content
    assert response.json() == read
    assert UserVersion.objects.filter(user=full_user).count() == 1


def test_patch_back_read_only_fields_in_another_notation(admin_api, user):
    path = f"/api/users/{user.pk}"
    read = admin_api.get(path).json()
    created = dt.datetime.fromisoformat(read["creation_datetime"])
    in_brussels = created.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    response = admin_api.patch(path, {"creation_datetime": in_brussels, "first_name": "Z"})
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Z"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "U" + "0" * 26),
        ("creation_datetime", "2001-01-01T00:00:00Z"),
        ("version_datetime", "2001-01-01T00:00:00Z"),
        ("version_authored_by_user_id", "U" + "0" * 26),
        ("deleted", True),
    ],
)
def test_patch_a_different_read_only_value_is_422(admin_api, user, name, value):
    response = admin_api.patch(f"/api/users/{user.pk}", {name: value, "first_name": "Other"})
    assert response.status_code == 422
    assert locs(response) == [["body", name]]
    item = error_for(response, ["body", name])
    assert item["type"] == "read_only"
    assert f"({name}) is read-only" in item["msg"]
    user.refresh_from_db()
    assert user.first_name != "Other"
    assert user.version == 1


def test_compliance_changing_a_value_is_still_403(compliance_api, full_user):
    path = f"/api/users/{full_user.pk}"
    assert compliance_api.patch(path, {"first_name": "Marc"}).status_code == 200
    assert compliance_api.patch(path, {"phone": "0470 12 34 56"}).status_code == 200
    assert compliance_api.patch(path, {"first_name": "Marcel"}).status_code == 403
    assert compliance_api.patch(path, {"phone": "+32470000000"}).status_code == 403
    full_user.refresh_from_db()
    assert full_user.first_name == "Marc"
    assert full_user.version == 1


# --- the schema says what is accepted (issue 11.6) -----------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"status": None}, ["body", "status"], "enum"),
        (
            {"address": {"line1": None, "city": "B", "postal_code": "1", "country_code": "BE"}},
            ["body", "address", "line1"],
            "string_type",
        ),
        (
            {"address": {"line1": "Rue 1", "postal_code": "1", "country_code": "BE"}},
            ["body", "address", "city"],
            "missing",
        ),
        (
            {"address": {"line1": "Rue 1", "city": " ", "postal_code": "1", "country_code": "BE"}},
            ["body", "address", "city"],
            "string_pattern_mismatch",
        ),
        (
            {"counter_account": {"bank_id": "GEBABEBB"}},
            ["body", "counter_account", "bank_account_number"],
            "missing",
        ),
    ],
)
def test_what_the_services_refuse_is_refused_by_the_schema(admin_api, user, body, loc, type_):
    response = admin_api.patch(f"/api/users/{user.pk}", body)
    assert response.status_code == 422
    assert locs(response) == [loc]
    assert error_for(response, loc)["type"] == type_
