"""Four-eyes approval in the console (issue 12.3-12.4): the edit form's message, the pending
change on the detail page with its decisions, the Approvals page and the marks elsewhere.
Every decision is a plain form POST: the same without JavaScript."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import VALID_IBANS, make_console_user, make_user, sign_in
from users import services
from users.forms import UserForm
from users.models import ChangeRequest, Role, User, UserVersion
from users.views.common import FACTOR_VERIFIED_AT

pytestmark = pytest.mark.django_db
State = ChangeRequest.State


def detail_url(user):
    return reverse("users:user-detail", args=[user.pk])


def form_post(user, **changes):
    data = {k: ("" if v is None else v) for k, v in UserForm.initial_for(user).items()}
    data.update(changes)
    return data


def shown(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def propose(user, actor, iban=VALID_IBANS[1]) -> ChangeRequest:
    saved = services.user_update(
        user=user,
        data={"counter_account": {"bank_account_number": iban}},
        actor=actor,
        change_reason="client letter",
    )
    [request] = services.proposed_changes(saved)
    return request


def approve_url(request):
    return reverse("users:change-request-approve", args=[request.pk])


def reject_url(request):
    return reverse("users:change-request-reject", args=[request.pk])


def withdraw_url(request):
    return reverse("users:change-request-withdraw", args=[request.pk])


# --- the edit form -------------------------------------------------------------------------------


def test_editing_an_iban_saves_the_rest_and_says_what_waits(back_office_client, back_office_user):
    user = make_user(actor=back_office_user)
    response = back_office_client.post(
        reverse("users:user-edit", args=[user.pk]),
        form_post(
            user,
            first_name="Janet",
            bank_account_number=VALID_IBANS[0],
            change_reason="new bank, letter of 3 May",
        ),
    )
    assert response.status_code == 302
    assert shown(response) == [
        "Saved version 2.",
        "Waiting for approval by a second person: Counter account.",
    ]
    stored = User.objects.get(pk=user.pk)
    assert (stored.first_name, stored.bank_account_number) == ("Janet", "")
    request = ChangeRequest.objects.get(user=user)
    assert (request.state, request.proposed_by, request.reason) == (
        State.PENDING,
        back_office_user,
        "new bank, letter of 3 May",
    )


def test_the_edit_form_says_the_account_is_guarded_and_pending(back_office_client, admin_user):
    user = make_user(actor=admin_user)
    html = back_office_client.get(reverse("users:user-edit", args=[user.pk])).content.decode()
    assert "waits for a second person's approval" in html
    assert 'name="change_reason"' in html
    assert "already waiting for approval" not in html
    propose(user, admin_user)
    html = back_office_client.get(reverse("users:user-edit", args=[user.pk])).content.decode()
    assert "already waiting for approval" in html


# --- the detail page -----------------------------------------------------------------------------


def test_the_detail_shows_the_pending_change_with_decisions_for_a_checker(
    compliance_client, back_office_user
):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    html = compliance_client.get(detail_url(user)).content.decode()
    pending = html.split('id="pending"')[1].split("</section>")[0]
    assert "Waiting for approval" in pending
    assert "Counter account" in pending
    assert VALID_IBANS[1] in pending  # the proposed value
    assert back_office_user.display_name in pending
    assert "client letter" in pending
    assert f'action="{approve_url(request)}"' in pending
    assert f'action="{reject_url(request)}"' in pending
    assert f'action="{withdraw_url(request)}"' not in pending
    # The counter account's panel points to it.
    account = html.split('id="h-account"')[1].split("</section>")[0]
    assert f'href="#change-request-{request.pk}"' in account


def test_the_proposer_sees_withdraw_not_approve(back_office_client, back_office_user):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    html = back_office_client.get(detail_url(user)).content.decode()
    assert f'action="{withdraw_url(request)}"' in html
    assert f'action="{approve_url(request)}"' not in html


def test_an_admin_who_proposed_is_told_why_not(admin_client, admin_user):
    user = make_user(actor=admin_user)
    request = propose(user, admin_user)
    html = admin_client.get(detail_url(user)).content.decode()
    assert f'action="{approve_url(request)}"' not in html
    assert f'action="{withdraw_url(request)}"' in html


def test_no_pending_panel_without_requests(compliance_client, user):
    html = compliance_client.get(detail_url(user)).content.decode()
    assert "Waiting for approval" not in html


def test_the_pending_region_renders_alone_for_htmx(compliance_client, back_office_user):
    user = make_user(actor=back_office_user)
    propose(user, back_office_user)
    response = compliance_client.get(
        detail_url(user), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pending"
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="pending"')
    assert "<html" not in html


# --- deciding ------------------------------------------------------------------------------------


def test_approving_applies_and_names_maker_and_checker(
    compliance_client, compliance_user, back_office_user
):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    response = compliance_client.post(approve_url(request), {"next": detail_url(user)})
    assert response.status_code == 302
    assert response["Location"] == detail_url(user)
    stored = User.objects.get(pk=user.pk)
    assert stored.bank_account_number == VALID_IBANS[1]
    assert shown(response) == [
        f"Approved: Counter account of {stored.display_name} applied as version {stored.version}."
    ]
    version = UserVersion.objects.get(user=user, version=stored.version)
    assert (version.author, version.approved_by) == (back_office_user, compliance_user)


def test_approving_asks_for_the_second_factor_after_five_minutes(
    compliance_client, back_office_user
):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    session = compliance_client.session
    session[FACTOR_VERIFIED_AT] = time.time() - 301
    session.save()
    response = compliance_client.post(approve_url(request), {"next": detail_url(user)})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin-verify"))
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == [detail_url(user)]
    request.refresh_from_db()
    assert request.state == State.PENDING
    assert User.objects.get(pk=user.pk).bank_account_number == ""


def test_approving_twice_says_already_decided(compliance_client, back_office_user):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    compliance_client.post(approve_url(request))
    version = User.objects.get(pk=user.pk).version
    admin_client = Client()
    sign_in(admin_client, make_console_user(Role.ADMIN))
    response = admin_client.post(approve_url(request))
    assert response.status_code == 302
    assert "This change was already decided: it is approved by" in shown(response)[0]
    assert User.objects.get(pk=user.pk).version == version


def test_a_void_approval_says_why_and_applies_nothing(
    compliance_client, back_office_user, settings
):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    settings.FOUR_EYES_GUARDED = []
    services.user_update(
        user=user, data={"counter_account": {"bank_account_number": VALID_IBANS[2]}}, actor=None
    )
    settings.FOUR_EYES_GUARDED = ["counter_account", "roles", "console_flag"]
    response = compliance_client.post(approve_url(request))
    assert "Not applied: Counter account changed since the proposal" in shown(response)[0]
    assert User.objects.get(pk=user.pk).bank_account_number == VALID_IBANS[2]
    request.refresh_from_db()
    assert request.state == State.VOID


def test_self_approval_by_a_crafted_post_is_refused(admin_client, admin_user):
    user = make_user(actor=admin_user)
    request = propose(user, admin_user)
    response = admin_client.post(approve_url(request))
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.state == State.PENDING


def test_rejecting_needs_a_reason(compliance_client, back_office_user):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    response = compliance_client.post(reject_url(request), {"reason": "  "})
    assert shown(response) == ["Say why the change is rejected."]
    request.refresh_from_db()
    assert request.state == State.PENDING
    response = compliance_client.post(reject_url(request), {"reason": "Unknown bank"})
    assert shown(response)[-1].startswith("Rejected: Counter account of")
    request.refresh_from_db()
    assert (request.state, request.decision_reason) == (State.REJECTED, "Unknown bank")


def test_the_proposer_withdraws(back_office_client, back_office_user):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    response = back_office_client.post(withdraw_url(request), {"next": "https://evil.example/"})
    assert response["Location"] == detail_url(user)  # never off-site
    request.refresh_from_db()
    assert request.state == State.WITHDRAWN


def test_a_decision_returns_to_the_approvals_page(compliance_client, back_office_user):
    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    back = reverse("users:approvals") + "?kind=counter_account"
    response = compliance_client.post(approve_url(request), {"next": back})
    assert response["Location"] == back


def test_an_unknown_request_is_404(compliance_client):
    assert (
        compliance_client.post(reverse("users:change-request-approve", args=[9999])).status_code
        == 404
    )


# --- roles and flags on the detail page ----------------------------------------------------------


def test_the_roles_form_proposes_and_says_so(admin_client, admin_user):
    subject = make_console_user(Role.COMPLIANCE)
    response = admin_client.post(
        reverse("users:user-roles", args=[subject.pk]), {"role": [Role.ADMIN]}
    )
    assert response.status_code == 302
    assert shown(response) == ["Waiting for approval by a second person: Console roles."]
    assert User.objects.get(pk=subject.pk).role_names() == {Role.COMPLIANCE}
    assert ChangeRequest.objects.get(user=subject).changes == {"roles": [["compliance"], ["admin"]]}


def test_granting_console_on_the_detail_proposes(admin_client, admin_user):
    user = make_user(actor=admin_user)
    response = admin_client.post(
        reverse("users:user-flag", args=[user.pk]), {"flag": "CONSOLE", "enabled": "1"}
    )
    assert shown(response) == [
        "Waiting for approval by a second person: Console access (CONSOLE flag)."
    ]
    assert User.objects.get(pk=user.pk).flag_names() == set()


# --- the Approvals page, the badge and the marks -------------------------------------------------


def test_the_approvals_page_lists_oldest_first_and_filters(compliance_client, back_office_user):
    admin = make_console_user(Role.ADMIN)
    old_user, new_user, role_user = (make_user(actor=admin) for _ in range(3))
    old = propose(old_user, back_office_user)
    ChangeRequest.objects.filter(pk=old.pk).update(
        proposed_at=timezone.now() - dt.timedelta(hours=30)
    )
    new = propose(new_user, admin)
    [roles] = services.proposed_changes(
        services.user_set_roles(user=role_user, roles=[Role.COMPLIANCE], actor=admin)
    )
    url = reverse("users:approvals")

    def listed(**query) -> list[int]:
        html = compliance_client.get(url, query).content.decode()
        return [int(part.split('"')[0]) for part in html.split('id="change-request-')[1:]]

    assert listed() == [old.pk, new.pk, roles.pk]
    assert listed(kind="roles") == [roles.pk]
    assert listed(proposer=back_office_user.pk) == [old.pk]
    assert listed(age=24) == [old.pk]
    # Compliance may approve accounts, not roles: no buttons on the role grant.
    html = compliance_client.get(url, {"kind": "roles"}).content.decode()
    assert f'action="{approve_url(roles)}"' not in html
    assert "may not approve a change of Console roles" in html
    # The results alone for htmx.
    response = compliance_client.get(
        url, {"kind": "roles"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="approvals-results"
    )
    assert response.content.decode().lstrip().startswith('<section id="approvals-results"')


def test_bad_filters_show_everything(compliance_client):
    response = compliance_client.get(
        reverse("users:approvals"), {"kind": "nope", "age": "x", "proposer": "U0"}
    )
    assert response.status_code == 200


def test_back_office_has_no_approvals_page_nor_badge(back_office_client, admin_user):
    propose(make_user(actor=admin_user), admin_user)
    assert back_office_client.get(reverse("users:approvals")).status_code == 403
    html = back_office_client.get(reverse("users:user-list")).content.decode()
    assert reverse("users:approvals") not in html


def test_the_navigation_counts_what_waits(back_office_user):
    checker = make_console_user(Role.ADMIN)
    client = Client()
    sign_in(client, checker)
    html = client.get(reverse("users:user-list")).content.decode()
    assert ">Approvals</a>" in html  # no badge when nothing waits
    for _ in range(2):
        propose(make_user(actor=back_office_user), back_office_user)
    html = client.get(reverse("users:user-list")).content.decode()
    assert 'Approvals <span class="count-badge">2<span class="visually-hidden"> waiting' in html


def test_list_rows_and_board_cards_mark_a_pending_change(admin_client, back_office_user):
    waiting = make_user(actor=back_office_user, last_name="Waiting")
    make_user(actor=back_office_user, last_name="Quiet")
    propose(waiting, back_office_user)
    html = admin_client.get(reverse("users:user-list")).content.decode()
    row = html.split(f'value="{waiting.pk}"')[1].split("</tr>")[0]
    assert "waiting for approval" in row
    assert html.count('class="pill pill-pending"') == 1
    board = admin_client.get(reverse("users:board")).content.decode()
    card = board.split(f'data-card="{waiting.pk}"')[1].split("</li>")[0]
    assert "pill-pending" in card
    assert board.count("pill-pending") == 1


# --- history -------------------------------------------------------------------------------------


def test_the_history_names_maker_and_checker_and_every_ending(
    compliance_client, compliance_user, back_office_user
):
    user = make_user(actor=back_office_user)
    rejected = propose(user, back_office_user)
    services.change_request_reject(
        change_request=rejected, actor=compliance_user, reason="Unknown bank"
    )
    expired = propose(user, back_office_user, iban=VALID_IBANS[2])
    ChangeRequest.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    approved = propose(user, back_office_user, iban=VALID_IBANS[3])
    services.change_request_approve(change_request=approved, actor=compliance_user)
    html = compliance_client.get(detail_url(user), {"full": "1"}).content.decode()
    history = html.split('id="history"')[1]
    versions = history.split("</table>")[0]
    assert f"approved by {compliance_user.display_name}" in versions
    four_eyes = history.split('class="table four-eyes-history"')[1].split("</table>")[0]
    actions = [part.split('"')[0] for part in four_eyes.split('data-action="')[1:]]
    # Newest first: the approval above its proposal; every proposal and ending is there.
    assert actions[:2] == ["approved", "proposed"]
    assert sorted(actions) == sorted(["approved", "expired", "rejected", *["proposed"] * 3])
    approved_row = four_eyes.split('data-action="approved"')[1].split("</tr>")[0]
    assert compliance_user.display_name in approved_row
    assert f"proposed by {back_office_user.display_name}" in approved_row
    assert "Unknown bank" in four_eyes
    assert "nobody in time" in four_eyes


def test_the_approvals_page_refuses_the_accounts_last_changer(admin_client, admin_user):
    back_office = make_console_user(Role.BACK_OFFICE)
    mine = make_user(actor=admin_user, counter_account={"bank_account_number": VALID_IBANS[0]})
    theirs = make_user(actor=back_office, counter_account={"bank_account_number": VALID_IBANS[0]})
    on_mine, on_theirs = propose(mine, back_office), propose(theirs, back_office)
    html = admin_client.get(reverse("users:approvals")).content.decode()
    assert f'action="{approve_url(on_mine)}"' not in html
    assert "You changed this counter account last" in html
    assert f'action="{approve_url(on_theirs)}"' in html


def test_the_security_log_csv_tells_maker_from_checker(admin_client, admin_user, back_office_user):
    import csv
    import io

    user = make_user(actor=back_office_user)
    request = propose(user, back_office_user)
    checker = make_console_user(Role.COMPLIANCE)
    services.change_request_approve(change_request=request, actor=checker)
    response = admin_client.get(reverse("users:security-log-export"), {"kind": "CHANGE_APPROVED"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["actor"] == checker.email  # the checker
    assert f'"maker": "{back_office_user.email}"' in rows[0]["detail"]  # the maker
    assert rows[0]["subject"] == user.email
