"""Factories that build users through the services, so test data has versions and history."""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import pgtrigger
import pyotp
from django.test import RequestFactory
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from users import services
from users.models import FeatureFlag, Status, User, needs_reason_code
from users.services import sessions
from users.views.common import FACTOR_VERIFIED_AT


def behind_the_services():
    """Writes a test makes on purpose behind the services' back (a raw value, an event's time,
    a row removed), past the database's guards (users/models.py: write-once, a version per
    change, append-only history), which otherwise refuse them on PostgreSQL."""
    return pgtrigger.ignore()


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


def move_to(user: User, status: str, *, actor: User | None = None, **kwargs: Any) -> User:
    """`user` moved to `status`, with a reason code when the move needs one (issue 14.3)."""
    if needs_reason_code(user.status, status):
        kwargs.setdefault("reason_code", "OTHER" if status == Status.ACTIVE else "CLIENT_REQUEST")
        kwargs.setdefault("reason", "Test setup")
    return services.user_change_status(user=user, status=status, actor=actor, **kwargs)


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


def totp_device(user: User) -> TOTPDevice:
    """The user's confirmed authenticator app (one is created the first time)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test app", confirmed=True)


def sign_in(client: Any, user: User, *, second_factor: bool = True) -> None:
    """`client.force_login`, and (unless told not to) past the second factor a moment ago,
    as if the person had typed a code: what every console page needs."""
    client.force_login(user)
    if second_factor:
        pass_second_factor(client, user)


def pass_second_factor(client: Any, user: User) -> None:
    """Mark the client's session as past the second factor a moment ago."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session[FACTOR_VERIFIED_AT] = time.time()
    # As `sessions.session_start` at the real second-factor step: the idle clock and the record.
    session[sessions.LAST_ACTIVITY] = session[sessions.LAST_SEEN_WRITTEN] = time.time()
    session.save()
    sessions.session_record(session_key=session.session_key, user=user, ip_address="127.0.0.1")


def password_sign_in(client: Any, email: str, password: str, user: User | None = None) -> bool:
    """`client.login` with the request django-axes needs; with `user`, past the second factor
    too. True when the password step passed."""
    if not client.login(request=sign_in_request(), username=email, password=password):
        return False
    if user is not None:
        pass_second_factor(client, user)
    return True


def sign_in_request() -> Any:
    """A request for `authenticate()`: django-axes counts failures per request's client."""
    return RequestFactory().post("/login/", REMOTE_ADDR="127.0.0.1")


def current_code(device: TOTPDevice) -> str:
    """What the person's authenticator app shows now (pyotp, an independent TOTP)."""
    return pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now()
