"""The onboarding dashboard's summary (`StatusMoveDaily`, issue 14.6), kept as moves happen.

Each status move (a creation included) adds one to its row of the day: move, person, reason
code; at risk / breached when it left a status with an SLA target past 75 % / 100 % of it (in
business hours, `users/sla.py`, as the target was set at the time of the move); and one to the
bucket of the time it spent in the status it left (wall-clock hours, MOVE_DURATION_EDGES_HOURS).

`record_move` is called by the services in the transaction that writes the StatusChange;
`add_moves` takes many (the bulk seeder, per batch); `rebuild` recomputes the whole table from
the history (migration 0022, `manage.py rebuild_move_stats`). All three end in one upsert per
row: INSERT ... ON CONFLICT DO UPDATE adding to the counters, on PostgreSQL and SQLite alike,
so two moves at once never lose a count.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from users import sla
from users.models import MOVE_DURATION_EDGES_HOURS, Role, StatusChange, StatusMoveDaily, User

COUNTERS = ("count", "at_risk", "breached", *StatusMoveDaily.BUCKET_COLUMNS)
UPSERT_BATCH = 500


@dataclass(frozen=True, slots=True)
class Move:
    """One status move as the summary needs it; `since` is when the user entered
    `from_status` (None for a creation)."""

    at: dt.datetime
    from_status: str
    to_status: str
    since: dt.datetime | None = None
    changed_by: str = ""
    reason_code: str = ""


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a time in status: the first edge it does not exceed."""
    return bisect.bisect_left(MOVE_DURATION_EDGES_HOURS, seconds / 3600)


def _key(move: Move, tz: dt.tzinfo) -> tuple:
    return (
        move.at.astimezone(tz).date(),
        move.from_status,
        move.to_status,
        move.changed_by,
        move.reason_code,
    )


def _counters(move: Move) -> list[int]:
    values = [1, 0, 0] + [0] * len(StatusMoveDaily.BUCKET_COLUMNS)
    if move.since is not None and move.from_status:
        values[3 + bucket_of(max(0.0, (move.at - move.since).total_seconds()))] = 1
        mark = sla.state(move.from_status, move.since, move.at)
        if mark == sla.AT_RISK:
            values[1] = 1
        elif mark == sla.BREACHED:
            values[2] = 1
    return values


def summarise(moves: Iterable[Move]) -> dict[tuple, list[int]]:
    """Moves added up per summary row (key -> counters in COUNTERS order)."""
    tz = timezone.get_default_timezone()
    rows: dict[tuple, list[int]] = {}
    for move in moves:
        values = _counters(move)
        key = _key(move, tz)
        row = rows.get(key)
        if row is None:
            rows[key] = values
        else:
            for i, value in enumerate(values):
                if value:
                    row[i] += value
    return rows


def _upsert(rows: dict[tuple, list[int]]) -> None:
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(StatusMoveDaily._meta.db_table)
    columns = (*StatusMoveDaily.KEY, *COUNTERS)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in COUNTERS)
    items = list(rows.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), UPSERT_BATCH):
            chunk = items[start : start + UPSERT_BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES {', '.join([placeholders] * len(chunk))} "
                f"ON CONFLICT ({', '.join(quote(c) for c in StatusMoveDaily.KEY)}) "
                f"DO UPDATE SET {updates}",
                [value for key, counters in chunk for value in (*key, *counters)],
            )


def record_move(*, user: User, move: Move) -> None:
    """Count one move of `user` (the services call it where they write the StatusChange).
    Staff (anyone holding a role) are no onboarding cases; the services have the user's roles
    in hand on every path (`role_names` is cached by the snapshot or set by the write)."""
    if user.role_names():
        return
    _upsert(summarise([move]))


def add_moves(moves: Iterable[Move]) -> int:
    """Count many moves at once (one upsert per 500 summary rows); returns the moves counted."""
    counted = 0

    def tally(items: Iterable[Move]) -> Iterator[Move]:
        nonlocal counted
        for item in items:
            counted += 1
            yield item

    _upsert(summarise(tally(moves)))
    return counted


def moves_of_history(
    rows: Iterable[tuple[str, str, str, dt.datetime, str | None, str | None]],
) -> Iterator[Move]:
    """Moves from status history rows (user id, from, to, at, changed_by id, reason code),
    each user's rows together and in the order they happened: a move's time in status is the
    time since the user's previous move."""
    last_user, last_at = None, None
    for user_id, from_status, to_status, at, changed_by, reason_code in rows:
        since = last_at if user_id == last_user else None
        yield Move(
            at=at,
            from_status=from_status or "",
            to_status=to_status,
            since=since if from_status else None,
            changed_by=changed_by or "",
            reason_code=reason_code or "",
        )
        last_user, last_at = user_id, at


def _staff_ids(user_model: type) -> set[str]:
    return set(
        user_model.groups.through.objects.filter(group__name__in=Role.values).values_list(
            "user_id", flat=True
        )
    )


@transaction.atomic
def rebuild(*, status_change_model: type = StatusChange, user_model: type = User) -> int:
    """Recompute the whole summary from the status history (a backfill; the models may be a
    migration's historical ones). Returns the moves counted. Users holding a role now are left
    out with all their history (the services left out only the moves made while they held one),
    and past moves get the at-risk / breached marks of today's SLA targets."""
    StatusMoveDaily.objects.all().delete()
    staff = _staff_ids(user_model)
    history = (
        status_change_model.objects.exclude(user_id__in=staff)
        .order_by("user_id", "changed_at", "id")
        .values_list(
            "user_id", "from_status", "to_status", "changed_at", "changed_by_id", "reason_code_id"
        )
        .iterator(chunk_size=20_000)
    )
    return add_moves(moves_of_history(history))
