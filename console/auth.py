"""The console's authentication backend: sign-in by email, and the signed-in user per request.

Who may sign in is `users.policy.can_use_console` (the contract's rule: the CONSOLE flag, not
deleted, a usable password and a console role). `ModelBackend.get_user` calls
`user_can_authenticate` on every request, so a user who loses the flag or role is signed out at
their next click, not at the end of their session.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value

from users.models import FeatureFlag, FeatureFlagGrant, Role, User
from users.policy import can_use_console
from users.selectors.compiled import CompiledQuery


def axes_username(request, credentials) -> str:
    """The account django-axes counts failures for: the address as the backend looks it up
    (case and surrounding spaces aside), so `ADMIN@bank.example` and `admin@bank.example ` are
    one account, not six tries each."""
    return str((credentials or {}).get("username") or "").strip().lower()


def lockout_response(request, original_response, credentials=None):
    """django-axes' answer to a locked-out sign-in: the page the refused sign-in rendered
    anyway, the form with the same neutral message as a wrong password, so that a lockout
    does not tell whether the account exists."""
    return original_response


class ConsoleBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username or kwargs.get("email")
        if not email or not password:
            return None
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            # Spend the same time as a real check so that response time does not tell
            # which addresses exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def user_can_authenticate(self, user) -> bool:
        return can_use_console(user)

    def get_user(self, user_id):
        """The signed-in user, or None once they may no longer use the console.

        Runs on every request, so it costs two queries instead of five: the user with its
        CONSOLE grant, then its groups and permissions together (what `has_perm` would
        otherwise fetch in two more queries on the first check of each request).
        """
        user = next(iter(_USER_WITH_CONSOLE_FLAG.raw(user_id)), None)
        if user is None or not user.has_console:
            return None  # refused without the second query
        groups, group_perms, user_perms = _groups_and_permissions(user.pk)
        user._role_names = groups & set(Role.values)
        if not can_use_console(user, holds_console_flag=user.has_console):
            return None
        # The caches ModelBackend fills itself on the first has_perm (see its
        # get_user_permissions / get_group_permissions / get_all_permissions). A superuser
        # passes every has_perm without them, so its caches are left to ModelBackend.
        if not user.is_superuser:
            user._user_perm_cache = user_perms
            user._group_perm_cache = group_perms
            user._perm_cache = user_perms | group_perms
        return user


_USER_WITH_CONSOLE_FLAG = CompiledQuery(
    lambda user_id: User.objects.filter(pk=user_id).annotate(
        has_console=Exists(
            FeatureFlagGrant.objects.filter(user=OuterRef("pk"), flag=FeatureFlag.CONSOLE)
        )
    )[:1]
)


def _groups_of(user_id: str) -> QuerySet[Any]:
    """Group names with each of their permissions ("app", "codename"), then the permissions
    held directly (group None); one UNION."""
    # order_by(): Permission's default ordering is not allowed inside a UNION.
    through_groups = (
        Group.objects.filter(user=user_id)
        .order_by()
        .values_list("name", "permissions__content_type__app_label", "permissions__codename")
    )
    direct = (
        Permission.objects.filter(user=user_id)
        .order_by()
        .values_list(Value(None, output_field=CharField()), "content_type__app_label", "codename")
    )
    return through_groups.union(direct, all=True)


_GROUPS_AND_PERMISSIONS = CompiledQuery(_groups_of)


def _groups_and_permissions(user_id: str) -> tuple[set[str], set[str], set[str]]:
    """(group names, "app.codename" through groups, "app.codename" held directly), one query."""
    groups: set[str] = set()
    group_perms: set[str] = set()
    user_perms: set[str] = set()
    for group, app_label, codename in _GROUPS_AND_PERMISSIONS.rows(user_id):
        if group is None:
            user_perms.add(f"{app_label}.{codename}")
            continue
        groups.add(group)
        if codename is not None:
            group_perms.add(f"{app_label}.{codename}")
    return groups, group_perms, user_perms
