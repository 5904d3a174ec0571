"""Reads of saved views (issue 14.7): a person's own, those shared with their roles, and the
capped count of each for the sidebar of the list and the board.

What the sidebar lists is bounded (`LISTED` of each kind), and each count is the list's capped
count (`COUNT_CAP`), so the page's cost does not grow with the views people save.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from users.models import SavedView, User
from users.selectors.board import onboarding_cases
from users.selectors.users import capped_count

# How many views of each kind (own, shared with one's roles) the sidebar lists and counts.
LISTED = 10
# The largest id a BigAutoField holds; a bigger one in a URL is no view, not a database error.
PK_MAX = 2**63 - 1


def _owner_holds_role() -> Exists:
    """The owner still holds the role the view is shared with (a role taken away unshares)."""
    return Exists(
        User.groups.through.objects.filter(
            user_id=OuterRef("owner_id"), group_id=OuterRef("shared_with_role_id")
        )
    )


def own_views(actor: User, screen: str, *, limit: int = LISTED) -> tuple[list[SavedView], bool]:
    """`actor`'s views of `screen` by name, at most `limit`: (views, whether there are more).

    `owner_still_shares` says, for a shared one, whether its owner still holds that role."""
    rows = list(
        SavedView.objects.filter(owner=actor, screen=screen)
        .select_related("shared_with_role")
        .annotate(owner_still_shares=_owner_holds_role())
        .order_by("name", "id")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def shared_views_queryset(actor: User) -> QuerySet[SavedView]:
    """Other people's views shared with a role `actor` holds, whose owner still holds it and
    is not deleted."""
    return (
        SavedView.objects.filter(shared_with_role__user=actor, owner__deleted=False)
        .exclude(owner=actor)
        .filter(_owner_holds_role())
    )


def shared_views(actor: User, screen: str, *, limit: int = LISTED) -> tuple[list[SavedView], bool]:
    """Views of `screen` shared with `actor`'s roles, by name: (views, whether there are more)."""
    rows = list(
        shared_views_queryset(actor)
        .filter(screen=screen)
        .select_related("shared_with_role", "owner")
        .only(
            "id",
            "name",
            "screen",
            "query",
            "owner__first_name",
            "owner__last_name",
            "owner__email",
            "shared_with_role__name",
        )
        .order_by("name", "id")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def view_by_id(pk: int) -> SavedView | None:
    """The view `pk`, or None (an id too large for the column included)."""
    if not 0 < pk <= PK_MAX:  # a crafted id no database column holds: no such view
        return None
    return SavedView.objects.select_related("shared_with_role").filter(pk=pk).first()


def visible_view(actor: User, pk: int) -> SavedView | None:
    """The view `pk` if `actor` owns it or it is shared with them, else None."""
    view = view_by_id(pk)
    if view is None or view.owner_id == actor.pk:
        return view
    return shared_views_queryset(actor).filter(pk=pk).first()


def view_count(users: QuerySet[User], screen: str) -> tuple[int, bool]:
    """How many users a saved view shows, capped like the list's count: (count, capped). A
    board view counts the board's cards (onboarding cases: staff left out)."""
    if screen == SavedView.Screen.BOARD:
        users = onboarding_cases(users)
    return capped_count(users)
