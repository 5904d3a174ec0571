"""Reads of change requests (four-eyes): a user's open ones, the Approvals page, the marks.

A pending request past its `expires_at` counts as expired on every read ("lazy" expiry), before
`manage.py expire_change_requests` or the next decision writes it so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from users.models import ChangeRequest, User, UserVersion
from users.selectors.people import with_people

# The fields each kind changes: whose last changer may not approve a counter account.
KIND_FIELDS = {
    ChangeRequest.Kind.COUNTER_ACCOUNT: "counter_account",
    ChangeRequest.Kind.ROLES: "roles",
    ChangeRequest.Kind.CONSOLE_FLAG: "feature_flags",
}


def _with_people(requests: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    return with_people(requests, "proposed_by", "decided_by")


def open_requests(now: dt.datetime | None = None) -> QuerySet[ChangeRequest]:
    """Pending and not yet past their expiry, oldest first."""
    now = now or timezone.now()
    return ChangeRequest.objects.filter(
        state=ChangeRequest.State.PENDING, expires_at__gt=now
    ).order_by("proposed_at", "id")


# The annotation `with_pending_mark` adds: whether any request about the user is PENDING.
PENDING_MARK = "has_pending_request"


def with_pending_mark(users: QuerySet[User]) -> QuerySet[User]:
    """`users` marked with whether a request about them is PENDING (expired or not), in the
    same query: `open_requests_for` then reads nothing for the many without one."""
    pending = ChangeRequest.objects.filter(user=OuterRef("pk"), state=ChangeRequest.State.PENDING)
    return users.annotate(**{PENDING_MARK: Exists(pending)})


def open_requests_for(user: User, now: dt.datetime | None = None) -> list[ChangeRequest]:
    """`user`'s open requests, oldest first, with their proposers (none read when `user` was
    loaded `with_pending_mark` and has none pending)."""
    if getattr(user, PENDING_MARK, True) is False:
        return []
    return list(_with_people(open_requests(now).filter(user=user)))


def approvals(
    *,
    kind: str = "",
    proposer_id: str = "",
    older_than_hours: int | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[ChangeRequest]:
    """The Approvals page: open requests, oldest first, filtered by kind, proposer and age."""
    now = now or timezone.now()
    requests = _with_people(open_requests(now)).select_related("user")
    if kind:
        requests = requests.filter(kind=kind)
    if proposer_id:
        requests = requests.filter(proposed_by_id=proposer_id)
    if older_than_hours:
        requests = requests.filter(proposed_at__lte=now - dt.timedelta(hours=older_than_hours))
    return requests


def open_count(now: dt.datetime | None = None) -> int:
    """How many requests wait for a decision (the navigation's badge)."""
    return open_requests(now).count()


def proposers(now: dt.datetime | None = None) -> list[User]:
    """The people with an open request (the Approvals page's proposer filter)."""
    ids = open_requests(now).exclude(proposed_by=None).values("proposed_by_id")
    return list(User.objects.filter(pk__in=ids).order_by("last_name", "first_name", "email"))


def users_with_open_requests(user_ids: Iterable[str], now: dt.datetime | None = None) -> set[str]:
    """Which of `user_ids` have a change waiting (the marks on list rows and board cards)."""
    ids = list(user_ids)
    if not ids:
        return set()
    return set(open_requests(now).filter(user_id__in=ids).values_list("user_id", flat=True))


def change_request(request_id: int) -> ChangeRequest | None:
    """One request with its user and people, or None."""
    return _with_people(ChangeRequest.objects.select_related("user")).filter(pk=request_id).first()


def requests_of(user: User) -> list[ChangeRequest]:
    """Every request about `user`, newest first (the history)."""
    requests = _with_people(ChangeRequest.objects.filter(user=user))
    return list(requests.order_by("-proposed_at", "-id"))


def last_changer_id(user: User, kind: str) -> str | None:
    """Who made the latest version that changed the field `kind` guards (None: nobody known)."""
    field = KIND_FIELDS[ChangeRequest.Kind(kind)]
    return (
        UserVersion.objects.filter(user=user, changes__has_key=field)
        .order_by("-version")
        .values_list("author_id", flat=True)
        .first()
    )


def last_changer_ids(user_ids: Iterable[str], kind: str) -> dict[str, str | None]:
    """`last_changer_id` for many users in one query (the Approvals page)."""
    field = KIND_FIELDS[ChangeRequest.Kind(kind)]
    latest = (
        UserVersion.objects.filter(user=OuterRef("pk"), changes__has_key=field)
        .order_by("-version")
        .values("author_id")[:1]
    )
    rows = User.objects.filter(pk__in=list(user_ids)).annotate(last=Subquery(latest))
    return dict(rows.values_list("pk", "last"))
