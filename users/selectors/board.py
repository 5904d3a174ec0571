"""Reads for the status board: counts per status and the cards of each column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet

from users.models import Role, Status, User
from users.selectors.people import ASSIGNEE_NAME_COLUMNS
from users.selectors.users import flags_of


def _staff() -> QuerySet:
    """The ids of console staff (anyone holding a role): people who work the onboarding, not
    cases of it."""
    return User.groups.through.objects.filter(group__name__in=Role.values).values("user_id")


def onboarding_cases(qs: QuerySet[User]) -> QuerySet[User]:
    """`qs` without the console's staff: the board shows clients only."""
    return qs.exclude(pk__in=_staff())


def status_counts(qs: QuerySet[User], *, all_live: bool = False) -> dict[str, int]:
    """Onboarding cases (staff left out) per status for the board's column heads.

    `all_live=True` says that `qs` is every user not deleted (an unfiltered board). On
    PostgreSQL the counts then come from `users_status_count`, kept up to date by triggers
    (migration 0004), less the few live staff (one small query): a grouped count over a
    million rows is a full scan, 0.3-0.9 s here. Otherwise one grouped query.
    """
    counts = {status: 0 for status in Status.values}
    if all_live and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, n FROM users_status_count WHERE NOT deleted")
            for status, n in cursor.fetchall():
                if status in counts:
                    counts[status] = n
        staff = User.objects.filter(deleted=False, pk__in=_staff())
        for row in staff.order_by().values("status").annotate(n=Count("pk")):
            counts[row["status"]] -= row["n"]
        return counts
    for row in onboarding_cases(qs).order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


# What a board card needs of a user, as plain tuples (no model instances for 125 cards).
CARD_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "version",
    "status_changed_at",
    # Who works the case (issue 14.1), joined in: no query per card.
    "assignee_id",
    *ASSIGNEE_NAME_COLUMNS,
)


@dataclass(frozen=True, slots=True)
class CardRow:
    id: str
    first_name: str
    last_name: str
    email: str | None
    external_id: str | None
    version: int
    status_changed_at: Any
    assignee_id: str | None
    assignee_first_name: str | None
    assignee_last_name: str | None
    assignee_email: str | None
    assignee_external_id: str | None
    flags: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return User.display_name_of(self)

    @property
    def assignee_name(self) -> str:
        """The assignee's name as `User.display_name` writes it, "" when unassigned."""
        if self.assignee_id is None:
            return ""
        name = f"{self.assignee_first_name} {self.assignee_last_name}".strip()
        return name or self.assignee_email or self.assignee_external_id or self.assignee_id


def board_columns(
    qs: QuerySet[User], limits: dict[str, int], *, pinned: Sequence[str] = ()
) -> dict[str, list[CardRow]]:
    """For each status, the `limits[status]` onboarding cases (no staff) who have waited
    longest in it; the `pinned` ones (cards just moved, newest first) that `qs` still holds
    come first in their column, wherever they would be.

    Two queries whatever the number of columns: one UNION ALL of a LIMITed index scan per
    status (`user_live_status_idx`), then the flags of every card; one more for pinned cards.
    SQLite cannot order and slice inside a compound statement, so there it is one query per
    column.
    """
    rows_qs = (
        onboarding_cases(qs).order_by("status_changed_at", "pk").values_list(*CARD_FIELDS, "status")
    )
    parts = [rows_qs.filter(status=status)[:limit] for status, limit in limits.items()]
    if not parts:
        return {}
    if connection.features.supports_slicing_ordering_in_compound:
        # order_by(): the parts keep their own ORDER BY; the outer one would repeat the first's.
        rows = list(parts[0].union(*parts[1:], all=True).order_by())
    else:
        rows = [row for part in parts for row in part]
    pinned_rows = list(rows_qs.filter(pk__in=pinned)) if pinned else []
    flags: dict[str, list[str]] = {}
    for user_id, flag in flags_of(list({row[0] for row in [*rows, *pinned_rows]})):
        flags.setdefault(user_id, []).append(flag)
    columns: dict[str, list[CardRow]] = {status: [] for status in limits}
    pinned_ids = {row[0] for row in pinned_rows}
    for *values, status in rows:
        if values[0] not in pinned_ids:
            columns[status].append(CardRow(*values, flags=tuple(flags.get(values[0], ()))))
    # UNION ALL keeps each part's rows together but says nothing of their order.
    for cards in columns.values():
        cards.sort(key=lambda card: (card.status_changed_at, card.id))
    order = {pk: index for index, pk in enumerate(pinned)}
    for *values, status in sorted(pinned_rows, key=lambda row: order[row[0]], reverse=True):
        if status in columns:
            columns[status].insert(0, CardRow(*values, flags=tuple(flags.get(values[0], ()))))
    return columns
