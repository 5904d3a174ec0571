"""Assignment on the screens (issue 14.1) and the board's behaviour (14.5): the detail's
Assignment region, the Mine / Unassigned filters of the list, board and export, the workload
strip, a moved card kept in sight."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from users.models import CaseAssignment, Role, Status, User
from users.services import assignment, user_change_status

BOARD = reverse("users:board")
LIST = reverse("users:user-list")
EXPORT = reverse("users:user-export")


def assign_url(user: User) -> str:
    return reverse("users:user-assign", args=[user.pk])


def detail_url(user: User) -> str:
    return reverse("users:user-detail", args=[user.pk])


HTMX = {"HX-Request": "true", "HX-Target": "assignment"}


@pytest.fixture
def ann(db):
    return make_console_user(Role.COMPLIANCE, first_name="Ann", last_name="Example")


@pytest.fixture
def cases(admin_user):
    return [make_user(actor=admin_user, first_name="Case", last_name=f"N{n}") for n in range(3)]


def assignee_of(user: User) -> str | None:
    return User.objects.get(pk=user.pk).assignee_id


# --- the detail's Assignment region -------------------------------------------------------------


def test_detail_offers_assign_to_me_and_claims(compliance_client, compliance_user, user):
    page = compliance_client.get(detail_url(user)).content.decode()
    assert 'id="assignment"' in page
    assert "Unassigned" in page
    assert "Assign to me" in page
    # Compliance assigns to themselves only: no "Assign to" select.
    assert 'id="assign-to"' not in page
    response = compliance_client.post(
        assign_url(user), {"action": "claim", "expected_assignee": ""}, headers=HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<section")
    assert f"Assigned to {compliance_user.display_name}." in html
    assert "refresh-history" in response["HX-Trigger"]
    assert assignee_of(user) == compliance_user.pk
    # The timeline says so.
    history = compliance_client.get(
        detail_url(user), headers={"HX-Request": "true", "HX-Target": "history"}
    ).content.decode()
    assert f"Assigned to <strong>{compliance_user.display_name}</strong>" in history
    assert f"by {compliance_user.display_name}" in history


def test_claim_without_javascript_redirects_with_a_message(
    compliance_client, compliance_user, user
):
    response = compliance_client.post(
        assign_url(user), {"action": "claim", "expected_assignee": ""}, follow=True
    )
    assert response.redirect_chain[-1][0] == detail_url(user)
    assert f"Assigned to {compliance_user.display_name}." in response.content.decode()
    assert assignee_of(user) == compliance_user.pk


def test_a_case_taken_meanwhile_names_who_has_it(compliance_client, ann, user):
    assignment.case_claim(user=user, actor=ann)
    response = compliance_client.post(
        assign_url(user), {"action": "claim", "expected_assignee": ""}, headers=HTMX
    )
    assert response.status_code == 200
    assert "Already assigned to Ann Example." in response.content.decode()
    assert assignee_of(user) == ann.pk
    assert CaseAssignment.objects.filter(user=user).count() == 1


def test_compliance_may_not_take_over_or_assign_others(compliance_client, ann, user):
    assignment.case_claim(user=user, actor=ann)
    page = compliance_client.get(detail_url(user)).content.decode()
    assert "Take over" not in page
    assert ">Unassign<" not in page
    for data in (
        {"action": "claim", "expected_assignee": ann.pk},
        {"action": "unassign", "expected_assignee": ann.pk},
    ):
        html = compliance_client.post(assign_url(user), data, headers=HTMX).content.decode()
        assert "only an admin may take it over" in html
    other = make_user()
    html = compliance_client.post(
        assign_url(other), {"action": "assign", "assignee": ann.pk, "expected_assignee": ""}
    ).content.decode()
    assert "Only an admin may assign a case to someone else." in html
    assert assignee_of(user) == ann.pk
    assert assignee_of(other) is None


def test_back_office_may_not_assign(back_office_client, user):
    page = back_office_client.get(detail_url(user)).content.decode()
    assert "Assign to me" not in page
    response = back_office_client.post(assign_url(user), {"action": "claim"})
    assert response.status_code == 403
    assert assignee_of(user) is None


def test_admin_assigns_to_someone_takes_over_and_unassigns(admin_client, ann, user):
    page = admin_client.get(detail_url(user)).content.decode()
    assert 'id="assign-to"' in page
    assert f'<option value="{ann.pk}">Ann Example</option>' in page
    admin_client.post(
        assign_url(user), {"action": "assign", "assignee": ann.pk, "expected_assignee": ""}
    )
    assert assignee_of(user) == ann.pk
    page = admin_client.get(detail_url(user)).content.decode()
    assert "Take over" in page
    admin_client.post(assign_url(user), {"action": "unassign", "expected_assignee": ann.pk})
    assert assignee_of(user) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "steal"}, "Choose “Assign to me”, “Unassign” or a person to assign."),
        ({"action": "claim", "expected_assignee": "nobody"}, "The page sent no valid assignee"),
        ({"action": "assign", "assignee": "U123"}, "Choose the person to assign the case to."),
        ({"action": "assign", "assignee": ""}, "Choose the person to assign the case to."),
        ({"action": "unassign", "expected_assignee": ""}, "Already unassigned."),
    ],
)
def test_bad_input_is_a_clear_message_and_changes_nothing(admin_client, user, data, message):
    response = admin_client.post(assign_url(user), data, headers=HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert assignee_of(user) is None
    assert not CaseAssignment.objects.exists()


# --- Mine / Unassigned on the list, the board and the export ------------------------------------


def test_list_filters_mine_unassigned_and_a_person(compliance_client, compliance_user, ann, cases):
    mine, anns, free = cases
    assignment.case_claim(user=mine, actor=compliance_user)
    assignment.case_claim(user=anns, actor=ann)

    def shown(**params) -> set[str]:
        response = compliance_client.get(LIST, params)
        assert response.status_code == 200
        return {row.pk for row in response.context["users"]}

    assert shown(assignee="me") == {mine.pk}
    assert free.pk in shown(assignee="none")
    assert not {mine.pk, anns.pk} & shown(assignee="none")
    assert shown(assignee=ann.pk) == {anns.pk}
    # The row shows its assignee; the filter keeps its place in links (sort, pages).
    response = compliance_client.get(LIST, {"assignee": "me", "sort": "name"})
    html = response.content.decode()
    assert f'<td class="assignee">{compliance_user.display_name}</td>' in html
    assert "assignee=me" in response.context["sort_links"]["email"]["query"]
    assert '<option value="me" selected>Mine</option>' in html


def test_a_bad_assignee_value_is_refused_clearly(compliance_client, cases):
    response = compliance_client.get(LIST, {"assignee": "everyone"})
    assert response.status_code == 200
    assert response.context["users"] == []
    assert "Assignee is “me”, “none” or a user id." in response.content.decode()


def test_export_follows_the_assignee_filter(compliance_client, compliance_user, cases):
    assignment.case_claim(user=cases[0], actor=compliance_user)
    response = compliance_client.get(EXPORT, {"assignee": "me"})
    body = b"".join(response.streaming_content).decode()
    assert cases[0].pk in body
    assert cases[1].pk not in body


def test_board_mine_unassigned_and_the_workload_strip(
    compliance_client, compliance_user, ann, cases
):
    mine, anns, free = cases
    assignment.case_claim(user=mine, actor=compliance_user)
    assignment.case_claim(user=anns, actor=ann)
    response = compliance_client.get(BOARD, {"assignee": "me"})
    waiting = next(
        c for c in response.context["columns"] if c["status"] == Status.WAITING_FOR_VERIFICATION
    )
    assert [card.pk for card in waiting["cards"]] == [mine.pk]
    assert waiting["cards"][0].assignee == compliance_user.display_name
    html = response.content.decode()
    assert f"Assigned to {compliance_user.display_name}" in html
    # The strip counts every assignee's open cases (not only the filtered one's), each a link.
    strip = {entry["name"]: entry for entry in response.context["workload"]}
    assert strip[compliance_user.display_name]["count"] == "1"
    assert strip[compliance_user.display_name]["current"]
    assert strip["Ann Example"]["query"] == f"assignee={ann.pk}"
    assert strip["Unassigned"]["query"] == "assignee=none"
    assert int(strip["Unassigned"]["count"]) >= 1
    unassigned = compliance_client.get(BOARD, {"assignee": "none"})
    shown = {card.pk for c in unassigned.context["columns"] for card in c["cards"]}
    assert free.pk in shown
    assert not {mine.pk, anns.pk} & shown


def test_closed_cases_are_no_workload(compliance_client, compliance_user, admin_user, cases):
    case = cases[0]
    assignment.case_claim(user=case, actor=compliance_user)
    user_change_status(user=case, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    user_change_status(user=case, status=Status.ACTIVE, actor=admin_user)
    response = compliance_client.get(BOARD)
    names = [entry["name"] for entry in response.context["workload"]]
    assert compliance_user.display_name not in names


# --- a moved card stays in sight ---------------------------------------------------------------


def test_a_moved_card_stays_first_in_its_column_highlighted(client, admin_user):
    """25 cards already wait longer in the target column: the moved one, newest there, would
    be past them; it comes first, marked, and stays pinned through the next move."""
    for n in range(26):
        user = make_user(actor=admin_user, first_name="Older", last_name=f"S{n}")
        user_change_status(user=user, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    first, second = (make_user(actor=admin_user, first_name="Mover", last_name=n) for n in "AB")
    mover = make_console_user(Role.COMPLIANCE)
    sign_in(client, mover)
    headers = {"HX-Request": "true", "HX-Target": "board"}
    response = client.post(
        reverse("users:board-move", args=[first.pk]),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": first.version},
        headers=headers,
    )
    target = next(
        c for c in response.context["columns"] if c["status"] == Status.WAITING_FOR_SIGNATURE
    )
    assert target["cards"][0].pk == first.pk
    assert target["cards"][0].moved
    assert not target["cards"][1].moved
    html = response.content.decode()
    assert "bcard is-moved" in html
    assert f'hx-vals=\'{{"pinned": "{first.pk}"}}\'' in html
    # The next move carries the first (hx-vals): both stay pinned, the newest first.
    response = client.post(
        reverse("users:board-move", args=[second.pk]),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": second.version, "pinned": first.pk},
        headers=headers,
    )
    target = next(
        c for c in response.context["columns"] if c["status"] == Status.WAITING_FOR_SIGNATURE
    )
    assert [card.pk for card in target["cards"][:2]] == [second.pk, first.pk]
    assert all(card.moved for card in target["cards"][:2])
    assert len({card.pk for card in target["cards"]}) == len(target["cards"])
    # A reload forgets them: the board in its own order.
    reloaded = client.get(BOARD)
    target = next(
        c for c in reloaded.context["columns"] if c["status"] == Status.WAITING_FOR_SIGNATURE
    )
    assert not any(card.moved for card in target["cards"])
    assert first.pk not in [card.pk for card in target["cards"]]


def test_pinned_ids_keep_only_user_ids(db):
    from users.views.board import PINNED_MAX, pinned_ids

    good = "U" + "0" * 26
    assert pinned_ids(f"{good} junk {good} <script>") == [good]
    many = " ".join(f"U{n:026d}" for n in range(PINNED_MAX + 5))
    assert len(pinned_ids(many)) == PINNED_MAX


def test_the_strip_counts_the_unassigned_from_the_columns(
    compliance_client, compliance_user, admin_user, cases
):
    """Unfiltered, the unassigned are the open column counts less the assigned (no count of
    every open case); closed cases and staff are in neither."""
    assignment.case_claim(user=cases[0], actor=compliance_user)
    closed = make_user(actor=admin_user)
    user_change_status(user=closed, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    user_change_status(user=closed, status=Status.ACTIVE, actor=admin_user)
    for path in ({}, {"residency_country": ""}):
        response = compliance_client.get(BOARD, path)
        strip = [(entry["name"], entry["count"]) for entry in response.context["workload"]]
        assert strip == [(compliance_user.display_name, "1"), ("Unassigned", "2")]
    # The same numbers when the board is itself filtered on an assignee.
    response = compliance_client.get(BOARD, {"assignee": "none"})
    strip = [(entry["name"], entry["count"]) for entry in response.context["workload"]]
    assert strip == [(compliance_user.display_name, "1"), ("Unassigned", "2")]


# --- "Assign to me" on a board card -------------------------------------------------------------


def test_assign_to_me_on_a_card(compliance_client, compliance_user, ann, cases):
    free, taken = cases[0], cases[1]
    assignment.case_claim(user=taken, actor=ann)
    page = compliance_client.get(BOARD).content.decode()
    free_card = page[page.index(f'data-card="{free.pk}"') :]
    free_card = free_card[: free_card.index("</li>")]
    assert reverse("users:board-assign", args=[free.pk]) in free_card
    taken_card = page[page.index(f'data-card="{taken.pk}"') :]
    assert (
        reverse("users:board-assign", args=[taken.pk])
        not in taken_card[: taken_card.index("</li>")]
    )

    headers = {"HX-Request": "true", "HX-Target": "board"}
    response = compliance_client.post(
        reverse("users:board-assign", args=[free.pk]), {"query": ""}, headers=headers
    )
    assert response.status_code == 200
    assert response.context["board_message"] == f"{free.display_name} assigned to you."
    card = next(
        card for c in response.context["columns"] for card in c["cards"] if card.pk == free.pk
    )
    assert card.assignee == compliance_user.display_name
    assert assignee_of(free) == compliance_user.pk

    # Taken meanwhile: refused in the card, naming who has it.
    response = compliance_client.post(
        reverse("users:board-assign", args=[taken.pk]), {"query": ""}, headers=headers
    )
    assert response.context["card_errors"] == ["Already assigned to Ann Example."]
    assert response.context["failed_card"] == taken.pk
    assert assignee_of(taken) == ann.pk


def test_assign_to_me_on_a_card_without_javascript(compliance_client, compliance_user, cases):
    response = compliance_client.post(
        reverse("users:board-assign", args=[cases[0].pk]),
        {"query": "residency_country=BE"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{BOARD}?residency_country=BE"
    assert "assigned to you." in response.content.decode()
    assert assignee_of(cases[0]) == compliance_user.pk


def test_back_office_sees_no_claim_and_is_refused(back_office_client, cases):
    assert "board/assign/" not in back_office_client.get(BOARD).content.decode()
    response = back_office_client.post(reverse("users:board-assign", args=[cases[0].pk]))
    assert response.status_code == 403
    assert assignee_of(cases[0]) is None


def test_loading_more_of_one_column_does_not_count_the_strip(compliance_client, compliance_user):
    # The strip of open cases per assignee is in the board region, not in a column's "Load
    # more" answer: that answer runs no grouped count for it.
    make_user(actor=compliance_user)
    target = f"column-{Status.WAITING_FOR_VERIFICATION}"
    column = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}

    def strip_counted(**headers) -> bool:
        with CaptureQueriesContext(connection) as captured:
            assert compliance_client.get(BOARD, **headers).status_code == 200
        grouped = [q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"]]
        return any('AS "assignee__first_name"' in sql for sql in grouped)

    assert not strip_counted(**column)
    assert strip_counted()
