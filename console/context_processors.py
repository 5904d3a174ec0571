from django.conf import settings
from django.http import HttpRequest

from users import policy
from users.models import Role


def roles(request: HttpRequest) -> dict:
    """The user's role labels (the user menu, the 403 page) and what the navigation offers,
    as the policy answers it (the views behind the links ask it again)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if settings.CONSOLE_MFA_REQUIRED and not user.is_verified():
        # Past the password only: the second-factor pages show no navigation.
        return {"signed_in": False}
    names = user.role_names()
    return {
        "signed_in": True,
        "role_labels": [Role(name).label for name in sorted(names)],
        "may": {
            "see_users": policy.sees_everyone(user),
            "create": policy.may_create(user),
            "manage_tokens": policy.may_manage_tokens(user),
            "use_admin": policy.may_use_admin(user),
            "view_security_log": policy.may_view_security_log(user),
        },
    }
