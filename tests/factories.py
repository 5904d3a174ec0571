"""Factories that build users through the services, so test data has versions and history."""

from __future__ import annotations

import itertools
from typing import Any

from users import services
from users.models import FeatureFlag, User

# Valid, distinct test values: real IBANs (schwifty-checked) and valid Belgian mobiles.
VALID_IBANS = [
    "BE71096123456769",
    "DE89370400440532013000",
    "GB33BUKB20201555555555",
    "NL91ABNA0417164300",
    "FR1420041010050500013M02606",
]
_counter = itertools.count(1)


def phone_number(n: int) -> str:
    return f"+32470{n % 1000000:06d}"


def make_user(*, actor: User | None = None, **data: Any) -> User:
    """A valid user; any contract field can be overridden."""
    n = next(_counter)
    defaults = {
        "first_name": "Jane",
        "last_name": f"Doe{n}",
        "email": f"user{n}@example.com",
        "phone": phone_number(n),
        "external_id": f"ext-{n}",
    }
    defaults.update(data)
    return services.user_create(data=defaults, actor=actor)


def make_console_user(role: str, *, password: str = "correct-horse-battery", **data: Any) -> User:
    n = next(_counter)
    return services.user_create(
        data={
            "email": f"{role}{n}@bank.example",
            "first_name": role.replace("_", " ").title(),
            "last_name": "Staff",
            "feature_flags": [FeatureFlag.CONSOLE],
            **data,
        },
        actor=None,
        password=password,
        roles=[role],
    )
