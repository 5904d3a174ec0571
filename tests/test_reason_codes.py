"""Reason codes (issue 14.3): moves into VERIFICATION_FAILED and INACTIVE, and off the flow, take
a code from the list admins maintain, plus words when the code is OTHER; every front end is held
to it by the service; the chain hashes the code only when there is one."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse

from tests.factories import make_user, move_to
from tests.test_api import api_for, error_for, locs
from tests.test_services import Unchanged, errors_of, refused
from users import chain, query, services
from users.models import ReasonCode, Status, StatusChange, User, needs_reason_code
from users.selectors.audit import verify_history
from users.services import reason_codes

pytestmark = pytest.mark.django_db

WFV, WFS, FAILED = (
    Status.WAITING_FOR_VERIFICATION,
    Status.WAITING_FOR_SIGNATURE,
    Status.VERIFICATION_FAILED,
)
ACTIVE, INACTIVE = Status.ACTIVE, Status.INACTIVE


def latest_change(user: User) -> StatusChange:
    return StatusChange.objects.filter(user=user).latest("version", "id")


# --- where a code is needed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_status", "to_status", "needed"),
    [
        (WFV, WFS, False),
        (WFS, ACTIVE, False),
        (INACTIVE, ACTIVE, False),
        (FAILED, WFS, False),
        (WFV, FAILED, True),  # on the flow, into failed
        (ACTIVE, INACTIVE, True),  # on the flow, into inactive
        (FAILED, INACTIVE, True),
        (WFV, ACTIVE, True),  # off the flow
        (ACTIVE, WFS, True),
        (None, WFV, False),  # the start of the flow
        (None, WFS, False),
        (None, ACTIVE, True),  # a creation off the flow
    ],
)
def test_which_moves_need_a_reason_code(from_status, to_status, needed):
    assert needs_reason_code(from_status, to_status) is needed


def test_the_migration_seeds_the_codes_compliance_uses():
    codes = set(ReasonCode.objects.filter(active=True).values_list("code", flat=True))
    assert {
        "DOCUMENT_EXPIRED",
        "NAME_MISMATCH",
        "ADDRESS_NOT_VERIFIED",
        "SANCTIONS_HIT",
        "PEP_REVIEW",
        "CLIENT_REQUEST",
        "DUPLICATE_ACCOUNT",
        "FRAUD_SUSPICION",
        "INACTIVITY",
        "OTHER",
    } <= codes
    assert ReasonCode.objects.get(code="OTHER").position == max(
        ReasonCode.objects.values_list("position", flat=True)
    )


# --- the service ----------------------------------------------------------------------------


@pytest.mark.parametrize("to_status", [FAILED, INACTIVE])
def test_a_move_into_failed_or_inactive_needs_a_code(compliance_user, to_status):
    user = make_user()
    if to_status == INACTIVE:
        user = move_to(move_to(user, WFS), ACTIVE)
    unchanged = Unchanged(user)
    exc = refused(
        services.user_change_status,
        user=user,
        status=to_status,
        actor=compliance_user,
        reason="Words alone",
    )
    assert errors_of(exc) == {
        "status_reason_code": [
            (
                "reason_code_required",
                f"A move from {Status(user.status).label} to {Status(to_status).label} needs "
                "a reason: choose a reason code.",
            )
        ]
    }
    unchanged.check()

    moved = services.user_change_status(
        user=user, status=to_status, actor=compliance_user, reason_code="CLIENT_REQUEST"
    )
    change = latest_change(moved)
    assert (change.to_status, change.reason_code_id, change.reason, change.off_flow) == (
        to_status,
        "CLIENT_REQUEST",
        "",
        False,
    )
    stored = User.objects.get(pk=user.pk)
    assert stored.status_reason_code == "CLIENT_REQUEST"


def test_a_move_that_needs_no_code_takes_one_if_given_and_clears_the_users_code(
    compliance_user,
):
    user = move_to(make_user(), FAILED, reason_code="DOCUMENT_EXPIRED")
    assert User.objects.get(pk=user.pk).status_reason_code == "DOCUMENT_EXPIRED"
    user = services.user_change_status(user=user, status=WFS, actor=compliance_user)
    assert latest_change(user).reason_code is None
    assert User.objects.get(pk=user.pk).status_reason_code == ""
    user = services.user_change_status(
        user=user, status=ACTIVE, actor=compliance_user, reason_code="signed_on_paper"
    )
    assert latest_change(user).reason_code_id == "SIGNED_ON_PAPER"


def test_other_needs_words(compliance_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(
        services.user_change_status,
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="OTHER",
        reason="   ",
    )
    assert errors_of(exc) == {
        "status_reason": [("reason_required", "The reason code Other needs the reason in words.")]
    }
    unchanged.check()
    user = services.user_change_status(
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="OTHER",
        reason="Selfie shows someone else",
    )
    assert (latest_change(user).reason_code_id, latest_change(user).reason) == (
        "OTHER",
        "Selfie shows someone else",
    )


def test_unknown_and_retired_codes_are_refused(compliance_user, admin_user):
    user = make_user()
    unchanged = Unchanged(user)
    exc = refused(
        services.user_change_status,
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="NO_SUCH_CODE",
    )
    assert errors_of(exc) == {
        "status_reason_code": [
            (
                "reason_code_unknown",
                "'NO_SUCH_CODE' is not a reason code; choose one from the list.",
            )
        ]
    }
    reason_codes.reason_code_update(
        code="PEP_REVIEW",
        label="Politically exposed person to review",
        active=False,
        position=50,
        actor=admin_user,
    )
    exc = refused(
        services.user_change_status,
        user=user,
        status=FAILED,
        actor=compliance_user,
        reason_code="PEP_REVIEW",
    )
    assert errors_of(exc) == {
        "status_reason_code": [
            (
                "reason_code_inactive",
                "The reason code 'Politically exposed person to review' (PEP_REVIEW) is no "
                "longer in use; choose another.",
            )
        ]
    }
    unchanged.check()


def test_a_creation_off_the_flow_needs_a_code_too(admin_user):
    exc = refused(
        services.user_create,
        data={"status": ACTIVE, "status_reason": "Migrated"},
        actor=admin_user,
    )
    assert errors_of(exc)["status_reason_code"][0][0] == "reason_code_required"
    user = services.user_create(
        data={"status": ACTIVE, "status_reason_code": "MIGRATED"}, actor=admin_user
    )
    assert (latest_change(user).reason_code_id, latest_change(user).off_flow) == (
        "MIGRATED",
        True,
    )


def test_the_users_code_is_not_a_versioned_field(compliance_user):
    user = move_to(make_user(), FAILED, reason_code="NAME_MISMATCH")
    version = user.versions.get(version=user.version)
    assert version.changes == {"status": [WFV, FAILED]}


# --- the chain ------------------------------------------------------------------------------


def test_the_chain_hashes_the_code_only_when_there_is_one(compliance_user):
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    common = dict(
        user_id="U1", version=2, from_status=WFV, to_status=WFS, at=at, by_id=None, reason=""
    )
    without = chain.status_content(**common, off_flow=False)
    assert "reason_code" not in without
    assert chain.status_content(**common, off_flow=False, reason_code=None) == without
    coded = chain.status_content(**common, off_flow=False, reason_code="OTHER")
    assert coded["reason_code"] == "OTHER"
    assert chain.link("", coded) != chain.link("", without)


def test_chains_with_and_without_codes_verify(compliance_user):
    user = make_user(actor=compliance_user)
    user = move_to(user, FAILED, actor=compliance_user, reason_code="DOCUMENT_EXPIRED")
    user = move_to(user, WFS, actor=compliance_user)
    move_to(user, ACTIVE, actor=compliance_user)
    result = verify_history()
    assert result.ok, result.breaks[:3]
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "History verified" in out.getvalue()


def test_a_changed_code_breaks_the_chain(compliance_user):
    from tests.factories import behind_the_services

    user = move_to(make_user(), FAILED, actor=compliance_user, reason_code="DOCUMENT_EXPIRED")
    change = latest_change(user)
    with behind_the_services():
        StatusChange.objects.filter(pk=change.pk).update(reason_code="NAME_MISMATCH")
    assert not verify_history().ok


def test_the_bulk_seeder_writes_codes_that_verify(db):
    call_command(
        "seed_users", count=300, batch=100, seed=5, until=dt.date(2026, 6, 1), stdout=StringIO()
    )
    assert verify_history().ok
    coded = StatusChange.objects.filter(to_status__in=[FAILED, INACTIVE])
    assert coded.exists()
    assert not coded.filter(reason_code__isnull=True).exists()
    assert not StatusChange.objects.filter(off_flow=True, reason_code__isnull=True).exists()
    # The row's denormalised code is its last move's.
    for user in User.objects.filter(status__in=[FAILED, INACTIVE])[:20]:
        assert user.status_reason_code == latest_change(user).reason_code_id


# --- the list of codes, maintained by admins ----------------------------------------------


def test_admins_add_rename_and_retire_codes(admin_user, compliance_user):
    code = reason_codes.reason_code_create(
        code="video_call_failed", label="Video call failed", position=15, actor=admin_user
    )
    assert (code.code, code.active) == ("VIDEO_CALL_FAILED", True)
    reason_codes.reason_code_update(
        code="VIDEO_CALL_FAILED",
        label="Video ident failed",
        active=False,
        position=15,
        actor=admin_user,
    )
    assert ReasonCode.objects.get(pk="VIDEO_CALL_FAILED").label == "Video ident failed"
    with pytest.raises(PermissionDenied):
        reason_codes.reason_code_create(code="X_Y", label="x", actor=compliance_user)
    with pytest.raises(ValidationError) as info:
        reason_codes.reason_code_create(code="bad code!", label="", actor=admin_user)
    assert set(info.value.error_dict) == {"code", "label"}
    with pytest.raises(ValidationError) as info:
        reason_codes.reason_code_create(code="OTHER", label="Again", actor=admin_user)
    assert info.value.error_dict["code"][0].code == "unique"


def test_a_code_in_use_is_never_deleted(admin_user):
    move_to(make_user(), FAILED, reason_code="NAME_MISMATCH")
    with pytest.raises(ValidationError) as info:
        reason_codes.reason_code_delete(code="NAME_MISMATCH", actor=admin_user)
    assert "cannot be deleted; deactivate it instead" in info.value.messages[0]
    assert ReasonCode.objects.filter(pk="NAME_MISMATCH").exists()
    reason_codes.reason_code_delete(code="PEP_REVIEW", actor=admin_user)
    assert not ReasonCode.objects.filter(pk="PEP_REVIEW").exists()


def test_the_admin_maintains_the_codes(admin_client):
    add = reverse("admin:users_reasoncode_add")
    response = admin_client.post(
        add, {"code": "KYC_REFRESH", "label": "KYC refresh due", "active": "on", "position": 5}
    )
    assert response.status_code == 302
    assert ReasonCode.objects.get(pk="KYC_REFRESH").label == "KYC refresh due"
    change = reverse("admin:users_reasoncode_change", args=["KYC_REFRESH"])
    response = admin_client.post(change, {"label": "KYC refresh", "position": 5})
    assert response.status_code == 302
    stored = ReasonCode.objects.get(pk="KYC_REFRESH")
    assert (stored.label, stored.active) == ("KYC refresh", False)
    response = admin_client.post(add, {"code": "9-lives", "label": "x", "position": 1})
    assert response.status_code == 200
    assert "2 to 32 upper-case letters" in response.content.decode()


def test_the_admin_refuses_to_delete_a_code_in_use(admin_client):
    move_to(make_user(), FAILED, reason_code="NAME_MISMATCH")
    url = reverse("admin:users_reasoncode_delete", args=["NAME_MISMATCH"])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 200
    assert "protected" in response.content.decode()
    assert ReasonCode.objects.filter(pk="NAME_MISMATCH").exists()


def test_only_admins_see_the_codes_in_the_admin(client, compliance_user):
    from tests.factories import sign_in

    sign_in(client, compliance_user)
    response = client.get(reverse("admin:users_reasoncode_changelist"))
    assert response.status_code in (302, 403)


# --- the front ends ---------------------------------------------------------------------------


def htmx(target: str) -> dict:
    return {"headers": {"HX-Request": "true", "HX-Target": target}}


def test_the_detail_offers_the_active_codes_where_moves_need_one(
    compliance_client, admin_user, user
):
    reason_codes.reason_code_update(
        code="PEP_REVIEW", label="PEP", active=False, position=50, actor=admin_user
    )
    html = compliance_client.get(
        reverse("users:user-detail", args=[user.pk]), **htmx("status")
    ).content.decode()
    assert 'id="move-reason-code"' in html  # Verification failed is a recommended move
    assert "(required for → Verification failed)" in html
    assert 'id="offflow-reason-code"' in html
    assert 'value="DOCUMENT_EXPIRED"' in html
    assert 'value="PEP_REVIEW"' not in html


def test_the_detail_move_into_failed_needs_a_code(compliance_client, user):
    url = reverse("users:user-status", args=[user.pk])
    response = compliance_client.post(url, {"status": FAILED}, **htmx("status"))
    assert "needs a reason: choose a reason code." in response.content.decode()
    assert User.objects.get(pk=user.pk).status == WFV
    response = compliance_client.post(
        url, {"status": FAILED, "reason_code": "ADDRESS_NOT_VERIFIED"}, **htmx("status")
    )
    assert "Moved to Verification failed" in response.content.decode()
    assert latest_change(user).reason_code_id == "ADDRESS_NOT_VERIFIED"


def test_the_board_menu_and_dialog_offer_the_codes(compliance_client, user):
    html = compliance_client.get(reverse("users:board")).content.decode()
    assert 'data-coded-statuses="VERIFICATION_FAILED INACTIVE"' in html
    assert 'id="reason-dialog-code"' in html
    assert (
        '<select name="reason_code"><option value="">—</option><option value="DOCUMENT_EXPIRED">'
        in html
    )


def test_the_board_move_into_failed_needs_a_code(compliance_client, user):
    url = reverse("users:board-move", args=[user.pk])
    response = compliance_client.post(url, {"status": FAILED}, **htmx("board"))
    assert "choose a reason code" in response.context["board_errors"][0]
    compliance_client.post(url, {"status": FAILED, "reason_code": "NAME_MISMATCH"}, **htmx("board"))
    assert User.objects.get(pk=user.pk).status_reason_code == "NAME_MISMATCH"


def test_the_bulk_move_needs_a_code_for_each_user(compliance_client, admin_user):
    first, second = make_user(actor=admin_user), make_user(actor=admin_user)
    url = reverse("users:user-bulk")
    response = compliance_client.post(
        url,
        {"action": "status", "status": FAILED, "ids": [first.pk, second.pk]},
        **htmx("results"),
    )
    report = response.context["bulk_report"]
    assert report["done"] == []
    assert all("choose a reason code" in why for _, why in report["failed"])
    compliance_client.post(
        url,
        {
            "action": "status",
            "status": FAILED,
            "ids": [first.pk, second.pk],
            "reason_code": "DOCUMENT_EXPIRED",
        },
        **htmx("results"),
    )
    assert set(
        User.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "status_reason_code", flat=True
        )
    ) == {"DOCUMENT_EXPIRED"}


def test_the_api_takes_status_reason_code(compliance_user, user):
    api = api_for(compliance_user)
    path = f"/api/users/{user.pk}"
    response = api.patch(path, {"status": FAILED})
    assert response.status_code == 422
    assert locs(response) == [["body", "status_reason_code"]]
    response = api.patch(path, {"status": FAILED, "status_reason_code": "RETIRED_OR_NOT"})
    assert response.status_code == 422
    assert error_for(response, ["body", "status_reason_code"])["type"] == "reason_code_unknown"
    response = api.patch(path, {"status": FAILED, "status_reason_code": "DOCUMENT_EXPIRED"})
    assert response.status_code == 200
    assert latest_change(user).reason_code_id == "DOCUMENT_EXPIRED"
    # A move that needs none goes without.
    response = api.patch(path, {"status": WFS})
    assert response.status_code == 200


def test_the_list_filters_by_the_current_code(compliance_client, admin_user):
    failed = move_to(make_user(last_name="Failed"), FAILED, reason_code="DOCUMENT_EXPIRED")
    other = move_to(make_user(last_name="Other"), FAILED, reason_code="NAME_MISMATCH")
    url = reverse("users:user-list")
    response = compliance_client.get(url, {"status_reason_code": "DOCUMENT_EXPIRED"})
    ids = [row.pk for row in response.context["users"]]
    assert ids == [failed.pk]
    assert "Identity document expired (DOCUMENT_EXPIRED)" in response.content.decode()
    response = compliance_client.get(
        url, {"q": "status_reason_code eq 'name_mismatch'", "mode": "advanced"}
    )
    assert [row.pk for row in response.context["users"]] == [other.pk]
    response = compliance_client.get(url, {"status_reason_code": "NOPE"})
    assert response.status_code == 200
    assert response.context["users"] == []


def test_the_query_language_reads_the_code():
    q, _ = query.parse("status_reason_code eq 'doc*'")
    assert "status_reason_code" in query.referenced_fields(q)
    assert "status_reason_code" in query.FIELDS
