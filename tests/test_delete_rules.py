"""Issue 10.6: who may delete (and restore) whom. Nobody deletes themselves; only an admin
deletes or restores an admin. The policy answers, every front end asks it, and the service
enforces it too (an API token acts as its user: it cannot delete that user)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from tests.factories import make_console_user, make_user, sign_in
from tests.test_api import api_for
from users import policy
from users.models import Role, User
from users.services import users as services

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


# --- the policy -------------------------------------------------------------------------------


def test_policy_nobody_deletes_themselves(admin_user, back_office_user):
    for actor in (admin_user, back_office_user):
        actor = fresh(actor)
        assert policy.may_delete(actor) is True
        assert policy.may_delete(actor, actor) is False
        with pytest.raises(PermissionDenied, match=r"You may not delete yourself\."):
            policy.check_delete(actor, actor)
    admin = fresh(admin_user)
    assert policy.may_restore(admin, admin) is False
    with pytest.raises(PermissionDenied, match=r"You may not restore yourself\."):
        policy.check_restore(admin, admin)


def test_policy_only_an_admin_deletes_an_admin(admin_user, back_office_user):
    other_admin = make_console_user(Role.ADMIN)
    back_office = fresh(back_office_user)
    admin = fresh(admin_user)
    assert policy.may_delete(back_office, other_admin) is False
    with pytest.raises(PermissionDenied, match=r"Only an admin may delete an admin\."):
        policy.check_delete(back_office, other_admin)
    assert policy.may_delete(admin, other_admin) is True
    # A back-office person still deletes a back-office colleague or a customer.
    assert policy.may_delete(back_office, make_console_user(Role.BACK_OFFICE)) is True
    assert policy.may_delete(back_office, make_user()) is True


def test_policy_without_the_permission_the_role_message_comes_first(compliance_user):
    with pytest.raises(PermissionDenied, match=r"Your role may not delete users\."):
        policy.check_delete(fresh(compliance_user), make_user())


# --- the service ------------------------------------------------------------------------------


def test_service_refuses_deleting_oneself(back_office_user):
    with pytest.raises(PermissionDenied):
        services.user_delete(user=back_office_user, actor=fresh(back_office_user))
    assert not fresh(back_office_user).deleted


def test_service_refuses_a_non_admin_deleting_or_restoring_an_admin(admin_user, back_office_user):
    target = make_console_user(Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.user_delete(user=target, actor=fresh(back_office_user))
    assert not fresh(target).deleted
    services.user_delete(user=target, actor=fresh(admin_user))
    assert fresh(target).deleted
    with pytest.raises(PermissionDenied):
        services.user_restore(user=target, actor=fresh(back_office_user))
    assert fresh(target).deleted


def test_service_without_an_actor_is_the_system(admin_user):
    services.user_delete(user=admin_user, actor=None)
    assert fresh(admin_user).deleted


# --- the console ------------------------------------------------------------------------------


def test_detail_page_offers_no_delete_of_oneself(admin_user):
    client = Client()
    sign_in(client, admin_user)
    page = client.get(reverse("users:user-detail", args=[admin_user.pk])).content.decode()
    assert reverse("users:user-delete", args=[admin_user.pk]) not in page
    url = reverse("users:user-delete", args=[admin_user.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"expected_version": admin_user.version}).status_code == 403
    assert not fresh(admin_user).deleted


def test_detail_page_back_office_may_not_delete_an_admin(back_office_user, admin_user):
    client = Client()
    sign_in(client, back_office_user)
    customer = make_user()
    assert (
        reverse("users:user-delete", args=[customer.pk])
        in client.get(reverse("users:user-detail", args=[customer.pk])).content.decode()
    )
    page = client.get(reverse("users:user-detail", args=[admin_user.pk])).content.decode()
    assert reverse("users:user-delete", args=[admin_user.pk]) not in page
    url = reverse("users:user-delete", args=[admin_user.pk])
    assert client.post(url, {"expected_version": admin_user.version}).status_code == 403
    assert not fresh(admin_user).deleted


def test_detail_page_an_admin_restores_an_admin(admin_user):
    other = make_console_user(Role.ADMIN)
    services.user_delete(user=other, actor=fresh(admin_user))
    client = Client()
    sign_in(client, admin_user)
    page = client.get(reverse("users:user-detail", args=[other.pk])).content.decode()
    assert reverse("users:user-restore", args=[other.pk]) in page
    assert client.post(reverse("users:user-restore", args=[other.pk])).status_code == 302
    assert not fresh(other).deleted


# --- the API ----------------------------------------------------------------------------------


def test_api_token_cannot_delete_its_own_user(back_office_user):
    api = api_for(back_office_user)
    response = api.delete(f"/api/users/{back_office_user.pk}")
    assert response.status_code == 403
    assert "yourself" in response.content.decode()
    assert not fresh(back_office_user).deleted


def test_api_back_office_cannot_delete_an_admin(back_office_user, admin_user):
    response = api_for(back_office_user).delete(f"/api/users/{admin_user.pk}")
    assert response.status_code == 403
    assert "Only an admin may delete an admin." in response.content.decode()
    assert not fresh(admin_user).deleted
    other = make_console_user(Role.ADMIN)
    assert api_for(admin_user).delete(f"/api/users/{other.pk}").status_code == 200
    assert fresh(other).deleted


# --- the Django admin -------------------------------------------------------------------------


def test_django_admin_refuses_deleting_oneself(admin_user):
    client = Client()
    sign_in(client, admin_user)
    url = reverse("admin:users_user_delete", args=[admin_user.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert not fresh(admin_user).deleted


def test_django_admin_bulk_delete_skips_oneself(admin_user):
    client = Client()
    sign_in(client, admin_user)
    other = make_user()
    response = client.post(
        reverse("admin:users_user_changelist"),
        {"action": "delete_selected", "_selected_action": [admin_user.pk, other.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert fresh(other).deleted
    assert not fresh(admin_user).deleted
    assert "You may not delete yourself." in response.content.decode()
