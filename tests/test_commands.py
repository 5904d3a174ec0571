"""`manage.py seed_demo`: realistic, valid, with history, deterministic and idempotent."""

from __future__ import annotations

import io
import itertools
from collections import Counter

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from console.devtools.management.commands.seed_demo import DEMO_LOGINS, DEMO_PASSWORD, SEED, Planner
from tests.factories import sign_in_request
from users import validators
from users.models import (
    CaseAssignment,
    ChangeRequest,
    FeatureFlagGrant,
    Role,
    Status,
    StatusChange,
    User,
    UserVersion,
)

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_end_to_end():
    """One full run (as `make run` does it), checked from every side, then a second run."""
    output = seed()
    check_users_across_statuses_and_countries()
    check_every_stored_value_passes_the_field_rules()
    check_history_is_realistic_and_consistent()
    check_one_login_per_role_that_signs_in()
    check_changes_wait_for_approval()
    check_open_cases_are_shared_between_reviewers()
    check_prints_the_login_url_and_credentials(output)
    check_second_run_adds_nothing_and_repairs_the_logins()


def check_users_across_statuses_and_countries():
    demo = User.objects.filter(external_id__startswith="DEMO-")
    assert demo.count() == 200
    statuses = Counter(demo.values_list("status", flat=True))
    assert set(statuses) == set(Status.values)
    assert all(n >= 5 for n in statuses.values()), statuses
    countries = Counter(demo.values_list("residency_country", flat=True))
    assert len(countries) >= 6
    assert 1 <= demo.filter(deleted=True).count() <= 10


def check_every_stored_value_passes_the_field_rules():
    users = User.objects.filter(external_id__startswith="DEMO-")
    with_phone = with_account = 0
    for user in users:
        assert validators.email(user.email) == user.email
        if user.phone:
            with_phone += 1
            assert validators.phone(user.phone) == user.phone
            # a phone of the residency country, as a real customer would have
            assert validators.phone(user.phone, region=user.residency_country) == user.phone
        if user.counter_account:
            with_account += 1
            assert validators.counter_account(user.counter_account) == {
                k: v or "" for k, v in user.counter_account.items()
            }
            if user.bank_account_number_type == "IBAN":
                assert user.bank_account_number[:2] == user.residency_country
        assert validators.language(user.language) == user.language
        assert validators.countries(user.nationalities) == user.nationalities
        if user.address:
            assert validators.address(user.address) == user.address
    assert with_phone > 100
    assert with_account > 100
    assert users.filter(bank_account_number_type="ABA").exists()
    assert users.exclude(bank_id="").filter(bank_id_type="BIC").exists()


def check_history_is_realistic_and_consistent():
    demo = User.objects.filter(external_id__startswith="DEMO-")
    back_office = User.objects.get(email="backoffice@demo.example")
    compliance = User.objects.get(email="compliance@demo.example")
    now = timezone.now()
    for user in demo.prefetch_related("versions", "status_changes"):
        versions = sorted(user.versions.all(), key=lambda v: v.version)
        assert [v.version for v in versions] == list(range(1, user.version + 1))
        assert versions[0].author == back_office
        assert versions[0].created_at == user.creation_datetime
        assert versions[-1].created_at == user.version_datetime
        assert all(a.created_at < b.created_at for a, b in itertools.pairwise(versions))
        moves = sorted(user.status_changes.all(), key=lambda c: c.version)
        assert moves[-1].to_status == user.status
        assert moves[-1].changed_at == user.status_changed_at
        assert all(a.to_status == b.from_status for a, b in itertools.pairwise(moves))
        assert all(c.reason for c in moves if c.off_flow)
    # history spread over months, not all stamped "now"
    oldest = demo.order_by("creation_datetime").first().creation_datetime
    assert (now - oldest).days > 180
    later_moves = StatusChange.objects.filter(user__in=demo).exclude(from_status="")
    assert later_moves.filter(changed_by=compliance).count() == later_moves.count() > 100
    assert later_moves.filter(off_flow=True).count() >= 5
    assert later_moves.exclude(reason="").count() > 20
    grants = FeatureFlagGrant.objects.filter(user__in=demo)
    assert grants.count() > 50
    assert set(grants.values_list("granted_by__email", flat=True)) == {"admin@demo.example"}
    assert UserVersion.objects.filter(user__in=demo, changes__has_key="deleted").count() >= 2


def check_changes_wait_for_approval():
    """Four-eyes: a few pending requests of each kind, all by the back-office login, so that
    the admin finds the Approvals page in use; and past IBAN changes approved by compliance."""
    back_office = User.objects.get(email="backoffice@demo.example")
    compliance = User.objects.get(email="compliance@demo.example")
    pending = ChangeRequest.objects.filter(state=ChangeRequest.State.PENDING)
    assert set(pending.values_list("proposed_by", flat=True)) == {back_office.pk}
    kinds = Counter(pending.values_list("kind", flat=True))
    assert kinds == {"counter_account": 3, "roles": 2, "console_flag": 2}
    assert all(r.expires_at > timezone.now() for r in pending)
    approved = UserVersion.objects.filter(approved_by__isnull=False)
    assert approved.count() >= 5
    assert set(approved.values_list("approved_by", flat=True)) == {compliance.pk}
    assert set(approved.values_list("author", flat=True)) == {back_office.pk}


def check_one_login_per_role_that_signs_in():
    for role, email, *_ in DEMO_LOGINS:
        user = authenticate(sign_in_request(), username=email, password=DEMO_PASSWORD)
        assert user is not None, email
        assert user.role_names() == {role}
    assert {r for r, *_ in DEMO_LOGINS} == set(Role.values)


def check_prints_the_login_url_and_credentials(output: str):
    assert "http://127.0.0.1:8000/login/" in output
    for _, email, *_ in DEMO_LOGINS:
        assert email in output
    assert DEMO_PASSWORD in output
    assert "200 created now" in output
    assert "Changes waiting for approval (four-eyes): 7." in output


def check_open_cases_are_shared_between_reviewers():
    """Assignment (issue 14.1): the compliance login and a second reviewer hold open cases,
    about a third stay unassigned, each assignment in the history."""
    open_cases = User.objects.filter(
        external_id__startswith="DEMO-",
        deleted=False,
        status__in=[
            Status.WAITING_FOR_VERIFICATION,
            Status.WAITING_FOR_SIGNATURE,
            Status.VERIFICATION_FAILED,
        ],
    )
    by = Counter(open_cases.values_list("assignee__email", flat=True))
    total = sum(by.values())
    assert set(by) == {"compliance@demo.example", "marc.review@demo.example", None}, by
    assert 0.15 * total <= by[None] <= 0.6 * total, by
    assert CaseAssignment.objects.count() == total - by[None]
    assert not CaseAssignment.objects.filter(at__gt=timezone.now()).exists()


def check_second_run_adds_nothing_and_repairs_the_logins():
    users, versions = User.objects.count(), UserVersion.objects.count()
    assignments = CaseAssignment.objects.count()
    admin = User.objects.get(email="admin@demo.example")
    admin.set_password("changed-by-someone")
    admin.save(update_fields=["password"])

    out = seed(base_url="http://console.local:9000/")

    assert User.objects.count() == users
    assert UserVersion.objects.count() == versions
    assert CaseAssignment.objects.count() == assignments
    assert ChangeRequest.objects.filter(state=ChangeRequest.State.PENDING).count() == 7
    assert "0 created now" in out
    assert "http://console.local:9000/login/" in out
    assert authenticate(sign_in_request(), username="admin@demo.example", password=DEMO_PASSWORD)


def test_plan_is_deterministic():
    now = timezone.now()
    first = Planner(SEED, now).plan(30)
    second = Planner(SEED, now).plan(30)
    assert [[(s.when, s.kind, s.payload) for s in steps] for steps in first] == [
        [(s.when, s.kind, s.payload) for s in steps] for steps in second
    ]


def test_partial_seed_is_completed():
    seed(count=5)
    assert User.objects.filter(external_id__startswith="DEMO-").count() == 5
    emails = set(User.objects.values_list("email", flat=True))
    seed(count=8)
    assert User.objects.filter(external_id__startswith="DEMO-").count() == 8
    assert emails <= set(User.objects.values_list("email", flat=True))
