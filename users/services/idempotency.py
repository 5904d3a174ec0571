"""Idempotency keys for the API's POSTs: the first response, replayed for 24 hours.

The key row is claimed in the caller's transaction, before the work it guards: a concurrent
request with the same key waits on the unique constraint, then finds the stored response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from users.models import IdempotencyKey, User

IDEMPOTENCY_TTL = dt.timedelta(hours=24)
IDEMPOTENCY_KEY_MAX_LENGTH = 255
_key_re = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyConflict(Exception):
    """The key was used for another request, or its first request is still running."""

    def __init__(self, message: str, header: str) -> None:
        super().__init__(message)
        self.header = header


def is_valid_key(key: str) -> bool:
    """1 to 255 printable ASCII characters without spaces."""
    return _key_re.fullmatch(key) is not None


def fingerprint(*, path: str, data: dict[str, Any], options: dict[str, Any]) -> str:
    """What makes two requests the same request: path, options and body, canonically."""
    canonical = json.dumps(
        {"path": path, "options": options, "body": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim_key(
    *, actor: User, key: str, fingerprint: str, header: str
) -> tuple[IdempotencyKey, tuple[int, Any] | None]:
    """Insert the key row (or find the first request's), inside the caller's transaction.

    Returns the row and, for a replay, the stored (status, body). A concurrent request with the
    same key blocks on the unique constraint until the first commits, then gets IntegrityError
    and reads the stored response: one user, one response.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                user=actor, key=key, request_hash=fingerprint, created_at=now
            )
        return row, None
    except IntegrityError:
        pass
    row = IdempotencyKey.objects.select_for_update().get(user=actor, key=key)
    if row.created_at < now - IDEMPOTENCY_TTL:
        # Expired: the key starts a new request.
        row.request_hash, row.created_at = fingerprint, now
        row.status_code = row.response_body = None
        row.save()
        return row, None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            f"{header} {key!r} was used within the last 24 hours for a different request; "
            "use a new key for a new request.",
            header,
        )
    if row.status_code is None:  # pragma: no cover - the first request commits with its response
        raise IdempotencyConflict(f"The request with {header} {key!r} is still running.", header)
    return row, (row.status_code, row.response_body)


def record_response(row: IdempotencyKey, *, status: int, body: Any) -> None:
    """Store the first request's response on its key row, in the same transaction."""
    row.status_code, row.response_body = status, body
    row.save(update_fields=["status_code", "response_body"])


def purge_expired_keys() -> int:
    """Delete keys past their replay window; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    return deleted
