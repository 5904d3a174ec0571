"""The reason codes a move may take (issue 14.3): the active ones, in the admins' order.

Both reads are compiled once (`CompiledQuery`): every page that moves or filters users runs one.
"""

from __future__ import annotations

from users.models import ReasonCode
from users.selectors.compiled import CompiledQuery

_ACTIVE = CompiledQuery(
    lambda: ReasonCode.objects.filter(active=True).order_by("position", "code"), takes_id=False
)
_LABELS = CompiledQuery(
    lambda: ReasonCode.objects.order_by("position", "code").values_list("code", "label"),
    takes_id=False,
)


def active_reason_codes() -> list[ReasonCode]:
    """The codes a move form offers; a deactivated code stays in the history, never offered."""
    return list(_ACTIVE.raw())


def reason_code_labels() -> dict[str, str]:
    """Every code's label, deactivated ones included: what the list's filter names."""
    return dict(_LABELS.rows())
