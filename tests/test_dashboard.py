"""The onboarding dashboard (issue 14.6): its summary kept by the services and the backfill,
the selector's figures from known moves, the permission and the page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from users import services
from users.models import Status, StatusChange, StatusMoveDaily
from users.selectors.dashboard import Period, dashboard, duration_label, percentile_bucket
from users.services import move_stats

pytestmark = pytest.mark.django_db
BXL = ZoneInfo("Europe/Brussels")
S = Status
# Monday 2 November 2026, 09:00 in Brussels (UTC+1).
MONDAY = dt.datetime(2026, 11, 2, 9, 0, tzinfo=BXL)
NOVEMBER = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
URL = "/dashboard/"


def at(when: dt.datetime):
    return lambda: when


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def create(actor, when: dt.datetime, **data):
    return services.user_create(
        data={
            "first_name": "Case",
            "last_name": f"{when:%d%H%M}-{data.get('last_name', '')}",
            **{k: v for k, v in data.items() if k != "last_name"},
        },
        actor=actor,
        clock=at(when),
    )


def move(user, status, actor, when, reason="", reason_code=""):
    return services.user_change_status(
        user=user,
        status=status,
        actor=actor,
        reason=reason,
        reason_code=reason_code,
        clock=at(when),
    )


def rows() -> dict[tuple, tuple]:
    return {
        tuple(getattr(r, k) for k in StatusMoveDaily.KEY): (
            r.count,
            r.at_risk,
            r.breached,
            *(getattr(r, c) for c in StatusMoveDaily.BUCKET_COLUMNS),
        )
        for r in StatusMoveDaily.objects.all()
    }


@pytest.fixture
def moves(compliance_user, admin_user):
    """Four cases created on Monday 2 November at 09:00:
    - ann: to signature after 10 h (compliance), then active after 3 h (admin);
    - bob: to failed after 40 h (Wednesday 01:00: 40 business hours, at risk of 48);
    - cas: to signature after 5 days (Saturday 09:00: 96 business hours, breached);
    - dan: still waiting (created Monday, so breached by the next Monday)."""
    ann = create(compliance_user, MONDAY, last_name="ann")
    bob = create(compliance_user, MONDAY, last_name="bob")
    cas = create(compliance_user, MONDAY, last_name="cas")
    dan = create(compliance_user, MONDAY, last_name="dan")
    ann = move(ann, S.WAITING_FOR_SIGNATURE, compliance_user, MONDAY + hours(10))
    ann = move(ann, S.ACTIVE, admin_user, MONDAY + hours(13))
    bob = move(
        bob, S.VERIFICATION_FAILED, compliance_user, MONDAY + hours(40), reason_code="NAME_MISMATCH"
    )
    cas = move(cas, S.WAITING_FOR_SIGNATURE, compliance_user, MONDAY + hours(24 * 5))
    return {"ann": ann, "bob": bob, "cas": cas, "dan": dan}


# --- the summary, kept by the services -----------------------------------------------------------


def test_each_move_adds_to_its_day_row_with_its_duration_and_sla_mark(moves, compliance_user):
    by = compliance_user.pk
    day = dt.date(2026, 11, 2)
    summary = rows()
    buckets = StatusMoveDaily.BUCKET_COLUMNS
    # Four creations on Monday by compliance: no duration, no SLA mark.
    assert summary[(day, "", S.WAITING_FOR_VERIFICATION, by, "")][:3] == (4, 0, 0)
    # ann: 10 h in verification -> the "<= 12 h" bucket (index 4).
    ann = summary[(day, S.WAITING_FOR_VERIFICATION, S.WAITING_FOR_SIGNATURE, by, "")]
    assert ann[:3] == (1, 0, 0)
    assert ann[3 + move_stats.bucket_of(10 * 3600)] == 1 == ann[3 + 4]
    # bob: 40 business hours of 48 -> at risk; cas: 96 of 48 -> breached (Saturday's row).
    bob = summary[
        (
            dt.date(2026, 11, 4),
            S.WAITING_FOR_VERIFICATION,
            S.VERIFICATION_FAILED,
            by,
            "NAME_MISMATCH",
        )
    ]
    assert bob[:3] == (1, 1, 0)
    assert bob[3 + buckets.index("h7")] == 1  # 40 h: (36, 48]
    cas = summary[
        (dt.date(2026, 11, 7), S.WAITING_FOR_VERIFICATION, S.WAITING_FOR_SIGNATURE, by, "")
    ]
    assert cas[:3] == (1, 0, 1)
    assert cas[3 + buckets.index("h10")] == 1  # 120 h: (96, 120]


def test_staff_are_no_onboarding_cases(admin_user, compliance_user):
    """The console users made by the fixtures (and their creation rows) are not counted."""
    assert StatusMoveDaily.objects.count() == 0
    create(admin_user, MONDAY)
    assert sum(r[0] for r in rows().values()) == 1


def test_a_bulk_move_counts_every_user_moved(compliance_client, compliance_user):
    people = [create(compliance_user, MONDAY, last_name=str(i)) for i in range(3)]
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {"action": "status", "status": S.WAITING_FOR_SIGNATURE, "ids": [p.pk for p in people]},
    )
    assert response.status_code in (200, 302)
    moved = StatusMoveDaily.objects.filter(
        from_status=S.WAITING_FOR_VERIFICATION, to_status=S.WAITING_FOR_SIGNATURE
    )
    assert sum(r.count for r in moved) == 3
    assert {r.changed_by for r in moved} == {compliance_user.pk}


def test_the_backfill_rebuilds_exactly_what_the_services_kept(moves):
    kept = rows()
    StatusMoveDaily.objects.all().delete()
    counted = move_stats.rebuild()
    assert rows() == kept
    # every status row of a non-staff user: 4 creations + 4 moves
    assert counted == 8 == StatusChange.objects.exclude(user__groups__isnull=False).count()


def test_concurrent_style_upserts_add_rather_than_overwrite(compliance_user):
    move = move_stats.Move(at=MONDAY, from_status="", to_status=S.WAITING_FOR_VERIFICATION)
    move_stats.add_moves([move, move])
    move_stats.add_moves([move])
    assert StatusMoveDaily.objects.get().count == 3


# --- the selector ------------------------------------------------------------------------------


def test_funnel_counts_now_and_entries_in_the_period(moves):
    board = dashboard(NOVEMBER, now=MONDAY + hours(24 * 14))
    funnel = {step.status: step for step in board.funnel}
    # Now: dan in verification (the staff fixtures are left out), cas in signature, ann
    # active, bob failed.
    assert {s: funnel[s].now for s in S.values} == {
        S.WAITING_FOR_VERIFICATION: 1,
        S.WAITING_FOR_SIGNATURE: 1,
        S.VERIFICATION_FAILED: 1,
        S.ACTIVE: 1,
        S.INACTIVE: 0,
    }
    assert funnel[S.WAITING_FOR_VERIFICATION].entered == 4
    assert funnel[S.WAITING_FOR_SIGNATURE].entered == 2
    assert funnel[S.ACTIVE].entered == 1
    # A period before any of it: nothing entered, the users now are still counted.
    october = dashboard(Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31)))
    assert sum(step.entered for step in october.funnel) == 0
    assert sum(step.now for step in october.funnel) == 4


def test_conversions_and_their_shares(moves):
    board = dashboard(NOVEMBER)
    got = {(c.from_status, c.to_status): (c.count, c.share) for c in board.conversions}
    assert got == {
        ("", S.WAITING_FOR_VERIFICATION): (4, None),
        (S.WAITING_FOR_VERIFICATION, S.WAITING_FOR_SIGNATURE): (2, 2 / 3),
        (S.WAITING_FOR_VERIFICATION, S.VERIFICATION_FAILED): (1, 1 / 3),
        (S.WAITING_FOR_SIGNATURE, S.ACTIVE): (1, 1.0),
    }
    assert board.moves == 4


def test_median_and_p90_per_status_from_the_histogram(moves):
    times = {t.status: t for t in dashboard(NOVEMBER).time_in_status}
    verification = times[S.WAITING_FOR_VERIFICATION]
    # 10 h, 40 h, 120 h: the median is 40 h ("<= 2 d"), the p90 120 h ("<= 5 d").
    assert verification.moves == 3
    assert (verification.median_label, verification.p90_label) == ("≤ 2 d", "≤ 5 d")
    signature = times[S.WAITING_FOR_SIGNATURE]
    assert (signature.moves, signature.median_label) == (1, "≤ 4 h")
    assert times[S.INACTIVE].median is None
    assert times[S.INACTIVE].median_label == ""


@pytest.mark.parametrize(
    ("histogram", "q", "bucket"),
    [
        ([0, 0, 0], 0.5, None),
        ([1, 0, 0], 0.9, 0),
        ([5, 5, 0], 0.5, 0),  # rank 5 of 10 is the last of the first bucket
        ([5, 5, 0], 0.51, 1),
        ([1, 8, 1], 0.9, 1),
        ([1, 8, 1], 0.91, 2),
    ],
)
def test_percentile_is_the_nearest_rank_bucket(histogram, q, bucket):
    assert percentile_bucket(histogram, q) == bucket


def test_duration_labels_are_the_bucket_edges():
    assert [duration_label(i) for i in (0, 4, 5, 6, 19, 20)] == [
        "≤ 1 h",
        "≤ 12 h",
        "≤ 1 d",
        "≤ 1.5 d",
        "≤ 365 d",
        "> 365 d",
    ]


def test_sla_per_week_and_open_now(moves):
    # Tuesday 10 November 09:00: dan has waited 6 weekdays (144 business hours): breached.
    now = MONDAY + hours(24 * 8)
    board = dashboard(NOVEMBER, now=now)
    weeks = {w.week: (w.moves, w.at_risk, w.breached) for w in board.sla_weeks}
    assert weeks[dt.date(2026, 10, 26)] == (0, 0, 0)  # 1 November is a Sunday
    assert weeks[dt.date(2026, 11, 2)] == (3, 1, 1)  # ann within, bob at risk, cas breached
    assert weeks[dt.date(2026, 11, 30)] == (0, 0, 0)
    assert len(weeks) == 6
    open_now = {o.status: (o.at_risk, o.breached) for o in board.sla_open}
    assert open_now == {S.WAITING_FOR_VERIFICATION: (0, 1), S.VERIFICATION_FAILED: (0, 1)}
    # Seen at Tuesday 3 November 21:00, dan has waited 36 business hours (75 %): at risk; at
    # 20:59 not yet.
    early = dashboard(NOVEMBER, now=MONDAY + hours(36))
    assert early.sla_open[0].status == S.WAITING_FOR_VERIFICATION
    assert (early.sla_open[0].at_risk, early.sla_open[0].breached) == (1, 0)
    earlier = dashboard(NOVEMBER, now=MONDAY + hours(36) - dt.timedelta(minutes=1))
    assert (earlier.sla_open[0].at_risk, earlier.sla_open[0].breached) == (0, 0)


def test_moves_per_reviewer(moves, compliance_user, admin_user):
    reviewers = [(r.user_id, r.moves) for r in dashboard(NOVEMBER).reviewers]
    assert reviewers == [(compliance_user.pk, 3), (admin_user.pk, 1)]
    assert dashboard(NOVEMBER).reviewers[0].name == compliance_user.display_name


def test_top_reason_codes(moves, compliance_user):
    """Codes counted over the period, most used first, with their labels; a code retired
    since keeps its label."""
    from users.models import ReasonCode

    ann = moves["ann"]
    move(ann, S.INACTIVE, compliance_user, MONDAY + hours(50), reason_code="CLIENT_REQUEST")
    move(ann, S.ACTIVE, compliance_user, MONDAY + hours(51))
    move(ann, S.INACTIVE, compliance_user, MONDAY + hours(52), reason_code="CLIENT_REQUEST")
    ReasonCode.objects.filter(pk="NAME_MISMATCH").update(active=False)
    reasons = [(r.code, r.label, r.moves) for r in dashboard(NOVEMBER).reasons]
    assert reasons == [
        ("CLIENT_REQUEST", ReasonCode.objects.get(pk="CLIENT_REQUEST").label, 2),
        ("NAME_MISMATCH", ReasonCode.objects.get(pk="NAME_MISMATCH").label, 1),
    ]
    october = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert dashboard(october).reasons == []


# --- the page ------------------------------------------------------------------------------------


def test_back_office_is_refused_and_sees_no_link(back_office_client):
    assert back_office_client.get(URL).status_code == 403
    html = back_office_client.get(reverse("users:user-list")).content.decode()
    assert 'href="/dashboard/"' not in html


@pytest.mark.parametrize("who", ["compliance_client", "admin_client"])
def test_compliance_and_admins_see_it_in_the_navigation(request, who):
    client = request.getfixturevalue(who)
    html = client.get(reverse("users:user-list")).content.decode()
    assert 'href="/dashboard/"' in html
    assert client.get(URL).status_code == 200


def test_the_page_shows_the_charts_with_their_numbers_and_links(compliance_client, moves):
    response = compliance_client.get(URL, {"start": "2026-11-01", "end": "2026-11-30"})
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["board"].period == NOVEMBER
    for heading in (
        "Funnel",
        "Conversions",
        "Time in status",
        "SLA",
        "Moves per reviewer",
        "Top reason codes",
    ):
        assert f">{heading}</h2>" in html
    assert html.count('role="group" aria-labelledby="chart-') == 6
    assert 'href="/users/?status_reason_code=NAME_MISMATCH"' in html
    assert 'aria-label="Waiting for signature: now: 1"' in html
    assert 'href="/users/?status=WAITING_FOR_SIGNATURE"' in html
    assert "/board/?status=WAITING_FOR_VERIFICATION" in html
    assert "≤ 2 d" in html
    assert "48 business hours in “waiting for verification”" in html
    assert "style=" not in html
    assert "<script>" not in html


@pytest.mark.parametrize(("days", "expected"), [("7", 7), ("90", 90), ("", 30), (None, 30)])
def test_quick_periods(compliance_client, days, expected):
    params = {} if days is None else {"days": days}
    response = compliance_client.get(URL, params)
    assert response.status_code == 200
    assert response.context["board"].period.days == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"days": "8"}, "Choose the last 7, 30, 90 or 365 days."),
        ({"days": "x"}, "Choose the last 7, 30, 90 or 365 days."),
        ({"start": "2026-13-01", "end": "2026-12-01"}, "Type the first day as YYYY-MM-DD."),
        ({"start": "2026-11-01", "end": "yesterday"}, "Type the last day as YYYY-MM-DD."),
        ({"start": "2026-11-01"}, "Give both the first and the last day, or neither."),
        ({"start": "2026-11-30", "end": "2026-11-01"}, "The last day is before the first."),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "Choose at most 366 days."),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "Choose a first day from 1900 on."),
    ],
)
def test_a_bad_period_is_refused_with_its_reason(compliance_client, params, message):
    response = compliance_client.get(URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["board"] is None


def test_the_rebuild_command_recomputes_the_summary(moves):
    from io import StringIO

    from django.core.management import call_command

    kept = rows()
    StatusMoveDaily.objects.update(count=0)  # a summary gone wrong
    out = StringIO()
    call_command("rebuild_move_stats", stdout=out)
    assert out.getvalue() == "Counted 8 status moves into the dashboard's summary.\n"
    assert rows() == kept


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_moves_at_once_both_count():
    """Two transactions add to the same summary row at once: the second waits on the first's
    row and then adds to it (ON CONFLICT DO UPDATE); neither count is lost."""
    import threading
    import time

    from django.db import connection, transaction

    one = move_stats.Move(
        at=MONDAY + hours(2),
        from_status=S.WAITING_FOR_VERIFICATION,
        to_status=S.WAITING_FOR_SIGNATURE,
        since=MONDAY,
    )
    first_written, commit_first = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def first():
        try:
            with transaction.atomic():
                move_stats.add_moves([one])
                first_written.set()
                assert commit_first.wait(timeout=20)
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    def second():
        try:
            with transaction.atomic():
                move_stats.add_moves([one])
        except Exception as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_written.wait(timeout=20)
    threads[1].start()
    # The second transaction is waiting on the first one's row lock before the first commits.
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
    commit_first.set()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    row = StatusMoveDaily.objects.get()
    assert (row.count, row.h1) == (2, 2)  # two hours in verification: bucket (1, 2]
