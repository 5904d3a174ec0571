from django.http import HttpRequest

from users.models import Role


def roles(request: HttpRequest) -> dict:
    """Role booleans for navigation. Views still check permissions themselves."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    names = user.role_names()
    return {
        "is_admin": Role.ADMIN in names or user.is_superuser,
        "is_compliance": Role.COMPLIANCE in names,
        "is_back_office": Role.BACK_OFFICE in names,
        "role_labels": [Role(name).label for name in sorted(names)],
    }
