"""Case notes (issue 14.2): what a compliance officer checked, written on the user's case.

Notes are only ever added (a PostgreSQL trigger refuses UPDATE and DELETE): a correction is a
new note. A note may come with a status move (`user_change_status(note=...)`), in the move's
transaction and at its time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users import policy, validators
from users.models import CASE_NOTE_MAX_LENGTH, CaseNote, User


def clean_note_text(text: object, *, required: bool = True) -> str:
    """The note's text, trimmed; refused (keyed `note`) when empty (if `required`), too long
    or holding a NUL."""
    try:
        cleaned = validators.text(text, max_length=CASE_NOTE_MAX_LENGTH, field="The note")
    except ValidationError as exc:
        raise ValidationError({"note": exc.error_list}) from exc
    if required and not cleaned:
        raise ValidationError(
            {"note": ValidationError("Write the note first: it is empty.", code="required")}
        )
    return cleaned


def write_note(*, user: User, text: str, actor: User | None, at: dt.datetime) -> CaseNote:
    """Insert a note already cleaned and allowed (the services' shared step)."""
    return CaseNote.objects.create(user=user, author=actor, created_at=at, text=text)


@transaction.atomic
def case_note_add(
    *,
    user: User,
    text: str,
    actor: User | None,
    clock: Callable[[], dt.datetime] = timezone.now,
) -> CaseNote:
    """Add a note to `user`'s case. With an `actor`, the policy's rule holds here too
    (`policy.check_add_note`), whichever front end called; a deleted user takes no notes."""
    if actor is not None:
        policy.check_add_note(actor, user)
    cleaned = clean_note_text(text)
    validators.not_deleted(User.objects.filter(pk=user.pk, deleted=True).exists())
    return write_note(user=user, text=cleaned, actor=actor, at=clock())
