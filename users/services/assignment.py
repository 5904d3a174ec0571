"""Assigning onboarding cases (issue 14.1): who works which user's case.

`User.assignee` says who holds the case now; each change is a `CaseAssignment` row (the
history the detail's timeline shows), written in the same transaction. The assignee is no
field of the record: no version, no chain row (`users/chain.py`).

Every change names the assignee the person saw (`expected_assignee`): the user's row is locked
first, so of two people claiming one case at once the first wins and the second is told who
has it ("Already assigned to Ann Example.") instead of taking it over silently. Who may do what
is `policy.assignment_refusal`'s question, asked here for every front end.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users import policy, validators
from users.models import CaseAssignment, User
from users.services.users import Clock


def _changed_meanwhile(current: User | None, expected_id: str | None) -> ValidationError:
    if current is not None:
        message = f"Already assigned to {current.display_name}."
        code = "already_assigned"
    else:
        message = "Unassigned meanwhile: look at the case again before assigning it."
        code = "assignment_changed"
    return ValidationError({"assignee": ValidationError(message, code=code)})


@transaction.atomic
def case_assign(
    *,
    user: User,
    assignee: User | None,
    actor: User,
    expected_assignee: str | None,
    clock: Clock = timezone.now,
) -> User:
    """Give the case of `user` to `assignee` (None: unassign it), if it is still held by
    `expected_assignee` (a user id, None: unassigned).

    Refused with a `ValidationError` (field `assignee`) when the assignment changed since
    (code `already_assigned` naming who has it, or `assignment_changed`), when nothing would
    change (`unchanged`) or the user is deleted; with `PermissionDenied` when the policy says
    no. Returns the user as stored, its assignee loaded.
    """
    # The row alone: after waiting for another claim's lock, PostgreSQL re-reads the locked
    # row but not an outer-joined one, which would show the case as still unassigned.
    current = User.objects.select_for_update().get(pk=user.pk)
    validators.not_deleted(current.deleted)
    held_by = current.assignee  # read after the lock, with the row as it is now
    if (held_by.pk if held_by else None) != (expected_assignee or None):
        raise _changed_meanwhile(held_by, expected_assignee)
    if (held_by.pk if held_by else None) == (assignee.pk if assignee else None):
        if held_by is None:
            message = "Already unassigned."
        elif held_by.pk == actor.pk:
            message = "Already assigned to you."
        else:
            message = f"Already assigned to {held_by.display_name}."
        raise ValidationError({"assignee": ValidationError(message, code="unchanged")})
    if assignee is not None:
        # As stored now (flags, roles, deleted), not as the caller read it.
        assignee = User.objects.prefetch_related("flag_grants").get(pk=assignee.pk)
    policy.check_assignment(actor, current, current=held_by, assignee=assignee)
    now = clock()
    current.assignee = assignee
    current.assigned_at = now if assignee is not None else None
    current.save(update_fields=["assignee", "assigned_at"])
    CaseAssignment.objects.create(
        user=current, assignee=assignee, previous_assignee=held_by, assigned_by=actor, at=now
    )
    return current


def case_claim(
    *, user: User, actor: User, expected_assignee: str | None = None, clock: Clock = timezone.now
) -> User:
    """ "Assign to me": `actor` takes the case, which must still be unassigned (or held by
    `expected_assignee`, for an admin taking it over)."""
    return case_assign(
        user=user, assignee=actor, actor=actor, expected_assignee=expected_assignee, clock=clock
    )


def case_unassign(
    *, user: User, actor: User, expected_assignee: str | None, clock: Clock = timezone.now
) -> User:
    """Give the case back (one's own) or take it from whoever holds it (admins)."""
    return case_assign(
        user=user, assignee=None, actor=actor, expected_assignee=expected_assignee, clock=clock
    )
