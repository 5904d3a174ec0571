"""The user list: filters, one smart search box, sort, pages, bulk actions and CSV export.

`users/user_list.html` is the page; its `results` partial (id `results`) is what the search box,
the filters, the column headers and the page links replace through HTMX. The URL always carries
the whole state (`hx-push-url`), so a view of the list can be bookmarked and shared.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from users import contract, policy, selectors, services
from users.models import AccessEvent, FeatureFlag, Status, User, is_user_id
from users.rendering import FlagBadges, Row, url_for_each
from users.selectors.assignment import assignable_people
from users.selectors.change_requests import users_with_open_requests
from users.selectors.reason_codes import active_reason_codes
from users.services.access import access_record
from users.views import saved_views
from users.views.common import (
    SORTS,
    HtmxHttpRequest,
    ListState,
    htmx_target,
    list_state,
    require,
    vary_on_htmx,
)

logger = logging.getLogger(__name__)

TEMPLATE = "users/user_list.html"
PAGE_SIZE = 50
# A bulk action runs one audited service call per user; more than a page at once is a mistake.
BULK_LIMIT = 200
# The contract's exported fields; credentials and session data are never user data.
EXPORT_COLUMNS = contract.export_columns()


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


def sort_links(state: ListState) -> dict[str, dict[str, str]]:
    """For each sortable column: the URL that sorts by it (toggling direction) and its state."""
    links = {}
    for key in SORTS:
        current = state.sort.lstrip("-") == key
        descending = state.sort.startswith("-")
        # A first click sorts names and text ascending, dates newest first.
        first = f"-{key}" if key in ("created", "status_changed") else key
        target = (key if descending else f"-{key}") if current else first
        links[key] = {
            "query": state.querystring(sort=target, page=None),
            "class": ("is-desc" if descending else "is-asc") if current else "",
            "aria": ("descending" if descending else "ascending") if current else "none",
        }
    return links


def _rows(users: list[User], selected: set[str]) -> list[Row]:
    detail_url = url_for_each("users:user-detail")
    badges = FlagBadges(f"{TEMPLATE}#flag-badges")
    tz = timezone.get_current_timezone()
    pending = users_with_open_requests(user.pk for user in users)
    rows = []
    for user in users:
        created = user.creation_datetime.astimezone(tz)
        rows.append(
            Row(
                # Ids are [0-9A-Z] and the URL is made of one; the other text is escaped by
                # the template.
                pk=SafeString(user.pk),
                display_name=user.display_name,
                detail_url=SafeString(detail_url(user.pk)),
                email=user.email or "",
                phone=user.phone or "",
                status=user.status,
                status_label=Status(user.status).label,
                flags_html=badges(tuple(grant.flag for grant in user.flag_grants.all())),
                country=user.residency_country,
                created=SafeString(f"{created:%Y-%m-%d}"),
                created_title=SafeString(f"{created:%Y-%m-%d %H:%M:%S}"),
                deleted=user.deleted,
                selected=user.pk in selected,
                pending=user.pk in pending,
                assignee=user.assignee.display_name if user.assignee else "",
            )
        )
    return rows


def _cursor(params: QueryDict, state: ListState) -> tuple[str, str] | None:
    """("after" | "before", user id) of a Next / Previous link, when this sort can use it."""
    for direction in ("after", "before"):
        pk = params.get(direction, "")
        if pk:
            return (direction, pk) if is_user_id(pk) and state.keyset_pages else None
    return None


def _page_rows(
    state: ListState, cursor: tuple[str, str] | None, page: int
) -> tuple[list[User], bool]:
    """The page's users and whether a next page exists.

    Next / Previous links carry the row they continue from (`after` / `before`): the page is
    then found from that row through the sort's index, as fast at row 100,000 as on page 1.
    A typed page number, a sort on a nullable column or a cursor whose user is gone read the
    page by its offset instead; `page` always says which page this is.
    """
    if cursor is not None:
        direction, pk = cursor
        rows = selectors.keyset_page(
            state.queryset, state.ordering, pk, PAGE_SIZE + 1, backwards=direction == "before"
        )
        if rows is not None:
            if direction == "after":
                return rows, len(rows) > PAGE_SIZE
            # Read backwards: the extra row, if any, is the one before this page.
            return rows[-PAGE_SIZE:], True
    offset = (page - 1) * PAGE_SIZE
    rows = selectors.page_of_users(state.queryset, state.ordering, offset, PAGE_SIZE + 1)
    return rows, len(rows) > PAGE_SIZE


def list_context(request: HtmxHttpRequest, params: QueryDict, **extra: Any) -> dict[str, Any]:
    actor = request.user
    state = list_state(params, actor)
    page = _page_number(params.get("page"))
    offset = (page - 1) * PAGE_SIZE
    cursor = _cursor(params, state)
    rows: list[User] = []
    has_next = False
    count, capped = 0, False
    if state.is_valid:
        rows, has_next = _page_rows(state, cursor, page)
    rows = rows[:PAGE_SIZE]
    if state.is_valid:
        count, capped = selectors.count_for_page(
            state.queryset, offset=offset, shown=len(rows), has_next=has_next
        )
    keyset = state.keyset_pages
    prev_query = next_query = None
    if page > 1:
        before = {"before": rows[0].pk} if keyset and rows and page > 2 else {}
        prev_query = state.querystring(page=page - 1 if page > 2 else None, **before)
    if has_next:
        after = {"after": rows[-1].pk} if keyset else {}
        next_query = state.querystring(page=page + 1, **after)
    selected = extra.pop("selected", set())
    rows = _rows(rows, selected)
    last_page = None if capped else max(1, -(-count // PAGE_SIZE))
    filterset = state.filterset
    return {
        "state": state,
        "filter": filterset,
        "form": filterset.form,
        "users": rows,
        "count": count,
        "count_capped": capped,
        "count_display": f"{count:,}",
        "selected": selected,
        "page": page,
        "last_page": last_page,
        "first_row": offset + 1 if rows else 0,
        "last_row": offset + len(rows),
        "prev_query": prev_query,
        "next_query": next_query,
        # This page's own URL keeps the row it continues from, so a reload shows the same rows.
        "page_query": state.querystring(
            page=page if page > 1 else None, **(dict([cursor]) if cursor and page > 1 else {})
        ),
        "query": state.querystring(),
        "sort_links": sort_links(state),
        # The bulk move's targets: the selected users' statuses differ, so each move is
        # judged on its own when made.
        "statuses": [(status.value, status.label) for status in policy.move_targets(actor)],
        "flags": FeatureFlag.choices,
        "can_export": policy.may_export(actor),
        "can_move": policy.may_change_status(actor),
        "reason_codes": active_reason_codes() if policy.may_change_status(actor) else [],
        "can_flag": policy.may_manage_flags(actor),
        "can_create": policy.may_create(actor),
        # Called by the sidebar only: the results region alone costs no query for it.
        "assignee_people": assignable_people,
        "bulk_limit": BULK_LIMIT,
        **extra,
    }


@require_GET
@login_required
def user_list(request: HtmxHttpRequest) -> HttpResponse:
    require(policy.sees_everyone(request.user))
    context = list_context(request, request.GET)
    if htmx_target(request) != "results":
        context["saved_views"] = saved_views.block(request, "list", context["query"])
        return vary_on_htmx(render(request, TEMPLATE, context))
    response = render(request, f"{TEMPLATE}#results", context)
    # The filter form sends every field, empty or not; the address bar gets the clean state.
    query = context["page_query"]
    return vary_on_htmx(push_url(response, f"{request.path}?{query}" if query else request.path))


# --- bulk actions ------------------------------------------------------------------------------


def _for_each(
    users: list[User], act: Callable[[User], str | None]
) -> tuple[list[User], list[tuple[User, str]]]:
    """Run `act` on each user on its own: (done, failed with why).

    `act` returns why it leaves a user alone, or None once done; a refusal by the policy or
    a service fails that user only, never the others.
    """
    done: list[User] = []
    failed: list[tuple[User, str]] = []
    for user in users:
        try:
            skipped = act(user)
        except PermissionDenied as exc:
            skipped = str(exc)
        except ValidationError as exc:
            skipped = " ".join(exc.messages)
        if skipped:
            failed.append((user, skipped))
        else:
            done.append(user)
    return done, failed


def _bulk_status(
    request: HtmxHttpRequest, users: list[User], status: str, reason: str, reason_code: str
) -> tuple[list[User], list[tuple[User, str]]]:
    def move(user: User) -> None:
        policy.check_move(request.user, user.status, status)
        services.user_change_status(
            user=user, status=status, actor=request.user, reason=reason, reason_code=reason_code
        )

    return _for_each(users, move)


def _bulk_flag(
    request: HtmxHttpRequest, users: list[User], flag: str, enabled: bool
) -> tuple[list[User], list[tuple[User, str]], bool]:
    """(done, failed, proposed): `proposed` when the switches wait for a second person's
    approval (four-eyes: granting CONSOLE) instead of applying."""
    proposed = False

    def switch(user: User) -> str | None:
        nonlocal proposed
        if (flag in user.flag_names()) == enabled:
            return f"Already {'has' if enabled else 'does not have'} {flag}."
        saved = services.user_set_flag(user=user, flag=flag, enabled=enabled, actor=request.user)
        proposed = proposed or bool(services.proposed_changes(saved))
        return None

    done, failed = _for_each(users, switch)
    return done, failed, proposed


MOVED_OUT_NAMED = 10  # names listed one by one; the rest are counted


def _moved_out(params: QueryDict, done: list[User], action: str, actor: User) -> list[str]:
    """What to say about changed rows the list, with its filters, no longer shows.

    A row never disappears without a word: "Moved out of this view: <name> is now <status>".
    """
    state = list_state(params, actor)
    if not done or not state.is_valid or state.queryset is None:
        return []
    still = set(
        state.queryset.filter(pk__in=[user.pk for user in done]).values_list("pk", flat=True)
    )
    gone = [user for user in done if user.pk not in still]
    lines = []
    for user in gone[:MOVED_OUT_NAMED]:
        user.refresh_from_db(fields=["status"])
        now = (
            f"is now {user.get_status_display()}"
            if action == "status"
            else "no longer matches the filters"
        )
        lines.append(f"Moved out of this view: {user.display_name} {now}.")
    if len(gone) > MOVED_OUT_NAMED:
        lines.append(f"Moved out of this view: {len(gone) - MOVED_OUT_NAMED} more.")
    return lines


@require_POST
@login_required
def user_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Apply one action to the selected users, one audited service call per user.

    Each user succeeds or fails on its own (a refused move does not undo the others) and the
    report lists every failure with its reason.
    """
    action = request.POST.get("action", "")
    if action == "status":
        require(policy.may_change_status(request.user))
    elif action in ("flag_grant", "flag_revoke"):
        require(policy.may_manage_flags(request.user))
    else:
        require(policy.sees_everyone(request.user))
    params = QueryDict(request.POST.get("query", ""))
    ids = list(dict.fromkeys(request.POST.getlist("ids")))
    # Only well-formed ids reach the database: a crafted one (a NUL byte, which PostgreSQL
    # refuses in text) is named back, never looked up.
    not_an_id = next((pk for pk in ids if not is_user_id(pk)), None)
    problem = None
    if action not in ("status", "flag_grant", "flag_revoke"):
        problem = "Choose an action."
    elif not ids:
        problem = "Select at least one user."
    elif len(ids) > BULK_LIMIT:
        problem = f"Select at most {BULK_LIMIT} users at once."
    elif not_an_id is not None:
        problem = f"{not_an_id[:40]!r} is not a user id (U + 26 characters); nothing was changed."
    elif action == "status" and request.POST.get("status") not in Status.values:
        problem = "Choose the status to move the users to."
    elif action != "status" and request.POST.get("flag") not in FeatureFlag.values:
        problem = "Choose the feature flag."
    report: dict[str, Any] = {}
    if problem is None:
        found = {user.pk: user for user in User.objects.filter(pk__in=ids, deleted=False)}
        users = [found[pk] for pk in ids if pk in found]
        missing = [pk for pk in ids if pk not in found]
        if action == "status":
            status = request.POST["status"]
            done, failed = _bulk_status(
                request,
                users,
                status,
                request.POST.get("reason", "").strip(),
                request.POST.get("reason_code", ""),
            )
            verb = f"moved to {Status(status).label}"
        else:
            flag = request.POST["flag"]
            enabled = action == "flag_grant"
            done, failed, proposed = _bulk_flag(request, users, flag, enabled)
            verb = f"{'granted' if enabled else 'revoked'} {FeatureFlag(flag).label}"
            if proposed:
                verb = (
                    f"proposed for {FeatureFlag(flag).label} (waiting for approval by a "
                    "second person)"
                )
        report = {
            "verb": verb,
            "done": done,
            "moved_out": _moved_out(params, done, action, request.user),
            "failed": failed,
            "missing": missing,
            "not_changed": len(failed) + len(missing),
        }
    if not request.htmx:
        if problem:
            messages.error(request, problem)
        else:
            if report["done"]:
                messages.success(request, f"{len(report['done'])} user(s) {report['verb']}.")
            for line in report["moved_out"]:
                messages.info(request, line)
            for user, message in report["failed"]:
                messages.error(request, f"{user.display_name} ({user.pk}): {message}")
            for pk in report["missing"]:
                messages.error(request, f"{pk}: not found (deleted or mistyped).")
        return redirect(f"{reverse('users:user-list')}?{params.urlencode()}")
    context = list_context(
        request,
        params,
        bulk_problem=problem,
        bulk_report=report,
        bulk_form={
            "status": request.POST.get("status", "") if problem or report.get("failed") else "",
            "reason": request.POST.get("reason", "") if problem or report.get("failed") else "",
            "reason_code": request.POST.get("reason_code", "")
            if problem or report.get("failed")
            else "",
            "flag": request.POST.get("flag", ""),
        },
        selected=set(ids) if problem else {u.pk for u, _ in report.get("failed", [])},
    )
    return vary_on_htmx(render(request, f"{TEMPLATE}#results", context))


# --- export ------------------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell starting with one of these as a formula (selectors has the rule).
_FORMULA_FIRST = frozenset("".join(selectors.EXPORT_FORMULA_START))
# The COPY path yields about this much at a time: few, large writes, and flat memory.
EXPORT_COPY_CHUNK_BYTES = 256 * 1024


def _text_cell(text: str) -> str:
    # isascii: "+٣٢" is no number a spreadsheet would keep, and SQL's [0-9] agrees.
    if text and text[0] in _FORMULA_FIRST and not (text[1:].isascii() and text[1:].isdigit()):
        return "'" + text
    return text


def _cell(value: Any) -> str:
    """A value as export text; `selectors.export_copy_sql` must give the same text in SQL."""
    # The common types first, by exact type: an export is a million rows of 20 cells.
    kind = type(value)
    if kind is str:
        return _text_cell(value)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        # Always with microseconds (isoformat drops ".000000"), in UTC: one fixed-width form.
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)  # "-5": a number, never a formula
    if isinstance(value, list):
        return _text_cell(" ".join(str(item) for item in value))
    return _text_cell(str(value))


def _python_export_rows(
    state: ListState, counted: list[int] | None = None, masked: Collection[str] = ()
) -> Iterator[str]:
    counted = [0] if counted is None else counted
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    fields = [c for c in EXPORT_COLUMNS if c != "feature_flags"]
    flags_at = EXPORT_COLUMNS.index("feature_flags")
    masks = [
        (at, contract.MASKED_COLUMNS[column].masked)
        for at, column in enumerate(fields)
        if column in masked
    ]
    # Plain tuples in keyset chunks, one yielded string per chunk: model instances and one
    # write per row made the export ~30x slower than the 50,000 rows/s it needs at 1M users.
    for chunk in selectors.iter_export_chunks(state.queryset, fields):
        counted[0] += len(chunk)
        lines = []
        for values, flags in chunk:
            cells = [_cell(value) for value in values]
            for at, mask in masks:
                cells[at] = _cell(mask(values[at]))
            cells.insert(flags_at, _cell(flags))
            lines.append(writer.writerow(cells))
        yield "".join(lines)


def _copy_export_rows(
    state: ListState, counted: list[int] | None = None, masked: Collection[str] = ()
) -> Iterator[str | bytes]:
    counted = [0] if counted is None else counted
    yield csv.writer(_Echo()).writerow(EXPORT_COLUMNS)
    # COPY ends a record with "\n", csv.writer (and RFC 4180) with "\r\n": each record comes
    # alone and ends with its "\n", so it is swapped here; a "\n" inside a quoted cell stays.
    records: list[memoryview] = []
    size = 0
    for record in selectors.iter_export_records(state.queryset, EXPORT_COLUMNS, masked=masked):
        records.append(record[:-1])
        counted[0] += 1
        size += len(record)
        if size >= EXPORT_COPY_CHUNK_BYTES:
            records.append(b"")
            yield b"\r\n".join(records)
            records, size = [], 0
    if records:
        records.append(b"")
        yield b"\r\n".join(records)


def _export_rows(
    state: ListState, counted: list[int] | None = None, masked: Collection[str] = ()
) -> Iterator[str | bytes]:
    """The CSV of `state`'s users, header first; the same bytes from either path. `counted[0]`
    grows by the users written; the `masked` columns hold their masks."""
    counted = [0] if counted is None else counted
    if selectors.export_in_database(state.queryset):
        return _copy_export_rows(state, counted, masked)
    return _python_export_rows(state, counted, masked)


def _logged_export(
    request: HtmxHttpRequest,
    state: ListState,
    rows: Iterator[str | bytes],
    counted: list[int],
    masked: Sequence[str],
) -> Iterator[str | bytes]:
    """`rows`, then one access-log row with the filter, the columns and the users written
    (the count is only known at the end of the stream; an export cut short, by the client
    or an error, is logged with what was sent and `complete: false`)."""
    complete = False
    try:
        yield from rows
        complete = True
    finally:
        access_record(
            kind=AccessEvent.Kind.EXPORTED,
            actor=request.user,
            request=request,
            query=state.querystring(),
            columns=EXPORT_COLUMNS,
            row_count=counted[0],
            detail={"complete": complete}
            | ({"masked": list(masked)} if masked else {})
            | ({"variant": "excel"} if request.GET.get("variant") == "excel" else {}),
        )


@require_GET
@login_required
def user_export(request: HtmxHttpRequest) -> HttpResponse:
    """The users of the current filter as CSV, streamed (any size); `variant=excel` puts a
    UTF-8 byte order mark first, the rest of the bytes the same.

    PostgreSQL writes the CSV itself (one COPY); other databases go through Python in keyset
    chunks. Both write the same cells (`_cell`).
    """
    require(policy.may_export(request.user))
    state = list_state(request.GET, request.user)
    if not state.is_valid:
        messages.error(request, "Fix the search or the filters before exporting.")
        return redirect(f"{reverse('users:user-list')}?{state.querystring()}")
    logger.info(
        "user export by %s: %s", request.user.pk, state.querystring() or "all users (no filter)"
    )
    counted = [0]
    masked = policy.masked_columns(request.user, EXPORT_COLUMNS)
    rows = _export_rows(state, counted, masked)
    excel = request.GET.get("variant") == "excel"
    if excel:
        # Excel reads a CSV without a byte order mark in the machine's legacy code page.
        rows = itertools.chain(["\ufeff"], rows)
    filename = f"users-{timezone.localtime():%Y%m%d-%H%M}{'-excel' if excel else ''}.csv"
    response = StreamingHttpResponse(
        _logged_export(request, state, rows, counted, masked),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
