"""Second factors: TOTP (an authenticator app) with single-use recovery codes, and passkeys
(django-otp-webauthn registers those itself; this module only lists and removes them).

The devices are django-otp's: `TOTPDevice` and `StaticDevice` (the recovery codes, one
`StaticToken` each, deleted when used). A user "has a factor" when one confirmed device exists.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from users.models import User
from users.selectors.compiled import CompiledQuery
from users.services.security import Kind, security_event
from users.services.sessions import end_sessions

RECOVERY_CODES = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def has_factor(user: User) -> bool:
    return user_has_device(user, confirmed=True)


def passkeys_of(user: User) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("pk"))


def _count_of(rows: QuerySet[Any], user_field: str) -> Coalesce:
    """`rows` counted for the outer user, as a scalar subquery (0 when there are none)."""
    counted = rows.filter(**{user_field: OuterRef("pk")}).order_by().values(user_field)
    return Coalesce(Subquery(counted.annotate(n=Count("pk")).values("n")[:1]), 0)


# One query for the three counts, compiled once: the ORM takes longer to write these three
# subqueries than the database takes to run them (an admin's detail page shows the counts).
_FACTOR_COUNTS = CompiledQuery(
    lambda user_id: User.objects.filter(pk=user_id).values_list(
        _count_of(TOTPDevice.objects.filter(confirmed=True), "user"),
        _count_of(WebAuthnCredential.objects.filter(confirmed=True), "user"),
        _count_of(StaticToken.objects.filter(device__confirmed=True), "device__user"),
    )
)


def factor_summary(user: User) -> dict[str, int]:
    """How many of each kind the user has (the detail page, the enrolment page), in one query."""
    totp, passkeys, recovery_codes = next(iter(_FACTOR_COUNTS.rows(user.pk)), (0, 0, 0))
    return {"totp": totp, "passkeys": passkeys, "recovery_codes": recovery_codes}


@transaction.atomic
def totp_start(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator for the enrolment page (any earlier unconfirmed one
    goes: only the QR code on screen now can be confirmed)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


@transaction.atomic
def totp_ensure(*, user: User, name: str = TOTP_NAME) -> TOTPDevice:
    """The user's confirmed authenticator, created when missing (seeding and provisioning:
    the key is then handed over out of band)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it typed in (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def pending_totp(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


@transaction.atomic
def totp_confirm(
    *, user: User, device: TOTPDevice, token: str, request: HttpRequest | None = None
) -> list[str] | None:
    """Confirm the authenticator with a code it shows. Returns the new recovery codes (shown
    once), or None when the code is wrong (nothing changes)."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
    if not device.verify_token(token.strip().replace(" ", "")):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user)
    security_event(
        kind=Kind.FACTOR_ENROLLED,
        request=request,
        actor=user,
        subject=user,
        detail={"factor": "totp"},
    )
    return codes


@transaction.atomic
def recovery_codes_renew(*, user: User, request: HttpRequest | None = None) -> list[str]:
    """New recovery codes; the old ones stop working."""
    codes = _new_recovery_codes(user)
    security_event(
        kind=Kind.FACTOR_ENROLLED,
        request=request,
        actor=user,
        subject=user,
        detail={"factor": "recovery_codes"},
    )
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@dataclass(frozen=True)
class CodeCheck:
    """The device that accepted a code, or None; and, when devices refused to check at all
    after wrong codes (django-otp's throttle: 1, 2, 4, ... seconds), how long to wait."""

    device: TOTPDevice | StaticDevice | None
    wait_seconds: int = 0


def verify_code(*, user: User, code: str, request: HttpRequest | None = None) -> CodeCheck:
    """Check a code from the authenticator app or a recovery code (which is then used up).
    Failures and used recovery codes are logged."""
    token = "".join((code or "").split()).lower()
    check = _check_devices(user, token) if token else CodeCheck(None)
    device = check.device
    if device is None:
        security_event(
            kind=Kind.SECOND_FACTOR_FAILED,
            request=request,
            actor=user,
            subject=user,
            detail={"throttled": check.wait_seconds > 0},
        )
        return check
    if isinstance(device, StaticDevice):
        security_event(
            kind=Kind.RECOVERY_CODE_USED,
            request=request,
            actor=user,
            subject=user,
            detail={"left": device.token_set.count()},
        )
    return check


@transaction.atomic
def _check_devices(user: User, token: str) -> CodeCheck:
    """Each of the user's code devices in turn, locked so that one code cannot pass twice at
    once; a device still in its throttle delay after wrong codes is not asked."""
    locked_until = None
    for model in (TOTPDevice, StaticDevice):
        for device in model.objects.devices_for_user(user, confirmed=True).select_for_update():
            allowed, info = device.verify_is_allowed()
            if not allowed:
                until = (info or {}).get("locked_until")
                locked_until = max(filter(None, [locked_until, until]), default=None)
                continue
            if device.verify_token(token):
                return CodeCheck(device)
    if locked_until is None:
        return CodeCheck(None)
    return CodeCheck(None, max(1, math.ceil((locked_until - timezone.now()).total_seconds())))


@transaction.atomic
def factors_reset(*, user: User, actor: User, request: HttpRequest | None = None) -> int:
    """Remove every factor of the user (lost phone): they enrol again at their next sign-in.
    Audited; returns how many devices went."""
    removed = 0
    for device in devices_for_user(user, confirmed=None):
        device.delete()
        removed += 1
    removed += WebAuthnCredential.objects.filter(user=user).delete()[0]
    security_event(
        kind=Kind.FACTOR_RESET,
        request=request,
        actor=actor,
        subject=user,
        detail={"devices": removed},
    )
    end_sessions(user=user, actor=actor, reason="factors_reset", request=request)
    return removed
