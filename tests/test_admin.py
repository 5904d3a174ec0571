"""The Django admin writes only through the services: versions, write-once and history hold."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from users import services
from users.models import ChangeRequest, Role, StatusChange, User, UserVersion

pytestmark = pytest.mark.django_db


class FormFields(HTMLParser):
    """What a browser would submit from the page's main form (disabled inputs left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._select_value: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("submit", "button"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(a.get("value") or "")
        elif tag == "select" and name and "disabled" not in a:
            self._select, self._select_value = name, None
        elif tag == "option" and self._select is not None:
            if "selected" in a or self._select_value is None:
                self._select_value = a.get("value") or ""
        elif tag == "textarea" and name and "disabled" not in a:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            self.data[self._select] = [self._select_value or ""]
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.data[self._textarea][0] += (
                data.lstrip("\n") if not self.data[self._textarea][0] else data
            )


def form_data(client, url: str) -> dict[str, list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    parser = FormFields()
    parser.feed(response.content.decode())
    data = parser.data
    data.pop("csrfmiddlewaretoken", None)
    return data


def change_url(user: User) -> str:
    return reverse("admin:users_user_change", args=[user.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_admin_is_for_admins_only(back_office_user, compliance_user, admin_user):
    # One client per person: the *_client fixtures share pytest-django's single `client`.
    url = reverse("admin:users_user_changelist")
    assert Client().get(url).status_code == 302  # to the admin's sign-in form
    for person, status in ((back_office_user, 403), (compliance_user, 403), (admin_user, 200)):
        signed_in = Client()
        sign_in(signed_in, person)
        assert signed_in.get(url).status_code == status, person.email


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/login/",
        "/admin/login/?next=/admin/",
        "/admin/users/user/",
        "/admin/password_change/",
        "/admin/no/such/page/",
    ],
)
def test_signed_in_outsiders_get_the_console_403_page(back_office_client, back_office_user, url):
    """Not Django's "log in to a different account" form: the console's 403 page."""
    response = back_office_client.get(url)
    assert response.status_code == 403
    assert response.templates[0].name == "403.html"
    html = response.content.decode()
    assert "You do not have access to this" in html
    assert f"Signed in as {back_office_user.email}" in html
    assert "log in to a different account" not in html.lower()


def test_anonymous_visitors_sign_in_through_the_console(client):
    """The admin has no password form of its own to get around the second factor and the
    throttling: its sign-in page sends to the console's, coming back to the admin."""
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    login = client.get(response["Location"])
    assert login.status_code == 302
    assert login["Location"] == f"{reverse('login')}?next=/admin/"
    assert client.post(reverse("admin:login"), {"username": "x", "password": "y"})[
        "Location"
    ].startswith(reverse("login"))


def test_a_password_only_session_does_not_reach_the_admin(client):
    admin = make_console_user(Role.ADMIN)
    sign_in(client, admin, second_factor=False)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin-enrol"))


def test_admins_still_get_in(admin_client):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get(reverse("admin:login")).status_code == 302  # already signed in


def test_favicon_ico_answers(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("console/favicon.svg")
    assert client.get(response["Location"]).status_code == 200


def test_changelist_and_change_form_render(admin_client, admin_user):
    user = make_user(actor=admin_user)
    assert admin_client.get(reverse("admin:users_user_changelist")).status_code == 200
    response = admin_client.get(change_url(user))
    assert response.status_code == 200
    html = response.content.decode()
    # Write-once fields that are set are shown read-only.
    assert 'name="email"' in html
    assert "Write-once: set, so it cannot be changed." in html
    # The history is there for whoever may read it.
    assert "status_changes-TOTAL_FORMS" in html
    assert "versions-TOTAL_FORMS" in html


def test_add_goes_through_the_service(admin_client, admin_user):
    data = form_data(admin_client, reverse("admin:users_user_add"))
    data.update(
        {
            "first_name": ["Lena"],
            "last_name": ["Maes"],
            "email": ["lena.maes@example.com"],
            "phone": ["0470 11 22 33"],
            "residency_country": ["be"],
            "bank_account_number": ["MT84 MALT 0110 0001 2345 MTLC AST0 01S"],  # 38 typed
            "feature_flags": ["ROBO_ADVISOR"],
        }
    )
    response = admin_client.post(reverse("admin:users_user_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="lena.maes@example.com")
    assert user.phone == "+32470112233"
    assert user.bank_account_number == "MT84MALT011000012345MTLCAST001S"
    assert user.flag_names() == {"ROBO_ADVISOR"}
    version = UserVersion.objects.get(user=user)
    assert version.version == 1
    assert version.author == admin_user
    assert StatusChange.objects.get(user=user).changed_by == admin_user


def test_change_goes_through_the_service(admin_client, admin_user):
    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    data.update({"first_name": ["Janet"], "language": ["nl-be"], "feature_flags": ["CONSOLE"]})
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = User.objects.get(pk=user.pk)
    assert (stored.first_name, stored.language, stored.version) == ("Janet", "nl-BE", 2)
    version = UserVersion.objects.get(user=user, version=2)
    assert version.author == admin_user
    assert version.changes == {"first_name": ["Jane", "Janet"], "language": ["", "nl-BE"]}
    # Granting CONSOLE waits for a second person (four-eyes), from the admin too.
    assert stored.flag_names() == set()
    request = ChangeRequest.objects.get(user=user, state="PENDING")
    assert (request.kind, request.proposed_by) == ("console_flag", admin_user)
    assert request.changes == {"feature_flags": [[], ["CONSOLE"]]}
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Waiting for approval" in m and "CONSOLE" in m for m in shown)


def test_unchanged_form_makes_no_version(admin_client, admin_user):
    user = make_user(
        actor=admin_user,
        address={
            "line1": "Rue Neuve 1",
            "city": "Brussels",
            "postal_code": "1000",
            "country_code": "BE",
        },
        metadata={"segment": "retail"},
        nationalities=["BE"],
    )
    data = form_data(admin_client, change_url(user))
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.get(pk=user.pk).version == 1


def test_crafted_post_changing_the_email_is_refused(admin_client, admin_user):
    user = make_user(actor=admin_user, email="jane@example.com")
    data = form_data(admin_client, change_url(user))
    assert "email" not in data  # disabled: the browser does not send it
    data["email"] = ["mallory@example.com"]
    data["first_name"] = ["Changed"]

    response = admin_client.post(change_url(user), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Email is write-once: it was set to jane@example.com and cannot be changed." in html
    stored = User.objects.get(pk=user.pk)
    assert stored.email == "jane@example.com"
    assert stored.first_name == "Jane"
    assert stored.version == 1
    assert UserVersion.objects.filter(user=user).count() == 1


def test_crafted_post_changing_the_phone_is_refused(admin_client, admin_user):
    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    data["phone"] = ["+32470999999"]
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 200
    assert "Phone is write-once" in response.content.decode()
    assert User.objects.get(pk=user.pk).phone == user.phone
    assert UserVersion.objects.filter(user=user).count() == 1


def test_invalid_values_are_form_errors(admin_client, admin_user):
    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    data.update(
        {
            "bank_account_number": ["BE01234567891234"],
            "address": ['{"line1": "Rue Neuve 1"}'],
            "language": ["english"],
        }
    )
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "IBAN check digits are wrong." in html
    assert "City is required when the address is given." in html
    assert "english is not a BCP 47 language tag" in html
    assert User.objects.get(pk=user.pk).version == 1


def test_off_flow_status_needs_a_reason_code_in_the_admin(admin_client, admin_user):
    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    data["status"] = ["ACTIVE"]
    data["status_reason"] = ["Signed at the branch"]
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 200
    assert "off the recommended flow: choose a reason code." in response.content.decode()
    assert User.objects.get(pk=user.pk).status == "WAITING_FOR_VERIFICATION"

    data["status_reason_code"] = ["SIGNED_ON_PAPER"]
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 302
    change = StatusChange.objects.filter(user=user).latest("version")
    assert (change.to_status, change.off_flow, change.reason, change.reason_code_id) == (
        "ACTIVE",
        True,
        "Signed at the branch",
        "SIGNED_ON_PAPER",
    )
    assert change.changed_by == admin_user


def test_stale_admin_form_is_refused(admin_client, admin_user):
    from users import services

    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    services.user_update(user=user, data={"last_name": "Meanwhile"}, actor=admin_user)
    data["first_name"] = ["Mine"]

    response = admin_client.post(change_url(user), data)

    assert response.status_code == 302
    assert any("changed by someone else since version 1" in m for m in messages_of(response))
    stored = User.objects.get(pk=user.pk)
    assert (stored.first_name, stored.last_name, stored.version) == ("Jane", "Meanwhile", 2)


def test_duplicate_email_on_add_is_a_form_error(admin_client):
    make_user(email="taken@example.com")
    data = form_data(admin_client, reverse("admin:users_user_add"))
    data["email"] = ["TAKEN@example.com"]
    response = admin_client.post(reverse("admin:users_user_add"), data)
    assert response.status_code == 200
    assert "Email is already used by another user." in response.content.decode()
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_roles_and_console_in_the_admin_are_proposed_then_versioned(admin_client, admin_user):
    user = make_user(actor=admin_user)
    data = form_data(admin_client, change_url(user))
    data["roles"] = ["compliance"]
    data["feature_flags"] = ["CONSOLE"]
    response = admin_client.post(change_url(user), data)
    assert response.status_code == 302
    stored = User.objects.get(pk=user.pk)
    assert stored.role_names() == set()
    assert stored.version == 1
    requests = ChangeRequest.objects.filter(user=user, state="PENDING").order_by("kind")
    assert [(r.kind, r.changes) for r in requests] == [
        ("console_flag", {"feature_flags": [[], ["CONSOLE"]]}),
        ("roles", {"roles": [[], ["compliance"]]}),
    ]
    checker = make_console_user(Role.ADMIN)
    for request in requests:
        services.change_request_approve(change_request=request, actor=checker)
    stored = User.objects.get(pk=user.pk)
    assert stored.role_names() == {"compliance"}
    assert stored.flag_names() == {"CONSOLE"}
    last = UserVersion.objects.get(user=user, version=3)
    assert (last.author, last.approved_by) == (admin_user, checker)


def test_admin_delete_is_soft_and_restore_action(admin_client, admin_user):
    user = make_user(actor=admin_user)
    confirm = admin_client.get(reverse("admin:users_user_delete", args=[user.pk]))
    assert confirm.status_code == 200
    # Soft delete: the page must not announce that the history goes too.
    page = confirm.content.decode().lower()
    assert "user version" not in page
    assert "status change" not in page
    assert "feature flag grant" not in page
    response = admin_client.post(
        reverse("admin:users_user_delete", args=[user.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    stored = User.objects.get(pk=user.pk)
    assert stored.deleted
    assert UserVersion.objects.get(user=user, version=2).changes == {"deleted": [False, True]}

    response = admin_client.post(
        reverse("admin:users_user_changelist"),
        {"action": "restore_selected", "_selected_action": [user.pk]},
    )
    assert response.status_code == 302
    stored = User.objects.get(pk=user.pk)
    assert not stored.deleted
    assert stored.version == 3
    assert "Restored 1 user(s)." in messages_of(response)


# --- what the admin lets one do is the policy's answer ------------------------------------------


def admin_without(client, codename: str):
    """A client signed in as an admin whose role lacks `codename` (the admin role has all)."""
    Group.objects.get(name=Role.ADMIN).permissions.remove(Permission.objects.get(codename=codename))
    sign_in(client, make_console_user(Role.ADMIN))
    return client


def test_history_inlines_need_view_history(client, admin_user):
    user = make_user(actor=admin_user)
    html = admin_without(client, "view_history").get(change_url(user)).content.decode()
    assert 'name="first_name"' in html
    assert "status_changes-TOTAL_FORMS" not in html
    assert "versions-TOTAL_FORMS" not in html


def test_the_restore_action_needs_restore_user(client, admin_user):
    user = make_user(actor=admin_user)
    services.user_delete(user=user, actor=admin_user)
    client = admin_without(client, "restore_user")
    page = client.get(reverse("admin:users_user_changelist")).content.decode()
    assert 'value="restore_selected"' not in page
    client.post(
        reverse("admin:users_user_changelist"),
        {"action": "restore_selected", "_selected_action": [user.pk]},
    )
    assert User.objects.get(pk=user.pk).deleted


def test_deleting_in_the_admin_needs_delete_user(client, admin_user):
    user = make_user(actor=admin_user)
    client = admin_without(client, "delete_user")
    url = reverse("admin:users_user_delete", args=[user.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert not User.objects.get(pk=user.pk).deleted


def test_adding_in_the_admin_needs_add_user(client):
    client = admin_without(client, "add_user")
    assert client.get(reverse("admin:users_user_add")).status_code == 403


@pytest.mark.parametrize(
    ("codename", "change"),
    [
        ("manage_roles", {"roles": ["compliance"]}),
        ("manage_feature_flags", {"feature_flags": ["ROBO_ADVISOR"]}),
        ("change_status", {"status": ["WAITING_FOR_SIGNATURE"]}),
    ],
)
def test_a_change_needs_the_permission_of_each_part(client, admin_user, codename, change):
    """As in the API: the part needs its permission, the rest of the form does not."""
    user = make_user(actor=admin_user)
    client = admin_without(client, codename)
    data = form_data(client, change_url(user))
    assert client.post(change_url(user), {**data, **change}).status_code == 403
    assert User.objects.get(pk=user.pk).version == user.version
    data["first_name"] = ["Changed"]
    assert client.post(change_url(user), data).status_code == 302
    assert User.objects.get(pk=user.pk).first_name == "Changed"
