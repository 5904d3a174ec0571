"""Reads for the CSV export: keyset chunks of tuples, or the COPY PostgreSQL writes itself."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import F, Func, QuerySet, TextField
from django.db.models.fields.json import KT

from users import contract
from users.models import FeatureFlagGrant, User
from users.selectors.users import flags_of

EXPORT_CHUNK = 5_000
# Text cells a spreadsheet would run as a formula (CSV injection) start with one of these. The
# export prefixes such a cell with "'", unless the rest of it is ASCII digits: an E.164 phone
# ("+32470123456") or a number ("-5") stays as it is. `users.views.list._cell` applies the rule
# in Python, `_export_cell_sql` in SQL; tests/test_export.py holds them to the same bytes.
EXPORT_FORMULA_START = ("=", "@", "\t", "\r", "-", "+")
# Columns that are a key of a JSON object (the address): read as text by the database, in the
# same query as the rest of the row (`address ->> 'city'`), never per row in Python.
_JSON_PARTS = contract.export_json_parts()


def _json_part(column: str) -> KT:
    field, key = _JSON_PARTS[column]
    return KT(f"{field}__{key}")


def iter_export_chunks(
    qs: QuerySet[User], fields: Sequence[str], *, chunk_size: int | None = None
) -> Iterator[list[tuple[tuple[Any, ...], list[str]]]]:
    """`qs` as chunks of (values of `fields`, sorted flag names), in primary-key order.

    The export's path on databases that cannot write the CSV themselves: keyset chunks
    (`WHERE pk > last ORDER BY pk LIMIT n`: flat memory, and no chunk slower than the first,
    unlike OFFSET) of plain tuples, with the flags of a whole chunk in one query.
    """
    size = chunk_size or EXPORT_CHUNK
    values = [_json_part(field) if field in _JSON_PARTS else field for field in fields]
    rows_qs = qs.order_by("pk").values_list("pk", *values)
    last_pk: str | None = None
    while True:
        page = rows_qs if last_pk is None else rows_qs.filter(pk__gt=last_pk)
        rows = list(page[:size])
        if not rows:
            return
        flags: dict[str, list[str]] = {}
        for user_id, flag in flags_of([row[0] for row in rows]):
            flags.setdefault(user_id, []).append(flag)
        yield [(row[1:], flags.get(row[0], [])) for row in rows]
        if len(rows) < size:
            return
        last_pk = rows[-1][0]


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


# The masks of `contract.MASKED` in SQL, each giving exactly the text of its Python function
# for a stored value (`{v}`, not NULL nor empty); tests/test_masking.py holds them together.
_MASK_SQL: dict[Callable[[Any], str], str] = {
    contract.mask_account: (
        "CASE WHEN length({v}) > 8 AND {v} ~ '^[A-Za-z]{{2}}' THEN upper(left({v}, 4)) "
        "|| repeat(' ••••', (length({v}) + 3) / 4 - 2) || ' ' "
        "|| upper(substr({v}, ((length({v}) + 3) / 4 - 1) * 4 + 1)) "
        "WHEN length({v}) > 4 THEN '•••• ' || right({v}, 4) ELSE '••••' END"
    ),
    contract.mask_date: "to_char({v}, 'YYYY') || '-••-••'",
    contract.mask_identifier: (
        "CASE WHEN length(btrim({v})) >= 8 THEN '•••• ' || right(btrim({v}), 3) ELSE '••••' END"
    ),
}


def _masked_cell_sql(column: str, value: str) -> str:
    mask = _MASK_SQL[contract.MASKED_COLUMNS[column].mask].format(v=value)
    return f"CASE WHEN {value} IS NULL OR {value}::text = '' THEN NULL ELSE {mask} END"


def export_copy_sql(
    qs: QuerySet[User], columns: Sequence[str], *, masked: Collection[str] = ()
) -> str:
    """The `COPY ... TO STDOUT` writing `columns` of every user of `qs` as CSV, in pk order.

    The rows are `qs` itself (filters, search, EXISTS conditions and all) as the ORM compiles
    it; an outer SELECT turns its columns into the export's cells. `feature_flags` is the
    user's flags, an address column a key of the address, every other column a field of `User`.
    The `masked` columns (of `contract.MASKED_COLUMNS`) hold their masks.
    """
    db = connections[qs.db]
    quote = db.ops.quote_name
    inner: dict[str, Any] = {"export_pk": F("pk")}
    cells = []
    for index, column in enumerate(columns):
        alias = f"export_{index}"
        if column == "feature_flags":
            inner[alias], kind = _flag_names(quote), "text"
        elif column in _JSON_PARTS:
            inner[alias], kind = _json_part(column), "text"
        else:
            kind = _EXPORT_KINDS.get(User._meta.get_field(column).get_internal_type(), "")
            if kind == "list":
                inner[alias], kind = _JsonListText(F(column)), "text"
            else:
                inner[alias] = F(column)
        if column in masked:
            cells.append(_masked_cell_sql(column, f"u.{quote(alias)}"))
        else:
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


def iter_export_records(
    qs: QuerySet[User], columns: Sequence[str], *, masked: Collection[str] = ()
) -> Iterator[memoryview]:
    """Every user of `qs` as one CSV record (`columns`, ending in a line feed), in pk order.

    One COPY statement read record by record as it arrives (libpq hands COPY data over one
    row at a time), so memory stays flat whatever the size. Closing the iterator early
    cancels the COPY and leaves the connection usable.
    """
    db = connections[qs.db]
    try:
        sql = export_copy_sql(qs, columns, masked=masked)
    except EmptyResultSet:  # a condition the ORM knows matches nobody, e.g. pk__in=[]
        return
    with db.cursor() as cursor:
        # `copy()` is psycopg's own: Django's cursor wrapper would neither log nor time it.
        logged = cursor.debug_sql(sql) if isinstance(cursor, CursorDebugWrapper) else nullcontext()
        with logged, db.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            yield from copy
