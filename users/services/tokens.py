"""API tokens: issue, revoke, and authenticate a request's token.

A token is `ucs_` + 43 random URL-safe characters (256 bits). Only its SHA-256 is stored: a
database leak reveals no usable token, and a fast hash is enough because the secret is random,
not a password. A token acts as the console user it was issued to, with that user's roles, and
stops working the moment that user may no longer use the console (flag, role, deletion).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users import validators
from users.models import ApiToken, User
from users.policy import can_use_console

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ucs_"
PREFIX_LENGTH = 12  # "ucs_" + 8 characters of the secret: shown in lists, never enough to use
NAME_MAX_LENGTH = 100
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def issue_token(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret, which is never shown again."""
    try:
        # The field rule for text: trimmed, bounded, and no NUL (PostgreSQL refuses it).
        name = validators.text(name, max_length=NAME_MAX_LENGTH, field="The name")
    except ValidationError as exc:
        raise ValidationError({"name": exc.error_list}) from None
    if not name:
        raise ValidationError({"name": ValidationError("Give the token a name.", code="required")})
    if not can_use_console(user):
        raise ValidationError(
            {
                "user": ValidationError(
                    f"{user.email or user.pk} may not use the console (CONSOLE flag, a role and a "
                    "password are needed), so a token of theirs would be refused.",
                    code="not_console_user",
                )
            }
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:PREFIX_LENGTH],
        token_hash=hash_token(raw),
        created_at=timezone.now(),
    )
    logger.info("API token %s (%s) issued to %s", token.pk, token.prefix, user.pk)
    return token, raw


@transaction.atomic
def revoke_token(*, token: ApiToken, actor: User | None) -> ApiToken:
    """Revoke at once; revoking a revoked token changes nothing."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        logger.info(
            "API token %s (%s) revoked by %s", token.pk, token.prefix, actor.pk if actor else None
        )
    return token


def authenticate_token(raw: str | None) -> User | None:
    """The user a presented token acts as, or None (unknown, revoked, or user lost access)."""
    raw = (raw or "").strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    user = token.user
    if not can_use_console(user):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user
