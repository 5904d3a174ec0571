"""Reads of case assignment (issue 14.1): who may hold cases, the board's workload strip and a
user's assignment history."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from users.models import CaseAssignment, FeatureFlag, Role, Status, User
from users.selectors.board import onboarding_cases
from users.selectors.compiled import CompiledQuery
from users.selectors.people import ASSIGNEE_NAME_COLUMNS, NAME_FIELDS, with_people

# Statuses whose cases still wait on a reviewer or the client: the workload.
OPEN_STATUSES = (
    Status.WAITING_FOR_VERIFICATION,
    Status.WAITING_FOR_SIGNATURE,
    Status.VERIFICATION_FAILED,
)
# The roles whose holders work cases (`policy.may_be_assignee` says it per person).
ASSIGNEE_ROLES = (Role.COMPLIANCE, Role.ADMIN)


def _assignable() -> QuerySet[User]:
    return (
        User.objects.filter(
            deleted=False,
            groups__name__in=ASSIGNEE_ROLES,
            flag_grants__flag=FeatureFlag.CONSOLE,
        )
        .exclude(password__startswith="!")
        .exclude(password="")
        .only(*NAME_FIELDS)
        .distinct()
        .order_by("first_name", "last_name", "id")
    )


_ASSIGNABLE = CompiledQuery(_assignable, takes_id=False)


def assignable_people() -> list[User]:
    """Compliance officers and admins who may use the console (CONSOLE flag, a usable
    password, not deleted), by name: the "Assign to…" and "Assignee" choices. One query,
    compiled once (the list, the board and an admin's detail page show them)."""
    return list(_ASSIGNABLE.raw())


@dataclass(frozen=True)
class Workload:
    """One entry of the board's strip: an assignee (None: unassigned) and their open cases."""

    assignee_id: str | None
    name: str
    count: int


def open_cases_by_assignee(qs: QuerySet[User], *, open_total: int | None = None) -> list[Workload]:
    """Open onboarding cases (staff left out) of `qs` per assignee, most first, the unassigned
    last: one grouped query, the names joined in.

    `open_total`: how many open cases `qs` holds (the board's column counts, on PostgreSQL
    from the maintained counters). The query then reads the assigned cases only, through the
    partial index `user_assignee_idx` (which holds no unassigned row), and the unassigned are
    the rest: at a million users no scan of every open case.
    """
    rows = onboarding_cases(qs).filter(status__in=OPEN_STATUSES)
    if open_total is not None:
        rows = rows.filter(assignee__isnull=False)
    rows = rows.order_by().values("assignee_id", *ASSIGNEE_NAME_COLUMNS).annotate(n=Count("pk"))
    assigned: list[Workload] = []
    unassigned = 0
    for row in rows:
        if row["assignee_id"] is None:
            unassigned = row["n"]
            continue
        person = User(
            id=row["assignee_id"],
            first_name=row["assignee__first_name"],
            last_name=row["assignee__last_name"],
            email=row["assignee__email"],
            external_id=row["assignee__external_id"],
        )
        assigned.append(Workload(person.pk, person.display_name, row["n"]))
    if open_total is not None:
        unassigned = max(0, open_total - sum(entry.count for entry in assigned))
    assigned.sort(key=lambda entry: (-entry.count, entry.name))
    return [*assigned, Workload(None, "Unassigned", unassigned)]


def recent_assignments(user: User, *, limit: int) -> list[CaseAssignment]:
    """The user's latest `limit` assignment rows, newest first, with the people named."""
    return list(
        with_people(
            CaseAssignment.objects.filter(user=user), "assignee", "previous_assignee", "assigned_by"
        ).order_by("-at", "-id")[:limit]
    )
