"""The list of reason codes (issue 14.3), maintained by admins: add, rename, reorder, retire.

A code some status move used is never deleted: the history points at it (PROTECT), so a
delete is refused with a clear message and the code is deactivated instead. A deactivated code
is no longer offered nor accepted for a move; the history keeps showing its label.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from users import policy, validators
from users.models import REASON_CODE_REGEX, ReasonCode, User

CODE_MAX_LENGTH = ReasonCode._meta.get_field("code").max_length
LABEL_MAX_LENGTH = ReasonCode._meta.get_field("label").max_length
POSITION_MAX = 2**31 - 1


def _check_actor(actor: User | None) -> None:
    if actor is not None and not policy.may_manage_reason_codes(actor):
        raise PermissionDenied("Only admins maintain the reason codes.")


def clean_reason_code_data(*, code: str, label: str, position: int, create: bool) -> dict:
    """`code`, `label` and `position` checked and normalised, or one `ValidationError` keyed
    by field: the code an upper-case slug not taken yet (on create), a label, a position."""
    errors: dict[str, list[ValidationError]] = {}
    cleaned: dict = {}
    try:
        cleaned["code"] = validators.text(code, max_length=CODE_MAX_LENGTH, field="Code").upper()
        if not re.fullmatch(REASON_CODE_REGEX, cleaned["code"]):
            raise ValidationError(
                "A code is 2 to 32 upper-case letters, digits and _, starting with a letter "
                "(e.g. DOCUMENT_EXPIRED).",
                code="invalid",
            )
        if create and ReasonCode.objects.filter(pk=cleaned["code"]).exists():
            raise ValidationError(f"The code {cleaned['code']} exists already.", code="unique")
    except ValidationError as exc:
        errors["code"] = exc.error_list
    try:
        cleaned["label"] = validators.text(label, max_length=LABEL_MAX_LENGTH, field="Label")
        if not cleaned["label"]:
            raise ValidationError("Give the code a label.", code="required")
    except ValidationError as exc:
        errors["label"] = exc.error_list
    if not isinstance(position, int) or not 0 <= position <= POSITION_MAX:
        errors["position"] = [ValidationError("A position is a whole number ≥ 0.", code="invalid")]
    else:
        cleaned["position"] = position
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def reason_code_create(
    *, code: str, label: str, actor: User | None, active: bool = True, position: int = 0
) -> ReasonCode:
    """Add a code to the list (admins)."""
    _check_actor(actor)
    cleaned = clean_reason_code_data(code=code, label=label, position=position, create=True)
    return ReasonCode.objects.create(active=active, **cleaned)


@transaction.atomic
def reason_code_update(
    *, code: str, label: str, active: bool, position: int, actor: User | None
) -> ReasonCode:
    """Rename, reorder, deactivate or reactivate a code (admins); the code itself is fixed,
    as the history names it."""
    _check_actor(actor)
    found = ReasonCode.objects.select_for_update().get(pk=code)
    cleaned = clean_reason_code_data(code=code, label=label, position=position, create=False)
    found.label, found.position, found.active = cleaned["label"], cleaned["position"], active
    found.save(update_fields=["label", "position", "active"])
    return found


@transaction.atomic
def reason_code_delete(*, code: str, actor: User | None) -> None:
    """Remove a code no move ever used (admins); one in use is refused: deactivate it."""
    _check_actor(actor)
    found = ReasonCode.objects.select_for_update().get(pk=code)
    # Counted, not collected: Django's protection would read every move that used the code.
    uses = found.status_changes.count()
    if uses:
        raise ValidationError(
            f"The reason code {found.code} ({found.label}) is used by "
            f"{uses} status move(s) and cannot be deleted; deactivate it instead.",
            code="protected",
        )
    # The row lock holds back a move taking the code meanwhile (its foreign key waits on it).
    found.delete()
