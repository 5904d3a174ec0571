"""The query language of the contract: text → a Django `Q` and an ordering.

One language for the API's `query=` / `orderby=` parameters and the console's advanced search::

    email eq 'jane*' and status in ['ACTIVE', 'INACTIVE']
    last_name eq '*doe*' or (phone eq '\\+32470*' and deleted eq false)
    creation_datetime in ['20240101' to '20250101'] orderby last_name desc, first_name

- Comparisons `field op value` with `eq lt le gt ge`; `lt le gt ge` only for numbers and dates.
- `*` in a text value is a wildcard: `'jane*'` starts with, `'*@example.com'` ends with,
  `'*doe*'` contains (case-insensitive); `\\*` is a literal star, `\\'` a quote, `\\+` a plus.
- `field in [v1, v2]` is any of; `field in [a to b]` a range (`[`/`]` inclusive, `{`/`}`
  exclusive, as in Lucene). Dates are `20240101` or `2024-01-01`; a date compared with a
  datetime field means that whole day in the console's time zone.
- `and` binds tighter than `or`; parentheses group. Keywords are case-insensitive.
- `+` outside a quoted value is a space, as in a URL query string; inside quotes a value keeps
  its `+` (the URL decoder has already turned URL pluses into spaces, hence `\\+`).

Errors are `QueryError(message, position)` with the 0-based offset of the offending character.
Nothing here knows about requests: callers turn a `QueryError` into a 422 or a form error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from users import contract
from users.contract import Kind
from users.models import FeatureFlagGrant

__all__ = [
    "FIELDS",
    "SORTABLE_FIELDS",
    "QueryError",
    "parse",
    "parse_orderby",
    "parse_query",
    "referenced_fields",
]


class QueryError(ValueError):
    """A query that cannot be read. `position` is the 0-based offset in the query text."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at position {self.position})"


# --- tokens ------------------------------------------------------------------------------------

WORD, STRING, PUNCT, EOF = "word", "string", "punct", "eof"
_PUNCT = "()[]{},"
_QUOTES = "'\""
_WILDCARD = "*"


@dataclass
class Token:
    kind: str
    text: str  # the value (strings unescaped), or the punctuation character
    position: int
    # A value split on its unescaped `*`: one part means no wildcard.
    parts: list[str] = field(default_factory=list)

    @property
    def lower(self) -> str:
        return self.text.lower() if self.kind == WORD else ""

    def describe(self) -> str:
        if self.kind == EOF:
            return "the end of the query"
        if self.kind == STRING:
            return f"'{self.text}'"
        return repr(self.text)


# Bounds that keep a hostile query from exhausting the parser or the database's expression depth.
MAX_LENGTH = 4000
MAX_CONDITIONS = 200
MAX_DEPTH = 20


def _tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise QueryError(f"The query is longer than {MAX_LENGTH} characters.", MAX_LENGTH)
    if "\x00" in text:
        raise QueryError("The query contains a NUL character.", text.index("\x00"))
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace() or char == "+":
            i += 1
        elif char in _PUNCT:
            tokens.append(Token(PUNCT, char, i))
            i += 1
        elif char in _QUOTES:
            start, quote = i, char
            i += 1
            parts, current, literal = [], [], []
            while True:
                if i >= n:
                    raise QueryError(
                        f"The value that starts here has no closing {quote}.",
                        start,
                    )
                char = text[i]
                if char == "\\" and i + 1 < n:
                    # \+ \* \' \" \\ : the next character as it is.
                    current.append(text[i + 1])
                    literal.append(text[i + 1])
                    i += 2
                elif char == quote:
                    i += 1
                    break
                elif char == _WILDCARD:
                    parts.append("".join(current))
                    current = []
                    literal.append(char)
                    i += 1
                else:
                    current.append(char)
                    literal.append(char)
                    i += 1
            parts.append("".join(current))
            tokens.append(Token(STRING, "".join(literal), start, parts))
        else:
            start = i
            while i < n and not (text[i].isspace() or text[i] in _PUNCT + _QUOTES + "+"):
                i += 1
            word = text[start:i]
            tokens.append(Token(WORD, word, start, word.split(_WILDCARD)))
    tokens.append(Token(EOF, "", len(text)))
    return tokens


# --- fields ------------------------------------------------------------------------------------

ORDERED_OPERATORS = ("lt", "le", "gt", "ge")
OPERATORS = ("eq", *ORDERED_OPERATORS)
_OP_LOOKUP = {"lt": "lt", "le": "lte", "gt": "gt", "ge": "gte"}


@dataclass(frozen=True)
class FieldSpec:
    """How one queryable contract field maps onto the database.

    kind: `text` (wildcards), `choice`, `int`, `date`, `datetime`, `bool`, `flags`.
    """

    column: str
    kind: str
    # Lookup for `eq` on text without wildcards: iexact where case carries no meaning.
    exact: str = "exact"
    nullable: bool = False
    choices: tuple[str, ...] = ()
    normalise: Callable[[str], str] | None = None
    sortable: bool = True
    # Wildcards ignore case, except on values the field normalises to one case anyway.
    ci: bool = True


def _compact_upper(value: str) -> str:
    return re.sub(r"\s+", "", value).upper()


def _phone(value: str) -> str:
    # A `+` sent unescaped in a URL arrives as a space: a leading space before digits was one.
    stripped = re.sub(r"[\s().-]+", "", value)
    if value[:1].isspace() and stripped[:1].isdigit():
        stripped = "+" + stripped
    return stripped


def _spec(name: str, kind: Kind, *, nullable: bool, sortable: bool, choices: Any) -> FieldSpec:
    """How the query reads a contract field of this kind (`users.contract`)."""
    match kind:
        case Kind.ID:
            return FieldSpec(name, "text", normalise=str.upper, ci=False, sortable=sortable)
        case Kind.COUNTRY:
            return FieldSpec(name, "text", normalise=str.upper, ci=False, sortable=sortable)
        case Kind.NAME | Kind.EMAIL | Kind.LANGUAGE:
            # Names, emails (unique whatever their case) and tags are found whatever the case.
            return FieldSpec(name, "text", exact="iexact", nullable=nullable, sortable=sortable)
        case Kind.PHONE:
            return FieldSpec(
                name, "text", nullable=nullable, normalise=_phone, ci=False, sortable=sortable
            )
        case Kind.TEXT:
            return FieldSpec(name, "text", nullable=nullable, sortable=sortable)
        case Kind.CHOICE:
            return FieldSpec(name, "choice", choices=tuple(choices.values), sortable=sortable)
        case Kind.FLAGS:
            return FieldSpec(name, "flags", choices=tuple(choices.values), sortable=False)
        case Kind.INT | Kind.DATE | Kind.DATETIME | Kind.BOOL:
            return FieldSpec(name, kind.value, nullable=nullable, sortable=sortable)
    raise ValueError(f"The query language cannot read {name} ({kind}).")


def _fields() -> dict[str, FieldSpec]:
    fields: dict[str, FieldSpec] = {}
    for entry in contract.FIELDS.values():
        if entry.queryable:
            fields[entry.name] = _spec(
                entry.column or entry.name,
                entry.kind,
                nullable=entry.nullable,
                sortable=entry.sortable,
                choices=entry.choices,
            )
        for part in entry.parts:
            if part.queryable:
                # An account number: compared as stored, compact and upper case.
                fields[part.key] = FieldSpec(
                    part.column, "text", normalise=_compact_upper, ci=False
                )
    return fields


# The queryable fields, from the contract's registry, and the reason code of the move into the
# current status (issue 14.3; denormalised on the row, not a contract field): upper case, as
# the codes are.
EXTRA_FIELDS: dict[str, FieldSpec] = {
    "status_reason_code": FieldSpec("status_reason_code", "text", normalise=str.upper, ci=False),
}
FIELDS: dict[str, FieldSpec] = {**_fields(), **EXTRA_FIELDS}
SORTABLE_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.sortable)
_KEYWORDS = {"and", "or", "in", "to", "orderby", *OPERATORS}


# --- values ------------------------------------------------------------------------------------


def _no_wildcard(token: Token, name: str) -> None:
    if len(token.parts) > 1:
        raise QueryError(f"Wildcards (*) only work on text fields, not on {name}.", token.position)


def _is_null(token: Token) -> bool:
    return token.kind == WORD and token.lower == "null"


def _parse_date(token: Token, name: str) -> dt.date:
    _no_wildcard(token, name)
    raw = token.text.strip()
    if re.fullmatch(r"\d{8}|\d{4}-\d{2}-\d{2}", raw):
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            # Far years overflow time zone arithmetic and mean nothing for these records.
            if 1000 <= day.year <= 9998:
                return day
    raise QueryError(
        f"{token.describe()} is not a date for {name}: write 20240131 or 2024-01-31.",
        token.position,
    )


def _parse_datetime_bound(token: Token, name: str) -> tuple[dt.datetime, dt.datetime | None]:
    """(start, end): a date is the whole day [start, end); a full timestamp has no end."""
    raw = token.text.strip()
    if re.fullmatch(r"\d{8}|\d{4}-\d{2}-\d{2}", raw):
        day = _parse_date(token, name)
        zone = timezone.get_current_timezone()
        start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
        return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    _no_wildcard(token, name)
    try:
        moment = dt.datetime.fromisoformat(raw.replace(" ", "T", 1) if " " in raw else raw)
    except ValueError:
        raise QueryError(
            f"{token.describe()} is not a date or time for {name}: write 20240131, "
            "2024-01-31 or 2024-01-31T09:30:00Z.",
            token.position,
        ) from None
    if not 1000 <= moment.year <= 9998:
        raise QueryError(f"{token.describe()} is out of range for {name}.", token.position)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, None


def _parse_int(token: Token, name: str) -> int:
    _no_wildcard(token, name)
    raw = token.text.strip()
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise QueryError(f"{token.describe()} is not a whole number for {name}.", token.position)
    return int(raw)


def _parse_bool(token: Token, name: str) -> bool:
    raw = token.text.strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise QueryError(f"{token.describe()} is not true or false for {name}.", token.position)


def _parse_choice(token: Token, name: str, choices: tuple[str, ...]) -> str:
    _no_wildcard(token, name)
    raw = token.text.strip().upper()
    if raw not in choices:
        raise QueryError(
            f"{token.describe()} is not a {name} value; known: {', '.join(choices)}.",
            token.position,
        )
    return raw


# --- comparisons -------------------------------------------------------------------------------


def _text_q(spec: FieldSpec, token: Token) -> Q:
    column = spec.column
    i = "i" if spec.ci else ""
    parts = [spec.normalise(part) if spec.normalise else part for part in token.parts]
    if len(parts) == 1:
        value = parts[0]
        if value == "":
            empty = Q(**{column: ""})
            return empty | Q(**{f"{column}__isnull": True}) if spec.nullable else empty
        return Q(**{f"{column}__{spec.exact}": value})
    if not any(parts):  # only stars: any value at all
        return Q(**{f"{column}__isnull": False}) & ~Q(**{column: ""})
    inner = parts[1:-1]
    if not any(inner):
        first, last = parts[0], parts[-1]
        if first and last:
            return Q(**{f"{column}__{i}startswith": first, f"{column}__{i}endswith": last})
        if first:
            return Q(**{f"{column}__{i}startswith": first})
        if last:
            return Q(**{f"{column}__{i}endswith": last})
    if len(parts) == 3 and not parts[0] and not parts[2]:
        return Q(**{f"{column}__{i}contains": parts[1]})
    # Stars in the middle: an anchored pattern with every literal piece escaped.
    pattern = "^" + ".*".join(re.escape(part) for part in parts) + "$"
    return Q(**{f"{column}__{i}regex": pattern})


def _flags_q(spec: FieldSpec, token: Token, name: str) -> Q:
    if token.text.strip() == "" or _is_null(token):
        return ~Q(Exists(FeatureFlagGrant.objects.filter(user=OuterRef("pk"))))
    flag = _parse_choice(token, name, spec.choices)
    # A correlated EXISTS, not a join: a user is one row however many flags match.
    return Q(Exists(FeatureFlagGrant.objects.filter(user=OuterRef("pk"), flag=flag)))


def _compare(name: str, spec: FieldSpec, op: str, op_token: Token, token: Token) -> Q:
    """`name op value` as a Q."""
    if op in ORDERED_OPERATORS and spec.kind not in ("int", "date", "datetime"):
        raise QueryError(
            f"{op} compares numbers and dates; {name} only takes eq and in.", op_token.position
        )
    column = spec.column
    if _is_null(token) or (token.kind == STRING and token.text == "" and spec.kind != "text"):
        if op != "eq":
            raise QueryError(f"{op} needs a value, not null.", token.position)
        if spec.kind == "flags":
            return _flags_q(spec, token, name)
        if spec.kind == "text":
            return _text_q(spec, Token(STRING, "", token.position, [""]))
        if not spec.nullable:
            raise QueryError(f"{name} is never empty.", token.position)
        return Q(**{f"{column}__isnull": True})
    if spec.kind == "text":
        return _text_q(spec, token)
    if spec.kind == "choice":
        return Q(**{column: _parse_choice(token, name, spec.choices)})
    if spec.kind == "flags":
        return _flags_q(spec, token, name)
    if spec.kind == "bool":
        return Q(**{column: _parse_bool(token, name)})
    if spec.kind == "int":
        value = _parse_int(token, name)
        return Q(**{column: value} if op == "eq" else {f"{column}__{_OP_LOOKUP[op]}": value})
    if spec.kind == "date":
        day = _parse_date(token, name)
        return Q(**{column: day} if op == "eq" else {f"{column}__{_OP_LOOKUP[op]}": day})
    # datetime: a date is a whole day, so eq is a range and le/gt move to the day's end.
    start, end = _parse_datetime_bound(token, name)
    if end is None:
        return Q(**{column: start} if op == "eq" else {f"{column}__{_OP_LOOKUP[op]}": start})
    return {
        "eq": Q(**{f"{column}__gte": start, f"{column}__lt": end}),
        "lt": Q(**{f"{column}__lt": start}),
        "le": Q(**{f"{column}__lt": end}),
        "gt": Q(**{f"{column}__gte": end}),
        "ge": Q(**{f"{column}__gte": start}),
    }[op]


def _range(name: str, spec: FieldSpec, low: Token, high: Token, lo_incl: bool, hi_incl: bool) -> Q:
    if spec.kind not in ("int", "date", "datetime"):
        raise QueryError(f"A range needs a number or date field; {name} is not one.", low.position)
    q = _compare(name, spec, "ge" if lo_incl else "gt", low, low)
    return q & _compare(name, spec, "le" if hi_incl else "lt", high, high)


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.conditions = 0

    def count(self, token: Token, n: int = 1) -> None:
        self.conditions += n
        if self.conditions > MAX_CONDITIONS:
            raise QueryError(
                f"The query has more than {MAX_CONDITIONS} conditions; narrow it down.",
                token.position,
            )

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != EOF:
            self.index += 1
        return token

    def at_word(self, *words: str) -> bool:
        return self.token.kind == WORD and self.token.lower in words

    def at_punct(self, chars: str) -> bool:
        return self.token.kind == PUNCT and self.token.text in chars

    def expect_punct(self, chars: str, what: str) -> Token:
        if not self.at_punct(chars):
            raise QueryError(
                f"Expected {what}, found {self.token.describe()}.", self.token.position
            )
        return self.advance()

    # filter := or_expr
    def parse_filter(self) -> Q:
        if self.token.kind == EOF or self.at_word("orderby"):
            return Q()
        return self.parse_or()

    def parse_or(self) -> Q:
        q = self.parse_and()
        while self.at_word("or"):
            self.advance()
            q = q | self.parse_and()
        return q

    def parse_and(self) -> Q:
        q = self.parse_primary()
        while self.at_word("and"):
            self.advance()
            q = q & self.parse_primary()
        return q

    def parse_primary(self) -> Q:
        if self.at_punct("("):
            opening = self.advance()
            if self.at_punct(")"):
                raise QueryError("Empty parentheses: put a condition inside.", opening.position)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(
                    f"Parentheses nest deeper than {MAX_DEPTH} levels.", opening.position
                )
            q = self.parse_or()
            self.depth -= 1
            if not self.at_punct(")"):
                raise QueryError(
                    f"Expected ) to close the ( at position {opening.position}, "
                    f"found {self.token.describe()}.",
                    self.token.position,
                )
            self.advance()
            return q
        return self.parse_comparison()

    def field_name(self, *, sortable: bool = False) -> tuple[str, FieldSpec, Token]:
        token = self.token
        if token.kind != WORD or token.lower in _KEYWORDS:
            raise QueryError(
                f"Expected a field name, found {token.describe()}.",
                token.position,
            )
        name = token.text.lower()
        spec = FIELDS.get(name)
        known = SORTABLE_FIELDS if sortable else tuple(FIELDS)
        if spec is None or name not in known:
            what = "cannot sort by" if spec is not None else "unknown field"
            raise QueryError(
                f"{what.capitalize()} {token.text!r}; fields: {', '.join(known)}.",
                token.position,
            )
        self.advance()
        return name, spec, token

    def value(self, name: str) -> Token:
        token = self.token
        if token.kind in (STRING, WORD) and not (token.kind == WORD and token.lower in _KEYWORDS):
            return self.advance()
        raise QueryError(
            f"Expected a value for {name}, found {token.describe()}.",
            token.position,
        )

    def parse_comparison(self) -> Q:
        name, spec, field_token = self.field_name()
        self.count(field_token)
        op_token = self.token
        op = op_token.lower
        if op == "in":
            self.advance()
            return self.parse_in(name, spec)
        if op not in OPERATORS:
            raise QueryError(
                f"Expected an operator after {name} (eq, lt, le, gt, ge or in), "
                f"found {op_token.describe()}.",
                op_token.position,
            )
        self.advance()
        return _compare(name, spec, op, op_token, self.value(name))

    def parse_in(self, name: str, spec: FieldSpec) -> Q:
        if not self.at_punct("[{("):
            raise QueryError(
                f"Expected a list after in, like ['A', 'B'] or ['20240101' to '20250101'], "
                f"found {self.token.describe()}.",
                self.token.position,
            )
        opening = self.advance()
        if self.at_punct("]})"):
            raise QueryError(
                "An empty list matches nothing: give at least one value.", opening.position
            )
        first = self.value(name)
        if self.at_word("to"):
            if opening.text == "(":
                raise QueryError("A range is written [low to high].", opening.position)
            self.advance()
            high = self.value(name)
            closing = self.expect_punct("]}", "] or } to close the range")
            return _range(name, spec, first, high, opening.text == "[", closing.text == "]")
        if opening.text == "{":
            raise QueryError(
                "{ only opens a range ({low to high}); a list is [a, b].", opening.position
            )
        values = [first]
        while self.at_punct(","):
            self.count(self.advance())
            values.append(self.value(name))
        closing_char = ")" if opening.text == "(" else "]"
        self.expect_punct(closing_char, f", or {closing_char} in the list")
        if spec.kind == "flags" and not any(_is_null(t) or not t.text.strip() for t in values):
            flags = sorted({_parse_choice(t, name, spec.choices) for t in values})
            return Q(Exists(FeatureFlagGrant.objects.filter(user=OuterRef("pk"), flag__in=flags)))
        q = Q()
        for token in values:
            q |= _compare(name, spec, "eq", token, token)
        return q

    # orderby := 'orderby' key (',' key)* ; key := field ['asc' | 'desc']
    def parse_orderby(self, *, keyword: bool) -> list[str]:
        if keyword:
            if not self.at_word("orderby"):
                raise QueryError(
                    f"Expected and, or or orderby, found {self.token.describe()}.",
                    self.token.position,
                )
            self.advance()
        elif self.at_word("orderby"):
            self.advance()
        ordering: list[str] = []
        seen: dict[str, int] = {}
        while True:
            name, spec, token = self.field_name(sortable=True)
            if name in seen:
                raise QueryError(f"{name} is already in the sort order.", token.position)
            seen[name] = token.position
            descending = False
            if self.at_word("asc", "desc"):
                descending = self.advance().lower == "desc"
            ordering.append(("-" if descending else "") + spec.column)
            if not self.at_punct(","):
                break
            self.advance()
        return ordering

    def expect_end(self, hint: str) -> None:
        if self.token.kind != EOF:
            raise QueryError(
                f"Expected {hint}, found {self.token.describe()}.", self.token.position
            )


def parse(text: str) -> tuple[Q, list[str]]:
    """A filter with an optional `orderby` suffix, as typed in the console's search box."""
    parser = _Parser(text or "")
    q = parser.parse_filter()
    ordering: list[str] = []
    if parser.token.kind != EOF:
        ordering = parser.parse_orderby(keyword=True)
        parser.expect_end("and, or or a comma and another sort key")
    return q, ordering


def parse_query(text: str) -> Q:
    """The filter language alone (the API's `query=`); "" is everything."""
    parser = _Parser(text or "")
    q = parser.parse_filter()
    if parser.at_word("orderby"):
        raise QueryError(
            "Sorting goes in the orderby parameter, not in the query.", parser.token.position
        )
    parser.expect_end("and or or")
    return q


def parse_orderby(text: str) -> list[str]:
    """`last_name desc, first_name` → `["-last_name", "first_name"]`; "" is []."""
    parser = _Parser(text or "")
    if parser.token.kind == EOF:
        return []
    ordering = parser.parse_orderby(keyword=False)
    parser.expect_end("a comma and another sort key")
    return ordering


def referenced_fields(q: Q) -> set[str]:
    """The model columns a parsed filter looks at, e.g. to tell whether it asks for `deleted`."""
    names: set[str] = set()
    for child in q.children:
        if isinstance(child, Q):
            names |= referenced_fields(child)
        elif isinstance(child, tuple):
            names.add(child[0].split("__", 1)[0])
        elif isinstance(child, Exists):
            names.add("feature_flags")
    return names
