"""Saved views (issue 14.7): the services' rules (names, query strings, sharing, owner-only
changes), what the sidebar lists to whom, and the screens (save, rename, delete, without and
with htmx)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from users import policy
from users import services as user_services
from users.models import Role, SavedView, User
from users.selectors import saved_views as selectors
from users.services import saved_views as services
from users.views.saved_views import screen_params

pytestmark = pytest.mark.django_db

LIST = SavedView.Screen.LIST
BOARD = SavedView.Screen.BOARD
SAVE_URL = reverse("users:saved-view-save")
LIST_URL = reverse("users:user-list")
BOARD_URL = reverse("users:board")


def save(owner, name="Belgium", query="residency_country=BE", screen=LIST, role=None):
    return services.saved_view_create(
        owner=owner,
        name=name,
        screen=screen,
        query=query,
        shared_with_role=role,
        known_params=screen_params(),
    )


def errors_of(exc_info) -> dict[str, list[str]]:
    return exc_info.value.message_dict


def shown(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def client_for(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def htmx(**headers):
    return {"HTTP_HX_REQUEST": "true", **{f"HTTP_{k}": v for k, v in headers.items()}}


# --- services -----------------------------------------------------------------------------------


def test_a_view_keeps_its_filters_search_mode_and_sort_never_a_page(compliance_user):
    view = save(
        compliance_user,
        query="q=jan&mode=advanced&status=ACTIVE&status=INACTIVE&residency_country=BE"
        "&sort=name&page=3&after=U01&before=U02&limit_ACTIVE=50&language=",
    )
    view.refresh_from_db()
    assert view.query == (
        "q=jan&mode=advanced&status=ACTIVE&status=INACTIVE&residency_country=BE&sort=name"
    )
    assert (view.owner, view.screen, view.name, view.shared_with_role) == (
        compliance_user,
        LIST,
        "Belgium",
        None,
    )


def test_an_unknown_parameter_is_refused_by_name_and_nothing_is_saved(compliance_user):
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, query="residency_country=BE&utm_source=mail")
    assert errors_of(exc)["query"] == [
        "“utm_source” is no filter of the user list; a view saves its filters, search, "
        "query mode and sort only."
    ]
    assert not SavedView.objects.exists()


def test_the_known_parameters_come_from_the_list_filters():
    params = screen_params()
    for key in ("q", "mode", "status", "flag", "language", "residency_country", "sort"):
        assert key in params
    assert {"created_after", "created_before", "deleted"} <= set(params)
    assert not {"page", "after", "before"} & set(params)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the view a name."),
        ("   ", "Give the view a name."),
        ("x" * 81, "A view's name has at most 80 characters (this one has 81)."),
        ("bad\x00name", "A view's name cannot hold control characters."),
        ("tab\x07", "A view's name cannot hold control characters."),
    ],
)
def test_a_name_is_required_short_and_printable(compliance_user, name, message):
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, name=name)
    assert errors_of(exc)["name"] == [message]
    assert not SavedView.objects.exists()


def test_a_name_is_trimmed(compliance_user):
    assert save(compliance_user, name="  Waiting   in BE ").name == "Waiting in BE"


def test_a_name_is_unique_per_owner_and_screen(compliance_user, back_office_user):
    save(compliance_user, name="Belgium")
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, name="belgium ")
    assert errors_of(exc)["name"] == [
        "You already have a view named “belgium” on the user list; choose another name."
    ]
    # The same name on the board, or someone else's, is another view.
    save(compliance_user, name="Belgium", screen=BOARD)
    save(back_office_user, name="Belgium")
    assert SavedView.objects.count() == 3


def test_a_lost_race_for_a_name_is_the_name_error(compliance_user, monkeypatch):
    save(compliance_user, name="Belgium")
    monkeypatch.setattr(services, "_check_unique", lambda **kwargs: None)
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, name="Belgium")
    assert "already have a view named “Belgium”" in errors_of(exc)["name"][0]
    assert SavedView.objects.count() == 1


def test_a_query_too_long_or_with_nul_is_refused(compliance_user):
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, query="q=" + "a" * 2100)
    assert errors_of(exc)["query"] == [
        "These filters are too long to save (2,102 characters; at most 2,000)."
    ]
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, query="q=a%00b")
    assert errors_of(exc)["query"] == ["A view cannot hold a NUL character."]
    with pytest.raises(ValidationError) as exc:
        save(compliance_user, screen="dashboard")
    assert "screen" in errors_of(exc)
    assert not SavedView.objects.exists()


def test_a_view_is_shared_only_with_a_role_its_owner_holds(compliance_user):
    view = save(compliance_user, role=Role.COMPLIANCE)
    assert view.shared_with_role.name == Role.COMPLIANCE
    with pytest.raises(PermissionDenied, match="only with a role you hold"):
        save(compliance_user, name="Other", role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        save(compliance_user, name="Other", role="superusers")
    assert SavedView.objects.count() == 1


def test_policy_share_roles_and_owner_only(compliance_user, back_office_user):
    assert policy.share_roles(compliance_user) == [Role.COMPLIANCE]
    two_roles = make_console_user(Role.BACK_OFFICE)
    two_roles.groups.add(Group.objects.get(name=Role.COMPLIANCE))
    two_roles = User.objects.get(pk=two_roles.pk)  # role names are cached on the instance
    assert policy.share_roles(two_roles) == [Role.BACK_OFFICE, Role.COMPLIANCE]
    view = save(compliance_user)
    assert policy.may_manage_view(compliance_user, view)
    assert not policy.may_manage_view(back_office_user, view)
    policy.check_share(compliance_user, None)
    assert policy.may_save_views(back_office_user)


def test_only_the_owner_renames_reshares_or_deletes(compliance_user):
    colleague = make_console_user(Role.COMPLIANCE)
    view = save(compliance_user, role=Role.COMPLIANCE)
    with pytest.raises(PermissionDenied, match="Only its owner"):
        services.saved_view_update(
            view=view, actor=colleague, name="Mine now", shared_with_role=None
        )
    with pytest.raises(PermissionDenied, match="Only its owner"):
        services.saved_view_delete(view=view, actor=colleague)
    view.refresh_from_db()
    assert (view.name, view.shared_with_role.name) == ("Belgium", Role.COMPLIANCE)

    save(compliance_user, name="Netherlands", query="residency_country=NL")
    with pytest.raises(ValidationError) as exc:
        services.saved_view_update(
            view=view, actor=compliance_user, name="Netherlands", shared_with_role=None
        )
    assert "already have a view named “Netherlands”" in errors_of(exc)["name"][0]

    renamed = services.saved_view_update(
        view=view, actor=compliance_user, name="BE only", shared_with_role=None
    )
    renamed.refresh_from_db()
    assert (renamed.name, renamed.shared_with_role, renamed.query) == (
        "BE only",
        None,
        "residency_country=BE",
    )
    services.saved_view_delete(view=renamed, actor=compliance_user)
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Netherlands"]


# --- who sees what -------------------------------------------------------------------------------


def test_a_shared_view_shows_to_that_role_only(compliance_user, back_office_user):
    colleague = make_console_user(Role.COMPLIANCE)
    shared = save(compliance_user, role=Role.COMPLIANCE)
    save(compliance_user, name="Private")
    assert selectors.shared_views(colleague, LIST) == ([shared], False)
    assert selectors.shared_views(back_office_user, LIST) == ([], False)
    assert selectors.shared_views(compliance_user, LIST) == ([], False)  # own: under "Mine"
    assert selectors.shared_views(colleague, BOARD) == ([], False)
    mine, more = selectors.own_views(compliance_user, LIST)
    assert [v.name for v in mine] == ["Belgium", "Private"]
    assert not more
    assert selectors.visible_view(colleague, shared.pk) == shared
    assert selectors.visible_view(back_office_user, shared.pk) is None


def test_a_role_taken_from_the_owner_unshares_their_views(compliance_user):
    colleague = make_console_user(Role.COMPLIANCE)
    save(compliance_user, role=Role.COMPLIANCE)
    compliance_user.groups.remove(Group.objects.get(name=Role.COMPLIANCE))
    assert selectors.shared_views(colleague, LIST) == ([], False)
    # The owner still has it, marked as no longer shown to the role.
    [own], _ = selectors.own_views(compliance_user, LIST)
    assert own.owner_still_shares is False
    # Given back, it shows again.
    compliance_user.groups.add(Group.objects.get(name=Role.COMPLIANCE))
    assert len(selectors.shared_views(colleague, LIST)[0]) == 1


def test_a_deleted_role_makes_its_views_private_and_a_deleted_owner_hides_them(
    compliance_user, admin_user
):
    colleague = make_console_user(Role.COMPLIANCE)
    view = save(compliance_user, role=Role.COMPLIANCE)
    user_services.user_delete(user=compliance_user, actor=admin_user)
    assert selectors.shared_views(colleague, LIST) == ([], False)

    other = make_console_user(Role.BACK_OFFICE)
    kept = save(other, name="Kept", role=Role.BACK_OFFICE)
    Group.objects.filter(name=Role.BACK_OFFICE).delete()
    kept.refresh_from_db()
    assert kept.shared_with_role is None
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_the_sidebar_lists_at_most_ten_of_each(compliance_user):
    colleague = make_console_user(Role.COMPLIANCE)
    for n in range(12):
        save(compliance_user, name=f"Mine {n:02}")
        save(colleague, name=f"Theirs {n:02}", role=Role.COMPLIANCE)
    mine, more_mine = selectors.own_views(compliance_user, LIST)
    shared, more_shared = selectors.shared_views(compliance_user, LIST)
    assert [v.name for v in mine] == [f"Mine {n:02}" for n in range(10)]
    assert [v.name for v in shared] == [f"Theirs {n:02}" for n in range(10)]
    assert more_mine
    assert more_shared


# --- screens -------------------------------------------------------------------------------------


@pytest.fixture
def belgians(admin_user):
    return [make_user(actor=admin_user, residency_country="BE") for _ in range(3)]


def test_the_list_sidebar_shows_views_with_their_counts(
    compliance_client, compliance_user, belgians
):
    colleague = make_console_user(Role.COMPLIANCE)
    save(compliance_user, name="Belgium")
    save(colleague, name="Everyone", query="", role=Role.COMPLIANCE)
    response = compliance_client.get(LIST_URL, {"residency_country": "BE"})
    html = response.content.decode()
    assert 'id="saved-views"' in html
    assert 'href="/users/?residency_country=BE" aria-current="page">Belgium</a>' in html
    assert '<span class="count" title="Users this view shows now">3</span>' in html
    # The shared one: its owner named, no rename or delete for anyone else.
    assert "Everyone" in html
    assert f"By {colleague.display_name}, shared with Compliance" in html
    shared = SavedView.objects.get(name="Everyone")
    assert reverse("users:saved-view-rename", args=[shared.pk]) not in html
    # The results region alone (a filter change) carries no block: no extra queries.
    partial = compliance_client.get(LIST_URL, {"q": "x"}, **htmx(HX_TARGET="results"))
    assert b'id="saved-views"' not in partial.content


def test_counts_are_capped_like_the_list(compliance_client, compliance_user, belgians, monkeypatch):
    monkeypatch.setattr("users.selectors.users.COUNT_CAP", 2)
    save(compliance_user, name="Belgium")
    html = compliance_client.get(LIST_URL).content.decode()
    assert '<span class="count" title="Users this view shows now">2+</span>' in html


def test_a_board_view_counts_the_board_cards_without_staff(
    compliance_client, compliance_user, belgians
):
    save(compliance_user, name="All cases", query="", screen=BOARD)
    html = compliance_client.get(BOARD_URL).content.decode()
    assert 'id="saved-views"' in html
    assert 'href="/board/" aria-current="page">All cases</a>' in html
    assert '<span class="count" title="Users this view shows now">3</span>' in html


def test_a_mine_view_counts_the_cases_of_whoever_sees_it(
    compliance_client, compliance_user, belgians
):
    """`assignee=me` is the person looking: a colleague's shared "Mine" counts one's own."""
    from users.services.assignment import case_claim

    for person in belgians[:2]:
        case_claim(user=person, actor=compliance_user)
    colleague = make_console_user(Role.COMPLIANCE)
    save(colleague, name="My cases", query="assignee=me", role=Role.COMPLIANCE)
    save(compliance_user, name="Mine", query="assignee=me")
    html = compliance_client.get(LIST_URL).content.decode()
    counts = html.count('<span class="count" title="Users this view shows now">2</span>')
    assert counts == 2


def test_save_without_javascript_returns_to_the_saved_view(compliance_client, compliance_user):
    response = compliance_client.post(
        SAVE_URL,
        {
            "screen": "list",
            "query": "residency_country=BE&sort=name&page=2&utm=x",
            "name": "Belgium",
            "share": "compliance",
        },
    )
    assert response.status_code == 302
    assert response.url == "/users/?residency_country=BE&sort=name"
    assert shown(response) == ["Saved “Belgium”. Left out “utm”: no filter of the user list."]
    view = SavedView.objects.get()
    assert (view.owner, view.shared_with_role.name) == (compliance_user, "compliance")


def test_save_with_htmx_reads_the_address_bar_and_returns_the_block(compliance_client):
    response = compliance_client.post(
        SAVE_URL,
        {"screen": "board", "query": "", "name": "NL"},
        **htmx(
            HX_TARGET="saved-views",
            HX_CURRENT_URL="http://testserver/board/?residency_country=NL&limit_ACTIVE=50",
        ),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="saved-views"')
    assert 'role="status">Saved “NL”.</div>' in html
    assert 'href="/board/?residency_country=NL" aria-current="page">NL</a>' in html
    assert SavedView.objects.get().query == "residency_country=NL"


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"name": "", "query": "residency_country=BE"}, "Give the view a name."),
        ({"name": "Bad", "query": "status=BOGUS"}, "Fix the search or the filters before"),
        ({"name": "Bad", "query": "q=status+eq&mode=advanced"}, "Fix the search or the filters"),
        ({"name": "Bad", "query": "q=a%00"}, "Fix the search or the filters"),
        ({"name": "Admin", "query": "", "share": "admin"}, "only with a role you hold"),
    ],
)
def test_save_refusals_are_shown_in_the_form_and_save_nothing(compliance_client, data, field_error):
    for headers in ({}, htmx(HX_TARGET="saved-views")):
        response = compliance_client.post(SAVE_URL, {"screen": "list", **data}, **headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert field_error in html.replace("&#x27;", "'")
        assert '<details class="savedviews-save" open>' in html
    assert not SavedView.objects.exists()


def test_save_a_duplicate_name_says_so(compliance_client, compliance_user):
    save(compliance_user, name="Belgium")
    response = compliance_client.post(
        SAVE_URL, {"screen": "list", "query": "", "name": "Belgium"}, **htmx()
    )
    html = response.content.decode()
    assert "You already have a view named “Belgium” on the user list" in html
    assert 'aria-invalid="true"' in html
    assert SavedView.objects.count() == 1


def test_rename_and_delete_without_javascript(compliance_client, compliance_user):
    view = save(compliance_user, name="Belgium", role=Role.COMPLIANCE)
    rename_url = reverse("users:saved-view-rename", args=[view.pk])
    delete_url = reverse("users:saved-view-delete", args=[view.pk])

    page = compliance_client.get(rename_url)
    assert page.status_code == 200
    assert b"<h1>Saved views</h1>" in page.content
    assert b'id="saved-view-rename-name"' in page.content
    response = compliance_client.post(rename_url, {"name": "BE", "share": ""})
    assert response.status_code == 302
    assert response.url == "/users/?residency_country=BE"
    view.refresh_from_db()
    assert (view.name, view.shared_with_role) == ("BE", None)

    confirm = compliance_client.get(delete_url)
    assert confirm.status_code == 200
    assert "Delete “BE”?" in confirm.content.decode()
    assert b"Yes, delete" in confirm.content
    assert SavedView.objects.exists()
    response = compliance_client.post(delete_url)
    assert response.status_code == 302
    assert response.url == "/users/"
    assert shown(response)[-1] == "Deleted “BE”."
    assert not SavedView.objects.exists()


def test_rename_and_delete_with_htmx(compliance_client, compliance_user):
    view = save(compliance_user, name="Belgium")
    save(compliance_user, name="Netherlands", query="residency_country=NL")
    rename_url = reverse("users:saved-view-rename", args=[view.pk])
    form = compliance_client.get(rename_url, **htmx())
    assert b'id="saved-view-rename-name"' in form.content
    assert b"<h1>" not in form.content

    refused = compliance_client.post(rename_url, {"name": "Netherlands"}, **htmx())
    html = refused.content.decode()
    assert "You already have a view named “Netherlands”" in html
    assert '<div role="alert"><ul class="errorlist" id="saved-view-rename-name-error">' in html
    view.refresh_from_db()
    assert view.name == "Belgium"

    done = compliance_client.post(rename_url, {"name": "BE"}, **htmx())
    assert 'role="status">Saved as “BE”.</div>' in done.content.decode()

    delete_url = reverse("users:saved-view-delete", args=[view.pk])
    confirm = compliance_client.get(delete_url, **htmx())
    assert b'role="alertdialog"' in confirm.content
    deleted = compliance_client.post(delete_url, **htmx())
    assert 'role="status">Deleted “BE”.</div>' in deleted.content.decode()
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Netherlands"]


def test_others_may_not_rename_or_delete(compliance_user, back_office_user):
    colleague = make_console_user(Role.COMPLIANCE)
    shared = save(compliance_user, name="Shared", role=Role.COMPLIANCE)
    private = save(compliance_user, name="Private")
    as_colleague = client_for(colleague)
    for name in ("users:saved-view-rename", "users:saved-view-delete"):
        # Shared with them or not: another person's (403); no such view: 404.
        assert as_colleague.post(reverse(name, args=[shared.pk]), {"name": "x"}).status_code == 403
        assert as_colleague.get(reverse(name, args=[private.pk])).status_code == 403
        assert client_for(back_office_user).get(reverse(name, args=[shared.pk])).status_code == 403
        assert as_colleague.get(reverse(name, args=[999999])).status_code == 404
        assert as_colleague.get(reverse(name, args=[2**64])).status_code == 404
    assert set(SavedView.objects.values_list("name", flat=True)) == {"Shared", "Private"}


def test_the_block_page_and_its_cancel(compliance_client, compliance_user):
    view = save(compliance_user, name="Belgium")
    url = reverse("users:saved-views")
    page = compliance_client.get(url, {"screen": "board"})
    assert page.status_code == 200
    assert b"Back to the status board" in page.content
    cancel = compliance_client.get(url, {"screen": "list", "from": view.pk}, **htmx())
    assert b"data-focus-after-swap" in cancel.content


def test_people_without_the_list_may_not_save(client):
    nobody = make_console_user(Role.BACK_OFFICE)
    nobody.groups.clear()
    client.force_login(nobody)
    response = client.post(SAVE_URL, {"screen": "list", "name": "x"})
    assert response.status_code in (302, 403)
    assert not SavedView.objects.exists()


# --- cost ----------------------------------------------------------------------------------------


def test_the_sidebar_costs_two_queries_and_one_capped_count_per_view(
    compliance_client, compliance_user, belgians
):
    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert compliance_client.get(url).status_code == 200
        return len(captured.captured_queries)

    before = {url: queries(url) for url in (LIST_URL, BOARD_URL)}
    colleague = make_console_user(Role.COMPLIANCE)
    for n in range(14):
        save(compliance_user, name=f"Mine {n:02}", query=f"q=Doe{n}", screen=LIST)
        save(compliance_user, name=f"Mine {n:02}", query=f"q=Doe{n}", screen=BOARD)
        save(colleague, name=f"Shared {n:02}", query="residency_country=BE", role=Role.COMPLIANCE)
        save(colleague, name=f"Shared {n:02}", screen=BOARD, role=Role.COMPLIANCE)
    after = {url: queries(url) for url in (LIST_URL, BOARD_URL)}
    listed = 2 * selectors.LISTED
    # A search by name may first look up ids (one query), then count: at most two per view.
    assert after[LIST_URL] - before[LIST_URL] <= 2 + 2 * listed
    assert after[BOARD_URL] - before[BOARD_URL] <= 2 + 2 * listed


def test_the_demo_data_has_saved_views_once():
    """`seed_demo`: the demo logins' views, one of compliance's shared with its role; a second
    run adds none."""
    for _ in range(2):
        call_command("seed_demo", count=3, stdout=io.StringIO())
    compliance = User.objects.get(email="compliance@demo.example")
    shared = SavedView.objects.get(owner=compliance, name="Waiting for verification in BE")
    assert (shared.screen, shared.shared_with_role.name) == (LIST, Role.COMPLIANCE)
    assert shared.query == (
        "status=WAITING_FOR_VERIFICATION&residency_country=BE&sort=status_changed"
    )
    assert SavedView.objects.count() == 6
    colleague = make_console_user(Role.COMPLIANCE)
    assert [v.name for v in selectors.shared_views(colleague, LIST)[0]] == [shared.name]


def test_renaming_a_view_of_a_role_no_longer_held_says_so(compliance_client, compliance_user):
    view = save(compliance_user, role=Role.COMPLIANCE)
    compliance_user.groups.add(Group.objects.get(name=Role.BACK_OFFICE))
    compliance_user.groups.remove(Group.objects.get(name=Role.COMPLIANCE))
    client = client_for(User.objects.get(pk=compliance_user.pk))
    html = client.get(reverse("users:saved-view-rename", args=[view.pk]), **htmx()).content
    assert "It was shared with Compliance, a role you no longer hold" in html.decode()
    assert (
        b"(not shown to them: you no longer hold this role)" not in html
    )  # the form, not the note
    client.post(reverse("users:saved-view-rename", args=[view.pk]), {"name": "BE", "share": ""})
    view.refresh_from_db()
    assert (view.name, view.shared_with_role) == ("BE", None)
