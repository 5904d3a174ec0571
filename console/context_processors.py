import math

from django.conf import settings
from django.http import HttpRequest

from users import policy
from users.models import Role
from users.selectors.change_requests import open_count
from users.services import sessions


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
    idle = settings.SESSION_IDLE_SECONDS
    left = sessions.idle_seconds_left(request)
    return {
        "signed_in": True,
        # For static/console/session.js: the idle timeout and how long before it to warn.
        "session_idle": {
            "seconds": idle,
            "minutes": max(1, idle // 60),
            # What is left now, and what a request surely leaves (the stored time moves on
            # at most once a minute).
            "left": math.ceil(idle if left is None else max(0, left)),
            "after_request": idle - sessions.touch_granularity(),
            "warn_seconds": min(120, max(1, idle // 3)),
        },
        "role_labels": [Role(name).label for name in sorted(names)],
        "may": {
            "see_users": policy.sees_everyone(user),
            "create": policy.may_create(user),
            "manage_tokens": policy.may_manage_tokens(user),
            "use_admin": policy.may_use_admin(user),
            "view_security_log": policy.may_view_security_log(user),
            "approve": policy.may_see_approvals(user),
            "view_access_log": policy.may_view_access_log(user),
            "view_dashboard": policy.may_view_dashboard(user),
        },
        # The Approvals badge: counted only when a page's navigation shows it (a callable:
        # the template calls it), never for an htmx region.
        "approvals_count": open_count,
    }
