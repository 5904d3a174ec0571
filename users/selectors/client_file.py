"""One user's file as it stood at a chosen moment (issue 13.5): every field rebuilt from the
versions, the status timeline, every version with its author, checker and diff, the four-eyes
requests as they stood then, who accessed the user's data, and a SHA-256 manifest of the
contents with the chain hashes (`users/chain.py`) it was built from.

The console's page and JSON download and `manage.py export_client_file` all build it here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.utils import timezone

from users import chain, contract
from users.models import AccessEvent, ChangeRequest, StatusChange, User, UserVersion

FORMAT = "client-file/1"


class NotYet(ValueError):
    """The user did not exist yet at the chosen moment."""


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in the console's time zone: the file "as of" a date holds
    everything written that day."""
    start = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    return timezone.make_aware(start, timezone.get_default_timezone())


def _person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name, "email": user.email or ""}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def client_file(
    user: User, *, as_of: dt.date, generated_by: User | None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The file of `user` at the end of `as_of` (console time zone), as JSON values.

    Raises `NotYet` when the user was created after that day.
    """
    until = end_of_day(as_of)
    versions = list(
        UserVersion.objects.filter(user=user, created_at__lt=until)
        .select_related("author", "approved_by")
        .order_by("version")
    )
    if not versions:
        raise NotYet(f"The user did not exist yet on {as_of.isoformat()}.")
    status_changes = list(
        StatusChange.objects.filter(user=user, changed_at__lt=until)
        .select_related("changed_by", "reason_code")
        .order_by("version", "id")
    )
    record = contract.empty_record()
    for version in versions:
        for name, (_, new) in version.changes.items():
            if name in record:
                record[name] = new
    last = versions[-1]
    # Recomputed, not only copied: a file built from a tampered history says so.
    rows = chain.recomputed(versions, status_changes)
    chain_holds = all(row.chain_hash == expected for row, expected in rows)
    contents = {
        "record": {
            "id": user.pk,
            "version": last.version,
            "version_datetime": _instant(last.created_at),
            "version_authored_by": _person(last.author),
            **record,
        },
        "status_timeline": [
            {
                "version": row.version,
                "at": _instant(row.changed_at),
                "from": row.from_status or None,
                "to": row.to_status,
                "by": _person(row.changed_by),
                "reason_code": row.reason_code_id,
                "reason_code_label": row.reason_code.label if row.reason_code else None,
                "reason": row.reason,
                "off_flow": row.off_flow,
            }
            for row in status_changes
        ],
        "versions": [
            {
                "version": row.version,
                "at": _instant(row.created_at),
                "author": _person(row.author),
                "approved_by": _person(row.approved_by),
                "changes": row.changes,
                "chain_hash": row.chain_hash,
            }
            for row in versions
        ],
    }
    contents["change_requests"] = [_request_as_of(row, until) for row in _requests(user, until)]
    contents["access_log"] = [_access(row) for row in _accesses(user, until)]
    manifest = {
        "algorithm": "SHA-256 over each section's canonical JSON (sorted keys, no spaces, UTF-8)",
        "sections": {name: _sha256(section) for name, section in contents.items()},
        "chain": {
            "rows": len(rows),
            "head": rows[-1][0].chain_hash,
            "holds": chain_holds,
        },
    }
    manifest["contents"] = _sha256(manifest["sections"])
    return {
        "format": FORMAT,
        "user_id": user.pk,
        "as_of": as_of.isoformat(),
        "until": _instant(until),
        "generated_at": _instant(now or timezone.now()),
        "generated_by": _person(generated_by),
        **contents,
        "manifest": manifest,
    }


def _requests(user: User, until: dt.datetime) -> list[ChangeRequest]:
    return list(
        ChangeRequest.objects.filter(user=user, proposed_at__lt=until)
        .select_related("proposed_by", "decided_by")
        .order_by("proposed_at", "id")
    )


def _request_as_of(row: ChangeRequest, until: dt.datetime) -> dict[str, Any]:
    """A four-eyes request as it stood at `until`: a decision taken later is not shown yet."""
    decided = row.decided_at is not None and row.decided_at < until
    if decided:
        state = row.state
    elif row.expires_at <= until:
        state = ChangeRequest.State.EXPIRED
    else:
        state = ChangeRequest.State.PENDING
    return {
        "id": row.pk,
        "kind": row.kind,
        "changes": row.changes,
        "base_version": row.base_version,
        "reason": row.reason,
        "proposed_by": _person(row.proposed_by),
        "proposed_at": _instant(row.proposed_at),
        "expires_at": _instant(row.expires_at),
        "state": state,
        "decided_by": _person(row.decided_by) if decided else None,
        "decided_at": _instant(row.decided_at) if decided else None,
        "decision_reason": row.decision_reason if decided else "",
        "applied_version": row.applied_version if decided else None,
    }


def _accesses(user: User, until: dt.datetime) -> list[AccessEvent]:
    """Who saw this user's data before `until`: the accesses naming them, and the API list
    pages that returned them (their ids are kept, up to the cap, as JSON text)."""
    named = AccessEvent.objects.filter(subject=user, at__lt=until)
    listed = AccessEvent.objects.filter(
        kind=AccessEvent.Kind.API_LIST, at__lt=until, subject_ids__icontains=user.pk
    )
    return list((named | listed).select_related("actor").order_by("at", "id"))


def _access(row: AccessEvent) -> dict[str, Any]:
    return {
        "at": _instant(row.at),
        "kind": row.kind,
        "by": _person(row.actor),
        "field": row.field,
        "purpose": row.purpose,
        "query": row.query,
        "ip_address": row.ip_address,
    }


def as_json(file: dict[str, Any]) -> str:
    return json.dumps(file, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
