"""The query language (users/query.py): parsing, matching real rows, and errors with positions."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import make_user
from users import services
from users.models import FeatureFlag, Status, User
from users.query import QueryError, parse, parse_orderby, parse_query, referenced_fields


def ids(text: str) -> set[str]:
    return set(User.objects.filter(parse_query(text)).values_list("pk", flat=True))


@pytest.fixture
def people(db):
    jane = make_user(
        first_name="Jane",
        last_name="Doe",
        email="jane.doe@example.com",
        phone="+32470111111",
        date_of_birth="1990-05-17",
    )
    janet = make_user(
        first_name="Janet",
        last_name="Van Doeselaar",
        email="Janet@Bank.example",
        phone="+32470222222",
        date_of_birth="1985-01-01",
    )
    john = make_user(
        first_name="John",
        last_name="Smith",
        email="john.smith@example.com",
        phone="+31612345678",
        feature_flags=[FeatureFlag.CONSOLE, FeatureFlag.ROBO_ADVISOR],
    )
    services.user_change_status(user=john, status=Status.WAITING_FOR_SIGNATURE, actor=None)
    services.user_change_status(user=john, status=Status.ACTIVE, actor=None)
    return {"jane": jane, "janet": janet, "john": john}


def test_empty_query_is_everything():
    assert parse_query("") == parse_query("   ")
    assert not parse_query("").children
    assert parse("") == (parse_query(""), [])
    assert parse_orderby("") == []


def test_prefix_wildcard_as_in_the_seed(people):
    # The seed's `?query=email+eq+'jane*'` arrives decoded, pluses as spaces.
    assert ids("email eq 'jane*'") == {people["jane"].pk, people["janet"].pk}
    # A query pasted with its URL pluses still reads.
    assert ids("email+eq+'jane*'") == {people["jane"].pk, people["janet"].pk}


def test_suffix_and_contains_wildcards(people):
    assert ids("email eq '*@example.com'") == {people["jane"].pk, people["john"].pk}
    assert ids("last_name eq '*doe*'") == {people["jane"].pk, people["janet"].pk}
    assert ids("last_name eq 'van*laar'") == {people["janet"].pk}
    assert ids("first_name eq '*'") == {u.pk for u in people.values()}


def test_exact_email_is_case_insensitive_and_a_star_can_be_escaped(people):
    assert ids("email eq 'JANET@bank.example'") == {people["janet"].pk}
    assert ids("email eq 'jane'") == set()
    assert ids(r"email eq 'jane\*'") == set()


def test_escaped_plus_is_a_literal_plus(people):
    assert ids(r"phone eq '\+32470111111'") == {people["jane"].pk}
    assert ids(r"phone eq '\+32470*'") == {people["jane"].pk, people["janet"].pk}
    # Unescaped, the URL decoder made the + a space; the phone field reads it back as one.
    assert ids("phone eq ' 31612345678'") == {people["john"].pk}


def test_quotes_and_backslashes_inside_values(db):
    obrien = make_user(last_name="O'Brien")
    assert ids(r"last_name eq 'O\'Brien'") == {obrien.pk}
    assert ids('last_name eq "o\'brien"') == {obrien.pk}


def test_date_comparisons_and_ranges(people):
    assert ids("date_of_birth lt '1990-01-01'") == {people["janet"].pk}
    assert ids("date_of_birth ge '19900517'") == {people["jane"].pk}
    assert ids("date_of_birth eq '1990-05-17'") == {people["jane"].pk}
    assert ids("date_of_birth in ['19800101' to '19891231']") == {people["janet"].pk}
    assert ids("date_of_birth in {'19850101' to '19891231']") == set()
    assert ids("date_of_birth eq null") == {people["john"].pk}


def test_datetime_ranges_use_whole_days(people):
    jane = people["jane"]
    created = timezone.localtime(jane.creation_datetime).date()
    day = created.strftime("%Y%m%d")
    next_day = (created + dt.timedelta(days=1)).isoformat()
    everyone = {u.pk for u in people.values()}
    assert ids(f"creation_datetime eq '{day}'") == everyone
    assert ids(f"creation_datetime in ['{day}' to '{day}']") == everyone
    assert ids(f"creation_datetime le '{day}'") == everyone
    assert ids(f"creation_datetime lt '{day}'") == set()
    assert ids(f"creation_datetime ge '{next_day}'") == set()
    assert ids(f"creation_datetime in ['20000101' to '{next_day}'}}") == everyone
    stamp = jane.creation_datetime.isoformat()
    assert ids(f"creation_datetime ge '{stamp}' and id eq '{jane.pk}'") == {jane.pk}


def test_numbers_booleans_and_lists(people):
    john = people["john"]
    assert ids("version gt 1") == {john.pk}
    assert ids("version in [1 to 2]") == {people["jane"].pk, people["janet"].pk}
    assert ids("status in ['ACTIVE','INACTIVE']") == {john.pk}
    assert ids("status in ('active')") == {john.pk}
    services.user_delete(user=people["jane"], actor=None)
    assert ids("deleted eq true") == {people["jane"].pk}
    assert ids("deleted eq false") == {people["janet"].pk, john.pk}


def test_feature_flags_filter_without_duplicate_rows(people):
    john = people["john"]
    query = parse_query("feature_flags in ['CONSOLE', 'ROBO_ADVISOR']")
    assert list(User.objects.filter(query).values_list("pk", flat=True)) == [john.pk]
    assert ids("feature_flags eq 'robo_advisor'") == {john.pk}
    assert ids("feature_flags eq 'STORYTELLER'") == set()
    assert ids("feature_flags eq null") == {people["jane"].pk, people["janet"].pk}


def test_and_binds_tighter_than_or_and_parentheses_group(people):
    jane, janet, john = people["jane"], people["janet"], people["john"]
    text = "first_name eq 'John' or first_name eq 'jane*' and email eq '*@example.com'"
    assert ids(text) == {john.pk, jane.pk}
    grouped = "(first_name eq 'John' or first_name eq 'jane*') and email eq '*@example.com'"
    assert ids(grouped) == {john.pk, jane.pk}
    assert ids("(first_name eq 'John' or first_name eq 'Janet') and status eq 'ACTIVE'") == {
        john.pk
    }
    assert janet.pk in ids("FIRST_NAME EQ 'janet' OR first_name eq 'nobody'")


def test_orderby_with_several_keys(people):
    assert parse_orderby("last_name desc, first_name") == ["-last_name", "first_name"]
    assert parse_orderby("orderby creation_datetime asc") == ["creation_datetime"]
    q, ordering = parse("email eq '*@example.com' orderby last_name desc, first_name")
    rows = list(User.objects.filter(q).order_by(*ordering).values_list("last_name", flat=True))
    assert rows == ["Smith", "Doe"]
    assert parse("orderby version desc") == (parse_query(""), ["-version"])


def test_referenced_fields():
    assert referenced_fields(parse_query("deleted eq true or email eq 'a*'")) == {
        "deleted",
        "email",
    }
    assert referenced_fields(parse_query("feature_flags eq 'CONSOLE'")) == {"feature_flags"}


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("nickname eq 'x'", 0, "Unknown field 'nickname'"),
        ("email eq 'jane", 9, "no closing '"),
        ("email like 'jane'", 6, "Expected an operator"),
        ("first_name lt 'b'", 11, "lt compares numbers and dates"),
        ("status eq 'DONE'", 10, "not a status value"),
        ("creation_datetime ge '20241301'", 21, "not a date"),
        ("date_of_birth eq 'yesterday'", 17, "not a date"),
        ("version eq 'three'", 11, "not a whole number"),
        ("deleted eq maybe", 11, "not true or false"),
        ("email eq 'a' and", 16, "Expected a field name"),
        ("email eq 'a' email eq 'b'", 13, "Expected and or or"),
        ("(email eq 'a'", 13, "Expected ) to close"),
        ("status in ['ACTIVE' 'INACTIVE']", 20, "Expected , or ]"),
        ("status in []", 10, "empty list"),
        ("status in ['A' to 'B']", 11, "range needs a number or date"),
        ("version eq '1*'", 11, "Wildcards"),
        ("email eq 'a' orderby last_name", 13, "orderby parameter"),
        ("()", 0, "Empty parentheses"),
    ],
)
def test_errors_name_the_problem_and_position(text, position, words):
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert info.value.position == position
    assert words in info.value.message
    assert f"position {position}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("last_name sideways", 10, "Expected a comma"),
        ("feature_flags", 0, "Cannot sort by 'feature_flags'"),
        ("last_name, last_name desc", 11, "already in the sort order"),
        ("", None, None),
    ],
)
def test_orderby_errors(text, position, words):
    if position is None:
        assert parse_orderby(text) == []
        return
    with pytest.raises(QueryError) as info:
        parse_orderby(text)
    assert info.value.position == position
    assert words in info.value.message


def test_hostile_queries_are_refused_not_crashed():
    with pytest.raises(QueryError, match="deeper"):
        parse_query("(" * 50 + "email eq 'a'" + ")" * 50)
    with pytest.raises(QueryError, match="conditions"):
        parse_query(" or ".join(["id eq 1"] * 300))
    with pytest.raises(QueryError, match="longer"):
        parse_query("email eq '" + "a" * 5000 + "'")
    with pytest.raises(QueryError, match="NUL"):
        parse_query("email eq 'a\x00'")
    with pytest.raises(QueryError, match="out of range"):
        parse_query("creation_datetime ge '0001-01-01T00:00:00'")
    with pytest.raises(QueryError, match="not a date"):
        parse_query("creation_datetime ge '99991231'")
