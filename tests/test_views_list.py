"""The user list: full page and HTMX fragment, search, filters, sort, pages, bulk, export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from tests.factories import VALID_IBANS, make_console_user, make_user, sign_in
from users import selectors, services
from users.models import ChangeRequest, FeatureFlag, Role, Status, StatusChange, User
from users.views import list as list_views
from users.views.common import list_state

LIST = reverse("users:user-list")
HX_RESULTS = {"HX-Request": "true", "HX-Target": "results"}


@pytest.fixture
def people(admin_user):
    marc = make_user(
        actor=admin_user,
        first_name="Marc",
        last_name="Peeters",
        email="marc.peeters@example.com",
        phone="+32470123456",
        external_id="CRM-000042",
        residency_country="BE",
        language="nl-BE",
        counter_account={"bank_account_number": VALID_IBANS[0], "bank_account_number_type": "IBAN"},
        feature_flags=[FeatureFlag.ROBO_ADVISOR],
    )
    anna = make_user(
        actor=admin_user,
        first_name="Anna",
        last_name="de Vries",
        residency_country="NL",
        language="nl",
    )
    services.user_change_status(user=anna, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    gone = make_user(actor=admin_user, first_name="Gone", last_name="Away")
    services.user_delete(user=gone, actor=admin_user)
    return {"marc": marc, "anna": anna, "gone": gone}


def names(response) -> list[str]:
    return [user.display_name for user in response.context["users"]]


def test_full_page_and_results_fragment(back_office_client, people):
    page = back_office_client.get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html
    assert 'id="list-form"' in html
    assert 'id="results"' in html
    assert "{#" not in html
    assert "{%" not in html
    assert "HX-Request" in page["Vary"]

    fragment = back_office_client.get(LIST, {"q": "peeters"}, headers=HX_RESULTS)
    html = fragment.content.decode()
    assert fragment.status_code == 200
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html
    assert "Marc Peeters" in html
    assert "Anna de Vries" not in html
    # The address bar gets the clean state, without the empty filter fields the form sent.
    assert fragment["HX-Push-Url"] == f"{LIST}?q=peeters"
    assert "HX-Request" in fragment["Vary"]


def test_deleted_users_are_hidden_unless_asked(back_office_client, people):
    assert "Gone Away" not in names(back_office_client.get(LIST))
    assert "Gone Away" in names(back_office_client.get(LIST, {"deleted": "include"}))
    only = names(back_office_client.get(LIST, {"deleted": "only"}))
    assert only == ["Gone Away"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("marc.peeters@EXAMPLE.com", "email"),
        ("peeters@", "email_part"),
        ("+32 470 12 34 56", "phone"),
        ("0032470123456", "phone"),
        ("32470123456", "phone"),
        ("(+32) 470-12.34.56", "phone"),
        ("be71 0961 2345 6769", "iban"),
        ("BE71096123456769", "iban"),
        ("CRM-000042", "text"),
        ("peeters marc", "text"),
        ("MARC", "text"),
    ],
)
def test_search_recognises_what_was_typed(back_office_client, people, text, kind):
    response = back_office_client.get(LIST, {"q": text})
    assert response.context["state"].term.kind == kind
    assert "Marc Peeters" in names(response)
    assert "Anna de Vries" not in names(response)


@pytest.fixture
def national(admin_user):
    """A Belgian, a French and a Dutch mobile; the Belgian and the French share digits."""
    return {
        "be": make_user(
            actor=admin_user,
            first_name="Lien",
            last_name="Janssens",
            phone="+32476170508",
            residency_country="BE",
        ),
        "fr": make_user(
            actor=admin_user,
            first_name="Luc",
            last_name="Martin",
            phone="+33612345678",
            residency_country="FR",
        ),
        "nl": make_user(
            actor=admin_user,
            first_name="Sem",
            last_name="Bakker",
            phone="+31612345678",
            residency_country="NL",
        ),
    }


@pytest.mark.parametrize("text", ["0476 17 05 08", "0476170508", "476170508", "0476/17.05.08"])
def test_search_reads_a_national_phone_in_the_default_region(back_office_client, national, text):
    response = back_office_client.get(LIST, {"q": text})
    term = response.context["state"].term
    assert (term.kind, term.value) == ("phone", "+32476170508")
    assert names(response) == ["Lien Janssens"]
    assert "+32476170508" in response.content.decode()  # "searched as phone +32476170508"


def test_search_reads_a_national_phone_in_the_filtered_country(back_office_client, national):
    response = back_office_client.get(LIST, {"q": "06 12 34 56 78", "residency_country": "NL"})
    assert response.context["state"].term.value == "+31612345678"
    assert names(response) == ["Sem Bakker"]
    response = back_office_client.get(LIST, {"q": "0612345678", "residency_country": "FR"})
    assert names(response) == ["Luc Martin"]


def test_search_reads_a_national_phone_in_the_configured_region(
    back_office_client, national, settings
):
    settings.DEFAULT_PHONE_REGION = "FR"
    assert names(back_office_client.get(LIST, {"q": "06 12 34 56 78"})) == ["Luc Martin"]


def test_search_without_a_region_tries_the_regions_of_the_data(
    back_office_client, national, settings
):
    settings.DEFAULT_PHONE_REGION = ""
    response = back_office_client.get(LIST, {"q": "0476 17 05 08"})
    assert response.context["state"].term.kind == "phone"
    assert names(response) == ["Lien Janssens"]
    # Read in each region, the same digits are a French and a Dutch mobile: both are found.
    found = sorted(names(back_office_client.get(LIST, {"q": "06 12 34 56 78"})))
    assert found == ["Luc Martin", "Sem Bakker"]


def test_search_of_digits_read_as_a_phone_still_finds_an_external_id(
    back_office_client, people, admin_user
):
    digits = make_user(actor=admin_user, first_name="Numeric", external_id="12345678")
    response = back_office_client.get(LIST, {"q": "12345678"})
    assert response.context["state"].term.kind == "phone"  # +3212345678 in Belgium
    assert names(response) == [digits.display_name]


@pytest.fixture
def accented(admin_user):
    return {
        "chloe": make_user(
            actor=admin_user, first_name="Chloé", last_name="Dubois", email="chloe@example.net"
        ),
        "ines": make_user(
            actor=admin_user,
            first_name="Inès",
            last_name="Müller-Łoś",
            email="ines@mail.example.org",
            external_id="Crm-Ines-7",
        ),
        "zoe": make_user(
            actor=admin_user, first_name="ZOË", last_name="Ørsted", email="zoe@example.network"
        ),
    }


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Chloe", ["Chloé Dubois"]),
        ("chloé", ["Chloé Dubois"]),
        ("CHLOE DUBOIS", ["Chloé Dubois"]),
        ("INÈS", ["Inès Müller-Łoś"]),
        ("ines muller", ["Inès Müller-Łoś"]),
        ("los", ["Inès Müller-Łoś"]),
        ("zoe", ["ZOË Ørsted"]),
        ("orsted", ["ZOË Ørsted"]),
        ("Zoë", ["ZOË Ørsted"]),
    ],
)
def test_name_search_ignores_accents_and_case(back_office_client, accented, text, found):
    response = back_office_client.get(LIST, {"q": text})
    assert response.context["state"].term.kind == "text"
    assert names(response) == found


@pytest.mark.parametrize("text", ["crm-ines-7", "CRM-INES-7", "Crm-Ines-7"])
def test_external_id_search_ignores_case(back_office_client, accented, text):
    assert names(back_office_client.get(LIST, {"q": text})) == ["Inès Müller-Łoś"]


@pytest.mark.parametrize("text", ["example.net", "@example.net", "@EXAMPLE.net", " Example.NET "])
def test_a_domain_finds_the_emails_at_that_domain(back_office_client, accented, text):
    response = back_office_client.get(LIST, {"q": text})
    term = response.context["state"].term
    assert (term.kind, term.value) == ("domain", "example.net")
    # Not mail.example.org, nor example.network.
    assert names(response) == ["Chloé Dubois"]
    assert "email domain" in response.content.decode()


def test_search_by_user_id_in_any_case(back_office_client, people):
    marc = people["marc"]
    response = back_office_client.get(LIST, {"q": f" {marc.pk.lower()} "})
    assert response.context["state"].term.kind == "id"
    assert names(response) == ["Marc Peeters"]


def test_search_words_must_all_match_a_name(back_office_client, people):
    assert names(back_office_client.get(LIST, {"q": "anna vries"})) == ["Anna de Vries"]
    assert names(back_office_client.get(LIST, {"q": "anna peeters"})) == []


def test_filters(back_office_client, people):
    def filtered(**params):
        return sorted(names(back_office_client.get(LIST, params)))

    assert filtered(status=Status.WAITING_FOR_SIGNATURE) == ["Anna de Vries"]
    assert filtered(flag=FeatureFlag.ROBO_ADVISOR) == ["Marc Peeters"]
    assert filtered(language="nl") == ["Anna de Vries", "Marc Peeters"]
    assert filtered(language="nl-BE") == ["Marc Peeters"]
    assert filtered(residency_country="NL") == ["Anna de Vries"]
    assert "Marc Peeters" in filtered(created_after="2000-01-01")
    assert filtered(created_before="2000-01-01") == []


def test_invalid_filter_shows_an_error_and_no_results(back_office_client, people):
    response = back_office_client.get(LIST, {"residency_country": "XX", "created_after": "nope"})
    assert response.status_code == 200
    assert response.context["users"] == []
    html = response.content.decode()
    assert "Some filters are not valid" in html
    assert "Select a valid choice" in html


def test_advanced_query_and_its_error_position(back_office_client, people):
    ok = back_office_client.get(
        LIST, {"mode": "advanced", "q": "residency_country eq 'BE' or residency_country eq 'NL'"}
    )
    assert sorted(names(ok)) == ["Anna de Vries", "Marc Peeters"]

    bad = back_office_client.get(
        LIST, {"mode": "advanced", "q": "status eq 'ACTIVE' and nonsense eq 1"}, headers=HX_RESULTS
    )
    problem = bad.context["state"].problem
    assert problem.position == 23
    html = bad.content.decode()
    assert 'class="query-error"' in html
    assert " " * 23 + "^" in html
    assert bad.context["users"] == []


def test_advanced_query_may_ask_for_deleted_users(back_office_client, people):
    response = back_office_client.get(LIST, {"mode": "advanced", "q": "deleted eq true"})
    assert names(response) == ["Gone Away"]


def test_advanced_query_orderby_is_used_unless_a_column_is_sorted(back_office_client, people):
    query = "residency_country in ['BE', 'NL'] orderby first_name desc"
    assert names(back_office_client.get(LIST, {"mode": "advanced", "q": query})) == [
        "Marc Peeters",
        "Anna de Vries",
    ]
    # marc.peeters@ sorts before userN@.
    sorted_by_column = back_office_client.get(
        LIST, {"mode": "advanced", "q": query, "sort": "-email"}
    )
    assert names(sorted_by_column) == ["Anna de Vries", "Marc Peeters"]


def test_sort_links_toggle_and_keep_filters(back_office_client, people):
    response = back_office_client.get(LIST, {"residency_country": "BE", "sort": "name"})
    links = response.context["sort_links"]
    assert links["name"]["query"] == "residency_country=BE&sort=-name"
    assert links["name"]["class"] == "is-asc"
    assert links["email"]["query"] == "residency_country=BE&sort=email"
    # An unknown sort falls back to newest first instead of failing.
    assert back_office_client.get(LIST, {"sort": "password"}).status_code == 200


def test_pagination_and_capped_count(back_office_client, admin_user, monkeypatch):
    for n in range(7):
        make_user(actor=admin_user, first_name="Page", last_name=f"Person{n}")
    monkeypatch.setattr(list_views, "PAGE_SIZE", 3)
    first = back_office_client.get(LIST, {"q": "page"})
    assert first.context["count"] == 7
    assert first.context["last_page"] == 3
    # Next continues from the page's last row (keyset), and says which page it is.
    assert first.context["next_query"] == f"q=page&page=2&after={first.context['users'][-1].pk}"
    assert first.context["prev_query"] is None
    third = back_office_client.get(LIST, {"q": "page", "page": "3"})
    assert len(third.context["users"]) == 1
    assert third.context["next_query"] is None
    assert third.context["prev_query"] == f"q=page&page=2&before={third.context['users'][0].pk}"
    # Garbage page numbers read as page 1.
    assert back_office_client.get(LIST, {"page": "x"}).context["page"] == 1

    monkeypatch.setattr(selectors.users, "COUNT_CAP", 5)
    capped = back_office_client.get(LIST, {"q": "page"})
    assert capped.context["count_capped"] is True
    assert "5+ users" in capped.content.decode()
    assert capped.context["last_page"] is None


def test_capped_count_counts_a_limited_subquery(db, admin_user, django_assert_num_queries):
    for _ in range(3):
        make_user(actor=admin_user)
    qs = User.objects.all()
    with django_assert_num_queries(1) as ctx:
        assert selectors.capped_count(qs, cap=2) == (2, True)
    assert "LIMIT 3" in ctx.captured_queries[0]["sql"]
    assert selectors.capped_count(qs, cap=100) == (4, False)


def test_empty_states(back_office_client, db):
    html = back_office_client.get(LIST, {"q": "zzz-nobody"}).content.decode()
    assert "No users match" in html
    assert "Clear search and filters" in html


def test_bulk_move_reports_per_user_errors(compliance_client, people, admin_user):
    marc, anna = people["marc"], people["anna"]
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {
            "action": "status",
            "status": Status.ACTIVE,
            "ids": [marc.pk, anna.pk, "U00000000000000000000000000"],
            "query": "residency_country=BE",
        },
        headers=HX_RESULTS,
    )
    assert response.status_code == 200
    report = response.context["bulk_report"]
    # Anna is waiting for signature: Active is her recommended move. Marc's is off-flow.
    assert [u.pk for u in report["done"]] == [anna.pk]
    assert [u.pk for u, _ in report["failed"]] == [marc.pk]
    assert "reason" in report["failed"][0][1].lower()
    assert report["missing"] == ["U00000000000000000000000000"]
    html = response.content.decode()
    assert "1 user moved to Active" in html
    assert "2 not changed" in html
    # The list is re-rendered with the filters it was showing.
    assert names(response) == ["Marc Peeters"]
    marc.refresh_from_db()
    anna.refresh_from_db()
    assert marc.status == Status.WAITING_FOR_VERIFICATION
    assert anna.status == Status.ACTIVE


def test_a_moved_row_that_leaves_the_filter_is_named(compliance_client, people):
    anna, marc = people["anna"], people["marc"]
    query = f"status={Status.WAITING_FOR_SIGNATURE}&status={Status.WAITING_FOR_VERIFICATION}"
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {"action": "status", "status": Status.ACTIVE, "ids": [anna.pk], "query": query},
        headers=HX_RESULTS,
    )
    html = response.content.decode()
    assert "Moved out of this view: Anna de Vries is now Active." in html
    assert "Anna de Vries" not in names(response)
    assert "Marc Peeters" in names(response)

    # A row that stays in the view is not announced; without JavaScript, a message says it.
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {
            "action": "status",
            "status": Status.VERIFICATION_FAILED,
            "ids": [marc.pk],
            "query": "residency_country=BE",
            "reason_code": "NAME_MISMATCH",
        },
        headers=HX_RESULTS,
    )
    assert "Moved out of this view" not in response.content.decode()
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {
            "action": "status",
            "status": Status.ACTIVE,
            "ids": [marc.pk],
            "query": query,
            "reason": "Checked",
            "reason_code": "MANUAL_OVERRIDE",
        },
        follow=True,
    )
    assert "Moved out of this view: Marc Peeters is now Active." in response.content.decode()


def test_bulk_off_flow_move_with_reason_code(compliance_client, people):
    marc = people["marc"]
    compliance_client.post(
        reverse("users:user-bulk"),
        {
            "action": "status",
            "status": Status.ACTIVE,
            "ids": [marc.pk],
            "reason": "Checked",
            "reason_code": "MANUAL_OVERRIDE",
        },
    )
    change = StatusChange.objects.get(user=marc, to_status=Status.ACTIVE)
    assert change.off_flow
    assert (change.reason, change.reason_code_id) == ("Checked", "MANUAL_OVERRIDE")


def test_bulk_without_javascript_redirects_with_messages(compliance_client, people):
    response = compliance_client.post(
        reverse("users:user-bulk"),
        {"action": "status", "status": Status.ACTIVE, "ids": [people["marc"].pk], "query": "q=x"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{LIST}?q=x"
    assert "Marc Peeters" in response.content.decode()  # named in the error message


def test_bulk_refusals(client, back_office_user, compliance_user, admin_user, people):
    url = reverse("users:user-bulk")
    marc = people["marc"]
    # Back office may not move statuses; compliance may not touch flags.
    sign_in(client, back_office_user)
    assert client.post(url, {"action": "status"}).status_code == 403
    sign_in(client, compliance_user)
    flag = {"action": "flag_grant", "flag": FeatureFlag.STORYTELLER, "ids": [marc.pk]}
    assert client.post(url, flag).status_code == 403
    assert FeatureFlag.STORYTELLER not in User.objects.get(pk=marc.pk).flag_names()
    sign_in(client, admin_user)
    admin_client = client
    response = admin_client.post(url, {"action": "status", "ids": []}, headers=HX_RESULTS)
    assert response.context["bulk_problem"] == "Select at least one user."
    response = admin_client.post(url, {"action": "nope"}, headers=HX_RESULTS)
    assert response.context["bulk_problem"] == "Choose an action."


def bulk_mover(client):
    """Signs `client` in as compliance without off-flow moves."""
    mover = make_console_user(Role.COMPLIANCE)
    mover.groups.get().permissions.remove(Permission.objects.get(codename="change_status_off_flow"))
    sign_in(client, mover)
    return client


def test_bulk_move_refuses_off_flow_moves_per_user_for_a_role_without_them(client, people):
    marc, anna = people["marc"], people["anna"]
    response = bulk_mover(client).post(
        reverse("users:user-bulk"),
        {"action": "status", "status": Status.ACTIVE, "ids": [marc.pk, anna.pk], "reason": "x"},
        headers=HX_RESULTS,
    )
    report = response.context["bulk_report"]
    assert [u.pk for u in report["done"]] == [anna.pk]
    assert report["failed"] == [
        (marc, "Your role may not move a user off the recommended status flow.")
    ]
    assert User.objects.get(pk=marc.pk).status == Status.WAITING_FOR_VERIFICATION


@pytest.mark.parametrize("off_flow", [True, False])
def test_bulk_move_to_the_current_status_is_refused_by_the_service(client, people, off_flow):
    """The same answer as on the board and the detail page, with or without off-flow moves."""
    anna = User.objects.get(pk=people["anna"].pk)
    assert anna.status == Status.WAITING_FOR_SIGNATURE
    if off_flow:
        sign_in(client, make_console_user(Role.COMPLIANCE))
    else:
        bulk_mover(client)
    response = client.post(
        reverse("users:user-bulk"),
        {"action": "status", "status": anna.status, "ids": [anna.pk]},
        headers=HX_RESULTS,
    )
    assert response.context["bulk_report"]["failed"] == [
        (anna, "The user is already waiting for signature.")
    ]
    assert User.objects.get(pk=anna.pk).version == anna.version


def test_bulk_move_offers_what_the_role_may_move_to(client, compliance_client, people):
    def offered(response):
        html = response.content.decode()
        menu = html[
            html.index('id="bulk-status"') : html.index("</select>", html.index('id="bulk-status"'))
        ]
        return [value for value in Status.values if f'value="{value}"' in menu]

    assert offered(compliance_client.get(LIST)) == Status.values
    # Nothing on the flow leads back to verification: only an off-flow move would.
    assert offered(bulk_mover(client).get(LIST)) == [
        s for s in Status.values if s != Status.WAITING_FOR_VERIFICATION
    ]


def test_bulk_flag_grant_and_revoke_by_admin(admin_client, people):
    url = reverse("users:user-bulk")
    marc, anna = people["marc"], people["anna"]
    admin_client.post(
        url, {"action": "flag_grant", "flag": FeatureFlag.ROBO_ADVISOR, "ids": [marc.pk, anna.pk]}
    )
    assert FeatureFlag.ROBO_ADVISOR in User.objects.get(pk=anna.pk).flag_names()
    response = admin_client.post(
        url,
        {"action": "flag_revoke", "flag": FeatureFlag.ROBO_ADVISOR, "ids": [marc.pk]},
        headers=HX_RESULTS,
    )
    assert [u.pk for u in response.context["bulk_report"]["done"]] == [marc.pk]
    assert FeatureFlag.ROBO_ADVISOR not in User.objects.get(pk=marc.pk).flag_names()


def test_bulk_console_grant_is_proposed_and_says_so(admin_client, people):
    """Four-eyes: granting CONSOLE from the list waits for a second person, and the report
    says that instead of "granted"."""
    marc, anna = people["marc"], people["anna"]
    response = admin_client.post(
        reverse("users:user-bulk"),
        {"action": "flag_grant", "flag": FeatureFlag.CONSOLE, "ids": [marc.pk, anna.pk]},
        headers=HX_RESULTS,
    )
    html = response.content.decode()
    assert "2 users proposed for Console (waiting for approval by a second person)." in html
    assert "granted" not in html.split('class="alert alert-success"')[1].split("</div>")[0]
    assert FeatureFlag.CONSOLE not in User.objects.get(pk=anna.pk).flag_names()
    assert ChangeRequest.objects.filter(user__in=[marc, anna], state="PENDING").count() == 2


def read_csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_export_streams_the_current_filter(back_office_client, people):
    response = back_office_client.get(reverse("users:user-export"), {"residency_country": "BE"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = read_csv(response)
    assert [row["last_name"] for row in rows] == ["Peeters"]
    row = rows[0]
    assert row["phone"] == "+32470123456"
    assert row["bank_account_number"] == VALID_IBANS[0]
    assert row["feature_flags"] == "ROBO_ADVISOR"
    for secret in ("password", "last_login", "session"):
        assert not any(secret in column for column in row)


def test_export_neutralises_spreadsheet_formulas(back_office_client, admin_user):
    # On PostgreSQL the database writes these cells (COPY), elsewhere Python: same rule.
    make_user(
        actor=admin_user,
        first_name="=HYPERLINK(1)",
        last_name="Evil",
        external_id="@SUM(A1)",
        phone="+32470123456",
    )
    rows = read_csv(back_office_client.get(reverse("users:user-export"), {"q": "evil"}))
    assert rows[0]["first_name"] == "'=HYPERLINK(1)"
    assert rows[0]["external_id"] == "'@SUM(A1)"
    assert rows[0]["phone"] == "+32470123456"  # digits after the "+": a number, kept as is


def test_export_needs_permission(client, db):
    # Every role exports today; a user whose role lacks the permission must not.
    user = make_console_user(Role.BACK_OFFICE)
    user.groups.get().permissions.remove(Permission.objects.get(codename="export_users"))
    sign_in(client, user)
    assert client.get(reverse("users:user-export")).status_code == 403


def test_export_iterates_in_keyset_chunks(db, admin_user, django_assert_max_num_queries):
    for _ in range(5):
        make_user(actor=admin_user, feature_flags=[FeatureFlag.ROBO_ADVISOR])
    qs = selectors.user_list_queryset()
    # 6 users (5 + the admin) in chunks of 2: 3 chunk queries, each with its flags query,
    # then one that finds the end.
    with django_assert_max_num_queries(7) as ctx:
        chunks = list(selectors.iter_export_chunks(qs, ["email"], chunk_size=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2]
    emails = [values[0] for chunk in chunks for values, _ in chunk]
    assert emails == list(qs.order_by("pk").values_list("email", flat=True))
    assert sum(flags == [FeatureFlag.ROBO_ADVISOR] for chunk in chunks for _, flags in chunk) == 5
    assert any('"id" >' in q["sql"] or "id` >" in q["sql"] for q in ctx.captured_queries)
    assert not any("OFFSET" in q["sql"] for q in ctx.captured_queries)


def test_export_with_a_bad_query_goes_back_to_the_list(back_office_client, db):
    response = back_office_client.get(
        reverse("users:user-export"), {"mode": "advanced", "q": "status eq"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(LIST)


def test_urls_built_from_the_state_are_canonical(back_office_client, db):
    response = back_office_client.get(
        LIST,
        {
            "junk": "1",
            "created_before": "2030-01-01",
            "q": "jan",
            "mode": "simple",
            "status": ["ACTIVE", "INACTIVE"],
            "limit_ACTIVE": "50",
            "page": "2",
        },
    )
    assert response.context["query"] == (
        "q=jan&status=ACTIVE&status=INACTIVE&created_before=2030-01-01"
    )


def walk(client, response, link: str) -> tuple[list[list[str]], object]:
    """Follow the Next (or Previous) links from `response` to the end: each page's ids, and
    the last response."""
    pages = []
    while True:
        pages.append([row.pk for row in response.context["users"]])
        query = response.context[link]
        if query is None:
            return pages, response
        response = client.get(LIST, QueryDict(query))


@pytest.mark.parametrize("sort", ["-created", "created", "name", "-name", "status", "country"])
def test_next_and_previous_links_walk_every_row_once_in_order(
    back_office_client, admin_user, monkeypatch, sort
):
    # Ties on every sort column but the id (same names, countries, statuses, three users
    # created at the same instant): a page continued from its neighbour must neither skip
    # nor repeat a row.
    same_moment = timezone.now() - dt.timedelta(days=1)
    for n in range(11):
        user = make_user(
            actor=admin_user,
            first_name="Twin" if n % 2 else "Solo",
            last_name="Peeters" if n < 6 else "Janssens",
            residency_country="BE" if n % 3 else "",
        )
        if n in (3, 4, 5):
            User.objects.filter(pk=user.pk).update(creation_datetime=same_moment)
    monkeypatch.setattr(list_views, "PAGE_SIZE", 3)
    ordering = list_state(QueryDict(f"sort={sort}")).ordering
    expected = list(selectors.user_list_queryset().order_by(*ordering).values_list("pk", flat=True))

    forward, last = walk(
        back_office_client, back_office_client.get(LIST, {"sort": sort}), "next_query"
    )
    assert [pk for page in forward for pk in page] == expected
    assert all(len(page) == 3 for page in forward[:-1])
    assert all("after=" in page_link for page_link in [last.context["page_query"]])
    # From the last page back to the first, Previous shows the same pages.
    backward, first = walk(back_office_client, last, "prev_query")
    assert backward == list(reversed(forward))
    assert first.context["page"] == 1


def test_a_keyset_page_is_found_from_its_row_not_by_offset(back_office_client, admin_user):
    users = [make_user(actor=admin_user, first_name=f"Row{n}") for n in range(4)]
    newest_first = list(
        selectors.user_list_queryset()
        .order_by("-creation_datetime", "-pk")
        .values_list("pk", flat=True)
    )
    anchor = newest_first[1]
    # The page number is only a label: the rows follow the anchor whatever it says.
    response = back_office_client.get(LIST, {"page": "7", "after": anchor})
    assert [row.pk for row in response.context["users"]] == newest_first[2:]
    assert response.context["page"] == 7
    assert {u.pk for u in users} <= set(newest_first)


def test_email_sort_pages_by_offset(back_office_client, admin_user, monkeypatch):
    for n in range(5):
        make_user(actor=admin_user, email=f"user{n}@example.com" if n % 2 else None)
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    first = back_office_client.get(LIST, {"sort": "email"})
    assert first.context["next_query"] == "sort=email&page=2"
    # A cursor on an email sort is not used: the page number decides.
    second = back_office_client.get(LIST, {"sort": "email", "page": "2", "after": "junk"})
    assert second.context["page"] == 2
    expected = list(
        selectors.user_list_queryset().order_by("email", "pk").values_list("pk", flat=True)[2:4]
    )
    assert [row.pk for row in second.context["users"]] == expected


@pytest.mark.parametrize("cursor", ["not-an-id", "U" + "0" * 26, "U01ARZ3NDEKTSV4RRFFQ69G5FAV'"])
def test_an_unknown_or_malformed_cursor_falls_back_to_the_page_number(
    back_office_client, admin_user, monkeypatch, cursor
):
    for n in range(5):
        make_user(actor=admin_user, first_name=f"Row{n}")
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    response = back_office_client.get(LIST, {"page": "2", "after": cursor})
    assert response.status_code == 200
    expected = list(
        selectors.user_list_queryset()
        .order_by("-creation_datetime", "-pk")
        .values_list("pk", flat=True)[2:4]
    )
    assert [row.pk for row in response.context["users"]] == expected


def test_the_pushed_url_keeps_the_cursor(back_office_client, admin_user, monkeypatch):
    for n in range(5):
        make_user(actor=admin_user, first_name=f"Row{n}")
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    first = back_office_client.get(LIST)
    anchor = first.context["users"][-1].pk
    response = back_office_client.get(LIST, {"page": "2", "after": anchor}, headers=HX_RESULTS)
    assert response["HX-Push-Url"] == f"{LIST}?page=2&after={anchor}"


def test_a_bulk_action_on_a_continued_page_comes_back_to_the_same_rows(
    admin_client, admin_user, monkeypatch
):
    for n in range(5):
        make_user(actor=admin_user, first_name=f"Row{n}")
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    first = admin_client.get(LIST)
    second = admin_client.get(LIST, QueryDict(first.context["next_query"]))
    shown = [row.pk for row in second.context["users"]]
    html = second.content.decode()
    assert f'name="query" value="page=2&amp;after={first.context["users"][-1].pk}"' in html
    response = admin_client.post(
        reverse("users:user-bulk"),
        {
            "action": "flag_grant",
            "flag": FeatureFlag.STORYTELLER,
            "ids": shown[:1],
            "query": second.context["page_query"],
        },
        headers=HX_RESULTS,
    )
    assert [row.pk for row in response.context["users"]] == shown
    assert response.context["page"] == 2
