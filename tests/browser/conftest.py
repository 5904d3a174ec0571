"""Playwright harness for the console's browser tests.

Every test under tests/browser/ is marked `browser` (deselect with `-m "not browser"`) and runs
Debian's Chromium (`apt-get install chromium`; `playwright install` is not used) against
pytest-django's `live_server` with a `transactional_db`.

Fixtures for tests:
- `page`: a fresh browser context and page. When the test ends it saves a full-page screenshot
  to `artifacts/screenshots/<test name>.png` and FAILS the test on any JavaScript error or
  console error, which includes every CSP violation ("Refused to ...").
  `page_problems.allow(r"regex")` tolerates console errors a test provokes on purpose (e.g. an
  htmx request answered 403 logs "Failed to load resource ... 403").
- `sign_in(role_or_user) -> User`: signs `page` in by session cookie (fast) as a new console user
  of that role (`"admin"`, `"back_office"`, `"compliance"`) or as the given user.
- `sign_in_with_form(user)`: the real sign-in form, for the sign-in test itself.
- `url(path_or_name, *args, **query)`: an absolute live-server URL (`url("users:board")`).
- `screenshot(name)`: an extra named screenshot mid-test.
Use Playwright's auto-waiting `expect(...)`; never sleep.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from urllib.parse import urlencode

import pytest

# Playwright's sync API runs an event loop in the test thread, which makes Django's ORM refuse
# to run there ("You cannot call this from an async context"). Tests use the ORM directly
# between browser steps, and nothing here is actually concurrent.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.factories import current_code, make_console_user, totp_device
from users.models import User
from users.views.common import FACTOR_VERIFIED_AT


class SerialWSGIServer(WSGIServer):
    """The live server, one request at a time. Its request threads would all share the test's
    one in-memory SQLite connection, and two requests at once (a field checked on blur while
    the form is saved, a region refreshing while another loads) misuse it: "bad parameter or
    other API misuse", a 500 the product never gives. Serially, each request runs in the
    server's thread, and Django closes each connection after its response, so the browser's
    parallel requests wait their turn in the listen queue instead."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)


LiveServerThread.server_class = SerialWSGIServer

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parent.parent / "artifacts" / "screenshots"
PASSWORD = "correct-horse-battery"
VIEWPORT = {"width": 1440, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark everything in this folder `browser` before `-m` deselects by marker."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (or make chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """JavaScript errors and console errors seen by a page, minus the ones a test allows."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self._allowed.append(re.compile(pattern))

    def add(self, message: str) -> None:
        self.messages.append(message)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(p.search(m) for p in self._allowed)]


def _screenshot_name(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name).strip("-")


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture(autouse=True)
def console_roles(transactional_db) -> None:
    """The role groups, which data migrations create and a transactional test's flush drops.

    Runs the migrations' own functions, so the role -> permission table stays in one place.
    """
    from django.apps import apps

    import_module("users.migrations.0002_roles").create_roles(apps, None)
    # ... and what later migrations granted: back office reads history, approvers approve,
    # compliance and admins download a user's file.
    import_module("users.migrations.0010_back_office_reads_history").grant(apps, None)
    import_module("users.migrations.0013_client_file_permission").grant(apps, None)
    import_module("users.migrations.0014_four_eyes").grant(apps, None)
    import_module("users.migrations.0015_access_log").grant(apps, None)
    import_module("users.migrations.0016_reveal_personal_data").grant(apps, None)
    import_module("users.migrations.0022_dashboard").grant(apps, None)
    # The reason codes moves take (issue 14.3), which the same flush drops.
    import_module("users.migrations.0020_reason_codes").seed(apps, None)


@pytest.fixture
def browser_context(
    browser: Browser, live_server, transactional_db, console_roles
) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext, page_problems: PageProblems, request) -> Iterator[Page]:
    page = browser_context.new_page()

    def on_console(message) -> None:
        if message.type in ("error", "assert"):
            page_problems.add(f"console {message.type}: {message.text} ({message.location})")
        elif "Content Security Policy" in message.text or "Refused to" in message.text:
            page_problems.add(f"CSP: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page_problems.add(f"JavaScript error: {error}"))
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(
            path=SCREENSHOTS / f"{_screenshot_name(request.node.name)}.png", full_page=True
        )
    except Exception as exc:  # a closed page must not hide the test's own result
        print(f"screenshot failed: {exc}")
    problems = page_problems.unexpected()
    if problems:
        pytest.fail("The browser reported problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def screenshot(page: Page, request) -> Callable[[str], Path]:
    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{_screenshot_name(request.node.name)}--{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def url(live_server) -> Callable[..., str]:
    def build(path_or_name: str, *args, **query) -> str:
        path = path_or_name if path_or_name.startswith("/") else reverse(path_or_name, args=args)
        return live_server.url + path + (f"?{urlencode(query, doseq=True)}" if query else "")

    return build


def _console_user(role_or_user: str | User) -> User:
    if isinstance(role_or_user, User):
        return role_or_user
    return make_console_user(role_or_user, password=PASSWORD)


@pytest.fixture
def sign_in(browser_context: BrowserContext, live_server) -> Callable[[str | User], User]:
    """Sign the context in by creating a session row and handing the browser its cookie."""
    engine = import_module(settings.SESSION_ENGINE)

    def do(role_or_user: str | User) -> User:
        user = _console_user(role_or_user)
        session = engine.SessionStore()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = "console.auth.ConsoleBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        # Past the second factor a moment ago (tests/browser/test_signin.py signs in for real).
        session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
        session[FACTOR_VERIFIED_AT] = time.time()
        session.save()
        browser_context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": session.session_key,
                    "url": live_server.url,
                    "httpOnly": True,
                    "sameSite": "Lax",
                }
            ]
        )
        return user

    return do


@pytest.fixture
def sign_in_with_form(page: Page, url) -> Callable[[str | User], User]:
    def do(role_or_user: str | User, *, here: bool = False) -> User:
        """`here`: on the sign-in page the browser already shows (keeping its `next`)."""
        user = _console_user(role_or_user)
        device = totp_device(user)
        if not here:
            page.goto(url("login"))
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/login/verify/.*"))
        page.get_by_label("Code from your authenticator app").fill(current_code(device))
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"^(?!.*/login/).*$"))
        return user

    return do
