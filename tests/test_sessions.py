"""Issue 10 point 3: sessions that end. Ending causes, the revive-by-re-grant case, the idle
timeout (background requests not counting) and the session records."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from tests.factories import (
    current_code,
    make_console_user,
    sign_in,
    totp_device,
)
from users import services
from users.models import ApiToken, ConsoleSession, FeatureFlag, Role, SecurityEvent
from users.selectors.sessions import browser_label
from users.services import factors, sessions, tokens
from users.services.security import Kind

PASSWORD = "correct-horse-battery"  # make_console_user's

pytestmark = pytest.mark.django_db


def signed_in_client(user) -> Client:
    client = Client()
    sign_in(client, user)
    assert client.get("/users/").status_code == 200
    return client


def session_alive(client: Client) -> bool:
    return Session.objects.filter(session_key=client.session.session_key).exists()


def ended_events(user) -> list[dict]:
    return [
        event.detail
        for event in SecurityEvent.objects.filter(kind=Kind.SESSION_ENDED, subject=user)
    ]


# --- signing in records the session ------------------------------------------------------


def test_the_second_factor_step_records_the_session(client):
    user = make_console_user(Role.BACK_OFFICE)
    device = totp_device(user)
    client.post(reverse("login") + "?next=/users/", {"username": user.email, "password": PASSWORD})
    assert not ConsoleSession.objects.exists()  # the password alone is not a console session
    client.post(reverse("signin-verify"), {"code": current_code(device), "next": "/users/"})
    record = ConsoleSession.objects.get()
    assert (record.user, record.session_key) == (user, client.session.session_key)
    assert record.ended_at is None
    assert record.ip_address == "127.0.0.1"


def test_without_the_second_factor_the_password_step_records_the_session(client, settings):
    settings.CONSOLE_MFA_REQUIRED = False
    user = make_console_user(Role.BACK_OFFICE)
    client.post(reverse("login") + "?next=/users/", {"username": user.email, "password": PASSWORD})
    assert ConsoleSession.objects.get().session_key == client.session.session_key


# --- the five ending causes ---------------------------------------------------------------


def test_revoking_console_ends_every_session_of_the_user_and_nothing_else(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    first, second = signed_in_client(user), signed_in_client(user)
    other = signed_in_client(make_console_user(Role.BACK_OFFICE))
    token, _ = tokens.issue_token(user=user, name="script")
    services.user_set_flag(user=user, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user)
    assert not session_alive(first)
    assert not session_alive(second)
    assert session_alive(other)
    assert ConsoleSession.objects.filter(user=user, ended_at__isnull=True).count() == 0
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None  # not revoked silently
    event = SecurityEvent.objects.get(kind=Kind.SESSION_ENDED)
    assert (event.actor, event.subject) == (admin_user, user)
    assert event.detail["reason"] == "console_revoked"
    assert event.detail["sessions"] == 2
    assert "API tokens are not revoked" in event.detail["not_revoked"]


def test_revoking_another_flag_ends_no_session(admin_user):
    user = make_console_user(Role.BACK_OFFICE, feature_flags=[FeatureFlag.CONSOLE, "ROBO_ADVISOR"])
    client = signed_in_client(user)
    services.user_set_flag(user=user, flag="ROBO_ADVISOR", enabled=False, actor=admin_user)
    assert session_alive(client)
    assert ended_events(user) == []


def test_revoking_console_through_set_flags_ends_the_sessions(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    services.user_set_flags(user=user, flags=[], actor=admin_user)
    assert not session_alive(client)
    assert ended_events(user)[0]["reason"] == "console_revoked"


@pytest.mark.usefixtures("without_four_eyes")
def test_taking_a_role_away_ends_the_sessions_but_adding_one_does_not(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    services.user_set_roles(user=user, roles=[Role.BACK_OFFICE, Role.COMPLIANCE], actor=admin_user)
    assert session_alive(client)
    services.user_set_roles(user=user, roles=[Role.COMPLIANCE], actor=admin_user)
    assert not session_alive(client)
    assert [detail["reason"] for detail in ended_events(user)] == ["role_removed"]


def test_deleting_the_user_ends_the_sessions(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    services.user_delete(user=user, actor=admin_user)
    assert not session_alive(client)
    assert ended_events(user)[0]["reason"] == "deleted"


def test_resetting_factors_ends_the_sessions(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    factors.factors_reset(user=user, actor=admin_user)
    assert not session_alive(client)
    assert ended_events(user)[0]["reason"] == "factors_reset"
    assert client.get("/users/")["Location"].startswith(reverse("login"))


def test_a_password_set_by_someone_ends_the_sessions(admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    services.user_set_password(user=user, password="another-horse-battery", actor=admin_user)
    assert not session_alive(client)
    assert ended_events(user)[0]["reason"] == "password_set"


def test_ones_own_password_change_keeps_this_session_and_ends_the_others():
    user = make_console_user(Role.BACK_OFFICE)
    this, other = signed_in_client(user), signed_in_client(user)
    response = this.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-horse-battery-9",
            "new_password2": "a-new-horse-battery-9",
        },
    )
    assert response.status_code == 302
    assert this.get("/users/").status_code == 200
    assert not session_alive(other)
    assert other.get("/users/").status_code == 302
    # This session's record follows its new key and stays active.
    record = ConsoleSession.objects.get(session_key=this.session.session_key)
    assert record.ended_at is None
    detail = ended_events(user)[0]
    assert (detail["reason"], detail["sessions"], detail["kept_current"]) == (
        "password_set",
        1,
        True,
    )


# --- the issue's case: a re-grant never revives a session ---------------------------------


def test_a_re_granted_console_flag_does_not_revive_the_old_session():
    admin = signed_in_client(admin_user := make_console_user(Role.ADMIN))
    user = make_console_user(Role.BACK_OFFICE)
    victim = signed_in_client(user)
    flag_url = reverse("users:user-flag", args=[user.pk])

    admin.post(flag_url, {"flag": FeatureFlag.CONSOLE, "enabled": "0"})
    response = victim.get("/users/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))

    admin.post(flag_url, {"flag": FeatureFlag.CONSOLE, "enabled": "1"})
    user.refresh_from_db()
    assert FeatureFlag.CONSOLE in user.flag_names()

    login_page = victim.get(reverse("login"))
    assert login_page.status_code == 200  # the sign-in form, not a redirect into the console
    assert b'name="password"' in login_page.content
    users_page = victim.get("/users/")
    assert users_page.status_code == 302
    assert users_page["Location"].startswith(reverse("login"))
    assert SecurityEvent.objects.get(kind=Kind.SESSION_ENDED).actor == admin_user


# --- the idle timeout -----------------------------------------------------------------------


def move_activity_back(client: Client, seconds: float) -> None:
    session = client.session
    session[sessions.LAST_ACTIVITY] -= seconds
    session[sessions.LAST_SEEN_WRITTEN] -= seconds
    session.save()


def test_a_session_idle_longer_than_the_timeout_ends(settings):
    settings.SESSION_IDLE_SECONDS = 900
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    key = client.session.session_key
    move_activity_back(client, 901)
    response = client.get("/users/?q=x")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=%2Fusers%2F%3Fq%3Dx"
    assert not Session.objects.filter(session_key=key).exists()
    assert ConsoleSession.objects.get(session_key=key).ended_at is not None
    assert ended_events(user) == [{"reason": "idle", "sessions": 1}]
    assert client.get("/users/").status_code == 302  # still signed out


def test_a_session_within_the_timeout_goes_on(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 899)
    assert client.get("/users/").status_code == 200


def test_an_idle_htmx_request_gets_401_with_hx_redirect(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 901)
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/users/?q=ann"}
    response = client.get("/users/validate/", headers=headers)
    assert response.status_code == 401
    # Back to the page the person was on, not to the region's URL.
    assert response["HX-Redirect"] == reverse("login") + "?next=%2Fusers%2F%3Fq%3Dann"


def test_a_background_poll_does_not_extend_the_session(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 800)
    background = {"HX-Request": "true", "X-Console-Background": "1"}
    assert client.get("/users/", headers=background).status_code == 200
    move_activity_back(client, 0)
    session = client.session
    session[sessions.LAST_ACTIVITY] -= 101  # 901 s since the person's last request
    session.save()
    assert client.get("/users/", headers=background).status_code == 401


def test_a_persons_request_extends_the_session(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 800)
    assert client.get("/users/", headers={"HX-Request": "true"}).status_code == 200
    session = client.session
    session[sessions.LAST_ACTIVITY] -= 101
    session.save()
    assert client.get("/users/").status_code == 200


def test_last_seen_is_written_at_most_once_a_minute(settings):
    client = signed_in_client(user := make_console_user(Role.BACK_OFFICE))
    record = ConsoleSession.objects.get(user=user)
    ConsoleSession.objects.filter(pk=record.pk).update(last_seen=record.started.replace(year=2020))
    client.get("/users/")
    assert ConsoleSession.objects.get(pk=record.pk).last_seen.year == 2020  # within the minute
    move_activity_back(client, 61)
    client.get("/users/")
    assert ConsoleSession.objects.get(pk=record.pk).last_seen.year != 2020


# --- keep-alive ----------------------------------------------------------------------------


def test_keep_alive_extends_the_session(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 800)
    response = client.post(
        reverse("account-sessions-keep-alive"), headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["idle_seconds_left"] > 899
    move_activity_back(client, 850)  # 850 s after the keep-alive, 1650 after the page
    assert client.get("/users/").status_code == 200


def test_keep_alive_without_js_goes_back_to_the_page():
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    url = reverse("account-sessions-keep-alive")
    assert client.post(url, {"next": "/board/?q=x"})["Location"] == "/board/?q=x"
    assert client.post(url, {"next": "https://evil.example/"})["Location"] == reverse("users:home")


def test_keep_alive_after_the_idle_end_does_not_revive(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 901)
    response = client.post(
        reverse("account-sessions-keep-alive"), headers={"Accept": "application/json"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_pages_carry_the_idle_warning_data(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    html = client.get("/users/").content.decode()
    assert 'data-session-warn-seconds="120"' in html
    assert 'data-session-idle-seconds="840"' in html
    assert 'role="alertdialog"' in html
    assert "console/session.js" in html
    assert f'action="{reverse("account-sessions-keep-alive")}"' in html
    assert f'href="{reverse("account-sessions")}"' in html


# --- the Sessions views --------------------------------------------------------------------


def test_own_sessions_list_this_one_and_the_others():
    user = make_console_user(Role.BACK_OFFICE)
    this = signed_in_client(user)
    signed_in_client(user)
    ConsoleSession.objects.filter(session_key=this.session.session_key).update(
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
        "Firefox/128.0"
    )
    response = this.get(reverse("account-sessions"))
    html = response.content.decode()
    assert html.count('name="session"') == 2
    assert html.count("this session") == 1
    assert "Firefox 128 on Windows" in html
    assert "127.0.0.1" in html
    assert "Sign out everywhere else" in html


def test_signing_out_another_own_session_logs_sign_out():
    user = make_console_user(Role.BACK_OFFICE)
    this, other = signed_in_client(user), signed_in_client(user)
    record = ConsoleSession.objects.get(session_key=other.session.session_key)
    response = this.post(reverse("account-sessions"), {"session": record.pk})
    assert response.status_code == 302
    assert not session_alive(other)
    assert session_alive(this)
    event = SecurityEvent.objects.get(kind=Kind.SIGN_OUT)
    assert (event.actor, event.subject, event.detail["sessions"]) == (user, user, 1)


def test_signing_out_this_session_from_the_list_signs_out():
    user = make_console_user(Role.BACK_OFFICE)
    this = signed_in_client(user)
    record = ConsoleSession.objects.get(session_key=this.session.session_key)
    response = this.post(reverse("account-sessions"), {"session": record.pk})
    assert response["Location"] == reverse("login")
    assert this.get("/users/").status_code == 302
    assert ConsoleSession.objects.get(pk=record.pk).ended_at is not None


def test_sign_out_everywhere_else_keeps_this_session():
    user = make_console_user(Role.BACK_OFFICE)
    this, second, third = (signed_in_client(user) for _ in range(3))
    this.post(reverse("account-sessions"), {"others": "1"})
    assert session_alive(this)
    assert not session_alive(second)
    assert not session_alive(third)
    assert SecurityEvent.objects.get(kind=Kind.SIGN_OUT).detail["sessions"] == 2


def test_someone_elses_session_id_or_garbage_changes_nothing():
    user = make_console_user(Role.BACK_OFFICE)
    this = signed_in_client(user)
    stranger = signed_in_client(make_console_user(Role.BACK_OFFICE))
    foreign = ConsoleSession.objects.get(session_key=stranger.session.session_key)
    for value in (str(foreign.pk), "nope", "", "9" * 30):
        response = this.post(reverse("account-sessions"), {"session": value}, follow=True)
        assert response.status_code == 200
        assert "That session has already ended." in response.content.decode()
    assert session_alive(stranger)
    assert session_alive(this)


def test_the_sign_out_button_ends_the_record_and_logs_sign_out():
    user = make_console_user(Role.BACK_OFFICE)
    client = signed_in_client(user)
    key = client.session.session_key
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert ConsoleSession.objects.get(session_key=key).ended_at is not None
    assert SecurityEvent.objects.filter(kind=Kind.SIGN_OUT, subject=user).count() == 1


def test_an_admin_sees_and_ends_another_users_sessions(admin_client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    victim = signed_in_client(user)
    url = reverse("users:user-sessions", args=[user.pk])
    detail = admin_client.get(reverse("users:user-detail", args=[user.pk])).content.decode()
    assert f'href="{url}"' in detail
    page = admin_client.get(url).content.decode()
    assert page.count('name="session"') == 1
    assert "this session" not in page
    record = ConsoleSession.objects.get(user=user)
    admin_client.post(url, {"session": record.pk})
    assert not session_alive(victim)
    event = SecurityEvent.objects.get(kind=Kind.SESSION_ENDED)
    assert (event.actor, event.subject, event.detail["reason"]) == (
        admin_user,
        user,
        "signed_out_by_admin",
    )


def test_an_admin_signs_a_user_out_of_every_session(admin_client):
    user = make_console_user(Role.BACK_OFFICE)
    first, second = signed_in_client(user), signed_in_client(user)
    admin_client.post(reverse("users:user-sessions", args=[user.pk]), {"all": "1"})
    assert not session_alive(first)
    assert not session_alive(second)


@pytest.mark.parametrize("role", [Role.BACK_OFFICE, Role.COMPLIANCE])
def test_other_roles_may_not_see_anothers_sessions(role):
    client = signed_in_client(make_console_user(role))
    user = make_console_user(Role.BACK_OFFICE)
    victim = signed_in_client(user)
    url = reverse("users:user-sessions", args=[user.pk])
    assert client.get(url).status_code == 403
    record = ConsoleSession.objects.get(user=user)
    assert client.post(url, {"session": record.pk}).status_code == 403
    assert session_alive(victim)
    detail = client.get(reverse("users:user-detail", args=[user.pk])).content.decode()
    assert f'href="{url}"' not in detail


def test_ones_own_user_sessions_url_goes_to_the_account_page(back_office_client, back_office_user):
    url = reverse("users:user-sessions", args=[back_office_user.pk])
    assert back_office_client.get(url)["Location"] == reverse("account-sessions")


def test_ended_sessions_are_not_listed(admin_client, admin_user):
    user = make_console_user(Role.BACK_OFFICE)
    signed_in_client(user)
    services.user_set_flag(user=user, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user)
    page = admin_client.get(reverse("users:user-sessions", args=[user.pk])).content.decode()
    assert "No active session." in page


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.4 Safari/605.1.15",
            "Safari 17 on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
            "Edge 124 on Windows",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome 131 on Linux",
        ),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_browsers_are_named_readably(agent, label):
    assert browser_label(agent) == label


def test_an_idle_session_opening_the_sign_in_page_gets_the_form(settings):
    settings.SESSION_IDLE_SECONDS = 900
    client = signed_in_client(make_console_user(Role.BACK_OFFICE))
    move_activity_back(client, 901)
    response = client.get(reverse("login") + "?next=/users/")
    assert response.status_code == 200
    assert b'name="password"' in response.content
    assert client.get("/users/").status_code == 302
