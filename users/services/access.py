"""The access log (issue 13.4): one row per view, export and API read of users' records.

Each access is one INSERT and nothing else (no read first), so logging a detail view stays
well under a millisecond. Rows are only ever added (a PostgreSQL trigger refuses UPDATE and
DELETE). A reveal of a masked field (issue 13.3) is `kind=REVEALED` with `field` and `purpose`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from users import contract, policy
from users.models import ACCESS_IDS_CAP, AccessEvent, RevealPurpose, User

Kind = AccessEvent.Kind
QUERY_MAX = 4000
PURPOSE_TEXT_MAX = 500


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


def value_reveal(
    *,
    actor: User,
    subject: User,
    name: str,
    purpose: str,
    note: str = "",
    request: HttpRequest | None = None,
) -> Any:
    """`subject`'s masked value `name` (`contract.MASKED`) for `actor` to read once, after one
    `REVEALED` row with the purpose; `ValidationError` (keyed `purpose` / `note`) names what is
    missing and logs nothing. `purpose` is a `RevealPurpose`; `note` says more, required with
    `OTHER`."""
    if not policy.may_reveal(actor):
        raise PermissionDenied("You may not reveal masked personal data.")
    masked = contract.MASKED.get(name)
    if masked is None:
        raise ValidationError({"name": f"{name!r} is not a masked value."})
    note = " ".join(note.split())
    errors: dict[str, str] = {}
    if purpose not in RevealPurpose.values:
        errors["purpose"] = "Choose why you need to see it."
    elif purpose == RevealPurpose.OTHER and not note:
        errors["note"] = "Say why you need to see it."
    if len(note) > PURPOSE_TEXT_MAX:
        errors["note"] = f"At most {PURPOSE_TEXT_MAX} characters ({len(note)} given)."
    if errors:
        raise ValidationError(errors)
    label = RevealPurpose(purpose).label
    access_record(
        kind=Kind.REVEALED,
        actor=actor,
        subject=subject,
        request=request,
        field=name,
        purpose=f"{label}: {note}" if note else label,
        detail={"purpose": purpose},
    )
    return masked.of(subject)
