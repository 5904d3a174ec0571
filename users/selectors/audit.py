"""Walking the history chains (`users/chain.py`): does every user's history still hash to what
was written, with no row missing, changed or added behind the application's back?"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter

from users import chain
from users.models import AccessEvent, AccessSeal, StatusChange, User, UserVersion

CHUNK = 1000


@dataclass(frozen=True)
class Break:
    """The first row of one user's history that does not hold."""

    user_id: str
    table: str  # "users_userversion", "users_statuschange", or "users_user" for the head
    row_id: int | str
    version: int | None
    problem: str

    def __str__(self) -> str:
        version = f", version {self.version}" if self.version is not None else ""
        return f"{self.table} id={self.row_id} (user {self.user_id}{version}): {self.problem}"


@dataclass
class Verification:
    users: int = 0
    rows: int = 0
    breaks: list[Break] = field(default_factory=list)
    # SHA-256 over every user's id and chain head, in id order: write it down somewhere else
    # (a ticket, a signed mail) to notice later that whole chains were rewritten.
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.breaks


def _check_user(user: User, versions: list, statuses: list) -> Break | None:
    previous = chain.GENESIS
    expected_version = 1
    for row, expected in chain.recomputed(versions, statuses):
        table = row._meta.db_table
        if isinstance(row, UserVersion):
            if row.version != expected_version:
                problem = f"version {expected_version} is missing before it"
                return Break(user.pk, table, row.pk, row.version, problem)
            expected_version += 1
        if row.chain_hash != expected:
            problem = "its content or the row before it was changed or removed"
            return Break(user.pk, table, row.pk, row.version, problem)
        previous = expected
    if expected_version - 1 != user.version:
        problem = f"the record is at version {user.version}, its history at {expected_version - 1}"
        return Break(user.pk, "users_user", user.pk, user.version, problem)
    if user.history_hash != previous:
        problem = "the chain's head does not match the last history row (rows removed at the end?)"
        return Break(user.pk, "users_user", user.pk, user.version, problem)
    return None


def _chunks() -> Iterator[list[User]]:
    users = User.objects.order_by("pk").only("pk", "version", "history_hash")
    last = ""
    while True:
        chunk = list(users.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def verify_history() -> Verification:
    """Recompute every user's chain, in chunks of users (three queries a chunk); the first break
    of each user is reported."""
    result = Verification()
    digest = hashlib.sha256()
    for users in _chunks():
        ids = [user.pk for user in users]
        versions: dict[str, list] = {pk: [] for pk in ids}
        statuses: dict[str, list] = {pk: [] for pk in ids}
        for row in UserVersion.objects.filter(user_id__in=ids).order_by():
            versions[row.user_id].append(row)
        for row in StatusChange.objects.filter(user_id__in=ids).order_by():
            statuses[row.user_id].append(row)
        for user in users:
            result.users += 1
            result.rows += len(versions[user.pk]) + len(statuses[user.pk])
            broken = _check_user(user, versions[user.pk], statuses[user.pk])
            if broken is not None:
                result.breaks.append(broken)
            digest.update(f"{user.pk}:{user.history_hash}\n".encode())
    # History rows of no user left (a user row deleted behind the services' back).
    known = User.objects.values("pk")
    for model in (UserVersion, StatusChange):
        for row in model.objects.exclude(user_id__in=known).order_by("pk")[:1]:
            problem = "its user is gone"
            result.breaks.append(
                Break(row.user_id, model._meta.db_table, row.pk, row.version, problem)
            )
    result.digest = digest.hexdigest()
    return result


@dataclass
class AccessVerification:
    """The access log's chains and seals recomputed: each actor's first row that no longer
    holds, which sealed stretches no longer hold, and how many rows were written after the
    last seal (not sealed yet)."""

    seals: int = 0
    rows: int = 0
    unsealed: int = 0
    actors: int = 0
    chained: int = 0
    breaks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def _verify_access_chains(result: AccessVerification) -> None:
    """Walk each actor's chain of access rows in id order; name its first row that does not
    hold (a row changed, or the row before it changed or removed)."""

    def counted(rows: Iterable[AccessEvent]) -> Iterator[AccessEvent]:
        for row in rows:
            result.chained += 1
            yield row

    rows = AccessEvent.objects.order_by("actor_id", "pk").iterator(chunk_size=CHUNK)
    for actor_id, group in groupby(rows, key=attrgetter("actor_id")):
        result.actors += 1
        # Streamed (one actor may have millions of rows); only the first break is named.
        breaks = chain.access_chain_breaks(counted(group))
        for row, problem in breaks:
            whose = f"actor {actor_id}" if actor_id else "the system"
            result.breaks.append(f"users_accessevent id={row.pk} ({whose}'s chain): {problem}")
            break
        deque(breaks, maxlen=0)  # the rest of the chain, counted


def verify_access_log() -> AccessVerification:
    """Walk every actor's chain of access rows, then recompute every `AccessSeal` from the
    access rows of its stretch, in id order (a seal also notices the newest rows of a chain
    removed, which the chain alone cannot)."""
    result = AccessVerification()
    _verify_access_chains(result)
    previous = chain.GENESIS
    expected_first = 1
    for seal in AccessSeal.objects.order_by("first_id").iterator():
        result.seals += 1
        where = f"users_accessseal id={seal.pk} (access rows {seal.first_id}..{seal.last_id})"
        if seal.first_id != expected_first or seal.previous_hash != previous:
            result.breaks.append(f"{where}: the seal before it was changed or removed")
        rows = AccessEvent.objects.filter(pk__gte=seal.first_id, pk__lte=seal.last_id)
        head, count = chain.access_stretch(
            seal.previous_hash, rows.order_by("pk").iterator(chunk_size=CHUNK)
        )
        result.rows += count
        if count != seal.row_count:
            result.breaks.append(
                f"{where}: {seal.row_count:,} rows were sealed, {count:,} are there "
                "(rows removed or added)"
            )
        elif head != seal.chain_hash:
            result.breaks.append(f"{where}: a row's content was changed")
        previous, expected_first = seal.chain_hash, seal.last_id + 1
    result.unsealed = AccessEvent.objects.filter(pk__gte=expected_first).count()
    return result
