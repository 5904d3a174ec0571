"""The onboarding SLA in business hours (issue 14.4): weekdays only, in the console's time zone,
through weekends and daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from console.settings import sla_targets
from users import sla
from users.models import Status

BRUSSELS = ZoneInfo("Europe/Brussels")
HOUR = 3600


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BRUSSELS)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-06-01 10:00", "2026-06-01 14:00", 4),  # a Monday afternoon
        ("2026-06-05 12:00", "2026-06-08 12:00", 24),  # Friday noon to Monday noon
        ("2026-06-06 09:00", "2026-06-07 18:00", 0),  # a weekend only
        ("2026-06-01 00:00", "2026-06-15 00:00", 240),  # two whole weeks
        ("2026-06-08 12:00", "2026-06-05 12:00", 0),  # the end before the start
        # The spring change (Sunday 29 March, 02:00 -> 03:00) and the autumn one (Sunday 25
        # October): on the weekend, so the business hours around them do not move, though 71
        # and 73 hours really passed.
        ("2026-03-27 12:00", "2026-03-30 12:00", 24),
        ("2026-10-23 12:00", "2026-10-26 12:00", 24),
    ],
)
def test_business_hours(start, end, hours):
    assert sla.business_seconds(at(start), at(end), tz=BRUSSELS) == hours * HOUR


def test_a_weekday_that_changes_the_clock_counts_its_real_hours():
    """Where the clock changes on a weekday (Cairo: Friday 24 April 2026, 00:00 -> 01:00), that
    day has 23 business hours: real time, never the difference of two wall clocks."""
    cairo = ZoneInfo("Africa/Cairo")
    friday = dt.datetime(2026, 4, 24, 0, 0, tzinfo=cairo)
    saturday = dt.datetime(2026, 4, 25, 0, 0, tzinfo=cairo)
    assert friday.weekday() == 4
    assert sla.business_seconds(friday, saturday, tz=cairo) == 23 * HOUR


def test_the_count_stops_at_its_cap():
    start, end = at("2020-01-01 00:00"), at("2026-01-01 00:00")
    assert sla.business_seconds(start, end, tz=BRUSSELS, cap=48 * HOUR) == 48 * HOUR


def test_back_is_the_inverse_of_the_count():
    end = at("2026-06-08 10:00")  # a Monday morning
    start = sla.back(end, hours=40, tz=BRUSSELS)
    assert start == at("2026-06-04 18:00")  # Monday's 10 h, Friday's 24, Thursday's last 6
    assert sla.business_seconds(start, end, tz=BRUSSELS) == 40 * HOUR


def test_states(settings):
    settings.SLA_TARGET_HOURS = {Status.WAITING_FOR_VERIFICATION: 48}
    settings.TIME_ZONE = "Europe/Brussels"
    now = at("2026-06-12 12:00")  # a Friday
    wfv = Status.WAITING_FOR_VERIFICATION
    assert sla.state(wfv, sla.back(now, hours=10), now) == ""
    assert sla.state(wfv, sla.back(now, hours=36), now) == sla.AT_RISK
    assert sla.state(wfv, sla.back(now, hours=48), now) == sla.BREACHED
    assert sla.state(Status.WAITING_FOR_SIGNATURE, sla.back(now, hours=500), now) == ""


def test_the_setting_is_read_and_checked(settings):
    assert sla_targets("WAITING_FOR_VERIFICATION=48, verification_failed=24.5") == {
        "WAITING_FOR_VERIFICATION": 48.0,
        "VERIFICATION_FAILED": 24.5,
    }
    assert sla_targets("") == {}
    for bad in ("WAITING_FOR_VERIFICATION", "X=abc", "=4", "X=0", "X=-3"):
        with pytest.raises(ImproperlyConfigured, match="is not STATUS=HOURS"):
            sla_targets(bad)
    settings.SLA_TARGET_HOURS = {"WAITING_FOR_VERIFICATON": 48}
    errors = sla.check_targets()
    assert [e.id for e in errors] == ["users.E001"]
    assert "WAITING_FOR_VERIFICATON" in errors[0].msg
