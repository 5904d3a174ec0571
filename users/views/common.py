"""Helpers shared by the console views: the typed request, loading a user, parsing a version,
and the list state (filters, search, sort) read from a URL.

The list, the board and the CSV export all read the same query parameters, so a bookmarked or
shared URL means the same set of users on each of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, resolve_url
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from users import contract, policy, query, selectors, services, validators
from users.filters import UserFilter
from users.models import Status, User
from users.selectors.change_requests import with_pending_mark
from users.selectors.people import NAME_FIELDS, role_names_of, with_people
from users.services.factors import has_factor

SEARCH_MODES = ("simple", "advanced")
# Public sort keys (what the URL says) → columns. The primary key always breaks ties so that
# pages never overlap or skip rows.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("last_name", "first_name"),
    "email": ("email",),
    "status": ("status",),
    "status_changed": ("status_changed_at",),
    "created": ("creation_datetime",),
    "country": ("residency_country",),
    "id": ("id",),
}
DEFAULT_SORT = "-created"
# Sort keys over a column that may be NULL. NULLs order differently on PostgreSQL and SQLite,
# so these pages are read by offset, not continued from a neighbouring row.
NULLABLE_SORTS = frozenset({"email"})
# Parameters that describe which users are shown (not how: page and sort are excluded).
STATE_PARAMS = ("q", "mode")
NUL = "\x00"
# How much of a refused parameter is shown back under its message.
PROBLEM_TEXT_MAX = 1000


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    user: User


def require(allowed: bool) -> None:
    """Refuse (403) unless `users.policy` allowed it; views call it before fetching any data."""
    if not allowed:
        raise PermissionDenied


# When this session last passed its second factor (epoch seconds; users/views/signin.py).
FACTOR_VERIFIED_AT = "factor_verified_at"


def needs_step_up(request: HttpRequest) -> bool:
    """Whether a sensitive action must ask for the second factor again first: the person has
    a factor (always, unless CONSOLE_MFA_REQUIRED is off) and last used it more than
    STEP_UP_SECONDS ago."""
    verified_at = request.session.get(FACTOR_VERIFIED_AT)
    if verified_at is not None and time.time() - verified_at <= settings.STEP_UP_SECONDS:
        return False
    return has_factor(request.user)


def step_up_redirect(request: HtmxHttpRequest, back: str | None = None) -> HttpResponse:
    """To the second-factor check, coming back to `back`, else to this page (for a POST: the
    page it was sent from, where the person sends it again)."""
    if back is None and request.method == "GET":
        back = request.get_full_path()
    elif back is None:
        back = current_page(request) or "/"
    target = f"{reverse('signin-verify')}?{urlencode({'next': back, 'step_up': '1'})}"
    return redirect_or_client_redirect(request, target)


def current_page(request: HttpRequest) -> str | None:
    """The path (and query) of the page an htmx request was sent from (`HX-Current-URL`),
    else, for a plain request, of the page that sent it (`Referer`); only if on this host."""
    htmx = request.headers.get("HX-Request") == "true"
    url = request.headers.get("HX-Current-URL" if htmx else "Referer")
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_again_url(request: HttpRequest) -> str:
    """The sign-in page, leading back to the page the person was on (never to the URL of an
    htmx region, which is no page to land on)."""
    target = resolve_url(settings.LOGIN_URL)
    back = current_page(request)
    return f"{target}?{urlencode({'next': back})}" if back else target


def step_up_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A view for a sensitive action (tokens, roles, factor resets, ...): the second factor
    again when its last check is older than STEP_UP_SECONDS."""

    @wraps(view)
    def wrapped(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and needs_step_up(request):
            return step_up_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped


def htmx_target(request: HtmxHttpRequest) -> str | None:
    return request.htmx.target if request.htmx else None


def redirect_or_client_redirect(request: HtmxHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def load_user(pk: str) -> User:
    """The user with what the detail and edit screens need, in a fixed number of queries."""
    people = User.objects.only(*NAME_FIELDS)
    users = with_pending_mark(with_people(User.objects, "version_authored_by_user", "assignee"))
    user = get_object_or_404(
        users.prefetch_related(
            "flag_grants",
            Prefetch("readable_by", queryset=people),
            Prefetch("modifiable_by", queryset=people),
        ),
        pk=pk,
    )
    user._role_names = role_names_of(user.pk)
    return user


def parse_version(raw: str | None) -> int | None:
    """The version a form says it was made from; none (no check) when missing or not a number."""
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def move_user(
    request: HtmxHttpRequest,
    user: User,
    *,
    target: str,
    reason: str,
    reason_code: str = "",
    note: str = "",
    expected_version: int | None,
) -> tuple[User, list[str]]:
    """Move `user` to `target` if the policy allows it (403 if not): (the user, error messages).

    An unknown status, a missing or retired reason code are the service's to report.
    """
    if target in Status.values:
        policy.check_move(request.user, user.status, target)
    try:
        moved = services.user_change_status(
            user=user,
            status=target,
            actor=request.user,
            reason=reason,
            reason_code=reason_code,
            note=note,
            expected_version=expected_version,
        )
    except services.StaleVersion as exc:
        return user, [str(exc)]
    except ValidationError as exc:
        return user, list(exc.messages)
    return moved, []


def diff_rows(changes: dict[str, list[Any]], *, masked: bool = True) -> list[dict[str, str]]:
    """A diff (field -> [old, new]) as a person reads it, a row per field: the version diff,
    a four-eyes request, a version in the client file. Masked values (`contract.MASKED`) show
    their masks unless `masked` is false (the client file; a checker's four-eyes request)."""
    return [
        {
            "field": name,
            "label": contract.FIELD_LABELS.get(name, name),
            "old": display(old, name, masked=masked),
            "new": display(new, name, masked=masked),
        }
        for name, (old, new) in changes.items()
    ]


def display(value: Any, name: str | None = None, *, masked: bool = False) -> str:
    """A contract JSON value as a person reads it in a diff.

    Given the contract field, choices read as their labels (`Active`, not `ACTIVE`) and a nested
    object's parts as the registry names them; `masked`, its masked values as their masks.
    """
    spec = contract.FIELDS.get(name) if name else None
    if masked and name:
        value = contract.masked_value(name, value)
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_choice_label(spec.choices if spec else None, item) for item in value)
    if isinstance(value, dict):
        parts = {part.key: part for part in spec.parts} if spec else {}
        return "; ".join(
            f"{parts[key].label if key in parts else key.replace('_', ' ')}: "
            f"{_choice_label(parts[key].choices if key in parts else None, item)}"
            for key, item in value.items()
            if item
        )
    return _choice_label(spec.choices if spec else None, value)


def _choice_label(choices: Any, value: Any) -> str:
    if choices is not None:
        try:
            return str(choices(value).label)
        except ValueError:
            pass  # a value the choices no longer have: shown as stored
    return str(value)


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    """A fragment and a full page share a URL: caches (and the back button) must tell them apart."""
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@dataclass
class QueryProblem:
    """An advanced query the parser refused, with where: shown as a caret under the text."""

    message: str
    position: int
    text: str

    @property
    def before(self) -> str:
        return self.text[: self.position]

    @property
    def pointer(self) -> str:
        return " " * self.position + "^"


@dataclass
class ListState:
    filterset: UserFilter
    q: str = ""
    mode: str = "simple"
    sort: str = DEFAULT_SORT
    term: selectors.SearchTerm | None = None
    problem: QueryProblem | None = None
    query_ordering: list[str] = field(default_factory=list)
    queryset: QuerySet[User] | None = None

    @property
    def is_valid(self) -> bool:
        return self.problem is None and self.filterset.form.is_valid()

    @property
    def keyset_pages(self) -> bool:
        """Whether Next / Previous may continue from a row (`selectors.keyset_page`): every
        column of the ordering is NOT NULL. An advanced query's `orderby` may name any field."""
        if self.query_ordering and self.sort == DEFAULT_SORT:
            return False
        return self.sort.lstrip("-") not in NULLABLE_SORTS

    @property
    def ordering(self) -> list[str]:
        """The explicit sort (a column header) wins over an `orderby` in an advanced query."""
        if self.query_ordering and self.sort == DEFAULT_SORT:
            return [*self.query_ordering, "-pk"]
        descending = self.sort.startswith("-")
        columns = SORTS[self.sort.lstrip("-")]
        prefix = "-" if descending else ""
        return [f"{prefix}{column}" for column in columns] + [f"{prefix}pk"]

    def querystring(self, **overrides: Any) -> str:
        """The URL query for this state, changed by `overrides` (None removes a key)."""
        params = self.params()
        for key, value in overrides.items():
            if value is None:
                params.pop(key, None)
            else:
                params.setlist(key, [str(value)])
        return params.urlencode()

    def params(self) -> QueryDict:
        """The known, non-empty parameters in a fixed order: one canonical URL per view."""
        params = QueryDict(mutable=True)
        data = self.filterset.data
        for key in state_keys(self.filterset):
            values = [value for value in data.getlist(key) if value != ""]
            if key == "mode" and (values != ["advanced"] or not self.q):
                continue  # the default mode, or a mode without a search, says nothing
            if values:
                params.setlist(key, values)
        if self.sort != DEFAULT_SORT:
            params["sort"] = self.sort
        return params


def state_keys(filterset: UserFilter) -> list[str]:
    """URL keys that describe the set of users: search, mode and every filter's inputs.

    Unknown parameters are dropped, so a URL built from the state never carries junk along.
    """
    keys = list(STATE_PARAMS)
    for name, form_field in filterset.form.fields.items():
        suffixes = getattr(form_field.widget, "suffixes", None)
        if suffixes:  # a range widget: created_after, created_before
            keys.extend(f"{name}_{suffix}" for suffix in suffixes)
        else:
            keys.append(name)
    return keys


def _advanced(text: str) -> tuple[Q | None, list[str], QueryProblem | None, bool]:
    """Parse an advanced query: (condition, ordering, problem, whether it asks about deleted)."""
    try:
        condition, ordering = query.parse(text)
    except query.QueryError as exc:
        position = max(0, min(int(exc.position), len(text)))
        return None, [], QueryProblem(exc.message, position, text), False
    return condition, list(ordering), None, "deleted" in query.referenced_fields(condition)


def _param_label(key: str, filterset: UserFilter) -> str:
    """What a person calls the URL parameter `key`: the search, a filter by its label."""
    if key == "q":
        return "The search"
    fields = filterset.form.fields
    # A range filter's inputs are `<name>_<suffix>` (created_after, created_before).
    name = key if key in fields else key.rpartition("_")[0]
    if name in fields:
        return f"The filter “{fields[name].label}”"
    return f"The parameter “{key.replace(NUL, '␀')}”"


def nul_problem(params: QueryDict, filterset: UserFilter) -> QueryProblem | None:
    """A NUL character anywhere in the URL's parameters (a name or a value), as a problem.

    PostgreSQL refuses NUL in text, so a NUL reaching a query is a 500 (and, in a streamed
    export, a truncated file); SQLite takes it silently. Refusing it here, for every parameter,
    covers the search box, the advanced query, each filter and the sort in one place, for the
    list, the board, the export and the list a bulk action re-renders. The NUL is drawn as ␀
    under the message, with the caret at it.
    """
    found = validators.first_nul(params)
    if found is None:
        return None
    key, value = found
    shown = value[:PROBLEM_TEXT_MAX].replace(NUL, "␀")
    return QueryProblem(
        f"{_param_label(key, filterset)} contains a NUL character (\\x00), which "
        "no search or filter can hold; remove it.",
        min(value.index(NUL), len(shown)),
        shown,
    )


def list_state(params: QueryDict, actor: User | None = None) -> ListState:
    """Read filters, search and sort from the URL and build the (unevaluated) queryset.

    `actor` is who `assignee=me` means. Nothing of a URL holding a NUL character reaches the
    database (`nul_problem`).
    """
    mode = params.get("mode", "simple")
    if mode not in SEARCH_MODES:
        mode = "simple"
    sort = params.get("sort", DEFAULT_SORT)
    if sort.lstrip("-") not in SORTS:
        sort = DEFAULT_SORT
    q = params.get("q", "").strip()[:1000]
    filterset = UserFilter(params, queryset=selectors.user_list_queryset(include_deleted=True))
    filterset.actor = actor
    state = ListState(filterset=filterset, q=q, mode=mode, sort=sort)
    state.problem = nul_problem(params, filterset)
    if state.problem is not None or not filterset.form.is_valid():
        state.queryset = filterset.queryset.none()
        return state
    condition = None
    if q and mode == "advanced":
        condition, state.query_ordering, state.problem, asks_deleted = _advanced(q)
        # `deleted eq true` in the query is an explicit request for deleted users.
        filterset.deleted_from_query = asks_deleted
        if state.problem is not None:
            state.queryset = filterset.queryset.none()
            return state
    qs = filterset.qs
    if condition is not None:
        qs = qs.filter(condition)
    elif q and mode == "simple":
        # A national phone number is read in the residency country filtered on, if any.
        region = filterset.form.cleaned_data.get("residency_country") or None
        qs, state.term = selectors.search_users(qs, q, region=region)
    state.queryset = qs
    return state


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("users:user-list")
