"""The history's hash chain: tamper evidence for the rows the database keeps append-only.

Each user's history rows, in the order they were written (version 1, its status change if any,
version 2, ...), form one chain: a row's `chain_hash` is the SHA-256 of the previous row's hash
and this row's content, and the user's `history_hash` is the hash of the last row. A row changed
or removed behind the application's back (triggers disabled by a database superuser, a restored
backup edited by hand) no longer matches; `manage.py verify_audit` walks every chain and names
the first row that does not.

Pure functions over values: the services (as they write), the bulk seeder (as it generates) and
the verification (as it reads) compute the same hashes from the same content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

GENESIS = ""  # the "previous hash" of a user's first row


def _normal(value: Any) -> Any:
    """JSON values as they read back from either database: tuples are lists, and a float
    that is a whole number is that integer (PostgreSQL's jsonb prints 1e20 as digits)."""
    if isinstance(value, Mapping):
        return {str(key): _normal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def version_content(
    *,
    user_id: str,
    version: int,
    at: dt.datetime,
    author_id: str | None,
    changes: Any,
    approved_by_id: str | None = None,
) -> dict[str, Any]:
    """What a `UserVersion` row says, as hashed. The checker of a four-eyes change is part of it
    when there is one (a version without keeps the hash it had before four-eyes existed)."""
    content = {
        "row": "version",
        "user": user_id,
        "version": version,
        "at": _instant(at),
        "author": author_id,
        "changes": _normal(changes),
    }
    if approved_by_id is not None:
        content["approved_by"] = approved_by_id
    return content


def status_content(
    *,
    user_id: str,
    version: int,
    from_status: str,
    to_status: str,
    at: dt.datetime,
    by_id: str | None,
    reason: str,
    off_flow: bool,
    reason_code: str | None = None,
) -> dict[str, Any]:
    """What a `StatusChange` row says, as hashed. Its reason code is part of it when there is
    one (a row without keeps the hash it had before reason codes existed)."""
    content = {
        "row": "status",
        "user": user_id,
        "version": version,
        "from": from_status,
        "to": to_status,
        "at": _instant(at),
        "by": by_id,
        "reason": reason,
        "off_flow": off_flow,
    }
    if reason_code:
        content["reason_code"] = reason_code
    return content


def canonical(content: Mapping[str, Any]) -> str:
    """A row's content as hashed: JSON with sorted keys and no spaces."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_text(previous: str, text: str) -> str:
    """SHA-256 over the previous row's hash and a row's canonical text. The access log's
    INSERT computes the same in SQL (`users_chain_link`: migration 0023 on PostgreSQL, this
    function registered on SQLite), where the previous row is known."""
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


def link(previous: str, content: Mapping[str, Any]) -> str:
    """The hash of a row: SHA-256 over the previous row's hash and the row's canonical JSON."""
    return link_text(previous, canonical(content))


def in_chain_order(
    versions: Iterable[Any], status_changes: Iterable[Any]
) -> list[tuple[Any, dict]]:
    """One user's `UserVersion` and `StatusChange` rows (model instances, historical ones in a
    migration too) in the order they were written, each with its content as hashed: version n,
    then the status change that came with it."""
    rows = [
        (
            (row.version, 0, row.pk),
            row,
            version_content(
                user_id=row.user_id,
                version=row.version,
                at=row.created_at,
                author_id=row.author_id,
                changes=row.changes,
                # Historical models of migrations before four-eyes have no checker.
                approved_by_id=getattr(row, "approved_by_id", None),
            ),
        )
        for row in versions
    ]
    rows += [
        (
            (row.version, 1, row.pk),
            row,
            status_content(
                user_id=row.user_id,
                version=row.version,
                from_status=row.from_status,
                to_status=row.to_status,
                at=row.changed_at,
                by_id=row.changed_by_id,
                reason=row.reason,
                off_flow=row.off_flow,
                # Historical models of migrations before reason codes have none.
                reason_code=getattr(row, "reason_code_id", None),
            ),
        )
        for row in status_changes
    ]
    rows.sort(key=lambda item: item[0])
    return [(row, content) for _, row, content in rows]


def recomputed(versions: Iterable[Any], status_changes: Iterable[Any]) -> list[tuple[Any, str]]:
    """One user's history rows in chain order, each with the hash its content and the rows
    before it give: what the migration writes, the verification and the client file compare."""
    previous = GENESIS
    hashes = []
    for row, content in in_chain_order(versions, status_changes):
        previous = link(previous, content)
        hashes.append((row, previous))
    return hashes


def access_content(row: Any) -> dict[str, Any]:
    """What an `AccessEvent` row says, as hashed by the access log's seals (`AccessSeal`)."""
    return {
        "row": "access",
        "id": row.pk,
        "at": _instant(row.at),
        "kind": row.kind,
        "actor": row.actor_id,
        "subject": row.subject_id,
        "field": row.field,
        "purpose": row.purpose,
        "query": row.query,
        "columns": _normal(row.columns),
        "row_count": row.row_count,
        "subject_ids": _normal(row.subject_ids),
        "ip": row.ip_address,
        "detail": _normal(row.detail),
    }


def access_stretch(previous: str, rows: Iterable[Any]) -> tuple[str, int]:
    """The hash a seal gives `rows` (access rows in id order) after the seal `previous`, and
    how many rows there were: what `access_log_seal` writes and `verify_audit` recomputes."""
    head, count = previous, 0
    for row in rows:
        head = link(head, access_content(row))
        count += 1
    return head, count


def _ip(value: str | None) -> str | None:
    """An IP address as Python writes it, whichever way it was typed or the database prints it
    (PostgreSQL's inet keeps IPv4-mapped IPv6 addresses dotted)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def access_row_content(row: Any) -> dict[str, Any]:
    """What an `AccessEvent` row's own `chain_hash` covers (issue 13.2): its content without
    its id, which is not known before the row is written; computed from the row about to be
    written and again from the row read back."""
    content = access_content(row)
    del content["id"]
    content["ip"] = _ip(row.ip_address)
    return content


def access_chain_breaks(rows: Iterable[Any]) -> Iterable[tuple[Any, str]]:
    """One actor's access rows in id order, checked link by link: each row whose previous hash
    is not the hash of the row before it (a row removed or added), or whose own hash does not
    match its content (a row changed), with what is wrong."""
    previous = GENESIS
    for row in rows:
        if row.previous_hash != previous:
            yield row, "the row before it in this person's chain was changed or removed"
        elif row.chain_hash != link(previous, access_row_content(row)):
            yield row, "its content was changed"
        previous = row.chain_hash
