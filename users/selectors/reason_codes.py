"""The reason codes a move may take (issue 14.3): the active ones, in the admins' order."""

from __future__ import annotations

from users.models import ReasonCode


def active_reason_codes() -> list[ReasonCode]:
    """The codes a move form offers; a deactivated code stays in the history, never offered."""
    return list(ReasonCode.objects.filter(active=True).order_by("position", "code"))


def reason_code_labels() -> dict[str, str]:
    """Every code's label, deactivated ones included: what the list's filter names."""
    return dict(ReasonCode.objects.order_by("position", "code").values_list("code", "label"))
