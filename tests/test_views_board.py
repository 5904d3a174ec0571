"""The status board: full page and fragments, counts, SLA, load more, moves and refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_console_user, make_user, sign_in
from users import services, sla
from users.models import FeatureFlag, Role, Status, StatusChange, User
from users.views import board as board_views

BOARD = reverse("users:board")


def move_url(user: User) -> str:
    return reverse("users:board-move", kwargs={"pk": user.pk})


@pytest.fixture
def waiting(admin_user) -> User:
    return make_user(
        actor=admin_user,
        first_name="Wanda",
        last_name="Waiting",
        residency_country="BE",
        feature_flags=[FeatureFlag.SELF_INVESTOR],
    )


def column(response, status: str) -> dict:
    return next(c for c in response.context["columns"] if c["status"] == status)


def test_full_page_has_a_column_per_status(back_office_client, waiting):
    response = back_office_client.get(BOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "{#" not in html
    assert "{%" not in html
    for status in Status:
        assert f'id="column-{status.value}"' in html
        assert status.label in html
    waiting_column = column(response, Status.WAITING_FOR_VERIFICATION)
    assert waiting.pk in [card.pk for card in waiting_column["cards"]]
    assert "Wanda Waiting" in html
    assert "Self Investor" in html
    # Back office sees the board but cannot move cards.
    assert "data-move-form" not in html
    assert 'draggable="true"' not in html
    assert "HX-Request" in response["Vary"]


def test_board_fragment_and_column_fragment(compliance_client, waiting):
    fragment = compliance_client.get(
        BOARD, {"q": "wanda"}, headers={"HX-Request": "true", "HX-Target": "board"}
    )
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="board"')
    assert "<html" not in html
    assert fragment["HX-Push-Url"] == f"{BOARD}?q=wanda"

    one = compliance_client.get(
        BOARD,
        {"limit_ACTIVE": "50"},
        headers={"HX-Request": "true", "HX-Target": f"column-{Status.ACTIVE}"},
    )
    html = one.content.decode()
    assert html.lstrip().startswith(f'<section id="column-{Status.ACTIVE}"')
    assert "column-WAITING_FOR_VERIFICATION" not in html


def test_list_filters_apply_to_the_board(back_office_client, waiting, admin_user):
    make_user(actor=admin_user, first_name="Nico", last_name="Dutch", residency_country="NL")
    response = back_office_client.get(BOARD, {"residency_country": "BE"})
    cards = column(response, Status.WAITING_FOR_VERIFICATION)["cards"]
    assert [c.display_name for c in cards] == ["Wanda Waiting"]
    assert column(response, Status.WAITING_FOR_VERIFICATION)["count"] == 1
    searched = back_office_client.get(BOARD, {"q": "dutch"})
    assert [c.display_name for c in column(searched, Status.WAITING_FOR_VERIFICATION)["cards"]] == [
        "Nico Dutch"
    ]


def test_longest_waiting_first_and_sla_marks(back_office_client, waiting, admin_user, settings):
    """Business hours: a week is 120 of them; 40 of 48 is at risk (past 75 %)."""
    settings.SLA_TARGET_HOURS = {Status.WAITING_FOR_VERIFICATION: 48}
    now = timezone.now()
    old = make_user(actor=admin_user, first_name="Olga", last_name="Overdue")
    risky = make_user(actor=admin_user, first_name="Rita", last_name="Risky")
    User.objects.filter(pk=old.pk).update(status_changed_at=now - dt.timedelta(days=7))
    User.objects.filter(pk=risky.pk).update(status_changed_at=sla.back(now, hours=40))
    response = back_office_client.get(BOARD, {"q": "a"})
    cards = column(response, Status.WAITING_FOR_VERIFICATION)["cards"]
    assert cards[0].pk == old.pk
    assert cards[0].sla == "breached"
    assert next(c for c in cards if c.pk == risky.pk).sla == "at_risk"
    assert next(c for c in cards if c.pk == waiting.pk).sla == ""
    html = response.content.decode()
    assert "Waiting for verification 48 h" in html
    assert "SLA breached" in html
    assert "SLA at risk" in html


def test_staff_are_not_onboarding_cases(back_office_client, back_office_user, admin_user, waiting):
    """Console staff (anyone with a role) stay off the board and out of its counts."""
    response = back_office_client.get(BOARD)
    col = column(response, Status.WAITING_FOR_VERIFICATION)
    assert [c.pk for c in col["cards"]] == [waiting.pk]
    assert col["count"] == 1
    assert User.objects.filter(status=Status.WAITING_FOR_VERIFICATION).count() == 3


def test_load_more(back_office_client, admin_user, monkeypatch):
    monkeypatch.setattr(board_views, "COLUMN_SIZE", 2)
    for n in range(5):
        make_user(actor=admin_user, first_name="Many", last_name=f"Person{n}")
    first = back_office_client.get(BOARD, {"q": "many"})
    col = column(first, Status.WAITING_FOR_VERIFICATION)
    assert len(col["cards"]) == 2
    assert col["remaining"] == 3
    assert col["more_query"] == "q=many&limit_WAITING_FOR_VERIFICATION=4"
    more = back_office_client.get(BOARD, {"q": "many", "limit_WAITING_FOR_VERIFICATION": "4"})
    assert len(column(more, Status.WAITING_FOR_VERIFICATION)["cards"]) == 4
    last = back_office_client.get(BOARD, {"q": "many", "limit_WAITING_FOR_VERIFICATION": "6"})
    assert column(last, Status.WAITING_FOR_VERIFICATION)["more_query"] is None
    # Nonsense limits fall back to the default instead of failing.
    assert back_office_client.get(BOARD, {"limit_ACTIVE": "lots"}).status_code == 200


def test_recommended_moves_first_and_off_flow_only_for_those_allowed(compliance_client, waiting):
    html = compliance_client.get(BOARD).content.decode()
    start = html.index(f'data-card="{waiting.pk}"')
    menu = html[html.index("<select", start) : html.index("</select>", start)]
    assert menu.index("Recommended") < menu.index("Off flow")
    assert menu.index("Waiting for signature") < menu.index("Off flow")
    assert f'data-recommended="{Status.WAITING_FOR_SIGNATURE} {Status.VERIFICATION_FAILED}"' in html
    assert 'id="reason-dialog"' in html


def test_move_along_the_flow_returns_the_board(compliance_client, waiting):
    response = compliance_client.post(
        move_url(waiting),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": waiting.version, "query": "q=wanda"},
        headers={"HX-Request": "true", "HX-Target": "board"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board"')
    assert "Wanda Waiting moved to Waiting for signature." in html
    assert "user-moved" in response["HX-Trigger"]
    assert column(response, Status.WAITING_FOR_SIGNATURE)["count"] == 1
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_SIGNATURE
    change = StatusChange.objects.get(user=waiting, to_status=Status.WAITING_FOR_SIGNATURE)
    assert not change.off_flow


def test_off_flow_move_needs_a_reason_code(compliance_client, waiting):
    refused = compliance_client.post(
        move_url(waiting),
        {"status": Status.ACTIVE, "version": waiting.version, "reason": "Checked in branch"},
        headers={"HX-Request": "true", "HX-Target": "board"},
    )
    assert refused.status_code == 200
    assert refused.context["board_errors"] == [
        f"{waiting.display_name}: A move from Waiting for verification to Active is off the "
        "recommended flow: choose a reason code."
    ]
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION

    compliance_client.post(
        move_url(waiting),
        {
            "status": Status.ACTIVE,
            "version": waiting.version,
            "reason": "Checked in branch",
            "reason_code": "SIGNED_ON_PAPER",
        },
        headers={"HX-Request": "true", "HX-Target": "board"},
    )
    waiting.refresh_from_db()
    assert waiting.status == Status.ACTIVE
    change = StatusChange.objects.get(user=waiting, to_status=Status.ACTIVE)
    assert change.off_flow
    assert (change.reason, change.reason_code_id) == ("Checked in branch", "SIGNED_ON_PAPER")


def test_stale_card_is_refused(compliance_client, waiting, admin_user):
    stale_version = waiting.version
    services.user_update(user=waiting, data={"first_name": "Wendy"}, actor=admin_user)
    response = compliance_client.post(
        move_url(waiting),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": stale_version},
        headers={"HX-Request": "true", "HX-Target": "board"},
    )
    assert response.context["board_errors"]
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION


def test_move_without_javascript_redirects_back_with_filters(compliance_client, waiting):
    response = compliance_client.post(
        move_url(waiting),
        {"status": Status.WAITING_FOR_SIGNATURE, "query": "residency_country=BE"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{BOARD}?residency_country=BE"
    assert "moved to Waiting for signature" in response.content.decode()


def test_unknown_status_is_a_clear_error(compliance_client, waiting):
    response = compliance_client.post(
        move_url(waiting), {"status": "ON_THE_MOON"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.context["board_errors"]
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION


def test_moves_need_permission(back_office_client, waiting):
    response = back_office_client.post(move_url(waiting), {"status": Status.WAITING_FOR_SIGNATURE})
    assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION


def test_off_flow_needs_its_own_permission(client, waiting):
    mover = make_console_user(Role.COMPLIANCE)
    mover.groups.get().permissions.remove(Permission.objects.get(codename="change_status_off_flow"))
    sign_in(client, mover)
    response = client.post(move_url(waiting), {"status": Status.ACTIVE, "reason": "because"})
    assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING_FOR_VERIFICATION


def test_a_move_to_the_current_status_is_refused_by_the_service(client, waiting):
    """As on the detail page and in bulk: never offered, and refused as no move at all."""
    mover = make_console_user(Role.COMPLIANCE)
    mover.groups.get().permissions.remove(Permission.objects.get(codename="change_status_off_flow"))
    sign_in(client, mover)
    before = waiting.version
    response = client.post(
        move_url(waiting),
        {"status": waiting.status, "version": before},
        headers={"HX-Request": "true", "HX-Target": "board"},
    )
    assert response.status_code == 200
    assert response.context["board_errors"] == [
        "Wanda Waiting: The user is already waiting for verification."
    ]
    waiting.refresh_from_db()
    assert waiting.version == before


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "< 1 min"),
        (0, "< 1 min"),
        (59, "< 1 min"),
        (60, "1 min"),
        (3 * 3600 + 5 * 60 + 7, "3 h 5 min"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
        (3 * 86400 + 5 * 60, "3 d"),
        (400 * 86400, "1 y 35 d"),
        (2 * 365 * 86400 + 5 * 3600, "2 y"),
    ],
)
def test_time_in_status_two_largest_adjacent_units(seconds, shown):
    assert board_views.time_in_status(seconds) == shown


def test_cards_show_time_in_status_and_flags(compliance_client, waiting):
    User.objects.filter(pk=waiting.pk).update(
        status_changed_at=timezone.now() - dt.timedelta(days=2, hours=5, minutes=1)
    )
    html = compliance_client.get(BOARD).content.decode()
    card = html[html.index(f'data-card="{waiting.pk}"') :]
    card = card[: card.index("</li>")]
    assert ">2 d 5 h</span>" in card
    assert '<span class="flag flag-SELF_INVESTOR">Self Investor</span>' in card
    assert f'href="/users/{waiting.pk}/"' in card
    assert f'action="/board/move/{waiting.pk}/"' in card


def test_a_longer_column_stays_long_through_load_more_moves_and_reloads(
    compliance_client, admin_user, monkeypatch
):
    monkeypatch.setattr(board_views, "COLUMN_SIZE", 2)
    many = [make_user(actor=admin_user, first_name="Many", last_name=f"P{n}") for n in range(5)]
    waiting = Status.WAITING_FOR_VERIFICATION
    # "Load more" on a column: the address bar gets its new length.
    more = compliance_client.get(
        BOARD,
        {"q": "many", f"limit_{waiting}": "4"},
        headers={"HX-Request": "true", "HX-Target": f"column-{waiting}"},
    )
    assert more["HX-Push-Url"] == f"{BOARD}?q=many&limit_{waiting}=4"
    assert len(column(more, waiting)["cards"]) == 4
    # The next "Load more" keeps what the other columns had.
    assert column(more, waiting)["more_query"] == f"q=many&limit_{waiting}=6"

    # A move made with htmx comes back to the board of the address bar, column still long.
    moved = compliance_client.post(
        move_url(many[0]),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": many[0].version, "query": "q=many"},
        headers={
            "HX-Request": "true",
            "HX-Target": "board",
            "HX-Current-URL": f"http://testserver{BOARD}?q=many&limit_{waiting}=4",
        },
    )
    assert moved.status_code == 200
    assert len(column(moved, waiting)["cards"]) == 4  # 4 of the 4 still waiting
    assert column(moved, Status.WAITING_FOR_SIGNATURE)["count"] == 1

    # Without JavaScript the page's own forms carry the length, and the redirect keeps it.
    page = compliance_client.get(BOARD, {"q": "many", f"limit_{waiting}": "4"})
    assert f'name="query" value="q=many&amp;limit_{waiting}=4"' in page.content.decode()
    plain = compliance_client.post(
        move_url(many[1]),
        {
            "status": Status.WAITING_FOR_SIGNATURE,
            "version": many[1].version,
            "query": f"q=many&limit_{waiting}=4",
        },
    )
    assert plain.status_code == 302
    assert plain["Location"] == f"{BOARD}?q=many&limit_{waiting}=4"


def test_a_move_from_another_page_ignores_its_address(compliance_client, waiting):
    # HX-Current-URL is only read when it is the board itself.
    response = compliance_client.post(
        move_url(waiting),
        {"status": Status.WAITING_FOR_SIGNATURE, "version": waiting.version, "query": "q=wanda"},
        headers={
            "HX-Request": "true",
            "HX-Target": "board",
            "HX-Current-URL": "http://testserver/users/?q=nobody",
        },
    )
    assert response.context["state"].q == "wanda"
