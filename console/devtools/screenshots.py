"""Retake the README's screenshots (docs/screenshots/*.png): `make screenshots`.

    python -m console.devtools.screenshots                 # every shot, into docs/screenshots/
    python -m console.devtools.screenshots status-board    # only the shots named
    python -m console.devtools.screenshots --list          # the names
    python -m console.devtools.screenshots --out /tmp/shots

Each run seeds the demo data (`manage.py seed_demo`) into a throwaway SQLite database, serves the
console on it (`manage.py runserver` on a free port), signs the demo logins in through the real
sign-in form (password, then the code their authenticator app would show) and drives Debian's
Chromium through Playwright at 1440x900. The database goes away at the end; nothing else is
touched but the PNGs written.

Adding a shot: a small function decorated with `@shot(name, login)` that takes the page (signed
in as that login) and the `Console`, brings the page to the state to show, and returns nothing
(the viewport, or the whole page with `full_page=True`) or the `Clip` to keep. The PNG is
`<name>.png`; the README links it as `docs/screenshots/<name>.png`. A JavaScript error or a
console error (a CSP refusal included) on the page fails the shot, as in the browser tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from users.models import User

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class Clip(TypedDict):
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Shot:
    name: str
    login: str  # a role: Role.ADMIN, Role.BACK_OFFICE, Role.COMPLIANCE (one demo login each)
    take: Callable[[Page, Console], Clip | None]
    full_page: bool = False


SHOTS: list[Shot] = []


def shot(name: str, login: str, *, full_page: bool = False):
    """Register the decorated function as the shot `name`, taken signed in as `login`."""

    def register(take: Callable[[Page, Console], Clip | None]):
        if any(existing.name == name for existing in SHOTS):
            raise ValueError(f"Two shots are named {name!r}.")
        SHOTS.append(Shot(name, login, take, full_page))
        return take

    return register


class Console:
    """The console being photographed: its URL, and the demo data behind it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def url(self, path_or_name: str, *args: Any, **query: Any) -> str:
        from django.urls import reverse

        path = path_or_name if path_or_name.startswith("/") else reverse(path_or_name, args=args)
        return self.base_url + path + (f"?{urlencode(query, doseq=True)}" if query else "")

    def login(self, role: str) -> User:
        from console.devtools.management.commands.seed_demo import DEMO_LOGINS
        from users.models import User

        email = next(email for login_role, email, *_ in DEMO_LOGINS if login_role == role)
        return User.objects.get(email__iexact=email)


# --- the shots (in the README's order) ----------------------------------------------------------


@shot("user-list", "compliance")
def user_list(page: Page, console: Console) -> None:
    """Filtered to Belgium, sorted by name, two users selected for a bulk move."""
    page.goto(console.url("users:user-list", residency_country="BE", sort="name"))
    boxes = page.locator("#results tbody [data-bulk-item]")
    boxes.nth(1).check()
    boxes.nth(3).check()
    page.locator("[data-bulk-count]").filter(has_text="2 selected").wait_for()
    page.mouse.move(0, VIEWPORT["height"] - 1)  # no hover highlight on a row


@shot("query-error", "compliance")
def query_error(page: Page, console: Console) -> Clip:
    """Query mode pointing at an unknown field; only the top of the page."""
    query = (
        "status in ['ACTIVE','INACTIVE'] and residency_country eq 'BE' and created gt '20240101'"
    )
    page.goto(console.url("users:user-list", mode="advanced", q=query))
    page.locator("#results .query-error").wait_for()
    below = page.locator("#results .resultbar").bounding_box()  # "0 users", under the error
    assert below is not None
    return {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": below["y"] + below["height"] + 16}


@shot("status-board", "compliance")
def status_board(page: Page, console: Console) -> None:
    """Residents of the Netherlands, the first waiting card's move menu open."""
    from users.models import Status

    page.goto(console.url("users:board", residency_country="NL"))
    menu = page.locator(f"#column-{Status.WAITING_FOR_VERIFICATION} .movemenu").first
    menu.locator("summary").click()
    menu.get_by_role("button", name="Move").wait_for()
    page.mouse.move(0, VIEWPORT["height"] - 1)


@shot("status-board-assignees", "compliance")
def status_board_assignees(page: Page, console: Console) -> None:
    """Assignees on the cards, the strip of open cases per assignee above the columns, one
    card just moved and kept first in its column, highlighted."""
    from users.models import Status

    page.goto(console.url("users:board"))
    cards = page.locator(f"#column-{Status.WAITING_FOR_VERIFICATION} [data-card]")
    card = cards.filter(has=page.locator(".bcard-assignee")).first
    card.locator("summary").click()
    card.locator("select[name=status]").select_option(Status.WAITING_FOR_SIGNATURE.value)
    card.get_by_role("button", name="Move").click()
    page.locator(f"#column-{Status.WAITING_FOR_SIGNATURE} .bcard.is-moved").wait_for()
    page.mouse.move(0, VIEWPORT["height"] - 1)


@shot("saved-views", "compliance")
def saved_views(page: Page, console: Console) -> Clip:
    """The list opened from a saved view in its sidebar, the save form open; the top left."""
    page.goto(console.url("users:user-list"))
    block = page.locator("#saved-views")
    block.get_by_role("link", name="Waiting for verification in BE", exact=True).click()
    block.locator("[aria-current='page']").wait_for()
    block.get_by_text("Save this view…").click()
    block.get_by_label("Name").wait_for()
    page.mouse.move(0, VIEWPORT["height"] - 1)
    box = block.bounding_box()
    assert box is not None
    return {"x": 0, "y": 0, "width": 1100, "height": box["y"] + box["height"] + 16}


@shot("dashboard", "compliance", full_page=True)
def dashboard(page: Page, console: Console) -> None:
    """The onboarding dashboard over the last 90 days of the demo's history."""
    page.goto(console.url("users:dashboard", days=90))
    page.locator("#chart-funnel-title").wait_for(state="attached")
    page.mouse.move(0, VIEWPORT["height"] - 1)


@shot("user-detail", "compliance", full_page=True)
def user_detail(page: Page, console: Console) -> None:
    """A user moved off the flow (with its reason), the diff between its first and latest
    versions."""
    from django.db.models import Count

    from users.models import User

    subject = (
        User.objects.filter(external_id__startswith="DEMO-", deleted=False, version__gte=3)
        .filter(status_changes__off_flow=True)
        .annotate(moves=Count("status_changes"))
        .order_by("-moves", "-version", "external_id")
        .first()
    )
    assert subject is not None, "no demo user with an off-flow move"
    page.goto(console.url("users:user-detail", subject.pk))
    page.get_by_label("Compare version").fill("1")
    page.get_by_label("with", exact=True).fill(str(subject.version))
    page.get_by_role("button", name="Show diff").click()
    page.locator("#diff h3").filter(has_text=f"Version 1 → {subject.version}").wait_for()
    # The diff took the focus and scrolled to it; the full page is taken from the top, or the
    # sticky top bar is drawn in the middle of it.
    page.evaluate("window.scrollTo(0, 0)")


@shot("user-create-iban", "back_office", full_page=True)
def user_create_iban(page: Page, console: Console) -> None:
    """A bad IBAN refused as soon as the field is left."""
    page.goto(console.url("users:user-create"))
    page.get_by_label("First name").fill("Iban")
    page.get_by_label("Last name").fill("Tester")
    account = page.get_by_label("Account number")
    account.fill("BE01234567891234")
    account.press("Tab")
    page.locator(".errorlist").filter(has_text="IBAN check digits are wrong").wait_for()


@shot("edit-conflict", "back_office", full_page=True)
def edit_conflict(page: Page, console: Console) -> None:
    """A stale tab saved: someone else's change listed, the form re-based on it."""
    from users import services
    from users.models import Status, User

    subject = (
        User.objects.filter(external_id__startswith="DEMO-", deleted=False)
        .filter(status=Status.WAITING_FOR_SIGNATURE)
        .exclude(phone="")
        .order_by("external_id")
        .first()
    )
    assert subject is not None, "no demo user waiting for a signature"
    page.goto(console.url("users:user-edit", subject.pk))
    page.get_by_label("First name").wait_for()
    # Meanwhile, in another office: the admin corrects the last name.
    services.user_update(
        user=subject,
        data={"last_name": f"{subject.last_name}-Verbeke"},
        actor=console.login("admin"),
    )
    page.get_by_label("First name").fill(f"{subject.first_name} Maria")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("alert").filter(has_text="Someone else changed").wait_for()
    page.mouse.move(0, 0)


@shot("approvals", "admin")
def approvals(page: Page, console: Console) -> None:
    """The Approvals page with the demo's pending requests (proposed by the back office)."""
    page.goto(console.url("users:approvals"))
    page.get_by_role("heading", name="Approvals").first.wait_for()
    page.mouse.move(0, VIEWPORT["height"] - 1)


@shot("pending-change", "admin")
def pending_change(page: Page, console: Console) -> Clip:
    """A user's page with a counter account change waiting for approval: the diff, the maker,
    its age, Approve and Reject."""
    from users.models import ChangeRequest

    request = (
        ChangeRequest.objects.filter(state=ChangeRequest.State.PENDING, kind="counter_account")
        .order_by("proposed_at", "pk")
        .first()
    )
    assert request is not None, "no pending counter account change in the demo data"
    page.goto(console.url("users:user-detail", request.user_id))
    panel = page.locator("#pending")
    panel.locator("#h-pending").wait_for()
    box = panel.bounding_box()
    assert box is not None
    return {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": box["y"] + box["height"] + 16}


# --- the machinery ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`manage.py runserver` on the throwaway database until the block ends."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base_url}/login/", timeout=5):
                        break
                except (urllib.error.URLError, ConnectionError):
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(
                            f"The console did not start:\n{log.read_text()[-3000:]}"
                        ) from None
                    time.sleep(0.2)
            yield base_url
        finally:
            server.terminate()
            server.wait(timeout=20)


def _sign_in(browser: Browser, console: Console, role: str) -> BrowserContext:
    """A browser context signed in through the sign-in form as the demo login of `role`."""
    from console.devtools.management.commands.seed_demo import DEMO_PASSWORD
    from console.devtools.totp import device_code
    from users.services import factors

    user = console.login(role)
    context = browser.new_context(base_url=console.base_url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(console.url("login"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/login/verify/**")
    code = device_code(factors.totp_ensure(user=user))
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    page.close()
    return context


def _take(context: BrowserContext, console: Console, item: Shot, out: Path) -> Path:
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: message.type in ("error", "assert") and problems.append(message.text),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        clip = item.take(page, console)
        path = out / f"{item.name}.png"
        # The page as it stays: no request under way (htmx's progress bar), and the regions
        # that follow the page (the detail's history) in.
        page.wait_for_function(
            "() => !document.querySelector('.htmx-request, [hx-trigger^=\"load\"]')"
        )
        if problems:
            raise SystemExit(f"{item.name}: the page reported problems:\n" + "\n".join(problems))
        page.screenshot(path=path, full_page=item.full_page, clip=clip, animations="disabled")
        return path
    finally:
        page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m console.devtools.screenshots", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="*", help="only these shots (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default {OUT.relative_to(ROOT)}")
    parser.add_argument("--list", action="store_true", help="print the shots' names and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(item.name for item in SHOTS))
        return 0
    unknown = sorted(set(args.names) - {item.name for item in SHOTS})
    if unknown:
        parser.error(f"no shot named {', '.join(unknown)}; --list shows the names")
    chosen = [item for item in SHOTS if not args.names or item.name in args.names]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        parser.error("Chromium is not installed: make chromium")

    with tempfile.TemporaryDirectory(prefix="console-screenshots-") as scratch:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{Path(scratch) / 'db.sqlite3'}",
            "CONSOLE_MFA_REQUIRED": "1",
            # Playwright's sync API runs an event loop in this thread; the ORM calls between
            # browser steps are not concurrent with it (as in tests/browser/conftest.py).
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
        }
        os.environ.update(env)
        import django
        from django.core.management import call_command

        django.setup()
        print("Seeding the demo data into a throwaway database …", flush=True)
        call_command("migrate", verbosity=0)
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)

        from playwright.sync_api import sync_playwright

        args.out.mkdir(parents=True, exist_ok=True)
        with (
            _server(env, Path(scratch) / "runserver.log") as base_url,
            sync_playwright() as playwright,
        ):
            console = Console(base_url)
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            contexts: dict[str, BrowserContext] = {}
            try:
                for item in chosen:
                    if item.login not in contexts:
                        contexts[item.login] = _sign_in(browser, console, item.login)
                    path = _take(contexts[item.login], console, item, args.out)
                    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
