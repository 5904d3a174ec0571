"""Bad input at every entry of the console and the API (issue 11).

A NUL byte: PostgreSQL refuses it in text (a query holding one fails, a 500), SQLite takes it
silently. So each test asserts both the answer (a clear 4xx or a "no match" message, never a
500) and that no query sent to the database carried a NUL, which holds on either database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from users.models import Status, User
from users.services import tokens

NUL = "\x00"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, bytes):
        return b"\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_holds_nul(item) for item in value)
    return False


@pytest.fixture
def sql_with_nul(db) -> Iterator[list[str]]:
    """The queries sent while the test runs that carried a NUL in their SQL or parameters."""
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        if _holds_nul(sql) or _holds_nul(params):
            seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def _text(response) -> str:
    return response.content.decode()


NUL_MESSAGE = "contains a NUL character"


# --- the list state: the list, the board, the export, a bulk action's re-rendered list -------


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("q=a%00b", "The search"),
        ("q=%00&mode=advanced", "The search"),
        ("language=%00", "The filter “Language”"),
        ("residency_country=%00", "The filter “Residency country”"),
        ("status=ACTIVE&status=%00", "The filter “Status”"),
        ("created_after=%00", "The filter “Created”"),
        ("sort=%00", "The parameter “sort”"),
        ("x%00=1", "The parameter “x␀”"),
    ],
)
@pytest.mark.parametrize("url", [reverse("users:user-list"), reverse("users:board")])
def test_a_nul_in_any_list_parameter_is_a_clear_message(
    admin_client, user, sql_with_nul, url, query, label
):
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code == 200
    assert f"{label} {NUL_MESSAGE}" in _text(response)
    assert sql_with_nul == []


def test_a_nul_in_the_search_shows_where_in_the_results_fragment(admin_client, user, sql_with_nul):
    response = admin_client.get(
        f"{reverse('users:user-list')}?q=ab%00c",
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.status_code == 200
    body = _text(response)
    assert f"The search {NUL_MESSAGE}" in body
    assert "(at character 3)" in body
    assert "ab␀c" in body
    assert user.display_name not in body
    assert sql_with_nul == []


def test_export_with_a_nul_redirects_to_the_list_saying_why(admin_client, user, sql_with_nul):
    response = admin_client.get(f"{reverse('users:user-export')}?q=%00", follow=True)
    assert response.redirect_chain[0][1] == 302
    assert response.redirect_chain[0][0].startswith(reverse("users:user-list"))
    body = _text(response)
    assert "Fix the search or the filters before exporting." in body
    assert f"The search {NUL_MESSAGE}" in body
    assert sql_with_nul == []


@pytest.mark.parametrize("htmx", [False, True])
def test_bulk_refuses_an_id_with_a_nul(admin_client, user, sql_with_nul, htmx):
    headers = {"HX-Request": "true", "HX-Target": "results"} if htmx else {}
    response = admin_client.post(
        reverse("users:user-bulk"),
        {"action": "status", "status": Status.ACTIVE, "ids": [user.pk, f"U{NUL}1"]},
        headers=headers,
        follow=not htmx,
    )
    assert response.status_code == 200
    assert "is not a user id (U + 26 characters); nothing was changed." in _text(response)
    assert sql_with_nul == []
    user.refresh_from_db()
    assert user.status == Status.WAITING_FOR_VERIFICATION


def test_bulk_with_a_nul_in_the_list_query_shows_the_message(admin_client, user, sql_with_nul):
    response = admin_client.post(
        reverse("users:user-bulk"),
        {"action": "flag_grant", "flag": "ROBO_ADVISOR", "ids": [user.pk], "query": "q=%00"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.status_code == 200
    assert f"The search {NUL_MESSAGE}" in _text(response)
    assert sql_with_nul == []


# --- forms -----------------------------------------------------------------------------------


def test_edit_form_refuses_a_nul_next_to_the_field(admin_client, user, sql_with_nul):
    response = admin_client.post(
        reverse("users:user-edit", kwargs={"pk": user.pk}),
        {"first_name": f"Ma{NUL}rc", "last_name": "Peeters", "expected_version": user.version},
    )
    assert response.status_code == 200
    assert "Null characters are not allowed." in _text(response)
    assert sql_with_nul == []
    user.refresh_from_db()
    assert NUL not in user.first_name


def test_field_check_refuses_a_nul(admin_client, user, sql_with_nul):
    response = admin_client.post(
        reverse("users:user-validate-field"),
        {"_field": "first_name", "first_name": f"a{NUL}", "user": user.pk},
    )
    assert response.status_code == 200
    assert "First name contains a NUL character." in _text(response)
    assert sql_with_nul == []


def test_login_refuses_a_nul(client, db, sql_with_nul):
    response = client.post(reverse("login"), {"username": f"a{NUL}@x.be", "password": "x"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in _text(response)
    assert sql_with_nul == []


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture
def api(admin_user):
    _, raw = tokens.issue_token(user=admin_user, name="bad input")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.parametrize(
    ("param", "message"),
    [("query", "The query contains a NUL character."), ("orderby", "contains a NUL character")],
)
def test_api_query_params_with_a_nul_are_422(client, api, sql_with_nul, param, message):
    response = client.get(f"/api/users/?{param}=last_name%00", **api)
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", param]
    assert message in item["msg"]
    assert sql_with_nul == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"first_name": f"a{NUL}"}, ["body", "first_name"]),
        ({"metadata": {f"k{NUL}": "v"}}, ["body", "metadata"]),
        (
            {
                "address": {
                    "line1": f"Rue{NUL}",
                    "city": "B",
                    "postal_code": "1",
                    "country_code": "BE",
                }
            },
            ["body", "address", "line1"],
        ),
        ({"counter_account": {"bank_account_number": f"BE{NUL}"}}, ["body", "counter_account"]),
        ({"readable_by": [f"U{NUL}"]}, ["body", "readable_by"]),
        ({"nationalities": [f"B{NUL}"]}, ["body", "nationalities"]),
        ({"status_reason": f"why{NUL}", "status": "ACTIVE"}, ["body", "status_reason"]),
    ],
)
@pytest.mark.parametrize("method", ["post", "patch"])
def test_api_bodies_with_a_nul_are_422(client, api, user, sql_with_nul, method, body, loc):
    url = "/api/users/" if method == "post" else f"/api/users/{user.pk}"
    before = User.objects.count()
    response = getattr(client, method)(
        url, json.dumps(body), content_type="application/json", **api
    )
    assert response.status_code == 422, response.content
    assert loc in [item["loc"] for item in response.json()["detail"]]
    assert sql_with_nul == []
    assert User.objects.count() == before


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Idempotency-Key"])
def test_api_idempotency_key_with_a_nul_is_422(client, api, sql_with_nul, header):
    response = client.post(
        "/api/users/",
        json.dumps({"first_name": "Ann"}),
        content_type="application/json",
        headers={header: f"key{NUL}"},
        **api,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", header]
    assert sql_with_nul == []


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer tok{NUL}en"}, {"X-API-Key": f"tok{NUL}en"}],
)
def test_api_token_with_a_nul_is_401(client, db, sql_with_nul, headers):
    response = client.get("/api/users/", headers=headers)
    assert response.status_code == 401
    assert sql_with_nul == []


def test_api_user_id_with_a_nul_is_404(client, api, sql_with_nul):
    response = client.get("/api/users/U%00", **api)
    assert response.status_code == 404
    assert sql_with_nul == []


# --- the tokens page and the admin's list ----------------------------------------------------


def test_token_name_with_a_nul_is_refused(admin_client, admin_user, sql_with_nul):
    response = admin_client.post(reverse("users:api-tokens"), {"name": f"CRM{NUL}sync"})
    assert response.status_code == 422
    assert "The name contains a NUL character." in _text(response)
    assert sql_with_nul == []
    assert not admin_user.api_tokens.exists()


@pytest.mark.parametrize("query", ["q=%00", "status__exact=%00", "residency_country=B%00"])
def test_admin_list_with_a_nul_redirects_saying_why(admin_client, user, sql_with_nul, query):
    url = reverse("admin:users_user_changelist")
    response = admin_client.get(f"{url}?{query}", follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "The search or a filter contains a NUL character" in _text(response)
    assert sql_with_nul == []
