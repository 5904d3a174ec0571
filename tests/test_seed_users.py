"""`seed_users`: what it loads is what the services would have written, and passes every rule."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from schwifty import IBAN

from console.devtools.management.commands import seed_users
from users import validators
from users.models import (
    USER_ID_REGEX,
    EmploymentStatus,
    FeatureFlagGrant,
    IncomeRange,
    Status,
    StatusChange,
    User,
    UserVersion,
    is_recommended_move,
)

COUNT = 200


def seed(count: int = COUNT, **options) -> str:
    out = StringIO()
    call_command("seed_users", count=count, batch=64, seed=7, until=dt.date(2026, 6, 1), stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> list[User]:
    seed()
    return list(User.objects.prefetch_related("flag_grants"))


def test_counts_and_progress(seeded):
    assert len(seeded) == COUNT
    out = seed(10)
    assert "users/s" in out
    assert "ETA" in out
    assert "Done: 10 users" in out
    assert User.objects.count() == COUNT + 10
    # Every user has a version 1 and a first status row; moves add more.
    assert UserVersion.objects.filter(version=1).count() == COUNT + 10
    assert StatusChange.objects.filter(version=1, from_status="").count() == COUNT + 10
    assert UserVersion.objects.count() > COUNT + 10


def test_distributions_are_realistic(seeded):
    statuses = Counter(user.status for user in seeded)
    assert statuses.most_common(1)[0][0] == Status.ACTIVE
    assert statuses[Status.ACTIVE] > COUNT / 2
    countries = Counter(user.residency_country for user in seeded)
    assert len(countries) >= 6
    assert countries.most_common(1)[0][0] == "BE"
    created = sorted(user.creation_datetime for user in seeded)
    assert created[-1] - created[0] > dt.timedelta(days=3 * 365)
    assert created[-1] <= dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert sum(user.external_id is not None for user in seeded) > COUNT / 4
    assert sum(user.email is None for user in seeded) < COUNT / 10
    assert FeatureFlagGrant.objects.exists()
    assert len({user.language for user in seeded}) >= 5


def test_values_pass_the_validators(seeded):
    for user in seeded:
        assert User.objects.filter(pk=user.pk, id__regex=USER_ID_REGEX).exists()
        if user.email:
            assert validators.email(user.email) == user.email
        if user.phone:
            assert validators.phone(user.phone) == user.phone
        assert validators.language(user.language) == user.language
        assert validators.country(user.residency_country) == user.residency_country
        assert validators.countries(user.nationalities) == user.nationalities
        assert validators.address(user.address) == user.address
        assert validators.tax_residency(user.tax_residency) == user.tax_residency
        assert validators.date_of_birth(user.date_of_birth) == user.date_of_birth
        # Choices stored as their values (an enum member once went through COPY as '"FULL_TIME"').
        assert user.employment_status in ("", *EmploymentStatus.values)
        assert user.income_range in ("", *IncomeRange.values)
        columns = validators.counter_account(user.counter_account)
        assert columns == {
            "bank_account_number": user.bank_account_number,
            "bank_account_number_type": user.bank_account_number_type,
            "bank_id": user.bank_id,
            "bank_id_type": user.bank_id_type,
        }
        if user.bank_account_number_type == "IBAN" and user.residency_country in ("BE", "FR", "ES"):
            # Where schwifty knows the national check digits, they are right too.
            assert IBAN(user.bank_account_number, validate_bban=True)


def test_history_matches_the_record(seeded):
    versions = {}
    for version in UserVersion.objects.order_by("user_id", "version"):
        versions.setdefault(version.user_id, []).append(version)
    changes = {}
    for change in StatusChange.objects.order_by("user_id", "version"):
        changes.setdefault(change.user_id, []).append(change)
    for user in seeded:
        history = versions[user.pk]
        assert [v.version for v in history] == list(range(1, user.version + 1))
        assert history[-1].created_at == user.version_datetime
        first = history[0]
        assert first.created_at == user.creation_datetime
        assert first.changes["status"][0] is None
        assert first.changes["status"][1] in (
            Status.WAITING_FOR_VERIFICATION,
            Status.WAITING_FOR_SIGNATURE,
        )
        if user.email:
            assert first.changes["email"] == [None, user.email]
        assert sorted(first.changes.get("feature_flags", [[], []])[1]) == sorted(user.flag_names())
        moves = changes[user.pk]
        assert moves[0].version == 1
        assert moves[-1].to_status == user.status
        assert moves[-1].changed_at == user.status_changed_at
        for move in moves[1:]:
            assert versions[user.pk][move.version - 1].changes == {
                "status": [move.from_status, move.to_status]
            }
            assert move.off_flow == (not is_recommended_move(move.from_status, move.to_status))
            assert bool(move.reason) == move.off_flow
            assert move.changed_at >= moves[0].changed_at
        if user.deleted:
            assert history[-1].changes == {"deleted": [False, True]}


def test_one_version_per_status_move(seeded):
    per_user = dict(
        StatusChange.objects.values_list("user_id")
        .annotate(n=Count("id"))
        .values_list("user_id", "n")
    )
    for user in seeded:
        assert user.version == per_user[user.pk] + (1 if user.deleted else 0)


def test_the_dashboard_summary_counts_every_seeded_move(seeded):
    """The seeder keeps the dashboard's summary as the services do (COPY path on PostgreSQL,
    ORM path here): what it wrote equals a rebuild from the history."""
    from users.models import StatusMoveDaily
    from users.services import move_stats

    def summary():
        return sorted(
            StatusMoveDaily.objects.values_list(
                *StatusMoveDaily.KEY,
                "count",
                "at_risk",
                "breached",
                *StatusMoveDaily.BUCKET_COLUMNS,
            )
        )

    written = summary()
    assert sum(row[5] for row in written) == StatusChange.objects.count()
    assert move_stats.rebuild() == StatusChange.objects.count()
    assert summary() == written
    assert any(row[7] for row in written)  # some left verification past the SLA target


def test_top_up_never_collides(seeded):
    """A second run adds users whose unique values differ from those already there."""
    seed(50)
    assert User.objects.count() == COUNT + 50
    phones = list(User.objects.exclude(phone=None).values_list("phone", flat=True))
    assert len(phones) == len(set(phones)) > COUNT
    emails = [e.lower() for e in User.objects.exclude(email=None).values_list("email", flat=True)]
    assert len(emails) == len(set(emails)) > COUNT


def test_same_seed_same_rows():
    until = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = next(seed_users.UserGenerator(count=20, seed=3, until=until).batches(20))
    second = next(seed_users.UserGenerator(count=20, seed=3, until=until).batches(20))
    other = next(seed_users.UserGenerator(count=20, seed=4, until=until).batches(20))
    assert first.users == second.users
    assert first.versions == second.versions
    assert first.users != other.users


def test_copy_text_escapes_what_copy_needs():
    row = ("a\tb", "line\nbreak", "back\\slash", None, True, 3, {"k": "v\tx"})
    assert seed_users._copy_text([row]) == (
        'a\\tb\tline\\nbreak\tback\\\\slash\t\\N\tt\t3\t{"k":"v\\\\tx"}\n'
    )


def test_fast_copy_formatters_match_the_generic_one():
    until = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batch = next(seed_users.UserGenerator(count=300, seed=5, until=until).batches(300))
    assert seed_users._copy_users(batch.users) == seed_users._copy_text(batch.users)
    assert seed_users._copy_versions(batch.versions) == seed_users._copy_text(batch.versions)
    assert seed_users._copy_status_changes(batch.status_changes) == seed_users._copy_text(
        batch.status_changes
    )
    assert seed_users._copy_grants(batch.grants) == seed_users._copy_text(batch.grants)


def test_iban_check_digits():
    assert seed_users.make_iban("BE", "096", "", 1234567) == str(
        IBAN.generate("BE", bank_code="096", account_code="1234567")
    )
    for country, bank, branch in (("DE", "37040044", ""), ("FR", "20041", "01005")):
        iban = seed_users.make_iban(country, bank, branch, 42)
        assert validators.iban(iban).compact == iban


@pytest.mark.parametrize("count", [0, -5])
def test_refuses_a_count_below_one(db, count):
    with pytest.raises(CommandError, match="--count must be at least 1"):
        seed(count)
    assert not User.objects.exists()


@pytest.mark.postgres
def test_postgres_copy_path_satisfies_the_constraints(seeded):
    """On PostgreSQL the rows went through COPY; the deferred foreign keys still hold."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert User.objects.filter(email__iexact=seeded[0].email or "").count() <= 1
