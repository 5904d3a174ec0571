"""Query counts of the console's pages: fixed, whatever the number of users shown.

Each page is requested with a few users, then with many more (every one with flags, versions and
status history); an N+1 makes the second count larger and fails. The absolute ceilings keep a new
per-page query from slipping in unnoticed; raise them deliberately, with the reason.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    VALID_IBANS,
    behind_the_services,
    make_console_user,
    make_user,
    move_to,
)
from users import selectors, services
from users.models import FeatureFlag, Role, Status, StatusChange, User
from users.selectors.people import with_people
from users.selectors.saved_views import LISTED
from users.services.assignment import case_assign
from users.services.saved_views import saved_view_create
from users.views.saved_views import screen_params

# Session, user + CONSOLE flag, then groups and permissions together (console/auth.py), and
# the device that passed the second factor (django-otp checks it still exists and is
# confirmed, so a factor reset ends the verified session at its next request).
AUTH_QUERIES = 4
# Four-eyes: the Approvals count in an approver's navigation, and which users shown have a
# change waiting (the marks on rows and cards; on the detail page, its pending changes).
FOUR_EYES_QUERIES = 2
# Assignment (issue 14.1, 14.5): the people the assignee filter offers, and the board's strip of
# open cases per assignee (one grouped query).
ASSIGNMENT_QUERIES = 2
# Saved views (issue 14.7): the sidebar's own views and those shared with one's roles (one
# query each), then one capped count per view listed (none here: see
# test_saved_views_cost_one_capped_count_each).
SAVED_VIEWS_QUERIES = 2
# The reason codes (issue 14.3): those the bulk move offers, and the filter's choices.
LIST_REASON_CODE_QUERIES = 2
# Rows (their assignees joined in), flags of the rows, capped count, the people the assignee
# filter offers (issue 14.1).
LIST_MAX = AUTH_QUERIES + FOUR_EYES_QUERIES + SAVED_VIEWS_QUERIES + 4 + LIST_REASON_CODE_QUERIES
# Counts (on PostgreSQL the maintained counters, then the few staff to leave out of them), the
# columns (one UNION ALL; one query each on SQLite, which cannot slice inside a compound
# statement) and the flags of every card.
# The active reason codes the move forms offer (issue 14.3): one query per page that moves.
REASON_CODE_QUERIES = 1
# The detail's timeline reads the case notes too (issue 14.2).
CASE_NOTE_QUERIES = 1
BOARD_MAX = (
    AUTH_QUERIES
    + (2 if connection.vendor == "postgresql" else 1)
    + (1 if connection.features.supports_slicing_ordering_in_compound else len(Status))
    + 1
    + FOUR_EYES_QUERIES
    + ASSIGNMENT_QUERIES
    + SAVED_VIEWS_QUERIES
    + REASON_CODE_QUERIES
)
# Every detail request loads the user (views/common.load_user): the user with its mark of a
# change waiting and the people named on it, its flags, the two lists of people who may read
# or modify it, and its roles.
LOAD_USER_QUERIES = 5
# The detail page (an admin's: every region): auth, the user, the access row, the Approvals
# count, the reason codes, the lockout and the second factors (admins), the people an admin may
# assign the case to; + 2 with a counter account waiting (the request, who changed the account
# last). The history and "Accessed by" follow the page.
DETAIL_MAX = AUTH_QUERIES + LOAD_USER_QUERIES + 1 + 1 + REASON_CODE_QUERIES + 2 + 1 + 2
# The history alone (htmx, after the page): auth, the user, then the versions, the status
# rows, the case notes (issue 14.2), the assignments (issue 14.1), the change requests
# (four-eyes) and the diff of the latest two versions.
DETAIL_HISTORY_MAX = AUTH_QUERIES + LOAD_USER_QUERIES + 4 + CASE_NOTE_QUERIES + 1
# The page drawn whole (`?full=1`, without JavaScript): both in one request, and the panel's
# accesses.
DETAIL_FULL_MAX = DETAIL_MAX + DETAIL_HISTORY_MAX - AUTH_QUERIES - LOAD_USER_QUERIES + 1

# The dashboard (issue 14.6): the approvals count in the navigation; the users per status now
# (as the board: the counters, then the staff); then from the summary table the moves per
# (from, to), per day of the SLA statuses, per person, and those people's names, per reason
# code and those codes' labels; and the open cases at risk or past their SLA. None grows with
# the users or the moves.
DASHBOARD_MAX = AUTH_QUERIES + 1 + (2 if connection.vendor == "postgresql" else 1) + 7


def add_users(actor: User, count: int, *, start: int = 0) -> list[User]:
    """Users spread over every status, each with flags, a counter account and a few versions."""
    users = []
    moves = {
        Status.WAITING_FOR_SIGNATURE: [Status.WAITING_FOR_SIGNATURE],
        Status.VERIFICATION_FAILED: [Status.VERIFICATION_FAILED],
        Status.ACTIVE: [Status.WAITING_FOR_SIGNATURE, Status.ACTIVE],
        Status.INACTIVE: [Status.WAITING_FOR_SIGNATURE, Status.ACTIVE, Status.INACTIVE],
        Status.WAITING_FOR_VERIFICATION: [],
    }
    statuses = list(moves)
    for index in range(start, start + count):
        user = make_user(
            actor=actor,
            first_name=f"Anna{index}",
            counter_account={
                "bank_account_number": VALID_IBANS[index % len(VALID_IBANS)],
                "bank_account_number_type": "IBAN",
            },
            feature_flags=[FeatureFlag.ROBO_ADVISOR, FeatureFlag.SELF_INVESTOR],
            residency_country="BE",
        )
        for status in moves[statuses[index % len(statuses)]]:
            user = move_to(user, status, actor=actor)
        users.append(user)
    return users


def count_queries(client, url: str, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


LIST_URLS = [
    reverse("users:user-list"),
    reverse("users:user-list") + "?q=anna",
    reverse("users:user-list") + "?status=ACTIVE&residency_country=BE&flag=ROBO_ADVISOR",
    reverse("users:user-list") + "?sort=name",
]


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_queries_do_not_grow_with_the_rows(admin_client, admin_user, url):
    add_users(admin_user, 3)
    few = count_queries(admin_client, url)
    add_users(admin_user, 30, start=3)
    many = count_queries(admin_client, url)
    assert many == few
    assert many <= LIST_MAX


def test_list_page_renders_every_row_without_extra_queries(
    admin_client, admin_user, django_assert_max_num_queries
):
    add_users(admin_user, 30)
    with django_assert_max_num_queries(LIST_MAX):
        response = admin_client.get(reverse("users:user-list"))
    html = response.content.decode()
    assert html.count("Robo Advisor") >= 30  # the flags of every row were shown


def test_board_queries_do_not_grow_with_the_cards(admin_client, admin_user):
    board = reverse("users:board")
    add_users(admin_user, 5)
    few = count_queries(admin_client, board)
    add_users(admin_user, 40, start=5)
    many = count_queries(admin_client, board)
    assert many == few
    assert many <= BOARD_MAX
    filtered = count_queries(admin_client, board + "?residency_country=BE")
    assert filtered <= BOARD_MAX


@pytest.mark.parametrize("screen", ["list", "board"])
def test_saved_views_cost_one_capped_count_each(admin_client, admin_user, screen):
    """The sidebar lists at most LISTED own and LISTED shared views, each counted once (a
    capped count), however many views exist."""
    url = reverse("users:user-list" if screen == "list" else "users:board")
    add_users(admin_user, 3)
    without = count_queries(admin_client, url)
    colleague = make_console_user(Role.ADMIN)
    params = screen_params()
    for n in range(LISTED + 5):
        for owner, role in ((admin_user, None), (colleague, Role.ADMIN)):
            saved_view_create(
                owner=owner,
                name=f"View {n}",
                screen=screen,
                query=f"residency_country=BE&status=ACTIVE&language=nl-{n}",
                shared_with_role=role,
                known_params=params,
            )
    with_views = count_queries(admin_client, url)
    assert with_views == without + 2 * LISTED
    # Each count is capped: "1,000+" at most, whatever the view.
    assert with_views <= (LIST_MAX if screen == "list" else BOARD_MAX) + 2 * LISTED


def test_detail_queries_do_not_grow_with_the_history(admin_client, admin_user):
    (user,) = add_users(admin_user, 1)
    others = add_users(admin_user, 4, start=1)
    url = reverse("users:user-detail", args=[user.pk])
    history = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "history"}
    few = count_queries(admin_client, url)
    few_full = count_queries(admin_client, f"{url}?full=1")
    few_history = count_queries(admin_client, url, **history)
    for index in range(6):
        user = services.user_update(
            user=user, data={"first_name": f"Renamed{index}"}, actor=admin_user
        )
    for status in (Status.ACTIVE, Status.INACTIVE, Status.ACTIVE):
        user = move_to(user, status, actor=admin_user)
    services.user_update(
        user=user,
        data={
            "readable_by": [other.pk for other in others],
            "modifiable_by": [others[0].pk],
            "feature_flags": [FeatureFlag.STORYTELLER, FeatureFlag.ROBO_ADVISOR],
        },
        actor=admin_user,
    )
    # Every kind of row the history names people on: notes, assignments (three people each),
    # accesses, a four-eyes request decided and one pending; each person is read with the row.
    officers = [make_console_user(Role.COMPLIANCE) for _ in range(3)]
    for index, officer in enumerate(officers):
        services.case_note_add(user=user, text=f"Note {index}", actor=officer)
    user = User.objects.get(pk=user.pk)
    case_assign(user=user, assignee=admin_user, actor=admin_user, expected_assignee=None)
    case_assign(user=user, assignee=officers[1], actor=admin_user, expected_assignee=admin_user.pk)
    back_office = make_console_user(Role.BACK_OFFICE)
    for iban in VALID_IBANS[1:3]:
        services.user_update(
            user=User.objects.get(pk=user.pk),
            data={"counter_account": {"bank_account_number": iban}},
            actor=back_office,
            change_reason="client letter",
        )
    for _ in range(3):
        admin_client.get(url)
    many = count_queries(admin_client, url)
    # + 2 with a change waiting, whatever the history: its request is read (never for a user
    # with none pending), and the counter account names who changed it last (an approver may
    # not be that person).
    assert many == few + 2
    assert many <= DETAIL_MAX
    # The page drawn whole (without JavaScript) adds the history's and the panel's reads; at
    # most 2 more than before: the diff of the latest two versions, and who changed the
    # pending counter account last. Three notes, two assignments, two requests and six
    # versions read per row would add far more.
    many_full = count_queries(admin_client, f"{url}?full=1")
    assert many_full - few_full <= 2
    assert many_full <= DETAIL_FULL_MAX
    # The history fetched alone after the page: none of the other regions' reads.
    many_history = count_queries(admin_client, url, **history)
    assert many_history - few_history <= 1  # the diff, when the first read had one version
    assert many_history <= DETAIL_HISTORY_MAX


def test_export_queries_grow_per_chunk_not_per_row(admin_client, admin_user, monkeypatch):
    monkeypatch.setattr(selectors.export, "EXPORT_CHUNK", 10)
    export = reverse("users:user-export")
    add_users(admin_user, 5)
    small = count_queries(admin_client, export)
    add_users(admin_user, 20, start=5)
    with CaptureQueriesContext(connection) as captured:
        large = count_queries(admin_client, export)
    if connection.vendor == "postgresql":
        # The database writes the whole CSV: one COPY statement, whatever the number of rows.
        assert large == small
        assert sum(q["sql"].startswith("COPY") for q in captured.captured_queries) == 1
    else:
        # 25 users + the admin: 3 chunks instead of 1, at most two queries each (rows, flags).
        assert large - small <= 2 * 2
        assert large > small


@pytest.mark.postgres
def test_status_counters_follow_every_write(admin_user):
    """The board's maintained counters (PostgreSQL triggers) equal a real grouped count."""
    users = add_users(admin_user, 10)
    services.user_delete(user=users[0], actor=admin_user)
    services.user_change_status(
        user=users[1],
        status=Status.INACTIVE,
        actor=admin_user,
        reason="Closed on request",
        reason_code="CLIENT_REQUEST",
    )
    with behind_the_services():
        User.objects.filter(pk=users[2].pk).update(status=Status.VERIFICATION_FAILED)
        User.objects.filter(pk=users[3].pk).delete()
    live = User.objects.filter(deleted=False)
    cases = live.filter(groups=None)  # the board counts onboarding cases, not staff
    expected = {status: cases.filter(status=status).count() for status in Status.values}
    assert selectors.status_counts(live, all_live=True) == expected
    assert selectors.status_counts(live) == expected


@pytest.mark.parametrize("sort", ["-created", "name", "-email", "status"])
def test_deep_pages_are_the_same_rows_as_plain_offsets(admin_user, monkeypatch, sort):
    """The deferred join (keys first, then rows) returns exactly what OFFSET would."""
    from django.http import QueryDict

    from users.views.common import list_state

    add_users(admin_user, 12)
    state = list_state(QueryDict(f"sort={sort}"))
    expected = list(state.queryset.order_by(*state.ordering))
    monkeypatch.setattr(selectors.users, "DEFERRED_JOIN_FROM", 0)
    for offset in (0, 4, 9):
        rows = selectors.page_of_users(state.queryset, state.ordering, offset, 5)
        assert [u.pk for u in rows] == [u.pk for u in expected[offset : offset + 5]]
        assert all(hasattr(u, "_prefetched_objects_cache") for u in rows)


@pytest.mark.parametrize("value", [None, "", "BE", "XX"])
def test_country_select_renders_what_django_renders(value):
    """The Python-rendered country select is byte for byte Django's template output."""
    from django import forms

    from users.filters import country_choices
    from users.rendering import FastSelect

    choices = [("", "Any country"), *country_choices(), ("<&>", "Quote \" & 'tag' <b>")]
    for attrs in (None, {"id": "id_residency_country", "required": True, "data-x": False}):
        assert FastSelect(choices=choices).render(
            "residency_country", value, attrs
        ) == forms.Select(choices=choices).render("residency_country", value, attrs)


@pytest.mark.parametrize(
    ("offset", "shown", "has_next", "expected", "queries"),
    [
        (0, 3, False, (3, False), 0),  # one short page: it is the whole result
        (3, 2, False, (5, False), 0),  # the last page: offset + what it shows
        (0, 5, True, (6, True), 1),  # a full first page: count, capped at 6
        (10, 5, True, (6, True), 0),  # a page ending past the cap: "6+" without counting
        (40, 0, False, (6, True), 1),  # past the end: only a count can tell
    ],
)
def test_count_for_page_counts_only_when_the_page_cannot_tell(
    admin_user, django_assert_num_queries, offset, shown, has_next, expected, queries
):
    add_users(admin_user, 9)
    live = User.objects.filter(deleted=False)  # 10 users with the admin: more than the cap
    with django_assert_num_queries(queries):
        assert (
            selectors.count_for_page(live, offset=offset, shown=shown, has_next=has_next, cap=6)
            == expected
        )


def test_an_exact_search_shows_its_count_without_counting(admin_client, admin_user):
    (found,) = add_users(admin_user, 1)
    add_users(admin_user, 3, start=1)
    response = admin_client.get(reverse("users:user-list"), {"q": found.pk})
    assert response.context["count"] == 1
    assert not response.context["count_capped"]
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(reverse("users:user-list"), {"q": found.pk})
    # (The navigation's Approvals badge counts change requests, not users.)
    assert not [
        q
        for q in captured.captured_queries
        if "COUNT(" in q["sql"] and "users_changerequest" not in q["sql"]
    ]


def test_a_page_continued_from_a_row_costs_one_query_more_than_page_one(
    admin_client, admin_user, monkeypatch
):
    from users.views import list as list_views

    add_users(admin_user, 12)
    monkeypatch.setattr(list_views, "PAGE_SIZE", 5)
    url = reverse("users:user-list")
    first = admin_client.get(url)
    anchor = first.context["users"][-1].pk
    page_one = count_queries(admin_client, url)
    # The anchor's sort values, then the page itself; the count is still needed before the cap.
    assert count_queries(admin_client, url, data={"page": 2, "after": anchor}) == page_one + 1


# --- the search's indexes (PostgreSQL) ----------------------------------------------------------

FIRST_NAMES = ("Anna", "Marc", "Lien", "Pieter", "Sofie", "Jan", "Eva", "Lucas", "Noor", "Daan")
LAST_NAMES = ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Wouters")


@pytest.fixture
def thousands(db):
    """5,000 plain rows (straight to the table: the planner needs numbers, not histories),
    and one Chloé Dubois among them, with statistics."""
    now = timezone.now()
    rows = [
        User(
            first_name=f"{FIRST_NAMES[n % len(FIRST_NAMES)]}{n % 97}",
            last_name=LAST_NAMES[n % len(LAST_NAMES)],
            email=f"user{n}@example.com",
            external_id=f"CRM-{n:06d}" if n % 2 else None,
            creation_datetime=now,
            status_changed_at=now,
            version_datetime=now,
        )
        for n in range(5_000)
    ]
    rows.append(
        User(
            first_name="Chloé",
            last_name="Dubois",
            email="chloe@rare.example",
            creation_datetime=now,
            status_changed_at=now,
            version_datetime=now,
        )
    )
    User.objects.bulk_create(rows, batch_size=1_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users_user")


def plan_of(text: str) -> str:
    from django.http import QueryDict

    from users.views.common import list_state

    state = list_state(QueryDict(f"q={text}"))
    return state.queryset.order_by(*state.ordering)[:51].explain()


@pytest.mark.postgres
def test_accent_free_name_search_uses_its_trigram_indexes(thousands):
    plan = plan_of("chloe")
    # users_fold(first_name) LIKE '%CHLOE%': the pattern folded to a constant, the index used.
    assert "user_first_name_fold_trgm" in plan
    assert "user_last_name_fold_trgm" in plan
    assert "'%CHLOE%'" in plan
    assert "Seq Scan" not in plan
    assert list(
        selectors.search_users(User.objects.all(), "CHLOE")[0].values_list("last_name", flat=True)
    ) == ["Dubois"]


@pytest.mark.postgres
def test_external_id_without_case_and_domain_use_indexes(thousands):
    plan = plan_of("crm-000043")
    assert "user_external_id_upper_idx" in plan
    assert "Seq Scan" not in plan
    # UPPER(email) is cheap: over 5,000 rows a scan is the honest plan. What matters is that
    # the expression is the indexed one, so that a million rows need not be read.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = selectors.search_users(User.objects.order_by(), "rare.example")[0].explain()
    assert "user_email_trgm" in plan
    assert "Seq Scan" not in plan


def test_dashboard_queries_do_not_grow_with_the_moves(admin_client, admin_user):
    from tests.factories import make_console_user
    from users.models import Role

    dashboard = reverse("users:dashboard")
    add_users(admin_user, 5)
    few = count_queries(admin_client, dashboard)
    other = make_console_user(Role.COMPLIANCE)
    for user in add_users(other, 20, start=5):
        if user.status == Status.WAITING_FOR_VERIFICATION:
            services.user_change_status(
                user=user,
                status=Status.VERIFICATION_FAILED,
                actor=other,
                reason_code="OTHER",
                reason="checked",
            )
    many = count_queries(admin_client, dashboard)
    assert few == many
    assert many <= DASHBOARD_MAX


def test_people_beside_a_row_are_read_with_their_name_columns_only(admin_user):
    user = move_to(make_user(actor=admin_user), Status.ACTIVE, actor=admin_user)
    rows = with_people(StatusChange.objects.filter(user=user), "changed_by")
    with CaptureQueriesContext(connection) as captured:
        names = {row.changed_by.display_name for row in rows}
    assert names == {admin_user.display_name}
    assert len(captured.captured_queries) == 1
    sql = captured.captured_queries[0]["sql"]
    assert '"first_name"' in sql
    assert '"password"' not in sql
    assert '"address"' not in sql


def test_compiled_queries_are_written_once_and_read_the_rows_of_now(admin_user):
    from users.models import ReasonCode
    from users.selectors.assignment import assignable_people
    from users.selectors.compiled import CompiledQuery
    from users.selectors.reason_codes import active_reason_codes, reason_code_labels
    from users.services.factors import factor_summary

    ReasonCode.objects.create(code="ZZ_LAST", label="Last one", position=999)
    assert active_reason_codes()[-1].code == "ZZ_LAST"
    ReasonCode.objects.filter(code="ZZ_LAST").update(active=False)
    assert "ZZ_LAST" not in {code.code for code in active_reason_codes()}
    assert reason_code_labels()["ZZ_LAST"] == "Last one"  # the filter still names it

    officer = make_console_user(Role.COMPLIANCE)
    assert officer.pk in {person.pk for person in assignable_people()}
    officer.groups.clear()  # behind the services: only the read is under test
    assert officer.pk not in {person.pk for person in assignable_people()}

    # Each call runs the SQL written once with its own user id.
    assert factor_summary(officer) == factor_summary(make_user())
    compiled = CompiledQuery(lambda user_id: User.objects.filter(pk=user_id).values_list("pk"))
    assert compiled.rows(officer.pk) == [(officer.pk,)]
    assert compiled.rows(admin_user.pk) == [(admin_user.pk,)]
    with pytest.raises(ValueError, match="parameter"):
        CompiledQuery(lambda user_id: User.objects.filter(pk="U" + "1" * 26)).sql("U" + "2" * 26)
