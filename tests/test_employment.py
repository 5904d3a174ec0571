"""Employment and source of wealth (seed 002's employmentInfo), added through the registry:
the same rule and the same fields in the services, the API, the form, the query and the CSV."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import make_user
from tests.test_api import api_for, error_for, locs
from users import services, validators
from users.models import User, UserVersion

pytestmark = pytest.mark.django_db

EMPLOYED = {
    "employment_status": "FULL_TIME",
    "income_range": "50K_100K",
    "sources_of_wealth": ["SALARY", "SAVINGS"],
    "industry": "IT",
}


def test_the_rule_needs_the_block_once_any_of_it_is_given():
    validators.employment(employment_status="", income_range="", sources_of_wealth=[], industry="")
    with pytest.raises(ValidationError) as caught:
        validators.employment(
            employment_status="", income_range="", sources_of_wealth=[], industry="IT"
        )
    assert set(caught.value.error_dict) == {
        "employment_status",
        "income_range",
        "sources_of_wealth",
    }


@pytest.mark.parametrize("status", ["FULL_TIME", "PART_TIME", "SELF_EMPLOYED"])
def test_industry_is_required_for_those_who_work(status):
    with pytest.raises(ValidationError) as caught:
        validators.employment(
            employment_status=status,
            income_range="UNDER_25K",
            sources_of_wealth=["SALARY"],
            industry="",
        )
    assert list(caught.value.error_dict) == ["industry"]
    assert "Give the industry" in caught.value.error_dict["industry"][0].message


@pytest.mark.parametrize("status", ["RETIRED", "STUDENT", "UNEMPLOYED", "HOMEMAKER"])
def test_industry_is_optional_for_the_others(status):
    validators.employment(
        employment_status=status,
        income_range="UNDER_25K",
        sources_of_wealth=["PENSION"],
        industry="",
    )


def test_create_stores_the_block_in_version_1(admin_user):
    user = make_user(actor=admin_user, **EMPLOYED)
    assert (user.employment_status, user.industry) == ("FULL_TIME", "IT")
    assert user.sources_of_wealth == ["SALARY", "SAVINGS"]
    changes = UserVersion.objects.get(user=user, version=1).changes
    assert changes["sources_of_wealth"] == [[], ["SALARY", "SAVINGS"]]
    assert changes["income_range"] == ["", "50K_100K"]


def test_a_partial_update_is_checked_against_the_stored_block(admin_user):
    user = make_user(
        actor=admin_user, **{**EMPLOYED, "employment_status": "RETIRED", "industry": ""}
    )
    with pytest.raises(ValidationError) as caught:
        services.user_update(user=user, data={"employment_status": "SELF_EMPLOYED"}, actor=None)
    assert list(caught.value.error_dict) == ["industry"]
    assert User.objects.get(pk=user.pk).employment_status == "RETIRED"
    updated = services.user_update(
        user=user, data={"employment_status": "SELF_EMPLOYED", "industry": "RETAIL"}, actor=None
    )
    assert updated.version == user.version + 1


def test_unknown_values_are_refused_with_the_known_ones(admin_user):
    with pytest.raises(ValidationError) as caught:
        make_user(actor=admin_user, **{**EMPLOYED, "sources_of_wealth": ["LOTTERY"]})
    message = caught.value.error_dict["sources_of_wealth"][0].message
    assert message.startswith("Unknown sources of wealth 'LOTTERY'; known: SALARY,")


def test_api_round_trip_and_the_rule_as_a_422(admin_user):
    api = api_for(admin_user)
    refused = api.post("/api/users/", {"first_name": "A", "employment_status": "PART_TIME"})
    assert refused.status_code == 422
    assert ["body", "industry"] in locs(refused)
    assert "Give the income range" in error_for(refused, ["body", "income_range"])["msg"]
    created = api.post("/api/users/", {"first_name": "A", **EMPLOYED})
    assert created.status_code == 201
    body = created.json()
    assert {key: body[key] for key in EMPLOYED} == EMPLOYED
    assert api.post("/api/users/", {"industry": "SPACE"}).status_code == 422


def test_query_and_export_know_the_fields(admin_user, admin_client):
    worker = make_user(actor=admin_user, **EMPLOYED)
    retired = make_user(
        actor=admin_user,
        employment_status="RETIRED",
        income_range="UNDER_25K",
        sources_of_wealth=["PENSION"],
    )
    query = urlencode({"query": "employment_status eq 'RETIRED'"})
    found = api_for(admin_user).get(f"/api/users/?{query}")
    assert [user["id"] for user in found.json()["results"]] == [retired.pk]
    export = admin_client.get(reverse("users:user-export"), {"q": worker.email})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0]["industry"] == "IT"
    assert rows[0]["sources_of_wealth"] == "SALARY SAVINGS"


def test_the_form_edits_the_block_and_the_detail_shows_it(admin_user, back_office_client):
    user = make_user(actor=admin_user)
    url = reverse("users:user-edit", args=[user.pk])
    form = back_office_client.get(url).content.decode()
    assert 'name="sources_of_wealth"' in form
    data = {"expected_version": user.version, "employment_status": "SELF_EMPLOYED"}
    response = back_office_client.post(url, {**data, "income_range": "OVER_500K"})
    assert response.status_code == 200
    assert "Give the industry" in response.content.decode()
    saved = back_office_client.post(
        url,
        {
            **data,
            "income_range": "OVER_500K",
            "industry": "LEGAL",
            "sources_of_wealth": ["", "BUSINESS", "PROPERTY"],
        },
    )
    assert saved.status_code == 302
    stored = User.objects.get(pk=user.pk)
    assert stored.sources_of_wealth == ["BUSINESS", "PROPERTY"]
    detail = back_office_client.get(reverse("users:user-detail", args=[user.pk])).content.decode()
    assert "Self-employed" in detail
    assert "Business income, Sale of property" in detail
    # Unticking every box (only the checklist's empty marker is sent) clears the sources.
    cleared = back_office_client.post(
        url,
        {
            "expected_version": stored.version,
            "employment_status": "",
            "income_range": "",
            "industry": "",
            "sources_of_wealth": [""],
        },
    )
    assert cleared.status_code == 302
    assert User.objects.get(pk=user.pk).sources_of_wealth == []
