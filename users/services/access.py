"""The access log (issue 13.4): one row per view, export and API read of users' records.

Each access is one INSERT and nothing else, so logging a detail view stays under a
millisecond. The row carries the hash of its content and of the actor's previous row
(issue 13.2): the INSERT reads that previous hash itself and hashes in SQL
(`users_chain_link`), so the chain costs no round trip; two of one person's accesses racing
for the same previous row cannot both be written (a unique constraint), and the one that lost
is written again after the other. Rows are only ever added (a PostgreSQL trigger refuses UPDATE
and DELETE). A reveal of a masked field (issue 13.3) is `kind=REVEALED` with `field` and
`purpose`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from users import chain, contract, policy, validators
from users.models import (
    ACCESS_IDS_CAP,
    CHAIN_LINK_FUNCTION,
    AccessEvent,
    AccessSeal,
    RevealPurpose,
    User,
)

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
    clock: Callable[[], dt.datetime] = timezone.now,
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
    event = AccessEvent(
        at=clock(),
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
    return _insert_chained(event)


# The fields the INSERT writes from the row, in order: all but the id and the two hashes,
# which the INSERT computes.
_WRITTEN = tuple(
    field
    for field in AccessEvent._meta.concrete_fields
    if field.attname not in ("id", "previous_hash", "chain_hash")
)
# A race lost to another access of the same person is retried, up to this many times. Each
# round of a race writes one row (the first to commit), so n accesses at once need at most n - 1
# retries: far more than one person's requests ever overlap.
CHAIN_ATTEMPTS = 32


@functools.cache
def _insert_sql(vendor: str, *, system: bool) -> str:
    """INSERT one access row with its hashes: the previous hash is the actor's latest row's
    (the `access_event_actor_id` index), read in the same statement. Written once per
    database and kind of actor."""
    table = AccessEvent._meta.db_table
    names = [field.column for field in _WRITTEN]
    columns = ", ".join(f'"{name}"' for name in (*names, "previous_hash", "chain_hash"))
    values = ["%s"] * len(names)
    if vendor == "postgresql":  # a typed literal: the address is an inet
        values[names.index("ip_address")] = "CAST(%s AS inet)"
    whose = '"actor_id" IS NULL' if system else '"actor_id" = %s'
    head = (
        f'COALESCE((SELECT "chain_hash" FROM "{table}" WHERE {whose} '
        "ORDER BY \"id\" DESC LIMIT 1), '')"
    )
    return (
        f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join(values)}, {head}, '
        f"{CHAIN_LINK_FUNCTION}({head}, %s)) "
        # A race lost (the previous row taken meanwhile): no row, no error, and the caller's
        # transaction, if any, goes on.
        'ON CONFLICT DO NOTHING RETURNING "id", "previous_hash", "chain_hash"'
    )


def _insert_chained(event: AccessEvent) -> AccessEvent:
    connection = connections[router.db_for_write(AccessEvent)]
    params = [
        field.get_db_prep_save(getattr(event, field.attname), connection) for field in _WRITTEN
    ]
    actor = [] if event.actor_id is None else [event.actor_id]
    params += [*actor, *actor, chain.canonical(chain.access_row_content(event))]
    sql = _insert_sql(connection.vendor, system=event.actor_id is None)
    with connection.cursor() as cursor:
        for _ in range(CHAIN_ATTEMPTS):
            cursor.execute(sql, params)
            written = cursor.fetchone()
            if written is not None:
                break
        else:
            raise IntegrityError(
                f"The access row could not be chained after {CHAIN_ATTEMPTS} attempts."
            )
    event.pk, event.previous_hash, event.chain_hash = written
    event._state.adding = False
    event._state.db = connection.alias
    return event


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
    if not policy.may_reveal(actor, subject):
        raise PermissionDenied("You may not reveal masked personal data.")
    masked = contract.MASKED.get(name)
    if masked is None:
        raise ValidationError({"name": f"{name!r} is not a masked value."})
    errors: dict[str, str] = {}
    try:  # one line of words; no NUL (the database refuses it), not too long
        note = validators.text(
            " ".join(note.split()), max_length=PURPOSE_TEXT_MAX, field="The reason"
        )
    except ValidationError as exc:
        errors["note"] = exc.messages[0]
    if purpose not in RevealPurpose.values:
        errors["purpose"] = "Choose why you need to see it."
    elif purpose == RevealPurpose.OTHER and not note and "note" not in errors:
        errors["note"] = "Say why you need to see it."
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
