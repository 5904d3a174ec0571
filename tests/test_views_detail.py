"""The user detail screen: regions, status moves, flags, history and diff, delete and restore."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from tests.factories import VALID_IBANS, make_console_user, make_user, sign_in
from tests.test_queries import DETAIL_MAX
from users import services
from users.models import (
    AccessEvent,
    FeatureFlag,
    Role,
    SecurityEvent,
    Status,
    StatusChange,
    User,
    UserVersion,
)
from users.views.common import FACTOR_VERIFIED_AT

pytestmark = pytest.mark.django_db


def detail_url(user):
    return reverse("users:user-detail", args=[user.pk])


def htmx(target=None, **extra):
    headers = {"HTTP_HX_REQUEST": "true", **extra}
    if target:
        headers["HTTP_HX_TARGET"] = target
    return headers


def triggers(response):
    return json.loads(response.headers.get("HX-Trigger", "{}"))


def snapshot(user):
    return services.user_snapshot(User.objects.get(pk=user.pk))


# --- the page and its regions -----------------------------------------------------------------


def test_detail_page_shows_grouped_fields_with_bank_from_schwifty(back_office_client, admin_user):
    subject = make_user(
        actor=admin_user,
        first_name="Ada",
        last_name="Lovelace",
        counter_account={"bank_account_number": VALID_IBANS[0]},
        residency_country="BE",
        nationalities=["BE", "NL"],
        metadata={"crm": "42"},
    )
    response = back_office_client.get(detail_url(subject))
    assert response.status_code == 200
    html = response.content.decode()
    for heading in ("Identity", "Contact", "Counter account", "KYC", "Status", "Feature flags"):
        assert f">{heading}</h2>" in html
    assert "Ada Lovelace" in html
    assert "BE71 •••• •••• 6769" in html  # masked until revealed (issue 13.3)
    assert "0961" not in html
    assert "GKCCBEBB" in html  # the BIC schwifty knows for this bank
    assert "BE, NL" in html
    assert "crm" in html
    assert "<script>" not in html
    assert 'style="' not in html
    assert "hx-on" not in html


def test_detail_regions_render_alone_for_htmx(admin_client, user):
    for region in ("summary", "status", "flags", "history", "danger"):
        response = admin_client.get(detail_url(user), **htmx(region))
        assert response.status_code == 200
        html = response.content.decode().strip()
        assert f'id="{region}"' in html
        assert "<html" not in html
        assert "<main" not in html


def test_detail_needs_login_and_a_role(client, db):
    subject = make_user()
    response = client.get(detail_url(subject))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_detail_of_unknown_user_is_404(admin_client):
    response = admin_client.get(reverse("users:user-detail", args=["U" + "0" * 26]))
    assert response.status_code == 404


def test_back_office_reads_the_history(back_office_client, user):
    # Issue 11.9: they correct records, so they see who changed what (read-only for everyone).
    html = back_office_client.get(detail_url(user)).content.decode()
    assert 'id="history"' in html
    assert back_office_client.get(detail_url(user), **htmx("history")).status_code == 200
    diff = reverse("users:user-diff", args=[user.pk])
    assert back_office_client.get(diff).status_code == 200


def test_a_person_without_the_history_permission_gets_403_for_it(client, user):
    person = make_console_user(Role.BACK_OFFICE)
    person.user_permissions.clear()
    Group.objects.get(name=Role.BACK_OFFICE).permissions.remove(
        Permission.objects.get(codename="view_history")
    )
    sign_in(client, person)
    html = client.get(detail_url(user)).content.decode()
    assert 'id="history"' not in html
    assert client.get(detail_url(user), **htmx("history")).status_code == 403
    assert client.get(reverse("users:user-diff", args=[user.pk])).status_code == 403


def test_object_level_readers_see_the_detail(client, db, admin_user):
    from tests.factories import make_console_user

    reader = make_console_user("compliance")
    subject = make_user(actor=admin_user, readable_by=[reader.pk])
    sign_in(client, reader)
    assert client.get(detail_url(subject)).status_code == 200


# --- status moves -----------------------------------------------------------------------------


def test_status_page_offers_recommended_moves_first(compliance_client, user):
    html = compliance_client.get(detail_url(user)).content.decode()
    status_html = html[html.index('id="status"') : html.index('id="flags"')]
    recommended = status_html.index('value="WAITING_FOR_SIGNATURE"')
    off_flow = status_html.index("Off-flow move")
    assert recommended < off_flow
    assert f'name="expected_version" value="{user.version}"' in status_html


def test_recommended_move_returns_status_region_and_refreshes_the_others(
    compliance_client, compliance_user, user
):
    url = reverse("users:user-status", args=[user.pk])
    response = compliance_client.post(
        url,
        {"status": Status.WAITING_FOR_SIGNATURE, "expected_version": user.version},
        **htmx("status"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<section")
    assert 'id="status"' in html
    assert "Moved to Waiting for signature" in html
    assert set(triggers(response)) == {
        "refresh-summary",
        "refresh-pending",  # its forms go back to this page
        "refresh-assignment",
        "refresh-note",
        "refresh-flags",
        "refresh-roles",  # its form carries the version
        "refresh-signin",
        "refresh-history",
        "refresh-danger",
    }
    change = StatusChange.objects.get(user=user, to_status=Status.WAITING_FOR_SIGNATURE)
    assert change.changed_by == compliance_user
    assert not change.off_flow


def test_off_flow_move_without_reason_code_is_refused_and_changes_nothing(compliance_client, user):
    before = snapshot(user)
    response = compliance_client.post(
        reverse("users:user-status", args=[user.pk]),
        {"status": Status.ACTIVE, "expected_version": user.version, "reason": "Signed on paper"},
        **htmx("status"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "off the recommended flow: choose a reason code" in html
    # What was typed is kept for the second try.
    assert "Signed on paper</textarea>" in html
    assert "HX-Trigger" not in response.headers
    assert snapshot(user) == before


def test_off_flow_move_with_reason_code_is_marked_off_flow(compliance_client, user):
    response = compliance_client.post(
        reverse("users:user-status", args=[user.pk]),
        {
            "status": Status.ACTIVE,
            "expected_version": user.version,
            "reason_code": "SIGNED_ON_PAPER",
            "reason": "Signed on paper",
        },
    )
    assert response.status_code == 302
    change = StatusChange.objects.get(user=user, to_status=Status.ACTIVE)
    assert change.off_flow
    assert change.reason == "Signed on paper"
    assert change.reason_code_id == "SIGNED_ON_PAPER"


def test_status_move_from_a_stale_page_is_refused(compliance_client, admin_user, user):
    services.user_update(user=user, data={"first_name": "Changed"}, actor=admin_user)
    response = compliance_client.post(
        reverse("users:user-status", args=[user.pk]),
        {"status": Status.WAITING_FOR_SIGNATURE, "expected_version": user.version},
        **htmx("status"),
    )
    html = response.content.decode()
    assert "changed by someone else" in html
    assert User.objects.get(pk=user.pk).status == Status.WAITING_FOR_VERIFICATION
    fresh = User.objects.get(pk=user.pk)
    assert f'name="expected_version" value="{fresh.version}"' in html


def test_status_move_needs_change_status(back_office_client, user):
    response = back_office_client.post(
        reverse("users:user-status", args=[user.pk]),
        {"status": Status.WAITING_FOR_SIGNATURE, "expected_version": user.version},
    )
    assert response.status_code == 403
    assert User.objects.get(pk=user.pk).status == Status.WAITING_FOR_VERIFICATION


def test_unknown_status_is_a_clear_error(compliance_client, user):
    response = compliance_client.post(
        reverse("users:user-status", args=[user.pk]), {"status": "NOPE"}, **htmx("status")
    )
    assert response.status_code == 200
    assert "Unknown status" in response.content.decode()


def mover_client() -> Client:
    """A role that moves statuses along the flow only (compliance without off-flow moves)."""
    mover = make_console_user(Role.COMPLIANCE)
    mover.groups.get().permissions.remove(Permission.objects.get(codename="change_status_off_flow"))
    client = Client()
    sign_in(client, mover)
    return client


@pytest.mark.parametrize("status", list(Status))
def test_the_current_status_is_never_offered(compliance_client, admin_user, status):
    subject = make_user(
        actor=admin_user, status=status, status_reason="seeded", status_reason_code="OTHER"
    )
    response = compliance_client.get(detail_url(subject), **htmx("status"))
    context = response.context
    assert status not in context["recommended_moves"]
    assert status not in context["off_flow_moves"]
    assert set(context["recommended_moves"]) | set(context["off_flow_moves"]) == set(Status) - {
        status
    }
    assert f'value="{status}"' not in response.content.decode()


def test_a_move_to_the_current_status_is_refused_by_the_service_for_every_role(user):
    """As on the board: no move, so no permission question, whether or not the role may move
    off the flow; the service says the user is there already, and nothing is written."""
    versions = UserVersion.objects.filter(user=user).count()
    response = mover_client().post(
        reverse("users:user-status", args=[user.pk]),
        {"status": user.status, "expected_version": user.version},
        **htmx("status"),
    )
    assert response.status_code == 200
    assert "The user is already waiting for verification." in response.content.decode()
    assert UserVersion.objects.filter(user=user).count() == versions


def test_off_flow_moves_need_their_own_permission(user):
    client = mover_client()
    url = reverse("users:user-status", args=[user.pk])
    html = client.get(detail_url(user), **htmx("status")).content.decode()
    assert "Off-flow move" not in html
    refused = client.post(url, {"status": Status.ACTIVE, "reason": "because"})
    assert refused.status_code == 403
    assert User.objects.get(pk=user.pk).status == Status.WAITING_FOR_VERIFICATION
    moved = client.post(url, {"status": Status.WAITING_FOR_SIGNATURE})
    assert moved.status_code == 302
    assert User.objects.get(pk=user.pk).status == Status.WAITING_FOR_SIGNATURE


# --- feature flags ----------------------------------------------------------------------------


def test_admin_toggles_a_flag_and_it_is_audited(admin_client, admin_user, user):
    url = reverse("users:user-flag", args=[user.pk])
    response = admin_client.post(
        url, {"flag": FeatureFlag.ROBO_ADVISOR, "enabled": "1"}, **htmx("flags")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="flags"' in html
    assert "Robo Advisor granted" in html
    assert 'data-flag="ROBO_ADVISOR"' in html
    assert "refresh-history" in triggers(response)
    user.refresh_from_db()
    version = UserVersion.objects.get(user=user, version=user.version)
    assert version.author == admin_user
    assert version.changes == {"feature_flags": [[], ["ROBO_ADVISOR"]]}
    assert user.flag_grants.get().granted_by == admin_user

    admin_client.post(url, {"flag": FeatureFlag.ROBO_ADVISOR, "enabled": "0"}, **htmx("flags"))
    latest = UserVersion.objects.filter(user=user).order_by("-version").first()
    assert latest.changes == {"feature_flags": [["ROBO_ADVISOR"], []]}
    assert latest.author == admin_user


def test_back_office_cannot_toggle_flags(back_office_client, user):
    html = back_office_client.get(detail_url(user)).content.decode()
    assert 'aria-disabled="true"' in html
    assert reverse("users:user-flag", args=[user.pk]) not in html
    response = back_office_client.post(
        reverse("users:user-flag", args=[user.pk]),
        {"flag": FeatureFlag.ROBO_ADVISOR, "enabled": "1"},
        **htmx("flags"),
    )
    assert response.status_code == 403
    assert not user.flag_grants.exists()


def test_unknown_flag_is_refused(admin_client, user):
    version = user.version
    response = admin_client.post(
        reverse("users:user-flag", args=[user.pk]), {"flag": "NOPE", "enabled": "1"}
    )
    assert response.status_code == 200
    assert "Unknown feature flag" in response.content.decode()
    assert User.objects.get(pk=user.pk).version == version


# --- history and diff -------------------------------------------------------------------------


def test_the_history_follows_the_page_and_opens_in_place_without_javascript(
    admin_client, admin_user, user
):
    services.user_update(user=user, data={"first_name": "Renamed"}, actor=admin_user)
    page = admin_client.get(detail_url(user)).content.decode()
    history = page.split('id="history"')[1].split("</div>")[0]
    # htmx fetches the region as soon as the page has loaded; a plain link opens the page
    # drawn whole.
    assert 'hx-trigger="load, refresh-history from:body"' in history
    assert f'href="{detail_url(user)}?full=1#h-history"' in history
    assert "Versions" not in page
    full = admin_client.get(detail_url(user), {"full": "1"}).content.decode()
    assert "Versions" in full
    assert "Status timeline" in full
    assert 'hx-trigger="load' not in full
    # Fetched alone, the region is the history itself, whose own trigger is a refresh only.
    region = admin_client.get(detail_url(user), **htmx("history")).content.decode()
    assert "Versions" in region
    assert 'hx-trigger="refresh-history from:body"' in region
    # Only the page is an access to the record (issue 13.4), not its regions.
    views = AccessEvent.objects.filter(subject=user, kind=AccessEvent.Kind.VIEWED_DETAIL)
    assert views.count() == 2


def test_a_page_that_shows_a_diff_draws_the_history_in_place(admin_client, admin_user, user):
    services.user_update(user=user, data={"first_name": "Renamed"}, actor=admin_user)
    diff = reverse("users:user-diff", args=[user.pk])
    html = admin_client.get(diff, {"from": "1", "to": "2"}).content.decode()
    assert "Version 1 → 2" in html
    assert "Versions" in html


def test_history_lists_status_changes_and_versions(admin_client, admin_user, user):
    services.user_change_status(
        user=user,
        status=Status.ACTIVE,
        actor=admin_user,
        reason="Manual check",
        reason_code="MANUAL_OVERRIDE",
    )
    response = admin_client.get(detail_url(user), **htmx("history"))
    html = response.content.decode()
    assert "Manual check" in html
    # The code's label, not the code, in the timeline.
    assert "Manual override after review" in html
    assert "off-flow" in html
    assert admin_user.display_name in html
    assert "Versions" in html


def test_diff_between_any_two_versions(admin_client, admin_user, user):
    services.user_update(user=user, data={"first_name": "Ann"}, actor=admin_user)
    services.user_update(user=user, data={"language": "nl-BE"}, actor=admin_user)
    services.user_update(user=user, data={"first_name": "Anna"}, actor=admin_user)
    url = reverse("users:user-diff", args=[user.pk])

    response = admin_client.get(url, {"from": 1, "to": 4}, **htmx("diff"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="diff"')
    assert 'data-field="first_name"' in html
    assert 'data-field="language"' in html
    assert "Jane" in html
    assert "Anna" in html
    assert "Ann<" not in html

    backwards = admin_client.get(url, {"from": 4, "to": 2}, **htmx("diff")).content.decode()
    assert 'data-field="first_name"' in backwards
    assert 'data-field="language"' in backwards

    page = admin_client.get(url, {"from": 2, "to": 3})
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    assert 'data-field="language"' in page.content.decode()


def test_diff_shows_labels_not_codes(admin_client, admin_user, user):
    services.user_change_status(
        user=user,
        status=Status.ACTIVE,
        actor=admin_user,
        reason="Manual check",
        reason_code="MANUAL_OVERRIDE",
    )
    services.user_update(
        user=user,
        data={
            "employment_status": "RETIRED",
            "income_range": "UNDER_25K",
            "sources_of_wealth": ["PENSION", "SAVINGS"],
        },
        actor=admin_user,
    )
    user.refresh_from_db()
    response = admin_client.get(
        reverse("users:user-diff", args=[user.pk]), {"from": 1, "to": user.version}, **htmx("diff")
    )
    html = response.content.decode()
    row = html[html.index('data-field="status"') :]
    row = row[: row.index("</tr>")]
    assert f">{Status.ACTIVE.label}<" in row
    assert ">ACTIVE<" not in row
    assert "Retired" in html
    assert "RETIRED" not in html
    assert "Savings, Pension" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [({"from": "x", "to": "1"}, "whole numbers"), ({"from": "1", "to": "99"}, "between 1 and")],
)
def test_diff_with_bad_versions_is_a_clear_error(admin_client, user, params, message):
    response = admin_client.get(reverse("users:user-diff", args=[user.pk]), params, **htmx("diff"))
    assert response.status_code == 200
    assert message in response.content.decode()


# --- delete and restore -----------------------------------------------------------------------


def test_delete_asks_for_confirmation_without_javascript(back_office_client, user):
    url = reverse("users:user-delete", args=[user.pk])
    page = back_office_client.get(url)
    assert page.status_code == 200
    assert "Yes, delete" in page.content.decode()
    fragment = back_office_client.get(url, **htmx("danger")).content.decode()
    assert 'id="danger"' in fragment
    assert "Yes, delete" in fragment
    assert "<html" not in fragment
    assert not User.objects.get(pk=user.pk).deleted


def test_delete_then_restore(back_office_user, admin_user, user):
    # Two roles at once need two clients: the *_client fixtures share one.
    back_office_client, admin_client = Client(), Client()
    sign_in(back_office_client, back_office_user)
    sign_in(admin_client, admin_user)
    url = reverse("users:user-delete", args=[user.pk])
    response = back_office_client.post(url, {"expected_version": user.version}, **htmx())
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == detail_url(user)
    deleted = User.objects.get(pk=user.pk)
    assert deleted.deleted
    page = back_office_client.get(detail_url(user)).content.decode()
    assert "This user is deleted" in page
    assert "Only an admin can restore" in page
    assert reverse("users:user-edit", args=[user.pk]) not in page

    assert back_office_client.post(reverse("users:user-restore", args=[user.pk])).status_code == 403
    response = admin_client.post(reverse("users:user-restore", args=[user.pk]))
    assert response.status_code == 302
    restored = User.objects.get(pk=user.pk)
    assert not restored.deleted
    assert UserVersion.objects.get(user=user, version=restored.version).author == admin_user


def test_delete_needs_permission(compliance_client, user):
    url = reverse("users:user-delete", args=[user.pk])
    assert compliance_client.get(url).status_code == 403
    assert compliance_client.post(url).status_code == 403
    assert not User.objects.get(pk=user.pk).deleted


def test_delete_from_a_stale_page_is_refused(back_office_client, admin_user, user):
    services.user_update(user=user, data={"first_name": "Other"}, actor=admin_user)
    response = back_office_client.post(
        reverse("users:user-delete", args=[user.pk]),
        {"expected_version": user.version},
        **htmx("danger"),
    )
    assert "changed by someone else" in response.content.decode()
    assert not User.objects.get(pk=user.pk).deleted


def test_moves_and_flags_on_a_deleted_user_are_refused(admin_client, admin_user, user):
    services.user_delete(user=user, actor=admin_user)
    deleted = User.objects.get(pk=user.pk)
    html = admin_client.get(detail_url(user)).content.decode()
    assert reverse("users:user-status", args=[user.pk]) not in html
    response = admin_client.post(
        reverse("users:user-status", args=[user.pk]),
        {"status": Status.WAITING_FOR_SIGNATURE},
        **htmx("status"),
    )
    assert "restore it first" in response.content.decode()
    assert User.objects.get(pk=user.pk).version == deleted.version


# --- GET never writes -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["user-status", "user-flag", "user-restore"])
def test_post_only_endpoints_refuse_get(admin_client, user, name):
    assert admin_client.get(reverse(f"users:{name}", args=[user.pk])).status_code == 405


def test_nothing_changes_on_get(admin_client, user):
    before = (snapshot(user), UserVersion.objects.count(), StatusChange.objects.count())
    for name in ("user-detail", "user-diff", "user-delete", "user-edit"):
        admin_client.get(
            reverse(f"users:{name}", args=[user.pk]),
            {"status": "ACTIVE", "flag": "CONSOLE", "enabled": "1"},
        )
    after = (snapshot(user), UserVersion.objects.count(), StatusChange.objects.count())
    assert before == after


def test_flag_on_a_deleted_user_is_refused(admin_client, admin_user, user):
    services.user_delete(user=user, actor=admin_user)
    version = User.objects.get(pk=user.pk).version
    response = admin_client.post(
        reverse("users:user-flag", args=[user.pk]),
        {"flag": FeatureFlag.ROBO_ADVISOR, "enabled": "1"},
        **htmx("flags"),
    )
    assert "restore it first" in response.content.decode()
    assert User.objects.get(pk=user.pk).version == version


def test_detail_page_query_count_does_not_grow_with_history(
    admin_client, admin_user, user, django_assert_max_num_queries
):
    services.user_update(user=user, data={"first_name": "First"}, actor=admin_user)
    admin_client.get(detail_url(user))  # warm the session and permission caches
    # The ceiling is tests/test_queries.py's DETAIL_MAX; what matters here is that it stays put.
    with django_assert_max_num_queries(DETAIL_MAX) as captured:
        admin_client.get(detail_url(user))
    baseline = len(captured)
    for n in range(15):
        services.user_update(user=user, data={"first_name": f"N{n}"}, actor=admin_user)
        services.user_set_flag(
            user=user, flag=FeatureFlag.ROBO_ADVISOR, enabled=n % 2 == 0, actor=admin_user
        )
    with django_assert_max_num_queries(baseline):
        admin_client.get(detail_url(user))


# --- roles (issue 11.9; step-up 10.5; security log 10.7) ---------------------------------------


def roles_url(user):
    return reverse("users:user-roles", args=[user.pk])


def test_everyone_who_sees_the_detail_sees_the_roles_only_admins_get_the_form(
    client, back_office_user, admin_user
):
    subject = make_console_user(Role.COMPLIANCE)
    sign_in(client, back_office_user)
    html = client.get(detail_url(subject)).content.decode()
    roles = html.split('id="roles"')[1].split("</section>")[0]
    assert "<li>Compliance</li>" in roles
    assert 'name="role"' not in roles
    assert client.post(roles_url(subject), {"role": [Role.ADMIN]}).status_code == 403
    assert User.objects.get(pk=subject.pk).role_names() == {Role.COMPLIANCE}
    sign_in(client, admin_user)
    roles = client.get(detail_url(subject)).content.decode().split('id="roles"')[1]
    assert 'name="role" value="compliance" checked' in roles
    assert 'name="role" value="admin">' in roles


@pytest.mark.usefixtures("without_four_eyes")
def test_an_admin_changes_roles_versioned_logged_and_sessions_ended(admin_client, admin_user):
    subject = make_console_user(Role.COMPLIANCE)
    other = Client()
    sign_in(other, subject)
    assert other.get("/users/").status_code == 200
    response = admin_client.post(
        roles_url(subject),
        {"role": [Role.BACK_OFFICE], "expected_version": subject.version},
        **htmx("roles"),
    )
    assert response.status_code == 200
    assert "Roles saved: Back office." in response.content.decode()
    assert response["HX-Trigger"]  # the other regions (history, summary) refresh
    stored = User.objects.get(pk=subject.pk)
    assert stored.role_names() == {Role.BACK_OFFICE}
    version = UserVersion.objects.get(user=stored, version=stored.version)
    assert version.author_id == admin_user.pk
    assert version.changes == {"roles": [[Role.COMPLIANCE], [Role.BACK_OFFICE]]}
    events = SecurityEvent.objects.filter(subject=stored, kind__startswith="ROLE_")
    assert sorted((e.kind, e.detail["role"], e.actor_id) for e in events.exclude(actor=None)) == [
        (SecurityEvent.Kind.ROLE_GRANTED, Role.BACK_OFFICE, admin_user.pk),
        (SecurityEvent.Kind.ROLE_REVOKED, Role.COMPLIANCE, admin_user.pk),
    ]
    # A role taken away ends the person's sessions (10.3).
    assert other.get("/users/").status_code == 302


@pytest.mark.usefixtures("without_four_eyes")
def test_changing_roles_without_javascript_redirects_with_a_message(admin_client):
    subject = make_console_user(Role.COMPLIANCE)
    response = admin_client.post(roles_url(subject), {"role": [Role.COMPLIANCE, Role.ADMIN]})
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "Roles saved: Admin, Compliance." in page
    assert User.objects.get(pk=subject.pk).role_names() == {Role.COMPLIANCE, Role.ADMIN}


def test_an_unknown_role_or_a_stale_version_changes_nothing(admin_client):
    subject = make_console_user(Role.COMPLIANCE)
    bad = admin_client.post(roles_url(subject), {"role": ["root"]}, **htmx("roles"))
    assert "Unknown role &#x27;root&#x27;." in bad.content.decode()
    stale = admin_client.post(
        roles_url(subject),
        {"role": [Role.ADMIN], "expected_version": subject.version - 1 or 0},
        **htmx("roles"),
    )
    assert 'role="alert"' in stale.content.decode()
    stored = User.objects.get(pk=subject.pk)
    assert (stored.role_names(), stored.version) == ({Role.COMPLIANCE}, subject.version)


def test_changing_roles_asks_for_the_second_factor_after_five_minutes(admin_client):
    subject = make_console_user(Role.COMPLIANCE)
    session = admin_client.session
    session[FACTOR_VERIFIED_AT] = time.time() - 301
    session.save()
    response = admin_client.post(roles_url(subject), {"role": [Role.ADMIN]})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin-verify"))
    assert "step_up=1" in response["Location"]
    assert User.objects.get(pk=subject.pk).role_names() == {Role.COMPLIANCE}
    # Back from the check: the form, the choice still checked, to save again.
    back = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    assert back == f"{roles_url(subject)}?role=admin"
    html = admin_client.get(back).content.decode().split('id="roles"')[1]
    assert 'value="admin" checked' in html
    assert 'value="compliance" checked' not in html
    assert "save the roles again" in html


@pytest.mark.usefixtures("without_four_eyes")
def test_giving_up_ones_own_admin_role_asks_first(admin_client, admin_user):
    first = admin_client.post(roles_url(admin_user), {"role": [Role.BACK_OFFICE]}, **htmx("roles"))
    assert "Give up your own admin role?" in first.content.decode()
    assert User.objects.get(pk=admin_user.pk).role_names() == {Role.ADMIN}
    done = admin_client.post(
        roles_url(admin_user), {"role": [Role.BACK_OFFICE], "confirm": "1"}, **htmx("roles")
    )
    assert done["HX-Redirect"] == detail_url(admin_user)
    assert User.objects.get(pk=admin_user.pk).role_names() == {Role.BACK_OFFICE}
