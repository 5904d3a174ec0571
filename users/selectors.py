"""Reads for the console's list, board and export.

Every query the list and board screens run is here, so that indexes and pagination can be tuned
in one place without touching views. Nothing here writes or looks at a request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.core.exceptions import EmptyResultSet, ValidationError
from django.core.validators import validate_email
from django.db import connection, connections
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Count, Exists, F, Func, OuterRef, Q, QuerySet, TextField

from users import validators
from users.models import FeatureFlagGrant, Status, User, is_user_id

# The columns the list and board show; the rest of the row is never loaded for them.
LIST_FIELDS = (
    "id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "language",
    "residency_country",
    "status",
    "status_changed_at",
    "creation_datetime",
    "version",
    "deleted",
)
# Counting a million rows exactly on every keystroke is wasted work: past this we say "1,000+".
# A capped count still visits `cap` matching rows; at 1M users 10,000 of them cost a search or a
# filter combination 150-400 ms, 1,000 cost 15-40 ms (EXPLAIN ANALYZE, issue 4).
COUNT_CAP = 1_000
EXPORT_CHUNK = 5_000
# Text cells a spreadsheet would run as a formula (CSV injection) start with one of these. The
# export prefixes such a cell with "'", unless the rest of it is ASCII digits: an E.164 phone
# ("+32470123456") or a number ("-5") stays as it is. `users.views.list._cell` applies the rule
# in Python, `_export_cell_sql` in SQL; tests/test_export.py holds them to the same bytes.
EXPORT_FORMULA_START = ("=", "@", "\t", "\r", "-", "+")
# From this offset on, a page first picks its primary keys from an index alone, then its rows.
DEFERRED_JOIN_FROM = 500


def user_list_queryset(*, include_deleted: bool = False) -> QuerySet[User]:
    """Users with the columns lists need and their current flags, deleted ones hidden.

    The deleted filter widens this (`include_deleted=True`) and narrows it itself.
    """
    qs = User.objects.only(*LIST_FIELDS).prefetch_related("flag_grants")
    return qs if include_deleted else qs.filter(deleted=False)


@dataclass(frozen=True)
class SearchTerm:
    """What a search box text was recognised as, for the query and for telling the user."""

    kind: str  # id, email, email_part, phone, iban, text
    value: str

    @property
    def label(self) -> str:
        return {
            "id": "user id",
            "email": "email",
            "email_part": "part of an email",
            "phone": "phone",
            "iban": "IBAN",
            "text": "name or external id",
        }[self.kind]


_phone_like_re = re.compile(r"^[0-9+ ()./-]{7,}$")
_iban_like_re = re.compile(r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]{8,}$")


def _as_phone(text: str) -> str | None:
    if not _phone_like_re.match(text.strip()) or sum(c.isdigit() for c in text) < 7:
        return None
    digits = re.sub(r"[^0-9+]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    # No default region: a national number is ambiguous. A number typed without its "+" is
    # tried as international, the way staff often copy them from other systems.
    candidates = [digits] if digits.startswith("+") else [digits, "+" + digits]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _as_iban(text: str) -> str | None:
    if not _iban_like_re.match(text.strip()):
        return None
    try:
        return validators.iban(text).compact
    except ValidationError:
        return None


def classify_search(text: str) -> SearchTerm | None:
    """Recognise a user id, an email, a phone in any format, an IBAN, else a name/external id."""
    text = " ".join(text.split())
    if not text:
        return None
    if is_user_id(text.upper()):
        return SearchTerm("id", text.upper())
    if "@" in text and " " not in text:
        try:
            validate_email(text)
        except ValidationError:
            return SearchTerm("email_part", text)
        return SearchTerm("email", text)
    if (iban := _as_iban(text)) is not None:
        return SearchTerm("iban", iban)
    if (phone := _as_phone(text)) is not None:
        return SearchTerm("phone", phone)
    return SearchTerm("text", text)


def search_users(qs: QuerySet[User], text: str) -> tuple[QuerySet[User], SearchTerm | None]:
    """Narrow `qs` to what the search box text means; also return what it was taken for.

    Exact keys (id, email, phone, IBAN) use their unique or indexed columns. Anything else is an
    external id (exact) or a name: every word must appear in the first or the last name, so
    "jane doe", "doe jane" and "van der berg" all work.
    """
    term = classify_search(text)
    if term is None:
        return qs, None
    match term.kind:
        case "id":
            return qs.filter(pk=term.value), term
        case "email":
            return qs.filter(email__iexact=term.value), term
        case "email_part":
            return qs.filter(email__icontains=term.value), term
        case "phone":
            return qs.filter(phone=term.value), term
        case "iban":
            return qs.filter(bank_account_number=term.value), term
    name = Q()
    for word in term.value.split():
        name &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
    return qs.filter(name | Q(external_id=term.value)), term


def capped_count(qs: QuerySet[User], cap: int | None = None) -> tuple[int, bool]:
    """The number of rows, counting at most `cap + 1` of them: (count, is_capped).

    `qs[:cap + 1].count()` is a COUNT over a LIMITed subquery, so a broad filter over a million
    users stops early instead of scanning them all.
    """
    cap = COUNT_CAP if cap is None else cap
    count = qs.order_by()[: cap + 1].count()
    return (cap, True) if count > cap else (count, False)


def count_for_page(
    qs: QuerySet[User], *, offset: int, shown: int, has_next: bool, cap: int | None = None
) -> tuple[int, bool]:
    """`capped_count(qs)`, without its query when the page just read already tells it.

    A page with no next page is the last one: the count is `offset + shown` (exact searches,
    short lists). A page that ends past the cap means "cap+" (deep pages). Only a full page
    before the cap, or a page past the end, has to count.
    """
    cap = COUNT_CAP if cap is None else cap
    if not has_next and (shown or not offset):
        count = offset + shown
        return (cap, True) if count > cap else (count, False)
    if shown and offset + shown > cap:
        return cap, True
    return capped_count(qs, cap)


def page_of_users(
    qs: QuerySet[User], ordering: Sequence[str], offset: int, limit: int
) -> list[User]:
    """Rows `offset` to `offset + limit` of `qs` sorted by `ordering`.

    A deep page is a "deferred join": its primary keys come first (`values_list`), which
    PostgreSQL reads from an index alone (index-only scan of `user_live_created_idx` for the
    default order), then only those rows are loaded. OFFSET still walks the index entries, but
    no longer the 500-byte table rows behind the skipped ones (4x faster at row 100,000).
    """
    ordered = qs.order_by(*ordering)
    if offset < DEFERRED_JOIN_FROM:
        return list(ordered[offset : offset + limit])
    pks = list(ordered.values_list("pk", flat=True)[offset : offset + limit])
    found = {user.pk: user for user in qs.filter(pk__in=pks).order_by()}
    return [found[pk] for pk in pks if pk in found]


def keyset_page(
    qs: QuerySet[User],
    ordering: Sequence[str],
    anchor_pk: str,
    limit: int,
    *,
    backwards: bool = False,
) -> list[User] | None:
    """The `limit` rows of `qs` right after the user `anchor_pk` in `ordering` (or right
    before it, `backwards`), in `ordering`; None when there is no such user.

    What the list's Next and Previous links read: a page found from the row before it, not by
    skipping `offset` rows, costs the same at row 100,000 as on page 1. Every column of
    `ordering` must be NOT NULL (NULLs sort differently on each database) and end with the pk.
    """
    columns = [spec.lstrip("-") for spec in ordering]
    anchor = User.objects.filter(pk=anchor_pk).values(*columns).first()
    if anchor is None:
        return None
    # (c1, c2, ..., pk) strictly after the anchor, built from the last column outwards:
    # c1 > a1 OR (c1 = a1 AND (c2 > a2 OR (c2 = a2 AND ...))), each ">" read per direction.
    after: Q | None = None
    for spec in reversed(ordering):
        column = spec.lstrip("-")
        forward = spec.startswith("-") == backwards  # ascending in the direction we read
        strictly = Q(**{f"{column}__{'gt' if forward else 'lt'}": anchor[column]})
        after = strictly if after is None else strictly | (Q(**{column: anchor[column]}) & after)
    # The same bound on the first column alone is what lets the index scan start at the
    # anchor; the OR above is then only a filter on the rows that tie with it.
    first = ordering[0].lstrip("-")
    forward = ordering[0].startswith("-") == backwards
    bound = Q(**{f"{first}__{'gte' if forward else 'lte'}": anchor[first]})
    read = [_reverse(spec) for spec in ordering] if backwards else list(ordering)
    rows = list(qs.filter(bound & after).order_by(*read)[:limit])
    if backwards:
        rows.reverse()
    return rows


def _reverse(spec: str) -> str:
    return spec[1:] if spec.startswith("-") else f"-{spec}"


def status_counts(qs: QuerySet[User], *, all_live: bool = False) -> dict[str, int]:
    """Users per status for the board's column heads, in one grouped query.

    `all_live=True` says that `qs` is every user not deleted (an unfiltered board). On
    PostgreSQL the counts then come from `users_status_count`, kept up to date by triggers
    (migration 0004): a grouped count over a million rows is a full scan, 0.3-0.9 s here.
    """
    counts = {status: 0 for status in Status.values}
    if all_live and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, n FROM users_status_count WHERE NOT deleted")
            for status, n in cursor.fetchall():
                if status in counts:
                    counts[status] = n
        return counts
    for row in qs.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


# What a board card needs of a user, as plain tuples (no model instances for 125 cards).
CARD_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "version",
    "status_changed_at",
)


@dataclass(frozen=True, slots=True)
class CardRow:
    id: str
    first_name: str
    last_name: str
    email: str | None
    external_id: str | None
    version: int
    status_changed_at: Any
    flags: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return User.display_name_of(self)


def board_columns(qs: QuerySet[User], limits: dict[str, int]) -> dict[str, list[CardRow]]:
    """For each status, the `limits[status]` users who have waited longest in it.

    Two queries whatever the number of columns: one UNION ALL of a LIMITed index scan per
    status (`user_live_status_idx`), then the flags of every card. SQLite cannot order and
    slice inside a compound statement, so there it is one query per column.
    """
    rows_qs = qs.order_by("status_changed_at", "pk").values_list(*CARD_FIELDS, "status")
    parts = [rows_qs.filter(status=status)[:limit] for status, limit in limits.items()]
    if not parts:
        return {}
    if connection.features.supports_slicing_ordering_in_compound:
        # order_by(): the parts keep their own ORDER BY; the outer one would repeat the first's.
        rows = list(parts[0].union(*parts[1:], all=True).order_by())
    else:
        rows = [row for part in parts for row in part]
    flags: dict[str, list[str]] = {}
    for user_id, flag in _flags_of([row[0] for row in rows]):
        flags.setdefault(user_id, []).append(flag)
    columns: dict[str, list[CardRow]] = {status: [] for status in limits}
    for *values, status in rows:
        columns[status].append(CardRow(*values, flags=tuple(flags.get(values[0], ()))))
    # UNION ALL keeps each part's rows together but says nothing of their order.
    for cards in columns.values():
        cards.sort(key=lambda card: (card.status_changed_at, card.id))
    return columns


def iter_export_chunks(
    qs: QuerySet[User], fields: Sequence[str], *, chunk_size: int | None = None
) -> Iterator[list[tuple[tuple[Any, ...], list[str]]]]:
    """`qs` as chunks of (values of `fields`, sorted flag names), in primary-key order.

    The export's path on databases that cannot write the CSV themselves: keyset chunks
    (`WHERE pk > last ORDER BY pk LIMIT n`: flat memory, and no chunk slower than the first,
    unlike OFFSET) of plain tuples, with the flags of a whole chunk in one query.
    """
    size = chunk_size or EXPORT_CHUNK
    rows_qs = qs.order_by("pk").values_list("pk", *fields)
    last_pk: str | None = None
    while True:
        page = rows_qs if last_pk is None else rows_qs.filter(pk__gt=last_pk)
        rows = list(page[:size])
        if not rows:
            return
        flags: dict[str, list[str]] = {}
        for user_id, flag in _flags_of([row[0] for row in rows]):
            flags.setdefault(user_id, []).append(flag)
        yield [(row[1:], flags.get(row[0], [])) for row in rows]
        if len(rows) < size:
            return
        last_pk = rows[-1][0]


def _flags_of(user_ids: list[str]) -> list[tuple[str, str]]:
    """(user id, flag) of these users, in order. On PostgreSQL the ids go as one array
    parameter: building 5,000 `IN (%s, ...)` placeholders cost more than running the query."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT user_id, flag FROM {FeatureFlagGrant._meta.db_table} "
                "WHERE user_id = ANY(%s) ORDER BY user_id, flag",
                [user_ids],
            )
            return cursor.fetchall()
    grants = FeatureFlagGrant.objects.filter(user_id__in=user_ids).order_by("user_id", "flag")
    return list(grants.values_list("user_id", "flag"))


# --- export written by the database (PostgreSQL) -----------------------------------------------
# At a million rows, formatting 20 cells per row in Python capped the export near 20,000 rows/s.
# On PostgreSQL the database writes the CSV itself (`COPY (SELECT ...) TO STDOUT`), each cell
# already in the export's text form, the one `users.views.list._cell` gives on other databases:
#   datetime  2024-01-01T10:00:00.000000+00:00 (UTC, always with microseconds)
#   date      2024-01-01
#   boolean   true / false
#   integer   its digits
#   text      as stored, formula starts neutralised (EXPORT_FORMULA_START)
#   list      items joined by one space (nationalities; the flags, sorted), then as text
#   NULL, "", an empty list: an empty cell


def export_in_database(qs: QuerySet[User]) -> bool:
    """Whether the database writes the export's CSV itself (`iter_export_records`)."""
    return connections[qs.db].vendor == "postgresql"


class _JsonListText(Func):
    """A JSON list as its items joined by spaces, in order; anything but a list as "".

    The contract keeps nationalities a list of country codes; the guard only makes sure an odd
    row cannot abort an export half way through the download.
    """

    template = (
        "array_to_string(ARRAY(SELECT jsonb_array_elements_text(CASE WHEN "
        "jsonb_typeof(%(expressions)s) = 'array' THEN %(expressions)s ELSE '[]' END)), ' ')"
    )
    output_field = TextField()


def _flag_names(quote: Callable[[str], str]) -> Func:
    """The user's flags in byte order (whatever the database's collation), joined by spaces."""
    grants = quote(FeatureFlagGrant._meta.db_table)
    flag = quote(FeatureFlagGrant._meta.get_field("flag").column)
    user = quote(FeatureFlagGrant._meta.get_field("user").column)
    # Correlated, so it costs one index lookup per exported row and a narrow filter stays
    # cheap; a join on the grants grouped by user would aggregate all of them every time.
    return Func(
        F("pk"),
        template=(
            f"(SELECT string_agg(g.{flag}, ' ' ORDER BY g.{flag} COLLATE \"C\") "
            f"FROM {grants} g WHERE g.{user} = %(expressions)s)"
        ),
        output_field=TextField(),
    )


def _sql_char(char: str) -> str:
    return f"'{char}'" if char.isprintable() and char != "'" else f"chr({ord(char)})"


_SQL_FORMULA_START = ", ".join(_sql_char(char) for char in EXPORT_FORMULA_START)
# Cell kinds by model field type; a field of another type fails loudly until it gets a format.
_EXPORT_KINDS = {
    "CharField": "text",
    "DateTimeField": "datetime",
    "DateField": "date",
    "BooleanField": "boolean",
    "IntegerField": "integer",
    "PositiveIntegerField": "integer",
    "JSONField": "list",
}


def _export_cell_sql(kind: str, value: str) -> str:
    """SQL giving the export's text of `value`, a column of this kind.

    `value` appears several times in the result: it must be a column, not a computation.
    """
    match kind:
        case "text":
            # "" as NULL: COPY writes `""` for an empty string, csv.writer nothing.
            return (
                f"CASE WHEN left({value}, 1) IN ({_SQL_FORMULA_START}) "
                f"AND substr({value}, 2) !~ '^[0-9]+$' "
                f"THEN '''' || {value} ELSE NULLIF({value}, '') END"
            )
        case "datetime":
            return f"to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        case "date":
            return f"to_char({value}, 'YYYY-MM-DD')"
        case "boolean":
            return f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' END"
        case "integer":
            return f"{value}::text"
    raise ValueError(f"The export has no format for {kind or 'this kind of'} cells.")


def export_copy_sql(qs: QuerySet[User], columns: Sequence[str]) -> str:
    """The `COPY ... TO STDOUT` writing `columns` of every user of `qs` as CSV, in pk order.

    The rows are `qs` itself (filters, search, EXISTS conditions and all) as the ORM compiles
    it; an outer SELECT turns its columns into the export's cells. `feature_flags` is the
    user's flags, every other column a field of `User`.
    """
    db = connections[qs.db]
    quote = db.ops.quote_name
    inner: dict[str, Any] = {"export_pk": F("pk")}
    cells = []
    for index, column in enumerate(columns):
        alias = f"export_{index}"
        if column == "feature_flags":
            inner[alias], kind = _flag_names(quote), "text"
        else:
            kind = _EXPORT_KINDS.get(User._meta.get_field(column).get_internal_type(), "")
            if kind == "list":
                inner[alias], kind = _JsonListText(F(column)), "text"
            else:
                inner[alias] = F(column)
        cells.append(_export_cell_sql(kind, f"u.{quote(alias)}"))
    rows = qs.order_by("pk").values(**inner)
    select, params = rows.query.get_compiler(using=qs.db).as_sql()
    # OFFSET 0 keeps the inner SELECT as it stands: were the planner to fold it into the
    # outer one, a text cell would run the nationalities subquery once per mention (four).
    sql = (
        f"COPY (SELECT {', '.join(cells)} FROM ({select} OFFSET 0) u "
        f"ORDER BY u.{quote('export_pk')}) TO STDOUT WITH (FORMAT csv)"
    )
    # COPY takes no bound parameters, so psycopg would merge them client side anyway; merged
    # here because psycopg leaves a statement given no parameters unparsed ("%%" stays).
    return db.ops.compose_sql(sql, params)


def iter_export_records(qs: QuerySet[User], columns: Sequence[str]) -> Iterator[memoryview]:
    """Every user of `qs` as one CSV record (`columns`, ending in a line feed), in pk order.

    One COPY statement read record by record as it arrives (libpq hands COPY data over one
    row at a time), so memory stays flat whatever the size. Closing the iterator early
    cancels the COPY and leaves the connection usable.
    """
    db = connections[qs.db]
    try:
        sql = export_copy_sql(qs, columns)
    except EmptyResultSet:  # a condition the ORM knows matches nobody, e.g. pk__in=[]
        return
    with db.cursor() as cursor:
        # `copy()` is psycopg's own: Django's cursor wrapper would neither log nor time it.
        logged = cursor.debug_sql(sql) if isinstance(cursor, CursorDebugWrapper) else nullcontext()
        with logged, db.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            yield from copy


# --- object-level access ---------------------------------------------------------------------
# One rule for the console and the API: a role permission, or being named on the record.


def _listed_in(user: User, relation: str, actor: User) -> bool:
    # Iterates the relation so that a prefetched list costs no query.
    return any(other.pk == actor.pk for other in getattr(user, relation).all())


def can_view(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `readable_by` / `modifiable_by`."""
    return (
        actor.has_perm("users.view_user")
        or _listed_in(user, "readable_by", actor)
        or _listed_in(user, "modifiable_by", actor)
    )


def can_edit(actor: User, user: User) -> bool:
    """Role permission, or object-level access through `modifiable_by`."""
    return actor.has_perm("users.change_user") or _listed_in(user, "modifiable_by", actor)


def _through_exists(relation: str, actor: User) -> Exists:
    through = getattr(User, relation).through
    return Exists(through.objects.filter(from_user=OuterRef("pk"), to_user=actor))


def visible_users(actor: User) -> QuerySet[User]:
    """What `actor` may read (the queryset form of `can_view`): everyone with view_user, else
    the users whose readable_by / modifiable_by lists name them (EXISTS: no duplicate rows)."""
    users = User.objects.all()
    if actor.has_perm("users.view_user"):
        return users
    return users.filter(
        Q(_through_exists("readable_by", actor)) | Q(_through_exists("modifiable_by", actor))
    )
