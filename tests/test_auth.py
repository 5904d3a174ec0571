"""The console's login rule: CONSOLE flag, not deleted, usable password, and a role."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from console.auth import ConsoleBackend
from tests.factories import make_console_user, make_user, password_sign_in, sign_in_request
from users import services
from users.models import FeatureFlag, Role, User, UserVersion
from users.policy import can_use_console

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def signs_in(email: str, password: str = PASSWORD) -> bool:
    return authenticate(sign_in_request(), username=email, password=password) is not None


def test_console_user_with_flag_role_and_password_signs_in():
    user = make_console_user(Role.BACK_OFFICE)
    assert can_use_console(user)
    assert signs_in(user.email)
    assert signs_in(user.email.upper())  # the email is matched case-insensitively
    assert not signs_in(user.email, "wrong-password")
    assert not signs_in("nobody@bank.example")


@pytest.mark.parametrize("role", Role.values)
def test_every_role_may_sign_in(role):
    assert signs_in(make_console_user(role).email)


def test_without_console_flag(admin_user):
    user = make_console_user(Role.ADMIN)
    services.user_set_flag(user=user, flag=FeatureFlag.CONSOLE, enabled=False, actor=admin_user)
    assert not signs_in(user.email)


@pytest.mark.usefixtures("without_four_eyes")
def test_without_a_role(admin_user):
    user = make_console_user(Role.COMPLIANCE)
    services.user_set_roles(user=user, roles=[], actor=admin_user)
    assert not signs_in(user.email)


def test_deleted_user(admin_user):
    user = make_console_user(Role.ADMIN)
    services.user_delete(user=user, actor=admin_user)
    assert not signs_in(user.email)


def test_without_a_usable_password():
    user = services.user_create(
        data={"email": "nopass@bank.example", "feature_flags": ["CONSOLE"]},
        actor=None,
        roles=[Role.ADMIN],
    )
    assert not user.has_usable_password()
    assert not can_use_console(user)
    assert not signs_in(user.email, "")


def test_investor_never_signs_in():
    user = make_user()
    services.user_set_password(user=user, password=PASSWORD)
    assert not signs_in(user.email)


def test_login_view_signs_in_and_refuses(client):
    user = make_console_user(Role.ADMIN)
    response = client.post(reverse("login"), {"username": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == user.pk


@pytest.mark.parametrize(
    "revoke",
    [
        lambda user, actor: services.user_set_flag(
            user=user, flag=FeatureFlag.CONSOLE, enabled=False, actor=actor
        ),
        lambda user, actor: services.user_set_roles(user=user, roles=[], actor=actor),
        lambda user, actor: services.user_delete(user=user, actor=actor),
    ],
    ids=["flag", "roles", "deleted"],
)
@pytest.mark.usefixtures("without_four_eyes")
def test_losing_the_right_ends_an_open_session_at_the_next_request(client, admin_user, revoke):
    user = make_console_user(Role.ADMIN)
    assert password_sign_in(client, user.email, PASSWORD, user)
    admin_index = reverse("admin:index")
    assert client.get(admin_index).status_code == 200

    revoke(user, admin_user)

    response = client.get(admin_index)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    # The admin's sign-in is the console's.
    assert client.get(response["Location"])["Location"].startswith(reverse("login"))


def test_password_change_ends_other_sessions(client):
    user = make_console_user(Role.ADMIN)
    assert password_sign_in(client, user.email, PASSWORD, user)
    services.user_set_password(user=user, password="a-brand-new-passphrase")
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_create_superuser_signs_in_at_once(client):
    user = User.objects.create_superuser(email="root@bank.example", password="super-long-pass")
    assert user.is_superuser
    assert user.is_staff
    assert user.flag_names() == {"CONSOLE"}
    assert user.role_names() == {"admin"}
    assert UserVersion.objects.get(user=user).changes["roles"] == [[], ["admin"]]
    assert password_sign_in(client, "root@bank.example", "super-long-pass", user)
    assert client.get(reverse("admin:index")).status_code == 200


def test_createsuperuser_command_signs_in_at_once(client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "command-line-pass")
    call_command("createsuperuser", interactive=False, email="ops@bank.example", verbosity=0)
    user = User.objects.get(email="ops@bank.example")
    assert user.is_superuser
    assert can_use_console(user)
    assert password_sign_in(client, "ops@bank.example", "command-line-pass")


def test_create_user_manager_shim_goes_through_the_service():
    user = User.objects.create_user(email="plain@example.com", password="x-long-password")
    assert user.version == 1
    assert user.check_password("x-long-password")
    assert not can_use_console(user)  # no flag, no role


def test_each_request_loads_the_user_roles_and_permissions_in_two_queries(
    django_assert_num_queries,
):
    # get_user runs on every request: the user with its CONSOLE grant, then groups and
    # permissions together. has_perm must then answer from what was loaded, as ModelBackend
    # would have from its own queries (including a permission granted to the user directly).
    user = make_console_user(Role.COMPLIANCE, email="perm-check@bank.example")
    user.user_permissions.add(Permission.objects.get(codename="export_users"))
    with django_assert_num_queries(2):
        loaded = ConsoleBackend().get_user(user.pk)
        assert loaded.role_names() == {Role.COMPLIANCE}
        assert loaded.has_perm("users.change_status")
        assert loaded.has_perm("users.export_users")
        assert not loaded.has_perm("users.manage_feature_flags")
        granted = loaded.get_all_permissions()
    assert granted == ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    assert "users.export_users" in granted


def test_a_group_that_is_not_a_role_gives_its_permissions_but_no_console_access():
    user = make_console_user(Role.BACK_OFFICE, email="extra-group@bank.example")
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.add(Permission.objects.get(codename="view_history"))
    user.groups.add(auditors)
    loaded = ConsoleBackend().get_user(user.pk)
    assert loaded.role_names() == {Role.BACK_OFFICE}
    assert loaded.has_perm("users.view_history")
    user.groups.remove(Group.objects.get(name=Role.BACK_OFFICE))
    assert ConsoleBackend().get_user(user.pk) is None


def test_the_compiled_get_user_queries_answer_for_each_user_they_are_run_for():
    # Compiled once, run with each request's user id: never the first user's answer again.
    compliance = make_console_user(Role.COMPLIANCE, email="first@bank.example")
    back_office = make_console_user(Role.BACK_OFFICE, email="second@bank.example")
    investor = make_user(email="investor@example.com")
    backend = ConsoleBackend()
    assert backend.get_user(compliance.pk).role_names() == {Role.COMPLIANCE}
    second = backend.get_user(back_office.pk)
    assert second.pk == back_office.pk
    assert second.role_names() == {Role.BACK_OFFICE}
    assert second.has_perm("users.add_user")
    assert not second.has_perm("users.change_status")
    assert backend.get_user(investor.pk) is None
    assert backend.get_user("U" + "0" * 26) is None
