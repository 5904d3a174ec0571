"""Reads of a user's history: versions, status rows and the diff between two versions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from users.contract import TRACKED_FIELDS
from users.models import CaseAssignment, CaseNote, StatusChange, User, UserVersion
from users.selectors.people import with_people


def version_diff(user: User, *, from_version: int, to_version: int) -> dict[str, list[Any]]:
    """Field → [value at `from_version`, value at `to_version`], only for fields that differ.

    Built from the per-version diffs: for each field the old value of its first change after
    `from_version` and the new value of its last change up to `to_version`.
    """
    low, high = sorted((from_version, to_version))
    diff: dict[str, list[Any]] = {}
    rows = (
        UserVersion.objects.filter(user=user, version__gt=low, version__lte=high)
        .order_by("version")
        .values_list("changes", flat=True)
    )
    for changes in rows:
        for name, (old, new) in changes.items():
            if name in diff:
                diff[name][1] = new
            else:
                diff[name] = [old, new]
    diff = {name: pair for name, pair in diff.items() if pair[0] != pair[1]}
    if from_version > to_version:
        diff = {name: [new, old] for name, (old, new) in diff.items()}
    return {name: diff[name] for name in TRACKED_FIELDS if name in diff}


def recent_versions(user: User, *, limit: int) -> list[UserVersion]:
    """The user's latest `limit` versions, newest first, with what each author's name needs."""
    return list(
        UserVersion.objects.filter(user=user)
        .select_related("author", "approved_by")
        .only(
            "version",
            "created_at",
            "changes",
            # what display_name may fall back on, so no author is fetched again
            "author__first_name",
            "author__last_name",
            "author__email",
            "author__external_id",
            # the checker of a change applied on approval (four-eyes)
            "approved_by__first_name",
            "approved_by__last_name",
            "approved_by__email",
            "approved_by__external_id",
        )
        .order_by("-version")[:limit]
    )


def recent_status_changes(user: User, *, limit: int) -> list[StatusChange]:
    """The user's latest `limit` status rows, newest first, with their authors."""
    return list(
        with_people(StatusChange.objects.filter(user=user), "changed_by")
        .select_related("reason_code")
        .order_by("-changed_at", "-id")[:limit]
    )


def recent_case_notes(user: User, *, limit: int) -> list[CaseNote]:
    """The user's latest `limit` case notes, newest first, with their authors."""
    return list(
        with_people(CaseNote.objects.filter(user=user), "author").order_by("-created_at", "-id")[
            :limit
        ]
    )


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the detail's status timeline: a status change, a case note or a change of
    assignee."""

    kind: str  # "status", "note" or "assignment"
    at: dt.datetime
    row: StatusChange | CaseNote | CaseAssignment


def status_timeline(
    status_changes: list[StatusChange],
    notes: list[CaseNote],
    assignments: Sequence[CaseAssignment] = (),
) -> list[TimelineEntry]:
    """Status changes, case notes and assignment changes in one list, newest first; a note
    written with a move (same instant) reads after it, so it is listed above it."""
    entries = [TimelineEntry("status", row.changed_at, row) for row in status_changes]
    entries += [TimelineEntry("note", row.created_at, row) for row in notes]
    entries += [TimelineEntry("assignment", row.at, row) for row in assignments]
    entries.sort(key=lambda e: (e.at, e.kind == "note", e.row.pk), reverse=True)
    return entries


def versions_since(user: User, version: int) -> list[UserVersion]:
    """The versions made after `version`, oldest first, with their authors."""
    return list(
        UserVersion.objects.filter(user=user, version__gt=version)
        .select_related("author")
        .order_by("version")
    )
