from django.http import HttpRequest

from users.models import Role


def roles(request: HttpRequest) -> dict:
    """The user's role labels, for the user menu and the 403 page (display only: views check
    permissions themselves)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    names = user.role_names()
    return {"role_labels": [Role(name).label for name in sorted(names)]}
