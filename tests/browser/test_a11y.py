"""WCAG 2.2 AA in Chromium (issue 11 point 13): axe-core checks every screen, in every role that
may open it, in the states that matter (menus open, errors shown, dialogs, confirmations).

axe-core is vendored (`static/vendor/axe-core/`, from the npm registry) and only these tests load
it: `page.add_script_tag(url=...)` adds a `<script src>` from our own origin, which the console's
CSP (`script-src 'self'`) allows as it is; no page of the product references it. The run takes
the rules tagged WCAG 2.0, 2.1 and 2.2 A and AA, plus `region` (all content inside landmarks),
and the test fails on any violation, listed with its rule, impact, elements and what is wrong.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from django.templatetags.static import static
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.factories import VALID_IBANS, make_console_user, make_user, totp_device
from users import services
from users.models import Role, Status, User
from users.services import assignment, tokens
from users.services.saved_views import saved_view_create
from users.views.saved_views import screen_params

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ROLES = [Role.ADMIN, Role.BACK_OFFICE, Role.COMPLIANCE]
AXE_RUN = """async ([tags]) => {
  const results = await window.axe.run(document, {
    runOnly: {type: "tag", values: tags},
    rules: {region: {enabled: true}},
    resultTypes: ["violations"],
  });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}"""


def settled(page: Page) -> None:
    """Wait for the page as it stays: between a swap and its settling the new element wears
    the old one's classes (htmx's settle), and the regions that follow the page (the detail's
    history, triggered on load) move what is below them as they arrive."""
    page.wait_for_function(
        "() => !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, [hx-trigger^=\"load\"]')"
    )


def open_detail(page: Page, url, pk: str) -> None:
    """A user's page, once its regions are in: a click before that scrolls to a place the
    arriving regions then move (as a person would click once the page is there)."""
    page.goto(url("users:user-detail", pk))
    settled(page)


def axe_violations(page: Page) -> list[dict]:
    settled(page)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=static("vendor/axe-core/axe.min.js"))
    return page.evaluate(AXE_RUN, [WCAG_TAGS])


def check(page: Page, state: str) -> None:
    """Fail with a readable list when axe finds any WCAG A/AA violation on the page as it is."""
    violations = axe_violations(page)
    if violations:
        lines = [f"{len(violations)} accessibility violation(s) on {state} ({page.url}):"]
        for violation in violations:
            lines.append(f"- {violation['id']} [{violation['impact']}]: {violation['help']}")
            for node in violation["nodes"][:5]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    {node['target']}: {summary}")
            if len(violation["nodes"]) > 5:
                lines.append(f"    … and {len(violation['nodes']) - 5} more")
        pytest.fail("\n".join(lines), pytrace=False)


def rich_user(actor: User, **data) -> User:
    subject = make_user(
        actor=actor,
        first_name="Ada",
        last_name="Lovelace",
        counter_account={"bank_account_number": VALID_IBANS[0]},
        residency_country="BE",
        language="en-GB",
        date_of_birth="1985-12-10",
        address={
            "line1": "Rue de la Loi 16",
            "city": "Brussels",
            "postal_code": "1000",
            "country_code": "BE",
        },
        **data,
    )
    services.user_update(user=subject, data={"first_name": "Augusta Ada"}, actor=actor)
    services.user_change_status(
        user=subject,
        status=Status.ACTIVE,
        actor=actor,
        reason="Signed at the branch",
        reason_code="SIGNED_ON_PAPER",
    )
    return subject


def open_user_menu(page: Page) -> None:
    page.locator(".usermenu summary").click()
    expect(page.locator(".usermenu-panel")).to_be_visible()


# --- before signing in --------------------------------------------------------------------------


def test_sign_in_pages(page: Page, url):
    page.goto(url("login"))
    check(page, "the sign-in page")
    page.get_by_label("Email").fill("nobody@bank.example")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "the sign-in page with its error")


def password_step(page: Page, url, user: User) -> None:
    page.goto(url("login"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_enrolment_pages(page: Page, url, page_problems):
    page_problems.allow(r"status of 400")  # a wrong code is refused 400, on purpose here
    password_step(page, url, make_console_user(Role.BACK_OFFICE))
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    check(page, "the enrolment page")
    code = page.get_by_label("6-digit code")
    code.fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(code).to_have_attribute("aria-invalid", "true")
    check(page, "the enrolment page with a wrong code")

    # Another person (a wrong code makes the next try wait), who gets it right.
    page.context.clear_cookies()
    password_step(page, url, make_console_user(Role.BACK_OFFICE))
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    code.fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    check(page, "the recovery codes")


def test_second_factor_page(page: Page, url, page_problems):
    page_problems.allow(r"status of 400")
    user = make_console_user(Role.COMPLIANCE)
    totp_device(user)
    password_step(page, url, user)
    expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
    check(page, "the second-factor page")
    code = page.get_by_label(re.compile("Code from your authenticator app"))
    code.fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(code).to_have_attribute("aria-invalid", "true")
    check(page, "the second-factor page with a wrong code")


# --- every role ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_user_list(page: Page, sign_in, url, role, admin_user):
    sign_in(role)
    for n in range(3):
        make_user(actor=admin_user, first_name="Anna", last_name=f"Peeters{n}")
    page.goto(url("users:user-list"))
    expect(page.locator("#results tbody tr").first).to_be_visible()
    check(page, "the user list")

    page.locator("#search-q").fill("peeters")
    expect(page.locator("#results tbody tr")).to_have_count(3)
    check(page, "a search with results")

    bulk_all = page.get_by_label("Select all on this page")
    if bulk_all.count():
        bulk_all.check()
        expect(page.locator("[data-bulk-count]").first).to_have_text("3 selected")
        check(page, "the list with rows selected")
        if page.locator("#bulk-status").count():
            page.locator("#bulk-status").select_option(Status.ACTIVE)  # off the flow: refused
            page.get_by_role("button", name="Move", exact=True).click()
            expect(page.locator(".bulk-report")).to_contain_text("3 not changed")
            check(page, "a bulk move's report")

    page.get_by_text("Query", exact=True).click()
    page.locator("#search-q").fill("residency_country eq 'NL' and")
    expect(page.locator(".query-error")).to_be_visible()
    check(page, "a query error")

    open_user_menu(page)
    check(page, "the user menu open")


@pytest.mark.parametrize("role", ROLES)
def test_board(page: Page, sign_in, url, role, admin_user):
    sign_in(role)
    waiting = make_user(actor=admin_user, first_name="Wanda", last_name="Waiting")
    # A card with its assignee, and the strip of open cases per assignee (issue 14.1, 14.5).
    taken = make_user(actor=admin_user, first_name="Tom", last_name="Taken")
    assignment.case_claim(user=taken, actor=admin_user)
    page.goto(url("users:board"))
    card = page.locator(f"[data-card='{waiting.pk}']")
    expect(card).to_be_visible()
    expect(page.locator(f"[data-card='{taken.pk}'] .bcard-assignee")).to_be_visible()
    expect(page.locator(".workload")).to_contain_text("Unassigned")
    check(page, "the status board")
    if role == Role.BACK_OFFICE:
        expect(card.locator(".movemenu")).to_have_count(0)
        return

    card.locator("summary").click()
    expect(card.get_by_label("Move to")).to_be_visible()
    check(page, "a card's move menu open")

    card.get_by_label("Move to").select_option(Status.INACTIVE)
    card.get_by_role("button", name="Move").click()
    # The card's menu stays open with the error in it (issue 14.5).
    expect(card.get_by_role("alert")).to_contain_text("reason code")
    check(page, "the board refusing an off-flow move without a reason code")
    card.locator("summary").click()  # closed again, the card is dragged

    card.drag_to(page.locator(f"#column-{Status.ACTIVE}"))
    dialog = page.locator("#reason-dialog")
    expect(dialog).to_be_visible()
    check(page, "the move dialog with the reason code select")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog.locator("[data-reason-code-error]")).to_be_visible()
    check(page, "the move dialog with its reason code error")
    dialog.get_by_label("Reason code").select_option("OTHER")
    dialog.get_by_role("button", name="Move").click()
    expect(dialog.locator("[data-reason-error]")).to_be_visible()
    check(page, "the move dialog asking for words with the code Other")

    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    card.locator("summary").click()
    card.get_by_label("Move to").select_option(Status.WAITING_FOR_SIGNATURE)
    card.get_by_role("button", name="Move").click()
    expect(page.locator(f"#column-{Status.WAITING_FOR_SIGNATURE} .is-moved")).to_be_visible()
    check(page, "a card just moved, highlighted first in its column")


@pytest.mark.parametrize("role", ROLES)
def test_user_detail(page: Page, sign_in, url, role, admin_user):
    sign_in(role)
    subject = rich_user(admin_user)
    open_detail(page, url, subject.pk)
    expect(page.locator("#history .timeline")).to_contain_text("Signed at the branch")
    check(page, "the user detail")

    page.get_by_label("Compare version").fill("1")
    page.get_by_label("with", exact=True).fill("3")
    page.get_by_role("button", name="Show diff").click()
    expect(page.locator("#diff")).to_contain_text("Version 1 → 3")
    check(page, "a version diff")

    if role == Role.ADMIN:
        page.locator('#flags [data-flag="ROBO_ADVISOR"]').click()
        expect(page.locator("#flags")).to_contain_text("Robo Advisor granted")
        # Clicking scrolled the switch into view, leaving rows of the versions table under the
        # sticky top bar, which axe counts as obscured targets: checked from the top instead.
        page.evaluate("window.scrollTo(0, 0)")
        check(page, "a flag granted")
    if role in (Role.ADMIN, Role.COMPLIANCE):
        masked = page.locator("#masked-bank_account_number")
        masked.get_by_role("link", name="Reveal account number").click()
        form = page.locator("form#masked-bank_account_number")
        expect(form.get_by_label("Purpose")).to_be_visible()
        check(page, "the reveal form")
        form.get_by_label("Purpose").select_option("OTHER")
        form.get_by_role("button", name="Reveal account number").click()
        expect(form.get_by_role("alert")).to_contain_text("Say why")
        check(page, "the reveal form refused without a reason")
        form.get_by_label("Details").fill("Checking a payout")
        form.get_by_role("button", name="Reveal account number").click()
        expect(page.locator("#accessed-by")).to_contain_text("Revealed a field")
        check(page, "a revealed IBAN")
        status = page.locator("#status")
        status.get_by_text("Off-flow move…").click()
        expect(status.locator("#offflow-reason-code")).to_be_visible()
        check(page, "the off-flow move open")
        # Other with blank words: passes the browser, not the server.
        status.locator("#offflow-reason-code").select_option("OTHER")
        status.locator("#offflow-reason").fill(" ")
        status.get_by_role("button", name="Move off the flow").click()
        expect(status.get_by_role("alert")).to_be_visible()
        check(page, "an off-flow move refused without a reason")
        note = page.locator("#note")
        note.get_by_label("Add a note").fill("Passport checked against the scan.")
        note.get_by_role("button", name="Add note").click()
        expect(note).to_contain_text("Note added to the case.")
        expect(page.locator("#history .timeline")).to_contain_text("Passport checked")
        check(page, "a case note added, in the timeline")
    if role in (Role.ADMIN, Role.COMPLIANCE):
        panel = page.locator("#assignment")
        panel.get_by_role("button", name="Assign to me").click()
        expect(panel.get_by_role("status")).to_contain_text("Assigned to")
        check(page, "a case assigned to me")
        # Given back meanwhile by an admin: the Unassign is refused with its reason.
        assignment.case_unassign(
            user=subject,
            actor=admin_user,
            expected_assignee=User.objects.get(pk=subject.pk).assignee_id,
        )
        panel.get_by_role("button", name="Unassign").click()
        expect(panel.get_by_role("alert")).to_contain_text("Unassigned meanwhile")
        check(page, "an assignment refused")
    if role in (Role.ADMIN, Role.BACK_OFFICE):
        page.get_by_role("link", name="Delete user…").click()
        expect(page.locator("#danger")).to_contain_text("Delete this user?")
        check(page, "the delete confirmation")
        page.get_by_role("button", name="Yes, delete").click()
        expect(page.locator("#summary")).to_contain_text("This user is deleted")
        check(page, "a deleted user")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COMPLIANCE])
def test_client_file(page: Page, sign_in, url, role, admin_user, page_problems):
    """The file as of a date (issue 13.5): the form, a refused date, the file itself."""
    sign_in(role)
    subject = rich_user(admin_user)
    open_detail(page, url, subject.pk)
    page.get_by_role("link", name="File as of a date").click()
    check(page, "the client file's form")
    page.get_by_label("As of").fill("2001-01-01")
    page_problems.allow(r"status of 400")
    page.get_by_role("button", name="Show the file").click()
    expect(page.get_by_role("alert")).to_contain_text("did not exist yet on 2001-01-01")
    check(page, "a date before the user existed")
    page.get_by_label("As of").fill("2100-01-01")
    page.get_by_role("button", name="Show the file").click()
    expect(page.get_by_role("heading", name=re.compile("Record at version"))).to_be_visible()
    expect(page.locator("#h-manifest")).to_be_visible()
    check(page, "the client file")

    # The file shown and the detail opened are in the access log (issue 13.4).
    open_detail(page, url, subject.pk)
    expect(page.locator("#accessed-by")).to_contain_text("Opened the file as of a date")
    check(page, "the detail's Accessed by panel")
    page.locator("#accessed-by").get_by_role("link", name="All accesses").click()
    expect(page.locator("#log-results")).to_contain_text("Opened the detail")
    check(page, "the access log filtered on a user")
    page.get_by_label("Kind").select_option("EXPORTED")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#log-results")).to_contain_text("No access matches these filters.")
    check(page, "the access log with no match")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COMPLIANCE])
def test_dashboard(page: Page, sign_in, url, role, admin_user, page_problems):
    """The onboarding dashboard (issue 14.6) with moves to chart, and a refused period."""
    rich_user(admin_user)
    waiting = make_user(actor=admin_user, first_name="Wendy")
    services.user_change_status(user=waiting, status=Status.WAITING_FOR_SIGNATURE, actor=admin_user)
    failed = make_user(actor=admin_user, first_name="Fred")
    services.user_change_status(
        user=failed,
        status=Status.VERIFICATION_FAILED,
        actor=admin_user,
        reason_code="NAME_MISMATCH",
    )
    sign_in(role)
    page.goto(url("users:dashboard"))
    expect(page.locator("#chart-reasons-title")).to_be_attached()
    expect(page.get_by_role("table", name="Top reason codes")).to_contain_text("NAME_MISMATCH")
    expect(page.locator("#chart-funnel-title")).to_be_attached()
    check(page, "the dashboard")
    page.get_by_label("From").fill("2026-11-30")
    page.get_by_label("To (included)").fill("2026-11-01")
    page_problems.allow(r"status of 400")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("The last day is before the first.")
    check(page, "the dashboard with a refused period")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BACK_OFFICE])
def test_create_and_edit(page: Page, sign_in, url, role, browser_context):
    actor = sign_in(role)
    page.goto(url("users:user-create"))
    check(page, "the create form")
    page.get_by_label("Account number").fill("BE01234567891234")
    page.get_by_label("Phone").fill("0470 12 34 56")
    page.get_by_label("City").fill("Brussels")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert").filter(has_text="Not saved")).to_be_visible()
    check(page, "the create form with field errors")

    subject = make_user(actor=actor, first_name="Grace", last_name="Hopper")
    page.goto(url("users:user-edit", subject.pk))
    check(page, "the edit form")
    services.user_update(user=subject, data={"last_name": "Brewster"}, actor=actor)
    page.get_by_label("First name").fill("Amazing Grace")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".conflict")).to_be_visible()
    check(page, "the edit conflict")


@pytest.mark.parametrize("role", ROLES)
def test_own_account_pages(page: Page, sign_in, url, role):
    sign_in(role)
    page.goto(url("account-factors"))
    check(page, "the own second factors page")
    page.goto(url("account-sessions"))
    check(page, "the own sessions page")
    page.goto(url("password_change"))
    check(page, "the password change form")


@pytest.mark.parametrize("role", [Role.BACK_OFFICE, Role.COMPLIANCE])
def test_forbidden_and_missing_pages(page: Page, sign_in, url, role, page_problems):
    page_problems.allow(r"status of 40[34]")
    sign_in(role)
    page.goto(url("users:api-tokens"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check(page, "the 403 page")
    page.goto(url("/no-such-page/"))
    check(page, "the 404 page")


def test_admin_pages(page: Page, sign_in, url):
    admin = sign_in(Role.ADMIN)
    tokens.issue_token(user=admin, name="Old integration")
    page.goto(url("users:api-tokens"))
    check(page, "the API tokens page")
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_role("button", name="Issue token").click()
    expect(page.locator("#new-token-secret")).to_be_visible()
    check(page, "a new token's secret")
    page.get_by_role("link", name="Revoke Old integration").click()
    expect(page.get_by_role("button", name="Yes, revoke")).to_be_visible()
    check(page, "the revoke confirmation")

    page.goto(url("users:security-log"))
    check(page, "the security log")

    other = make_console_user(Role.BACK_OFFICE)
    page.goto(url("users:user-sessions", other.pk))
    check(page, "a user's sessions")


def test_idle_warning(page: Page, sign_in, url, settings):
    settings.SESSION_IDLE_SECONDS = 6
    sign_in(Role.COMPLIANCE)
    page.goto(url("users:user-list"))
    warning = page.get_by_role("alertdialog", name="Your session is about to end")
    expect(warning).to_be_visible(timeout=6000)
    check(page, "the idle warning")


def test_admin_confirmations_on_the_detail(page: Page, sign_in, url):
    admin = sign_in(Role.ADMIN)
    open_detail(page, url, admin.pk)
    page.locator('#flags [data-flag="CONSOLE"]').click()
    expect(page.get_by_role("alertdialog", name="Revoke your own console access?")).to_be_visible()
    check(page, "revoking one's own console access asks first")
    page.locator("#flags").get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)

    page.locator("#roles").get_by_label("Admin").uncheck()
    page.locator("#roles").get_by_role("button", name="Save roles").click()
    expect(page.get_by_role("alertdialog", name="Give up your own admin role?")).to_be_visible()
    check(page, "giving up one's own admin role asks first")

    staff = make_console_user(Role.BACK_OFFICE)
    totp_device(staff)
    open_detail(page, url, staff.pk)
    page.get_by_role("link", name="Reset second factors…").click()
    expect(page.get_by_role("button", name="Yes, reset their factors")).to_be_visible()
    check(page, "the factor reset confirmation")


@pytest.mark.parametrize("role", ROLES)
def test_saved_views(page: Page, sign_in, url, role, admin_user):
    """The saved views block (issue 14.7) on the list's sidebar and above the board: own and
    shared views with their counts, the save form with its error, a rename error, the delete
    confirmation, and the block's own page (what a request without JavaScript gets)."""
    me = sign_in(role)
    make_user(actor=admin_user, first_name="Bea", last_name="Belgian", residency_country="BE")
    colleague = make_console_user(role)
    known = screen_params()
    for screen in ("list", "board"):
        saved_view_create(
            owner=me,
            name="Belgium",
            screen=screen,
            query="residency_country=BE",
            shared_with_role=None,
            known_params=known,
        )
        saved_view_create(
            owner=me,
            name="Everyone",
            screen=screen,
            query="",
            shared_with_role=role,
            known_params=known,
        )
        saved_view_create(
            owner=colleague,
            name="Waiting",
            screen=screen,
            query="status=WAITING_FOR_VERIFICATION",
            shared_with_role=role,
            known_params=known,
        )
    page.goto(url("users:user-list", residency_country="BE"))
    block = page.locator("#saved-views")
    expect(block.get_by_role("link", name="Belgium", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    check(page, "the list's sidebar with saved views")

    block.get_by_text("Save this view…").click()
    block.get_by_label("Name").fill("belgium")
    block.get_by_role("button", name="Save view").click()
    expect(block.get_by_role("alert")).to_contain_text("You already have a view named")
    check(page, "the save form refusing a name taken")

    block.get_by_role("link", name="Rename “Everyone”").click()
    block.get_by_label("New name").fill("")
    block.get_by_role("button", name="Save", exact=True).click()
    expect(block.get_by_role("alert")).to_have_text("Give the view a name.")
    check(page, "a rename error")

    page.goto(url("users:board"))
    block = page.locator("#saved-views")
    block.get_by_role("link", name="Delete “Belgium”").click()
    expect(block.get_by_role("alertdialog")).to_contain_text("Delete “Belgium”?")
    check(page, "the board's saved views with a delete confirmation")

    page.goto(url("users:saved-views") + "?screen=list")
    expect(page.get_by_role("heading", name="Saved views", level=1)).to_be_visible()
    check(page, "the saved views page")
