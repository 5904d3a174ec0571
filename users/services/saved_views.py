"""Saved views (issue 14.7): a named filter of the user list or the board, saved, renamed,
re-shared and deleted by its owner.

A view stores its screen's query string: the filters, the search, the query mode and the sort,
never a page, a cursor or a board column's length. Which parameters a screen has is the
screen's to say (`known_params`, from its filter definitions in `users.views`), so a filter
added to the list is savable at once; anything else is refused with its name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import timezone

from users import policy, validators
from users.models import SavedView, User

NAME_MAX = SavedView._meta.get_field("name").max_length
QUERY_MAX = 2000
# Where a page of results starts: how far one has read, not what one looks at.
PAGINATION_PARAMS = frozenset({"page", "after", "before"})


def is_pagination(key: str) -> bool:
    """A page, a cursor (`after`, `before`) or a board column's length (`limit_<STATUS>`)."""
    return key in PAGINATION_PARAMS or key.startswith("limit_")


def split_query(query: str, *, known_params: Collection[str]) -> tuple[QueryDict, list[str]]:
    """(the query's known, non-empty parameters; the names of the unknown ones). Pages and
    cursors are left out without a word: they are never part of a view."""
    params = QueryDict(query, mutable=True)
    unknown = [key for key in params if key not in known_params and not is_pagination(key)]
    kept = QueryDict(mutable=True)
    for key in params:
        values = [value for value in params.getlist(key) if value != ""]
        if key in known_params and values:
            kept.setlist(key, values)
    return kept, unknown


def _screen_label(screen: str) -> str:
    try:
        return str(SavedView.Screen(screen).label).lower()
    except ValueError:
        return "this screen"


def clean_name(name: str) -> str:
    """The name as stored: spaces at the ends trimmed, runs of spaces made one."""
    text = " ".join((name or "").split())
    if not text:
        raise ValidationError({"name": "Give the view a name."}, code="required")
    if len(text) > NAME_MAX:
        raise ValidationError(
            {
                "name": f"A view's name has at most {NAME_MAX} characters "
                f"(this one has {len(text)})."
            },
            code="max_length",
        )
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise ValidationError(
            {"name": "A view's name cannot hold control characters."}, code="invalid"
        )
    return text


def clean_query(query: str, *, screen: str, known_params: Collection[str]) -> str:
    """The query string to store: known parameters only (pages and cursors dropped), at most
    QUERY_MAX characters. An unknown parameter is refused with its name."""
    params, unknown = split_query(query or "", known_params=known_params)
    # Encoded (%00) or not: PostgreSQL refuses NUL in text.
    if "\x00" in (query or "") or validators.first_nul(QueryDict(query or "")) is not None:
        raise ValidationError({"query": "A view cannot hold a NUL character."}, code="nul")
    if unknown:
        names = ", ".join(f"“{key[:40]}”" for key in unknown)
        raise ValidationError(
            {
                "query": f"{names} {'is' if len(unknown) == 1 else 'are'} no filter of the "
                f"{_screen_label(screen)}; a view saves its filters, search, query mode "
                "and sort only."
            },
            code="unknown_param",
        )
    text = params.urlencode()
    if len(text) > QUERY_MAX:
        raise ValidationError(
            {
                "query": f"These filters are too long to save ({len(text):,} characters; "
                f"at most {QUERY_MAX:,})."
            },
            code="max_length",
        )
    return text


def _role_group(actor: User, role: str | None) -> Group | None:
    """The group to share with, once the policy allowed it (a role the actor holds)."""
    if not role:
        return None
    policy.check_share(actor, role)
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise ValidationError({"shared_with_role": f"The role “{role}” does not exist."})
    return group


def _check_unique(*, owner: User, screen: str, name: str, exclude: int | None = None) -> None:
    # Case-insensitive here (two views called "Belgium" and "belgium" would only confuse);
    # the database constraint holds the exact name against a race.
    clash = SavedView.objects.filter(owner=owner, screen=screen, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationError({"name": _taken(name, screen)}, code="unique")


def _taken(name: str, screen: str) -> str:
    return (
        f"You already have a view named “{name}” on the {_screen_label(screen)}; "
        "choose another name."
    )


def _save(view: SavedView) -> None:
    """Save, a lost race for the name being the name's error, never a server error."""
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as exc:
        raise ValidationError({"name": _taken(view.name, view.screen)}, code="unique") from exc


@transaction.atomic
def saved_view_create(
    *,
    owner: User,
    name: str,
    screen: str,
    query: str,
    shared_with_role: str | None,
    known_params: Collection[str],
) -> SavedView:
    """Save `query` of `screen` as `owner`'s view `name`, shared with `shared_with_role` (a
    role the owner holds) or with nobody. Raises ValidationError (by field: name, query,
    screen, shared_with_role) or PermissionDenied (a role the owner does not hold)."""
    if screen not in SavedView.Screen.values:
        raise ValidationError({"screen": "Views are saved of the user list or the board."})
    if not policy.may_save_views(owner):
        raise ValidationError({"screen": "Your role does not see the list or the board."})
    group = _role_group(owner, shared_with_role)
    name = clean_name(name)
    query = clean_query(query, screen=screen, known_params=known_params)
    _check_unique(owner=owner, screen=screen, name=name)
    now = timezone.now()
    view = SavedView(
        owner=owner,
        name=name,
        screen=screen,
        query=query,
        shared_with_role=group,
        created_at=now,
        updated_at=now,
    )
    _save(view)
    return view


@transaction.atomic
def saved_view_update(
    *, view: SavedView, actor: User, name: str, shared_with_role: str | None
) -> SavedView:
    """Rename `view` and set whom it is shared with; its owner only (PermissionDenied
    otherwise). Its query stays: a view of other filters is saved as a new view."""
    policy.check_manage_view(actor, view)
    group = _role_group(actor, shared_with_role)
    name = clean_name(name)
    _check_unique(owner=actor, screen=view.screen, name=name, exclude=view.pk)
    view.name = name
    view.shared_with_role = group
    view.updated_at = timezone.now()
    _save(view)
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, actor: User) -> None:
    """Delete `view`; its owner only (PermissionDenied otherwise). Those it was shared with
    no longer see it."""
    policy.check_manage_view(actor, view)
    view.delete()
