"""The access log (issue 13.4): one row per view, export and API read of users' records.

Each access is one INSERT and nothing else (no read first), so logging a detail view stays
well under a millisecond. Rows are only ever added (a PostgreSQL trigger refuses UPDATE and
DELETE). A reveal of a masked field (issue 13.3) is `kind=REVEALED` with `field` and `purpose`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpRequest

from users.models import ACCESS_IDS_CAP, AccessEvent, User

Kind = AccessEvent.Kind
QUERY_MAX = 4000


def access_record(
    *,
    kind: AccessEvent.Kind | str,
    actor: User | None,
    subject: User | None = None,
    request: HttpRequest | None = None,
    field: str = "",
    purpose: str = "",
    query: str = "",
    columns: Sequence[str] = (),
    row_count: int | None = None,
    subject_ids: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> AccessEvent:
    """Append one access: `actor` looked at `subject` (or at the users of `subject_ids`, the
    first ACCESS_IDS_CAP kept, `row_count` saying how many there were)."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    ids = []
    for pk in subject_ids:
        if len(ids) == ACCESS_IDS_CAP:
            break
        ids.append(pk)
    return AccessEvent.objects.create(
        kind=Kind(kind),
        actor=actor,
        subject=subject,
        field=field[:64],
        purpose=purpose,
        query=query[:QUERY_MAX],
        columns=list(columns),
        row_count=row_count,
        subject_ids=ids,
        ip_address=(request.META.get("REMOTE_ADDR") or None) if request is not None else None,
        detail=detail or {},
    )
