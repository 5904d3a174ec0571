"""Reads of users for lists and searches: the list's queryset, the search box, counts, pages,
and what an actor may see.

Nothing here writes or looks at a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Value

from users import contract, policy, validators
from users.models import FeatureFlagGrant, Folded, User, is_user_id
from users.selectors.people import ASSIGNEE_NAME_COLUMNS

# The columns the list and board show; the rest of the row is never loaded for them.
LIST_FIELDS = contract.listed_columns()
# The assignee's name on each row (issue 14.1).
ASSIGNEE_NAME_FIELDS = ("assignee", *ASSIGNEE_NAME_COLUMNS)
# Counting a million rows exactly on every keystroke is wasted work: past this we say "1,000+".
# A capped count still visits `cap` matching rows; at 1M users 10,000 of them cost a search or a
# filter combination 150-400 ms, 1,000 cost 15-40 ms (EXPLAIN ANALYZE, issue 4).
COUNT_CAP = 1_000
# From this offset on, a page first picks its primary keys from an index alone, then its rows.
DEFERRED_JOIN_FROM = 500


def user_list_queryset(*, include_deleted: bool = False) -> QuerySet[User]:
    """Users with the columns lists need and their current flags, deleted ones hidden.

    The deleted filter widens this (`include_deleted=True`) and narrows it itself.
    """
    # The assignee's name comes in the same query (a join on the primary key), not per row.
    qs = (
        User.objects.select_related("assignee")
        .only(*LIST_FIELDS, *ASSIGNEE_NAME_FIELDS)
        .prefetch_related("flag_grants")
    )
    return qs if include_deleted else qs.filter(deleted=False)


@dataclass(frozen=True)
class SearchTerm:
    """What a search box text was recognised as, for the query and for telling the user."""

    kind: str  # id, email, email_part, domain, phone, iban, text
    value: str
    # Further readings of the same text (a national phone read in several regions).
    alternatives: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return {
            "id": "user id",
            "email": "email",
            "email_part": "part of an email",
            "domain": "email domain",
            "phone": "phone",
            "iban": "IBAN",
            "text": "name or external id",
        }[self.kind]

    @property
    def values(self) -> tuple[str, ...]:
        return (self.value, *self.alternatives)

    @property
    def shown(self) -> str:
        if len(self.alternatives) <= 2:
            return " or ".join(self.values)
        return f"{' or '.join(self.values[:2])} or {len(self.values) - 2} other readings"


_phone_like_re = re.compile(r"^[0-9+ ()./-]{7,}$")
_iban_like_re = re.compile(r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]{8,}$")
# `example.net` or `@example.net`: labels of letters, digits and inner hyphens, a letter TLD.
_domain_re = re.compile(
    r"^@?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$", re.IGNORECASE
)


def _valid_e164(candidate: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def default_phone_region() -> str:
    """The region a national number is read in when no residency country is filtered on."""
    return (getattr(settings, "DEFAULT_PHONE_REGION", "") or "").strip().upper()


def _as_phone(text: str, region: str | None = None) -> tuple[str, ...]:
    """The E.164 numbers `text` can be, best reading first; () when it is no phone.

    International input (`+32…`, `0032…`) is read as it is. Other input is read as a
    national number in `region` (the residency country filtered on), else in the console's
    `DEFAULT_PHONE_REGION`; when there is neither, or that reading is no valid number, in
    every region: the search then finds the numbers stored under any of those readings (the
    regions of the data), through the phone's unique index. Digits without their "+" are also
    tried as international, the way staff copy them from other systems.
    """
    if not _phone_like_re.match(text.strip()) or sum(c.isdigit() for c in text) < 7:
        return ()
    digits = re.sub(r"[^0-9+]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+"):
        number = _valid_e164(digits, None)
        return (number,) if number else ()
    found: list[str] = []
    region = (region or default_phone_region()) or None
    national = _valid_e164(digits, region) if region else None
    if national:
        found.append(national)
    if (international := _valid_e164("+" + digits, None)) and international not in found:
        found.append(international)
    if national is None:
        for other in sorted(phonenumbers.SUPPORTED_REGIONS):
            number = _valid_e164(digits, other)
            if number and number not in found:
                found.append(number)
    return tuple(found)


def _as_iban(text: str) -> str | None:
    if not _iban_like_re.match(text.strip()):
        return None
    try:
        return validators.iban(text).compact
    except ValidationError:
        return None


def classify_search(text: str, *, region: str | None = None) -> SearchTerm | None:
    """Recognise a user id, an email, a phone in any format, an IBAN, else a name/external id.

    `region` is the country a national phone number is read in (the residency country
    filtered on), `DEFAULT_PHONE_REGION` when None.
    """
    text = " ".join(text.split())
    if not text:
        return None
    if is_user_id(text.upper()):
        return SearchTerm("id", text.upper())
    if (domain := _domain_re.match(text)) is not None:
        return SearchTerm("domain", domain.group(1).lower())
    if "@" in text and " " not in text:
        try:
            validate_email(text)
        except ValidationError:
            return SearchTerm("email_part", text)
        return SearchTerm("email", text)
    if (iban := _as_iban(text)) is not None:
        return SearchTerm("iban", iban)
    if phones := _as_phone(text, region):
        return SearchTerm("phone", phones[0], phones[1:])
    return SearchTerm("text", text)


def search_users(
    qs: QuerySet[User], text: str, *, region: str | None = None
) -> tuple[QuerySet[User], SearchTerm | None]:
    """Narrow `qs` to what the search box text means; also return what it was taken for.

    Exact keys (id, email, phone, IBAN) use their unique or indexed columns; a domain
    (`example.net`, `@example.net`) finds the emails at it. Anything else is an external id
    (whatever its case) or a name: every word must appear in the first or the last name,
    accents and case ignored, so "jane doe", "doe jane", "van der berg" and "chloe" (Chloé)
    all work.
    """
    term = classify_search(text, region=region)
    if term is None:
        return qs, None
    match term.kind:
        case "id":
            return qs.filter(pk=term.value), term
        case "email":
            return qs.filter(email__iexact=term.value), term
        case "email_part":
            return qs.filter(email__icontains=term.value), term
        case "domain":
            # UPPER(email) LIKE '%@EXAMPLE.NET': the email trigram index serves it.
            at_domain = Q(email__iendswith=f"@{term.value}")
            return qs.filter(at_domain | _external_id_is(text)), term
        case "phone":
            phone = Q(phone__in=term.values) if term.alternatives else Q(phone=term.value)
            if not re.sub(r"[^0-9+]", "", text).startswith(("+", "00")):
                # Digits alone may as well be an external id (both are unique indexes).
                phone |= _external_id_is(text)
            return qs.filter(phone), term
        case "iban":
            return qs.filter(bank_account_number=term.value), term
    # users_fold(name) LIKE '%' || users_fold('word') || '%': accents and case ignored, and
    # the trigram indexes on users_fold(first_name) / users_fold(last_name) (migration 0007)
    # serve it; the pattern is a constant the planner folds before choosing them.
    qs = qs.alias(folded_first_name=Folded("first_name"), folded_last_name=Folded("last_name"))
    name = Q()
    for word in term.value.split():
        folded = Folded(Value(word))
        name &= Q(folded_first_name__contains=folded) | Q(folded_last_name__contains=folded)
    return qs.filter(name | _external_id_is(term.value)), term


def _external_id_is(text: str) -> Q:
    """The external id, whatever its case: UPPER(external_id) = UPPER(...), indexed (0007)."""
    return Q(external_id__iexact=" ".join(text.split()))


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


def flags_of(user_ids: list[str]) -> list[tuple[str, str]]:
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


def _through_exists(relation: str, actor: User) -> Exists:
    through = getattr(User, relation).through
    return Exists(through.objects.filter(from_user=OuterRef("pk"), to_user=actor))


def visible_users(actor: User) -> QuerySet[User]:
    """What `actor` may read (the queryset form of `can_view`): everyone with view_user, else
    the users whose readable_by / modifiable_by lists name them (EXISTS: no duplicate rows)."""
    users = User.objects.all()
    if policy.sees_everyone(actor):
        return users
    return users.filter(
        Q(_through_exists("readable_by", actor)) | Q(_through_exists("modifiable_by", actor))
    )
