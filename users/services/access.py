"""The access log (issue 13.4): one row per view, export and API read of users' records.

Each access is one INSERT and nothing else (no read first), so logging a detail view stays
well under a millisecond. Rows are only ever added (a PostgreSQL trigger refuses UPDATE and
DELETE). A reveal of a masked field (issue 13.3) is `kind=REVEALED` with `field` and `purpose`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from users import chain, contract, policy
from users.models import ACCESS_IDS_CAP, AccessEvent, AccessSeal, RevealPurpose, User

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


# A row is sealed once it is this old: a request still writing a lower id has long committed.
SEAL_SETTLE_SECONDS = 60
SEAL_MAX_ROWS = 100_000


def access_log_seal(
    *, settle_seconds: int = SEAL_SETTLE_SECONDS, max_rows: int = SEAL_MAX_ROWS
) -> AccessSeal | None:
    """Seal the access rows written since the last seal (and older than `settle_seconds`): one
    `AccessSeal` whose hash links the previous seal's through every row's content in id order.
    None when there is nothing to seal, or when another process sealed the same rows first."""
    last = AccessSeal.objects.order_by("-first_id").first()
    after = last.last_id if last else 0
    cutoff = timezone.now() - dt.timedelta(seconds=settle_seconds)
    settled = AccessEvent.objects.filter(pk__gt=after, at__lte=cutoff).order_by("pk")
    last_id = settled.values_list("pk", flat=True)[max_rows - 1 : max_rows].first()
    if last_id is None:
        last_id = settled.order_by("-pk").values_list("pk", flat=True).first()
    if last_id is None:
        return None
    previous = last.chain_hash if last else chain.GENESIS
    rows = AccessEvent.objects.filter(pk__gt=after, pk__lte=last_id).order_by("pk")
    head, count = chain.access_stretch(previous, rows.iterator(chunk_size=2000))
    try:
        with transaction.atomic():
            return AccessSeal.objects.create(
                first_id=after + 1,
                last_id=last_id,
                row_count=count,
                previous_hash=previous,
                chain_hash=head,
            )
    except IntegrityError:  # another seal of the same stretch won (unique first_id)
        return None


def access_log_seal_all(*, settle_seconds: int = SEAL_SETTLE_SECONDS) -> list[AccessSeal]:
    """Seal every settled stretch (at most SEAL_MAX_ROWS rows each) until none is left."""
    seals = []
    while (seal := access_log_seal(settle_seconds=settle_seconds)) is not None:
        seals.append(seal)
    return seals
