"""Who may sign in to the console, and the role helpers views use.

The contract's rule: a User may log in only when it has the CONSOLE flag, is not deleted, has a
usable password and holds one of the console roles. `ModelBackend.get_user` calls
`user_can_authenticate` on every request, so a user who loses the flag or role is signed out at
their next click, not at the end of their session.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.db.models import Exists, OuterRef

from users.models import FeatureFlag, FeatureFlagGrant, Role, User


def can_use_console(user: User) -> bool:
    return (
        user.is_active
        and not user.deleted
        and user.has_usable_password()
        and FeatureFlag.CONSOLE in user.flag_names()
        and bool(user.role_names())
    )


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
        # One query for the user, its CONSOLE grant and its roles instead of three.
        user = (
            User.objects.filter(pk=user_id)
            .annotate(
                has_console=Exists(
                    FeatureFlagGrant.objects.filter(user=OuterRef("pk"), flag=FeatureFlag.CONSOLE)
                )
            )
            .first()
        )
        if user is None:
            return None
        if not user.has_console:
            return None
        user._role_names = set(
            user.groups.filter(name__in=Role.values).values_list("name", flat=True)
        )
        if user.deleted or not user.has_usable_password() or not user._role_names:
            return None
        return user
