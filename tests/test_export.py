"""The CSV export's cells, and its two paths: COPY on PostgreSQL, Python elsewhere.

Users here hold what a spreadsheet or a CSV reader trips on: separators, quotes and line
breaks inside cells, formula starts, NULL next to "", non-Latin text, whole-second times. Values
the services would refuse are written straight to the table: an export must survive data that
was imported or edited before today's rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import VALID_IBANS, behind_the_services, make_console_user, make_user
from users import policy, selectors, services
from users.models import FeatureFlag, User
from users.views import list as list_views
from users.views.common import list_state

EXPORT = reverse("users:user-export")
WHOLE_SECOND = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
# 01:59 on 1 July in Brussels is 23:59 on 30 June in UTC, the zone the export writes.
WITH_MICROSECONDS = dt.datetime(2024, 7, 1, 1, 59, 59, 123456, tzinfo=ZoneInfo("Europe/Brussels"))


@pytest.fixture
def tricky(admin_user):
    """Users whose cells exercise every rule of the export format, one deleted."""
    quoted = make_user(
        actor=admin_user,
        first_name='Ann, "Marie"\nsecond line',
        last_name='=HYPERLINK("http://evil.example";"x")',
        email="tricky@example.com",
        phone="+32470123456",
        external_id="-5",
        language="nl-BE",
        residency_country="BE",
        nationalities=["BE", "NL"],
        date_of_birth="1980-02-29",
        counter_account={"bank_account_number": VALID_IBANS[0], "bank_account_number_type": "IBAN"},
        address={
            "line1": "Rue de l'Église 12, bte 3",
            "line2": "=chez Dupont",
            "city": "Liège",
            "postal_code": "4000",
            "country_code": "BE",
        },
        feature_flags=[
            FeatureFlag.STORYTELLER,
            FeatureFlag.ROBO_ADVISOR,
            FeatureFlag.SELF_INVESTOR,
        ],
    )
    User.objects.filter(pk=quoted.pk).update(
        creation_datetime=WHOLE_SECOND, status_changed_at=WITH_MICROSECONDS
    )
    raw = make_user(actor=admin_user, first_name="Raw", last_name="Values", email=None, phone=None)
    with behind_the_services():  # values no service accepts, to test the formula guard
        User.objects.filter(pk=raw.pk).update(
            first_name="\tTab",
            last_name="\rCarriage",
            external_id=None,
            language="+",
            nationalities=["=BE", "NL"],
            bank_account_number="+1234567890",
            bank_account_number_type="ABA",
            bank_id="@SUM(A1)",
            bank_id_type="BIC",
        )
    unicode = make_user(
        actor=admin_user,
        first_name="Zoë 李",
        last_name="+٣٢٤",  # Arabic-Indic digits: not the digits a spreadsheet keeps as a number
        email="-x@example.com",
        nationalities=[],
    )
    gone = make_user(actor=admin_user, first_name="Gone\r\nfor good", last_name="Away, deleted")
    services.user_delete(user=gone, actor=admin_user)
    return {"quoted": quoted, "raw": raw, "unicode": unicode, "gone": gone}


def body_of(response) -> bytes:
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def rows_by_id(body: bytes) -> dict[str, dict[str, str]]:
    rows = csv.DictReader(io.StringIO(body.decode(), newline=""))
    assert tuple(rows.fieldnames or ()) == list_views.EXPORT_COLUMNS
    return {row["id"]: row for row in rows}


def test_export_cells_follow_one_format(admin_client, tricky):
    """The format both paths write, checked on whichever this database uses."""
    body = body_of(admin_client.get(EXPORT, {"deleted": "include"}))
    rows = rows_by_id(body)
    quoted = rows[tricky["quoted"].pk]
    assert quoted["first_name"] == 'Ann, "Marie"\nsecond line'
    assert quoted["last_name"] == '\'=HYPERLINK("http://evil.example";"x")'
    assert quoted["phone"] == "+32470123456"
    assert quoted["external_id"] == "-5"
    assert quoted["nationalities"] == "BE NL"
    assert quoted["date_of_birth"] == "1980-02-29"
    assert quoted["feature_flags"] == "ROBO_ADVISOR SELF_INVESTOR STORYTELLER"
    assert quoted["creation_datetime"] == "2024-01-02T03:04:05.000000+00:00"
    assert quoted["status_changed_at"] == "2024-06-30T23:59:59.123456+00:00"
    assert quoted["version"] == "1"
    assert quoted["deleted"] == "false"
    assert quoted["address_line1"] == "Rue de l'Église 12, bte 3"
    assert quoted["address_line2"] == "'=chez Dupont"
    assert quoted["address_postal_code"] == "4000"
    assert quoted["address_city"] == "Liège"
    assert quoted["address_country_code"] == "BE"
    raw = rows[tricky["raw"].pk]
    assert raw["first_name"] == "'\tTab"
    assert raw["last_name"] == "'\rCarriage"
    assert raw["language"] == "'+"
    assert raw["nationalities"] == "'=BE NL"
    assert raw["bank_account_number"] == "+1234567890"
    assert raw["bank_id"] == "'@SUM(A1)"
    for empty in (
        "external_id",
        "email",
        "phone",
        "date_of_birth",
        "feature_flags",
        "address_line1",
        "address_line2",
        "address_city",
        "address_postal_code",
        "address_country_code",
    ):
        assert raw[empty] == "", empty
    unicode = rows[tricky["unicode"].pk]
    assert unicode["first_name"] == "Zoë 李"
    assert unicode["last_name"] == "'+٣٢٤"
    assert unicode["email"] == "'-x@example.com"
    assert unicode["nationalities"] == ""
    gone = rows[tricky["gone"].pk]
    assert gone["first_name"] == "Gone\r\nfor good"
    assert gone["deleted"] == "true"
    # RFC 4180 line ends; line breaks inside quoted cells are kept as they were.
    assert body.count(b"\r\n") == 1 + len(rows) + 1  # header, rows, the one in "Gone"
    assert b'"Ann, ""Marie""\nsecond line"' in body
    assert b'"Gone\r\nfor good"' in body
    # NULL and "" both as nothing between the commas, never as `""`.
    assert b',"",' not in body


def test_export_has_the_address_columns_of_the_registry():
    columns = list_views.EXPORT_COLUMNS
    address = [column for column in columns if column.startswith("address_")]
    assert address == [
        "address_line1",
        "address_line2",
        "address_city",
        "address_postal_code",
        "address_country_code",
    ]


def test_excel_variant_is_the_same_csv_after_a_utf8_bom(admin_client, tricky):
    plain = body_of(admin_client.get(EXPORT, {"deleted": "include"}))
    response = admin_client.get(EXPORT, {"deleted": "include", "variant": "excel"})
    excel = body_of(response)
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert excel == b"\xef\xbb\xbf" + plain
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('-excel.csv"')
    # Excel, given the BOM, reads the file as UTF-8: the accents survive.
    assert "Liège" in excel.decode("utf-8-sig")


def test_an_unknown_variant_is_the_plain_csv(admin_client, tricky):
    assert body_of(admin_client.get(EXPORT, {"variant": "nope"})) == body_of(
        admin_client.get(EXPORT)
    )


def test_the_list_links_both_exports_with_its_filter(admin_client, tricky):
    html = admin_client.get(reverse("users:user-list"), {"q": "Zoë"}).content.decode()
    assert f'href="{EXPORT}?q=Zo%C3%AB"' in html
    assert f'href="{EXPORT}?q=Zo%C3%AB&amp;variant=excel"' in html


def test_export_without_deleted_users_by_default(admin_client, tricky):
    rows = rows_by_id(body_of(admin_client.get(EXPORT)))
    assert tricky["gone"].pk not in rows
    assert tricky["quoted"].pk in rows


def test_export_search_wildcards_are_literal(admin_client, tricky):
    # The COPY statement carries the search as a literal: "%" and "_" must stay escaped there.
    for wildcard in ("Zo%", "Zo_"):
        assert rows_by_id(body_of(admin_client.get(EXPORT, {"q": wildcard}))) == {}
    rows = rows_by_id(body_of(admin_client.get(EXPORT, {"q": "Zoë"})))
    assert list(rows) == [tricky["unicode"].pk]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=1+2", "'=1+2"),
        ("+32470123456", "+32470123456"),
        ("-", "'-"),
        ("+٣٢", "'+٣٢"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (["=BE", "NL"], "'=BE NL"),
        (True, "true"),
        (-5, "-5"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (
            dt.datetime(2024, 1, 2, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2024-01-02T10:00:00.000000+00:00",
        ),
    ],
)
def test_python_cells(value, text):
    assert list_views._cell(value) == text


# --- PostgreSQL: the COPY path against the Python path ------------------------------------------

FILTERS = [
    "",
    "deleted=include",
    "deleted=only",
    "q=carriage",
    "q=tricky@example.com",
    "flag=ROBO_ADVISOR&flag=SELF_INVESTOR",
    "residency_country=BE&deleted=include",
    "mode=advanced&q=deleted eq true",
]


def python_export(query: str) -> bytes:
    chunks = list_views._python_export_rows(list_state(QueryDict(query)))
    return b"".join(chunk.encode() for chunk in chunks)


@pytest.mark.postgres
@pytest.mark.parametrize("query", FILTERS)
def test_copy_export_is_byte_identical_to_the_python_export(admin_client, tricky, query):
    expected = python_export(query)
    with CaptureQueriesContext(connection) as captured:
        body = body_of(admin_client.get(f"{EXPORT}?{query}"))
    copies = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("COPY")]
    assert len(copies) == 1  # the view took the COPY path, in one statement
    assert body == expected
    assert len(rows_by_id(body)) >= 1  # every filter here matches someone


@pytest.mark.postgres
def test_masked_copy_export_is_byte_identical_to_the_python_export(admin_user, tricky):
    """The masks written by PostgreSQL (issue 13.3) are the Python masks, byte for byte: an
    IBAN, a US account number, a short one, and dates of birth."""
    make_user(
        actor=admin_user,
        date_of_birth="1901-01-02",
        counter_account={
            "bank_account_number": "123456789",
            "bank_account_number_type": "ABA",
            "bank_id": "021000021",
            "bank_id_type": "ABA",
        },
    )
    make_user(actor=admin_user, counter_account={"bank_account_number": VALID_IBANS[1]})
    state = list_state(QueryDict("deleted=include"))
    masked = policy.masked_columns(make_console_user("back_office"), list_views.EXPORT_COLUMNS)
    assert masked == ("date_of_birth", "bank_account_number")
    python = b"".join(
        chunk.encode() for chunk in list_views._python_export_rows(state, None, masked)
    )
    copied = b"".join(
        chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        for chunk in list_views._copy_export_rows(state, None, masked)
    )
    assert copied == python
    text = python.decode()
    assert "•••• 6789" in text
    assert "1901-••-••" in text
    assert "BE71 •••• •••• 6769" in text


@pytest.mark.postgres
def test_copy_export_streams_in_bounded_chunks(admin_client, tricky, monkeypatch):
    expected = python_export("deleted=include")
    # Any record reaches the threshold: each becomes its own chunk, nothing is held back.
    monkeypatch.setattr(list_views, "EXPORT_COPY_CHUNK_BYTES", 1)
    response = admin_client.get(EXPORT, {"deleted": "include"})
    chunks = [bytes(chunk) for chunk in response.streaming_content]
    assert len(chunks) == 1 + len(rows_by_id(expected))
    assert all(chunk.endswith(b"\r\n") for chunk in chunks)
    assert b"".join(chunks) == expected


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_copy_export_stopped_half_way_leaves_the_connection_usable(admin_user, monkeypatch):
    """A client that goes away mid-download: the COPY is cancelled, the next query works."""
    for _ in range(30):
        make_user(actor=admin_user)
    monkeypatch.setattr(list_views, "EXPORT_COPY_CHUNK_BYTES", 200)
    rows = list_views._export_rows(list_state(QueryDict("")))
    next(rows)  # the header
    next(rows)  # the first records: the COPY is under way
    rows.close()
    assert User.objects.count() == 31
    assert len(python_export("").split(b"\r\n")) == 1 + 31 + 1


@pytest.mark.postgres
def test_copy_export_of_nobody_is_the_header_alone(admin_client, tricky):
    # A condition the ORM knows matches nobody compiles to no SQL at all.
    assert list(selectors.iter_export_records(User.objects.filter(pk__in=[]), ["id"])) == []
    body = body_of(admin_client.get(EXPORT, {"q": "nobody-matches-this"}))
    assert body == python_export("q=nobody-matches-this")
    assert body.count(b"\r\n") == 1
