"""Saved views (issue 14.7): the "Saved views" block of the list's sidebar and of the board,
and saving, renaming, re-sharing and deleting a view.

`users/saved_views.html` is the block's own page (what a plain request gets: the block with its
form or confirmation, then a redirect back to the screen); its `saved-views` partial (id
`saved-views`) is the block the list and the board include and what every action here returns
to htmx. A view opens as a plain URL: the screen with the saved query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from users import policy
from users.filters import UserFilter
from users.models import Role, SavedView, User
from users.selectors import saved_views as selectors
from users.services import saved_views as services
from users.views.common import HtmxHttpRequest, list_state, require, state_keys, vary_on_htmx

TEMPLATE = "users/saved_views.html"
SCREEN_URLS = {SavedView.Screen.LIST: "users:user-list", SavedView.Screen.BOARD: "users:board"}


def screen_params() -> list[str]:
    """The parameters a view of the list or the board saves: the search, its mode, every
    filter's inputs (from the list's filter definitions) and the sort."""
    return [*state_keys(UserFilter(QueryDict())), "sort"]


def _screen(raw: str | None) -> str:
    return raw if raw in SavedView.Screen.values else SavedView.Screen.LIST


def _screen_url(screen: str, query: str = "") -> str:
    url = reverse(SCREEN_URLS[screen])
    return f"{url}?{query}" if query else url


def screen_label(screen: str) -> str:
    return str(SavedView.Screen(screen).label).lower()


def _role_label(name: str) -> str:
    try:
        return str(Role(name).label)
    except ValueError:
        return name


@dataclass(frozen=True)
class Entry:
    """One saved view as the block shows it."""

    view: SavedView
    url: str
    count: str
    current: bool
    note: str
    shared_with: str


def _count(view: SavedView, actor: User) -> str:
    """The view's capped count for `actor` (who `assignee=me` means)."""
    state = list_state(QueryDict(view.query), actor)
    if not state.is_valid or state.queryset is None:
        return "—"
    count, capped = selectors.view_count(state.queryset, view.screen)
    return f"{count:,}+" if capped else f"{count:,}"


def _entry(view: SavedView, current_query: str | None, *, own: bool, actor: User) -> Entry:
    role = view.shared_with_role.name if view.shared_with_role else None
    if own and role:
        note = f"Shared with {_role_label(role)}"
        if not getattr(view, "owner_still_shares", True):
            note += " (not shown to them: you no longer hold this role)"
    elif own:
        note = "Only you"
    else:
        note = f"By {view.owner.display_name}, shared with {_role_label(role or '')}"
    return Entry(
        view=view,
        url=_screen_url(view.screen, view.query),
        count=_count(view, actor),
        current=current_query is not None and view.query == current_query,
        note=note,
        shared_with=_role_label(role) if role else "",
    )


def _current_query(request: HtmxHttpRequest, screen: str) -> str | None:
    """The query of the screen the request came from (htmx: the address bar, which follows
    every filter change), as the screen itself would write it; None elsewhere."""
    url = request.htmx.current_url if request.htmx else None
    parts = urlsplit(url or "")
    if not url or parts.path != reverse(SCREEN_URLS[screen]):
        return None
    return list_state(QueryDict(parts.query)).querystring()


def block(
    request: HtmxHttpRequest, screen: str, current_query: str | None, **extra: Any
) -> dict[str, Any]:
    """The context of the "Saved views" block of `screen` (`saved_views` in the template):
    the actor's views and those shared with their roles, at most `LISTED` of each, each with
    its capped count; `current_query` marks the view on show."""
    actor = request.user
    mine, more_mine = selectors.own_views(actor, screen)
    shared, more_shared = selectors.shared_views(actor, screen)
    return {
        "screen": screen,
        "screen_label": SavedView.Screen(screen).label,
        "screen_url": _screen_url(screen),
        "query": current_query or "",
        "mine": [_entry(view, current_query, own=True, actor=actor) for view in mine],
        "shared": [_entry(view, current_query, own=False, actor=actor) for view in shared],
        "more_mine": more_mine,
        "more_shared": more_shared,
        "listed": selectors.LISTED,
        "share_choices": [(role, _role_label(role)) for role in policy.share_roles(actor)],
        "form": {"name": "", "share": ""},
        "errors": {},
        **extra,
    }


def _render(
    request: HtmxHttpRequest, screen: str, *, current_query: str | None = None, **extra: Any
) -> HttpResponse:
    """The block alone for htmx, else its page."""
    if current_query is None:
        current_query = _current_query(request, screen)
    context = {"saved_views": block(request, screen, current_query, **extra)}
    if request.htmx:
        return vary_on_htmx(render(request, f"{TEMPLATE}#saved-views", context))
    return vary_on_htmx(render(request, TEMPLATE, context))


def _done(request: HtmxHttpRequest, screen: str, message: str, back: str) -> HttpResponse:
    """After a change: the block with its message (htmx), else the message and the screen."""
    if request.htmx:
        return _render(request, screen, message=message)
    messages.success(request, message)
    return redirect(back)


def _errors(exc: ValidationError | PermissionDenied) -> dict[str, list[str]]:
    if isinstance(exc, PermissionDenied):
        return {"shared_with_role": [str(exc)]}
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"name": list(exc.messages)}


def _own_view(request: HtmxHttpRequest, pk: int) -> SavedView:
    """The view `pk` if its owner asks; 403 for anyone else's (an id says nothing of what it
    filters), 404 when there is none."""
    view = selectors.view_by_id(pk)
    if view is None:
        raise Http404("No such saved view.")
    policy.check_manage_view(request.user, view)
    return view


@require_GET
@login_required
def saved_views(request: HtmxHttpRequest) -> HttpResponse:
    """The block of `?screen=` (list or board): its page, or itself for htmx (a Cancel)."""
    require(policy.may_save_views(request.user))
    focus = request.GET.get("from", "")
    return _render(
        request, _screen(request.GET.get("screen")), focus=int(focus) if focus.isdigit() else None
    )


def _posted_query(request: HtmxHttpRequest, screen: str) -> QueryDict:
    """The filters to save: with htmx the address bar's (it follows every change made since
    the page was drawn), else the form's `query`, drawn with the page."""
    url = request.htmx.current_url if request.htmx else None
    parts = urlsplit(url or "")
    if url and parts.path == reverse(SCREEN_URLS[screen]):
        return QueryDict(parts.query)
    return QueryDict(request.POST.get("query", ""))


@require_POST
@login_required
def saved_view_save(request: HtmxHttpRequest) -> HttpResponse:
    """Save the screen's current filters under a name, for oneself or shared with a role one
    holds. Unknown parameters are left out and named; pages and cursors are never saved."""
    require(policy.may_save_views(request.user))
    screen = _screen(request.POST.get("screen"))
    form = {"name": request.POST.get("name", ""), "share": request.POST.get("share", "")}
    raw = _posted_query(request, screen)
    known = screen_params()
    _, unknown = services.split_query(raw.urlencode(), known_params=known)
    state = list_state(raw)
    query = state.querystring()
    if not state.is_valid:
        errors = {"query": ["Fix the search or the filters before saving them as a view."]}
    else:
        try:
            view = services.saved_view_create(
                owner=request.user,
                name=form["name"],
                screen=screen,
                query=query,
                shared_with_role=form["share"] or None,
                known_params=known,
            )
        except (ValidationError, PermissionDenied) as exc:
            errors = _errors(exc)
        else:
            message = f"Saved “{view.name}”."
            if unknown:
                left_out = ", ".join(f"“{key[:40]}”" for key in unknown)
                message += f" Left out {left_out}: no filter of the {screen_label(screen)}."
            return _done(request, screen, message, _screen_url(screen, view.query))
    return _render(request, screen, current_query=query, form=form, errors=errors, saving=True)


@require_http_methods(["GET", "POST"])
@login_required
def saved_view_rename(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET: the rename form in place of the view; POST: rename and re-share (owner only)."""
    require(policy.may_save_views(request.user))
    view = _own_view(request, pk)
    current_role = view.shared_with_role.name if view.shared_with_role else ""
    form = {"name": view.name, "share": current_role}
    if request.method == "GET":
        return _render(request, view.screen, renaming=view.pk, form=form)
    form = {"name": request.POST.get("name", ""), "share": request.POST.get("share", "")}
    try:
        view = services.saved_view_update(
            view=view, actor=request.user, name=form["name"], shared_with_role=form["share"] or None
        )
    except (ValidationError, PermissionDenied) as exc:
        view.refresh_from_db()
        return _render(request, view.screen, renaming=view.pk, form=form, errors=_errors(exc))
    return _done(
        request, view.screen, f"Saved as “{view.name}”.", _screen_url(view.screen, view.query)
    )


@require_http_methods(["GET", "POST"])
@login_required
def saved_view_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation (works without JavaScript); POST deletes (owner only)."""
    require(policy.may_save_views(request.user))
    view = _own_view(request, pk)
    if request.method == "GET":
        return _render(request, view.screen, confirming=view.pk)
    name, screen = view.name, view.screen
    services.saved_view_delete(view=view, actor=request.user)
    return _done(request, screen, f"Deleted “{name}”.", _screen_url(screen))
